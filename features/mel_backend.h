/* mel_backend: the table a device backend (cuda/) fills in so that mel_compute_batch can run
 * on it, and the read-only plan parameters it needs to reproduce mel_compute exactly.
 * Not for applications: only features/ and the backends include it. features never includes
 * a backend's headers; the backend registers itself at start-up, before plans are created.
 * Invariants: compute_batch may be called from several threads at once on one device plan
 * (the backend serialises); it returns errors, it never logs or exits. */
#ifndef GENRED_MEL_BACKEND_H
#define GENRED_MEL_BACKEND_H

#include "mel.h"

/* compute_batch's return value for "out of device memory": the caller halves the batch. */
#define MEL_BACKEND_EOOM (-2)

typedef struct MelBackend {
    const char *name; /* "cuda" */
    /* Device state for plan p (window, filter bank, FFT plans); NULL with e when unusable. */
    void *(*plan_create)(const MelPlan *p, ErrMsg *e);
    /* out (n_windows, n_mels, frames) on the host, as mel_compute_batch documents.
     * 0, -1 with e, or MEL_BACKEND_EOOM. */
    int (*compute_batch)(void *dp, float *out, const float *samples, int n_windows,
                         int n_samples, ErrMsg *e);
    void (*plan_free)(void *dp);
} MelBackend;

void mel_backend_register(const MelBackend *b);

int mel_plan_n_fft(const MelPlan *p);
int mel_plan_hop(const MelPlan *p);
int mel_plan_n_bins(const MelPlan *p); /* n_fft / 2 + 1 */
/* (n_fft) the periodic Hann window mel_compute uses. */
const double *mel_plan_window(const MelPlan *p);
/* Fills fb (n_mels, n_bins) row-major with the dense Slaney filter bank. */
void mel_plan_filter_bank(const MelPlan *p, double *fb);
/* The backend's state for p (plan_create's result), NULL when p computes on the CPU or its
 * device failed: for a backend that chains mel into its own CNN without a host round trip. */
void *mel_plan_device(const MelPlan *p);

#endif
