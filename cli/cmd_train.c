/* genred train: trains a model from a labelled folder (label = parent folder name, optional
 * train/valid lists) or from the GENRE tags of a user's library, keeps the best epoch on valid
 * and writes the model atomically with its labels, settings and provenance in the metadata.
 * Only argument parsing and reporting live here; the work is in train/. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "decode.h"
#include "nn.h"
#include "train.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: genred train --data DIR [--train-list F] [--valid-list F] -o MODEL.safetensors\n"
            "       genred train --labels-from-tags DIR... [--min-per-label N] [--map FILE]\n"
            "                    [--valid-fraction X] -o MODEL.safetensors\n"
            "model:   --arch fcn|seed-cnn (fcn)  --fcn-channels 16,32,64,128  --dropout X\n"
            "training: --epochs N (45)  --lr X (0.002)  --batch N (32)  --seed N (1)\n"
            "          --steps-per-epoch N (files/batch)  --weight-decay X (0.01)\n"
            "          --warmup N (1 epoch)  --lr-min-frac X (0.05, cosine floor)\n"
            "          --patience N (0: off; epochs without a better valid balanced accuracy)\n"
            "          --ema DECAY (0.99; 0: off; per-step moving average of the weights,\n"
            "          scored on valid and kept)\n"
            "          --ema-bn N (0: off; batches re-estimating the average's batch norm)\n"
            "augment: --crop MIN-MAX (64-86 frames, fcn)  --eq-db X (6, random spectral tilt)\n"
            "         --time-masks N (2) --time-mask-max F (12)  --freq-masks N (2)\n"
            "         --freq-mask-max B (8)  --mixup ALPHA (0: off)\n"
            "         --label-smoothing X (0)  --no-balance (sample files, not labels)\n"
            "other:   --threads N (decode threads)  --no-cache (no mel cache files)  -q\n");
}

enum {
    O_DATA = 256, O_TRAIN_LIST, O_VALID_LIST, O_TAGS, O_MIN_PER, O_MAP, O_VFRAC, O_ARCH,
    O_EPOCHS, O_LR, O_BATCH, O_SEED, O_THREADS, O_SPE, O_WD, O_WARM, O_LRMIN, O_PAT, O_CROP,
    O_EQ, O_TM, O_TMW, O_FM, O_FMW, O_MIX, O_LS, O_NOBAL, O_NOCACHE, O_FCNCH, O_DROP, O_EMA,
    O_EMABN, O_HELP
};

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, double lo, double hi, float *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == 0 || *end || !(v >= lo && v <= hi)) return -1;
    *out = (float)v;
    return 0;
}

static char *join_argv(int argc, char **argv)
{
    size_t n = 16;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 3;
    char *s = xmalloc(n);
    strcpy(s, "genred");
    for (int i = 0; i < argc; i++) {
        strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

int cmd_train(int argc, char **argv)
{
    static const struct option lo[] = {
        {"data", required_argument, 0, O_DATA},
        {"train-list", required_argument, 0, O_TRAIN_LIST},
        {"valid-list", required_argument, 0, O_VALID_LIST},
        {"labels-from-tags", no_argument, 0, O_TAGS},
        {"min-per-label", required_argument, 0, O_MIN_PER},
        {"map", required_argument, 0, O_MAP},
        {"valid-fraction", required_argument, 0, O_VFRAC},
        {"arch", required_argument, 0, O_ARCH},
        {"epochs", required_argument, 0, O_EPOCHS},
        {"lr", required_argument, 0, O_LR},
        {"batch", required_argument, 0, O_BATCH},
        {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS},
        {"steps-per-epoch", required_argument, 0, O_SPE},
        {"weight-decay", required_argument, 0, O_WD},
        {"warmup", required_argument, 0, O_WARM},
        {"lr-min-frac", required_argument, 0, O_LRMIN},
        {"patience", required_argument, 0, O_PAT},
        {"crop", required_argument, 0, O_CROP},
        {"eq-db", required_argument, 0, O_EQ},
        {"time-masks", required_argument, 0, O_TM},
        {"time-mask-max", required_argument, 0, O_TMW},
        {"freq-masks", required_argument, 0, O_FM},
        {"freq-mask-max", required_argument, 0, O_FMW},
        {"mixup", required_argument, 0, O_MIX},
        {"label-smoothing", required_argument, 0, O_LS},
        {"no-balance", no_argument, 0, O_NOBAL},
        {"no-cache", no_argument, 0, O_NOCACHE},
        {"fcn-channels", required_argument, 0, O_FCNCH},
        {"dropout", required_argument, 0, O_DROP},
        {"ema", required_argument, 0, O_EMA},
        {"ema-bn", required_argument, 0, O_EMABN},
        {"output", required_argument, 0, 'o'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    TrainOptions o = train_default_options();
    TrainFeatOptions fo = train_feat_default_options();
    TrainTagOptions to = {.min_per_label = 5, .valid_fraction = 0.2, .seed = 1, .threads = 0};
    const char *data = NULL, *train_list = NULL, *valid_list = NULL, *output = NULL;
    int from_tags = 0, no_cache = 0, quiet = 0, seed = 1;
    float vfrac = 0.2f;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:q", lo, NULL)) != -1) {
        const char *a = optarg;
        int bad = 0;
        switch (c) {
        case O_DATA: data = a; break;
        case O_TRAIN_LIST: train_list = a; break;
        case O_VALID_LIST: valid_list = a; break;
        case O_TAGS: from_tags = 1; break;
        case O_MIN_PER: bad = parse_int(a, 0, 1000000, &to.min_per_label); break;
        case O_MAP: to.map_file = a; break;
        case O_VFRAC: bad = parse_float(a, 0, 0.9, &vfrac); break;
        case O_ARCH:
            o.arch = a;
            bad = strcmp(a, "fcn") && strcmp(a, "seed-cnn");
            break;
        case O_EPOCHS: bad = parse_int(a, 1, 100000, &o.epochs); break;
        case O_LR: bad = parse_float(a, 1e-7, 10, &o.lr); break;
        case O_BATCH: bad = parse_int(a, 2, 4096, &o.batch); break;
        case O_SEED: bad = parse_int(a, 0, 2147483647, &seed); break;
        case O_THREADS: bad = parse_int(a, 1, 64, &fo.threads); break;
        case O_SPE: bad = parse_int(a, 1, 1000000, &o.steps_per_epoch); break;
        case O_WD: bad = parse_float(a, 0, 10, &o.weight_decay); break;
        case O_WARM: bad = parse_int(a, 0, 100000, &o.warmup_epochs); break;
        case O_LRMIN: bad = parse_float(a, 0, 1, &o.lr_min_frac); break;
        case O_PAT: bad = parse_int(a, 0, 100000, &o.patience); break;
        case O_CROP:
            if (sscanf(a, "%d-%d", &o.crop_min, &o.crop_max) != 2) {
                bad = parse_int(a, 1, 100000, &o.crop_min);
                o.crop_max = o.crop_min;
            }
            bad = bad || o.crop_min < 1 || o.crop_max < o.crop_min || o.crop_max > 10000;
            break;
        case O_EQ: bad = parse_float(a, 0, 40, &o.eq_db); break;
        case O_TM: bad = parse_int(a, 0, 100, &o.time_masks); break;
        case O_TMW: bad = parse_int(a, 0, 10000, &o.time_mask_max); break;
        case O_FM: bad = parse_int(a, 0, 100, &o.freq_masks); break;
        case O_FMW: bad = parse_int(a, 0, 1000, &o.freq_mask_max); break;
        case O_MIX: bad = parse_float(a, 0, 100, &o.mixup_alpha); break;
        case O_LS: bad = parse_float(a, 0, 0.99, &o.label_smoothing); break;
        case O_NOBAL: o.balanced = 0; break;
        case O_NOCACHE: no_cache = 1; break;
        case O_FCNCH: {
            int k = 0;
            char *dup = xstrdup(a), *save = NULL;
            for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (k == 8 || parse_int(t, 1, 1024, &o.fcn_channels[k]) < 0) bad = 1;
                else k++;
            }
            free(dup);
            o.fcn_blocks = k;
            bad = bad || k == 0;
            break;
        }
        case O_DROP: bad = parse_float(a, 0, 0.95, &o.dropout); break;
        case O_EMA: bad = parse_float(a, 0, 0.99999, &o.ema); break;
        case O_EMABN: bad = parse_int(a, 0, 100000, &o.ema_bn); break;
        case 'o': output = a; break;
        case 'q': quiet = 1; break;
        case O_HELP: usage(stdout); return 0;
        default:
            fprintf(stderr, "genred train: unknown option %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "genred train: bad value '%s' for %s\n", a ? a : "", argv[optind - 1]);
            return 2;
        }
    }
    o.seed = (uint64_t)seed;
    to.seed = (uint64_t)seed;
    to.valid_fraction = vfrac;
    to.threads = fo.threads;
    if (!output || (!data && !from_tags) || (data && from_tags) ||
        (from_tags && optind >= argc) || (!from_tags && optind < argc)) {
        fprintf(stderr, "genred train: need -o MODEL and either --data DIR or "
                        "--labels-from-tags DIR...\n");
        usage(stderr);
        return 2;
    }
    o.log = quiet ? NULL : stdout;
    fo.short_policy = strcmp(o.arch, "seed-cnn") ? DECODE_SHORT_WHOLE : DECODE_SHORT_PAD;
    char *cache = no_cache ? NULL : train_default_cache_dir();
    fo.cache_dir = cache;

    TrainSet tr = {0}, va = {0};
    ErrMsg e;
    int status = 1;
    TrainFeat *tf = NULL, *vf = NULL;
    NnModel *model = NULL;
    char *trl = NULL, *val = NULL;
    if (from_tags) {
        to.report = quiet ? NULL : stdout;
        TrainTagStats st;
        if (train_sets_from_tags(argv + optind, argc - optind, &to, &tr, &va, &st, &e) < 0) {
            fprintf(stderr, "genred train: %s\n", e.msg);
            goto out;
        }
    } else {
        if (train_list) trl = realpath(train_list, NULL);
        if (valid_list) val = realpath(valid_list, NULL);
        if (train_set_from_folder(data, train_list, &tr, &e) < 0) {
            fprintf(stderr, "genred train: %s\n", e.msg);
            goto out;
        }
        if (valid_list && train_set_from_folder(data, valid_list, &va, &e) < 0) {
            fprintf(stderr, "genred train: %s\n", e.msg);
            goto out;
        }
        TrainSet *sets[2] = {&tr, &va};
        if (train_sets_label_folders(sets, valid_list ? 2 : 1, &e) < 0) {
            fprintf(stderr, "genred train: %s\n", e.msg);
            goto out;
        }
    }
    if (!quiet)
        printf("train %d files, valid %d files, %d labels; computing mel spectrograms...\n",
               tr.n, va.n, tr.labels.n);
    double t0 = common_now();
    int ftr = 0, fva = 0;
    if (train_features_compute(&tr, &fo, &tf, &ftr, &e) < 0 ||
        (va.n && train_features_compute(&va, &fo, &vf, &fva, &e) < 0)) {
        fprintf(stderr, "genred train: %s\n", e.msg);
        goto out;
    }
    if (!quiet)
        printf("features of %d files in %.1f s (%d failed)\n", tr.n + va.n, common_now() - t0,
               ftr + fva);
    if (!va.n && !quiet) printf("no valid set: the last epoch is kept\n");
    TrainResult res;
    if (train_run(&tr, tf, va.n ? &va : NULL, vf, &fo, &o, &model, &res, &e) < 0) {
        fprintf(stderr, "genred train: %s\n", e.msg);
        goto out;
    }
    char *cmd = join_argv(argc, argv);
    nn_model_set_meta(model, "command", cmd);
    free(cmd);
    if (data) nn_model_set_meta(model, "data", data);
    if (from_tags) nn_model_set_meta(model, "data", "labels from tags");
    if (trl) nn_model_set_meta(model, "train_list", trl);
    if (val) nn_model_set_meta(model, "valid_list", val);
    char buf[64];
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    nn_model_set_meta(model, "date", buf);
    snprintf(buf, sizeof buf, "%d", tr.n - ftr);
    nn_model_set_meta(model, "train_files", buf);
    snprintf(buf, sizeof buf, "%d", va.n - fva);
    nn_model_set_meta(model, "valid_files", buf);
    if (nn_model_save(model, output, &e) < 0) {
        fprintf(stderr, "genred train: %s: %s\n", output, e.msg);
        goto out;
    }
    if (!quiet) {
        printf("trained %d epochs in %.1f s", res.epochs_run, res.seconds);
        if (va.n)
            printf("; best epoch %d: valid accuracy %.3f, balanced %.3f (mean of the last 5 "
                   "epochs %.3f)",
                   res.best_epoch, res.best_valid_acc, res.best_valid_bal,
                   res.mean_last_valid_bal);
        if (va.n && o.ema > 0)
            printf("; raw weights: best epoch %d balanced %.3f, last 5 epochs %.3f",
                   res.raw_best_epoch, res.raw_best_valid_bal, res.raw_mean_last_valid_bal);
        printf("\nwrote %s\n", output);
        if (va.n) {
            float *probs = xcalloc((size_t)va.n * tr.labels.n, sizeof(float));
            if (train_predict(model, vf, va.n, probs, &e) == 0) {
                printf("valid set, best epoch:\n");
                train_report(stdout, &va, probs, 0, NULL, NULL, &e);
            }
            free(probs);
        }
    }
    status = 0;
out:
    nn_model_free(model);
    train_features_free(tf, tr.n);
    train_features_free(vf, va.n);
    train_set_free(&tr);
    train_set_free(&va);
    free(trl);
    free(val);
    free(cache);
    return status;
}
