/* pipeline: decode -> mel -> CNN for a list of tracks (DESIGN.md §1).
 * It loads nothing itself: the caller owns the model (borrowed for the duration of a call).
 * A pool of worker threads decodes each track's windows and computes their mel spectrograms
 * (one shared MelPlan); the calling thread takes the windows of every track decoded so far
 * (at most `batch` tracks) and scores them with ONE nn_forward call while the workers go on
 * decoding the next tracks. When the model runs on the GPU the workers only decode, and the
 * calling thread computes the mel spectrograms of the whole batch with one mel_compute_batch
 * on the device before the nn_forward (batch_mel).
 * Results come back through a callback that always runs on the calling thread (so callers
 * need no locks), either in input order or as batches complete.
 * Not here: tagging, printing, walking folders (that is the command line's job). */
#ifndef GENRED_PIPELINE_H
#define GENRED_PIPELINE_H

#include <stdio.h>

#include "common.h"
#include "decode.h"
#include "nn.h"

/* How audio becomes the net's input: the decode windows and the mel settings. */
typedef struct PipelineSettings {
    DecodeOptions decode; /* rate, window length, windows, short-track policy */
    int n_fft;            /* 2048 */
    int hop;              /* 512 */
    int n_mels;           /* 64 */
    int min_frames;       /* a shorter (fcn, whole-track) window is zero-padded to this width */
} PipelineSettings;

/* DESIGN.md defaults (seed-cnn): 22050 Hz, 6 x 4 s windows, PAD, 2048/512/64. */
PipelineSettings pipeline_settings_default(void);
/* The settings a model expects: its rate, window length and count, mel sizes; PAD for a
 * fixed-width net (seed-cnn), WHOLE for one with global pooling (fcn). */
PipelineSettings pipeline_settings_from_model(const NnInfo *info);

/* One track's outcome. Pointers are owned by the pipeline and valid only during the callback. */
typedef struct PipelineResult {
    int index;            /* position in the input list */
    const char *path;     /* the caller's string */
    int ok;               /* 1: the fields below hold a result; 0: err says why not */
    ErrMsg err;           /* reason without the file name */
    int n_labels;
    const float *probs;   /* (n_labels) mean of the windows' softmax outputs */
    int n_windows;        /* 6, or 1 for a short track */
    const float *window_probs; /* (n_windows, n_labels) */
    int top;              /* argmax of probs */
    float confidence;     /* probs[top] */
    int64_t track_samples; /* as decode_windows reports it */
    const float *mel;     /* keep_mel: (n_windows, n_mels, mel_frames) dB the net scored; else NULL */
    int n_mels, mel_frames;
} PipelineResult;

/* Writes r (an ok result) as the one JSON object `genred classify --json` prints per file and
 * `POST /api/classify` answers with: path, genre (display name), label, confidence, model,
 * probabilities {label: p}, windows [[p...]...]; no newline after it. Every consumer of that
 * object goes through here, so a field added here reaches all of them. */
void pipeline_result_json(FILE *f, const PipelineResult *r, const NnInfo *info);

/* Returns nonzero to stop the run early (the tracks not yet delivered are dropped). */
typedef int (*PipelineCallback)(const PipelineResult *r, void *user);

typedef struct PipelineOptions {
    int jobs;    /* decode + mel worker threads; <= 0: common_cpu_count() */
    int batch;   /* most tracks per nn_forward call; <= 0: 16 */
    int ordered; /* 1: deliver in input order; 0: as each batch completes */
    int batch_mel; /* 0: auto (when the model runs on the GPU); 1: always (the batch's mel in
                    * one mel_compute_batch, on the GPU when usable, else the CPU); -1 never
                    * (every worker computes its own track's mel on the CPU). Both give the
                    * same numbers on the CPU; batch_mel queues samples (2.1 MB a track)
                    * instead of spectrograms (265 kB) */
    int keep_mel;  /* 1: results carry the mel windows they were scored on (r->mel) */
    double max_whole_seconds; /* > 0: a track that must be decoded whole may be at most this
                               * long (DecodeOptions.max_whole_samples): for untrusted input */
} PipelineOptions;

/* Classifies paths[0..n-1] with model m, calling cb once per track (also for failed ones).
 * Returns 0 when every track was delivered (each may still have failed: see r->ok), 1 when
 * the callback stopped the run, -1 with a reason in e when the pipeline itself could not
 * run (bad settings, thread creation failed). */
int pipeline_classify(NnModel *m, const char *const *paths, int n, const PipelineOptions *o,
                      PipelineCallback cb, void *user, ErrMsg *e);

/* A track held in memory (an upload): its bytes, and the name its result carries as r->path.
 * It never touches the filesystem (decode_windows_mem). */
typedef struct PipelineBuffer {
    const void *data;
    size_t len;
    const char *name;
} PipelineBuffer;

/* pipeline_classify for tracks held in memory; the buffers are read during the call only. */
int pipeline_classify_buffers(NnModel *m, const PipelineBuffer *bufs, int n,
                              const PipelineOptions *o, PipelineCallback cb, void *user,
                              ErrMsg *e);

/* The mel windows of one file as the net would see them before input scaling:
 * *db (malloc'd, free() it): (n_windows, n_mels, frames) in dB within [-80, 0]. */
int pipeline_mel(const char *path, const PipelineSettings *s, float **db, int *n_windows,
                 int *n_mels, int *frames, ErrMsg *e);

#endif
