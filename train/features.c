/* train/features.c: the power mel spectrograms of each file's analysis windows, computed once
 * on a pool of threads and optionally kept in a cache file per audio file.
 * It is not augmentation (train.c crops and converts to dB per step).
 * Cache files are keyed by path, size, mtime and every feature setting, so a changed file or
 * setting never reads stale data; they are written atomically and a damaged one is recomputed. */
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "decode.h"
#include "mel.h"
#include "train.h"

#define CACHE_MAGIC "GRMELC01"

TrainFeatOptions train_feat_default_options(void)
{
    TrainFeatOptions o = {.sample_rate = 22050,
                          .n_fft = 2048,
                          .hop = 512,
                          .n_mels = 64,
                          .window_samples = 88200,
                          .n_windows = 6,
                          .short_policy = DECODE_SHORT_WHOLE,
                          .threads = 0,
                          .cache_dir = NULL,
                          .keep_samples = 0,
                          .noise = TRAIN_NOISE_NONE,
                          .noise_snr = 0,
                          .noise_seed = 0};
    return o;
}

TrainFeatOptions train_feat_options_for(const NnInfo *info)
{
    TrainFeatOptions o = train_feat_default_options();
    o.sample_rate = info->sample_rate;
    o.n_fft = info->n_fft;
    o.hop = info->hop_length;
    o.n_mels = info->n_mels;
    o.window_samples = info->window_samples;
    o.n_windows = info->windows;
    o.short_policy = info->fixed_frames > 0 ? DECODE_SHORT_PAD : DECODE_SHORT_WHOLE;
    return o;
}

char *train_default_cache_dir(void)
{
    const char *x = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char buf[4096];
    if (x && x[0]) snprintf(buf, sizeof buf, "%s/genred/mel-cache", x);
    else if (home && home[0]) snprintf(buf, sizeof buf, "%s/.cache/genred/mel-cache", home);
    else return NULL;
    return xstrdup(buf);
}

void train_features_free(TrainFeat *f, int n)
{
    if (!f) return;
    for (int i = 0; i < n; i++) {
        free(f[i].power);
        free(f[i].samples);
    }
    free(f);
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
    return 0;
}

static uint64_t fnv(const void *data, size_t n, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The cache file name for path under the settings; "" when the file cannot be stat'ed. */
static void cache_name(const TrainFeatOptions *o, const char *path, char *out, size_t n)
{
    struct stat st;
    out[0] = 0;
    if (!o->cache_dir || stat(path, &st) < 0) return;
    char key[4096 + 256];
    char *real = realpath(path, NULL);
    snprintf(key, sizeof key, "%s|%lld|%lld.%09ld|%d|%d|%d|%d|%d|%d|%d", real ? real : path,
             (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
             o->sample_rate, o->n_fft, o->hop, o->n_mels, o->window_samples, o->n_windows,
             o->short_policy);
    free(real);
    uint64_t h1 = fnv(key, strlen(key), 1469598103934665603ull);
    uint64_t h2 = fnv(key, strlen(key), 0x9e3779b97f4a7c15ull);
    snprintf(out, n, "%s/%016" PRIx64 "%016" PRIx64 ".mel", o->cache_dir, h1, h2);
}

static int cache_read(const char *file, const TrainFeatOptions *o, TrainFeat *f)
{
    uint8_t *data;
    size_t len;
    if (!file[0] || common_read_file(file, &data, &len, NULL) < 0) return -1;
    int32_t hdr[3];
    int ok = len >= 8 + sizeof hdr && !memcmp(data, CACHE_MAGIC, 8);
    if (ok) {
        memcpy(hdr, data + 8, sizeof hdr);
        ok = hdr[0] > 0 && hdr[0] <= 64 && hdr[1] == o->n_mels && hdr[2] > 0 &&
             len == 8 + sizeof hdr + (size_t)hdr[0] * hdr[1] * hdr[2] * sizeof(float);
    }
    if (ok) {
        f->n_seg = hdr[0];
        f->n_mels = hdr[1];
        f->frames = hdr[2];
        size_t bytes = len - 8 - sizeof hdr;
        f->power = xmalloc(bytes);
        memcpy(f->power, data + 8 + sizeof hdr, bytes);
    }
    free(data);
    return ok ? 0 : -1;
}

static void cache_write(const char *file, const TrainFeat *f)
{
    if (!file[0]) return;
    size_t body = (size_t)f->n_seg * f->n_mels * f->frames * sizeof(float);
    int32_t hdr[3] = {f->n_seg, f->n_mels, f->frames};
    uint8_t *buf = xmalloc(8 + sizeof hdr + body);
    memcpy(buf, CACHE_MAGIC, 8);
    memcpy(buf + 8, hdr, sizeof hdr);
    memcpy(buf + 8 + sizeof hdr, f->power, body);
    ErrMsg e;
    if (common_write_atomic(file, buf, 8 + sizeof hdr + body, &e) < 0)
        log_debug("mel cache %s: %s", file, e.msg); /* a cache that cannot be written is no error */
    free(buf);
}

typedef struct FeatJob {
    const TrainSet *set;
    const TrainFeatOptions *o;
    const MelPlan *plan;
    TrainFeat *out;
    atomic_int next, failed, done;
} FeatJob;

static void compute_one(FeatJob *j, int i)
{
    const TrainItem *it = &j->set->items[i];
    TrainFeat *f = &j->out[i];
    char file[4200];
    /* noisy features are never cached (they depend on the noise settings, and are cheap next
     * to the decode they need anyway); kept samples need the decode too */
    int noisy = j->o->noise >= 0;
    file[0] = 0;
    if (!noisy) cache_name(j->o, it->path, file, sizeof file);
    if (!j->o->keep_samples && cache_read(file, j->o, f) == 0) return;
    DecodeOptions d = decode_default_options();
    d.sample_rate = j->o->sample_rate;
    d.window_samples = j->o->window_samples;
    d.n_windows = j->o->n_windows;
    d.short_policy = j->o->short_policy;
    DecodeWindows w;
    ErrMsg e;
    if (decode_windows(it->path, &d, &w, &e) < 0) {
        log_warn("%s: %s", it->path, e.msg);
        atomic_fetch_add(&j->failed, 1);
        return;
    }
    f->n_mels = mel_n_mels(j->plan);
    f->frames = mel_frames(j->plan, w.window_len);
    f->n_seg = w.n_windows;
    size_t per = (size_t)f->n_mels * f->frames;
    f->power = xmalloc(per * f->n_seg * sizeof(float));
    if (j->o->keep_samples > 0) {
        int k = j->o->keep_samples < f->n_seg ? j->o->keep_samples : f->n_seg;
        f->n_samples = w.window_len;
        f->n_sample_seg = k;
        f->samples = xmalloc((size_t)k * w.window_len * sizeof(int16_t));
        for (int s = 0; s < k; s++) {
            const float *src = w.samples + (size_t)(s * f->n_seg / k) * w.window_len;
            int16_t *dst = f->samples + (size_t)s * w.window_len;
            for (int i = 0; i < w.window_len; i++) {
                float v = src[i] * 32767.0f;
                dst[i] = (int16_t)lrintf(v > 32767.0f ? 32767.0f : v < -32767.0f ? -32767.0f : v);
            }
        }
    }
    uint64_t seed = fnv(it->rel, strlen(it->rel), j->o->noise_seed ^ 1469598103934665603ull);
    for (int s = 0; s < f->n_seg; s++) {
        float *x = w.samples + (size_t)s * w.window_len;
        if (noisy) train_add_noise(x, w.window_len, j->o->noise, j->o->noise_snr, seed + (uint64_t)s);
        mel_compute_power(j->plan, x, w.window_len, f->power + s * per);
    }
    decode_windows_free(&w);
    cache_write(file, f);
}

static void *feat_worker(void *arg)
{
    FeatJob *j = arg;
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->set->n) break;
        compute_one(j, i);
        atomic_fetch_add(&j->done, 1);
    }
    return NULL;
}

int train_features_compute(const TrainSet *s, const TrainFeatOptions *o, TrainFeat **feats,
                           int *failed, ErrMsg *e)
{
    *feats = NULL;
    ErrMsg e2;
    MelPlan *plan = mel_plan_create(o->sample_rate, o->n_fft, o->hop, o->n_mels, &e2);
    if (!plan) return err_set(e, "mel plan: %s", e2.msg);
    if (o->cache_dir && mkdir_p(o->cache_dir) < 0)
        log_warn("cannot create mel cache folder %s: %s", o->cache_dir, strerror(errno));
    FeatJob j = {.set = s, .o = o, .plan = plan};
    j.out = xcalloc((size_t)(s->n ? s->n : 1), sizeof(TrainFeat));
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    atomic_init(&j.done, 0);
    int nt = o->threads > 0 ? o->threads : common_cpu_count();
    if (nt > 64) nt = 64;
    pthread_t th[64];
    int started = 0;
    for (int t = 0; t < nt; t++)
        if (pthread_create(&th[t], NULL, feat_worker, &j) == 0) started++;
    if (started == 0) feat_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    mel_plan_free(plan);
    *feats = j.out;
    if (failed) *failed = atomic_load(&j.failed);
    return 0;
}
