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
#include "rng.h"
#include "train.h"
#include "train_internal.h"

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
                      .ema_warmup = 10,
                      .ema_bn = 0,
                      .log = NULL};
    return o;
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

/* Waveform augmentation while training: what make_example needs beyond one file. */
typedef struct AugCtx {
    const TrainAugment *a;
    MelPlan *plan;       /* mel of an augmented crop (owned) */
    const TrainFeat *tf; /* every training file, for the second file of a mix */
    const int *usable;
    int n_usable;
    int hop, sample_rate;
    float *wave, *other, *scratch; /* one crop each */
} AugCtx;

/* n samples of window s of f from start on, wrapping around a window shorter than that (as the
 * clean path tiles spectrogram columns). */
static void crop_samples(const TrainFeat *f, int s, int start, int n, float *out)
{
    const int16_t *seg = f->samples + (size_t)s * f->n_samples;
    for (int i = 0; i < n; i++) out[i] = seg[(start + i) % f->n_samples] * (1.0f / 32767.0f);
}

/* Copies a random crop of frames columns from a random window of f into out (n_mels, frames),
 * tiling a window shorter than the crop, and applies the tilt, dB conversion and masks.
 * clean_out (may be NULL) gets the same crop in dB with no augmentation, for a teacher.
 * With aug (and f's samples), the crop may instead be cut from the waveform, augmented there
 * and turned into a power mel spectrogram of the same frames. */
static void make_example(Rng *r, const TrainFeat *f, int frames, const TrainOptions *o,
                         const AugCtx *aug, float *out, float *clean_out)
{
    int M = f->n_mels;
    /* s: the window; ws: its samples' index. Under a sample memory budget only some windows
     * have samples: every crop of such a file then comes from one of those. */
    int kept = aug && f->samples ? f->n_sample_seg : f->n_seg, s, ws;
    if (kept < f->n_seg) {
        ws = rng_int(r, kept);
        s = ws * f->n_seg / kept;
    } else {
        ws = s = rng_int(r, f->n_seg);
    }
    const float *seg = f->power + (size_t)s * M * f->frames;
    int off = f->frames > frames ? rng_int(r, f->frames - frames + 1) : 0;
    if (clean_out) { /* the same crop as inference would see it: no augmentation at all */
        for (int m = 0; m < M; m++)
            for (int t = 0; t < frames; t++)
                clean_out[m * frames + t] = seg[(size_t)m * f->frames + (off + t) % f->frames];
        mel_power_to_db(clean_out, M * frames);
    }
    TrainAugDraw d = {0};
    if (aug && f->samples) train_augment_draw(r, aug->a, &d);
    if (d.mix || d.noise || d.band) {
        /* mel_frames((frames - 1) * hop + 1) == frames */
        int n = (frames - 1) * aug->hop + 1;
        crop_samples(f, ws, off * aug->hop, n, aug->wave);
        if (d.mix) {
            const TrainFeat *g = &aug->tf[aug->usable[rng_int(r, aug->n_usable)]];
            int gs = rng_int(r, g->n_sample_seg);
            int goff = g->n_samples > n ? rng_int(r, g->n_samples - n + 1) : 0;
            crop_samples(g, gs, goff, n, aug->other);
        }
        train_augment_apply(r, &d, aug->sample_rate, aug->wave, n, aug->other, aug->scratch);
        mel_compute_power(aug->plan, aug->wave, n, out);
    } else {
        for (int m = 0; m < M; m++)
            for (int t = 0; t < frames; t++)
                out[m * frames + t] = seg[(size_t)m * f->frames + (off + t) % f->frames];
    }
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
            make_example(r, &tf[usable[rng_int(r, n_usable)]], frames, &clean, NULL, x + b * per, NULL);
        for (int i = 0; i < B * L; i++) tgt[i] = i % L == 0; /* any target: no step follows */
        float loss;
        if (nn_train_grads(at, x, B, frames, tgt, 0, &loss, NULL, e) < 0) return -1;
    }
    return 0;
}

/* With a blend: *blended (made on first use) = blend * m + (1 - blend) * init, returned;
 * else m itself. */
static NnModel *blend_with_init(const TrainOptions *o, NnModel *m, NnModel **blended)
{
    if (!o->init || !(o->blend > 0 && o->blend < 1)) return m;
    if (!*blended) *blended = nn_model_clone(m);
    else nn_model_copy_weights(*blended, m);
    nn_model_ema(*blended, o->init, o->blend);
    return *blended;
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
    NnModel *model = NULL, *best = NULL, *avg = NULL, *blended = NULL;
    NnTrainer *tr = NULL, *atr = NULL;
    float *x = NULL, *tgt = NULL, *logits = NULL, *vprobs = NULL;
    int *vtruth = NULL;
    AugCtx aug = {0};
    float *tx = NULL, *tprobs = NULL; /* the teacher's input and output (distillation) */
    float *bn_keep = NULL;
    double *hist = NULL, *rawhist = NULL; /* (epochs + 1) valid balanced accuracy per epoch */
    int rc = 0;
    if (n_usable == 0 || labels_present < 2) {
        rc = err_set(e, "need training files of at least two labels, have %d files", n_usable);
        goto done;
    }
    ErrMsg e2;
    if (o->init) {
        if (nn_model_info(o->init)->n_labels != L) {
            rc = err_set(e, "the model has %d labels, the data set %d",
                         nn_model_info(o->init)->n_labels, L);
            goto done;
        }
        model = nn_model_clone(o->init);
    } else if (!(model = nn_model_new(&ac, o->seed, &e2))) {
        rc = err_set(e, "cannot build %s: %s", o->arch, e2.msg);
        goto done;
    }
    NnOptim opt = {.kind = o->momentum > 0 ? NN_SGD : NN_ADAMW,
                   .lr = o->lr,
                   .momentum = o->momentum,
                   .beta1 = 0.9f,
                   .beta2 = 0.999f,
                   .eps = 1e-8f,
                   .weight_decay = o->weight_decay,
                   .freeze_conv = o->freeze_conv};
    if (nn_model_set_device(model, o->device, &e2) < 0) {
        rc = err_set(e, "device: %s", e2.msg);
        goto done;
    }
    if (o->log) fprintf(o->log, "training on %s\n", nn_model_device_name(model));
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
    if (o->init && o->distill > 0) {
        tx = xmalloc((size_t)B * M * cmax * sizeof(float));
        tprobs = xmalloc((size_t)B * L * sizeof(float));
    }
    const TrainAugment *ag = &o->aug;
    bn_keep = xmalloc((size_t)(nn_model_bn_count(model) + 1) * sizeof(float));
    int aug_on = ag->mix_prob > 0 || ag->noise_prob > 0 || ag->band_prob > 0;
    int have_samples = 0;
    for (int k = 0; k < n_usable; k++) have_samples += tf[usable[k]].samples != NULL;
    if (aug_on && have_samples < n_usable) {
        rc = err_set(e, "waveform augmentation needs the samples of every training file");
        goto done;
    }
    aug = (AugCtx){.a = ag, .tf = tf, .usable = usable, .n_usable = n_usable, .hop = fo->hop,
                   .sample_rate = fo->sample_rate};
    if (aug_on) {
        if (!(aug.plan = mel_plan_create(fo->sample_rate, fo->n_fft, fo->hop, M, &e2))) {
            rc = err_set(e, "mel plan: %s", e2.msg);
            goto done;
        }
        size_t n = (size_t)(cmax - 1) * fo->hop + 1;
        aug.wave = xmalloc(n * sizeof(float));
        aug.other = xmalloc(n * sizeof(float));
        aug.scratch = xmalloc(n * sizeof(float));
    }
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
    res->best_noisy_acc = res->best_noisy_bal = -1;
    double best_score = -1;
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
            int aug_step = aug_on && (!ag->alternate || (step & 1));
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
                make_example(&rng, &tf[i], frames, o, aug_step ? &aug : NULL, x + b * per,
                             tx ? tx + b * per : NULL);
                float smooth = o->label_smoothing;
                for (int k = 0; k < L; k++) tgt[b * L + k] = smooth / L;
                tgt[b * L + train->items[i].label] += 1 - smooth;
            }
            if (tx) {
                if (nn_forward(o->init, tx, B, frames, tprobs, &e2) < 0) {
                    rc = err_set(e, "teacher: %s", e2.msg);
                    goto done;
                }
                for (int k = 0; k < B * L; k++)
                    tgt[k] = (1 - o->distill) * tgt[k] + o->distill * tprobs[k];
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
            if (aug_step && ag->alternate) nn_model_bn_get(model, bn_keep);
            if (nn_train_step(tr, x, B, frames, tgt, (float)lr, &loss, logits, &e2) < 0) {
                rc = err_set(e, "training step: %s", e2.msg);
                goto done;
            }
            if (aug_step && ag->alternate) nn_model_bn_set(model, bn_keep);
            if (avg) {
                /* the usual warm-up of the decay: early averages forget the random init */
                int ew = o->ema_warmup >= 2 ? o->ema_warmup : 10;
                float d = (float)(step + 1) / (float)(step + ew);
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
        char vline[256] = "";
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
        NnModel *judged = blend_with_init(o, scored, &blended);
        if (nv) {
            if (train_predict(judged, vf, nv, vprobs, &e2) < 0) {
                rc = err_set(e, "valid: %s", e2.msg);
                goto done;
            }
            TrainMetrics vm, nm = {0};
            train_metrics(vprobs, vtruth, NULL, nv, L, &vm);
            double score = vm.balanced;
            if (o->vf_noisy) {
                if (train_predict(judged, o->vf_noisy, nv, vprobs, &e2) < 0) {
                    train_metrics_free(&vm);
                    rc = err_set(e, "noisy valid: %s", e2.msg);
                    goto done;
                }
                train_metrics(vprobs, vtruth, NULL, nv, L, &nm);
                score = 0.5 * (vm.balanced + nm.balanced);
            }
            hist[ep] = vm.balanced;
            res->last_valid_bal = vm.balanced;
            /* ties go to the later epoch: it has seen more data at a lower learning rate */
            if (score >= best_score) {
                improved = score > best_score;
                best_score = score;
                res->best_valid_bal = vm.balanced;
                res->best_valid_acc = vm.accuracy;
                if (o->vf_noisy) {
                    res->best_noisy_bal = nm.balanced;
                    res->best_noisy_acc = nm.accuracy;
                }
                res->best_epoch = ep;
                if (!best) best = nn_model_clone(judged);
                else nn_model_copy_weights(best, judged);
            }
            snprintf(vline, sizeof vline, "  valid loss %.3f acc %.3f bal %.3f", vm.loss,
                     vm.accuracy, vm.balanced);
            if (o->vf_noisy)
                snprintf(vline + strlen(vline), sizeof vline - strlen(vline),
                         "  noisy acc %.3f bal %.3f", nm.accuracy, nm.balanced);
            if (res->best_epoch == ep)
                snprintf(vline + strlen(vline), sizeof vline - strlen(vline), " *");
            train_metrics_free(&nm);
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
    /* no valid set: the last average (or the last weights), blended as asked */
    NnModel *keep = best ? best : blend_with_init(o, scored, &blended);
    if (keep == blended) blended = NULL;
    if (keep != model) {
        nn_model_free(model);
        model = NULL;
    }
    if (keep != avg) nn_model_free(avg);
    avg = NULL;
    char buf[1536];
    snprintf(buf, sizeof buf,
             "epochs=%d steps_per_epoch=%d batch=%d optimizer=%s momentum=%g lr=%g "
             "lr_min_frac=%g warmup=%d "
             "weight_decay=%g crop=%d-%d eq_db=%g time_masks=%dx%d freq_masks=%dx%d "
             "mixup=%g label_smoothing=%g balanced=%d patience=%d ema=%g ema_warmup=%d ema_bn=%d "
             "freeze_conv=%d distill=%g alternate=%d blend=%g mix=%g@%g-%gdB noise=%g@%g-%gdB pink=%g band=%g",
             o->epochs, spe, B, opt.kind == NN_SGD ? "sgd" : "adamw", o->momentum, o->lr,
             o->lr_min_frac, o->warmup_epochs, o->weight_decay,
             cmin, cmax, o->eq_db, o->time_masks, o->time_mask_max, o->freq_masks,
             o->freq_mask_max, o->mixup_alpha, o->label_smoothing, o->balanced, o->patience,
             o->ema, o->ema_warmup, o->ema_bn, o->freeze_conv, o->distill, ag->alternate, o->blend, ag->mix_prob, ag->mix_db_min, ag->mix_db_max,
             ag->noise_prob, ag->snr_min, ag->snr_max, ag->pink_share, ag->band_prob);
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
        if (o->vf_noisy) {
            set_meta_f(keep, "valid_noisy_accuracy", res->best_noisy_acc);
            set_meta_f(keep, "valid_noisy_balanced_accuracy", res->best_noisy_bal);
        }
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
    nn_model_free(blended);
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
    mel_plan_free(aug.plan);
    free(tx);
    free(tprobs);
    free(bn_keep);
    free(aug.wave);
    free(aug.other);
    free(aug.scratch);
    return rc;
}
