/* model: the NnModel object, its architectures' tensor tables, and the safetensors file
 * (DESIGN.md §4-§5): load with full validation, atomic save, new (seeded init), clone, metadata.
 * Not the maths: layers.c and net.c compute. A loaded model is never modified by nn_forward.
 * The file format: 8-byte LE header length, JSON header (tensors + "__metadata__" string map),
 * then F32 LE tensor data that the tensors' data_offsets cover exactly, without holes. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nn reads and writes little-endian float32 directly; add byte swapping for this host"
#endif

#define MAX_HEADER (100u << 20)
#define MAX_LABELS 1024

static const char *const RESERVED[] = {
    "format", "arch", "labels", "display_names", "sample_rate", "n_fft", "hop_length",
    "n_mels", "window_seconds", "windows", "input_scale", "input_shift", "bn_eps",
    "fcn_channels", "dropout", NULL};

static const int FCN_DEFAULT[] = {32, 64, 128, 128};

/* ---------------------------------------------------------------- metadata map */

static int meta_index(const NnModel *m, const char *key)
{
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta_keys[i], key) == 0) return i;
    return -1;
}

static void meta_put(NnModel *m, const char *key, const char *value)
{
    int i = meta_index(m, key);
    if (i >= 0) {
        free(m->meta_vals[i]);
        m->meta_vals[i] = xstrdup(value);
        return;
    }
    m->meta_keys = xrealloc(m->meta_keys, sizeof(char *) * (m->n_meta + 1));
    m->meta_vals = xrealloc(m->meta_vals, sizeof(char *) * (m->n_meta + 1));
    m->meta_keys[m->n_meta] = xstrdup(key);
    m->meta_vals[m->n_meta] = xstrdup(value);
    m->n_meta++;
}

const char *nn_model_get_meta(const NnModel *m, const char *key)
{
    int i = meta_index(m, key);
    return i >= 0 ? m->meta_vals[i] : NULL;
}

void nn_model_set_meta(NnModel *m, const char *key, const char *value)
{
    for (int i = 0; RESERVED[i]; i++) {
        if (strcmp(RESERVED[i], key) == 0) {
            /* these describe the net itself and are written from its NnInfo */
            log_warn("nn: metadata key \"%s\" is set by the model, ignored", key);
            return;
        }
    }
    meta_put(m, key, value ? value : "");
}

/* ---------------------------------------------------------------- tensor table */

int nn_tensor_find(const NnModel *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

static int add_tensor(NnModel *m, const char *name, int trainable, int head, int ndim,
                      int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    NnTensor *t = &m->tensors[m->n_tensors];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    int64_t d[4] = {d0, d1, d2, d3};
    t->count = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = d[i];
        t->count *= d[i];
    }
    t->trainable = trainable;
    t->head = head;
    if (trainable) {
        t->offset = m->n_params;
        m->n_params += t->count;
    } else {
        t->offset = m->n_buffers;
        m->n_buffers += t->count;
    }
    return m->n_tensors++;
}

void nn_block_out(const NnBlock *b, int h, int w, int *ho, int *wo)
{
    *ho = (h + 2 * b->pad - 2) / 2;
    *wo = (w + 2 * b->pad - 2) / 2;
}

/* Fills blocks, head and the tensor table from m->arch, m->info and the channel list,
 * then allocates params and buffers (zeroed). */
static int build(NnModel *m, const int *ch, int nb, ErrMsg *e)
{
    NnInfo *in = &m->info;
    char nm[32];
    int h = in->n_mels;
    int w;
    if (m->arch == NN_ARCH_SEED) {
        static const int seed_ch[3] = {64, 32, 32};
        ch = seed_ch;
        nb = 3;
        in->fixed_frames = 1 + in->window_samples / in->hop_length;
        w = in->fixed_frames;
    } else {
        if (nb < 1 || nb > NN_MAX_BLOCKS)
            return err_set(e, "fcn needs 1 to %d blocks", NN_MAX_BLOCKS);
        in->fixed_frames = 0;
        in->min_frames = 1 << nb;
        if (in->n_mels < (1 << nb))
            return err_set(e, "fcn with %d blocks needs n_mels >= %d, got %d", nb, 1 << nb,
                           in->n_mels);
        w = in->min_frames;
    }
    int cin = 1;
    m->n_blocks = nb;
    for (int i = 0; i < nb; i++) {
        NnBlock *b = &m->blocks[i];
        if (ch[i] < 1 || ch[i] > 4096) return err_set(e, "bad channel count %d", ch[i]);
        b->cin = cin;
        b->cout = ch[i];
        b->pad = m->arch == NN_ARCH_FCN;
        b->bn_first = m->arch == NN_ARCH_FCN;
        snprintf(nm, sizeof nm, "conv%d.weight", i + 1);
        b->t_w = add_tensor(m, nm, 1, 0, 4, ch[i], cin, 3, 3);
        snprintf(nm, sizeof nm, "conv%d.bias", i + 1);
        b->t_b = add_tensor(m, nm, 1, 0, 1, ch[i], 0, 0, 0);
        snprintf(nm, sizeof nm, "bn%d.weight", i + 1);
        b->t_g = add_tensor(m, nm, 1, 0, 1, ch[i], 0, 0, 0);
        snprintf(nm, sizeof nm, "bn%d.bias", i + 1);
        b->t_beta = add_tensor(m, nm, 1, 0, 1, ch[i], 0, 0, 0);
        snprintf(nm, sizeof nm, "bn%d.running_mean", i + 1);
        b->t_rm = add_tensor(m, nm, 0, 0, 1, ch[i], 0, 0, 0);
        snprintf(nm, sizeof nm, "bn%d.running_var", i + 1);
        b->t_rv = add_tensor(m, nm, 0, 0, 1, ch[i], 0, 0, 0);
        nn_block_out(b, h, w, &h, &w);
        if (h < 1 || w < 1)
            return err_set(e, "input %d x %d is too small for %s", in->n_mels,
                           in->fixed_frames ? in->fixed_frames : in->min_frames, in->arch);
        cin = ch[i];
    }
    if (m->arch == NN_ARCH_SEED) {
        in->min_frames = in->fixed_frames;
        static const int widths[4] = {64, 32, 16, 0};
        int prev = cin * h * w;
        m->gap = 0;
        m->n_dense = 4;
        for (int i = 0; i < 4; i++) {
            NnDense *d = &m->dense[i];
            d->in = prev;
            d->out = i < 3 ? widths[i] : in->n_labels;
            d->drop_before = i > 0;
            d->relu = i < 3;
            snprintf(nm, sizeof nm, "fc%d.weight", i + 1);
            d->t_w = add_tensor(m, nm, 1, 1, 2, d->out, d->in, 0, 0);
            snprintf(nm, sizeof nm, "fc%d.bias", i + 1);
            d->t_b = add_tensor(m, nm, 1, 1, 1, d->out, 0, 0, 0);
            prev = d->out;
        }
    } else {
        m->gap = 1;
        m->n_dense = 1;
        NnDense *d = &m->dense[0];
        d->in = cin;
        d->out = in->n_labels;
        d->drop_before = 1;
        d->relu = 0;
        d->t_w = add_tensor(m, "fc.weight", 1, 1, 2, d->out, d->in, 0, 0);
        d->t_b = add_tensor(m, "fc.bias", 1, 1, 1, d->out, 0, 0, 0);
    }
    m->params = xcalloc((size_t)m->n_params, sizeof(float));
    m->buffers = xcalloc((size_t)(m->n_buffers ? m->n_buffers : 1), sizeof(float));
    m->n_trainable = 0;
    m->param_names = xmalloc(sizeof(char *) * m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].trainable) m->param_names[m->n_trainable++] = m->tensors[i].name;
    return 0;
}

static void free_labels(NnInfo *in)
{
    for (int i = 0; i < in->n_labels; i++) {
        if (in->labels) free(in->labels[i]);
        if (in->display_names) free(in->display_names[i]);
    }
    free(in->labels);
    free(in->display_names);
    in->labels = in->display_names = NULL;
}

void nn_model_free(NnModel *m)
{
    if (!m) return;
    nn_device_release(m);
    free_labels(&m->info);
    for (int i = 0; i < m->n_meta; i++) {
        free(m->meta_keys[i]);
        free(m->meta_vals[i]);
    }
    free(m->meta_keys);
    free(m->meta_vals);
    free(m->params);
    free(m->buffers);
    free(m->param_names);
    free(m);
}

const NnInfo *nn_model_info(const NnModel *m) { return &m->info; }

int nn_model_param_names(const NnModel *m, const char ***names)
{
    *names = m->param_names;
    return m->n_trainable;
}

/* ---------------------------------------------------------------- metadata values */

static int parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Splits a comma-separated list; refuses empty items. Returns the count or -1. */
static int split_list(const char *s, char ***items)
{
    int n = 0;
    char **v = NULL;
    const char *p = s;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == 0 || n >= MAX_LABELS) {
            for (int i = 0; i < n; i++) free(v[i]);
            free(v);
            return -1;
        }
        v = xrealloc(v, sizeof(char *) * (n + 1));
        v[n] = xmalloc(len + 1);
        memcpy(v[n], p, len);
        v[n][len] = '\0';
        n++;
        if (!c) break;
        p = c + 1;
    }
    *items = v;
    return n;
}

static int check_names(char **v, int n, int unique, const char *what, ErrMsg *e)
{
    for (int i = 0; i < n; i++) {
        for (const char *p = v[i]; *p; p++)
            if ((unsigned char)*p < 0x20)
                return err_set(e, "metadata \"%s\": control character in a name", what);
        if (!unique) continue;
        for (int j = 0; j < i; j++)
            if (strcmp(v[i], v[j]) == 0)
                return err_set(e, "metadata \"%s\": duplicate label \"%s\"", what, v[i]);
    }
    return 0;
}

/* Parses "32,64,128" into ch; returns the number of blocks or -1. */
static int parse_channels(const char *s, int *ch)
{
    char **items;
    int n = split_list(s, &items);
    if (n < 0) return -1;
    int ok = n <= NN_MAX_BLOCKS;
    for (int i = 0; i < n; i++) {
        long v;
        if (ok && parse_int(items[i], 1, 4096, &v) == 0)
            ch[i] = (int)v;
        else
            ok = 0;
        free(items[i]);
    }
    free(items);
    return ok ? n : -1;
}

static const char *need(const NnModel *m, const char *key, ErrMsg *e)
{
    const char *v = nn_model_get_meta(m, key);
    if (!v) err_set(e, "metadata \"%s\" is missing", key);
    return v;
}

#define META_INT(key, lo, hi, dst)                                                                 \
    do {                                                                                           \
        long v_;                                                                                   \
        const char *s_ = need(m, key, e);                                                          \
        if (!s_) return -1;                                                                        \
        if (parse_int(s_, lo, hi, &v_) < 0)                                                        \
            return err_set(e, "metadata \"%s\": expected an integer in %ld..%ld, got \"%.40s\"",   \
                           key, (long)(lo), (long)(hi), s_);                                       \
        dst = (int)v_;                                                                             \
    } while (0)

#define META_DOUBLE(key, cond, what, dst)                                                          \
    do {                                                                                           \
        double x;                                                                                  \
        const char *s_ = need(m, key, e);                                                          \
        if (!s_) return -1;                                                                        \
        if (parse_double(s_, &x) < 0 || !(cond))                                                   \
            return err_set(e, "metadata \"%s\": expected %s, got \"%.40s\"", key, what, s_);       \
        dst = x;                                                                                   \
    } while (0)

/* Validates the standard metadata into m->info / m->arch / dropout, builds the tensor table. */
static int info_from_meta(NnModel *m, ErrMsg *e)
{
    NnInfo *in = &m->info;
    const char *s = need(m, "format", e);
    if (!s) return -1;
    if (strcmp(s, "genred-1") != 0)
        return err_set(e, "metadata \"format\": expected \"genred-1\", got \"%.40s\"", s);
    if (!(s = need(m, "arch", e))) return -1;
    if (strcmp(s, "seed-cnn") == 0)
        m->arch = NN_ARCH_SEED;
    else if (strcmp(s, "fcn") == 0)
        m->arch = NN_ARCH_FCN;
    else
        return err_set(e, "metadata \"arch\": unknown architecture \"%.40s\"", s);
    snprintf(in->arch, sizeof in->arch, "%s", s);

    if (!(s = need(m, "labels", e))) return -1;
    int n = split_list(s, &in->labels);
    if (n < 2) {
        if (n == 1) {
            free(in->labels[0]);
            free(in->labels);
            in->labels = NULL;
        }
        return err_set(e, "metadata \"labels\": expected at least two non-empty comma-separated "
                          "labels");
    }
    in->n_labels = n;
    if (check_names(in->labels, n, 1, "labels", e) < 0) return -1;
    s = nn_model_get_meta(m, "display_names");
    if (s) {
        char **d;
        int nd = split_list(s, &d);
        if (nd >= 0 && nd != n) {
            for (int i = 0; i < nd; i++) free(d[i]);
            free(d);
        }
        if (nd != n)
            return err_set(e, "metadata \"display_names\": expected %d non-empty names", n);
        in->display_names = d;
        if (check_names(d, n, 0, "display_names", e) < 0) return -1;
    } else {
        in->display_names = xmalloc(sizeof(char *) * n);
        for (int i = 0; i < n; i++) in->display_names[i] = xstrdup(in->labels[i]);
    }

    META_INT("sample_rate", 1000, 384000, in->sample_rate);
    META_INT("n_fft", 16, 65536, in->n_fft);
    META_INT("hop_length", 1, 65536, in->hop_length);
    if (in->hop_length > in->n_fft)
        return err_set(e, "metadata \"hop_length\": larger than n_fft");
    META_INT("n_mels", 1, 1024, in->n_mels);
    META_DOUBLE("window_seconds", x > 0.0 && x <= 600.0, "seconds in (0, 600]",
                in->window_seconds);
    in->window_samples = (int)lround(in->window_seconds * in->sample_rate);
    if (in->window_samples < 1) return err_set(e, "metadata \"window_seconds\": too short");
    META_INT("windows", 1, 64, in->windows);
    double d;
    META_DOUBLE("input_scale", x != 0.0 && fabs(x) < 1e30, "a finite non-zero number", d);
    in->input_scale = (float)d;
    META_DOUBLE("input_shift", fabs(x) < 1e30, "a finite number", d);
    in->input_shift = (float)d;
    META_DOUBLE("bn_eps", x > 0.0 && x < 1.0, "a number in (0, 1)", d);
    in->bn_eps = (float)d;

    m->dropout = m->arch == NN_ARCH_SEED ? 0.5f : 0.3f;
    if ((s = nn_model_get_meta(m, "dropout"))) {
        if (parse_double(s, &d) < 0 || d < 0.0 || d >= 1.0)
            return err_set(e, "metadata \"dropout\": expected a number in [0, 1), got \"%.40s\"",
                           s);
        m->dropout = (float)d;
    }
    int ch[NN_MAX_BLOCKS], nb = 0;
    if (m->arch == NN_ARCH_FCN) {
        nb = 4;
        memcpy(ch, FCN_DEFAULT, sizeof FCN_DEFAULT);
        if ((s = nn_model_get_meta(m, "fcn_channels")) && (nb = parse_channels(s, ch)) < 0)
            return err_set(e, "metadata \"fcn_channels\": expected 1 to %d channel counts, "
                              "got \"%.40s\"", NN_MAX_BLOCKS, s);
    }
    return build(m, ch, nb, e);
}

/* Writes the standard keys from info (the model owns them). */
static void meta_from_info(NnModel *m)
{
    const NnInfo *in = &m->info;
    char buf[64];
    meta_put(m, "format", "genred-1");
    meta_put(m, "arch", in->arch);
    size_t len = 1;
    for (int i = 0; i < in->n_labels; i++) len += strlen(in->labels[i]) + 1;
    size_t dlen = 1;
    for (int i = 0; i < in->n_labels; i++) dlen += strlen(in->display_names[i]) + 1;
    char *l = xcalloc(1, len), *dn = xcalloc(1, dlen);
    for (int i = 0; i < in->n_labels; i++) {
        if (i) {
            strcat(l, ",");
            strcat(dn, ",");
        }
        strcat(l, in->labels[i]);
        strcat(dn, in->display_names[i]);
    }
    meta_put(m, "labels", l);
    meta_put(m, "display_names", dn);
    free(l);
    free(dn);
#define PUTF(key, fmt, val)                                                                        \
    do {                                                                                           \
        snprintf(buf, sizeof buf, fmt, val);                                                       \
        meta_put(m, key, buf);                                                                     \
    } while (0)
    PUTF("sample_rate", "%d", in->sample_rate);
    PUTF("n_fft", "%d", in->n_fft);
    PUTF("hop_length", "%d", in->hop_length);
    PUTF("n_mels", "%d", in->n_mels);
    PUTF("window_seconds", "%.17g", in->window_seconds);
    PUTF("windows", "%d", in->windows);
    PUTF("input_scale", "%.9g", (double)in->input_scale);
    PUTF("input_shift", "%.9g", (double)in->input_shift);
    PUTF("bn_eps", "%.9g", (double)in->bn_eps);
    PUTF("dropout", "%.9g", (double)m->dropout);
    if (m->arch == NN_ARCH_FCN) {
        char ch[8 * 12] = "";
        for (int i = 0; i < m->n_blocks; i++)
            snprintf(ch + strlen(ch), sizeof ch - strlen(ch), "%s%d", i ? "," : "",
                     m->blocks[i].cout);
        meta_put(m, "fcn_channels", ch);
    }
#undef PUTF
}

static void sha_id(const uint8_t *data, size_t len, char id[13])
{
    struct sha256_ctx ctx;
    uint8_t dig[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof dig, dig);
    for (int i = 0; i < 6; i++) snprintf(id + 2 * i, 3, "%02x", dig[i]);
}

/* ---------------------------------------------------------------- load */

typedef struct FileTensor {
    const char *name;
    uint64_t begin, end;
    int64_t shape[8];
    int ndim;
} FileTensor;

static int cmp_begin(const void *a, const void *b)
{
    const FileTensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int json_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Parses the header into m's metadata and ft (at most cap entries). Returns the count. */
static int parse_header(NnModel *m, json_t *root, uint64_t data_len, FileTensor *ft, int cap,
                        ErrMsg *e)
{
    int n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) return err_set(e, "__metadata__ is not an object");
            const char *k2;
            json_t *v2;
            json_object_foreach(val, k2, v2) {
                if (!json_is_string(v2))
                    return err_set(e, "__metadata__ value \"%.40s\" is not a string", k2);
                meta_put(m, k2, json_string_value(v2));
            }
            continue;
        }
        if (n >= cap) return err_set(e, "too many tensors");
        if (!json_is_object(val)) return err_set(e, "tensor \"%.40s\": not an object", key);
        json_t *dt = json_object_get(val, "dtype"), *sh = json_object_get(val, "shape"),
               *off = json_object_get(val, "data_offsets");
        if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) ||
            json_array_size(off) != 2)
            return err_set(e, "tensor \"%.40s\": needs dtype, shape and data_offsets", key);
        if (strcmp(json_string_value(dt), "F32") != 0)
            return err_set(e, "tensor \"%.40s\": dtype %.10s, only F32 is supported", key,
                           json_string_value(dt));
        FileTensor *f = &ft[n];
        f->name = key;
        f->ndim = (int)json_array_size(sh);
        if (f->ndim > 8) return err_set(e, "tensor \"%.40s\": too many dimensions", key);
        uint64_t count = 1;
        for (int i = 0; i < f->ndim; i++) {
            uint64_t d;
            if (json_u64(json_array_get(sh, i), &d) < 0 || d > (1u << 30))
                return err_set(e, "tensor \"%.40s\": bad shape", key);
            f->shape[i] = (int64_t)d;
            count *= d;
            if (count > (1ull << 32)) return err_set(e, "tensor \"%.40s\": too large", key);
        }
        if (json_u64(json_array_get(off, 0), &f->begin) < 0 ||
            json_u64(json_array_get(off, 1), &f->end) < 0 || f->begin > f->end)
            return err_set(e, "tensor \"%.40s\": bad data_offsets", key);
        if (f->end > data_len)
            return err_set(e, "tensor \"%.40s\": data ends past the end of the file (truncated?)",
                           key);
        if (f->end - f->begin != count * 4)
            return err_set(e, "tensor \"%.40s\": data_offsets span %llu bytes, shape needs %llu",
                           key, (unsigned long long)(f->end - f->begin),
                           (unsigned long long)(count * 4));
        n++;
    }
    /* the format requires the data to be covered exactly: no overlaps, no holes */
    FileTensor sorted[NN_MAX_TENSORS];
    memcpy(sorted, ft, sizeof(FileTensor) * n);
    qsort(sorted, n, sizeof(FileTensor), cmp_begin);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (sorted[i].begin < pos)
            return err_set(e, "tensor \"%.40s\" overlaps another", sorted[i].name);
        if (sorted[i].begin > pos)
            return err_set(e, "hole in the data before tensor \"%.40s\"", sorted[i].name);
        pos = sorted[i].end;
    }
    if (pos != data_len)
        return err_set(e, "%llu bytes after the last tensor", (unsigned long long)(data_len - pos));
    return n;
}

static int load_from(NnModel *m, const uint8_t *data, size_t len, ErrMsg *e)
{
    if (len < 8) return err_set(e, "truncated file (%zu bytes)", len);
    uint64_t hlen;
    memcpy(&hlen, data, 8);
    if (hlen > len - 8)
        return err_set(e, "header length %llu larger than the file", (unsigned long long)hlen);
    if (hlen > MAX_HEADER) return err_set(e, "header too large");
    json_error_t je;
    json_t *root = json_loadb((const char *)data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) return err_set(e, "bad header json: %s", je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(e, "header is not a json object");
    }
    FileTensor ft[NN_MAX_TENSORS];
    const uint8_t *base = data + 8 + hlen;
    int rc = -1, nft = parse_header(m, root, len - 8 - hlen, ft, NN_MAX_TENSORS, e);
    if (nft < 0 || info_from_meta(m, e) < 0) goto out;
    char seen[NN_MAX_TENSORS] = {0};
    for (int i = 0; i < nft; i++) {
        int t = nn_tensor_find(m, ft[i].name);
        if (t < 0) {
            err_set(e, "unexpected tensor \"%.40s\" for arch %s", ft[i].name, m->info.arch);
            goto out;
        }
        NnTensor *tt = &m->tensors[t];
        int same = ft[i].ndim == tt->ndim;
        for (int k = 0; same && k < tt->ndim; k++) same = ft[i].shape[k] == tt->shape[k];
        if (!same) {
            char want[64] = "", got[64] = "";
            for (int k = 0; k < tt->ndim; k++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? "," : "",
                         (long long)tt->shape[k]);
            for (int k = 0; k < ft[i].ndim; k++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? "," : "",
                         (long long)ft[i].shape[k]);
            err_set(e, "tensor \"%s\": shape [%s], expected [%s]", tt->name, got, want);
            goto out;
        }
        float *dst = nn_tensor_data(m, t);
        memcpy(dst, base + ft[i].begin, (size_t)tt->count * 4);
        for (int64_t k = 0; k < tt->count; k++) {
            if (!isfinite(dst[k])) {
                err_set(e, "tensor \"%s\" holds a non-finite value", tt->name);
                goto out;
            }
            if (strstr(tt->name, "running_var") && dst[k] < 0.0f) {
                err_set(e, "tensor \"%s\" holds a negative variance", tt->name);
                goto out;
            }
        }
        seen[t] = 1;
    }
    for (int t = 0; t < m->n_tensors; t++) {
        if (!seen[t]) {
            err_set(e, "missing tensor \"%s\"", m->tensors[t].name);
            goto out;
        }
    }
    sha_id(data, len, m->info.id);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

NnModel *nn_model_load(const char *path, ErrMsg *e)
{
    uint8_t *data;
    size_t len;
    if (common_read_file(path, &data, &len, e) < 0) return NULL;
    NnModel *m = xcalloc(1, sizeof *m);
    int rc = load_from(m, data, len, e);
    free(data);
    if (rc < 0) {
        nn_model_free(m);
        return NULL;
    }
    return m;
}

/* ---------------------------------------------------------------- save */

int nn_model_save(NnModel *m, const char *path, ErrMsg *e)
{
    meta_from_info(m);
    json_t *root = json_object(), *meta = json_object();
    for (int i = 0; i < m->n_meta; i++)
        json_object_set_new(meta, m->meta_keys[i], json_string(m->meta_vals[i]));
    json_object_set_new(root, "__metadata__", meta);
    uint64_t off = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        NnTensor *t = &m->tensors[i];
        json_t *sh = json_array();
        for (int k = 0; k < t->ndim; k++) json_array_append_new(sh, json_integer(t->shape[k]));
        json_t *o = json_object();
        json_object_set_new(o, "dtype", json_string("F32"));
        json_object_set_new(o, "shape", sh);
        json_object_set_new(o, "data_offsets",
                            json_pack("[II]", (json_int_t)off, (json_int_t)(off + t->count * 4)));
        json_object_set_new(root, t->name, o);
        off += (uint64_t)t->count * 4;
    }
    char *hdr = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(root);
    if (!hdr) return err_set(e, "cannot encode the header");
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7; /* 8-byte aligned data, as usual */
    size_t total = 8 + padded + off;
    uint8_t *buf = xmalloc(total);
    uint64_t h64 = padded;
    memcpy(buf, &h64, 8);
    memcpy(buf + 8, hdr, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    free(hdr);
    uint8_t *p = buf + 8 + padded;
    for (int i = 0; i < m->n_tensors; i++) {
        memcpy(p, nn_tensor_cdata(m, i), (size_t)m->tensors[i].count * 4);
        p += m->tensors[i].count * 4;
    }
    int rc = common_write_atomic(path, buf, total, e);
    if (rc == 0) sha_id(buf, total, m->info.id);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- new, clone, copy */

NnModel *nn_model_new(const NnArchConfig *c, uint64_t seed, ErrMsg *e)
{
    NnModel *m = xcalloc(1, sizeof *m);
    NnInfo *in = &m->info;
    int ch[NN_MAX_BLOCKS], nb = 0;
    if (!c->arch || (strcmp(c->arch, "seed-cnn") != 0 && strcmp(c->arch, "fcn") != 0)) {
        err_set(e, "unknown architecture \"%.40s\"", c->arch ? c->arch : "");
        goto fail;
    }
    m->arch = strcmp(c->arch, "fcn") == 0 ? NN_ARCH_FCN : NN_ARCH_SEED;
    snprintf(in->arch, sizeof in->arch, "%s", c->arch);
    if (c->n_labels < 2 || c->n_labels > MAX_LABELS) {
        err_set(e, "need 2 to %d labels, got %d", MAX_LABELS, c->n_labels);
        goto fail;
    }
    in->labels = xcalloc(c->n_labels, sizeof(char *));
    in->display_names = xcalloc(c->n_labels, sizeof(char *));
    in->n_labels = c->n_labels;
    for (int i = 0; i < c->n_labels; i++) {
        const char *l = c->labels[i], *d = c->display_names ? c->display_names[i] : l;
        if (!l || !*l || strchr(l, ',') || !d || !*d || strchr(d, ',')) {
            err_set(e, "label %d is empty or holds a comma", i);
            goto fail;
        }
        in->labels[i] = xstrdup(l);
        in->display_names[i] = xstrdup(d);
    }
    if (check_names(in->labels, in->n_labels, 1, "labels", e) < 0 ||
        check_names(in->display_names, in->n_labels, 0, "display_names", e) < 0)
        goto fail;
    in->sample_rate = 22050;
    in->n_fft = 2048;
    in->hop_length = 512;
    in->n_mels = 64;
    in->window_seconds = 4.0;
    in->window_samples = 88200;
    in->windows = 6;
    in->input_scale = c->input_scale != 0.0f ? c->input_scale : 1.0f / 80.0f;
    in->input_shift = c->input_scale != 0.0f ? c->input_shift : 40.0f;
    in->bn_eps = 1e-3f;
    m->dropout = c->dropout >= 0.0f ? c->dropout : (m->arch == NN_ARCH_SEED ? 0.5f : 0.3f);
    if (m->dropout >= 1.0f) {
        err_set(e, "dropout must be below 1");
        goto fail;
    }
    if (m->arch == NN_ARCH_FCN) {
        nb = c->fcn_blocks > 0 ? c->fcn_blocks : 4;
        if (nb > NN_MAX_BLOCKS) {
            err_set(e, "fcn needs 1 to %d blocks", NN_MAX_BLOCKS);
            goto fail;
        }
        for (int i = 0; i < nb; i++)
            ch[i] = c->fcn_channels[i] > 0 ? c->fcn_channels[i]
                                           : (i < 4 ? FCN_DEFAULT[i] : FCN_DEFAULT[3]);
    }
    if (build(m, ch, nb, e) < 0) goto fail;
    uint64_t rng = seed ^ 0x6e6e2d696e6974ull; /* "nn-init" */
    for (int i = 0; i < m->n_tensors; i++) {
        NnTensor *t = &m->tensors[i];
        float *d = nn_tensor_data(m, i);
        size_t len = strlen(t->name);
        int is_weight = len > 7 && strcmp(t->name + len - 7, ".weight") == 0;
        if (t->ndim >= 2) {
            int64_t fan_in = t->count / t->shape[0];
            int last = t->head && i == m->dense[m->n_dense - 1].t_w;
            if (last) { /* Glorot uniform for the softmax layer */
                float lim = sqrtf(6.0f / (float)(fan_in + t->shape[0]));
                for (int64_t k = 0; k < t->count; k++)
                    d[k] = (2.0f * nn_rng_uniform(&rng) - 1.0f) * lim;
            } else { /* He normal before ReLU */
                float sd = sqrtf(2.0f / (float)fan_in);
                for (int64_t k = 0; k < t->count; k++) d[k] = nn_rng_normal(&rng) * sd;
            }
        } else {
            float v = (is_weight || strstr(t->name, "running_var")) ? 1.0f : 0.0f;
            for (int64_t k = 0; k < t->count; k++) d[k] = v;
        }
    }
    meta_from_info(m);
    return m;
fail:
    nn_model_free(m);
    return NULL;
}

NnModel *nn_model_clone(const NnModel *m)
{
    NnModel *c = xcalloc(1, sizeof *c);
    *c = *m;
    /* a clone starts on the CPU: the device copy belongs to m */
    c->dev = NULL;
    c->dev_net = NULL;
    c->dev_name[0] = '\0';
    c->dev_stale = c->dev_dead = 0;
    c->info.labels = xmalloc(sizeof(char *) * m->info.n_labels);
    c->info.display_names = xmalloc(sizeof(char *) * m->info.n_labels);
    for (int i = 0; i < m->info.n_labels; i++) {
        c->info.labels[i] = xstrdup(m->info.labels[i]);
        c->info.display_names[i] = xstrdup(m->info.display_names[i]);
    }
    c->meta_keys = xmalloc(sizeof(char *) * (m->n_meta ? m->n_meta : 1));
    c->meta_vals = xmalloc(sizeof(char *) * (m->n_meta ? m->n_meta : 1));
    for (int i = 0; i < m->n_meta; i++) {
        c->meta_keys[i] = xstrdup(m->meta_keys[i]);
        c->meta_vals[i] = xstrdup(m->meta_vals[i]);
    }
    c->params = xmalloc(sizeof(float) * m->n_params);
    memcpy(c->params, m->params, sizeof(float) * m->n_params);
    c->buffers = xmalloc(sizeof(float) * (m->n_buffers ? m->n_buffers : 1));
    memcpy(c->buffers, m->buffers, sizeof(float) * m->n_buffers);
    c->param_names = xmalloc(sizeof(char *) * m->n_tensors);
    c->n_trainable = 0;
    for (int i = 0; i < c->n_tensors; i++)
        if (c->tensors[i].trainable) c->param_names[c->n_trainable++] = c->tensors[i].name;
    return c;
}

void nn_model_copy_weights(NnModel *dst, const NnModel *src)
{
    if (dst->n_params != src->n_params || dst->n_buffers != src->n_buffers ||
        dst->n_tensors != src->n_tensors) {
        log_error("nn: copy_weights between different architectures ignored");
        return;
    }
    memcpy(dst->params, src->params, sizeof(float) * src->n_params);
    memcpy(dst->buffers, src->buffers, sizeof(float) * src->n_buffers);
    dst->dev_stale = 1;
}

int64_t nn_model_bn_count(const NnModel *m) { return m->n_buffers; }

void nn_model_bn_get(const NnModel *m, float *out)
{
    memcpy(out, m->buffers, sizeof(float) * m->n_buffers);
}

void nn_model_bn_set(NnModel *m, const float *in)
{
    memcpy(m->buffers, in, sizeof(float) * m->n_buffers);
    m->dev_stale = 1;
}
