/* test_config: defaults, a file setting every key, every kind of error with its line number,
 * the lookup order, flags through config_set, command splitting and a print/load round trip.
 * Runs with HOME and XDG_* pointed into a temp dir. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#include "check.h"
static char tmp[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static char *tpath(const char *rel)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, rel);
    return buf[k];
}

static void test_defaults(void)
{
    Config c;
    ErrMsg e;
    CHECK(config_defaults(&c, &e) == 0, "%s", e.msg);
    CHECK(c.libraries.n == 1 && strcmp(c.libraries.items[0], tpath("Music")) == 0, "libraries %s",
          c.libraries.items[0]);
    CHECK(strcmp(c.model, "") == 0 && c.device == CONFIG_DEVICE_AUTO, "model/device");
    CHECK(c.batch_max_tracks == 16 && c.batch_max_wait_ms == 500 && c.debounce_ms == 2000 &&
              c.jobs == 0,
          "numbers");
    CHECK(!c.tag_force && c.tag_min_confidence == 0.0, "tag");
    CHECK(strcmp(c.hooks_dir, tpath(".config/genred/hooks.d")) == 0, "hooks.dir %s", c.hooks_dir);
    CHECK(c.hooks_commands.n == 0 && c.hooks_timeout_s == 30 && c.hooks_max_running == 2, "hooks");
    CHECK(strcmp(c.state_path, tpath(".local/state/genred/state.db")) == 0, "state %s",
          c.state_path);
    CHECK(c.log_level == LOG_INFO && c.source == NULL, "log");
    config_free(&c);

    setenv("XDG_STATE_HOME", "/var/xdg-state", 1);
    setenv("XDG_CONFIG_HOME", "relative/ignored", 1); /* not absolute: the spec says ignore it */
    config_defaults(&c, &e);
    CHECK(strcmp(c.state_path, "/var/xdg-state/genred/state.db") == 0, "XDG_STATE_HOME: %s",
          c.state_path);
    CHECK(strcmp(c.hooks_dir, tpath(".config/genred/hooks.d")) == 0, "relative XDG: %s",
          c.hooks_dir);
    config_free(&c);
    unsetenv("XDG_STATE_HOME");
    unsetenv("XDG_CONFIG_HOME");
}

static void test_full_file(void)
{
    setenv("XDG_DATA_HOME", "/data", 1);
    const char *text =
        "# every key\n"
        "libraries = [ \"~/a\", \"$XDG_DATA_HOME/music\", \"/srv/My Music\" ];\n"
        "model = \"${HOME}/models/fcn.safetensors\";\n"
        "device = \"cuda\";\n"
        "batch = { max_tracks = 64; max_wait_ms = 250; };\n"
        "debounce_ms = 1500;\n"
        "jobs = 3;\n"
        "tag: { force = true; min_confidence = 0.35; };\n"
        "hooks = {\n"
        "  dir = \"/etc/genred/hooks.d\";\n"
        "  commands = ( [ \"mpc\", \"add\" ], \"notify-send 'genred tagged' -t 500\" );\n"
        "  timeout_s = 2;\n"
        "  max_running = 4;\n"
        "};\n"
        "state = { path = \"/var/lib/genred/state.db\"; };\n"
        "log = { level = \"debug\"; };\n";
    write_file(tpath("full.conf"), text);
    Config c;
    ErrMsg e;
    config_defaults(&c, &e);
    CHECK(config_load_file(&c, tpath("full.conf"), &e) == 0, "%s", e.msg);
    CHECK(c.libraries.n == 3 && strcmp(c.libraries.items[0], tpath("a")) == 0 &&
              strcmp(c.libraries.items[1], "/data/music") == 0 &&
              strcmp(c.libraries.items[2], "/srv/My Music") == 0,
          "libraries");
    CHECK(strcmp(c.model, tpath("models/fcn.safetensors")) == 0, "model %s", c.model);
    CHECK(c.device == CONFIG_DEVICE_CUDA && c.batch_max_tracks == 64 && c.batch_max_wait_ms == 250 &&
              c.debounce_ms == 1500 && c.jobs == 3,
          "scalars");
    CHECK(c.tag_force && c.tag_min_confidence == 0.35, "tag");
    CHECK(strcmp(c.hooks_dir, "/etc/genred/hooks.d") == 0 && c.hooks_timeout_s == 2.0 &&
              c.hooks_max_running == 4,
          "hooks");
    CHECK(c.hooks_commands.n == 2, "commands %zu", c.hooks_commands.n);
    if (c.hooks_commands.n == 2) {
        char **a = c.hooks_commands.argv[0], **b = c.hooks_commands.argv[1];
        CHECK(strcmp(a[0], "mpc") == 0 && strcmp(a[1], "add") == 0 && !a[2], "command 1");
        CHECK(strcmp(b[0], "notify-send") == 0 && strcmp(b[1], "genred tagged") == 0 &&
                  strcmp(b[2], "-t") == 0 && strcmp(b[3], "500") == 0 && !b[4],
              "command 2");
    }
    CHECK(strcmp(c.state_path, "/var/lib/genred/state.db") == 0 && c.log_level == LOG_DEBUG,
          "state/log");
    CHECK(c.source && strcmp(c.source, tpath("full.conf")) == 0, "source");

    /* print -> load gives the same settings */
    FILE *f = fopen(tpath("printed.conf"), "w");
    config_print(&c, f);
    fclose(f);
    Config d;
    config_defaults(&d, &e);
    CHECK(config_load_file(&d, tpath("printed.conf"), &e) == 0, "reload printed: %s", e.msg);
    char *p1 = NULL, *p2 = NULL;
    size_t n1, n2;
    FILE *m1 = open_memstream(&p1, &n1), *m2 = open_memstream(&p2, &n2);
    config_print(&c, m1);
    config_print(&d, m2);
    fclose(m1);
    fclose(m2);
    CHECK(strcmp(p1, p2) == 0, "round trip differs:\n%s\n---\n%s", p1, p2);
    free(p1);
    free(p2);
    config_free(&d);
    config_free(&c);
}

/* Loads text over a Config with batch.max_tracks = 7 and expects failure naming file:line and
 * containing want; the Config must be left as it was. */
static void expect_error(const char *text, int line, const char *want)
{
    write_file(tpath("bad.conf"), text);
    Config c;
    ErrMsg e;
    config_defaults(&c, &e);
    c.batch_max_tracks = 7;
    int rc = config_load_file(&c, tpath("bad.conf"), &e);
    char loc[600];
    snprintf(loc, sizeof loc, "%s:%d: ", tpath("bad.conf"), line);
    CHECK(rc == -1, "accepted: %s", text);
    if (rc == -1)
        CHECK(strncmp(e.msg, loc, strlen(loc)) == 0 && strstr(e.msg, want),
              "message '%s' lacks '%s' or '%s'", e.msg, loc, want);
    CHECK(c.batch_max_tracks == 7 && c.source == NULL, "failed load changed the config");
    config_free(&c);
}

static void test_errors(void)
{
    expect_error("jobs = 1;\n\nfoo = 1;\n", 3, "unknown setting 'foo'");
    expect_error("batch = {\n  max_tracks = 8;\n  max_trakcs = 9;\n};\n", 3,
                 "unknown setting 'batch.max_trakcs'");
    expect_error("nothing = { x = 1; };\n", 1, "unknown setting 'nothing'");
    expect_error("batch = { max_tracks = \"16\"; };\n", 1, "batch.max_tracks: expected an integer");
    expect_error("\nbatch = { max_tracks = 0; };\n", 2, "must be between 1 and 1024");
    expect_error("jobs = 2.5;\n", 1, "jobs: expected an integer");
    expect_error("tag = {\n min_confidence = 1.5;\n};\n", 2, "tag.min_confidence: must be between");
    expect_error("tag = { force = 1; };\n", 1, "tag.force: expected true or false");
    expect_error("device = \"tpu\";\n", 1, "'tpu' is not one of auto, cpu, cuda");
    expect_error("log = { level = \"loud\"; };\n", 1, "log.level: 'loud' is not one of");
    expect_error("batch = 3;\n", 1, "batch: expected a group");
    expect_error("model = { x = 1; };\n", 1, "model: expected a string, not a group");
    expect_error("jobs = 1;\njobs = 2;\n", 2, "duplicate");
    expect_error("jobs = 1;\ndevice = \"cpu\";\nmodel = ;\n", 3, "syntax error");
    expect_error("hooks = {\n commands = ( \"ok\",\n \"bad 'quote\" );\n};\n", 2,
                 "hooks.commands: command 2: unterminated quote");
    expect_error("hooks = { commands = ( [ ] ); };\n", 1, "command 1: expected a string or a non-empty");
    expect_error("libraries = [ 1, 2 ];\n", 1, "libraries: item 1: expected a string");
    expect_error("\n\nstate = { path = \"$NOPE/x.db\"; };\n", 3, "cannot expand $NOPE");
    expect_error("hooks = { timeout_s = 0; };\n", 1, "hooks.timeout_s: must be between 0.1");

    Config c;
    ErrMsg e;
    config_defaults(&c, &e);
    CHECK(config_load_file(&c, tpath("missing.conf"), &e) == -1 && strstr(e.msg, "missing.conf") &&
              strstr(e.msg, "No such file"),
          "missing file: %s", e.msg);
    config_free(&c);
}

static void test_locate(void)
{
    char xdg[512];
    snprintf(xdg, sizeof xdg, "%s/xdg", tmp);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    const char *sys = tpath("etc-genred.conf");
    char *p = config_locate(NULL, sys);
    CHECK(p == NULL, "found %s with nothing there", p);
    free(p);
    write_file(sys, "jobs = 5;\n");
    p = config_locate(NULL, sys);
    CHECK(p && strcmp(p, sys) == 0, "system file: %s", p ? p : "none");
    free(p);
    mkdir(xdg, 0755);
    mkdir(tpath("xdg/genred"), 0755);
    write_file(tpath("xdg/genred/genred.conf"), "jobs = 6;\n");
    p = config_locate(NULL, sys);
    CHECK(p && strcmp(p, tpath("xdg/genred/genred.conf")) == 0, "user file: %s", p ? p : "none");
    free(p);
    p = config_locate(tpath("explicit.conf"), sys);
    CHECK(p && strcmp(p, tpath("explicit.conf")) == 0, "explicit");
    free(p);

    Config c;
    ErrMsg e;
    CHECK(config_load(&c, NULL, &e) == 0 && c.jobs == 6, "load user file: %s", e.msg);
    config_free(&c);
    write_file(tpath("explicit.conf"), "jobs = 9;\n");
    CHECK(config_load(&c, tpath("explicit.conf"), &e) == 0 && c.jobs == 9, "load explicit");
    config_free(&c);
    memset(&c, 0, sizeof c);
    CHECK(config_load(&c, tpath("no-such.conf"), &e) == -1 && c.model == NULL,
          "missing explicit file loaded");
    unsetenv("XDG_CONFIG_HOME");
}

static void test_set_and_split(void)
{
    Config c;
    ErrMsg e;
    config_defaults(&c, &e);
    CHECK(config_set(&c, "batch.max_tracks", "32", &e) == 0 && c.batch_max_tracks == 32, "set int");
    CHECK(config_set(&c, "batch.max_tracks", "2000", &e) == -1 &&
              strstr(e.msg, "batch.max_tracks: must be between") && c.batch_max_tracks == 32,
          "bounds: %s", e.msg);
    CHECK(config_set(&c, "jobs", "two", &e) == -1 && strstr(e.msg, "not an integer"), "%s", e.msg);
    CHECK(config_set(&c, "tag.force", "yes", &e) == 0 && c.tag_force, "bool");
    CHECK(config_set(&c, "tag.force", "maybe", &e) == -1, "bad bool");
    CHECK(config_set(&c, "device", "cpu", &e) == 0 && c.device == CONFIG_DEVICE_CPU, "device");
    CHECK(config_set(&c, "log.level", "warning", &e) == 0 && c.log_level == LOG_WARN, "level");
    CHECK(config_set(&c, "libraries", "~/x", &e) == 0 && c.libraries.n == 1 &&
              strcmp(c.libraries.items[0], tpath("x")) == 0,
          "libraries");
    CHECK(config_set(&c, "hooks.commands", "mpc -q add", &e) == 0 && c.hooks_commands.n == 1 &&
              strcmp(c.hooks_commands.argv[0][2], "add") == 0,
          "commands");
    CHECK(config_set(&c, "nope", "1", &e) == -1 && strstr(e.msg, "unknown setting 'nope'"), "unknown");
    config_free(&c);

    char **v = config_split_command("  a 'b c'\t\"d \\\"e\\\\\" f\\ g 'x'\"y\"z ''  ", &e);
    const char *want[] = {"a", "b c", "d \"e\\", "f g", "xyz", "", NULL};
    int ok = v != NULL;
    for (int i = 0; ok && want[i]; i++) ok = v[i] && strcmp(v[i], want[i]) == 0;
    CHECK(ok && v[6] == NULL, "split");
    for (int i = 0; v && v[i]; i++) free(v[i]);
    free(v);
    v = config_split_command("echo $(rm -rf /) `x` ;|&", &e);
    CHECK(v && strcmp(v[1], "$(rm") == 0 && strcmp(v[5], ";|&") == 0 && !v[6], "no shell syntax");
    for (int i = 0; v && v[i]; i++) free(v[i]);
    free(v);
    CHECK(config_split_command("   ", &e) == NULL && strstr(e.msg, "empty"), "empty");
    CHECK(config_split_command("a \"b", &e) == NULL && strstr(e.msg, "unterminated"), "quote");

    CHECK(config_count() >= 15, "table size");
    int seen = 0;
    for (size_t i = 0; i < config_count(); i++) {
        ConfigInfo in = config_info(i);
        seen += in.name && in.type && in.default_value && in.help;
    }
    CHECK(seen == (int)config_count(), "info incomplete");
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s/genred-config-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("HOME", tmp, 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("XDG_STATE_HOME");
    unsetenv("XDG_DATA_HOME");
    test_defaults();
    test_full_file();
    test_errors();
    test_locate();
    test_set_and_split();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("config: all checks passed\n");
    return 0;
}
