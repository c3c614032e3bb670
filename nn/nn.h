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

#endif
