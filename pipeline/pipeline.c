/* pipeline: see pipeline.h.
 * Threads: `jobs` workers claim track indices from a shared counter, decode + mel them, and
 * push the result into a bounded queue; the calling thread pops, batches, runs nn_forward and
 * calls the callback. All shared state sits under one mutex; the model and the MelPlan are
 * read-only while workers run. The queue holds at most batch + 2*jobs tracks, so memory
 * stays bounded (about 265 kB of mel per seed-cnn track) however long the list is. */
#include "pipeline.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mel.h"

PipelineSettings pipeline_settings_default(void)
{
    PipelineSettings s;
    memset(&s, 0, sizeof s);
    s.decode = decode_default_options();
    s.n_fft = 2048;
    s.hop = 512;
    s.n_mels = 64;
    s.min_frames = 1;
    return s;
}

PipelineSettings pipeline_settings_from_model(const NnInfo *info)
{
    PipelineSettings s = pipeline_settings_default();
    s.decode.sample_rate = info->sample_rate;
    s.decode.window_samples = info->window_samples;
    s.decode.n_windows = info->windows;
    /* A fixed-width net cannot take a shorter window; a globally pooled one can. */
    s.decode.short_policy = info->fixed_frames > 0 ? DECODE_SHORT_PAD : DECODE_SHORT_WHOLE;
    if (strcmp(info->arch, "seed-cnn") == 0) s.decode.short_policy = DECODE_SHORT_PAD;
    s.n_fft = info->n_fft;
    s.hop = info->hop_length;
    s.n_mels = info->n_mels;
    s.min_frames = info->min_frames > 0 ? info->min_frames : 1;
    return s;
}

/* The window length the mel is computed on: a window too short for min_frames is zero-padded
 * (in samples) to the length that gives min_frames (frames = 1 + len / hop). */
static int padded_len(const PipelineSettings *s, int window_len)
{
    int need = (s->min_frames - 1) * s->hop;
    if (need < 1) need = 1;
    return window_len < need ? need : window_len;
}

/* The decoded windows, each zero-padded to padded_len: *out (n_windows, *len). For batch_mel. */
static int windows_padded(const PipelineSettings *s, const DecodeWindows *w, float **out,
                          int *len, ErrMsg *e)
{
    if (w->n_windows < 1 || w->window_len < 1) return err_set(e, "no audio samples decoded");
    int n = padded_len(s, w->window_len);
    float *x = xcalloc((size_t)n * (size_t)w->n_windows, sizeof *x);
    for (int i = 0; i < w->n_windows; i++)
        memcpy(x + (size_t)i * (size_t)n, w->samples + (size_t)i * (size_t)w->window_len,
               (size_t)w->window_len * sizeof *x);
    *out = x;
    *len = n;
    return 0;
}

/* Mel of every decoded window, zero-padding (in samples) a window too short for min_frames.
 * *db: (n_windows, n_mels, frames). */
static int windows_to_mel(const MelPlan *plan, const PipelineSettings *s, const DecodeWindows *w,
                          float **db, int *frames, ErrMsg *e)
{
    if (w->n_windows < 1 || w->window_len < 1) return err_set(e, "no audio samples decoded");
    int len = padded_len(s, w->window_len);
    float *padded = NULL;
    if (len > w->window_len) padded = xcalloc((size_t)len, sizeof *padded);
    int f = mel_frames(plan, len);
    size_t per = (size_t)s->n_mels * (size_t)f;
    float *out = xmalloc(per * (size_t)w->n_windows * sizeof *out);
    for (int i = 0; i < w->n_windows; i++) {
        const float *src = w->samples + (size_t)i * (size_t)w->window_len;
        if (padded) {
            memcpy(padded, src, (size_t)w->window_len * sizeof *padded);
            src = padded;
        }
        mel_compute(plan, src, len, out + per * (size_t)i);
    }
    free(padded);
    *db = out;
    *frames = f;
    return 0;
}

int pipeline_mel(const char *path, const PipelineSettings *s, float **db, int *n_windows,
                 int *n_mels, int *frames, ErrMsg *e)
{
    MelPlan *plan = mel_plan_create(s->decode.sample_rate, s->n_fft, s->hop, s->n_mels, e);
    if (!plan) return -1;
    DecodeWindows w;
    memset(&w, 0, sizeof w);
    int rc = decode_windows(path, &s->decode, &w, e);
    if (rc == 0) rc = windows_to_mel(plan, s, &w, db, frames, e);
    if (rc == 0) {
        *n_windows = w.n_windows;
        *n_mels = s->n_mels;
    }
    decode_windows_free(&w);
    mel_plan_free(plan);
    return rc;
}

void pipeline_result_json(FILE *f, const PipelineResult *r, const NnInfo *in)
{
    fputs("{\"path\":", f);
    common_put_json_string(f, r->path);
    fputs(",\"genre\":", f);
    common_put_json_string(f, in->display_names[r->top]);
    fputs(",\"label\":", f);
    common_put_json_string(f, in->labels[r->top]);
    fprintf(f, ",\"confidence\":%.6f,\"model\":", r->confidence);
    common_put_json_string(f, in->id);
    fputs(",\"probabilities\":{", f);
    for (int k = 0; k < r->n_labels; k++) {
        if (k) fputc(',', f);
        common_put_json_string(f, in->labels[k]);
        fprintf(f, ":%.6f", r->probs[k]);
    }
    fputs("},\"windows\":[", f);
    for (int w = 0; w < r->n_windows; w++) {
        fputs(w ? ",[" : "[", f);
        for (int k = 0; k < r->n_labels; k++)
            fprintf(f, k ? ",%.6f" : "%.6f", r->window_probs[w * r->n_labels + k]);
        fputc(']', f);
    }
    fputs("]}", f);
}

/* One track between the workers and the CNN. */
typedef struct Item {
    int index;
    int ok;
    ErrMsg err;
    int n_windows;
    int frames;
    float *db;      /* (n_windows, n_mels, frames); NULL with batch_mel until the batch's mel */
    float *samples; /* batch_mel: (n_windows, len) the padded windows */
    int len;
    int64_t track_samples;
} Item;

/* A finished track waiting for in-order delivery. */
typedef struct Done {
    PipelineResult r;
    float *probs;        /* (n_labels) */
    float *window_probs; /* (n_windows, n_labels) */
    float *mel;          /* keep_mel: the item's db, taken over */
} Done;

typedef struct Shared {
    const PipelineSettings *s;
    const MelPlan *plan;
    const char *const *paths;     /* the names results carry */
    const PipelineBuffer *bufs;   /* NULL: decode paths[i]; else bufs[i] from memory */
    int n;
    int keep_mel;

    pthread_mutex_t lock;
    pthread_cond_t ready; /* queue got an item */
    pthread_cond_t space; /* queue lost an item, or stop */
    int next;             /* next index to claim */
    int stop;
    Item **queue; /* ring of cap */
    int cap, head, count;
    int batch_mel; /* workers only decode; the calling thread computes mel per batch */
    double t_decode, t_mel; /* summed over workers, for the debug log */
} Shared;

static Item *prepare(Shared *sh, int index)
{
    Item *it = xcalloc(1, sizeof *it);
    it->index = index;
    DecodeWindows w;
    memset(&w, 0, sizeof w);
    double t0 = common_now(), t1 = t0;
    int dr = sh->bufs ? decode_windows_mem(sh->bufs[index].data, sh->bufs[index].len,
                                           &sh->s->decode, &w, &it->err)
                      : decode_windows(sh->paths[index], &sh->s->decode, &w, &it->err);
    if (dr == 0) {
        t1 = common_now();
        int rc;
        if (sh->batch_mel) {
            rc = windows_padded(sh->s, &w, &it->samples, &it->len, &it->err);
            if (rc == 0) it->frames = mel_frames(sh->plan, it->len);
        } else {
            rc = windows_to_mel(sh->plan, sh->s, &w, &it->db, &it->frames, &it->err);
        }
        if (rc == 0) {
            it->ok = 1;
            it->n_windows = w.n_windows;
            it->track_samples = w.track_samples;
        }
    }
    double t2 = common_now();
    decode_windows_free(&w);
    pthread_mutex_lock(&sh->lock);
    sh->t_decode += (it->ok ? t1 : t2) - t0;
    sh->t_mel += it->ok ? t2 - t1 : 0;
    pthread_mutex_unlock(&sh->lock);
    return it;
}

static void item_free(Item *it)
{
    if (!it) return;
    free(it->db);
    free(it->samples);
    free(it);
}

static void *worker(void *arg)
{
    Shared *sh = arg;
    for (;;) {
        pthread_mutex_lock(&sh->lock);
        if (sh->stop || sh->next >= sh->n) {
            pthread_mutex_unlock(&sh->lock);
            return NULL;
        }
        int i = sh->next++;
        pthread_mutex_unlock(&sh->lock);

        Item *it = prepare(sh, i);

        pthread_mutex_lock(&sh->lock);
        while (sh->count == sh->cap && !sh->stop) pthread_cond_wait(&sh->space, &sh->lock);
        if (sh->stop) {
            pthread_mutex_unlock(&sh->lock);
            item_free(it);
            return NULL;
        }
        sh->queue[(sh->head + sh->count) % sh->cap] = it;
        sh->count++;
        pthread_cond_signal(&sh->ready);
        pthread_mutex_unlock(&sh->lock);
    }
}

static Done *done_from(Item *it, const char *path, int n_labels, const float *wprobs,
                       int keep_mel, int n_mels)
{
    Done *d = xcalloc(1, sizeof *d);
    d->r.index = it->index;
    d->r.path = path;
    d->r.ok = it->ok;
    d->r.err = it->err;
    d->r.track_samples = it->track_samples;
    if (!it->ok) return d;
    d->probs = xcalloc((size_t)n_labels, sizeof *d->probs);
    d->window_probs = xmalloc((size_t)it->n_windows * (size_t)n_labels * sizeof(float));
    memcpy(d->window_probs, wprobs, (size_t)it->n_windows * (size_t)n_labels * sizeof(float));
    for (int w = 0; w < it->n_windows; w++)
        for (int k = 0; k < n_labels; k++) d->probs[k] += wprobs[w * n_labels + k];
    int top = 0;
    for (int k = 0; k < n_labels; k++) {
        d->probs[k] /= (float)it->n_windows;
        if (d->probs[k] > d->probs[top]) top = k;
    }
    d->r.n_labels = n_labels;
    d->r.probs = d->probs;
    d->r.n_windows = it->n_windows;
    d->r.window_probs = d->window_probs;
    d->r.top = top;
    d->r.confidence = d->probs[top];
    if (keep_mel) {
        d->mel = it->db;
        it->db = NULL;
        d->r.mel = d->mel;
        d->r.n_mels = n_mels;
        d->r.mel_frames = it->frames;
    }
    return d;
}

static void done_free(Done *d)
{
    if (!d) return;
    free(d->probs);
    free(d->window_probs);
    free(d->mel);
    free(d);
}

/* batch_mel: the mel of every ok item's windows, one mel_compute_batch per distinct window
 * length (all share one but short whole-track fcn windows). A failure fails those items. */
static void mel_for_batch(const MelPlan *plan, const PipelineSettings *s, Item **batch, int nb)
{
    int *handled = xcalloc((size_t)nb, sizeof *handled);
    for (int a = 0; a < nb; a++) {
        if (handled[a] || !batch[a]->ok) continue;
        int len = batch[a]->len, nw = 0;
        for (int b = a; b < nb; b++)
            if (!handled[b] && batch[b]->ok && batch[b]->len == len) nw += batch[b]->n_windows;
        float *x = xmalloc((size_t)len * (size_t)nw * sizeof *x);
        size_t off = 0;
        for (int b = a; b < nb; b++) {
            if (handled[b] || !batch[b]->ok || batch[b]->len != len) continue;
            memcpy(x + off * (size_t)len, batch[b]->samples,
                   (size_t)len * (size_t)batch[b]->n_windows * sizeof *x);
            off += (size_t)batch[b]->n_windows;
        }
        int frames = batch[a]->frames;
        size_t per = (size_t)s->n_mels * (size_t)frames;
        float *db = xmalloc(per * (size_t)nw * sizeof *db);
        ErrMsg me = {{0}};
        int rc = mel_compute_batch(plan, x, nw, len, db, &me);
        off = 0;
        for (int b = a; b < nb; b++) {
            if (handled[b] || !batch[b]->ok || batch[b]->len != len) continue;
            handled[b] = 1;
            if (rc != 0) {
                batch[b]->ok = 0;
                err_set(&batch[b]->err, "mel: %s", me.msg);
            } else {
                size_t bytes = per * (size_t)batch[b]->n_windows * sizeof *db;
                batch[b]->db = xmalloc(bytes);
                memcpy(batch[b]->db, db + off * per, bytes);
            }
            off += (size_t)batch[b]->n_windows;
            free(batch[b]->samples);
            batch[b]->samples = NULL;
        }
        free(x);
        free(db);
    }
    free(handled);
}

/* Scores every ok item of the batch: one nn_forward per distinct window width (all of them
 * share one width except short whole-track fcn windows). Turns items into Done records. */
static double score_batch(NnModel *m, const PipelineSettings *s, Item **batch, int nb,
                          const char *const *paths, int keep_mel, Done **out)
{
    double t_nn = 0;
    int n_labels = nn_model_info(m)->n_labels;
    int *handled = xcalloc((size_t)nb, sizeof *handled);
    for (int a = 0; a < nb; a++) {
        if (handled[a]) continue;
        if (!batch[a]->ok) {
            out[a] = done_from(batch[a], paths[batch[a]->index], n_labels, NULL, 0, 0);
            handled[a] = 1;
            continue;
        }
        int frames = batch[a]->frames;
        int nw = 0;
        for (int b = a; b < nb; b++)
            if (!handled[b] && batch[b]->ok && batch[b]->frames == frames) nw += batch[b]->n_windows;
        size_t per = (size_t)s->n_mels * (size_t)frames;
        float *x = xmalloc(per * (size_t)nw * sizeof *x);
        float *probs = xmalloc((size_t)nw * (size_t)n_labels * sizeof *probs);
        size_t off = 0;
        for (int b = a; b < nb; b++) {
            if (handled[b] || !batch[b]->ok || batch[b]->frames != frames) continue;
            memcpy(x + off * per, batch[b]->db, per * (size_t)batch[b]->n_windows * sizeof *x);
            off += (size_t)batch[b]->n_windows;
        }
        ErrMsg fe = {{0}};
        double t0 = common_now();
        int rc = nn_forward(m, x, nw, frames, probs, &fe);
        t_nn += common_now() - t0;
        off = 0;
        for (int b = a; b < nb; b++) {
            if (handled[b] || !batch[b]->ok || batch[b]->frames != frames) continue;
            if (rc != 0) {
                batch[b]->ok = 0;
                err_set(&batch[b]->err, "classifier: %s", fe.msg);
            }
            out[b] = done_from(batch[b], paths[batch[b]->index], n_labels,
                               probs + off * (size_t)n_labels, keep_mel, s->n_mels);
            off += (size_t)batch[b]->n_windows;
            handled[b] = 1;
        }
        free(x);
        free(probs);
    }
    free(handled);
    return t_nn;
}

/* The calling thread's side: batches, scores and delivers until all n tracks are out or the
 * callback asks to stop (returns 1 then, else 0). */
static int consume(Shared *sh, NnModel *m, int n, int bsize, int ordered, PipelineCallback cb,
                   void *user)
{
    int rc = 0, batches = 0;
    double t_nn = 0, t_wait = 0;
    Item **batch = xcalloc((size_t)bsize, sizeof *batch);
    Done **done = xcalloc((size_t)bsize, sizeof *done);
    Done **pending = ordered ? xcalloc((size_t)n, sizeof *pending) : NULL;
    int received = 0, next_out = 0;
    while (received < n && !rc) {
        int nb = 0;
        double t0 = common_now();
        pthread_mutex_lock(&sh->lock);
        /* Wait for one track, then take whatever else is ready, up to the batch size: when
         * decoding is the bottleneck the CNN runs on small batches as soon as there is work
         * (waiting to fill a batch would idle it); when the CNN is, batches fill up. */
        while (sh->count == 0) pthread_cond_wait(&sh->ready, &sh->lock);
        while (sh->count > 0 && nb < bsize) {
            batch[nb++] = sh->queue[sh->head];
            sh->head = (sh->head + 1) % sh->cap;
            sh->count--;
            received++;
        }
        pthread_cond_broadcast(&sh->space);
        pthread_mutex_unlock(&sh->lock);
        t_wait += common_now() - t0;

        if (sh->batch_mel) {
            double tm = common_now();
            mel_for_batch(sh->plan, sh->s, batch, nb);
            pthread_mutex_lock(&sh->lock);
            sh->t_mel += common_now() - tm;
            pthread_mutex_unlock(&sh->lock);
        }
        t_nn += score_batch(m, sh->s, batch, nb, sh->paths, sh->keep_mel, done);
        batches++;
        for (int i = 0; i < nb; i++) {
            item_free(batch[i]);
            batch[i] = NULL;
        }
        for (int i = 0; i < nb; i++) {
            if (ordered) {
                pending[done[i]->r.index] = done[i];
            } else {
                if (!rc && cb(&done[i]->r, user)) rc = 1;
                done_free(done[i]);
            }
            done[i] = NULL;
        }
        while (ordered && !rc && next_out < n && pending[next_out]) {
            if (cb(&pending[next_out]->r, user)) rc = 1;
            done_free(pending[next_out]);
            pending[next_out++] = NULL;
        }
    }
    if (pending) {
        for (int i = 0; i < n; i++) done_free(pending[i]);
        free(pending);
    }
    free(batch);
    free(done);
    /* Where the time went: the CNN thread should rarely wait when decoding keeps up. */
    log_debug("pipeline: %d tracks, %d batches, cnn %.3f s, cnn thread waiting %.3f s", received,
              batches, t_nn, t_wait);
    return rc;
}

static int run(NnModel *m, const char *const *paths, const PipelineBuffer *bufs, int n,
               const PipelineOptions *o, PipelineCallback cb, void *user, ErrMsg *e)
{
    if (n <= 0) return 0;
    const NnInfo *info = nn_model_info(m);
    PipelineSettings s = pipeline_settings_from_model(info);
    if (o && o->max_whole_seconds > 0)
        s.decode.max_whole_samples = (int64_t)(o->max_whole_seconds * s.decode.sample_rate);
    int jobs = o && o->jobs > 0 ? o->jobs : common_cpu_count();
    int bsize = o && o->batch > 0 ? o->batch : 16;
    int ordered = o ? o->ordered : 1;
    if (jobs > n) jobs = n;
    if (bsize > n) bsize = n;

    MelPlan *plan = mel_plan_create(s.decode.sample_rate, s.n_fft, s.hop, s.n_mels, e);
    if (!plan) return -1;
    int want = o ? o->batch_mel : 0;
    int batch_mel = want > 0 || (want == 0 && nn_model_device(m) == NN_DEVICE_CUDA);
    if (batch_mel && nn_model_device(m) == NN_DEVICE_CUDA) {
        ErrMsg de;
        if (mel_plan_set_device(plan, NN_DEVICE_CUDA, &de) != NN_DEVICE_CUDA)
            log_warn("mel on the CPU: %s", de.msg); /* the model still scores on the GPU */
    }

    Shared sh;
    memset(&sh, 0, sizeof sh);
    sh.s = &s;
    sh.plan = plan;
    sh.paths = paths;
    sh.bufs = bufs;
    sh.n = n;
    sh.keep_mel = o ? o->keep_mel : 0;
    sh.cap = bsize + 2 * jobs;
    sh.batch_mel = batch_mel;
    sh.queue = xcalloc((size_t)sh.cap, sizeof *sh.queue);
    pthread_mutex_init(&sh.lock, NULL);
    pthread_cond_init(&sh.ready, NULL);
    pthread_cond_init(&sh.space, NULL);

    pthread_t *threads = xcalloc((size_t)jobs, sizeof *threads);
    int started = 0;
    for (; started < jobs; started++)
        if (pthread_create(&threads[started], NULL, worker, &sh) != 0) break;
    int rc = started == 0 ? err_set(e, "cannot start worker threads") : 0;
    if (rc == 0) rc = consume(&sh, m, n, bsize, ordered, cb, user);

    pthread_mutex_lock(&sh.lock);
    sh.stop = 1;
    pthread_cond_broadcast(&sh.space);
    pthread_mutex_unlock(&sh.lock);
    for (int i = 0; i < started; i++) pthread_join(threads[i], NULL);
    log_debug("pipeline: %d workers: decode %.3f s, mel %.3f s (summed over workers)", started,
              sh.t_decode, sh.t_mel);
    for (int i = 0; i < sh.count; i++) item_free(sh.queue[(sh.head + i) % sh.cap]);
    free(threads);
    free(sh.queue);
    pthread_cond_destroy(&sh.space);
    pthread_cond_destroy(&sh.ready);
    pthread_mutex_destroy(&sh.lock);
    mel_plan_free(plan);
    return rc;
}

int pipeline_classify(NnModel *m, const char *const *paths, int n, const PipelineOptions *o,
                      PipelineCallback cb, void *user, ErrMsg *e)
{
    return run(m, paths, NULL, n, o, cb, user, e);
}

int pipeline_classify_buffers(NnModel *m, const PipelineBuffer *bufs, int n,
                              const PipelineOptions *o, PipelineCallback cb, void *user,
                              ErrMsg *e)
{
    if (n <= 0) return 0;
    const char **names = xcalloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) names[i] = bufs[i].name ? bufs[i].name : "";
    int rc = run(m, names, bufs, n, o, cb, user, e);
    free(names);
    return rc;
}
