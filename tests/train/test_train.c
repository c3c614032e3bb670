/* Tests of train/: label folding, folder data sets, labels from tags on a generated library
 * (mixed spellings, untagged files, files tagged by genred, ARTIST groups), and a short
 * training run on generated "genres" whose loss must fall and whose held-out accuracy must be
 * far above chance. Audio is synthesised with sox into a temp folder by gen_library.sh.
 * usage: test_train GEN_LIBRARY_SH fold|folders|tags|smoke
 * Exits 77 (skip) with a reason when sox or ffmpeg is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "decode.h"
#include "nn.h"
#include "train.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

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
    TrainSet all, part;
    ErrMsg e;
    CHECK(train_set_from_folder(dir, NULL, &all, &e) == 0, "%s", e.msg);
    CHECK(all.n == 24, "found %d files", all.n);
    CHECK(train_set_from_folder(dir, list, &part, &e) == 0, "%s", e.msg);
    CHECK(part.n == 3, "list gave %d files", part.n);
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

static int test_tags(const char *script, int do_train)
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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_train GEN_LIBRARY_SH fold|folders|tags|smoke\n");
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
    else if (!strcmp(argv[2], "tags")) rc = test_tags(argv[1], 0);
    else if (!strcmp(argv[2], "smoke")) rc = test_tags(argv[1], 1);
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
