/* genred untag: undoes genred on the named files: GENRE goes back to what it was before
 * genred first wrote one (from the state database), GENRED_CONFIDENCE and GENRED_MODEL are
 * removed, and the file's row is marked untagged (state_exclude): `genred watch` then leaves it
 * alone, running or not, until its content changes. A file whose genre was set by hand after
 * genred (no GENRED_CONFIDENCE now) keeps it and is marked too, unless that genre is the one
 * set on genred's web page (the row's `corrected`): that one is genred's and is undone. Folders are not walked: name
 * the files. The mark goes in before the tag write (size -1: "being untagged") and is completed
 * with the file's new size, mtime and fingerprint after it, so a daemon that sees the write in
 * between finds the file left alone too. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cliutil.h"
#include "commands.h"
#include "state.h"
#include "tagger.h"

static void help(FILE *f)
{
    fputs("usage: genred untag [OPTIONS] FILE...\n"
          "\n"
          "Restores the genre each FILE had before genred tagged it (or removes genred's genre\n"
          "when it had none), removes GENRED_CONFIDENCE and GENRED_MODEL, and forgets the file\n"
          "in the state database. A genre set by hand since is kept (one set on the web page of\n"
          "`genred serve` is undone too).\n"
          "`genred watch` leaves an untagged file alone until its content changes.\n"
          "\n"
          "  -c, --config FILE  config file naming the database (state.path)\n"
          "  -s, --state FILE   the state database (default: state.path of the config)\n"
          "  -n, --dry-run      say what would happen, change nothing\n"
          "  -q, --quiet        print only errors\n"
          "  -h, --help         this text\n"
          "\n"
          "Exit status: 0 all done, 1 some file failed, 2 usage error.\n",
          f);
}

/* "VERB PATH A GENRE B GENRE2": the path and the genres (read from the file) shown with
 * common_put_text, so each result stays one line. */
static void print_line(const char *verb, const char *path, const char *a, const char *genre,
                       const char *b, const char *genre2)
{
    if (verb) printf("%s ", verb);
    common_put_text(stdout, path);
    fputs(a, stdout);
    common_put_text(stdout, genre);
    fputs(b, stdout);
    common_put_text(stdout, genre2);
    fputc('\n', stdout);
}

/* Returns 0 or 1 (failed). */
static int untag_one(State *s, const char *arg, int dry, int quiet)
{
    char abs[PATH_MAX];
    const char *path = realpath(arg, abs) ? abs : arg;
    ErrMsg e = {{0}};
    TaggerInfo ti;
    if (tagger_read(path, &ti, &e) != 0) {
        cli_file_error(arg, e.msg);
        return 1;
    }
    StateRow row = {0};
    int found = state_lookup(s, path, &row, &e);
    if (found < 0) {
        cli_file_error(arg, e.msg);
        return 1;
    }
    /* genred's: its own tags, or the hand-set genre the web page wrote (still there). */
    int ours = ti.confidence[0] != '\0' || ti.model[0] != '\0' ||
               (found && row.corrected && strcmp(row.corrected, ti.genre) == 0);
    if (!found && !ours) {
        cli_file_error(arg, "not tagged by genred");
        return 1;
    }
    const char *prev = found && row.previous_known && row.previous_genre ? row.previous_genre : "";
    const char *undo = found && row.previous_known ? row.previous_undo : NULL;
    int rc = 0;
    if (!dry && state_exclude(s, path, -1, -1, NULL, &e) != 0) {
        cli_file_error(arg, e.msg);
        if (found) state_row_clear(&row);
        return 1;
    }
    if (ours) {
        if (!dry && tagger_restore(path, prev, undo, &e) != 0) {
            cli_file_error(arg, e.msg);
            rc = 1;
        } else if (!quiet) {
            if (*prev)
                print_line(dry ? "would restore" : "restored", arg, ": genre ", ti.genre, " -> ",
                           prev);
            else
                print_line(dry ? "would untag" : "untagged", arg, ": genre ", ti.genre,
                           " removed", "");
        }
    } else if (!quiet && found && row.excluded) {
        print_line(NULL, arg, ": already untagged", "", "", "");
    } else if (!quiet) {
        print_line(dry ? "would forget" : "forgot", arg, ": genre ", ti.genre,
                   " was set by hand since; kept", "");
    }
    if (!dry) {
        /* Completed even when the restore failed: the file is as it was, and left alone until
         * it changes (a failed write changes nothing). */
        struct stat st;
        char fp[STATE_FINGERPRINT_SIZE];
        e.msg[0] = '\0';
        if (stat(path, &st) != 0 || state_fingerprint(path, fp, &e) != 0 ||
            state_exclude(s, path, st.st_size,
                          (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, fp,
                          &e) != 0) {
            cli_file_error(arg, e.msg[0] ? e.msg : strerror(errno));
            rc = 1;
        }
    }
    if (found) state_row_clear(&row);
    return rc;
}

int cmd_untag(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"state", required_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'n'},      {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *state_path = NULL;
    int dry = 0, quiet = 0;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:s:nqh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config_path = optarg; break;
        case 's': state_path = optarg; break;
        case 'n': dry = 1; break;
        case 'q': quiet = 1; break;
        case 'h': help(stdout); return CLI_OK;
        default: help(stderr); return CLI_USAGE;
        }
    }
    if (optind >= argc) {
        help(stderr);
        return CLI_USAGE;
    }
    /* Created when missing: untag then still removes genred's tags from files it never
     * recorded (tagged by `genred tag`). */
    char *path = NULL;
    int rc = CLI_OK;
    State *s = cli_state_open(config_path, state_path, true, &path, &rc);
    if (!s) return rc;
    int failed = 0;
    for (int i = optind; i < argc; i++) failed += untag_one(s, argv[i], dry, quiet);
    state_close(s);
    free(path);
    return failed ? CLI_FAILED : CLI_OK;
}
