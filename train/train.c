/* train/train.c: the training loop: class-balanced sampling per file (not per window, so the
 * long clips do not dominate), random crops converted to dB with their own max (as inference
 * converts a window), a random spectral tilt, SpecAugment masks, mixup, label smoothing, a
 * warm-up + cosine learning rate, an optional moving average of the weights (--ema) that valid
 * scores and that is kept, and selection of the best epoch on valid.
 * It is not the network: nn_train_step does forward, backward and the AdamW step.
 * Deterministic for a given seed (and nn's thread count): one xoshiro256** stream drives every
 * random choice here, in a fixed order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mel.h"
#include "train.h"

TrainOptions train_default_options(void)
{
    TrainOptions o = {.arch = "fcn",
                      .fcn_blocks = 4,
                      .fcn_channels = {16, 32, 64, 128},
                      .dropout = -1.0f,
                      .epochs = 45,
                      .steps_per_epoch = 0,
                      .lr = 2e-3f,
                      .lr_min_frac = 0.05f,
                      .warmup_epochs = 1,
                      .batch = 32,
                      .seed = 1,
                      .weight_decay = 1e-2f,
                      .crop_min = 64,
                      .crop_max = 86,
                      .eq_db = 6.0f,
                      .time_masks = 2,
                      .time_mask_max = 12,
                      .freq_masks = 2,
                      .freq_mask_max = 8,
                      .mixup_alpha = 0.0f,
                      .label_smoothing = 0.0f,
                      .balanced = 1,
                      .patience = 0,
                      .ema = 0.99f,
                      .ema_bn = 0,
                      .log = NULL};
    return o;
}

/* ---- random numbers (xoshiro256**, seeded through splitmix64) ---- */

typedef struct Rng {
    uint64_t s[4];
} Rng;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(Rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(Rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

static double rng_uniform(Rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n). */
static int rng_int(Rng *r, int n) { return n <= 1 ? 0 : (int)(rng_uniform(r) * n); }

static double rng_normal(Rng *r)
{
    double u = rng_uniform(r), v = rng_uniform(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

/* Gamma(a, 1) by Marsaglia & Tsang; a < 1 through the a+1 boost. */
static double rng_gamma(Rng *r, double a)
{
    if (a < 1.0) return rng_gamma(r, a + 1.0) * pow(rng_uniform(r) + 1e-300, 1.0 / a);
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = rng_normal(r), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = rng_uniform(r);
        if (log(u + 1e-300) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

static double rng_beta(Rng *r, double a)
{
    double x = rng_gamma(r, a), y = rng_gamma(r, a);
    return x + y > 0 ? x / (x + y) : 0.5;
}

/* ---- one training example ---- */

/* Copies a random crop of frames columns from a random window of f into out (n_mels, frames),
 * tiling a window shorter than the crop, and applies the tilt, dB conversion and masks. */
static void make_example(Rng *r, const TrainFeat *f, int frames, const TrainOptions *o, float *out)
{
    int M = f->n_mels;
    int s = rng_int(r, f->n_seg);
    const float *seg = f->power + (size_t)s * M * f->frames;
    int off = f->frames > frames ? rng_int(r, f->frames - frames + 1) : 0;
    for (int m = 0; m < M; m++)
        for (int t = 0; t < frames; t++)
            out[m * frames + t] = seg[(size_t)m * f->frames + (off + t) % f->frames];
    if (o->eq_db > 0) {
        /* A whole-window gain cancels in the per-window max: only a frequency-dependent gain
         * (here a linear tilt in dB across the bands) changes what the net sees. */
        double tilt = (2 * rng_uniform(r) - 1) * o->eq_db;
        for (int m = 0; m < M; m++) {
            float g = (float)pow(10.0, tilt * (2.0 * m / (M - 1) - 1.0) / 10.0);
            for (int t = 0; t < frames; t++) out[m * frames + t] *= g;
        }
    }
    mel_power_to_db(out, M * frames);
    double mean = 0;
    for (int i = 0; i < M * frames; i++) mean += out[i];
    float fill = (float)(mean / (M * frames));
    for (int k = 0; k < o->time_masks; k++) {
        int w = rng_int(r, o->time_mask_max + 1);
        if (w >= frames) w = frames / 2;
        int st = rng_int(r, frames - w + 1);
        for (int m = 0; m < M; m++)
            for (int t = st; t < st + w; t++) out[m * frames + t] = fill;
    }
    for (int k = 0; k < o->freq_masks; k++) {
        int w = rng_int(r, o->freq_mask_max + 1);
        if (w >= M) w = M / 2;
        int st = rng_int(r, M - w + 1);
        for (int m = st; m < st + w; m++)
            for (int t = 0; t < frames; t++) out[m * frames + t] = fill;
    }
}

/* Re-estimates the batch-norm running statistics of avg on n_batch batches of clean crops
 * (no tilt, no masks) of the training files. Why: the averaged weights were never run, so the
 * blended statistics only approximate theirs. nn_train_grads updates the running statistics
 * (momentum 0.1) and computes gradients that are never applied. Own rng: the training stream
 * stays the same with or without this. */
static int ema_bn_pass(NnTrainer *at, Rng *r, const TrainFeat *tf, const int *usable,
                       int n_usable, int n_batch, int B, int M, int frames, int L,
                       const TrainOptions *o, float *x, float *tgt, ErrMsg *e)
{
    TrainOptions clean = *o;
    clean.eq_db = 0;
    clean.time_masks = clean.freq_masks = 0;
    size_t per = (size_t)M * frames;
    for (int k = 0; k < n_batch; k++) {
        for (int b = 0; b < B; b++)
            make_example(r, &tf[usable[rng_int(r, n_usable)]], frames, &clean, x + b * per);
        for (int i = 0; i < B * L; i++) tgt[i] = i % L == 0; /* any target: no step follows */
        float loss;
        if (nn_train_grads(at, x, B, frames, tgt, 0, &loss, NULL, e) < 0) return -1;
    }
    return 0;
}

static void set_meta_f(NnModel *m, const char *key, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.4f", v);
    nn_model_set_meta(m, key, buf);
}

int train_run(const TrainSet *train, const TrainFeat *tf, const TrainSet *valid,
              const TrainFeat *vf, const TrainFeatOptions *fo, const TrainOptions *o,
              NnModel **out, TrainResult *res, ErrMsg *e)
{
    *out = NULL;
    memset(res, 0, sizeof *res);
    int L = train->labels.n;
    int nv = valid ? valid->n : 0;
    double t0 = common_now();

    /* usable items per label */
    int **by = xcalloc((size_t)L, sizeof(int *));
    int *nby = xcalloc((size_t)L, sizeof(int));
    int *usable = xmalloc((size_t)(train->n ? train->n : 1) * sizeof(int));
    int n_usable = 0;
    for (int i = 0; i < train->n; i++)
        if (tf[i].n_seg > 0 && train->items[i].label >= 0) {
            usable[n_usable++] = i;
            int l = train->items[i].label;
            by[l] = xrealloc(by[l], (size_t)(nby[l] + 1) * sizeof(int));
            by[l][nby[l]++] = i;
        }
    int labels_present = 0;
    for (int l = 0; l < L; l++) labels_present += nby[l] > 0;

    NnArchConfig ac = {.arch = o->arch,
                       .n_labels = L,
                       .labels = (const char *const *)train->labels.names,
                       .display_names = (const char *const *)train->labels.display,
                       .fcn_blocks = o->fcn_blocks,
                       .dropout = o->dropout};
    memcpy(ac.fcn_channels, o->fcn_channels, sizeof ac.fcn_channels);
    NnModel *model = NULL, *best = NULL, *avg = NULL;
    NnTrainer *tr = NULL, *atr = NULL;
    float *x = NULL, *tgt = NULL, *logits = NULL, *vprobs = NULL;
    int *vtruth = NULL;
    double *hist = NULL, *rawhist = NULL; /* (epochs + 1) valid balanced accuracy per epoch */
    int rc = 0;
    if (n_usable == 0 || labels_present < 2) {
        rc = err_set(e, "need training files of at least two labels, have %d files", n_usable);
        goto done;
    }
    ErrMsg e2;
    model = nn_model_new(&ac, o->seed, &e2);
    if (!model) {
        rc = err_set(e, "cannot build %s: %s", o->arch, e2.msg);
        goto done;
    }
    NnOptim opt = {.kind = NN_ADAMW,
                   .lr = o->lr,
                   .beta1 = 0.9f,
                   .beta2 = 0.999f,
                   .eps = 1e-8f,
                   .weight_decay = o->weight_decay};
    tr = nn_trainer_new(model, &opt, o->seed, &e2);
    if (!tr) {
        rc = err_set(e, "trainer: %s", e2.msg);
        goto done;
    }
    const NnInfo *info = nn_model_info(model);
    int M = fo->n_mels;
    int cmin = o->crop_min, cmax = o->crop_max;
    if (info->fixed_frames > 0) cmin = cmax = info->fixed_frames;
    if (cmin < info->min_frames) cmin = info->min_frames;
    if (cmax < cmin) cmax = cmin;
    int B = o->batch;
    int spe = o->steps_per_epoch > 0 ? o->steps_per_epoch : (n_usable + B - 1) / B;
    x = xmalloc((size_t)B * M * cmax * sizeof(float));
    tgt = xmalloc((size_t)B * L * sizeof(float));
    logits = xmalloc((size_t)B * L * sizeof(float));
    if (nv) {
        vprobs = xcalloc((size_t)nv * L, sizeof(float));
        vtruth = xmalloc((size_t)nv * sizeof(int));
        for (int i = 0; i < nv; i++) vtruth[i] = valid->items[i].label;
    }
    Rng rng, bnrng;
    rng_seed(&rng, o->seed ^ 0x7261696e67656e72ull);
    rng_seed(&bnrng, o->seed ^ 0x656d61626e706173ull);
    if (o->ema > 0) {
        avg = nn_model_clone(model);
        if (o->ema_bn > 0 && !(atr = nn_trainer_new(avg, &opt, o->seed, &e2))) {
            rc = err_set(e, "trainer: %s", e2.msg);
            goto done;
        }
    }
    NnModel *scored = avg ? avg : model;
    rawhist = xcalloc((size_t)(o->epochs + 1), sizeof(double));
    res->raw_best_epoch = 0;
    res->raw_best_valid_bal = -1;
    res->raw_mean_last_valid_bal = -1;
    long total = (long)spe * o->epochs, step = 0;
    long warm = (long)spe * o->warmup_epochs;
    int since_best = 0;
    hist = xcalloc((size_t)(o->epochs + 1), sizeof(double));
    res->best_valid_bal = -1;
    for (int ep = 1; ep <= o->epochs; ep++) {
        double te = common_now(), lsum = 0;
        int right = 0, seen = 0;
        for (int s = 0; s < spe; s++, step++) {
            double lr = o->lr;
            if (step < warm) lr *= (double)(step + 1) / warm;
            double prog = total > warm ? (double)(step - warm) / (double)(total - warm) : 1.0;
            if (prog > 0)
                lr = o->lr * (o->lr_min_frac +
                              (1 - o->lr_min_frac) * 0.5 * (1 + cos(M_PI * (prog < 1 ? prog : 1))));
            int frames = cmin + rng_int(&rng, cmax - cmin + 1);
            size_t per = (size_t)M * frames;
            for (int b = 0; b < B; b++) {
                int i;
                if (o->balanced) {
                    int l;
                    do l = rng_int(&rng, L);
                    while (!nby[l]);
                    i = by[l][rng_int(&rng, nby[l])];
                } else {
                    i = usable[rng_int(&rng, n_usable)];
                }
                make_example(&rng, &tf[i], frames, o, x + b * per);
                float smooth = o->label_smoothing;
                for (int k = 0; k < L; k++) tgt[b * L + k] = smooth / L;
                tgt[b * L + train->items[i].label] += 1 - smooth;
            }
            if (o->mixup_alpha > 0) {
                /* one mixing weight per batch, partner = a random permutation of the batch */
                float lam = (float)rng_beta(&rng, o->mixup_alpha);
                int *perm = xmalloc((size_t)B * sizeof(int));
                for (int b = 0; b < B; b++) perm[b] = b;
                for (int b = B - 1; b > 0; b--) {
                    int j = rng_int(&rng, b + 1), t = perm[b];
                    perm[b] = perm[j];
                    perm[j] = t;
                }
                float *mx = xmalloc((size_t)B * per * sizeof(float));
                float *mt = xmalloc((size_t)B * L * sizeof(float));
                for (int b = 0; b < B; b++) {
                    for (size_t k = 0; k < per; k++)
                        mx[b * per + k] = lam * x[b * per + k] + (1 - lam) * x[perm[b] * per + k];
                    for (int k = 0; k < L; k++)
                        mt[b * L + k] = lam * tgt[b * L + k] + (1 - lam) * tgt[perm[b] * L + k];
                }
                memcpy(x, mx, (size_t)B * per * sizeof(float));
                memcpy(tgt, mt, (size_t)B * L * sizeof(float));
                free(mx);
                free(mt);
                free(perm);
            }
            float loss;
            if (nn_train_step(tr, x, B, frames, tgt, (float)lr, &loss, logits, &e2) < 0) {
                rc = err_set(e, "training step: %s", e2.msg);
                goto done;
            }
            if (avg) {
                /* the usual warm-up of the decay: early averages forget the random init */
                float d = (float)(step + 1) / (float)(step + 10);
                nn_model_ema(avg, model, d < o->ema ? d : o->ema);
            }
            lsum += loss;
            for (int b = 0; b < B; b++) {
                int pb = 0, tb = 0;
                for (int k = 1; k < L; k++) {
                    if (logits[b * L + k] > logits[b * L + pb]) pb = k;
                    if (tgt[b * L + k] > tgt[b * L + tb]) tb = k;
                }
                right += pb == tb;
                seen++;
            }
        }
        res->epochs_run = ep;
        char vline[160] = "";
        int improved = 0;
        if (nv && avg) {
            if (atr && ema_bn_pass(atr, &bnrng, tf, usable, n_usable, o->ema_bn, B, M, cmax, L,
                                   o, x, tgt, &e2) < 0) {
                rc = err_set(e, "batch-norm pass: %s", e2.msg);
                goto done;
            }
            /* the raw weights too, so one run compares averaged and raw */
            if (train_predict(model, vf, nv, vprobs, &e2) < 0) {
                rc = err_set(e, "valid: %s", e2.msg);
                goto done;
            }
            TrainMetrics rm;
            train_metrics(vprobs, vtruth, NULL, nv, L, &rm);
            rawhist[ep] = rm.balanced;
            if (rm.balanced >= res->raw_best_valid_bal) {
                res->raw_best_valid_bal = rm.balanced;
                res->raw_best_epoch = ep;
            }
            train_metrics_free(&rm);
        }
        if (nv) {
            if (train_predict(scored, vf, nv, vprobs, &e2) < 0) {
                rc = err_set(e, "valid: %s", e2.msg);
                goto done;
            }
            TrainMetrics vm;
            train_metrics(vprobs, vtruth, NULL, nv, L, &vm);
            hist[ep] = vm.balanced;
            res->last_valid_bal = vm.balanced;
            /* ties go to the later epoch: it has seen more data at a lower learning rate */
            if (vm.balanced >= res->best_valid_bal) {
                improved = vm.balanced > res->best_valid_bal;
                res->best_valid_bal = vm.balanced;
                res->best_valid_acc = vm.accuracy;
                res->best_epoch = ep;
                if (!best) best = nn_model_clone(scored);
                else nn_model_copy_weights(best, scored);
            }
            snprintf(vline, sizeof vline, "  valid loss %.3f acc %.3f bal %.3f%s", vm.loss,
                     vm.accuracy, vm.balanced, res->best_epoch == ep ? " *" : "");
            if (avg)
                snprintf(vline + strlen(vline), sizeof vline - strlen(vline), "  (raw bal %.3f)",
                         rawhist[ep]);
            train_metrics_free(&vm);
        }
        if (o->log) {
            fprintf(o->log, "epoch %3d  loss %.4f  train acc %.3f%s  %.1fs\n", ep, lsum / spe,
                    seen ? (double)right / seen : 0.0, vline, common_now() - te);
            fflush(o->log);
        }
        since_best = improved ? 0 : since_best + 1;
        if (nv && o->patience > 0 && since_best >= o->patience) {
            if (o->log) fprintf(o->log, "early stop: no better valid for %d epochs\n", o->patience);
            break;
        }
    }
    if (nv && res->epochs_run > 0) {
        int k0 = res->epochs_run > 5 ? res->epochs_run - 4 : 1;
        double sum = 0;
        for (int k = k0; k <= res->epochs_run; k++) sum += hist[k];
        res->mean_last_valid_bal = sum / (res->epochs_run - k0 + 1);
        if (avg) {
            sum = 0;
            for (int k = k0; k <= res->epochs_run; k++) sum += rawhist[k];
            res->raw_mean_last_valid_bal = sum / (res->epochs_run - k0 + 1);
        }
    }
    nn_trainer_free(atr);
    atr = NULL;
    res->seconds = common_now() - t0;
    nn_trainer_free(tr); /* before the model it trains goes away */
    tr = NULL;
    /* no valid set: the last average (or the last weights) */
    NnModel *keep = best ? best : scored;
    if (keep != model) {
        nn_model_free(model);
        model = NULL;
    }
    if (keep != avg) nn_model_free(avg);
    avg = NULL;
    char buf[1024];
    snprintf(buf, sizeof buf,
             "epochs=%d steps_per_epoch=%d batch=%d lr=%g lr_min_frac=%g warmup=%d "
             "weight_decay=%g crop=%d-%d eq_db=%g time_masks=%dx%d freq_masks=%dx%d "
             "mixup=%g label_smoothing=%g balanced=%d patience=%d ema=%g ema_bn=%d",
             o->epochs, spe, B, o->lr, o->lr_min_frac, o->warmup_epochs, o->weight_decay,
             cmin, cmax, o->eq_db, o->time_masks, o->time_mask_max, o->freq_masks,
             o->freq_mask_max, o->mixup_alpha, o->label_smoothing, o->balanced, o->patience,
             o->ema, o->ema_bn);
    nn_model_set_meta(keep, "train_settings", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->seed);
    nn_model_set_meta(keep, "seed", buf);
    snprintf(buf, sizeof buf, "%d", res->epochs_run);
    nn_model_set_meta(keep, "epochs_run", buf);
    if (nv) {
        snprintf(buf, sizeof buf, "%d", res->best_epoch);
        nn_model_set_meta(keep, "best_epoch", buf);
        set_meta_f(keep, "valid_accuracy", res->best_valid_acc);
        set_meta_f(keep, "valid_balanced_accuracy", res->best_valid_bal);
    }
    set_meta_f(keep, "train_seconds", res->seconds);
    *out = keep;
    best = NULL;
    model = NULL;

done:
    nn_trainer_free(atr);
    nn_trainer_free(tr);
    nn_model_free(avg);
    nn_model_free(model);
    nn_model_free(best);
    for (int l = 0; l < L; l++) free(by[l]);
    free(by);
    free(nby);
    free(usable);
    free(x);
    free(tgt);
    free(logits);
    free(vprobs);
    free(vtruth);
    free(hist);
    free(rawhist);
    return rc;
}
