/* net: the two networks put together from layers.c: inference (nn_forward), and training
 * (forward in training mode, backward, AdamW / SGD) behind NnTrainer.
 * Not the file format (model.c). nn_forward only reads the model and allocates its own
 * scratch, so threads may share a model; a trainer owns its activations and optimizer state
 * and must be used by one thread at a time. Threads: OpenBLAS's, inside sgemm.
 * Batch norm in training mode uses PyTorch's momentum 0.1 and the unbiased batch variance for
 * the running statistics (tests/nn/twin.py matches this). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "nn_backend.h"

static int check_input(const NnModel *m, int n, int frames, ErrMsg *e)
{
    if (n < 1) return err_set(e, "no windows to score");
    if (m->info.fixed_frames && frames != m->info.fixed_frames)
        return err_set(e, "%s needs %d frames per window, got %d", m->info.arch,
                       m->info.fixed_frames, frames);
    if (frames < m->info.min_frames)
        return err_set(e, "%s needs at least %d frames, got %d", m->info.arch,
                       m->info.min_frames, frames);
    if (frames > 1 << 20) return err_set(e, "window of %d frames is too long", frames);
    return 0;
}

/* Per-window sizes: the largest conv output, the largest im2col matrix, the feature width. */
static void sizes(const NnModel *m, int frames, int64_t *max_act, int64_t *max_col, int *feat)
{
    int h = m->info.n_mels, w = frames;
    *max_act = (int64_t)h * w;
    *max_col = 0;
    for (int i = 0; i < m->n_blocks; i++) {
        const NnBlock *b = &m->blocks[i];
        int64_t ho = h + 2 * b->pad - 2, wo = w + 2 * b->pad - 2;
        if (b->cout * ho * wo > *max_act) *max_act = b->cout * ho * wo;
        if (b->cin * 9 * ho * wo > *max_col) *max_col = b->cin * 9 * ho * wo;
        nn_block_out(b, h, w, &h, &w);
    }
    *feat = m->gap ? m->blocks[m->n_blocks - 1].cout : m->blocks[m->n_blocks - 1].cout * h * w;
}

static int max_width(const NnModel *m, int feat)
{
    int mx = feat;
    for (int i = 0; i < m->n_dense; i++) mx = m->dense[i].out > mx ? m->dense[i].out : mx;
    return mx;
}

int nn_check_input(const NnModel *m, int n, int frames, ErrMsg *e)
{
    return check_input(m, n, frames, e);
}

/* The CPU backend; device.c's nn_forward dispatches here unless a device takes the call. */
int nn_cpu_forward(NnModel *m, const float *x, int n, int frames, float *probs, ErrMsg *e)
{
    if (check_input(m, n, frames, e) < 0) return -1;
    const NnInfo *in = &m->info;
    int64_t max_act, max_col;
    int feat;
    sizes(m, frames, &max_act, &max_col, &feat);
    int width = max_width(m, feat);
    float *a = xmalloc(sizeof(float) * max_act);       /* conv output of one window */
    float *b = xmalloc(sizeof(float) * max_act);       /* block input/output */
    float *col = xmalloc(sizeof(float) * max_col);
    int32_t *idx = xmalloc(sizeof(int32_t) * max_act);
    float *h0 = xmalloc(sizeof(float) * n * width);    /* (n, width) */
    float *h1 = xmalloc(sizeof(float) * n * width);
    int64_t plane = (int64_t)in->n_mels * frames;
    /* Windows go through the convolutions one at a time: the im2col GEMMs are per image
     * anyway, and this keeps scratch at one window's activations. */
    for (int wi = 0; wi < n; wi++) {
        const float *xw = x + wi * plane;
        for (int64_t k = 0; k < plane; k++) b[k] = (xw[k] + in->input_shift) * in->input_scale;
        int h = in->n_mels, w = frames;
        for (int bi = 0; bi < m->n_blocks; bi++) {
            const NnBlock *bl = &m->blocks[bi];
            int ho = h + 2 * bl->pad - 2, wo = w + 2 * bl->pad - 2;
            const float *g = nn_tensor_cdata(m, bl->t_g), *be = nn_tensor_cdata(m, bl->t_beta),
                        *rm = nn_tensor_cdata(m, bl->t_rm), *rv = nn_tensor_cdata(m, bl->t_rv);
            nn_conv2d_forward(a, col, b, nn_tensor_cdata(m, bl->t_w), nn_tensor_cdata(m, bl->t_b),
                              1, bl->cin, h, w, bl->cout, bl->pad);
            int64_t pooled = (int64_t)bl->cout * (ho / 2) * (wo / 2);
            /* ReLU commutes with max-pooling, so it runs on the pooled quarter */
            if (bl->bn_first) {
                nn_batchnorm_eval(a, a, g, be, rm, rv, in->bn_eps, 1, bl->cout, ho * wo);
                nn_maxpool_forward(b, idx, a, bl->cout, ho, wo);
                nn_relu_forward(b, b, pooled);
            } else {
                nn_maxpool_forward(b, idx, a, bl->cout, ho, wo);
                nn_relu_forward(b, b, pooled);
                nn_batchnorm_eval(b, b, g, be, rm, rv, in->bn_eps, 1, bl->cout,
                                  (ho / 2) * (wo / 2));
            }
            h = ho / 2;
            w = wo / 2;
        }
        if (m->gap)
            nn_gap_forward(h0 + (int64_t)wi * feat, b, 1, feat, h * w);
        else
            memcpy(h0 + (int64_t)wi * feat, b, sizeof(float) * feat);
    }
    int dim = feat;
    for (int i = 0; i < m->n_dense; i++) {
        const NnDense *d = &m->dense[i];
        nn_dense_forward(h1, h0, nn_tensor_cdata(m, d->t_w), nn_tensor_cdata(m, d->t_b), n, dim,
                         d->out);
        if (d->relu) nn_relu_forward(h1, h1, (int64_t)n * d->out);
        float *t = h0;
        h0 = h1;
        h1 = t;
        dim = d->out;
    }
    memcpy(probs, h0, sizeof(float) * n * in->n_labels);
    nn_softmax(probs, n, in->n_labels);
    free(a);
    free(b);
    free(col);
    free(idx);
    free(h0);
    free(h1);
    return 0;
}

/* ---------------------------------------------------------------- training */

/* ReLU commutes with 2x2 max-pooling (and the gradients agree, ties included: a pooled 0
 * passes no gradient either way), so both nets apply it after the pool, on a quarter of the
 * values: seed-cnn conv -> pool -> ReLU -> BN, fcn conv -> BN -> pool -> ReLU. */
typedef struct BlockActs {
    float *in;    /* (N, cin, h, w) block input (not owned) */
    float *conv;  /* (N, cout, ho, wo) */
    float *s1;    /* fcn: BN out (N, cout, ho, wo); seed: ReLU out (N, cout, ho/2, wo/2) */
    float *pool;  /* (N, cout, ho/2, wo/2) */
    int32_t *idx; /* (N, cout, ho/2, wo/2) argmax in the (ho, wo) plane */
    float *s2;    /* (N, cout, ho/2, wo/2) block output: fcn ReLU out, seed BN out */
    float *mean, *invstd; /* (cout) */
    float *out;   /* == s2 */
    int h, w, ho, wo;
} BlockActs;

typedef struct DenseActs {
    float *in;   /* (N, I) input after dropout (may alias the previous output) */
    float *mask; /* (N, I) when dropout is applied */
    float *pre;  /* (N, O) */
    float *post; /* (N, O) ReLU out, or == pre */
} DenseActs;

struct NnTrainer {
    NnModel *m;
    NnOptim o;
    uint64_t rng;
    int64_t step;
    float *grads; /* (n_params), same layout as m->params */
    float *adam_m, *adam_v; /* (n_params) each; SGD keeps its momentum in adam_m */
    /* activations for the current (n, frames), carved from one arena */
    float *arena;
    int64_t arena_cap;
    int n, frames, dropout_on;
    float *x;      /* (N, 1, n_mels, frames) scaled input */
    BlockActs ba[NN_MAX_BLOCKS];
    float *feat;   /* (N, F) */
    DenseActs da[NN_MAX_DENSE];
    float *dlogits;
    float *g[2];   /* activation gradient ping-pong, (max full activation) each */
    float *col, *dcol;
};

NnTrainer *nn_trainer_new(NnModel *m, const NnOptim *o, uint64_t seed, ErrMsg *e)
{
    if (o->kind != NN_ADAMW && o->kind != NN_SGD) {
        err_set(e, "unknown optimizer %d", o->kind);
        return NULL;
    }
    if (!(o->lr >= 0.0f) || !(o->weight_decay >= 0.0f)) {
        err_set(e, "learning rate and weight decay must be >= 0");
        return NULL;
    }
    NnTrainer *t = xcalloc(1, sizeof *t);
    t->m = m;
    t->o = *o;
    /* zero means "the usual value" for these */
    if (t->o.beta1 == 0.0f) t->o.beta1 = 0.9f;
    if (t->o.beta2 == 0.0f) t->o.beta2 = 0.999f;
    if (t->o.eps == 0.0f) t->o.eps = 1e-8f;
    t->rng = seed ^ 0x6e6e2d747261696eull; /* "nn-train" */
    t->grads = xcalloc((size_t)m->n_params, sizeof(float));
    t->adam_m = xcalloc((size_t)m->n_params, sizeof(float));
    t->adam_v = xcalloc((size_t)m->n_params, sizeof(float));
    return t;
}

void nn_trainer_free(NnTrainer *t)
{
    if (!t) return;
    free(t->grads);
    free(t->adam_m);
    free(t->adam_v);
    free(t->arena);
    free(t);
}

const float *nn_trainer_grad(const NnTrainer *t, const char *name, int64_t *count)
{
    int i = nn_tensor_find(t->m, name);
    if (i < 0 || !t->m->tensors[i].trainable) return NULL;
    if (count) *count = t->m->tensors[i].count;
    return t->grads + t->m->tensors[i].offset;
}

/* Lays out all activations of a batch in the arena (two passes: measure, then carve). */
static void layout(NnTrainer *t, int n, int frames)
{
    NnModel *m = t->m;
    int64_t max_act, max_col;
    int feat;
    sizes(m, frames, &max_act, &max_col, &feat);
    for (int pass = 0; pass < 2; pass++) {
        int64_t off = 0;
#define TAKE(cnt) (pass ? t->arena + (off += (cnt)) - (cnt) : (off += (cnt), NULL))
        t->x = TAKE((int64_t)n * m->info.n_mels * frames);
        int h = m->info.n_mels, w = frames;
        float *prev = t->x;
        for (int i = 0; i < m->n_blocks; i++) {
            const NnBlock *b = &m->blocks[i];
            BlockActs *a = &t->ba[i];
            a->h = h;
            a->w = w;
            a->ho = h + 2 * b->pad - 2;
            a->wo = w + 2 * b->pad - 2;
            int64_t full = (int64_t)n * b->cout * a->ho * a->wo;
            int64_t pooled = (int64_t)n * b->cout * (a->ho / 2) * (a->wo / 2);
            a->in = prev;
            a->conv = TAKE(full);
            a->s1 = TAKE(b->bn_first ? full : pooled);
            a->pool = TAKE(pooled);
            a->idx = (int32_t *)TAKE(pooled); /* sizeof(int32_t) == sizeof(float) */
            a->s2 = TAKE(pooled);
            a->mean = TAKE(b->cout);
            a->invstd = TAKE(b->cout);
            a->out = a->s2;
            prev = a->out;
            h = a->ho / 2;
            w = a->wo / 2;
        }
        t->feat = m->gap ? TAKE((int64_t)n * feat) : prev; /* flatten is a no-op in NCHW */
        int dim = feat;
        for (int i = 0; i < m->n_dense; i++) {
            const NnDense *d = &m->dense[i];
            DenseActs *a = &t->da[i];
            a->mask = d->drop_before ? TAKE((int64_t)n * dim) : NULL;
            a->in = d->drop_before ? TAKE((int64_t)n * dim) : NULL;
            a->pre = TAKE((int64_t)n * d->out);
            a->post = d->relu ? TAKE((int64_t)n * d->out) : a->pre;
            dim = d->out;
        }
        t->dlogits = TAKE((int64_t)n * m->info.n_labels);
        int64_t gsz = (int64_t)n * max_act;
        int64_t hw = (int64_t)n * max_width(m, feat);
        if (hw > gsz) gsz = hw;
        t->g[0] = TAKE(gsz);
        t->g[1] = TAKE(gsz);
        t->col = TAKE(max_col);
        t->dcol = TAKE(max_col);
#undef TAKE
        if (!pass && off > t->arena_cap) {
            free(t->arena);
            t->arena = xmalloc(sizeof(float) * off);
            t->arena_cap = off;
        }
    }
    t->n = n;
    t->frames = frames;
}

static void train_forward(NnTrainer *t, const float *x, int n, int frames, int dropout_on)
{
    NnModel *m = t->m;
    if (n != t->n || frames != t->frames) layout(t, n, frames);
    t->dropout_on = dropout_on;
    int64_t cnt = (int64_t)n * m->info.n_mels * frames;
    for (int64_t k = 0; k < cnt; k++)
        t->x[k] = (x[k] + m->info.input_shift) * m->info.input_scale;
    for (int i = 0; i < m->n_blocks; i++) {
        const NnBlock *b = &m->blocks[i];
        BlockActs *a = &t->ba[i];
        int phw = (a->ho / 2) * (a->wo / 2);
        int64_t pooled = (int64_t)n * b->cout * phw;
        float *g = nn_tensor_data(m, b->t_g), *be = nn_tensor_data(m, b->t_beta),
              *rm = nn_tensor_data(m, b->t_rm), *rv = nn_tensor_data(m, b->t_rv);
        nn_conv2d_forward(a->conv, t->col, a->in, nn_tensor_data(m, b->t_w),
                          nn_tensor_data(m, b->t_b), n, b->cin, a->h, a->w, b->cout, b->pad);
        if (b->bn_first) {
            nn_batchnorm_forward(a->s1, a->mean, a->invstd, a->conv, g, be, rm, rv,
                                 m->info.bn_eps, NN_BN_MOMENTUM, n, b->cout, a->ho * a->wo);
            nn_maxpool_forward(a->pool, a->idx, a->s1, n * b->cout, a->ho, a->wo);
            nn_relu_forward(a->s2, a->pool, pooled);
        } else {
            nn_maxpool_forward(a->pool, a->idx, a->conv, n * b->cout, a->ho, a->wo);
            nn_relu_forward(a->s1, a->pool, pooled);
            nn_batchnorm_forward(a->s2, a->mean, a->invstd, a->s1, g, be, rm, rv,
                                 m->info.bn_eps, NN_BN_MOMENTUM, n, b->cout, phw);
        }
    }
    const BlockActs *last = &t->ba[m->n_blocks - 1];
    int C = m->blocks[m->n_blocks - 1].cout;
    if (m->gap) nn_gap_forward(t->feat, last->out, n, C, (last->ho / 2) * (last->wo / 2));
    const float *h = t->feat;
    int dim = m->dense[0].in;
    for (int i = 0; i < m->n_dense; i++) {
        const NnDense *d = &m->dense[i];
        DenseActs *a = &t->da[i];
        if (d->drop_before) {
            if (dropout_on && m->dropout > 0.0f) {
                nn_dropout_forward(a->in, a->mask, h, (int64_t)n * dim, m->dropout, &t->rng);
            } else {
                for (int64_t k = 0; k < (int64_t)n * dim; k++) a->mask[k] = 1.0f;
                memcpy(a->in, h, sizeof(float) * n * dim);
            }
        } else {
            a->in = (float *)h;
        }
        nn_dense_forward(a->pre, a->in, nn_tensor_data(m, d->t_w), nn_tensor_data(m, d->t_b), n,
                         dim, d->out);
        if (d->relu) nn_relu_forward(a->post, a->pre, (int64_t)n * d->out);
        h = a->post;
        dim = d->out;
    }
}

static void train_backward(NnTrainer *t)
{
    NnModel *m = t->m;
    int n = t->n, freeze = t->o.freeze_conv;
    float *gb = t->grads;
    /* cur holds d(output of the stage being undone); other receives d(its input) */
    float *cur = t->dlogits, *other = t->g[0];
    for (int i = m->n_dense - 1; i >= 0; i--) {
        const NnDense *d = &m->dense[i];
        DenseActs *a = &t->da[i];
        if (d->relu) nn_relu_backward(cur, cur, a->post, (int64_t)n * d->out);
        int need_din = i > 0 || !freeze;
        other = cur == t->g[0] ? t->g[1] : t->g[0];
        nn_dense_backward(need_din ? other : NULL, gb + m->tensors[d->t_w].offset,
                          gb + m->tensors[d->t_b].offset, cur, a->in,
                          nn_tensor_data(m, d->t_w), n, d->in, d->out);
        if (!need_din) return;
        if (d->drop_before) nn_dropout_backward(other, other, a->mask, (int64_t)n * d->in);
        cur = other;
    }
    const NnBlock *lb = &m->blocks[m->n_blocks - 1];
    const BlockActs *la = &t->ba[m->n_blocks - 1];
    if (m->gap) {
        other = cur == t->g[0] ? t->g[1] : t->g[0];
        nn_gap_backward(other, cur, n, lb->cout, (la->ho / 2) * (la->wo / 2));
        cur = other;
    }
    for (int i = m->n_blocks - 1; i >= 0; i--) {
        const NnBlock *b = &m->blocks[i];
        BlockActs *a = &t->ba[i];
        int phw = (a->ho / 2) * (a->wo / 2);
        int64_t pooled = (int64_t)n * b->cout * phw;
        float *g = nn_tensor_data(m, b->t_g);
        float *dg = gb + m->tensors[b->t_g].offset, *dbe = gb + m->tensors[b->t_beta].offset;
        other = cur == t->g[0] ? t->g[1] : t->g[0];
        if (b->bn_first) { /* cur: d ReLU out */
            nn_relu_backward(cur, cur, a->s2, pooled);
            nn_maxpool_backward(other, cur, a->idx, n * b->cout, a->ho, a->wo);
            nn_batchnorm_backward(cur, dg, dbe, other, a->conv, a->mean, a->invstd, g, n,
                                  b->cout, a->ho * a->wo);
        } else { /* cur: d BN out */
            nn_batchnorm_backward(other, dg, dbe, cur, a->s1, a->mean, a->invstd, g, n,
                                  b->cout, phw);
            nn_relu_backward(other, other, a->s1, pooled);
            nn_maxpool_backward(cur, other, a->idx, n * b->cout, a->ho, a->wo);
        }
        /* cur: d conv out */
        nn_conv2d_backward(i > 0 ? other : NULL, gb + m->tensors[b->t_w].offset,
                           gb + m->tensors[b->t_b].offset, t->col, t->dcol, cur, a->in,
                           nn_tensor_data(m, b->t_w), n, b->cin, a->h, a->w, b->cout, b->pad);
        cur = other;
    }
}

/* nn_train_grads on the model's device. The dropout masks come from the trainer's generator
 * in the order train_forward draws them, so device and CPU training see the same masks.
 * Returns 0, or -1 when the device failed (logged once; the model is on the CPU from then on,
 * the generator is rewound, and the caller computes on the CPU). */
static int device_grads(NnTrainer *t, const float *x, int n, int frames, const float *targets,
                        int dropout_on, float *loss, float *logits)
{
    NnModel *m = t->m;
    uint64_t rng0 = t->rng;
    float *masks[NN_MAX_DENSE] = {0};
    int dim = m->dense[0].in;
    for (int i = 0; i < m->n_dense; i++) {
        const NnDense *d = &m->dense[i];
        if (d->drop_before && dropout_on && m->dropout > 0.0f) {
            int64_t cnt = (int64_t)n * dim;
            float keep = 1.0f / (1.0f - m->dropout);
            masks[i] = xmalloc(sizeof(float) * cnt);
            for (int64_t k = 0; k < cnt; k++)
                masks[i][k] = nn_rng_uniform(&t->rng) < m->dropout ? 0.0f : keep;
        }
        dim = d->out;
    }
    float *lg = xmalloc(sizeof(float) * n * m->info.n_labels);
    memset(t->grads, 0, sizeof(float) * m->n_params);
    ErrMsg de = {{0}};
    float l = 0.0f;
    int rc = 0;
    if (atomic_exchange(&m->dev_stale, 0)) rc = m->dev->net_upload(m->dev_net, m, &de);
    if (rc == 0)
        rc = m->dev->train_grads(m->dev_net, m, t->grads, &l, lg, x, targets,
                                 (const float *const *)masks, n, frames, t->o.freeze_conv, &de);
    for (int i = 0; i < m->n_dense; i++) free(masks[i]);
    if (rc == 0) {
        if (loss) *loss = l;
        if (logits) memcpy(logits, lg, sizeof(float) * n * m->info.n_labels);
        free(lg);
        return 0;
    }
    free(lg);
    /* out of memory included: halving would change the batch statistics */
    t->rng = rng0;
    if (atomic_exchange(&m->dev_dead, 1) == 0)
        log_warn("nn: %s training failed (%s); training on the CPU from now on", m->dev->name,
                 de.msg);
    return -1;
}

int nn_train_grads(NnTrainer *t, const float *x, int n, int frames, const float *targets,
                   int dropout_on, float *loss, float *logits, ErrMsg *e)
{
    NnModel *m = t->m;
    if (check_input(m, n, frames, e) < 0) return -1;
    if (m->dev && m->dev->train_grads && !atomic_load(&m->dev_dead)) {
        float l = 0.0f;
        if (device_grads(t, x, n, frames, targets, dropout_on, &l, logits) == 0) {
            if (!isfinite(l)) return err_set(e, "loss is not finite");
            if (loss) *loss = l;
            return 0;
        }
    }
    train_forward(t, x, n, frames, dropout_on);
    const float *z = t->da[m->n_dense - 1].pre;
    float l = nn_softmax_xent(t->dlogits, z, targets, n, m->info.n_labels);
    if (!isfinite(l)) return err_set(e, "loss is not finite");
    if (loss) *loss = l;
    if (logits) memcpy(logits, z, sizeof(float) * n * m->info.n_labels);
    memset(t->grads, 0, sizeof(float) * m->n_params);
    train_backward(t);
    return 0;
}

int nn_train_step(NnTrainer *t, const float *x, int n, int frames, const float *targets,
                  float lr, float *loss, float *logits, ErrMsg *e)
{
    if (nn_train_grads(t, x, n, frames, targets, 1, loss, logits, e) < 0) return -1;
    NnModel *m = t->m;
    m->dev_stale = 1; /* running statistics changed already, weights below */
    const NnOptim *o = &t->o;
    t->step++;
    float bc1 = 1.0f - powf(o->beta1, (float)t->step), bc2 = 1.0f - powf(o->beta2, (float)t->step);
    for (int i = 0; i < m->n_tensors; i++) {
        const NnTensor *tt = &m->tensors[i];
        if (!tt->trainable || (o->freeze_conv && !tt->head)) continue;
        /* weight decay on weight matrices and kernels only, not on biases or BN affine */
        float wd = tt->ndim >= 2 ? o->weight_decay : 0.0f;
        float *p = m->params + tt->offset, *g = t->grads + tt->offset;
        float *mm = t->adam_m + tt->offset, *vv = t->adam_v + tt->offset;
        if (o->kind == NN_ADAMW) {
            for (int64_t k = 0; k < tt->count; k++) {
                mm[k] = o->beta1 * mm[k] + (1.0f - o->beta1) * g[k];
                vv[k] = o->beta2 * vv[k] + (1.0f - o->beta2) * g[k] * g[k];
                p[k] -= lr * (wd * p[k] + (mm[k] / bc1) / (sqrtf(vv[k] / bc2) + o->eps));
            }
        } else {
            for (int64_t k = 0; k < tt->count; k++) {
                mm[k] = o->momentum * mm[k] + g[k] + wd * p[k];
                p[k] -= lr * mm[k];
            }
        }
    }
    return 0;
}
