/* train/augment.c: waveform augmentation for fine-tuning and noisy evaluation: white and pink
 * noise at a signal-to-noise ratio, a second file mixed in at a lower level, and band limits
 * like a phone line or a cheap microphone (RBJ biquads).
 * Why on the waveform and not on the mel spectrogram: a sum of signals is a sum of complex
 * spectra, not of power mel bands, and each window is converted to dB relative to its own max
 * afterwards; only the waveform gives the spectrogram a noisy recording really has. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

int train_noise_parse(const char *s)
{
    if (!strcmp(s, "white")) return TRAIN_NOISE_WHITE;
    if (!strcmp(s, "pink")) return TRAIN_NOISE_PINK;
    return -1;
}

const char *train_noise_name(int kind)
{
    return kind == TRAIN_NOISE_PINK ? "pink" : kind == TRAIN_NOISE_WHITE ? "white" : "none";
}

static double mean_square(const float *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n > 0 ? s / n : 0;
}

/* Unit-variance-ish Gaussian noise of the colour kind into out[0..n). Pink: Paul Kellett's
 * refined filter of white noise (a sum of seven one-pole sections approximating -3 dB/octave),
 * run in first so its slow sections start settled. The level is set by the caller from the
 * measured mean square, so the filter's gain does not matter. */
static void make_noise(Rng *r, int kind, float *out, int n)
{
    if (kind != TRAIN_NOISE_PINK) {
        for (int i = 0; i < n; i++) out[i] = (float)rng_normal(r);
        return;
    }
    double b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0;
    for (int i = -4096; i < n; i++) {
        double w = rng_normal(r);
        b0 = 0.99886 * b0 + w * 0.0555179;
        b1 = 0.99332 * b1 + w * 0.0750759;
        b2 = 0.96900 * b2 + w * 0.1538520;
        b3 = 0.86650 * b3 + w * 0.3104856;
        b4 = 0.55000 * b4 + w * 0.5329522;
        b5 = -0.7616 * b5 - w * 0.0168980;
        double p = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362;
        b6 = w * 0.115926;
        if (i >= 0) out[i] = (float)p;
    }
}

/* x += noise scaled to mean square ms(x) / 10^(db/10); nothing when x or noise is silent. */
static void add_below(float *x, const float *noise, int n, double db)
{
    double px = mean_square(x, n), pn = mean_square(noise, n);
    if (px <= 0 || pn <= 0) return;
    float g = (float)sqrt(px / pn / pow(10.0, db / 10.0));
    for (int i = 0; i < n; i++) x[i] += g * noise[i];
}

void train_add_noise(float *x, int n, int kind, double snr_db, uint64_t seed)
{
    if (n <= 0 || kind < 0) return;
    Rng r;
    rng_seed(&r, seed);
    float *noise = xmalloc((size_t)n * sizeof(float));
    make_noise(&r, kind, noise, n);
    add_below(x, noise, n, snr_db);
    free(noise);
}

/* One RBJ-cookbook biquad (Q 1/sqrt 2), low-pass or high-pass, run in place in double. */
static void biquad(float *x, int n, int sample_rate, double f0, int highpass)
{
    double w0 = 2 * M_PI * f0 / sample_rate, c = cos(w0), alpha = sin(w0) / (2 * M_SQRT1_2);
    double b0, b1, b2;
    if (highpass) {
        b0 = (1 + c) / 2;
        b1 = -(1 + c);
    } else {
        b0 = (1 - c) / 2;
        b1 = 1 - c;
    }
    b2 = b0;
    double a0 = 1 + alpha, a1 = -2 * c, a2 = 1 - alpha;
    b0 /= a0, b1 /= a0, b2 /= a0, a1 /= a0, a2 /= a0;
    double z1 = 0, z2 = 0; /* transposed direct form II */
    for (int i = 0; i < n; i++) {
        double in = x[i], out = b0 * in + z1;
        z1 = b1 * in - a1 * out + z2;
        z2 = b2 * in - a2 * out;
        x[i] = (float)out;
    }
}

void train_augment_draw(Rng *r, const TrainAugment *a, TrainAugDraw *d)
{
    d->mix = rng_uniform(r) < a->mix_prob;
    d->mix_db = rng_range(r, a->mix_db_min, a->mix_db_max);
    d->noise = rng_uniform(r) < a->noise_prob;
    d->snr_db = rng_range(r, a->snr_min, a->snr_max);
    d->noise_kind = rng_uniform(r) < a->pink_share ? TRAIN_NOISE_PINK : TRAIN_NOISE_WHITE;
    d->band = rng_uniform(r) < a->band_prob;
    if (rng_uniform(r) < 0.5) { /* a phone line */
        d->hp_hz = 300;
        d->lp_hz = 3400;
        rng_uniform(r), rng_uniform(r); /* keep the number of draws fixed */
    } else {                            /* a cheap microphone */
        d->hp_hz = rng_range(r, 80, 200);
        d->lp_hz = rng_range(r, 2000, 8000);
    }
}

void train_augment_apply(Rng *r, const TrainAugDraw *d, int sample_rate, float *wave, int n,
                         const float *other, float *scratch)
{
    if (d->mix && other) add_below(wave, other, n, d->mix_db);
    if (d->noise) {
        make_noise(r, d->noise_kind, scratch, n);
        add_below(wave, scratch, n, d->snr_db);
    }
    if (d->band) {
        double nyq = 0.45 * sample_rate;
        double lp = d->lp_hz < nyq ? d->lp_hz : nyq;
        /* two passes each: 24 dB/octave skirts, closer to a real phone band than 12 */
        for (int k = 0; k < 2; k++) {
            biquad(wave, n, sample_rate, d->hp_hz, 1);
            biquad(wave, n, sample_rate, lp, 0);
        }
    }
}
