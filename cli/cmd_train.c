/* genred train / genred finetune: trains a model from a labelled folder (label = parent folder
 * name, optional train/valid lists) or from the GENRE tags of a user's library, keeps the best
 * epoch on valid and writes the model atomically with its labels, settings and provenance in
 * the metadata. finetune is the same loop started from an existing model (its labels; the
 * user's genres mapped onto them), with waveform augmentation (noise, band limits, a second
 * track mixed in) on by default, selection on clean + noisy valid, and --retag.
 * Only argument parsing and reporting live here; the work is in train/. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cliutil.h"
#include "commands.h"
#include "decode.h"
#include "nn.h"
#include "train.h"

static void usage(FILE *f, int finetune)
{
    if (finetune) {
        fprintf(f,
                "usage: genred finetune --data DIR [--list F] [--valid-list F] [--from MODEL] -o OUT\n"
                "       genred finetune --labels-from-tags DIR... [--from MODEL] -o OUT\n"
                "Continues training MODEL (default: the installed model) on labelled audio with\n"
                "noise augmentation, so it holds up on recorded or noisy audio. Labels are the\n"
                "model's: folder names or GENRE tags it does not know are skipped and counted.\n"
                "Without --valid-list a part of the data (--valid-fraction, 0.15; by artist with\n"
                "--labels-from-tags) is held out; the epoch kept is the best mean of clean and\n"
                "noisy (white noise at --valid-snr dB) balanced accuracy on it. OUT is written\n"
                "atomically; a daemon whose model file it is loads it by itself.\n"
                "layers:  --all-layers (default)  --head-only (only the dense head: fast on a CPU)\n"
                "augment: --noise-prob P (0.5)  --snr MIN:MAX (0:20 dB)  --pink-share X (0.5)\n"
                "         --band-prob P (0.25; phone band or cheap microphone)\n"
                "         --mix-prob P (0.25)  --mix-db MIN:MAX (10:20 dB below)\n"
                "         --alternate (default) / --no-alternate: augment every other batch and\n"
                "         keep the batch-norm statistics of the clean ones\n"
                "         --crop, --eq-db, --time-masks, ... as genred train\n"
                "keep clean accuracy: --distill X (0.8; share of each target that is MODEL's\n"
                "         own prediction on the clean crop)  --blend A (0.6; keep A x the\n"
                "         fine-tuned weights + (1-A) x MODEL's; 1: no blend)\n"
                "training: --epochs N (15)  --lr X (0.0005)  --warmup N (1)  --patience N (6)\n"
                "          --batch N (32)  --seed N (1)  --ema DECAY (0.99)\n"
                "          --valid-snr DB (10; 0: clean only)\n"
                "after:   --retag  re-tag the files the state database (-c/--config, --state)\n"
                "         records as tagged by MODEL, with the new model (a running daemon whose\n"
                "         configured model is OUT does that by itself)\n"
                "other:   --device auto|cpu|cuda  --threads N  --no-cache  -q\n"
                "         --sample-memory MB (1024: the 16-bit samples kept for augmentation;\n"
                "         a large library keeps fewer windows per file)\n");
        return;
    }
    fprintf(f,
            "usage: genred train --data DIR [--train-list F]... [--valid-list F] -o MODEL.safetensors\n"
            "       genred train --labels-from-tags DIR... [--min-per-label N] [--map FILE]\n"
            "                    [--valid-fraction X] -o MODEL.safetensors\n"
            "model:   --arch fcn|seed-cnn (fcn)  --fcn-channels 16,32,64,128  --dropout X\n"
            "training: --epochs N (45)  --lr X (0.002)  --batch N (32)  --seed N (1)\n"
            "          --steps-per-epoch N (files/batch)  --weight-decay X (0.01)\n"
            "          --sgd-momentum M (0: AdamW; > 0: SGD with momentum M, the weight\n"
            "          decay then added to the gradient)\n"
            "          --warmup N (1 epoch)  --lr-min-frac X (0.05, cosine floor)\n"
            "          --patience N (0: off; epochs without a better valid balanced accuracy)\n"
            "          --ema DECAY (0.99; 0: off; the cap of a per-step moving average of the\n"
            "          weights whose decay warms up as (1+step)/(W+step), --ema-warmup W (10),\n"
            "          scored on valid and kept)\n"
            "          --ema-bn N (0: off; batches re-estimating the average's batch norm)\n"
            "augment: --crop MIN-MAX (64-86 frames, fcn)  --eq-db X (6, random spectral tilt)\n"
            "         --time-masks N (2) --time-mask-max F (12)  --freq-masks N (2)\n"
            "         --freq-mask-max B (8)  --mixup ALPHA (0: off)\n"
            "         --label-smoothing X (0)  --no-balance (sample files, not labels)\n"
            "         waveform (default off; see genred finetune --help): --noise-prob P\n"
            "         --snr MIN:MAX --pink-share X --band-prob P --mix-prob P --mix-db MIN:MAX\n"
            "other:   --device auto|cpu|cuda (auto: the GPU when usable)  --threads N (decode\n"
            "         threads)  --no-cache (no mel cache files)  -q\n");
}

enum {
    O_DATA = 256, O_TRAIN_LIST, O_VALID_LIST, O_TAGS, O_MIN_PER, O_MAP, O_VFRAC, O_ARCH,
    O_EPOCHS, O_LR, O_BATCH, O_SEED, O_THREADS, O_SPE, O_WD, O_MOM, O_WARM, O_LRMIN, O_PAT, O_CROP,
    O_EQ, O_TM, O_TMW, O_FM, O_FMW, O_MIX, O_LS, O_NOBAL, O_NOCACHE, O_FCNCH, O_DROP, O_EMA,
    O_EMABN, O_FROM, O_LIST, O_HEAD, O_ALL, O_NOISEP, O_SNR, O_PINK, O_BANDP, O_MIXP, O_MIXDB,
    O_VSNR, O_RETAG, O_CONFIG, O_STATE, O_DISTILL, O_ALT, O_NOALT, O_BLEND, O_DEVICE, O_SAMPLEMEM, O_EMAW, O_HELP
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

/* "MIN:MAX" with lo <= MIN <= MAX <= hi. */
static int parse_range(const char *s, double lo, double hi, float *a, float *b)
{
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end != ':') return -1;
    const char *t = end + 1;
    double y = strtod(t, &end);
    if (end == t || *end || !(x >= lo && x <= y && y <= hi)) return -1;
    *a = (float)x;
    *b = (float)y;
    return 0;
}

/* Re-tags, with the model in new_path, the files the state database says old_id tagged:
 * `genred tag --model new_path -- FILE...`. Returns genred tag's exit status. */
static int retag(const char *config, const char *state_path, const char *old_id,
                 const char *new_path)
{
    int rc;
    char *db = NULL;
    State *st = cli_state_open(config, state_path, false, &db, &rc);
    if (!st) return rc;
    char **paths;
    size_t n;
    ErrMsg e;
    if (state_paths_with_model(st, old_id, &paths, &n, &e) < 0) {
        fprintf(stderr, "genred finetune: %s: %s\n", db, e.msg);
        state_close(st);
        free(db);
        return CLI_FAILED;
    }
    state_close(st);
    printf("retag: %zu files in %s were tagged by model %s\n", n, db, old_id);
    rc = CLI_OK;
    if (n) {
        char **av = xcalloc(n + 10, sizeof(char *));
        int ac = 0;
        av[ac++] = "genred tag";
        av[ac++] = "--model";
        av[ac++] = (char *)new_path;
        if (config) {
            av[ac++] = "--config";
            av[ac++] = (char *)config;
        }
        /* the new results go into the database the files came from */
        av[ac++] = "--state";
        av[ac++] = db;
        av[ac++] = "--";
        for (size_t i = 0; i < n; i++) av[ac++] = paths[i];
        rc = cmd_tag(ac, av);
        free(av);
    }
    free(db);
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
    return rc;
}

static char *join_argv(int argc, char **argv)
{
    size_t n = 16;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 3;
    char *s = xmalloc(n);
    strcpy(s, argv[0]); /* "genred train" */
    for (int i = 1; i < argc; i++) {
        strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

static int train_or_finetune(int argc, char **argv, int finetune)
{
    const char *cmdname = finetune ? "genred finetune" : "genred train";
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
        {"sgd-momentum", required_argument, 0, O_MOM},
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
        {"ema-warmup", required_argument, 0, O_EMAW},
        {"noise-prob", required_argument, 0, O_NOISEP},
        {"snr", required_argument, 0, O_SNR},
        {"pink-share", required_argument, 0, O_PINK},
        {"band-prob", required_argument, 0, O_BANDP},
        {"mix-prob", required_argument, 0, O_MIXP},
        {"mix-db", required_argument, 0, O_MIXDB},
        {"from", required_argument, 0, O_FROM},
        {"list", required_argument, 0, O_LIST},
        {"head-only", no_argument, 0, O_HEAD},
        {"all-layers", no_argument, 0, O_ALL},
        {"valid-snr", required_argument, 0, O_VSNR},
        {"retag", no_argument, 0, O_RETAG},
        {"distill", required_argument, 0, O_DISTILL},
        {"alternate", no_argument, 0, O_ALT},
        {"blend", required_argument, 0, O_BLEND},
        {"device", required_argument, 0, O_DEVICE},
        {"sample-memory", required_argument, 0, O_SAMPLEMEM},
        {"no-alternate", no_argument, 0, O_NOALT},
        {"config", required_argument, 0, 'c'},
        {"state", required_argument, 0, O_STATE},
        {"output", required_argument, 0, 'o'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    TrainOptions o = train_default_options();
    TrainFeatOptions fo = train_feat_default_options();
    TrainTagOptions to = {.min_per_label = 5, .valid_fraction = 0.2, .seed = 1, .threads = 0};
    const char *data = NULL, *valid_list = NULL, *output = NULL;
    enum { MAX_LISTS = 16 };
    const char *train_lists[MAX_LISTS];
    int n_train_lists = 0;
    const char *from = NULL, *config = NULL, *state_path = NULL;
    int from_tags = 0, no_cache = 0, quiet = 0, seed = 1, do_retag = 0, sample_mb = 1024;
    float vfrac = 0.2f, valid_snr = 10.0f;
    /* the waveform augmentation's ranges; finetune switches it on */
    o.aug = (TrainAugment){.mix_db_min = 10, .mix_db_max = 20, .snr_min = 0, .snr_max = 20,
                           .pink_share = 0.5f};
    if (finetune) {
        o.aug.mix_prob = 0.25f;
        o.aug.noise_prob = 0.5f;
        o.aug.band_prob = 0.25f;
        o.aug.alternate = 1;
        o.distill = 0.8f;
        o.blend = 0.6f;
        o.epochs = 15;
        o.lr = 5e-4f;
        o.warmup_epochs = 1;
        o.patience = 6;
        vfrac = 0.15f;
        to.min_per_label = 1;
    }
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:qc:", lo, NULL)) != -1) {
        const char *a = optarg;
        int bad = 0, ft_only = 0;
        switch (c) {
        case O_DATA: data = a; break;
        case O_TRAIN_LIST:
        case O_LIST:
            if (n_train_lists == MAX_LISTS) {
                fprintf(stderr, "%s: at most %d list files\n", cmdname, MAX_LISTS);
                return 2;
            }
            train_lists[n_train_lists++] = a;
            break;
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
        case O_MOM: bad = parse_float(a, 0, 0.999f, &o.momentum); break;
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
        case O_EMAW: bad = parse_int(a, 2, 100000, &o.ema_warmup); break;
        case O_NOISEP: bad = parse_float(a, 0, 1, &o.aug.noise_prob); break;
        case O_SNR: bad = parse_range(a, -30, 100, &o.aug.snr_min, &o.aug.snr_max); break;
        case O_PINK: bad = parse_float(a, 0, 1, &o.aug.pink_share); break;
        case O_BANDP: bad = parse_float(a, 0, 1, &o.aug.band_prob); break;
        case O_MIXP: bad = parse_float(a, 0, 1, &o.aug.mix_prob); break;
        case O_MIXDB: bad = parse_range(a, -30, 100, &o.aug.mix_db_min, &o.aug.mix_db_max); break;
        case O_FROM: from = a; ft_only = 1; break;
        case O_HEAD: o.freeze_conv = 1; ft_only = 1; break;
        case O_ALL: o.freeze_conv = 0; ft_only = 1; break;
        case O_VSNR: ft_only = 1; bad = parse_float(a, -30, 100, &valid_snr); break;
        case O_RETAG: do_retag = 1; ft_only = 1; break;
        case O_ALT: o.aug.alternate = 1; break;
        case O_SAMPLEMEM: bad = parse_int(a, 16, 1 << 20, &sample_mb); break;
        case O_DEVICE:
            if (cli_parse_device(a, &o.device) < 0) return 2;
            break;
        case O_BLEND: ft_only = 1; bad = parse_float(a, 0, 1, &o.blend); break;
        case O_NOALT: o.aug.alternate = 0; break;
        case O_DISTILL: ft_only = 1; bad = parse_float(a, 0, 1, &o.distill); break;
        case 'c': config = a; ft_only = 1; break;
        case O_STATE: state_path = a; ft_only = 1; break;
        case 'o': output = a; break;
        case 'q': quiet = 1; break;
        case O_HELP: usage(stdout, finetune); return 0;
        default: /* getopt said why */
            usage(stderr, finetune);
            return 2;
        }
        if (bad || (ft_only && !finetune)) {
            /* argv[optind - 1] is the value when it came as a separate word: name the option */
            const char *name = cli_option_name(lo, c);
            if (ft_only && !finetune)
                fprintf(stderr, "%s: --%s is for genred finetune only\n", cmdname, name);
            else
                fprintf(stderr, "%s: bad value '%s' for --%s\n", cmdname, a, name);
            return 2;
        }
    }
    o.seed = (uint64_t)seed;
    to.seed = (uint64_t)seed;
    to.valid_fraction = vfrac;
    to.threads = fo.threads;
    if (!output || (!data && !from_tags) || (data && from_tags) ||
        (from_tags && optind >= argc) || (!from_tags && optind < argc)) {
        fprintf(stderr, "%s: need -o MODEL and either --data DIR or --labels-from-tags DIR...\n",
                cmdname);
        usage(stderr, finetune);
        return 2;
    }
    if (finetune && o.aug.noise_prob + o.aug.mix_prob + o.aug.band_prob == 0 && !quiet)
        printf("no waveform augmentation: plain fine-tuning on clean audio\n");
    o.log = quiet ? NULL : stdout;
    fo.short_policy = strcmp(o.arch, "seed-cnn") ? DECODE_SHORT_WHOLE : DECODE_SHORT_PAD;
    char *cache = no_cache ? NULL : train_default_cache_dir();
    fo.cache_dir = cache;
    int aug_on = o.aug.noise_prob > 0 || o.aug.mix_prob > 0 || o.aug.band_prob > 0;

    TrainSet tr = {0}, va = {0};
    ErrMsg e;
    int status = 1;
    TrainFeat *tf = NULL, *vf = NULL, *vnf = NULL;
    NnModel *model = NULL, *init = NULL;
    char *trl = NULL, *val = NULL;
    char from_path[4096] = "";
    if (finetune) {
        if (cli_model_path(from, from_path, sizeof from_path, &e) < 0 ||
            !(init = nn_model_load(from_path, &e))) {
            fprintf(stderr, "%s: %s%s%s\n", cmdname, from_path, from_path[0] ? ": " : "", e.msg);
            goto out;
        }
        const NnInfo *in = nn_model_info(init);
        o.init = init;
        /* the teacher's forward (distillation) runs where the training does */
        if (cli_model_device(init, o.device, 0) < 0) goto out;
        o.arch = in->arch;
        TrainFeatOptions mfo = train_feat_options_for(in);
        mfo.threads = fo.threads;
        mfo.cache_dir = fo.cache_dir;
        mfo.keep_samples = fo.keep_samples;
        fo = mfo;
        if (!quiet)
            printf("fine-tuning %s (%s, id %s, %d labels), %s\n", from_path, in->arch, in->id,
                   in->n_labels, o.freeze_conv ? "dense head only" : "all layers");
    }
    if (from_tags) {
        to.report = quiet ? NULL : stdout;
        TrainTagStats st;
        if (train_sets_from_tags(argv + optind, argc - optind, &to, &tr, &va, &st, &e) < 0) {
            fprintf(stderr, "%s: %s\n", cmdname, e.msg);
            goto out;
        }
    } else {
        /* the lists as absolute paths, joined by " + ", for the model's metadata */
        for (int i = 0; i < n_train_lists; i++) {
            char *rp = realpath(train_lists[i], NULL);
            const char *p = rp ? rp : train_lists[i];
            size_t have = trl ? strlen(trl) : 0;
            trl = xrealloc(trl, have + strlen(p) + 4);
            sprintf(trl + have, "%s%s", i ? " + " : "", p);
            free(rp);
        }
        if (valid_list) val = realpath(valid_list, NULL);
        if (train_set_from_folder(data, train_lists, n_train_lists, &tr, &e) < 0) {
            fprintf(stderr, "%s: %s\n", cmdname, e.msg);
            goto out;
        }
        if (valid_list && train_set_from_folder(data, &valid_list, 1, &va, &e) < 0) {
            fprintf(stderr, "%s: %s\n", cmdname, e.msg);
            goto out;
        }
        TrainSet *sets[2] = {&tr, &va};
        if (!finetune && train_sets_label_folders(sets, valid_list ? 2 : 1, &e) < 0) {
            fprintf(stderr, "%s: %s\n", cmdname, e.msg);
            goto out;
        }
    }
    if (finetune) {
        /* the model's labels: the user's genres are mapped onto them (folded spellings) */
        const NnInfo *in = nn_model_info(init);
        TrainLabels ml = {.n = in->n_labels, .names = in->labels, .display = in->display_names};
        int d1 = 0, d2 = 0;
        if (train_set_label_with(&tr, &ml, &d1, &e) < 0 ||
            (va.items && train_set_label_with(&va, &ml, &d2, &e) < 0)) {
            fprintf(stderr, "%s: %s\n", cmdname, e.msg);
            goto out;
        }
        if (d1 + d2 && !quiet)
            printf("%d files skipped: their genre is not one of the model's labels\n", d1 + d2);
        if (tr.n == 0) {
            fprintf(stderr, "%s: no files with one of the model's labels\n", cmdname);
            goto out;
        }
        if (!va.n && !valid_list && !from_tags && vfrac > 0) {
            train_set_hold_out(&tr, vfrac, (uint64_t)seed, &va);
        }
    }
    if (!quiet)
        printf("train %d files, valid %d files, %d labels; computing mel spectrograms...\n",
               tr.n, va.n, tr.labels.n);
    double t0 = common_now();
    int ftr = 0, fva = 0;
    if (aug_on) {
        /* the waveform augmentation's samples (16-bit) within --sample-memory: all windows of
         * a few hundred songs, fewer per song for a large library */
        double per_window = (double)fo.window_samples * sizeof(int16_t);
        double k = (double)sample_mb * 1048576.0 / (per_window * (tr.n ? tr.n : 1));
        fo.keep_samples = k >= fo.n_windows ? fo.n_windows : k >= 1 ? (int)k : 1;
        if (fo.keep_samples < fo.n_windows && !quiet)
            printf("waveform augmentation on %d of the %d windows of each file (--sample-memory "
                   "%d MB)\n", fo.keep_samples, fo.n_windows, sample_mb);
    }
    TrainFeatOptions vfo = fo, nfo = fo;
    vfo.keep_samples = 0;
    nfo.keep_samples = 0;
    nfo.noise = TRAIN_NOISE_WHITE;
    nfo.noise_snr = valid_snr;
    nfo.noise_seed = (uint64_t)seed;
    int fvn = 0;
    if (train_features_compute(&tr, &fo, &tf, &ftr, &e) < 0 ||
        (va.n && train_features_compute(&va, &vfo, &vf, &fva, &e) < 0) ||
        (va.n && finetune && valid_snr > 0 &&
         train_features_compute(&va, &nfo, &vnf, &fvn, &e) < 0)) {
        fprintf(stderr, "%s: %s\n", cmdname, e.msg);
        goto out;
    }
    o.vf_noisy = vnf;
    if (!quiet)
        printf("features of %d files in %.1f s (%d failed)\n", tr.n + va.n, common_now() - t0,
               ftr + fva);
    if (!va.n && !quiet) printf("no valid set: the last epoch is kept\n");
    if (vnf && !quiet)
        printf("valid also scored with white noise at %g dB SNR; kept: best mean balanced "
               "accuracy of clean and noisy\n", valid_snr);
    if (finetune && va.n && !quiet) {
        /* the starting point on the same held-out files, to compare with the epochs below */
        float *probs = xcalloc((size_t)va.n * tr.labels.n, sizeof(float));
        for (int k = 0; k < (vnf ? 2 : 1); k++) {
            TrainMetrics m;
            int *truth = xmalloc((size_t)va.n * sizeof(int));
            for (int i = 0; i < va.n; i++) truth[i] = va.items[i].label;
            if (train_predict(init, k ? vnf : vf, va.n, probs, &e) == 0) {
                train_metrics(probs, truth, NULL, va.n, tr.labels.n, &m);
                printf("before fine-tuning, valid %s: acc %.3f bal %.3f\n",
                       k ? "with noise" : "clean", m.accuracy, m.balanced);
                train_metrics_free(&m);
            }
            free(truth);
        }
        free(probs);
    }
    TrainResult res;
    if (train_run(&tr, tf, va.n ? &va : NULL, vf, &fo, &o, &model, &res, &e) < 0) {
        fprintf(stderr, "%s: %s\n", cmdname, e.msg);
        goto out;
    }
    char *cmd = join_argv(argc, argv);
    nn_model_set_meta(model, "command", cmd);
    free(cmd);
    if (data) nn_model_set_meta(model, "data", data);
    if (from_tags) nn_model_set_meta(model, "data", "labels from tags");
    if (trl) nn_model_set_meta(model, "train_list", trl);
    if (val) nn_model_set_meta(model, "valid_list", val);
    if (finetune) {
        char fb[4200];
        snprintf(fb, sizeof fb, "%s (%s)", nn_model_info(init)->id, from_path);
        nn_model_set_meta(model, "finetuned_from", fb);
    }
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
        fprintf(stderr, "%s: %s: %s\n", cmdname, output, e.msg);
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
        if (vnf)
            printf("; with noise: accuracy %.3f, balanced %.3f", res.best_noisy_acc,
                   res.best_noisy_bal);
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
    if (do_retag) status = retag(config, state_path, nn_model_info(init)->id, output);
out:
    nn_model_free(model);
    nn_model_free(init);
    train_features_free(tf, tr.n);
    train_features_free(vf, va.n);
    train_features_free(vnf, va.n);
    train_set_free(&tr);
    train_set_free(&va);
    free(trl);
    free(val);
    free(cache);
    return status;
}

int cmd_train(int argc, char **argv) { return train_or_finetune(argc, argv, 0); }

int cmd_finetune(int argc, char **argv) { return train_or_finetune(argc, argv, 1); }
