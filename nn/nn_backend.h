/* nn_backend: the table a device backend (cuda/) fills in so that nn_forward can run a whole
 * network on it. Not a public header for applications: only nn/ and the backends include it.
 * The unit is a network, not a layer, because activations must stay on the device between
 * layers; inside, a backend keeps llm.c's twin layout (one function per layer kind, outputs
 * first). Dependencies point one way: nn never includes a backend's headers, the backend
 * registers itself here at start-up (before any model is loaded or shared by threads).
 * Invariants: forward may be called from several threads at once on one net (the backend
 * serialises); a backend never exits and never logs errors itself, it returns them. */
#ifndef GENRED_NN_BACKEND_H
#define GENRED_NN_BACKEND_H

#include <stddef.h>

#include "nn_internal.h"

/* forward's return value for "out of device memory": nn_forward halves the batch and retries. */
#define NN_BACKEND_EOOM (-2)

typedef struct NnBackend {
    const char *name; /* "cuda" */
    /* 0 when a device is usable (its name in desc), else -1 with the reason. */
    int (*probe)(char *desc, size_t descsz, ErrMsg *e);
    /* Uploads m's weights and prepares per-model device state. */
    void *(*net_create)(const NnModel *m, ErrMsg *e);
    /* Uploads the weights again (they changed on the host); same layout. */
    int (*net_upload)(void *net, const NnModel *m, ErrMsg *e);
    /* probs (n, n_labels) <- softmax(net(x)), x (n, n_mels, frames) mel dB on the host,
     * shapes already checked. 0, -1 with e, or NN_BACKEND_EOOM. */
    int (*forward)(void *net, float *probs, const float *x, int n, int frames, ErrMsg *e);
    void (*net_free)(void *net);
    /* Optional (NULL: training stays on the CPU). nn_train_grads on the device: one
     * training-mode forward (batch statistics; masks[i] (n, dense[i].in) is dense layer i's
     * dropout mask, drawn by nn from the trainer's generator, or NULL) and backward. grads
     * (n_params, model layout) was zeroed by the caller and gets the gradients (head_only:
     * the dense head's only); the model's running statistics are updated as the CPU does;
     * *loss and logits (n, n_labels) as nn_train_grads. 0, -1 with e, or NN_BACKEND_EOOM. */
    int (*train_grads)(void *net, NnModel *m, float *grads, float *loss, float *logits,
                       const float *x, const float *targets, const float *const *masks, int n,
                       int frames, int head_only, ErrMsg *e);
} NnBackend;

/* Registers the backend behind NN_DEVICE_CUDA (the last registration wins; NULL removes it). */
void nn_backend_register(const NnBackend *b);
const NnBackend *nn_backend_get(void);

#endif
