/* test_hooks: runs real hook scripts written into a temp dir and checks what they received.
 * Covers: hostile file names reaching argv[1] and GENRED_PATH byte for byte, the whole GENRED_*
 * environment, name order and skipping of dotfiles/non-executables, config commands as argv
 * vectors, output into the log, failure counting, the timeout killing a sleeping hook (and its
 * child), and the bound on hooks running at once. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hooks.h"

#include "check.h"
static char tmp[256], hookdir[300], outdir[300];

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static char *slurp(const char *name, size_t *len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", outdir, name);
    uint8_t *d = NULL;
    ErrMsg e;
    if (common_read_file(p, &d, len, &e) != 0) return NULL;
    return (char *)d;
}

static bool exists(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", outdir, name);
    return access(p, F_OK) == 0;
}

static void check_out(const char *name, const char *want)
{
    size_t len = 0;
    char *got = slurp(name, &len);
    CHECK(got && len == strlen(want) && memcmp(got, want, len) == 0, "%s: got '%s' want '%s'",
          name, got ? got : "(missing)", want);
    free(got);
}

static void clear_out(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir '%s'", outdir, outdir);
    if (system(cmd) != 0) exit(1);
}

static void clear_hooks(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir '%s'", hookdir, hookdir);
    if (system(cmd) != 0) exit(1);
}

static void test_names_and_env(void)
{
    clear_hooks();
    char p[512];
    snprintf(p, sizeof p, "%s/10-record", hookdir);
    write_file(p,
               "#!/bin/sh\n"
               "printf '%s' \"$#\" > \"$OUTDIR/argc\"\n"
               "printf '%s' \"$1\" > \"$OUTDIR/arg\"\n"
               "printf '%s' \"$GENRED_PATH\" > \"$OUTDIR/path\"\n"
               "printf '%s' \"$GENRED_GENRE\" > \"$OUTDIR/genre\"\n"
               "printf '%s' \"$GENRED_CONFIDENCE\" > \"$OUTDIR/conf\"\n"
               "printf '%s' \"$GENRED_TOP\" > \"$OUTDIR/top\"\n"
               "printf '%s' \"$GENRED_PREVIOUS_GENRE\" > \"$OUTDIR/prev\"\n"
               "printf '%s' \"$GENRED_MODEL\" > \"$OUTDIR/model\"\n"
               "printf '%s' \"$GENRED_EVENT\" > \"$OUTDIR/event\"\n"
               "echo 'hello from the hook'\n"
               "echo 'and stderr' >&2\n"
               "echo order >> \"$OUTDIR/order\"; echo 10 >> \"$OUTDIR/order\"\n",
               0755);
    snprintf(p, sizeof p, "%s/05-first", hookdir);
    write_file(p, "#!/bin/sh\necho 05 >> \"$OUTDIR/order\"\n", 0755);
    snprintf(p, sizeof p, "%s/.hidden", hookdir);
    write_file(p, "#!/bin/sh\ntouch \"$OUTDIR/hidden-ran\"\n", 0755);
    snprintf(p, sizeof p, "%s/50-noexec", hookdir);
    write_file(p, "#!/bin/sh\ntouch \"$OUTDIR/noexec-ran\"\n", 0644);
    snprintf(p, sizeof p, "%s/60-backup~", hookdir);
    write_file(p, "#!/bin/sh\ntouch \"$OUTDIR/backup-ran\"\n", 0755);

    /* A config command as an argv vector: the path arrives as its last argument ($1 of sh -c). */
    const char *cmd[] = {"sh", "-c", "printf '%s' \"$1\" > \"$OUTDIR/cmdarg\"", "sh", NULL};
    const char *const *cmds[] = {cmd};
    HooksOptions o = {.dir = hookdir, .commands = cmds, .n_commands = 1, .max_running = 2};
    ErrMsg e;
    Hooks *h = hooks_new(&o, &e);
    CHECK(h, "hooks_new: %s", e.msg);

    const char *names[] = {
        "/music/plain.mp3",
        "/music/with spaces/and 'single' \"double\" quotes.flac",
        "/music/$(touch /tmp/genred-pwned)`id`;rm -rf x|&.ogg",
        "/music/new\nline\n.wav",
        "/music/latin1-\xe9\xff\xfe-bytes.mp3",
        "-n",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        clear_out();
        HooksResult r = {.path = names[i],
                         .event = HOOKS_TAGGED,
                         .genre = "Hip-Hop",
                         .confidence = 0.8125,
                         .top = "hiphop:0.812,pop:0.104,disco:0.031",
                         .previous_genre = "My Own $(Genre)",
                         .model = "0123456789ab"};
        CHECK(hooks_submit(h, &r) == 3, "three hooks (05, 10, the command)");
        hooks_run_all(h);
        check_out("argc", "1");
        check_out("arg", names[i]);
        check_out("path", names[i]);
        check_out("cmdarg", names[i]);
        check_out("genre", "Hip-Hop");
        check_out("conf", "0.812");
        check_out("top", "hiphop:0.812,pop:0.104,disco:0.031");
        check_out("prev", "My Own $(Genre)");
        check_out("model", "0123456789ab");
        check_out("event", "tagged");
        check_out("order", "05\norder\n10\n");
        CHECK(!exists("hidden-ran") && !exists("noexec-ran") && !exists("backup-ran"),
              "dotfile, non-executable or backup hook ran");
    }
    CHECK(access("/tmp/genred-pwned", F_OK) != 0, "a shell expanded a file name");

    clear_out();
    HooksResult r = {.path = "/x.mp3", .event = HOOKS_ERROR, .genre = NULL, .model = "m"};
    hooks_submit(h, &r);
    hooks_run_all(h);
    check_out("event", "error");
    check_out("conf", "");
    check_out("genre", "");
    HooksStats st = hooks_stats(h);
    CHECK(st.failed == 0 && st.succeeded == st.started && st.started == 21, "stats %lu/%lu/%lu",
          st.started, st.succeeded, st.failed);

    /* a genre set by hand on the web page: no confidence, the file's genre before it */
    clear_out();
    r = (HooksResult){.path = "/c.mp3", .event = HOOKS_CORRECTED, .genre = "Jazz",
                      .confidence = 0.5, .top = "rock:0.500", .previous_genre = "Rock",
                      .model = "m"};
    hooks_submit(h, &r);
    hooks_run_all(h);
    check_out("event", "corrected");
    check_out("conf", "");
    check_out("genre", "Jazz");
    check_out("prev", "Rock");
    hooks_free(h);
}

static void test_failures_and_timeout(void)
{
    clear_hooks();
    clear_out();
    char p[512];
    snprintf(p, sizeof p, "%s/01-fail", hookdir);
    write_file(p, "#!/bin/sh\necho failing\nexit 3\n", 0755);
    snprintf(p, sizeof p, "%s/02-sleep", hookdir);
    write_file(p,
               "#!/bin/sh\necho $$ > \"$OUTDIR/sh.pid\"\n"
               "sleep 30 & echo $! > \"$OUTDIR/sleep.pid\"\nwait\ntouch \"$OUTDIR/woke\"\n",
               0755);
    snprintf(p, sizeof p, "%s/03-ok", hookdir);
    write_file(p, "#!/bin/sh\ntouch \"$OUTDIR/ok-ran\"\n", 0755);
    snprintf(p, sizeof p, "%s/04-badinterp", hookdir);
    write_file(p, "#!/nonexistent/interpreter\n", 0755);
    const char *cmd[] = {"/nonexistent/genred-hook", NULL};
    const char *const *cmds[] = {cmd};
    HooksOptions o = {.dir = hookdir,
                      .commands = cmds,
                      .n_commands = 1,
                      .timeout_ms = 1500, /* long enough for a loaded machine to start sh */
                      .grace_ms = 500,
                      .max_running = 1};
    ErrMsg e;
    Hooks *h = hooks_new(&o, &e);
    HooksResult r = {.path = "/a.mp3", .event = HOOKS_UNCHANGED, .genre = "Rock", .model = "m"};
    CHECK(hooks_submit(h, &r) == 5, "five hooks");
    hooks_run_all(h);
    HooksStats st = hooks_stats(h);
    CHECK(st.started == 5 && st.failed == 4 && st.timed_out == 1 && st.succeeded == 1,
          "started %lu failed %lu timed out %lu ok %lu", st.started, st.failed, st.timed_out,
          st.succeeded);
    CHECK(exists("ok-ran"), "the hook after the failures did not run");
    CHECK(!exists("woke"), "the sleeping hook was not stopped");
    /* The shell and its sleep child are gone (killed as a group), not left behind. */
    const char *pidfiles[] = {"sh.pid", "sleep.pid"};
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *s = slurp(pidfiles[i], &len);
        CHECK(s, "%s missing", pidfiles[i]);
        if (!s) continue;
        int pid = atoi(s);
        free(s);
        bool gone = false;
        for (int t = 0; t < 100 && !gone; t++) {
            char proc[64], buf[512] = "";
            snprintf(proc, sizeof proc, "/proc/%d/stat", pid);
            FILE *f = fopen(proc, "r");
            if (!f) {
                gone = true;
                break;
            }
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            char *rp = strrchr(buf, ')');
            if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X')) gone = true;
            if (!gone) usleep(50000);
        }
        CHECK(gone, "process %d (%s) still alive", pid, pidfiles[i]);
    }
    hooks_free(h);
}

static size_t count_started(void)
{
    size_t n = 0;
    char name[64];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "started.%d", i);
        n += exists(name);
    }
    return n;
}

static void test_bound(void)
{
    clear_hooks();
    clear_out();
    char p[512];
    snprintf(p, sizeof p, "%s/wait-for-go", hookdir);
    write_file(p,
               "#!/bin/sh\ntouch \"$OUTDIR/started.$GENRED_GENRE\"\n"
               "i=0; while [ ! -e \"$OUTDIR/go\" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); "
               "done\n",
               0755);
    HooksOptions o = {.dir = hookdir, .max_running = 2, .timeout_ms = 40000};
    ErrMsg e;
    Hooks *h = hooks_new(&o, &e);
    for (int i = 0; i < 6; i++) {
        char g[8];
        snprintf(g, sizeof g, "%d", i);
        HooksResult r = {.path = "/b.mp3", .event = HOOKS_TAGGED, .genre = g};
        hooks_submit(h, &r);
    }
    CHECK(hooks_running(h) == 2 && hooks_pending(h) == 6, "running %zu pending %zu",
          hooks_running(h), hooks_pending(h));
    /* Until "go" exists nothing can finish, so no third hook may start. */
    for (int t = 0; t < 10; t++) {
        struct pollfd pf = {.fd = hooks_fd(h), .events = POLLIN};
        poll(&pf, 1, 50);
        hooks_dispatch(h);
        CHECK(hooks_running(h) <= 2, "running %zu", hooks_running(h));
    }
    CHECK(count_started() <= 2, "%zu hooks started with a bound of 2", count_started());
    char go[512];
    snprintf(go, sizeof go, "%s/go", outdir);
    write_file(go, "", 0644);
    while (hooks_pending(h)) {
        struct pollfd pf = {.fd = hooks_fd(h), .events = POLLIN};
        poll(&pf, 1, hooks_timeout_ms(h));
        hooks_dispatch(h);
        CHECK(hooks_running(h) <= 2, "running %zu", hooks_running(h));
    }
    CHECK(count_started() == 6, "%zu of 6 ran", count_started());
    HooksStats st = hooks_stats(h);
    CHECK(st.succeeded == 6, "succeeded %lu", st.succeeded);
    hooks_free(h);
}

static void test_format_top(void)
{
    const char *labels[] = {"blues", "metal", "rock", "pop"};
    float probs[] = {0.031f, 0.104f, 0.812f, 0.053f};
    char buf[128];
    hooks_format_top(buf, sizeof buf, labels, probs, 4, 3);
    CHECK(strcmp(buf, "rock:0.812,metal:0.104,pop:0.053") == 0, "top '%s'", buf);
    hooks_format_top(buf, 20, labels, probs, 4, 3);
    CHECK(strcmp(buf, "rock:0.812") == 0, "truncated top '%s'", buf);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s/genred-hooks-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(hookdir, sizeof hookdir, "%s/hooks.d", tmp);
    snprintf(outdir, sizeof outdir, "%s/out", tmp);
    setenv("OUTDIR", outdir, 1);
    setenv("GENRED_GENRE", "inherited-must-be-replaced", 1);

    /* Capture our own stderr (the log) to check hook output lands there line by line. */
    char logpath[320];
    snprintf(logpath, sizeof logpath, "%s/log", tmp);
    int saved = dup(2);
    int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(lfd, 2);
    test_names_and_env();
    fflush(stderr);
    dup2(saved, 2);
    uint8_t *log = NULL;
    size_t loglen;
    ErrMsg e;
    common_read_file(logpath, &log, &loglen, &e);
    CHECK(log && strstr((char *)log, "hook 10-record: hello from the hook\n") &&
              strstr((char *)log, "hook 10-record: and stderr\n"),
          "hook output not in the log:\n%s", log ? (char *)log : "");
    free(log);

    test_failures_and_timeout();
    test_bound();
    test_format_top();

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("hooks: all checks passed\n");
    return 0;
}
