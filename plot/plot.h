/* plot: pictures through cairo: mel spectrograms like librosa's specshow (magma colour map,
 * time and mel axes, colour bar in dB) and confusion matrices. PNG or SVG by file extension.
 * Files are written to a temp name and renamed. */
#ifndef GENRED_PLOT_H
#define GENRED_PLOT_H

#include <stddef.h>

#include "common.h"

/* Draws n_windows spectrograms, each (n_mels, frames) in dB [-80, 0], stacked vertically. */
int plot_mel_png(const char *path, const float *db, int n_windows, int n_mels, int frames,
                 int sample_rate, int hop, const char *title, ErrMsg *e);
/* The same picture as PNG bytes in memory: *png (malloc'd, free() it) of *len bytes. */
int plot_mel_png_mem(unsigned char **png, size_t *len, const float *db, int n_windows, int n_mels,
                     int frames, int sample_rate, int hop, const char *title, ErrMsg *e);

/* counts: (n, n) row = true label, column = predicted. */
int plot_confusion(const char *path, const int *counts, int n, const char *const *labels,
                   const char *title, ErrMsg *e);

#endif
