/* features: log-mel spectrograms as DESIGN.md §3 defines them (librosa 0.10 melspectrogram with
 * center=True and zero padding, Slaney mel filter bank, power_to_db with the window's max as
 * reference and an 80 dB floor).
 * Not here: decoding, windowing of tracks (DESIGN.md §2), the GPU twin (cuda/).
 * Invariants: a MelPlan is immutable after mel_plan_create, so any number of threads may call
 * mel_compute on one plan at once; each call owns its scratch (fftw_malloc'd, so its alignment
 * matches the plan's) and runs it through fftw_execute_dft_r2c, the thread-safe new-array
 * execute. Only the FFTW planner (create/destroy) is serialised, by plan_lock.
 * Everything up to the dB conversion is computed in double; only the output is float. */
#include "mel.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include "mel_backend.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FFTW's planner keeps global state and is not thread-safe. */
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

#define MEL_AMIN 1e-10
#define MEL_TOP_DB 80.0

typedef struct MelBand {
    int start; /* first FFT bin with a nonzero weight */
    int count; /* number of bins from start; 0 for a band narrower than one bin */
    double *w; /* (count) weights, Slaney-normalised; points into MelPlan.weights */
} MelBand;

struct MelPlan {
    int sample_rate, n_fft, hop, n_mels, n_bins; /* n_bins = n_fft/2 + 1 */
    fftw_plan fft;
    double *window;  /* (n_fft) periodic Hann */
    MelBand *bands;  /* (n_mels) */
    double *weights; /* all bands' nonzero weights back to back */
    /* the device side (mel_backend.h): NULL on the CPU; dev_dead set after a device failure */
    const MelBackend *dev;
    void *dev_plan;
    _Atomic int dev_dead;
};

static const MelBackend *registered;

/* Slaney's auditory scale as librosa 0.10 implements it (htk=False): linear (200/3 Hz per mel)
 * below 1 kHz, logarithmic above with a step of ln(6.4)/27 per mel. */
static const double slaney_f_sp = 200.0 / 3.0;
static const double slaney_min_log_hz = 1000.0;
static const double slaney_min_log_mel = 1000.0 / (200.0 / 3.0);

static double slaney_logstep(void) { return log(6.4) / 27.0; }

static double hz_to_mel(double hz)
{
    if (hz >= slaney_min_log_hz)
        return slaney_min_log_mel + log(hz / slaney_min_log_hz) / slaney_logstep();
    return hz / slaney_f_sp;
}

static double mel_to_hz(double mel)
{
    if (mel >= slaney_min_log_mel)
        return slaney_min_log_hz * exp(slaney_logstep() * (mel - slaney_min_log_mel));
    return slaney_f_sp * mel;
}

/* librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm='slaney'):
 * triangles between n_mels + 2 points equally spaced in mel, each scaled to unit area
 * (2 / (upper - lower) in Hz), stored as each band's nonzero run. */
static void build_filter_bank(MelPlan *p)
{
    int n_pts = p->n_mels + 2;
    double *mel_f = xmalloc((size_t)n_pts * sizeof *mel_f);
    double min_mel = hz_to_mel(0.0), max_mel = hz_to_mel(p->sample_rate / 2.0);
    for (int i = 0; i < n_pts; i++) /* np.linspace: start + i * step, the last point exact */
        mel_f[i] = mel_to_hz(i == n_pts - 1 ? max_mel
                                             : min_mel + i * ((max_mel - min_mel) / (n_pts - 1)));

    double *row = xmalloc((size_t)p->n_bins * sizeof *row);
    p->bands = xcalloc((size_t)p->n_mels, sizeof *p->bands);
    p->weights = xmalloc((size_t)p->n_mels * p->n_bins * sizeof *p->weights);
    size_t used = 0;
    for (int m = 0; m < p->n_mels; m++) {
        double fdiff_lo = mel_f[m + 1] - mel_f[m], fdiff_hi = mel_f[m + 2] - mel_f[m + 1];
        double enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        int first = -1, last = -1;
        for (int k = 0; k < p->n_bins; k++) {
            double f = (double)k * p->sample_rate / p->n_fft; /* np.fft.rfftfreq */
            double lower = -(mel_f[m] - f) / fdiff_lo;
            double upper = (mel_f[m + 2] - f) / fdiff_hi;
            double w = fmax(0.0, fmin(lower, upper));
            row[k] = w * enorm;
            if (w > 0.0) {
                if (first < 0) first = k;
                last = k;
            }
        }
        MelBand *b = &p->bands[m];
        b->start = first < 0 ? 0 : first;
        b->count = first < 0 ? 0 : last - first + 1;
        b->w = p->weights + used;
        memcpy(b->w, row + b->start, (size_t)b->count * sizeof *row);
        used += (size_t)b->count;
    }
    free(row);
    free(mel_f);
}

MelPlan *mel_plan_create(int sample_rate, int n_fft, int hop, int n_mels, ErrMsg *e)
{
    if (sample_rate <= 0 || n_fft < 2 || hop < 1 || n_mels < 1) {
        err_set(e, "bad mel parameters: sample rate %d, n_fft %d, hop %d, n_mels %d",
                sample_rate, n_fft, hop, n_mels);
        return NULL;
    }
    if (n_fft > (1 << 20) || n_mels > 4096) {
        err_set(e, "mel parameters too large: n_fft %d, n_mels %d", n_fft, n_mels);
        return NULL;
    }
    MelPlan *p = xcalloc(1, sizeof *p);
    p->sample_rate = sample_rate;
    p->n_fft = n_fft;
    p->hop = hop;
    p->n_mels = n_mels;
    p->n_bins = n_fft / 2 + 1;

    p->window = xmalloc((size_t)n_fft * sizeof *p->window);
    for (int i = 0; i < n_fft; i++) /* periodic: scipy.signal.get_window('hann', n, fftbins=True) */
        p->window[i] = 0.5 - 0.5 * cos(2.0 * M_PI * i / n_fft);
    build_filter_bank(p);

    double *in = fftw_malloc((size_t)n_fft * sizeof *in);
    fftw_complex *out = fftw_malloc((size_t)p->n_bins * sizeof *out);
    if (!in || !out) {
        fftw_free(in);
        fftw_free(out);
        mel_plan_free(p);
        err_set(e, "out of memory for fft buffers");
        return NULL;
    }
    pthread_mutex_lock(&plan_lock);
    p->fft = fftw_plan_dft_r2c_1d(n_fft, in, out, FFTW_ESTIMATE);
    pthread_mutex_unlock(&plan_lock);
    fftw_free(in);
    fftw_free(out);
    if (!p->fft) {
        mel_plan_free(p);
        err_set(e, "fftw could not plan a real fft of size %d", n_fft);
        return NULL;
    }
    return p;
}

void mel_plan_free(MelPlan *p)
{
    if (!p) return;
    if (p->dev && p->dev_plan) p->dev->plan_free(p->dev_plan);
    if (p->fft) {
        pthread_mutex_lock(&plan_lock);
        fftw_destroy_plan(p->fft);
        pthread_mutex_unlock(&plan_lock);
    }
    free(p->window);
    free(p->bands);
    free(p->weights);
    free(p);
}

int mel_n_mels(const MelPlan *p) { return p->n_mels; }

int mel_frames(const MelPlan *p, int n_samples)
{
    return n_samples < 0 ? 1 : 1 + n_samples / p->hop;
}

/* power: (n_mels, frames) in double. Frame t covers padded samples [t*hop, t*hop + n_fft), i.e.
 * original samples from t*hop - n_fft/2; anything outside [0, n) is the zero padding. */
static void power_spectrogram(const MelPlan *p, const float *x, int n, double *power)
{
    int frames = mel_frames(p, n), pad = p->n_fft / 2;
    double *buf = fftw_malloc((size_t)p->n_fft * sizeof *buf);
    fftw_complex *spec = fftw_malloc((size_t)p->n_bins * sizeof *spec);
    double *mag2 = xmalloc((size_t)p->n_bins * sizeof *mag2);
    if (!buf || !spec) {
        /* same policy as xmalloc: a few KB of scratch missing is not recoverable */
        fprintf(stderr, "genred: out of memory for fft scratch\n");
        abort();
    }
    for (int t = 0; t < frames; t++) {
        long start = (long)t * p->hop - pad;
        for (int i = 0; i < p->n_fft; i++) {
            long j = start + i;
            buf[i] = (j >= 0 && j < n) ? p->window[i] * (double)x[j] : 0.0;
        }
        fftw_execute_dft_r2c(p->fft, buf, spec);
        for (int k = 0; k < p->n_bins; k++)
            mag2[k] = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
        for (int m = 0; m < p->n_mels; m++) {
            const MelBand *b = &p->bands[m];
            double acc = 0.0;
            for (int k = 0; k < b->count; k++) acc += b->w[k] * mag2[b->start + k];
            power[(size_t)m * frames + t] = acc;
        }
    }
    free(mag2);
    fftw_free(spec);
    fftw_free(buf);
}

/* librosa.power_to_db(S, ref=np.max, amin=1e-10, top_db=80): an all-silent S gives 0 dB
 * everywhere (ref clamps to amin too), not -80. */
static void power_to_db(const double *s, size_t n, float *out)
{
    double ref = MEL_AMIN;
    for (size_t i = 0; i < n; i++)
        if (s[i] > ref) ref = s[i];
    double ref_db = 10.0 * log10(ref), top = -INFINITY;
    double *db = xmalloc((n ? n : 1) * sizeof *db);
    for (size_t i = 0; i < n; i++) {
        db[i] = 10.0 * log10(fmax(s[i], MEL_AMIN)) - ref_db;
        if (db[i] > top) top = db[i];
    }
    for (size_t i = 0; i < n; i++) out[i] = (float)fmax(db[i], top - MEL_TOP_DB);
    free(db);
}

void mel_compute(const MelPlan *p, const float *samples, int n_samples, float *out)
{
    size_t n = (size_t)p->n_mels * mel_frames(p, n_samples);
    double *power = xmalloc(n * sizeof *power);
    power_spectrogram(p, samples, n_samples, power);
    power_to_db(power, n, out);
    free(power);
}

void mel_compute_power(const MelPlan *p, const float *samples, int n_samples, float *out)
{
    size_t n = (size_t)p->n_mels * mel_frames(p, n_samples);
    double *power = xmalloc(n * sizeof *power);
    power_spectrogram(p, samples, n_samples, power);
    for (size_t i = 0; i < n; i++) out[i] = (float)power[i];
    free(power);
}

void mel_power_to_db(float *s, int n)
{
    if (n <= 0) return;
    double *d = xmalloc((size_t)n * sizeof *d);
    for (int i = 0; i < n; i++) d[i] = s[i];
    power_to_db(d, (size_t)n, s);
    free(d);
}

/* ---------------------------------------------------------------- device backend */

void mel_backend_register(const MelBackend *b) { registered = b; }

int mel_plan_n_fft(const MelPlan *p) { return p->n_fft; }
int mel_plan_hop(const MelPlan *p) { return p->hop; }
int mel_plan_n_bins(const MelPlan *p) { return p->n_bins; }
const double *mel_plan_window(const MelPlan *p) { return p->window; }

void mel_plan_filter_bank(const MelPlan *p, double *fb)
{
    memset(fb, 0, sizeof(double) * (size_t)p->n_mels * p->n_bins);
    for (int m = 0; m < p->n_mels; m++) {
        const MelBand *b = &p->bands[m];
        memcpy(fb + (size_t)m * p->n_bins + b->start, b->w, sizeof(double) * (size_t)b->count);
    }
}

void *mel_plan_device(const MelPlan *p)
{
    MelPlan *mp = (MelPlan *)p;
    return p->dev && !atomic_load(&mp->dev_dead) ? p->dev_plan : NULL;
}

int mel_plan_set_device(MelPlan *p, int device, ErrMsg *e)
{
    if (device < 0 || device > 2) return err_set(e, "unknown device %d", device);
    if (p->dev && p->dev_plan) p->dev->plan_free(p->dev_plan);
    p->dev = NULL;
    p->dev_plan = NULL;
    p->dev_dead = 0;
    if (device == 1) return 1;
    ErrMsg why = {{0}};
    if (!registered) {
        err_set(&why, "this genred was built without CUDA");
    } else {
        p->dev_plan = registered->plan_create(p, &why);
        if (p->dev_plan) {
            p->dev = registered;
            return 2;
        }
    }
    if (device == 2) return err_set(e, "cannot use the GPU: %s", why.msg);
    log_debug("features: no usable GPU (%s); mel on the CPU", why.msg);
    return 1;
}

static int device_batch(const MelPlan *p, const float *x, int nw, int ns, float *out, ErrMsg *e)
{
    int rc = p->dev->compute_batch(p->dev_plan, out, x, nw, ns, e);
    if (rc != MEL_BACKEND_EOOM) return rc;
    if (nw == 1) return err_set(e, "out of device memory for one window");
    int h = nw / 2;
    size_t per = (size_t)p->n_mels * mel_frames(p, ns);
    if (device_batch(p, x, h, ns, out, e) < 0) return -1;
    return device_batch(p, x + (size_t)h * ns, nw - h, ns, out + h * per, e);
}

int mel_compute_batch(const MelPlan *p, const float *samples, int n_windows, int n_samples,
                      float *out, ErrMsg *e)
{
    if (n_windows < 1 || n_samples < 1)
        return err_set(e, "bad mel batch: %d windows of %d samples", n_windows, n_samples);
    MelPlan *mp = (MelPlan *)p; /* only the atomic failure flag changes */
    if (p->dev && !atomic_load(&mp->dev_dead)) {
        ErrMsg de = {{0}};
        if (device_batch(p, samples, n_windows, n_samples, out, &de) == 0) return 0;
        if (atomic_exchange(&mp->dev_dead, 1) == 0)
            log_warn("features: %s mel failed (%s); computing on the CPU from now on",
                     p->dev->name, de.msg);
    }
    size_t per = (size_t)p->n_mels * mel_frames(p, n_samples);
    for (int i = 0; i < n_windows; i++)
        mel_compute(p, samples + (size_t)i * n_samples, n_samples, out + i * per);
    return 0;
}
