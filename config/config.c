/* config: see config.h.
 * Every setting is one row of `table`: its name, kind, place in Config, default (as text, fed
 * through the same parser as a flag) and bounds. The two front ends (libconfig nodes, flag
 * text) turn a value into a kind-typed store_* call, which is where bounds are checked.
 * Loads work on a deep copy and swap it in on success, so a bad file changes nothing. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum Kind { K_INT, K_FLOAT, K_BOOL, K_PATH, K_PATHS, K_COMMANDS, K_DEVICE, K_LOGLEVEL, K_STRING };

typedef struct Setting {
    const char *name;
    enum Kind kind;
    size_t off;
    const char *def;
    double min, max;
    const char *help;
} Setting;

#define AT(field) offsetof(Config, field)
static const Setting table[] = {
    {"libraries", K_PATHS, AT(libraries), "~/Music", 0, 0,
     "folders watched (recursively) and scanned for audio files"},
    {"model", K_PATH, AT(model), "", 0, 0, "model file (.safetensors); empty: the installed one"},
    {"device", K_DEVICE, AT(device), "auto", 0, 0, "where the CNN runs: auto, cpu or cuda"},
    {"batch.max_tracks", K_INT, AT(batch_max_tracks), "16", 1, 1024,
     "most tracks scored in one batch"},
    {"batch.max_wait_ms", K_INT, AT(batch_max_wait_ms), "500", 0, 600000,
     "longest a ready track waits for its batch to fill"},
    {"debounce_ms", K_INT, AT(debounce_ms), "2000", 0, 600000,
     "a file must be quiet this long before it is read"},
    {"jobs", K_INT, AT(jobs), "0", 0, 256, "decoding threads; 0: one per CPU"},
    {"tag.force", K_BOOL, AT(tag_force), "false", 0, 0, "overwrite genres set by hand"},
    {"tag.min_confidence", K_FLOAT, AT(tag_min_confidence), "0", 0, 1,
     "write no genre when the top probability is below this"},
    {"hooks.dir", K_PATH, AT(hooks_dir), "$XDG_CONFIG_HOME/genred/hooks.d", 0, 0,
     "executables run (in name order) for every result"},
    {"hooks.commands", K_COMMANDS, AT(hooks_commands), "", 0, 0,
     "more commands run for every result, the track path appended"},
    {"hooks.timeout_s", K_FLOAT, AT(hooks_timeout_s), "30", 0.1, 86400,
     "a hook running longer gets SIGTERM, then SIGKILL"},
    {"hooks.max_running", K_INT, AT(hooks_max_running), "2", 1, 64, "hooks running at once"},
    {"state.path", K_PATH, AT(state_path), "$XDG_STATE_HOME/genred/state.db", 0, 0,
     "the state database (SQLite)"},
    {"log.level", K_LOGLEVEL, AT(log_level), "info", 0, 0, "error, warn, info or debug"},
    {"web.listen", K_STRING, AT(web_listen), "", 0, 0,
     "HOST:PORT of the web page (genred serve: 127.0.0.1:7710 when empty; the daemon serves "
     "the page only when set)"},
    {"web.token", K_STRING, AT(web_token), "", 0, 0,
     "every web request must carry it when set; required to listen beyond loopback"},
    {"web.max_upload_mb", K_INT, AT(web_max_upload_mb), "50", 1, 4096,
     "larger uploads get 413 (Payload Too Large)"},
    {"web.max_jobs", K_INT, AT(web_max_jobs), "2", 1, 64,
     "classifications of uploads at once; more get 503 with Retry-After"},
};
#undef AT
#define N_SETTINGS (sizeof table / sizeof table[0])

static const char *const device_names[] = {"auto", "cpu", "cuda"};
static const char *const level_names[] = {"error", "warn", "info", "debug"};

#define FIELD(c, st, type) ((type *)((char *)(c) + (st)->off))

/* ---- strings ---- */

typedef struct Buf {
    char *s;
    size_t len, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h) return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : "/";
}

/* XDG base directories: a relative or empty value is invalid by the spec and ignored. */
static int xdg_dir(const char *name, Buf *out)
{
    static const struct {
        const char *name, *def;
    } xdg[] = {{"XDG_CONFIG_HOME", "/.config"}, {"XDG_STATE_HOME", "/.local/state"},
               {"XDG_DATA_HOME", "/.local/share"}, {"XDG_CACHE_HOME", "/.cache"},
               {"XDG_RUNTIME_DIR", NULL}, {"HOME", ""}};
    for (size_t i = 0; i < sizeof xdg / sizeof xdg[0]; i++) {
        if (strcmp(name, xdg[i].name) != 0) continue;
        const char *v = getenv(name);
        if (v && v[0] == '/') {
            buf_add(out, v, strlen(v));
            return 0;
        }
        if (i == 5) {
            buf_add(out, home_dir(), strlen(home_dir()));
            return 0;
        }
        if (!xdg[i].def) return -1;
        buf_add(out, home_dir(), strlen(home_dir()));
        buf_add(out, xdg[i].def, strlen(xdg[i].def));
        return 0;
    }
    return -1;
}

static char *expand_path(const char *in, ErrMsg *e)
{
    Buf b = {0};
    buf_add(&b, "", 0);
    const char *p = in;
    if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
        buf_add(&b, home_dir(), strlen(home_dir()));
        p++;
    }
    while (*p) {
        if (*p != '$') {
            buf_add(&b, p++, 1);
            continue;
        }
        bool brace = p[1] == '{';
        const char *n = p + 1 + brace;
        size_t len = 0;
        while (isalnum((unsigned char)n[len]) || n[len] == '_') len++;
        if (len == 0 || (brace && n[len] != '}')) {
            free(b.s);
            err_set(e, "bad variable reference in '%s'", in);
            return NULL;
        }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), n);
        if (xdg_dir(name, &b) != 0) {
            free(b.s);
            err_set(e, "cannot expand $%s in '%s' (only $HOME and the set $XDG_* directories are)",
                    name, in);
            return NULL;
        }
        p = n + len + brace;
    }
    return b.s;
}

char **config_split_command(const char *s, ErrMsg *e)
{
    char **argv = xcalloc(1, sizeof *argv);
    size_t n = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        Buf w = {0};
        buf_add(&w, "", 0);
        while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
            if (*p == '\'') {
                const char *q = strchr(p + 1, '\'');
                if (!q) goto unterminated;
                buf_add(&w, p + 1, (size_t)(q - p - 1));
                p = q + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
                    buf_add(&w, p++, 1);
                }
                if (*p != '"') goto unterminated;
                p++;
            } else if (*p == '\\' && p[1]) {
                buf_add(&w, p + 1, 1);
                p += 2;
            } else {
                buf_add(&w, p++, 1);
            }
            continue;
        unterminated:
            free(w.s);
            for (size_t i = 0; i < n; i++) free(argv[i]);
            free(argv);
            err_set(e, "unterminated quote in command '%s'", s);
            return NULL;
        }
        argv = xrealloc(argv, (n + 2) * sizeof *argv);
        argv[n++] = w.s;
        argv[n] = NULL;
    }
    if (n == 0) {
        free(argv);
        err_set(e, "empty command");
        return NULL;
    }
    return argv;
}

static void strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

static char **strv_dup(char *const *v)
{
    size_t n = 0;
    while (v[n]) n++;
    char **out = xcalloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++) out[i] = xstrdup(v[i]);
    return out;
}

/* ---- per-kind storage ---- */

static void free_field(Config *c, const Setting *st)
{
    switch (st->kind) {
    case K_PATH:
    case K_STRING:
        free(*FIELD(c, st, char *));
        *FIELD(c, st, char *) = NULL;
        break;
    case K_PATHS: {
        ConfigStrings *l = FIELD(c, st, ConfigStrings);
        for (size_t i = 0; i < l->n; i++) free(l->items[i]);
        free(l->items);
        *l = (ConfigStrings){0};
        break;
    }
    case K_COMMANDS: {
        ConfigCommands *l = FIELD(c, st, ConfigCommands);
        for (size_t i = 0; i < l->n; i++) strv_free(l->argv[i]);
        free(l->argv);
        *l = (ConfigCommands){0};
        break;
    }
    default:
        break;
    }
}

static void copy_field(Config *dst, const Config *src, const Setting *st)
{
    switch (st->kind) {
    case K_PATH:
    case K_STRING: {
        const char *s = *FIELD(src, st, char *);
        *FIELD(dst, st, char *) = s ? xstrdup(s) : NULL;
        break;
    }
    case K_PATHS: {
        const ConfigStrings *a = FIELD(src, st, ConfigStrings);
        ConfigStrings *b = FIELD(dst, st, ConfigStrings);
        b->n = a->n;
        b->items = xcalloc(a->n ? a->n : 1, sizeof *b->items);
        for (size_t i = 0; i < a->n; i++) b->items[i] = xstrdup(a->items[i]);
        break;
    }
    case K_COMMANDS: {
        const ConfigCommands *a = FIELD(src, st, ConfigCommands);
        ConfigCommands *b = FIELD(dst, st, ConfigCommands);
        b->n = a->n;
        b->argv = xcalloc(a->n ? a->n : 1, sizeof *b->argv);
        for (size_t i = 0; i < a->n; i++) b->argv[i] = strv_dup(a->argv[i]);
        break;
    }
    default:
        break; /* scalars came with the struct copy */
    }
}

static Config config_copy(const Config *c)
{
    Config d = *c;
    for (size_t i = 0; i < N_SETTINGS; i++) copy_field(&d, c, &table[i]);
    d.source = c->source ? xstrdup(c->source) : NULL;
    return d;
}

void config_free(Config *c)
{
    if (!c) return;
    for (size_t i = 0; i < N_SETTINGS; i++) free_field(c, &table[i]);
    free(c->source);
    c->source = NULL;
}

static int store_number(Config *c, const Setting *st, double v, ErrMsg *e)
{
    if (st->kind == K_INT) {
        if (v != floor(v)) return err_set(e, "expected an integer");
        if (v < st->min || v > st->max)
            return err_set(e, "must be between %g and %g, not %g", st->min, st->max, v);
        *FIELD(c, st, int) = (int)v;
        return 0;
    }
    if (!isfinite(v) || v < st->min || v > st->max)
        return err_set(e, "must be between %g and %g, not %g", st->min, st->max, v);
    *FIELD(c, st, double) = v;
    return 0;
}

static int pick(const char *const *names, int n, const char *s, const char *what, ErrMsg *e)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return err_set(e, "'%s' is not one of %s", s, what);
}

/* One string for a string-ish kind; for the list kinds, a list of just this one. */
static int store_string(Config *c, const Setting *st, const char *s, ErrMsg *e)
{
    switch (st->kind) {
    case K_PATH: {
        char *p = expand_path(s, e);
        if (!p) return -1;
        free_field(c, st);
        *FIELD(c, st, char *) = p;
        return 0;
    }
    case K_STRING: /* taken as it is: a token may hold '$' and '~' */
        free_field(c, st);
        *FIELD(c, st, char *) = xstrdup(s);
        return 0;
    case K_PATHS: {
        char *p = expand_path(s, e);
        if (!p) return -1;
        free_field(c, st);
        ConfigStrings *l = FIELD(c, st, ConfigStrings);
        l->items = xcalloc(1, sizeof *l->items);
        l->items[0] = p;
        l->n = 1;
        return 0;
    }
    case K_COMMANDS: {
        free_field(c, st);
        if (!*s) return 0; /* the default: none */
        char **argv = config_split_command(s, e);
        if (!argv) return -1;
        ConfigCommands *l = FIELD(c, st, ConfigCommands);
        l->argv = xcalloc(1, sizeof *l->argv);
        l->argv[0] = argv;
        l->n = 1;
        return 0;
    }
    case K_DEVICE: {
        int v = pick(device_names, 3, s, "auto, cpu, cuda", e);
        if (v < 0) return -1;
        *FIELD(c, st, int) = v;
        return 0;
    }
    case K_LOGLEVEL: {
        int v = strcmp(s, "warning") == 0 ? LOG_WARN
                                           : pick(level_names, 4, s, "error, warn, info, debug", e);
        if (v < 0) return -1;
        *FIELD(c, st, int) = v;
        return 0;
    }
    default:
        return err_set(e, "expected %s, not a string",
                       st->kind == K_BOOL ? "true or false" : "a number");
    }
}

static int parse_text(Config *c, const Setting *st, const char *value, ErrMsg *e)
{
    if (st->kind == K_INT || st->kind == K_FLOAT) {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (end == value || *end || errno)
            return err_set(e, "'%s' is not %s", value, st->kind == K_INT ? "an integer" : "a number");
        return store_number(c, st, v, e);
    }
    if (st->kind == K_BOOL) {
        static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                    "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(value, yes[i]) == 0 || strcasecmp(value, no[i]) == 0) {
                *FIELD(c, st, bool) = strcasecmp(value, yes[i]) == 0;
                return 0;
            }
        }
        return err_set(e, "'%s' is not true or false", value);
    }
    return store_string(c, st, value, e);
}

static const Setting *find(const char *name)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(table[i].name, name) == 0) return &table[i];
    return NULL;
}

static bool is_group(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strncmp(table[i].name, name, n) == 0 && table[i].name[n] == '.') return true;
    return false;
}

int config_defaults(Config *c, ErrMsg *e)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        ErrMsg why;
        if (parse_text(c, &table[i], table[i].def, &why) != 0) {
            config_free(c);
            return err_set(e, "default of %s: %s", table[i].name, why.msg);
        }
    }
    return 0;
}

int config_set(Config *c, const char *name, const char *value, ErrMsg *e)
{
    const Setting *st = find(name);
    if (!st) return err_set(e, "unknown setting '%s'", name);
    ErrMsg why;
    Config tmp = config_copy(c);
    if (parse_text(&tmp, st, value, &why) != 0) {
        config_free(&tmp);
        return err_set(e, "%s: %s", name, why.msg);
    }
    config_free(c);
    *c = tmp;
    return 0;
}

/* ---- libconfig front end ---- */

static const char *type_word(enum Kind k)
{
    switch (k) {
    case K_INT:
        return "an integer";
    case K_FLOAT:
        return "a number";
    case K_BOOL:
        return "true or false";
    case K_PATHS:
        return "a string or a list of strings";
    case K_COMMANDS:
        return "a list of commands (strings or lists of strings)";
    default:
        return "a string";
    }
}

static bool is_aggregate(const config_setting_t *n)
{
    return config_setting_type(n) == CONFIG_TYPE_ARRAY || config_setting_type(n) == CONFIG_TYPE_LIST;
}

static int apply_node(Config *c, const Setting *st, const config_setting_t *n, ErrMsg *e)
{
    int t = config_setting_type(n);
    switch (st->kind) {
    case K_INT:
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) break;
        return store_number(c, st, (double)config_setting_get_int64(n), e);
    case K_FLOAT:
        if (t == CONFIG_TYPE_FLOAT) return store_number(c, st, config_setting_get_float(n), e);
        if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
            return store_number(c, st, (double)config_setting_get_int64(n), e);
        break;
    case K_BOOL:
        if (t != CONFIG_TYPE_BOOL) break;
        *FIELD(c, st, bool) = config_setting_get_bool(n) != 0;
        return 0;
    case K_PATHS:
        if (t == CONFIG_TYPE_STRING) return store_string(c, st, config_setting_get_string(n), e);
        if (!is_aggregate(n)) break;
        {
            ConfigStrings l = {0};
            int len = config_setting_length(n);
            l.items = xcalloc(len ? (size_t)len : 1, sizeof *l.items);
            for (int i = 0; i < len; i++) {
                const config_setting_t *el = config_setting_get_elem(n, (unsigned)i);
                const char *s = config_setting_get_string(el);
                char *p = s ? expand_path(s, e) : NULL;
                if (!s) err_set(e, "item %d: expected a string", i + 1);
                if (!p) {
                    for (size_t k = 0; k < l.n; k++) free(l.items[k]);
                    free(l.items);
                    return -1;
                }
                l.items[l.n++] = p;
            }
            free_field(c, st);
            *FIELD(c, st, ConfigStrings) = l;
            return 0;
        }
    case K_COMMANDS:
        if (t == CONFIG_TYPE_STRING) return store_string(c, st, config_setting_get_string(n), e);
        if (!is_aggregate(n)) break;
        {
            ConfigCommands l = {0};
            int len = config_setting_length(n);
            l.argv = xcalloc(len ? (size_t)len : 1, sizeof *l.argv);
            for (int i = 0; i < len; i++) {
                const config_setting_t *el = config_setting_get_elem(n, (unsigned)i);
                char **argv = NULL;
                ErrMsg why;
                if (config_setting_type(el) == CONFIG_TYPE_STRING) {
                    argv = config_split_command(config_setting_get_string(el), &why);
                } else if (is_aggregate(el) && config_setting_length(el) > 0) {
                    int m = config_setting_length(el);
                    argv = xcalloc((size_t)m + 1, sizeof *argv);
                    for (int k = 0; k < m; k++) {
                        const char *s = config_setting_get_string_elem(el, k);
                        if (!s) {
                            strv_free(argv);
                            argv = NULL;
                            err_set(&why, "word %d is not a string", k + 1);
                            break;
                        }
                        argv[k] = xstrdup(s);
                    }
                } else {
                    err_set(&why, "expected a string or a non-empty list of strings");
                }
                if (!argv) {
                    for (size_t k = 0; k < l.n; k++) strv_free(l.argv[k]);
                    free(l.argv);
                    return err_set(e, "command %d: %s", i + 1, why.msg);
                }
                l.argv[l.n++] = argv;
            }
            free_field(c, st);
            *FIELD(c, st, ConfigCommands) = l;
            return 0;
        }
    default:
        if (t == CONFIG_TYPE_STRING) return store_string(c, st, config_setting_get_string(n), e);
        break;
    }
    return err_set(e, "expected %s", type_word(st->kind));
}

static int walk(Config *c, const config_setting_t *g, const char *prefix, const char *file,
                ErrMsg *e)
{
    int len = config_setting_length(g);
    for (int i = 0; i < len; i++) {
        const config_setting_t *n = config_setting_get_elem(g, (unsigned)i);
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", config_setting_name(n));
        const char *f = config_setting_source_file(n) ? config_setting_source_file(n) : file;
        int line = (int)config_setting_source_line(n);
        const Setting *st = find(name);
        ErrMsg why;
        if (config_setting_is_group(n)) {
            if (st) return err_set(e, "%s:%d: %s: expected %s, not a group", f, line, name,
                                   type_word(st->kind));
            if (!is_group(name)) return err_set(e, "%s:%d: unknown setting '%s'", f, line, name);
            if (walk(c, n, name, file, e) != 0) return -1;
            continue;
        }
        if (!st) {
            if (is_group(name))
                return err_set(e, "%s:%d: %s: expected a group { ... }", f, line, name);
            return err_set(e, "%s:%d: unknown setting '%s'", f, line, name);
        }
        if (apply_node(c, st, n, &why) != 0)
            return err_set(e, "%s:%d: %s: %s", f, line, name, why.msg);
    }
    return 0;
}

int config_load_file(Config *c, const char *path, ErrMsg *e)
{
    config_t cf;
    config_init(&cf);
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        config_set_include_dir(&cf, *dir ? dir : "/");
    }
    free(dir);
    int rc = -1;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        err_set(e, "%s: cannot read it: %s", path, strerror(errno));
        goto out;
    }
    int ok = config_read(&cf, fp);
    fclose(fp);
    if (ok != CONFIG_TRUE) {
        err_set(e, "%s:%d: %s", config_error_file(&cf) ? config_error_file(&cf) : path,
                config_error_line(&cf), config_error_text(&cf));
        goto out;
    }
    Config tmp = config_copy(c);
    if (walk(&tmp, config_root_setting(&cf), "", path, e) != 0) {
        config_free(&tmp);
        goto out;
    }
    free(tmp.source);
    tmp.source = xstrdup(path);
    config_free(c);
    *c = tmp;
    rc = 0;
out:
    config_destroy(&cf);
    return rc;
}

char *config_locate(const char *explicit_path, const char *system_path)
{
    if (explicit_path) return xstrdup(explicit_path);
    char *user = expand_path("$XDG_CONFIG_HOME/genred/genred.conf", NULL);
    if (user && access(user, F_OK) == 0) return user;
    free(user);
    const char *sys = system_path ? system_path : "/etc/genred.conf";
    return access(sys, F_OK) == 0 ? xstrdup(sys) : NULL;
}

int config_load(Config *c, const char *explicit_path, ErrMsg *e)
{
    Config tmp;
    if (config_defaults(&tmp, e) != 0) return -1;
    char *path = config_locate(explicit_path, NULL);
    if (path && config_load_file(&tmp, path, e) != 0) {
        free(path);
        config_free(&tmp);
        return -1;
    }
    free(path);
    *c = tmp;
    return 0;
}

/* ---- the table, outward ---- */

size_t config_count(void)
{
    return N_SETTINGS;
}

ConfigInfo config_info(size_t i)
{
    static const char *const kinds[] = {"integer", "number", "boolean", "path", "paths",
                                        "commands", "auto|cpu|cuda", "error|warn|info|debug",
                                        "string"};
    if (i >= N_SETTINGS) return (ConfigInfo){0};
    return (ConfigInfo){table[i].name, kinds[table[i].kind], table[i].def, table[i].help};
}

static void print_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void config_print(const Config *c, FILE *f)
{
    char group[64] = "";
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const Setting *st = &table[i];
        const char *dot = strchr(st->name, '.');
        size_t glen = dot ? (size_t)(dot - st->name) : 0;
        if (group[0] && (glen != strlen(group) || strncmp(group, st->name, glen) != 0)) {
            fprintf(f, "};\n");
            group[0] = '\0';
        }
        if (dot && !group[0]) {
            snprintf(group, sizeof group, "%.*s", (int)glen, st->name);
            fprintf(f, "%s = {\n", group);
        }
        fprintf(f, "%s%s = ", group[0] ? "  " : "", dot ? dot + 1 : st->name);
        switch (st->kind) {
        case K_INT:
            fprintf(f, "%d", *FIELD(c, st, int));
            break;
        case K_FLOAT:
            fprintf(f, "%.17g", *FIELD(c, st, double));
            break;
        case K_BOOL:
            fprintf(f, "%s", *FIELD(c, st, bool) ? "true" : "false");
            break;
        case K_PATH:
        case K_STRING:
            print_string(f, *FIELD(c, st, char *) ? *FIELD(c, st, char *) : "");
            break;
        case K_PATHS: {
            const ConfigStrings *l = FIELD(c, st, ConfigStrings);
            fprintf(f, "[");
            for (size_t k = 0; k < l->n; k++) {
                fprintf(f, "%s", k ? ", " : " ");
                print_string(f, l->items[k]);
            }
            fprintf(f, " ]");
            break;
        }
        case K_COMMANDS: {
            const ConfigCommands *l = FIELD(c, st, ConfigCommands);
            fprintf(f, "(");
            for (size_t k = 0; k < l->n; k++) {
                fprintf(f, "%s[", k ? ", " : " ");
                for (char **w = l->argv[k]; *w; w++) {
                    if (w != l->argv[k]) fprintf(f, ", ");
                    print_string(f, *w);
                }
                fprintf(f, "]");
            }
            fprintf(f, " )");
            break;
        }
        case K_DEVICE:
            fprintf(f, "\"%s\"", device_names[*FIELD(c, st, int)]);
            break;
        case K_LOGLEVEL:
            fprintf(f, "\"%s\"", level_names[*FIELD(c, st, int)]);
            break;
        }
        fprintf(f, ";\n");
    }
    if (group[0]) fprintf(f, "};\n");
}
