/* genred status: what the state database says: counts, the latest results and the errors.
 * Read-only: it opens the database without creating it and may run beside the daemon (WAL lets
 * readers and the writer work at once). Not a view of the daemon process itself. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cliutil.h"
#include "commands.h"
#include "state.h"

static void help(FILE *f)
{
    fputs("usage: genred status [OPTIONS]\n"
          "\n"
          "Prints what the state database of `genred watch` knows: how many files are tagged and\n"
          "how many failed, how many you untagged (`genred untag`: left alone until they\n"
          "change), the latest results, errors and untagged files.\n"
          "\n"
          "  -c, --config FILE  config file naming the database (state.path)\n"
          "  -s, --state FILE   the state database (default: state.path of the config)\n"
          "  -n, --last N       results and errors to list (default 10, 0: none)\n"
          "  -a, --all          list every file, by path\n"
          "  -J, --json         one JSON object instead of text\n"
          "  -h, --help         this text\n"
          "\n"
          "Exit status: 0, 1 when the database cannot be read, 2 usage error.\n",
          f);
}

typedef struct Out {
    int json, first;
} Out;

static const char *when(double t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

static int print_row(const StateRow *r, void *ud)
{
    Out *o = ud;
    char tb[32];
    if (o->json) {
        fputs(o->first ? "\n    {\"path\": " : ",\n    {\"path\": ", stdout);
        o->first = 0;
        cli_json_string(stdout, r->path);
        printf(", \"status\": \"%s\", \"genre\": ",
               r->excluded ? "untagged" : r->status == STATE_OK ? "ok" : "error");
        if (r->genre) cli_json_string(stdout, r->genre); else fputs("null", stdout);
        printf(", \"confidence\": %.3f, \"model\": ", r->confidence);
        cli_json_string(stdout, r->model ? r->model : "");
        fputs(", \"previous_genre\": ", stdout);
        if (r->previous_known) cli_json_string(stdout, r->previous_genre ? r->previous_genre : "");
        else fputs("null", stdout);
        fputs(", \"error\": ", stdout);
        if (r->status == STATE_ERROR && !r->excluded) cli_json_string(stdout, r->error ? r->error : "");
        else fputs("null", stdout);
        printf(", \"runs\": %lld, \"time\": %.3f}", (long long)r->runs, r->time);
    } else if (r->excluded) {
        printf("  %s  %-12s %5s  ", when(r->time, tb, sizeof tb), "(untagged)", "");
        common_put_text(stdout, r->path);
        fputc('\n', stdout);
    } else if (r->status == STATE_OK) {
        printf("  %s  %-12s %.3f  ", when(r->time, tb, sizeof tb), r->genre ? r->genre : "-",
               r->confidence);
        common_put_text(stdout, r->path);
        fputc('\n', stdout);
    } else {
        printf("  %s  ", when(r->time, tb, sizeof tb));
        common_put_text(stdout, r->path);
        fputs(": ", stdout);
        common_put_text(stdout, r->error ? r->error : "");
        fputc('\n', stdout);
    }
    return 0;
}

static int list(State *s, enum StateList which, int n, Out *o, const char *key, const char *title)
{
    ErrMsg e = {{0}};
    if (o->json) {
        printf(",\n  \"%s\": [", key);
        o->first = 1;
    } else {
        printf("%s:\n", title);
    }
    int r = state_list(s, which, which == STATE_LIST_ALL ? 0 : n, print_row, o, &e);
    if (r < 0) {
        fprintf(stderr, "genred: state database: %s\n", e.msg);
        return -1;
    }
    if (o->json) fputs(o->first ? "]" : "\n  ]", stdout);
    else if (r == 0) puts("  (none)");
    return 0;
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"state", required_argument, NULL, 's'},
        {"last", required_argument, NULL, 'n'},   {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'J'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *state_path = NULL;
    int last = 10, all = 0;
    Out o = {0};
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:s:n:aJh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config_path = optarg; break;
        case 's': state_path = optarg; break;
        case 'n':
            if (cli_parse_int("--last", optarg, 0, 1000000, &last)) return CLI_USAGE;
            break;
        case 'a': all = 1; break;
        case 'J': o.json = 1; break;
        case 'h': help(stdout); return CLI_OK;
        default: help(stderr); return CLI_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "genred: status takes no arguments\n");
        return CLI_USAGE;
    }
    char *path = NULL;
    int rc = CLI_OK;
    State *s = cli_state_open(config_path, state_path, false, &path, &rc);
    if (!s) return rc;
    ErrMsg e = {{0}};
    StateCounts n;
    if (state_counts(s, &n, &e) != 0) {
        fprintf(stderr, "genred: %s: %s\n", path, e.msg);
        rc = CLI_FAILED;
        goto out;
    }
    if (o.json) {
        fputs("{\n  \"state\": ", stdout);
        cli_json_string(stdout, path);
        printf(",\n  \"total\": %lld, \"ok\": %lld, \"errors\": %lld, \"untagged\": %lld",
               (long long)n.total, (long long)n.ok, (long long)n.error, (long long)n.excluded);
    } else {
        printf("state %s\n%lld files: %lld tagged, %lld failed, %lld untagged\n", path,
               (long long)n.total, (long long)n.ok, (long long)n.error, (long long)n.excluded);
    }
    if (all) {
        if (list(s, STATE_LIST_ALL, 0, &o, "files", "files") < 0) rc = CLI_FAILED;
    } else if (last > 0) {
        if (list(s, STATE_LIST_RECENT, last, &o, "recent", "latest results") < 0 ||
            list(s, STATE_LIST_ERRORS, last, &o, "recent_errors", "latest errors") < 0 ||
            list(s, STATE_LIST_EXCLUDED, last, &o, "recent_untagged",
                 "untagged (left alone until they change)") < 0)
            rc = CLI_FAILED;
    }
    if (o.json) fputs("\n}\n", stdout);
out:
    state_close(s);
    free(path);
    return rc;
}
