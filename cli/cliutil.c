/* cliutil: see cliutil.h. Single-threaded (called from the command's main thread only). */
#include "cliutil.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "decode.h"

#ifndef GENRED_MODEL_INSTALL_DIR
#define GENRED_MODEL_INSTALL_DIR "/usr/local/share/genred"
#endif
#ifndef GENRED_SOURCE_MODEL_DIR
#define GENRED_SOURCE_MODEL_DIR "models"
#endif

void cli_list_push(CliList *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = xstrdup(s);
}

void cli_list_free(CliList *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

const char *cli_prog = "genred";

const char *cli_option_name(const struct option *opts, int val)
{
    for (const struct option *o = opts; o->name; o++)
        if (o->val == val) return o->name;
    return "?";
}

void cli_file_error(const char *path, const char *reason)
{
    fputs("genred: ", stderr);
    common_put_text(stderr, path);
    fputs(": ", stderr);
    common_put_text(stderr, reason);
    fputc('\n', stderr);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_model_path(const char *opt, char *out, size_t outsz, ErrMsg *e)
{
    if (opt && *opt) {
        snprintf(out, outsz, "%s", opt);
        return 0;
    }
    const char *env = getenv("GENRED_MODEL");
    if (env && *env) {
        snprintf(out, outsz, "%s", env);
        return 0;
    }
    static const char *const dirs[] = {GENRED_MODEL_INSTALL_DIR, GENRED_SOURCE_MODEL_DIR};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(out, outsz, "%s/genred.safetensors", dirs[i]);
        if (is_file(out)) return 0;
    }
    return err_set(e,
                   "no model found; pass --model FILE, set GENRED_MODEL, or install one as "
                   "%s/genred.safetensors",
                   GENRED_MODEL_INSTALL_DIR);
}

NnModel *cli_model_open(const char *opt)
{
    char path[PATH_MAX];
    ErrMsg e = {{0}};
    if (cli_model_path(opt, path, sizeof path, &e) != 0) {
        fprintf(stderr, "genred: %s\n", e.msg);
        return NULL;
    }
    NnModel *m = nn_model_load(path, &e);
    if (!m) cli_file_error(path, e.msg);
    return m;
}

int cli_parse_device(const char *s, int *out)
{
    static const char *const names[] = {"auto", "cpu", "cuda"}; /* enum NnDevice order */
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    fprintf(stderr, "%s: --device wants auto, cpu or cuda, not '%s'\n", cli_prog, s);
    return -1;
}

int cli_scoring_option(CliScoring *s, int ch, const char *arg)
{
    switch (ch) {
    case 'm': s->model = arg; return 1;
    case 'j': return cli_parse_int("--jobs", arg, 1, 1024, &s->jobs) < 0 ? -1 : 1;
    case 'b': return cli_parse_int("--batch", arg, 1, 4096, &s->batch) < 0 ? -1 : 1;
    case 'D': return cli_parse_device(arg, &s->device) < 0 ? -1 : 1;
    default: return 0;
    }
}

int cli_model_device(NnModel *m, int device, int announce)
{
    ErrMsg e = {{0}};
    int got = nn_model_set_device(m, device, &e);
    if (got < 0) {
        fprintf(stderr, "genred: --device cuda: %s\n", e.msg);
        return -1;
    }
    if (!announce) return 0;
    if (got == NN_DEVICE_CPU && device == NN_DEVICE_AUTO)
        fprintf(stderr, "genred: device: cpu (no usable GPU: %s)\n", e.msg);
    else
        fprintf(stderr, "genred: device: %s\n", nn_model_device_name(m));
    return 0;
}

int cli_parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants a whole number from %d to %d, not '%s'\n", cli_prog, opt,
                lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* ---- Folder walking ---- */

typedef struct Visited {
    dev_t *dev;
    ino_t *ino;
    int n, cap;
} Visited;

/* Returns 1 if (dev, ino) was seen before, else records it and returns 0. Linear: a music
 * library has thousands of folders, not millions, and the walk is dwarfed by decoding. */
static int visited_check(Visited *v, dev_t dev, ino_t ino)
{
    for (int i = 0; i < v->n; i++)
        if (v->dev[i] == dev && v->ino[i] == ino) return 1;
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->dev = xrealloc(v->dev, (size_t)v->cap * sizeof *v->dev);
        v->ino = xrealloc(v->ino, (size_t)v->cap * sizeof *v->ino);
    }
    v->dev[v->n] = dev;
    v->ino[v->n] = ino;
    v->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] != '/';
    char *p = xmalloc(a + (size_t)slash + b + 1);
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + (size_t)slash, name, b + 1);
    return p;
}

static int walk(const char *dir, Visited *v, CliList *out)
{
    DIR *d = opendir(dir);
    if (!d) {
        cli_file_error(dir, strerror(errno));
        return 1;
    }
    CliList names = {0};
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) cli_list_push(&names, de->d_name);
    closedir(d);
    if (names.n > 1) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    int errors = 0;
    for (int i = 0; i < names.n; i++) {
        char *p = join(dir, names.v[i]);
        struct stat st;
        if (stat(p, &st) != 0) {
            /* A dangling link is not worth a failure unless it looks like audio. */
            if (decode_is_audio_name(p)) {
                cli_file_error(p, strerror(errno));
                errors++;
            }
        } else if (S_ISDIR(st.st_mode)) {
            if (!visited_check(v, st.st_dev, st.st_ino)) errors += walk(p, v, out);
        } else if (S_ISREG(st.st_mode) && decode_is_audio_name(p)) {
            cli_list_push(out, p);
        }
        free(p);
    }
    cli_list_free(&names);
    return errors;
}

int cli_collect(char *const *paths, int n, CliList *out)
{
    Visited v = {0};
    int errors = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (!visited_check(&v, st.st_dev, st.st_ino)) errors += walk(paths[i], &v, out);
        } else {
            /* Named directly: let the decoder say what is wrong with it, if anything. */
            cli_list_push(out, paths[i]);
        }
    }
    free(v.dev);
    free(v.ino);
    return errors;
}

void cli_json_string(FILE *f, const char *s)
{
    common_put_json_string(f, s);
}

int cli_mkdirs(const char *path, ErrMsg *e)
{
    char *p = xstrdup(path);
    for (char *q = p + 1;; q++) {
        if (*q == '/' || *q == 0) {
            char save = *q;
            *q = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                int err = errno;
                err_set(e, "cannot create %s: %s", p, strerror(err));
                free(p);
                return -1;
            }
            *q = save;
            if (!save) break;
        }
    }
    free(p);
    return 0;
}

State *cli_state_open(const char *config_path, const char *state_path, bool create, char **path,
                      int *rc)
{
    Config c;
    ErrMsg e = {{0}};
    if (config_load(&c, config_path, &e) != 0) {
        fprintf(stderr, "genred: %s\n", e.msg);
        *rc = CLI_USAGE;
        return NULL;
    }
    char *p = xstrdup(state_path ? state_path : c.state_path);
    config_free(&c);
    State *s = state_open(p, create, &e);
    if (!s) {
        fprintf(stderr, "genred: %s: %s\n", p, e.msg);
        free(p);
        *rc = CLI_FAILED;
        return NULL;
    }
    *path = p;
    return s;
}
