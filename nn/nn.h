/* nn: the genre CNN on the CPU (im2col + OpenBLAS sgemm), its safetensors model file
 * (DESIGN.md §4–§5), and (for training) backward passes and optimizers.
 * A model is read-only once loaded: nn_forward may be called from several threads at once on
 * the same model (each call uses its own scratch memory). Errors come back in ErrMsg. */
#ifndef GENRED_NN_H
#define GENRED_NN_H

#include <stdint.h>

#include "common.h"

typedef struct NnModel NnModel;

/* Everything a caller needs to feed the model: validated from the file's __metadata__. */
typedef struct NnInfo {
    char arch[32];         /* "seed-cnn" or "fcn" */
    int n_labels;
    char **labels;         /* (n_labels) label names in output order, e.g. "hiphop" */
    char **display_names;  /* (n_labels) names written to GENRE, e.g. "Hip-Hop" */
    int sample_rate;       /* 22050 */
    int n_fft;             /* 2048 */
    int hop_length;        /* 512 */
    int n_mels;            /* 64 */
    double window_seconds; /* 4 */
    int window_samples;    /* window_seconds * sample_rate = 88200 */
    int windows;           /* 6 */
    int fixed_frames;      /* frames the net requires (173 for seed-cnn), 0 when any width works */
    int min_frames;        /* smallest width the net accepts */
    float input_scale;     /* net input = (mel_db + input_shift) * input_scale */
    float input_shift;
    float bn_eps;
    char id[13];           /* first 12 hex digits of the model file's SHA-256 ("" if unsaved) */
} NnInfo;

/* Loads and validates a model: every tensor name, dtype, shape and the metadata; refuses
 * truncated files, unknown or missing tensors, and bad metadata with a clear reason. */
NnModel *nn_model_load(const char *path, ErrMsg *e);
void nn_model_free(NnModel *m);
const NnInfo *nn_model_info(const NnModel *m);

/* Scores n windows of mel dB values, x: (n, n_mels, frames) as mel_compute returns them
 * (input scaling is applied inside). probs: (n, n_labels) softmax outputs.
 * frames must equal fixed_frames when that is non-zero, and be >= min_frames. */
int nn_forward(NnModel *m, const float *x, int n, int frames, float *probs, ErrMsg *e);

/* Where nn_forward runs. The numbers match the config's `device` (auto, cpu, cuda). A GPU
 * backend exists only when the program registered one (cuda_backend_init); without it every
 * model runs on the CPU. A device failure during nn_forward never reaches the caller: out of
 * memory halves the batch and retries, anything else logs one line and the model goes on
 * scoring on the CPU. A trainer whose model is on the GPU computes forward + backward there
 * (the same dropout masks as the CPU would draw) and its optimizer step on the host; a device
 * failure while training logs one line and the CPU trains from then on. */
enum NnDevice { NN_DEVICE_AUTO = 0, NN_DEVICE_CPU = 1, NN_DEVICE_CUDA = 2 };
/* Picks the device for m and uploads its weights there. AUTO: the GPU when one is usable,
 * else the CPU (never an error). CUDA: -1 with the reason when no GPU is usable. Returns the
 * device now in use (NN_DEVICE_CPU or NN_DEVICE_CUDA). Not thread-safe against nn_forward on
 * the same model: call it before sharing the model. */
int nn_model_set_device(NnModel *m, int device, ErrMsg *e);
/* NN_DEVICE_CPU or NN_DEVICE_CUDA (CPU again after a device failure). */
int nn_model_device(const NnModel *m);
/* "cpu" or e.g. "cuda (NVIDIA H100 80GB HBM3)", for a log line. */
const char *nn_model_device_name(const NnModel *m);

/* ---- Building and training models (used by `genred train` / `finetune`) ----
 * Conventions (llm.c): parameters, gradients and AdamW m/v each live in one allocation;
 * backward adds into parameter gradients and assigns activation gradients. Deterministic for
 * a given seed and thread count. */

typedef struct NnArchConfig {
    const char *arch;                  /* "seed-cnn" or "fcn" */
    int n_labels;
    const char *const *labels;         /* (n_labels) */
    const char *const *display_names;  /* (n_labels), NULL: same as labels */
    int fcn_blocks;                    /* fcn: number of conv blocks, 0: default */
    int fcn_channels[8];               /* fcn: channels per block, 0: default */
    float dropout;                     /* before the dense layer(s); <0: arch default */
    float input_scale, input_shift;    /* 0,0: defaults (1/80, +40: dB [-80,0] -> [-0.5,0.5]) */
} NnArchConfig;

/* A new model with He (conv, ReLU dense) / Glorot (last dense) initialisation from seed. */
NnModel *nn_model_new(const NnArchConfig *c, uint64_t seed, ErrMsg *e);
/* A deep copy (weights, running statistics, metadata). */
NnModel *nn_model_clone(const NnModel *m);
/* Copies parameters and running statistics of src into dst (same architecture). */
void nn_model_copy_weights(NnModel *dst, const NnModel *src);
/* The batch-norm running statistics, all in one array of nn_model_bn_count floats: for a
 * trainer that keeps the statistics of some batches only (fine-tuning keeps those of clean
 * batches, so noisy ones do not move what clean audio is scored with). set marks the device
 * copy stale. */
int64_t nn_model_bn_count(const NnModel *m);
void nn_model_bn_get(const NnModel *m, float *out);
void nn_model_bn_set(NnModel *m, const float *in);
/* Weight averaging: avg = decay*avg + (1-decay)*m over the parameters and the batch-norm
 * running statistics (same architecture; else logged and ignored). Marks avg's device copy stale. */
void nn_model_ema(NnModel *avg, const NnModel *m, float decay);
/* Adds or replaces a __metadata__ string (e.g. "command", "train_list", "date"). The keys that
 * describe the net itself (format, arch, labels, display_names, sample_rate, n_fft, hop_length,
 * n_mels, window_seconds, windows, input_scale, input_shift, bn_eps, fcn_channels, dropout) are
 * written from the model on save; setting them here is ignored with a warning. */
void nn_model_set_meta(NnModel *m, const char *key, const char *value);
const char *nn_model_get_meta(const NnModel *m, const char *key);
/* Writes the safetensors file atomically and sets info->id from its SHA-256. */
int nn_model_save(NnModel *m, const char *path, ErrMsg *e);

enum NnOptimKind { NN_ADAMW = 0, NN_SGD = 1 };
typedef struct NnOptim {
    int kind;           /* enum NnOptimKind */
    float lr;           /* default learning rate (nn_train_step may override per step) */
    float beta1, beta2, eps; /* 0: the usual 0.9, 0.999, 1e-8 */
    float weight_decay; /* decoupled (AdamW) / L2 (SGD); on kernels and weight matrices only */
    float momentum;     /* SGD */
    int freeze_conv;    /* update only the dense head (fine-tuning); batch norm still uses
                         * batch statistics in training mode and updates its running ones */
} NnOptim;

typedef struct NnTrainer NnTrainer;
NnTrainer *nn_trainer_new(NnModel *m, const NnOptim *o, uint64_t seed, ErrMsg *e);
void nn_trainer_free(NnTrainer *t);

/* Forward in training mode (dropout on, batch norm with batch statistics and running-stat
 * update with PyTorch's momentum 0.1 and unbiased variance), mean soft-target cross-entropy
 * against targets (n, n_labels) rows summing to 1, backward, then one optimizer step with
 * learning rate lr. *loss gets the batch loss; logits (n, n_labels) may be NULL. */
int nn_train_step(NnTrainer *t, const float *x, int n, int frames, const float *targets,
                  float lr, float *loss, float *logits, ErrMsg *e);
/* The same forward + backward without the optimizer step, for reference and gradient tests;
 * dropout can be switched off so the result is comparable with a twin implementation. */
int nn_train_grads(NnTrainer *t, const float *x, int n, int frames, const float *targets,
                   int dropout_on, float *loss, float *logits, ErrMsg *e);
/* The gradient of a named parameter ("conv1.weight") after nn_train_grads; NULL if unknown. */
const float *nn_trainer_grad(const NnTrainer *t, const char *name, int64_t *count);
/* Names of the trainable parameters, in file order (n_params entries). */
int nn_model_param_names(const NnModel *m, const char ***names);

#endif
