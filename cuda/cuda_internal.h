/* cuda_internal: what the host glue (cuda.c, plain C) and the device code (*.cu, C++ under
 * nvcc) of the cuda module share. Plain structs only, so the .cu files need none of nn's or
 * features' headers. Not public: only cuda/ and tests/cuda include it.
 * Invariants: every function returns 0, -1 with a reason in e, or CUDA_EOOM when the device
 * ran out of memory (after freeing its batch buffers, so a smaller batch may succeed); none
 * logs, exits or throws. One CudaNet / CudaMel may be used by several threads: each call holds
 * the object's mutex. NCHW throughout. */
#ifndef GENRED_CUDA_INTERNAL_H
#define GENRED_CUDA_INTERNAL_H

#include <stddef.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CUDA_EOOM (-2)
#define CUDA_MAX_BLOCKS 8
#define CUDA_MAX_DENSE 4

/* One conv block; host pointers, read only during create/upload. */
typedef struct CudaBlockDesc {
    int cin, cout, pad;
    int bn_first; /* 1: conv -> BN -> pool -> ReLU (fcn); 0: conv -> pool -> ReLU -> BN (seed) */
    const float *w;                /* (cout, cin, 3, 3) OIHW */
    const float *b;                /* (cout) */
    const float *g, *beta, *rm, *rv; /* (cout) each: BN weight, bias, running mean, var */
} CudaBlockDesc;

typedef struct CudaDenseDesc {
    int in, out, relu;
    const float *w; /* (out, in) */
    const float *b; /* (out) */
} CudaDenseDesc;

typedef struct CudaNetDesc {
    int n_mels, n_labels;
    int n_blocks, n_dense;
    int gap; /* global average pool after the blocks (fcn) */
    float input_scale, input_shift, bn_eps;
    CudaBlockDesc blocks[CUDA_MAX_BLOCKS];
    CudaDenseDesc dense[CUDA_MAX_DENSE];
} CudaNetDesc;

/* 0 with the device's name when a CUDA device is usable, else -1 with why. */
int cuda_dev_probe(char *name, size_t namesz, ErrMsg *e);

typedef struct CudaNet CudaNet;
CudaNet *cuda_net_create(const CudaNetDesc *d, ErrMsg *e);
/* Uploads the weights again (same shapes as at create). */
int cuda_net_upload(CudaNet *net, const CudaNetDesc *d, ErrMsg *e);
/* probs (n, n_labels) on the host <- softmax(net(x)); x (n, n_mels, frames) mel dB, on the
 * host (x_on_device 0) or already on the device (1, e.g. cuda_mel_run's output). */
int cuda_net_forward(CudaNet *net, float *probs, const float *x, int x_on_device, int n,
                     int frames, ErrMsg *e);
void cuda_net_free(CudaNet *net);

/* Host destinations of one training step, in the model's own layout. Gradients are assigned
 * (not added); mean/var are the batch's per-channel mean and unbiased variance, from which
 * the caller updates the running statistics as the CPU does. */
typedef struct CudaTrainOut {
    float *dw[CUDA_MAX_BLOCKS], *db[CUDA_MAX_BLOCKS];      /* (cout, cin, 3, 3), (cout) */
    float *dg[CUDA_MAX_BLOCKS], *dbeta[CUDA_MAX_BLOCKS];   /* (cout) each */
    float *mean[CUDA_MAX_BLOCKS], *var[CUDA_MAX_BLOCKS];   /* (cout) each */
    float *ddw[CUDA_MAX_DENSE], *ddb[CUDA_MAX_DENSE];      /* (out, in), (out) */
    float *logits;                                         /* (n, n_labels) */
    double loss;                                           /* mean soft-target cross-entropy */
} CudaTrainOut;
/* One training-mode forward (batch statistics; masks[i] (n, dense[i].in) is dense layer i's
 * inverted-dropout mask, NULL for none) and the backward pass, on the host inputs x (n,
 * n_mels, frames) mel dB and targets (n, n_labels). head_only: only the dense layers'
 * gradients are computed and written. Uses the weights of the last create/upload. */
int cuda_net_train(CudaNet *net, CudaTrainOut *o, const float *x, const float *targets,
                   const float *const *masks, int n, int frames, int head_only, ErrMsg *e);

typedef struct CudaMelDesc {
    int n_fft, hop, n_mels, n_bins;
    const double *window; /* (n_fft) periodic Hann */
    const double *fb;     /* (n_mels, n_bins) Slaney filter bank */
} CudaMelDesc;

typedef struct CudaMel CudaMel;
CudaMel *cuda_mel_create(const CudaMelDesc *d, ErrMsg *e);
/* Mel dB of n_windows windows of n_samples host samples each (back to back).
 * out_host non-NULL: copied there, (n_windows, n_mels, frames). out_dev non-NULL: *out_dev
 * gets the device copy (owned by cm, valid until its next run). The caller holds cm's lock
 * (cuda_mel_lock) around the call and for as long as it reads *out_dev. */
int cuda_mel_run(CudaMel *cm, float *out_host, float **out_dev, const float *samples,
                 int n_windows, int n_samples, ErrMsg *e);
void cuda_mel_lock(CudaMel *cm);
void cuda_mel_unlock(CudaMel *cm);
void cuda_mel_free(CudaMel *cm);

#ifdef __cplusplus
}
#endif

#endif
