/* features: log-mel spectrograms exactly as DESIGN.md §3 defines them (librosa 0.10
 * melspectrogram + power_to_db, per-window max reference, -80 dB floor).
 * A MelPlan holds the FFTW plan, the Hann window and the filter bank; it is created once and
 * then used from any number of threads at the same time (mel_compute allocates its own
 * scratch buffers and uses FFTW's new-array execute, which is thread-safe). */
#ifndef GENRED_MEL_H
#define GENRED_MEL_H

#include "common.h"

typedef struct MelPlan MelPlan;

/* sample_rate 22050, n_fft 2048, hop 512, n_mels 64 for the shipped models. */
MelPlan *mel_plan_create(int sample_rate, int n_fft, int hop, int n_mels, ErrMsg *e);
void mel_plan_free(MelPlan *p);

int mel_n_mels(const MelPlan *p);
/* Frames for n samples with center=True: 1 + n / hop (173 for 88200). */
int mel_frames(const MelPlan *p, int n_samples);

/* out: (n_mels, mel_frames(n_samples)) row-major, in dB within [-80, 0].
 * n_samples must be >= 1. */
void mel_compute(const MelPlan *p, const float *samples, int n_samples, float *out);

/* The power mel spectrogram before dB conversion (same layout), for training code that
 * crops frames and converts to dB itself with mel_power_to_db. */
void mel_compute_power(const MelPlan *p, const float *samples, int n_samples, float *out);
/* mel_compute for n_windows windows of n_samples each, back to back in samples:
 * out (n_windows, n_mels, mel_frames(n_samples)). On the device when the plan has one
 * (mel_plan_set_device); a device failure logs one line and the CPU computes instead (out of
 * device memory first halves the batch). Returns 0, or -1 with e for bad sizes. */
int mel_compute_batch(const MelPlan *p, const float *samples, int n_windows, int n_samples,
                      float *out, ErrMsg *e);

/* Where mel_compute_batch runs: 0 auto (GPU when a backend is registered and usable), 1 CPU,
 * 2 CUDA (-1 with the reason when no GPU is usable); the numbers match nn.h's NnDevice.
 * Returns the device now in use (1 or 2). Call before sharing the plan between threads. */
int mel_plan_set_device(MelPlan *p, int device, ErrMsg *e);

/* In-place dB conversion of n values with the max taken over those n values (DESIGN.md §3). */
void mel_power_to_db(float *s, int n);

#endif
