/* genred eval: scores a labelled folder (label = parent folder name, optional list of relative
 * paths) with a model exactly as inference does (six 4 s windows or the whole short track,
 * mean of softmax) and prints accuracy, balanced accuracy, per-label precision/recall/count,
 * the confusion matrix, and with --json a last line of the same figures. With --noise-snr each
 * window gets white or pink noise at that SNR before its mel spectrogram (seeded: the same
 * noise on every run), to measure how a model holds up on noisy recordings.
 * Only argument parsing and model lookup live here; the work is in train/. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "commands.h"
#include "nn.h"
#include "train.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: genred eval --data DIR [--list F] [--model M] [--json]\n"
               "                   [--confusion OUT.png|OUT.svg] [--threads N] [--no-cache]\n"
               "                   [--noise-snr DB [--noise white|pink] [--noise-seed N]]\n"
               "--noise-snr adds noise (default white) to every analysis window at DB below\n"
               "the window's own power before scoring; the noise is the same on every run.\n"
               "The model is --model, else $GENRED_MODEL, else the installed genred.safetensors,\n"
               "else the source tree's models/genred.safetensors.\n");
}

int cmd_eval(int argc, char **argv)
{
    enum { O_DATA = 256, O_LIST, O_MODEL, O_JSON, O_CONF, O_THREADS, O_NOCACHE, O_SNR, O_NOISE,
           O_NSEED, O_HELP };
    static const struct option lo[] = {{"data", required_argument, 0, O_DATA},
                                       {"list", required_argument, 0, O_LIST},
                                       {"model", required_argument, 0, O_MODEL},
                                       {"json", no_argument, 0, O_JSON},
                                       {"confusion", required_argument, 0, O_CONF},
                                       {"threads", required_argument, 0, O_THREADS},
                                       {"no-cache", no_argument, 0, O_NOCACHE},
                                       {"noise-snr", required_argument, 0, O_SNR},
                                       {"noise", required_argument, 0, O_NOISE},
                                       {"noise-seed", required_argument, 0, O_NSEED},
                                       {"help", no_argument, 0, O_HELP},
                                       {0, 0, 0, 0}};
    const char *data = NULL, *list = NULL, *model_flag = NULL, *confusion = NULL;
    int json = 0, threads = 0, no_cache = 0, noise = TRAIN_NOISE_WHITE, have_snr = 0;
    int noise_seed = 1;
    double snr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_DATA: data = optarg; break;
        case O_LIST: list = optarg; break;
        case O_MODEL: model_flag = optarg; break;
        case O_JSON: json = 1; break;
        case O_CONF: confusion = optarg; break;
        case O_THREADS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 64) {
                fprintf(stderr, "genred eval: bad value '%s' for --threads\n", optarg);
                return 2;
            }
            threads = (int)v;
            break;
        }
        case O_NOCACHE: no_cache = 1; break;
        case O_SNR: {
            char *end;
            snr = strtod(optarg, &end);
            if (end == optarg || *end || !(snr >= -60 && snr <= 120)) {
                fprintf(stderr, "genred eval: bad value '%s' for --noise-snr (dB)\n", optarg);
                return 2;
            }
            have_snr = 1;
            break;
        }
        case O_NOISE:
            if ((noise = train_noise_parse(optarg)) < 0) {
                fprintf(stderr, "genred eval: bad value '%s' for --noise (white or pink)\n",
                        optarg);
                return 2;
            }
            break;
        case O_NSEED:
            if (cli_parse_int("--noise-seed", optarg, 0, 2147483647, &noise_seed) < 0) return 2;
            break;
        case O_HELP: usage(stdout); return 0;
        default: /* getopt said why */
            usage(stderr);
            return 2;
        }
    }
    if (!data || optind < argc) {
        fprintf(stderr, "genred eval: need --data DIR\n");
        usage(stderr);
        return 2;
    }
    char mpath[4096];
    ErrMsg e;
    if (cli_model_path(model_flag, mpath, sizeof mpath, &e) < 0) {
        fprintf(stderr, "genred eval: %s\n", e.msg);
        return 1;
    }
    NnModel *m = nn_model_load(mpath, &e);
    if (!m) {
        fprintf(stderr, "genred eval: %s: %s\n", mpath, e.msg);
        return 1;
    }
    const NnInfo *info = nn_model_info(m);
    TrainLabels labels = {.n = info->n_labels, .names = info->labels,
                          .display = info->display_names};
    TrainSet s = {0};
    TrainFeat *f = NULL;
    float *probs = NULL;
    char *cache = NULL;
    int status = 1, dropped = 0, failed = 0;
    if (train_set_from_folder(data, &list, list ? 1 : 0, &s, &e) < 0 ||
        train_set_label_with(&s, &labels, &dropped, &e) < 0) {
        fprintf(stderr, "genred eval: %s\n", e.msg);
        goto out;
    }
    TrainFeatOptions fo = train_feat_options_for(info);
    fo.threads = threads;
    cache = no_cache ? NULL : train_default_cache_dir();
    fo.cache_dir = cache;
    if (have_snr) {
        fo.noise = noise;
        fo.noise_snr = snr;
        fo.noise_seed = (uint64_t)noise_seed;
    }
    if (train_features_compute(&s, &fo, &f, &failed, &e) < 0) {
        fprintf(stderr, "genred eval: %s\n", e.msg);
        goto out;
    }
    probs = xcalloc((size_t)(s.n ? s.n : 1) * info->n_labels, sizeof(float));
    if (train_predict(m, f, s.n, probs, &e) < 0) {
        fprintf(stderr, "genred eval: %s\n", e.msg);
        goto out;
    }
    printf("model %s (%s, id %s)\n", mpath, info->arch, info->id);
    if (have_snr)
        printf("%s noise at %g dB SNR added to every window (seed %d)\n",
               train_noise_name(noise), snr, noise_seed);
    if (dropped || failed)
        printf("%d files with labels the model lacks skipped, %d files failed to decode\n",
               dropped, failed);
    char title[256];
    snprintf(title, sizeof title, "genred %s on %s", info->id, list ? list : data);
    if (have_snr)
        snprintf(title + strlen(title), sizeof title - strlen(title), ", %s noise %g dB SNR",
                 train_noise_name(noise), snr);
    if (train_report(stdout, &s, probs, json, confusion, title, &e) < 0) {
        fprintf(stderr, "genred eval: %s\n", e.msg);
        goto out;
    }
    status = failed ? 1 : 0;
out:
    free(probs);
    train_features_free(f, s.n);
    train_set_free(&s);
    free(cache);
    nn_model_free(m);
    return status;
}
