/* nn_internal: what the files of the nn module share (model layout, layer pairs, trainer).
 * Not a public header: only the nn sources and the nn unit tests include it.
 * Invariants: every tensor of a model points into one of two allocations, m->params (trainable,
 * in table order) or m->buffers (batch-norm running statistics); NCHW layout throughout. */
#ifndef GENRED_NN_INTERNAL_H
#define GENRED_NN_INTERNAL_H

#include <stdint.h>

#include "nn.h"

#define NN_MAX_TENSORS 64
#define NN_MAX_BLOCKS 8
#define NN_MAX_DENSE 4
#define NN_BN_MOMENTUM 0.1f /* PyTorch's convention: running = 0.9 running + 0.1 batch */

enum NnArch { NN_ARCH_SEED = 0, NN_ARCH_FCN = 1 };

typedef struct NnTensor {
    char name[32];
    int ndim;
    int64_t shape[4];
    int64_t count;
    int trainable; /* 1: lives in params (has a gradient), 0: in buffers */
    int head;      /* 1: part of the dense head (what freeze_conv still trains) */
    int64_t offset; /* in floats, into params or buffers */
} NnTensor;

/* One convolution block. seed-cnn: conv(valid) -> ReLU -> pool -> BN;
 * fcn: conv(same) -> BN -> ReLU -> pool. */
typedef struct NnBlock {
    int cin, cout, pad;
    int bn_first;
    int t_w, t_b, t_g, t_beta, t_rm, t_rv; /* tensor indices */
} NnBlock;

typedef struct NnDense {
    int in, out;
    int drop_before; /* dropout applied to this layer's input in training */
    int relu;        /* ReLU after this layer */
    int t_w, t_b;
} NnDense;

struct NnModel {
    NnInfo info;
    int arch; /* enum NnArch */
    int n_blocks;
    NnBlock blocks[NN_MAX_BLOCKS];
    int n_dense;
    NnDense dense[NN_MAX_DENSE];
    int gap;       /* global average pool before the head (fcn) */
    float dropout; /* training only */
    int n_tensors;
    NnTensor tensors[NN_MAX_TENSORS];
    float *params;  /* (n_params) */
    int64_t n_params;
    float *buffers; /* (n_buffers) */
    int64_t n_buffers;
    int n_meta;
    char **meta_keys, **meta_vals;
    const char **param_names; /* (n_trainable) */
    int n_trainable;
    /* The device side (nn_backend.h); dev NULL: CPU only. dev_stale: the weights changed
     * since the upload; dev_dead: the device failed, the CPU took over for good. */
    const struct NnBackend *dev;
    void *dev_net;
    char dev_name[96];
    _Atomic int dev_stale, dev_dead;
};

static inline float *nn_tensor_data(NnModel *m, int i)
{
    NnTensor *t = &m->tensors[i];
    return (t->trainable ? m->params : m->buffers) + t->offset;
}
static inline const float *nn_tensor_cdata(const NnModel *m, int i)
{
    const NnTensor *t = &m->tensors[i];
    return (t->trainable ? m->params : m->buffers) + t->offset;
}
int nn_tensor_find(const NnModel *m, const char *name);

/* net.c: the CPU forward (what nn_forward did before devices) and its input check. */
int nn_cpu_forward(NnModel *m, const float *x, int n, int frames, float *probs, ErrMsg *e);
int nn_check_input(const NnModel *m, int n, int frames, ErrMsg *e);
/* device.c: frees the model's device state (nn_model_free). */
void nn_device_release(NnModel *m);

/* Output sizes of a block for input h x w (floor pooling). */
void nn_block_out(const NnBlock *b, int h, int w, int *ho, int *wo);

/* ---- layer pairs (layers.c). Backward adds into parameter gradients (dw, db, dg...) and
 * assigns activation gradients (din). A NULL din skips that part. ---- */

/* in (N, C, H, W), w (OC, C, 3, 3), b (OC) -> out (N, OC, H+2p-2, W+2p-2).
 * col: scratch of C*9*Ho*Wo floats. */
void nn_conv2d_forward(float *out, float *col, const float *in, const float *w, const float *b,
                       int N, int C, int H, int W, int OC, int pad);
/* col, dcol: scratch of C*9*Ho*Wo floats each. */
void nn_conv2d_backward(float *din, float *dw, float *db, float *col, float *dcol,
                        const float *dout, const float *in, const float *w,
                        int N, int C, int H, int W, int OC, int pad);

void nn_relu_forward(float *out, const float *in, int64_t count);
/* out: the forward output (its sign is the mask); din may alias dout. */
void nn_relu_backward(float *din, const float *dout, const float *out, int64_t count);

/* 2x2 max pool, stride 2, floor: in (NC, H, W) -> out (NC, H/2, W/2); idx: argmax in-plane. */
void nn_maxpool_forward(float *out, int32_t *idx, const float *in, int NC, int H, int W);
void nn_maxpool_backward(float *din, const float *dout, const int32_t *idx, int NC, int H, int W);

/* Batch norm, eval mode (running statistics). */
void nn_batchnorm_eval(float *out, const float *in, const float *g, const float *b,
                       const float *rm, const float *rv, float eps, int N, int C, int HW);
/* Training mode: batch statistics; saves mean/invstd (C) and updates rm/rv (unbiased var). */
void nn_batchnorm_forward(float *out, float *mean, float *invstd, const float *in,
                          const float *g, const float *b, float *rm, float *rv, float eps,
                          float momentum, int N, int C, int HW);
void nn_batchnorm_backward(float *din, float *dg, float *db, const float *dout, const float *in,
                           const float *mean, const float *invstd, const float *g,
                           int N, int C, int HW);

/* Mean over HW: in (N, C, HW) -> out (N, C). */
void nn_gap_forward(float *out, const float *in, int N, int C, int HW);
void nn_gap_backward(float *din, const float *dout, int N, int C, int HW);

/* in (N, ID), w (OD, ID), b (OD) -> out (N, OD). */
void nn_dense_forward(float *out, const float *in, const float *w, const float *b,
                      int N, int ID, int OD);
void nn_dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                       const float *w, int N, int ID, int OD);

/* Inverted dropout: mask holds 0 or 1/(1-p). */
void nn_dropout_forward(float *out, float *mask, const float *in, int64_t count, float p,
                        uint64_t *rng);
void nn_dropout_backward(float *din, const float *dout, const float *mask, int64_t count);

/* Row softmax in place: (N, L). */
void nn_softmax(float *x, int N, int L);
/* Mean soft-target cross-entropy; dlogits (N, L) = (softmax - t) / N. Returns the loss. */
float nn_softmax_xent(float *dlogits, const float *logits, const float *targets, int N, int L);

uint64_t nn_rng_next(uint64_t *s);
float nn_rng_uniform(uint64_t *s); /* [0, 1) */
float nn_rng_normal(uint64_t *s);

#endif
