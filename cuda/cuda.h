/* cuda: the GPU backend of nn (CNN forward on cuDNN + cuBLAS) and features (mel on cuFFT +
 * cuBLAS), behind their backend tables (nn/nn_backend.h, features/mel_backend.h).
 * A program calls cuda_backend_init once at start-up; afterwards nn_model_set_device and
 * mel_plan_set_device pick the GPU at run time. A build without CUDA links a stub whose
 * cuda_backend_init says so, so callers need no #ifdef.
 * Training: nn_train_grads/nn_train_step of a model on the GPU run forward + backward on the
 * device (cnn.cu); the AdamW/SGD step stays on the host (net.c) and the weights are uploaded
 * again before the next device call.
 * Invariants: nothing here exits or aborts on a device error; errors come back as ErrMsg, and
 * nn/features fall back to the CPU with one log line. GENRED_CUDA_FAIL=1 in the environment
 * makes every GPU forward and mel call fail (tests of the fallback path). */
#ifndef GENRED_CUDA_H
#define GENRED_CUDA_H

#include <stddef.h>

#include "common.h"
#include "mel.h"
#include "nn.h"

/* 1 when this genred was built with the CUDA backend, 0 for the stub. */
extern const int cuda_built;

/* Registers the CUDA backends with nn and features. 0 when registered (a GPU may still be
 * missing: set_device probes), -1 with the reason when built without CUDA. Call once, before
 * models and mel plans are shared between threads. */
int cuda_backend_init(ErrMsg *e);

/* 0 with the device's name ("NVIDIA H100 80GB HBM3") when a GPU is usable, else -1 with
 * the reason ("no CUDA device (...)", "built without CUDA"). */
int cuda_probe(char *name, size_t namesz, ErrMsg *e);

/* Mel then CNN with the windows staying on the device: samples (n_windows, n_samples) ->
 * probs (n_windows, n_labels). m and p must have been put on the GPU (set_device returned
 * 2); otherwise, or after a device failure, this computes on the CPU (mel_compute_batch +
 * nn_forward). Returns 0 or -1 with e for bad input. */
int cuda_score_samples(NnModel *m, const MelPlan *p, const float *samples, int n_windows,
                       int n_samples, float *probs, ErrMsg *e);

#endif
