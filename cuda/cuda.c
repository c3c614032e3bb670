/* cuda.c: the host side of the CUDA backend: fills nn's and features' backend tables with
 * the device code of cnn.cu and mel.cu, translates a model and a mel plan into their plain
 * descriptions, and chains mel into the CNN on the device (cuda_score_samples).
 * Not the kernels or library calls (the .cu files), not the fallback policy (nn/device.c and
 * features/mel.c decide what a failure means; this file only reports it).
 * Invariants: registration happens once, before threads share models; the env switch
 * GENRED_CUDA_FAIL is read then too. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"
#include "cuda_internal.h"
#include "mel_backend.h"
#include "nn_backend.h"

const int cuda_built = 1;

static int fake_fail; /* GENRED_CUDA_FAIL=1: every device call fails (tests) */

static int forced(ErrMsg *e) { return err_set(e, "forced failure (GENRED_CUDA_FAIL)"); }

int cuda_probe(char *name, size_t namesz, ErrMsg *e) { return cuda_dev_probe(name, namesz, e); }

/* ---------------------------------------------------------------- nn */

static void describe(const NnModel *m, CudaNetDesc *d)
{
    memset(d, 0, sizeof *d);
    d->n_mels = m->info.n_mels;
    d->n_labels = m->info.n_labels;
    d->n_blocks = m->n_blocks;
    d->n_dense = m->n_dense;
    d->gap = m->gap;
    d->input_scale = m->info.input_scale;
    d->input_shift = m->info.input_shift;
    d->bn_eps = m->info.bn_eps;
    for (int i = 0; i < m->n_blocks && i < CUDA_MAX_BLOCKS; i++) {
        const NnBlock *b = &m->blocks[i];
        CudaBlockDesc *c = &d->blocks[i];
        c->cin = b->cin;
        c->cout = b->cout;
        c->pad = b->pad;
        c->bn_first = b->bn_first;
        c->w = nn_tensor_cdata(m, b->t_w);
        c->b = nn_tensor_cdata(m, b->t_b);
        c->g = nn_tensor_cdata(m, b->t_g);
        c->beta = nn_tensor_cdata(m, b->t_beta);
        c->rm = nn_tensor_cdata(m, b->t_rm);
        c->rv = nn_tensor_cdata(m, b->t_rv);
    }
    for (int i = 0; i < m->n_dense && i < CUDA_MAX_DENSE; i++) {
        const NnDense *s = &m->dense[i];
        CudaDenseDesc *c = &d->dense[i];
        c->in = s->in;
        c->out = s->out;
        c->relu = s->relu;
        c->w = nn_tensor_cdata(m, s->t_w);
        c->b = nn_tensor_cdata(m, s->t_b);
    }
}

static int nn_probe(char *desc, size_t descsz, ErrMsg *e)
{
    return cuda_dev_probe(desc, descsz, e);
}

static void *nn_create(const NnModel *m, ErrMsg *e)
{
    if (m->n_blocks > CUDA_MAX_BLOCKS || m->n_dense > CUDA_MAX_DENSE) {
        err_set(e, "net too deep for the cuda backend");
        return NULL;
    }
    CudaNetDesc d;
    describe(m, &d);
    return cuda_net_create(&d, e);
}

static int nn_upload(void *net, const NnModel *m, ErrMsg *e)
{
    if (fake_fail) return forced(e);
    CudaNetDesc d;
    describe(m, &d);
    return cuda_net_upload(net, &d, e) == 0 ? 0 : -1;
}

static int nn_fwd(void *net, float *probs, const float *x, int n, int frames, ErrMsg *e)
{
    if (fake_fail) return forced(e);
    int rc = cuda_net_forward(net, probs, x, 0, n, frames, e);
    return rc == CUDA_EOOM ? NN_BACKEND_EOOM : rc;
}

static void nn_release(void *net) { cuda_net_free(net); }

/* Points the device's outputs at the trainer's gradient table (model layout), runs the step,
 * then updates the running statistics exactly as nn_batchnorm_forward does. */
static int nn_train(void *net, NnModel *m, float *grads, float *loss, float *logits,
                    const float *x, const float *targets, const float *const *masks, int n,
                    int frames, int head_only, ErrMsg *e)
{
    if (fake_fail) return forced(e);
    CudaTrainOut o;
    memset(&o, 0, sizeof o);
    int64_t stats = 0;
    for (int i = 0; i < m->n_blocks; i++) stats += 2 * m->blocks[i].cout;
    float *mv = xmalloc(sizeof(float) * (stats ? stats : 1)), *p = mv;
#define GRAD(ti) (grads + m->tensors[(ti)].offset)
    for (int i = 0; i < m->n_blocks; i++) {
        const NnBlock *b = &m->blocks[i];
        o.dw[i] = GRAD(b->t_w);
        o.db[i] = GRAD(b->t_b);
        o.dg[i] = GRAD(b->t_g);
        o.dbeta[i] = GRAD(b->t_beta);
        o.mean[i] = p;
        o.var[i] = p + b->cout;
        p += 2 * b->cout;
    }
    for (int i = 0; i < m->n_dense; i++) {
        o.ddw[i] = GRAD(m->dense[i].t_w);
        o.ddb[i] = GRAD(m->dense[i].t_b);
    }
#undef GRAD
    o.logits = logits;
    int rc = cuda_net_train(net, &o, x, targets, masks, n, frames, head_only, e);
    if (rc == 0) {
        for (int i = 0; i < m->n_blocks; i++) {
            const NnBlock *b = &m->blocks[i];
            float *rm = nn_tensor_data(m, b->t_rm), *rv = nn_tensor_data(m, b->t_rv);
            for (int c = 0; c < b->cout; c++) {
                rm[c] = (1.0f - NN_BN_MOMENTUM) * rm[c] + NN_BN_MOMENTUM * o.mean[i][c];
                rv[c] = (1.0f - NN_BN_MOMENTUM) * rv[c] + NN_BN_MOMENTUM * o.var[i][c];
            }
        }
        m->dev_stale = 1; /* the folded inference batch norm changed */
        *loss = (float)o.loss;
    }
    free(mv);
    return rc == CUDA_EOOM ? NN_BACKEND_EOOM : rc;
}

static const NnBackend nn_cuda = {
    .name = "cuda",
    .probe = nn_probe,
    .net_create = nn_create,
    .net_upload = nn_upload,
    .forward = nn_fwd,
    .net_free = nn_release,
    .train_grads = nn_train,
};

/* ---------------------------------------------------------------- features */

static void *mel_create(const MelPlan *p, ErrMsg *e)
{
    char name[64];
    if (cuda_dev_probe(name, sizeof name, e) != 0) return NULL;
    CudaMelDesc d = {
        .n_fft = mel_plan_n_fft(p),
        .hop = mel_plan_hop(p),
        .n_mels = mel_n_mels(p),
        .n_bins = mel_plan_n_bins(p),
        .window = mel_plan_window(p),
    };
    double *fb = xmalloc(sizeof(double) * (size_t)d.n_mels * d.n_bins);
    mel_plan_filter_bank(p, fb);
    d.fb = fb;
    CudaMel *cm = cuda_mel_create(&d, e);
    free(fb);
    return cm;
}

static int mel_batch(void *dp, float *out, const float *samples, int n_windows, int n_samples,
                     ErrMsg *e)
{
    if (fake_fail) return forced(e);
    cuda_mel_lock(dp);
    int rc = cuda_mel_run(dp, out, NULL, samples, n_windows, n_samples, e);
    cuda_mel_unlock(dp);
    return rc == CUDA_EOOM ? MEL_BACKEND_EOOM : rc;
}

static void mel_release(void *dp) { cuda_mel_free(dp); }

static const MelBackend mel_cuda = {
    .name = "cuda",
    .plan_create = mel_create,
    .compute_batch = mel_batch,
    .plan_free = mel_release,
};

int cuda_backend_init(ErrMsg *e)
{
    (void)e;
    const char *f = getenv("GENRED_CUDA_FAIL");
    fake_fail = f && *f && strcmp(f, "0") != 0;
    nn_backend_register(&nn_cuda);
    mel_backend_register(&mel_cuda);
    return 0;
}

/* ---------------------------------------------------------------- mel -> CNN */

static int score_in_two_steps(NnModel *m, const MelPlan *p, const float *samples, int nw,
                             int ns, float *probs, ErrMsg *e)
{
    int frames = mel_frames(p, ns);
    float *x = xmalloc(sizeof(float) * (size_t)nw * mel_n_mels(p) * frames);
    int rc = mel_compute_batch(p, samples, nw, ns, x, e);
    if (rc == 0) rc = nn_forward(m, x, nw, frames, probs, e);
    free(x);
    return rc;
}

int cuda_score_samples(NnModel *m, const MelPlan *p, const float *samples, int n_windows,
                       int n_samples, float *probs, ErrMsg *e)
{
    if (n_windows < 1 || n_samples < 1) return err_set(e, "no windows to score");
    if (mel_n_mels(p) != m->info.n_mels)
        return err_set(e, "mel plan has %d bands, the model wants %d", mel_n_mels(p),
                       m->info.n_mels);
    int frames = mel_frames(p, n_samples);
    if (nn_check_input(m, n_windows, frames, e) < 0) return -1;
    CudaMel *cm = mel_plan_device(p);
    CudaNet *cn = m->dev == &nn_cuda && !atomic_load(&m->dev_dead) ? m->dev_net : NULL;
    if (!cm || !cn || fake_fail || atomic_load(&m->dev_stale))
        return score_in_two_steps(m, p, samples, n_windows, n_samples, probs, e);
    ErrMsg de = {{0}};
    float *dx = NULL;
    cuda_mel_lock(cm);
    int rc = cuda_mel_run(cm, NULL, &dx, samples, n_windows, n_samples, &de);
    if (rc == 0) rc = cuda_net_forward(cn, probs, dx, 1, n_windows, frames, &de);
    cuda_mel_unlock(cm);
    if (rc == 0) return 0;
    /* the two-step path halves on out-of-memory and owns the fallback policy and its log */
    log_debug("cuda: chained mel + cnn failed (%s); trying step by step", de.msg);
    return score_in_two_steps(m, p, samples, n_windows, n_samples, probs, e);
}
