/* Tests of train/: label folding, folder data sets, labels from tags on a generated library
 * (mixed spellings, untagged files, files tagged by genred, ARTIST groups), and a short
 * training run on generated "genres" whose loss must fall and whose held-out accuracy must be
 * far above chance (also with a moving average of the weights, --ema), and nn_model_ema's
 * arithmetic on every stored float. Audio is synthesised with sox into a temp folder by
 * gen_library.sh.
 * usage: test_train GEN_LIBRARY_SH fold|folders|tags|smoke|smoke_ema|ema|augment
 * Exits 77 (skip) with a reason when sox or ffmpeg is missing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "decode.h"
#include "nn.h"
#include "train.h"
#include "train_internal.h" /* augmentation internals, tested directly */

#include "check.h"

static char tmpdir[256];

static void cleanup(void)
{
    if (!tmpdir[0]) return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Runs gen_library.sh into tmpdir/sub; returns its exit status (77: skip). */
static int generate(const char *script, const char *sub, const char *mode, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", tmpdir, sub);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s' %s", script, out, mode);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int test_fold(void)
{
    char a[64], b[64], c[64];
    train_fold_label("Hip Hop", a, sizeof a);
    train_fold_label("hip-hop", b, sizeof b);
    train_fold_label("HipHop", c, sizeof c);
    CHECK(!strcmp(a, "hiphop") && !strcmp(b, a) && !strcmp(c, a), "%s %s %s", a, b, c);
    train_fold_label("R&B / Soul", a, sizeof a);
    CHECK(!strcmp(a, "rbsoul"), "%s", a);
    train_fold_label("Rock", a, 3);
    CHECK(!strcmp(a, "ro"), "truncation gave %s", a);
    TrainLabels l;
    train_labels_gtzan(&l);
    CHECK(l.n == 10 && !strcmp(l.names[4], "hiphop") && !strcmp(l.display[4], "Hip-Hop"),
          "gtzan table");
    CHECK(train_labels_find(&l, "Hip Hop") == 4, "find by folded name");
    CHECK(train_labels_find(&l, "polka") == -1, "unknown label");
    train_labels_free(&l);
    return 0;
}

static int test_folders(const char *script)
{
    char dir[512];
    int g = generate(script, "lib", "folders", dir, sizeof dir);
    if (g) return g;
    /* a list of relative paths, with a comment and a blank line */
    char list[600];
    snprintf(list, sizeof list, "%s/list.txt", tmpdir);
    FILE *f = fopen(list, "w");
    fprintf(f, "# part\nbass/bass.00.flac\n\nbells/bells.01.flac\nnoise/noise.02.flac\n");
    fclose(f);
    /* a second list sharing two paths with the first, one of them twice */
    char list2[600];
    snprintf(list2, sizeof list2, "%s/list2.txt", tmpdir);
    f = fopen(list2, "w");
    fprintf(f, "noise/noise.02.flac\nbells/bells.03.flac\nbass/bass.00.flac\nnoise/noise.02.flac\n");
    fclose(f);
    TrainSet all, part;
    ErrMsg e;
    CHECK(train_set_from_folder(dir, NULL, 0, &all, &e) == 0, "%s", e.msg);
    CHECK(all.n == 24, "found %d files", all.n);
    const char *lists[2] = {list, list2};
    CHECK(train_set_from_folder(dir, lists, 1, &part, &e) == 0, "%s", e.msg);
    CHECK(part.n == 3, "list gave %d files", part.n);
    /* two lists are read in turn; a path in both is used once, where it came first */
    TrainSet two;
    CHECK(train_set_from_folder(dir, lists, 2, &two, &e) == 0, "%s", e.msg);
    CHECK(two.n == 4, "two lists gave %d files", two.n);
    CHECK(!strcmp(two.items[0].rel, "bass/bass.00.flac") &&
              !strcmp(two.items[2].rel, "noise/noise.02.flac") &&
              !strcmp(two.items[3].rel, "bells/bells.03.flac"),
          "two lists: order %s %s %s %s", two.items[0].rel, two.items[1].rel, two.items[2].rel,
          two.items[3].rel);
    train_set_free(&two);
    /* a missing list is an error that names it */
    const char *missing[2] = {list, "/nonexistent/list.txt"};
    CHECK(train_set_from_folder(dir, missing, 2, &two, &e) < 0 &&
              strstr(e.msg, "/nonexistent/list.txt"),
          "missing list: %s", e.msg);
    /* lists that name no file: the error names each of them */
    char empty1[600], empty2[600];
    snprintf(empty1, sizeof empty1, "%s/empty1.txt", tmpdir);
    snprintf(empty2, sizeof empty2, "%s/empty2.txt", tmpdir);
    f = fopen(empty1, "w");
    fprintf(f, "# nothing yet\n");
    fclose(f);
    f = fopen(empty2, "w");
    fclose(f);
    const char *empty[2] = {empty1, empty2};
    CHECK(train_set_from_folder(dir, empty, 2, &two, &e) < 0 && strstr(e.msg, "no audio files") &&
              strstr(e.msg, "empty1.txt") && strstr(e.msg, "empty2.txt"),
          "empty lists: %s", e.msg);
    TrainSet *sets[2] = {&all, &part};
    CHECK(train_sets_label_folders(sets, 2, &e) == 0, "%s", e.msg);
    /* not GTZAN names: sorted folded keys */
    CHECK(all.labels.n == 3 && !strcmp(all.labels.names[0], "bass") &&
              !strcmp(all.labels.names[2], "noise"),
          "labels");
    CHECK(part.items[1].label == 1 && !strcmp(part.items[1].rel, "bells/bells.01.flac"),
          "list item");
    /* the power mels of each window, once per file; the cache must give the same numbers */
    TrainFeatOptions fo = train_feat_default_options();
    char cache[600];
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    fo.cache_dir = cache;
    fo.threads = 2;
    TrainFeat *f1 = NULL, *f2 = NULL;
    int failed = -1;
    CHECK(train_features_compute(&part, &fo, &f1, &failed, &e) == 0, "%s", e.msg);
    CHECK(failed == 0, "%d failed", failed);
    /* 3 s is shorter than a 4 s window: one window of the whole track, 1 + 66150/512 frames */
    CHECK(f1[0].n_seg == 1 && f1[0].frames == 130 && f1[0].n_mels == 64, "%d windows of %d",
          f1[0].n_seg, f1[0].frames);
    CHECK(train_features_compute(&part, &fo, &f2, &failed, &e) == 0, "%s", e.msg);
    CHECK(f2[0].frames == f1[0].frames &&
              !memcmp(f1[0].power, f2[0].power, sizeof(float) * 64 * f1[0].frames),
          "cache differs");
    train_features_free(f1, part.n);
    train_features_free(f2, part.n);
    train_set_free(&all);
    train_set_free(&part);
    return 0;
}

/* The tensors of a saved model, read back from the safetensors file (8-byte header length,
 * JSON header, raw float32 data): the test sees what nn stores without nn's internals. */
static float *saved_floats(NnModel *m, const char *name, size_t *count, uint64_t *hlen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, name);
    ErrMsg e;
    uint8_t *data = NULL;
    size_t len = 0;
    if (nn_model_save(m, path, &e) < 0 || common_read_file(path, &data, &len, &e) < 0 || len < 8) {
        free(data);
        return NULL;
    }
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | data[i];
    *hlen = h;
    *count = (len - 8 - h) / sizeof(float);
    float *f = xmalloc(*count * sizeof(float) + 1);
    memcpy(f, data + 8 + h, *count * sizeof(float));
    free(data);
    return f;
}

/* nn_model_ema: avg = decay*avg + (1-decay)*m on parameters and batch-norm running statistics;
 * decay 1 leaves avg as it was; a model of another architecture is refused. */
static int test_ema(void)
{
    const char *labels[3] = {"a", "b", "c"};
    NnArchConfig ac = {.arch = "fcn", .n_labels = 3, .labels = labels, .fcn_blocks = 2,
                       .fcn_channels = {4, 8}, .dropout = -1};
    ErrMsg e;
    NnModel *a = nn_model_new(&ac, 1, &e), *b = nn_model_new(&ac, 2, &e);
    CHECK(a && b, "%s", e.msg);
    if (!a || !b) return 1;
    /* one training-mode pass moves b's running statistics away from the initial 0 and 1 */
    NnOptim opt = {.kind = NN_ADAMW, .lr = 1e-3f};
    NnTrainer *t = nn_trainer_new(b, &opt, 2, &e);
    CHECK(t != NULL, "%s", e.msg);
    int frames = 32;
    float *x = xmalloc(4 * 64 * (size_t)frames * sizeof(float)), tgt[12] = {0}, loss;
    for (int i = 0; i < 4 * 64 * frames; i++) x[i] = (float)((i * 37 % 101) - 80);
    for (int n = 0; n < 4; n++) tgt[n * 3 + n % 3] = 1;
    CHECK(t && nn_train_grads(t, x, 4, frames, tgt, 0, &loss, NULL, &e) == 0, "%s", e.msg);
    nn_trainer_free(t);
    NnModel *avg = nn_model_clone(a);
    nn_model_ema(avg, b, 0.75f);
    size_t na, nb, nv;
    uint64_t ha, hb, hv;
    float *fa = saved_floats(a, "a", &na, &ha), *fb = saved_floats(b, "b", &nb, &hb);
    float *fv = saved_floats(avg, "avg", &nv, &hv);
    CHECK(fa && fb && fv && na == nb && na == nv && ha == hb && ha == hv, "saved layouts");
    if (fa && fb && fv && na == nv && na == nb) {
        int bad = 0, moved = 0;
        for (size_t i = 0; i < na; i++) {
            float want = 0.75f * fa[i] + 0.25f * fb[i];
            if (fabsf(fv[i] - want) > 1e-6f * (1 + fabsf(want))) bad++;
            moved += fa[i] != fb[i];
        }
        CHECK(bad == 0, "%d of %zu floats are not the blend", bad, na);
        /* the running statistics changed too, so every kind of tensor was checked */
        CHECK(moved > (int)(na * 9 / 10), "only %d of %zu floats differ between a and b", moved,
              na);
    }
    /* decay 1: nothing moves */
    NnModel *same = nn_model_clone(a);
    nn_model_ema(same, b, 1.0f);
    size_t ns;
    uint64_t hs;
    float *fs = saved_floats(same, "same", &ns, &hs);
    CHECK(fs && fa && ns == na && !memcmp(fs, fa, na * sizeof(float)), "decay 1 changed avg");
    /* another architecture: refused, avg untouched */
    ac.fcn_channels[1] = 16;
    NnModel *other = nn_model_new(&ac, 3, &e);
    nn_model_ema(same, other, 0.5f);
    free(fs);
    fs = saved_floats(same, "same2", &ns, &hs);
    CHECK(fs && fa && ns == na && !memcmp(fs, fa, na * sizeof(float)), "mismatch not refused");
    free(fa);
    free(fb);
    free(fv);
    free(fs);
    free(x);
    nn_model_free(a);
    nn_model_free(b);
    nn_model_free(avg);
    nn_model_free(same);
    nn_model_free(other);
    return 0;
}

static int test_tags(const char *script, int do_train, float ema)
{
    char dir[512];
    int g = generate(script, "tags", "tags", dir, sizeof dir);
    if (g) return g;
    char mapf[600];
    snprintf(mapf, sizeof mapf, "%s/map.txt", tmpdir);
    FILE *f = fopen(mapf, "w");
    fprintf(f, "# merge a spelling the folding cannot\nNoise Rock = Noise-Rock\n");
    fclose(f);
    char *dirs[1] = {dir};
    TrainTagOptions o = {.min_per_label = 3, .map_file = mapf, .valid_fraction = 0.3, .seed = 3,
                         .threads = 2, .report = stdout};
    TrainSet tr, va;
    TrainTagStats st;
    ErrMsg e;
    CHECK(train_sets_from_tags(dirs, 1, &o, &tr, &va, &st, &e) == 0, "%s", e.msg);
    if (failures) return 1;
    CHECK(st.files == 40 && st.untagged == 6 && st.genred_tagged == 4 && st.unreadable == 0,
          "files %d untagged %d genred %d unreadable %d", st.files, st.untagged,
          st.genred_tagged, st.unreadable);
    CHECK(tr.labels.n == 3, "%d labels", tr.labels.n);
    /* sorted keys; display = the most common spelling ("Hip Hop" 6 files vs 2 and 2) */
    CHECK(!strcmp(tr.labels.names[0], "classical") && !strcmp(tr.labels.display[0], "Classical"),
          "%s/%s", tr.labels.names[0], tr.labels.display[0]);
    CHECK(!strcmp(tr.labels.names[1], "hiphop") && !strcmp(tr.labels.display[1], "Hip Hop"),
          "%s/%s", tr.labels.names[1], tr.labels.display[1]);
    CHECK(!strcmp(tr.labels.names[2], "noiserock") && !strcmp(tr.labels.display[2], "Noise-Rock"),
          "%s/%s", tr.labels.names[2], tr.labels.display[2]);
    CHECK(tr.n + va.n == 30, "%d + %d labelled files", tr.n, va.n);
    CHECK(va.n > 0 && tr.n > va.n, "split %d / %d", tr.n, va.n);
    for (int i = 0; i < tr.n; i++) {
        CHECK(!strstr(tr.items[i].path, "genred-tagged"), "genred-tagged file used");
        for (int j = 0; j < va.n; j++)
            CHECK(strcmp(tr.items[i].group, va.items[j].group), "artist %s in both parts",
                  tr.items[i].group);
    }
    /* min-per-label drops everything when set above the counts */
    TrainSet t2, v2;
    o.min_per_label = 11;
    o.report = NULL;
    CHECK(train_sets_from_tags(dirs, 1, &o, &t2, &v2, &st, &e) < 0 && st.rare_labels == 3,
          "rare labels %d", st.rare_labels);

    if (do_train && !failures) {
        TrainFeatOptions fo = train_feat_default_options();
        fo.threads = 2;
        TrainFeat *tf = NULL, *vf = NULL;
        int failed = 0;
        CHECK(train_features_compute(&tr, &fo, &tf, &failed, &e) == 0 && failed == 0, "%s",
              e.msg);
        CHECK(train_features_compute(&va, &fo, &vf, &failed, &e) == 0 && failed == 0, "%s",
              e.msg);
        TrainOptions to = train_default_options();
        to.fcn_blocks = 2;
        to.fcn_channels[0] = 8;
        to.fcn_channels[1] = 16;
        to.epochs = 10;
        to.steps_per_epoch = 8;
        to.batch = 16;
        to.seed = 5;
        to.lr = 3e-3f;
        to.ema = ema;
        to.ema_bn = ema > 0 ? 3 : 0;
        FILE *log = tmpfile();
        to.log = log;
        NnModel *m = NULL;
        TrainResult res;
        CHECK(train_run(&tr, tf, &va, vf, &fo, &to, &m, &res, &e) == 0, "%s", e.msg);
        if (m) {
            /* the loss of the first epoch must be clearly above the last one's */
            rewind(log);
            char line[512];
            double first = -1, last = -1;
            while (fgets(line, sizeof line, log)) {
                fputs(line, stdout);
                double l;
                if (sscanf(line, "epoch %*d loss %lf", &l) == 1) {
                    if (first < 0) first = l;
                    last = l;
                }
            }
            CHECK(first > 0 && last < 0.8 * first, "loss %.3f -> %.3f", first, last);
            CHECK(res.best_valid_acc >= 0.8, "held-out accuracy %.3f (chance 0.33)",
                  res.best_valid_acc);
            if (ema > 0)
                CHECK(res.raw_best_epoch > 0 && res.raw_best_valid_bal >= 0.5,
                      "raw weights: epoch %d balanced %.3f", res.raw_best_epoch,
                      res.raw_best_valid_bal);
            else
                CHECK(res.raw_best_epoch == 0, "raw figures without ema");
            const NnInfo *info = nn_model_info(m);
            CHECK(info->n_labels == 3 && !strcmp(info->display_names[1], "Hip Hop"),
                  "model labels");
            /* the saved model scores the held-out files as the kept epoch did */
            char path[600];
            snprintf(path, sizeof path, "%s/m.safetensors", tmpdir);
            CHECK(nn_model_save(m, path, &e) == 0, "%s", e.msg);
            NnModel *m2 = nn_model_load(path, &e);
            CHECK(m2 != NULL, "%s", e.msg);
            if (m2) {
                float *p = xcalloc((size_t)va.n * 3, sizeof(float));
                CHECK(train_predict(m2, vf, va.n, p, &e) == 0, "%s", e.msg);
                int *truth = xmalloc((size_t)va.n * sizeof(int));
                for (int i = 0; i < va.n; i++) truth[i] = va.items[i].label;
                TrainMetrics tm;
                train_metrics(p, truth, NULL, va.n, 3, &tm);
                CHECK(tm.n == va.n && tm.accuracy == res.best_valid_acc,
                      "reloaded accuracy %.3f vs %.3f", tm.accuracy, res.best_valid_acc);
                train_metrics_free(&tm);
                free(truth);
                free(p);
                nn_model_free(m2);
            }
            nn_model_free(m);
        }
        fclose(log);
        train_features_free(tf, tr.n);
        train_features_free(vf, va.n);
    }
    train_set_free(&tr);
    train_set_free(&va);
    return 0;
}

/* ---- waveform augmentation (train/augment.c) ---- */

static double power_db(const float *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return 10 * log10(s / n + 1e-30);
}

/* Mean power of x in the DFT bins [f0, f1) Hz (a plain DFT: slow, exact, no FFT library). */
static double band_power(const float *x, int n, int sr, double f0, double f1)
{
    double sum = 0;
    int cnt = 0;
    for (int k = (int)ceil(f0 * n / sr); k < f1 * n / sr; k++) {
        double re = 0, im = 0, w = 2 * M_PI * k / n;
        for (int i = 0; i < n; i++) {
            re += x[i] * cos(w * i);
            im -= x[i] * sin(w * i);
        }
        sum += re * re + im * im;
        cnt++;
    }
    return cnt ? sum / cnt : 0;
}

static void sine(float *x, int n, double f, double amp)
{
    for (int i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * M_PI * f * i / 22050.0));
}

static int test_augment(void)
{
    enum { N = 22050 };
    float *x = xmalloc(N * sizeof(float)), *y = xmalloc(N * sizeof(float));
    float *noise = xmalloc(N * sizeof(float)), *scratch = xmalloc(N * sizeof(float));
    /* the SNR is what was asked for, for both colours and a few levels */
    for (int kind = TRAIN_NOISE_WHITE; kind <= TRAIN_NOISE_PINK; kind++)
        for (double snr = -5; snr <= 20; snr += 12.5) {
            sine(x, N, 440, 0.3);
            memcpy(y, x, N * sizeof(float));
            train_add_noise(y, N, kind, snr, 7);
            for (int i = 0; i < N; i++) noise[i] = y[i] - x[i];
            double got = power_db(x, N) - power_db(noise, N);
            CHECK(fabs(got - snr) < 0.01, "%s noise at %.1f dB SNR measured %.3f dB",
                  train_noise_name(kind), snr, got);
        }
    /* seeded: the same seed gives the same noise, another seed other noise */
    sine(x, N, 440, 0.3);
    memcpy(y, x, N * sizeof(float));
    train_add_noise(x, N, TRAIN_NOISE_PINK, 10, 3);
    train_add_noise(y, N, TRAIN_NOISE_PINK, 10, 3);
    CHECK(!memcmp(x, y, N * sizeof(float)), "same seed, different noise");
    sine(y, N, 440, 0.3);
    train_add_noise(y, N, TRAIN_NOISE_PINK, 10, 4);
    CHECK(memcmp(x, y, N * sizeof(float)) != 0, "other seed, same noise");
    /* silence has no SNR: left alone */
    memset(x, 0, N * sizeof(float));
    train_add_noise(x, N, TRAIN_NOISE_WHITE, 10, 1);
    CHECK(power_db(x, N) < -200, "noise added to silence");
    /* colour: white is flat, pink falls about 3 dB per octave (octaves 200 Hz .. 6.4 kHz) */
    for (int kind = TRAIN_NOISE_WHITE; kind <= TRAIN_NOISE_PINK; kind++) {
        enum { M = 4096 };
        memset(noise, 0, M * sizeof(float));
        noise[0] = 1; /* a click, so the level is defined */
        train_add_noise(noise, M, kind, -60, 11);
        double lo = band_power(noise, M, 22050, 200, 400);
        double hi = band_power(noise, M, 22050, 3200, 6400);
        double slope = 10 * log10(hi / lo) / 4; /* dB per octave */
        double want = kind == TRAIN_NOISE_PINK ? -3.0 : 0.0;
        CHECK(fabs(slope - want) < 0.8, "%s noise: %.2f dB/octave, want %.1f",
              train_noise_name(kind), slope, want);
    }
    /* band limits: a phone band keeps 1 kHz and cuts 100 Hz and 6 kHz */
    TrainAugDraw d = {.band = 1, .hp_hz = 300, .lp_hz = 3400};
    Rng r;
    rng_seed(&r, 1);
    struct { double f, min_db, max_db; } cases[] = {{100, -200, -20}, {1000, -1, 1}, {6000, -200, -20}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        sine(x, N, cases[k].f, 0.5);
        memcpy(y, x, N * sizeof(float));
        train_augment_apply(&r, &d, 22050, y, N, NULL, scratch);
        /* skip the filter's start-up */
        double g = power_db(y + N / 2, N / 2) - power_db(x + N / 2, N / 2);
        CHECK(g >= cases[k].min_db && g <= cases[k].max_db,
              "phone band at %.0f Hz: %.1f dB, want %.0f..%.0f", cases[k].f, g, cases[k].min_db,
              cases[k].max_db);
    }
    /* a second track mixed in at 15 dB below */
    TrainAugDraw dm = {.mix = 1, .mix_db = 15};
    sine(x, N, 440, 0.5);
    sine(noise, N, 3000, 0.1);
    memcpy(y, x, N * sizeof(float));
    train_augment_apply(&r, &dm, 22050, y, N, noise, scratch);
    for (int i = 0; i < N; i++) noise[i] = y[i] - x[i];
    CHECK(fabs(power_db(x, N) - power_db(noise, N) - 15) < 0.01, "mix level wrong");
    /* the draws follow the probabilities */
    TrainAugment a = {.noise_prob = 0.5f, .snr_min = 0, .snr_max = 20, .pink_share = 0.5f};
    int noisy = 0, pink = 0, band = 0, mix = 0;
    for (int k = 0; k < 4000; k++) {
        train_augment_draw(&r, &a, &d);
        noisy += d.noise;
        pink += d.noise && d.noise_kind == TRAIN_NOISE_PINK;
        band += d.band;
        mix += d.mix;
        CHECK(d.snr_db >= 0 && d.snr_db < 20, "snr %.2f out of range", d.snr_db);
    }
    CHECK(noisy > 1800 && noisy < 2200 && pink > 800 && pink < 1200 && !band && !mix,
          "draws: %d noisy, %d pink, %d band, %d mix of 4000", noisy, pink, band, mix);
    free(x);
    free(y);
    free(noise);
    free(scratch);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr,
                "usage: test_train GEN_LIBRARY_SH fold|folders|tags|smoke|smoke_ema|ema|augment\n");
        return 2;
    }
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/genred-train-XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    /* a private cache home: tests never touch the user's mel cache */
    char xdg[300];
    snprintf(xdg, sizeof xdg, "%s/xdg-cache", tmpdir);
    setenv("XDG_CACHE_HOME", xdg, 1);
    int rc = 0;
    if (!strcmp(argv[2], "fold")) rc = test_fold();
    else if (!strcmp(argv[2], "folders")) rc = test_folders(argv[1]);
    else if (!strcmp(argv[2], "tags")) rc = test_tags(argv[1], 0, 0);
    else if (!strcmp(argv[2], "smoke")) rc = test_tags(argv[1], 1, 0);
    else if (!strcmp(argv[2], "smoke_ema")) rc = test_tags(argv[1], 1, 0.9f);
    else if (!strcmp(argv[2], "ema")) rc = test_ema();
    else if (!strcmp(argv[2], "augment")) rc = test_augment();
    else rc = 2;
    cleanup();
    if (rc == 77) {
        printf("skipped: sox or ffmpeg missing\n");
        return 77;
    }
    if (rc || failures) {
        fprintf(stderr, "%d failures\n", failures + (rc != 0));
        return 1;
    }
    printf("ok\n");
    return 0;
}
