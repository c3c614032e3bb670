/* decode: any audio file FFmpeg reads -> mono float32 at a fixed rate (22050 Hz).
 * It is not a player: it produces the analysis windows of DESIGN.md §2, seeking so that only
 * those windows (plus codec preroll) are decoded, or a whole track for training.
 * Thread-safe: calls share no state; each call opens its own FFmpeg contexts.
 * Errors: a one-line reason in ErrMsg (the caller adds the file name); never aborts on bad input. */
#ifndef GENRED_DECODE_H
#define GENRED_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* What to do with a track shorter than one window (DESIGN.md §2). */
enum DecodeShortPolicy {
    DECODE_SHORT_PAD = 0,   /* one window of window_samples, zero-padded at the end (seed-cnn) */
    DECODE_SHORT_WHOLE = 1, /* one window holding the whole track, shorter than W (fcn) */
};

typedef struct DecodeOptions {
    int sample_rate;    /* output rate, 22050 */
    int window_samples; /* W: samples per window, 88200 for 4 s */
    int n_windows;      /* 6 */
    int short_policy;   /* enum DecodeShortPolicy */
    /* > 0: a track that has to be decoded whole (no usable duration to seek by, as in a
     * browser's recording) may be at most this many output samples; a longer one is an error
     * ("too long to decode without seeking"), so untrusted input cannot make the decoder hold
     * hours of samples. 0: no limit (the user's own files). */
    int64_t max_whole_samples;
} DecodeOptions;

/* The defaults of DESIGN.md §2: 22050 Hz, 4 s windows, 6 of them, pad short tracks. */
DecodeOptions decode_default_options(void);

typedef struct DecodeWindows {
    float *samples;          /* (n_windows, window_len) row-major, mono, nominally in [-1, 1] */
    int n_windows;           /* 6, or 1 for a track shorter than one window */
    int window_len;          /* W, or the track length for DECODE_SHORT_WHOLE */
    int64_t track_samples;   /* N: track length in output samples, as a full decode gives it */
    int64_t decoded_samples; /* output-rate samples actually decoded (to show seeking works) */
} DecodeWindows;

/* Decodes the windows of DESIGN.md §2 from path. Returns 0, or -1 with a reason in e
 * ("no audio stream", "not a recognised audio format", "empty file", "no audio samples", ...).
 * Windows are the same samples a decode_all + slice would give (bit-exact in the tests, except
 * AAC noise substitution, which differs by low-level noise after a seek). The length N comes
 * from decoding the last seconds after a seek (so encoder delay and padding count as a full
 * decode counts them); when the container only estimates its duration (VBR mp3 without a
 * Xing header, raw streams) or a seek misbehaves, the whole track is decoded and sliced. */
int decode_windows(const char *path, const DecodeOptions *opt, DecodeWindows *out, ErrMsg *e);
void decode_windows_free(DecodeWindows *w);
/* The same from a file held in memory (an upload): FFmpeg reads it through an AVIOContext over
 * the buffer, so it never touches the filesystem; the format is found from the content alone.
 * data is only read, and only during the call. */
int decode_windows_mem(const void *data, size_t len, const DecodeOptions *opt, DecodeWindows *out,
                       ErrMsg *e);

/* Decodes the whole track to mono float32 at sample_rate (malloc'd into *samples).
 * max_samples > 0 stops after that many output samples (0: no limit). */
int decode_all(const char *path, int sample_rate, int64_t max_samples, float **samples,
               int64_t *n_samples, ErrMsg *e);

/* Start of window i (0-based) of n for a track of n_track samples and windows of w samples. */
int64_t decode_window_start(int64_t n_track, int w, int i, int n);

/* True when the file name has an extension we treat as audio when walking folders. */
int decode_is_audio_name(const char *path);

#endif
