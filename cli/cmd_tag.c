/* genred tag: walks the given files and folders, classifies every audio file through the
 * pipeline and writes GENRE / GENRED_CONFIDENCE / GENRED_MODEL with the tagger.
 * With no path it tags a scratch copy of a free demo library (Debian's drascula-music),
 * never the user's own files. Tag writes happen on the main thread, in the pipeline's
 * callback, while the workers decode the next tracks. One bad file never stops the run.
 * Like the daemon it runs the hooks of the config (hooks.d and hooks.commands) once per file,
 * with the same GENRED_* environment; they start as results arrive (at most hooks.max_running
 * at once) and the command waits for all of them before it exits. A dry run fires none.
 * Each result (and each failure) goes into the state database as the daemon records it: under
 * the file's absolute path, with the genre items it had before genred (for `genred untag`), its
 * artist, and the size, mtime and fingerprint after the write, so `genred status`, the web page
 * and a later `genred watch` know what it did. A dry run and --no-state record nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cliutil.h"
#include "commands.h"
#include "config.h"
#include "hooks.h"
#include "pipeline.h"
#include "state.h"
#include "tagger.h"

#define DEMO_SOURCE "/usr/share/scummvm/drascula/audio"

static void help(FILE *f)
{
    fputs("usage: genred tag [OPTIONS] [PATH...]\n"
          "\n"
          "Classifies every audio file in the given files and folders (recursively) and writes\n"
          "its GENRE tag, plus GENRED_CONFIDENCE and GENRED_MODEL. A genre set by hand (one\n"
          "without GENRED_CONFIDENCE) is kept unless --force. With no PATH, tags a copy of the\n"
          "free drascula-music demo library in $XDG_CACHE_HOME/genred/demo-library.\n"
          "Results go into the state database (state.path of the config), so that\n"
          "`genred untag` restores the genres files had, and `genred watch` skips them.\n"
          "\n"
          "  -n, --dry-run   decide and print what would happen, write nothing\n"
          "  -f, --force     also replace genres set by hand\n"
          "  -m, --model FILE  model file (default: $GENRED_MODEL, then the installed model)\n"
          "  -j, --jobs N    decoding threads (default: number of cores)\n"
          "  -b, --batch N   tracks per CNN batch (default 16)\n"
          "  -q, --quiet     print only errors\n"
          "  -c, --config FILE  config file for the hooks and the state database (default\n"
          "                  $XDG_CONFIG_HOME/genred/genred.conf, then /etc/genred.conf)\n"
          "      --no-hooks  run no hooks (hooks.d and hooks.commands of the config)\n"
          "  -s, --state FILE  the state database to record in (default: state.path of the\n"
          "                  config, the one `genred watch` and `genred serve` use)\n"
          "      --no-state  record nothing\n"
          "  -D, --device D  where the CNN runs: auto (GPU when usable), cpu or cuda;\n"
          "                  says on stderr which one it uses (default: auto, quietly)\n"
          "  -h, --help      this text\n"
          "\n"
          "Output: a progress bar on a terminal, else one line per file (tagged, unchanged,\n"
          "kept, or an error on stderr; control characters in a path shown as \\n, \\t,\n"
          "\\r or \\xHH), then a summary.\n"
          "Exit status: 0 all files done, 1 some failed, 2 usage error or no model.\n",
          f);
}

typedef struct Ctx {
    const NnInfo *info;
    Hooks *hooks; /* NULL: --no-hooks or --dry-run */
    State *state; /* NULL: --no-state or --dry-run */
    int dry_run, force, quiet, bar;
    int lines; /* one line per file on stdout: when it is not the terminal the bar is on */
    int total, done;
    int tagged, unchanged, kept, failed;
    double t0;
    int bar_shown;
} Ctx;

static void bar_clear(Ctx *c)
{
    if (c->bar_shown) fputs("\r\033[K", stderr);
    c->bar_shown = 0;
}

static void bar_draw(Ctx *c)
{
    double el = common_now() - c->t0;
    double rate = el > 0 ? c->done / el : 0;
    int width = 30, fill = c->total ? (int)((double)width * c->done / c->total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    char eta[32] = "--:--";
    if (rate > 0) {
        int s = (int)((c->total - c->done) / rate + 0.5);
        snprintf(eta, sizeof eta, "%d:%02d", s / 60, s % 60);
    }
    fprintf(stderr, "\r\033[K[%s] %d/%d  %.1f tracks/s  ETA %s  failed %d", bar, c->done, c->total,
            rate, eta, c->failed);
    fflush(stderr);
    c->bar_shown = 1;
}

/* Queues the hooks of one result (they start now if the bound allows) and lets the ones
 * already running make progress, so a long run does not pile up finished children. */
static void submit_hook(Ctx *c, const PipelineResult *r, enum HooksEvent ev, const char *genre,
                        const char *previous)
{
    if (!c->hooks) return;
    char top[256] = "";
    if (r->ok)
        hooks_format_top(top, sizeof top, (const char *const *)c->info->labels, r->probs,
                         (size_t)r->n_labels, 3);
    HooksResult hr = {.path = r->path,
                      .event = ev,
                      .genre = genre,
                      .confidence = r->ok ? r->confidence : 0.0,
                      .top = top,
                      .previous_genre = previous,
                      .model = c->info->id};
    hooks_submit(c->hooks, &hr);
    hooks_dispatch(c->hooks);
}

/* "VERB PATH GENRE CONFIDENCE", the path shown with common_put_text. */
static void print_result(const char *verb, const PipelineResult *r, const char *genre)
{
    printf("%s ", verb);
    common_put_text(stdout, r->path);
    printf(" %s %.3f\n", genre, r->confidence);
}

/* The daemon's row for this result. previous_known: the genre read before the write was not
 * genred's own; undo: the tagger's record of it when the write replaced it. Returns 0, or -1
 * after saying why on stderr. */
static int record_result(Ctx *c, const PipelineResult *r, const char *genre, const TaggerInfo *before,
                         const char *undo)
{
    if (!c->state) return 0;
    char probs[2048];
    hooks_format_top(probs, sizeof probs, (const char *const *)c->info->labels, r->probs,
                     (size_t)r->n_labels, (size_t)r->n_labels);
    bool previous_known = before && !before->confidence[0];
    /* The daemon's key for a file: its absolute, resolved path. */
    char abs[PATH_MAX];
    const char *path = realpath(r->path, abs) ? abs : r->path;
    struct stat st;
    char fp[STATE_FINGERPRINT_SIZE];
    ErrMsg e = {{0}};
    if (stat(path, &st) != 0) {
        err_set(&e, "%s", strerror(errno));
    } else if (state_fingerprint(path, fp, &e) == 0) {
        StateResult sr = {.path = path,
                          .size = st.st_size,
                          .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                          .fingerprint = fp,
                          .genre = genre,
                          .confidence = r->confidence,
                          .probs = probs,
                          .model = c->info->id,
                          .previous_genre = previous_known ? before->genre : NULL,
                          .previous_known = previous_known,
                          .previous_undo = previous_known ? undo : NULL,
                          .artist = before ? before->artist : NULL};
        if (state_record_result(c->state, &sr, &e) == 0) return 0;
    }
    char why[sizeof e.msg + 128];
    snprintf(why, sizeof why, "not recorded in the state database (untag cannot restore it): %s", e.msg);
    cli_file_error(r->path, why);
    return -1;
}

/* A file that failed, recorded as the daemon records it (the web page lists them). */
static void record_error(Ctx *c, const PipelineResult *r, const char *why)
{
    if (!c->state) return;
    char abs[PATH_MAX];
    const char *path = realpath(r->path, abs) ? abs : r->path;
    struct stat st;
    char fp[STATE_FINGERPRINT_SIZE];
    ErrMsg e = {{0}};
    int have = stat(path, &st) == 0 && state_fingerprint(path, fp, &e) == 0;
    if (state_record_error(c->state, path, have ? st.st_size : -1,
                           have ? (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec : -1,
                           have ? fp : NULL, c->info->id, why, &e) != 0)
        cli_file_error(r->path, e.msg);
}

static int on_result(const PipelineResult *r, void *user)
{
    Ctx *c = user;
    c->done++;
    if (c->bar) bar_clear(c);
    if (!r->ok) {
        cli_file_error(r->path, r->err.msg);
        c->failed++;
        record_error(c, r, r->err.msg);
        submit_hook(c, r, HOOKS_ERROR, NULL, NULL);
        goto out;
    }
    const char *genre = c->info->display_names[r->top];
    /* Read before the write: what was there is the kept genre and, when it was not genred's
     * own (no GENRED_CONFIDENCE), the hooks' GENRED_PREVIOUS_GENRE. */
    TaggerInfo before;
    ErrMsg re = {{0}};
    int have_before = tagger_read(r->path, &before, &re) == 0;
    const char *prev = have_before && !before.confidence[0] ? before.genre : "";
    TaggerWrite w = {.genre = genre,
                     .confidence = r->confidence,
                     .model_id = c->info->id,
                     .force = c->force,
                     .dry_run = c->dry_run};
    int outcome = -1;
    ErrMsg e = {{0}};
    char *undo = NULL;
    if (tagger_write(r->path, &w, &outcome, &undo, &e) != 0) {
        cli_file_error(r->path, e.msg);
        c->failed++;
        record_error(c, r, e.msg);
        submit_hook(c, r, HOOKS_ERROR, NULL, NULL);
        goto out;
    }
    if (record_result(c, r, genre, have_before ? &before : NULL, undo) != 0) c->failed++;
    free(undo);
    if (outcome == TAGGER_WRITTEN) {
        c->tagged++;
        if (c->lines) print_result(c->dry_run ? "would tag" : "tagged", r, genre);
        submit_hook(c, r, HOOKS_TAGGED, genre, prev);
    } else if (outcome == TAGGER_UNCHANGED) {
        c->unchanged++;
        if (c->lines) print_result("unchanged", r, genre);
        submit_hook(c, r, HOOKS_UNCHANGED, genre, prev);
    } else {
        const char *old = have_before ? before.genre : "?";
        c->kept++;
        if (c->lines) {
            fputs("kept ", stdout);
            common_put_text(stdout, r->path);
            fputc(' ', stdout);
            common_put_text(stdout, old);
            printf(" (hand-set; genred says %s %.3f)\n", genre, r->confidence);
        }
        submit_hook(c, r, HOOKS_UNCHANGED, have_before ? before.genre : NULL, prev);
    }
out:
    if (c->lines) fflush(stdout);
    if (c->bar) bar_draw(c);
    return 0;
}

/* Copies src to dst through a temp file and rename, so an interrupted copy is never
 * mistaken for a finished one on the next run. */
static int copy_file(const char *src, const char *dst, ErrMsg *e)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return err_set(e, "%s: %s", src, strerror(errno));
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", dst, (long)getpid()) >= (int)sizeof tmp) {
        close(in);
        return err_set(e, "%s: path too long", dst);
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return err_set(e, "%s: %s", tmp, strerror(errno));
    }
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                rc = err_set(e, "%s: %s", tmp, strerror(errno));
                break;
            }
            off += w;
        }
        if (rc) break;
    }
    if (n < 0 && !rc) rc = err_set(e, "%s: %s", src, strerror(errno));
    close(in);
    if (close(out) != 0 && !rc) rc = err_set(e, "%s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, dst) != 0) rc = err_set(e, "%s: %s", dst, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

static int has_ogg_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".ogg") == 0;
}

/* Fills dir with the demo library (copying only the files not there yet).
 * Returns 0, or CLI_USAGE after saying how to install the package. */
static int demo_library(char *dir, size_t dirsz, int quiet)
{
    const char *src = getenv("GENRED_DEMO_SOURCE"); /* tests point this at their own folder */
    if (!src || !*src) src = DEMO_SOURCE;
    DIR *d = opendir(src);
    if (!d) {
        fprintf(stderr,
                "genred: no PATH given, and the demo library (%s) is not installed.\n"
                "Install it with `sudo apt-get install drascula-music`, or tag your own folder:\n"
                "`genred tag ~/Music` (add --dry-run to see what would change first).\n",
                src);
        return CLI_USAGE;
    }
    const char *cache = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (cache && *cache)
        snprintf(dir, dirsz, "%s/genred/demo-library", cache);
    else
        snprintf(dir, dirsz, "%s/.cache/genred/demo-library", home && *home ? home : ".");
    ErrMsg e = {{0}};
    if (cli_mkdirs(dir, &e) != 0) {
        closedir(d);
        fprintf(stderr, "genred: %s\n", e.msg);
        return CLI_FAILED;
    }
    int copied = 0, found = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!has_ogg_suffix(de->d_name)) continue;
        found++;
        char s[PATH_MAX], t[PATH_MAX];
        if (snprintf(s, sizeof s, "%s/%s", src, de->d_name) >= (int)sizeof s ||
            snprintf(t, sizeof t, "%s/%s", dir, de->d_name) >= (int)sizeof t)
            continue;
        /* Present means complete (copies are renamed into place) and maybe tagged by an
         * earlier run, which changed its size: keep it, so a second run finds it unchanged. */
        struct stat ts;
        if (stat(t, &ts) == 0) continue;
        if (copy_file(s, t, &e) != 0) {
            fprintf(stderr, "genred: %s\n", e.msg);
            rc = CLI_FAILED;
            break;
        }
        copied++;
    }
    closedir(d);
    if (rc) return rc;
    if (!found) {
        fprintf(stderr, "genred: no .ogg files in %s; install drascula-music or pass a PATH\n", src);
        return CLI_USAGE;
    }
    if (!quiet)
        fprintf(stderr,
                "genred: no PATH given: tagging the demo library %s\n"
                "        (%d tracks copied from %s%s; your own files are not touched)\n",
                dir, found, src, copied ? "" : ", already there");
    return 0;
}

int cmd_tag(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dry-run", no_argument, NULL, 'n'},      {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"config", required_argument, NULL, 'c'}, {"no-hooks", no_argument, NULL, 'N'},
        {"state", required_argument, NULL, 's'},  {"no-state", no_argument, NULL, 'S'},
        CLI_SCORING_LONGOPTS,                     {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *state_path = NULL;
    int no_hooks = 0, no_state = 0;
    CliScoring sc = {.batch = 16, .device = -1};
    Ctx c = {0};
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, CLI_SCORING_SHORTOPTS "nfqc:s:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': c.dry_run = 1; break;
        case 'f': c.force = 1; break;
        case 'q': c.quiet = 1; break;
        case 'c': config_path = optarg; break;
        case 'N': no_hooks = 1; break;
        case 's': state_path = optarg; break;
        case 'S': no_state = 1; break;
        case 'h': help(stdout); return CLI_OK;
        default: {
            int r = cli_scoring_option(&sc, ch, optarg);
            if (r <= 0) {
                if (r == 0) help(stderr);
                return CLI_USAGE;
            }
        }
        }
    }
    PipelineOptions po = {.jobs = sc.jobs, .batch = sc.batch, .ordered = 0};
    /* The config only for its hooks; a bad one is a usage error before any work. */
    Config cfg;
    ErrMsg e = {{0}};
    if (config_load(&cfg, config_path, &e) != 0) {
        fprintf(stderr, "genred: %s\n", e.msg);
        return CLI_USAGE;
    }
    if (!no_hooks && !c.dry_run) {
        HooksOptions ho = {.dir = cfg.hooks_dir,
                           .commands = (const char *const *const *)cfg.hooks_commands.argv,
                           .n_commands = cfg.hooks_commands.n,
                           .timeout_ms = (int)(cfg.hooks_timeout_s * 1000.0),
                           .grace_ms = 2000,
                           .max_running = cfg.hooks_max_running};
        c.hooks = hooks_new(&ho, &e);
        if (!c.hooks) {
            fprintf(stderr, "genred: hooks: %s\n", e.msg);
            config_free(&cfg);
            return CLI_FAILED;
        }
    }
    if (!c.dry_run && !no_state) {
        char *opened = NULL;
        int rc = CLI_OK;
        c.state = cli_state_open(config_path, state_path, true, &opened, &rc);
        free(opened);
        if (!c.state) {
            hooks_free(c.hooks);
            config_free(&cfg);
            return rc;
        }
    }
    int device_flag = sc.device >= 0;
    int device = device_flag ? sc.device : cfg.device; /* enum ConfigDevice == enum NnDevice */
    config_free(&cfg); /* hooks_new copied what it needs */
    /* Load the model before touching anything, so a missing model costs no copying. */
    NnModel *m = cli_model_open(sc.model);
    if (!m) {
        hooks_free(c.hooks);
        state_close(c.state);
        return CLI_USAGE;
    }
    if (cli_model_device(m, device, device != NN_DEVICE_AUTO || device_flag) < 0) {
        nn_model_free(m);
        hooks_free(c.hooks);
        state_close(c.state);
        return CLI_USAGE;
    }
    c.info = nn_model_info(m);

    char demo[PATH_MAX];
    char *demo_argv[1] = {demo};
    char *const *paths = argv + optind;
    int n_paths = argc - optind;
    if (n_paths == 0) {
        int rc = demo_library(demo, sizeof demo, c.quiet);
        if (rc) {
            nn_model_free(m);
            hooks_free(c.hooks);
            state_close(c.state);
            return rc;
        }
        paths = demo_argv;
        n_paths = 1;
    }

    CliList files = {0};
    int walk_errors = cli_collect(paths, n_paths, &files);
    c.failed = walk_errors;
    c.total = files.n;
    c.bar = !c.quiet && isatty(STDERR_FILENO);
    c.lines = !c.quiet && !(c.bar && isatty(STDOUT_FILENO));
    c.t0 = common_now();
    if (pipeline_classify(m, (const char *const *)files.v, files.n, &po, on_result, &c, &e) < 0) {
        fprintf(stderr, "genred: %s\n", e.msg);
        c.failed++;
    }
    if (c.bar) bar_clear(&c);
    double el = common_now() - c.t0;
    if (!c.quiet) {
        printf("%s %d, unchanged %d, kept hand-set genre %d, failed %d: %d files in %.1f s "
               "(%.2f tracks/s)%s\n",
               c.dry_run ? "would tag" : "tagged", c.tagged, c.unchanged, c.kept, c.failed,
               files.n, el, el > 0 ? files.n / el : 0.0, c.dry_run ? "; dry run, nothing written" : "");
    }
    fflush(stdout);
    if (c.hooks) {
        hooks_run_all(c.hooks); /* the tags are written; now wait for the last hooks */
        HooksStats hs = hooks_stats(c.hooks);
        if (hs.failed)
            fprintf(stderr, "genred: hooks: %lu of %lu failed (%lu timed out); see above\n",
                    hs.failed, hs.started, hs.timed_out);
        hooks_free(c.hooks);
    }
    cli_list_free(&files);
    nn_model_free(m);
    state_close(c.state);
    return c.failed ? CLI_FAILED : CLI_OK;
}
