/* test_contrib_hooks: the example hooks of contrib/hooks, run through the hooks module exactly as
 * the daemon runs them (argv[1] = path, GENRED_* environment, several at once).
 * m3u-playlist: one playlist per genre, each track once (duplicates and concurrent runs),
 * hostile names intact, newline names and error events skipped, '/' in a genre made safe.
 * mpd-playlist and desktop-notify: run against stand-in mpc/notify-send programs on PATH that
 * record their arguments (a real MPD is for the end-to-end test). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hooks.h"

#include "check.h"
static char tmp[256];

static char *slurp(const char *path)
{
    uint8_t *d = NULL;
    size_t n;
    ErrMsg e;
    if (common_read_file(path, &d, &n, &e) != 0) return NULL;
    return (char *)d;
}

static Hooks *hooks_for(const char *script, int max_running)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/contrib/hooks/%s", GENRED_SOURCE_DIR, script);
    const char *argv[] = {path, NULL};
    const char *const *cmds[] = {argv};
    HooksOptions o = {.commands = cmds, .n_commands = 1, .max_running = max_running,
                      .timeout_ms = 20000};
    ErrMsg e;
    Hooks *h = hooks_new(&o, &e);
    if (!h) {
        fprintf(stderr, "hooks_new: %s\n", e.msg);
        exit(1);
    }
    return h;
}

static void submit(Hooks *h, const char *path, const char *genre, enum HooksEvent ev)
{
    HooksResult r = {.path = path, .event = ev, .genre = genre, .confidence = 0.8125,
                     .top = "x:0.812", .previous_genre = "", .model = "0123456789ab"};
    hooks_submit(h, &r);
}

/* Lines of a playlist after the header, each must be in want exactly once and nothing else. */
static void check_playlist(const char *file, const char *const *want, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/pl/%s", tmp, file);
    char *text = slurp(path);
    CHECK(text, "%s missing", file);
    if (!text) return;
    CHECK(strncmp(text, "#EXTM3U\n", 8) == 0, "%s: no header", file);
    size_t lines = 0;
    size_t *seen = calloc(n, sizeof *seen);
    for (char *line = text + 8, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        CHECK(nl, "%s: unterminated line", file);
        if (!nl) break;
        *nl = '\0';
        lines++;
        size_t k = 0;
        while (k < n && strcmp(want[k], line) != 0) k++;
        CHECK(k < n, "%s: unexpected line '%s'", file, line);
        if (k < n) seen[k]++;
    }
    for (size_t k = 0; k < n; k++) CHECK(seen[k] == 1, "%s: '%s' %zu times", file, want[k], seen[k]);
    CHECK(lines == n, "%s: %zu lines, want %zu", file, lines, n);
    free(seen);
    free(text);
}

static void test_m3u(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/pl", tmp);
    setenv("GENRED_M3U_DIR", dir, 1);
    Hooks *h = hooks_for("m3u-playlist", 4);
    const char *rock[] = {"/m/a.mp3", "/m/with space 'q' \"d\" $(touch x) `y`.flac",
                          "/m/\xe9\xff-latin1.ogg", "/m/-n.mp3", "/m/back\\slash *.mp3"};
    const char *jazz[] = {"/m/j1.mp3"};
    const char *rockpop[] = {"/m/rp.mp3"};
    for (int round = 0; round < 2; round++) { /* the second round must add nothing */
        for (size_t i = 0; i < 5; i++) submit(h, rock[i], "Rock", HOOKS_TAGGED);
        submit(h, jazz[0], "Jazz", round ? HOOKS_UNCHANGED : HOOKS_TAGGED);
        submit(h, rockpop[0], "Rock/Pop", HOOKS_TAGGED);
        submit(h, "/m/new\nline.mp3", "Rock", HOOKS_TAGGED);
        submit(h, "/m/broken.mp3", "Rock", HOOKS_ERROR);
        hooks_run_all(h);
    }
    HooksStats st = hooks_stats(h);
    CHECK(st.failed == 0 && st.succeeded == 18, "m3u hook: %lu ok, %lu failed", st.succeeded,
          st.failed);
    check_playlist("Rock.m3u", rock, 5);
    check_playlist("Jazz.m3u", jazz, 1);
    check_playlist("Rock_Pop.m3u", rockpop, 1);
    char p[600];
    snprintf(p, sizeof p, "%s/pl/Rock", tmp);
    CHECK(access(p, F_OK) != 0, "a '/' in the genre made a folder");
    hooks_free(h);
}

static void write_exec(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, 0755);
}

static void test_mpd_and_notify(void)
{
    char bin[512], path[4096], log[600];
    snprintf(bin, sizeof bin, "%s/bin", tmp);
    mkdir(bin, 0755);
    snprintf(log, sizeof log, "%s/calls", tmp);
    setenv("CALLS", log, 1);
    /* Stand-ins: one line per call, arguments separated by '|'. */
    const char *recorder = "#!/bin/sh\n{ printf '%s' \"${0##*/}\"; for a; do printf '|%s' \"$a\"; done;"
                           " printf '\\n'; } >> \"$CALLS\"\n";
    snprintf(path, sizeof path, "%s/mpc", bin);
    write_exec(path, recorder);
    snprintf(path, sizeof path, "%s/notify-send", bin);
    write_exec(path, recorder);
    snprintf(path, sizeof path, "%s:%s", bin, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    setenv("GENRED_MPD_MUSIC_DIR", "/music/", 1);

    Hooks *h = hooks_for("mpd-playlist", 1);
    submit(h, "/music/Rock Band/x 'y' $(z).mp3", "Rock", HOOKS_TAGGED);
    submit(h, "/music/top.mp3", "Hip-Hop", HOOKS_TAGGED);
    submit(h, "/elsewhere/a.mp3", "Rock", HOOKS_TAGGED);
    submit(h, "/music/err.mp3", "Rock", HOOKS_ERROR);
    hooks_run_all(h);
    CHECK(hooks_stats(h).failed == 0, "mpd hook failed");
    hooks_free(h);
    h = hooks_for("desktop-notify", 1);
    submit(h, "/music/Rock Band/x 'y' $(z).mp3", "Rock", HOOKS_TAGGED);
    submit(h, "/music/u.mp3", "Rock", HOOKS_UNCHANGED);
    hooks_run_all(h);
    CHECK(hooks_stats(h).failed == 0, "notify hook failed");
    hooks_free(h);

    char *calls = slurp(log);
    const char *want =
        "mpc|-q|--wait|update|--|Rock Band\n"
        "mpc|-f|%file%|playlist|--|Rock\n"
        "mpc|-q|addplaylist|--|Rock|Rock Band/x 'y' $(z).mp3\n"
        "mpc|-q|--wait|update\n"
        "mpc|-f|%file%|playlist|--|Hip-Hop\n"
        "mpc|-q|addplaylist|--|Hip-Hop|top.mp3\n"
        "notify-send|--app-name=genred|--expire-time=5000|--|Rock (0.812)|x 'y' $(z).mp3\n";
    CHECK(calls && strcmp(calls, want) == 0, "calls:\n%s\nwant:\n%s", calls ? calls : "(none)", want);
    free(calls);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s/genred-contrib-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    if (access("/usr/bin/flock", X_OK) != 0 && access("/bin/flock", X_OK) != 0) {
        printf("skipping: flock(1) (util-linux) is not installed\n");
        return 77;
    }
    if (chdir(tmp) != 0) return 1; /* a stray $(touch x) would land here, where we look */
    test_m3u();
    test_mpd_and_notify();
    CHECK(access("x", F_OK) != 0, "a file name was run as shell code");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (chdir("/") != 0 || system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("contrib hooks: all checks passed\n");
    return 0;
}
