/* train: labelled data sets, mel caching, augmentation, the training loop and evaluation
 * metrics behind `genred train` and `genred eval`.
 * It is not the network (nn/ owns layers, backward and optimizers) and not the inference
 * pipeline; it feeds nn with crops drawn from mel spectrograms computed once per file.
 * Data sets come from a folder (label = the name of each file's parent folder, optional list
 * of relative paths) or from the GENRE tags of a user's library (--labels-from-tags).
 * Ownership: every struct filled here is freed by its *_free function. Not thread-safe per
 * object; train_features_compute runs its own pool of decode threads. */
#ifndef GENRED_TRAIN_H
#define GENRED_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "common.h"
#include "nn.h"

/* ---- Labels ---- */

typedef struct TrainLabels {
    int n;
    char **names;   /* (n) label keys in output order, e.g. "hiphop" */
    char **display; /* (n) display names, e.g. "Hip-Hop" */
} TrainLabels;

/* The ten GTZAN labels and display names in the shipped model's order. */
void train_labels_gtzan(TrainLabels *out);
void train_labels_free(TrainLabels *l);
/* Index of name in l, comparing folded forms (see train_fold_label) against names and display
 * names; -1 when absent. */
int train_labels_find(const TrainLabels *l, const char *name);
/* Folds a genre spelling to a label key: lower case, only ASCII letters and digits kept
 * ("Hip Hop", "hip-hop", "HipHop" -> "hiphop"); non-ASCII bytes are kept as they are.
 * out gets at most n-1 bytes and a NUL. */
void train_fold_label(const char *in, char *out, size_t n);

/* ---- Data sets ---- */

typedef struct TrainItem {
    char *path;  /* file path as opened */
    char *rel;   /* path relative to the data folder (for split figures and metadata) */
    char *group; /* artist group for tag data sets (folded ARTIST, else the parent folder) */
    int label;   /* index into the set's labels, -1 before labelling */
    char *raw;   /* the label as found: folder name or GENRE tag */
} TrainItem;

typedef struct TrainSet {
    TrainLabels labels;
    int n;
    TrainItem *items;
} TrainSet;

void train_set_free(TrainSet *s);

/* Files under dir labelled by their parent folder's name. lists: n_lists files of paths
 * relative to dir, one per line, read in turn (a path in two lists is used once; n_lists 0:
 * every audio file under dir, sorted). Labels are left at -1; call train_set_label_folders
 * to give a set of sets one shared label table. */
int train_set_from_folder(const char *dir, const char *const *lists, int n_lists, TrainSet *out,
                          ErrMsg *e);
/* Gives sets[0..n) one label table built from the folder names of all of them: the GTZAN
 * table (order and display names) when every name is a GTZAN genre, else the sorted folded
 * names with the first spelling seen as display name. */
int train_sets_label_folders(TrainSet **sets, int n, ErrMsg *e);
/* Moves the items whose seeded hash of their relative path falls below frac from s into
 * valid (emptied first; it gets s's labels): a held-out part that does not depend on the order
 * of the files. */
void train_set_hold_out(TrainSet *s, double frac, uint64_t seed, TrainSet *valid);
/* Maps each item's folder name onto an existing table (a model's labels); items whose label
 * the table lacks are dropped and counted in *dropped. */
int train_set_label_with(TrainSet *s, const TrainLabels *l, int *dropped, ErrMsg *e);

typedef struct TrainTagOptions {
    int min_per_label;      /* labels with fewer files are dropped (0: keep all) */
    const char *map_file;   /* lines "from = to" merging labels, NULL: none */
    double valid_fraction;  /* part of the artist groups held out for valid (0.2) */
    uint64_t seed;          /* chooses the held-out artists */
    int threads;            /* tag reading threads */
    FILE *report;           /* label table and counts are printed here (NULL: silent) */
} TrainTagOptions;

typedef struct TrainTagStats {
    int files;         /* audio files found */
    int untagged;      /* no GENRE */
    int genred_tagged; /* GENRED_CONFIDENCE present: never used as labels */
    int unreadable;    /* tag read failed */
    int rare_dropped;  /* files whose label had fewer than min_per_label files */
    int rare_labels;   /* labels dropped for that */
} TrainTagStats;

/* Files under dirs labelled by their GENRE tags (folded; display name = the most common
 * original spelling; --map merges), split by artist group into train and valid. */
int train_sets_from_tags(char *const *dirs, int n_dirs, const TrainTagOptions *o,
                         TrainSet *train, TrainSet *valid, TrainTagStats *st, ErrMsg *e);

/* ---- Mel features, computed once per file ---- */

typedef struct TrainFeatOptions {
    int sample_rate, n_fft, hop, n_mels; /* 22050, 2048, 512, 64 */
    int window_samples;                  /* 88200 */
    int n_windows;                       /* 6 */
    int short_policy;                    /* enum DecodeShortPolicy */
    int threads;                         /* decode/mel threads, 0: all CPUs */
    const char *cache_dir;               /* per-file cache files, NULL: memory only */
    int keep_samples;                    /* also keep the samples (TrainFeat.samples) of at
                                          * most this many windows per file, evenly spread, for
                                          * waveform augmentation while training; 0: none */
    int noise;                           /* enum TrainNoise added to every window before its
                                          * mel (genred eval --noise-snr); -1: none */
    double noise_snr;                    /* dB below each window's own power */
    uint64_t noise_seed;                 /* with the item's relative path and the window index:
                                          * the same noise whatever the thread order */
} TrainFeatOptions;

TrainFeatOptions train_feat_default_options(void);
/* The defaults with the window and mel settings of a model (its rate, window length and count,
 * mel sizes; PAD for a fixed-width net, WHOLE for one with global pooling). */
TrainFeatOptions train_feat_options_for(const NnInfo *info);
/* Cache folder: $XDG_CACHE_HOME/genred/mel-cache (or ~/.cache/...); malloc'd, NULL if no home. */
char *train_default_cache_dir(void);

/* The analysis windows of one file (DESIGN.md §2) as power mel spectrograms. */
typedef struct TrainFeat {
    int n_seg;    /* windows, 0 when the file failed */
    int frames;   /* frames per window */
    int n_mels;
    float *power; /* (n_seg, n_mels, frames) */
    int n_samples;  /* samples per window, with keep_samples (else 0) */
    int n_sample_seg; /* windows with samples: window j * n_seg / n_sample_seg for each j */
    int16_t *samples; /* (n_sample_seg, n_samples), else NULL; 16-bit (half the
                       * memory of float, and its -96 dB steps are far below any noise the
                       * augmentation adds): 2 MB for the six windows of a song */
} TrainFeat;

/* Noise that augmentation and noisy evaluation add to the waveform. */
enum TrainNoise { TRAIN_NOISE_NONE = -1, TRAIN_NOISE_WHITE = 0, TRAIN_NOISE_PINK = 1 };
/* Parses "white" / "pink"; -1 for anything else. */
int train_noise_parse(const char *s);
const char *train_noise_name(int kind);
/* Adds Gaussian noise of the given colour (pink: -3 dB per octave) to x[0..n) with its mean
 * square snr_db below that of x. A silent x is left alone (no SNR is defined). Deterministic
 * for a given seed. */
void train_add_noise(float *x, int n, int kind, double snr_db, uint64_t seed);

/* Computes (or reads from the cache) the features of every item of s; feats gets s->n
 * entries. Files that fail are logged, get n_seg 0, and are counted in *failed. */
int train_features_compute(const TrainSet *s, const TrainFeatOptions *o, TrainFeat **feats,
                           int *failed, ErrMsg *e);
void train_features_free(TrainFeat *f, int n);

/* ---- Evaluation ---- */

typedef struct TrainMetrics {
    int n_labels;
    int n;              /* items scored */
    int *confusion;     /* (n_labels, n_labels): row truth, column prediction */
    double accuracy;
    double balanced;    /* mean recall over labels present in the truth */
    double loss;        /* mean cross-entropy of the mean probabilities */
} TrainMetrics;

/* Scores each item the way inference does: dB of each window with its own max, nn_forward,
 * mean of the softmax outputs. probs (n, n_labels) may be NULL. Items with n_seg 0 are
 * skipped (their probs row is left zero). */
int train_predict(NnModel *m, const TrainFeat *f, int n, float *probs, ErrMsg *e);
/* Metrics from probabilities and true labels; only items with mask[i] != 0 (mask NULL: all)
 * and label >= 0 count. Free with train_metrics_free. */
void train_metrics(const float *probs, const int *truth, const char *mask, int n, int n_labels,
                   TrainMetrics *out);
void train_metrics_free(TrainMetrics *m);
/* Prints accuracy, balanced accuracy, the per-label table (precision, recall, count) and the
 * confusion matrix as an aligned text table. */
void train_metrics_print(FILE *f, const TrainMetrics *m, const TrainLabels *l);

/* The report of genred eval for items of s scored with probs (s->n, labels): figures, per-label
 * table, confusion table, excerpts and clips apart when the relative paths hold those folder
 * names, a picture when confusion_path is set (PNG or SVG), and with json a last line
 * {"accuracy", "balanced_accuracy", "n", "per_genre", and "excerpts"/"clips" when split}. */
int train_report(FILE *f, const TrainSet *s, const float *probs, int json,
                 const char *confusion_path, const char *title, ErrMsg *e);

/* ---- Training ---- */

/* Waveform augmentation: each training crop independently gets each of these with its
 * probability, in this order: a second training file mixed in below it, additive noise, a band
 * limit. A crop that gets none is taken from the cached clean spectrogram. Needs the samples
 * (TrainFeatOptions.keep_samples); all probabilities 0: off. */
typedef struct TrainAugment {
    float mix_prob;
    float mix_db_min, mix_db_max;  /* level of the second file below the first, dB (10-20) */
    float noise_prob;
    float snr_min, snr_max;        /* dB (0-20) */
    float pink_share;              /* of the noisy crops, the share with pink noise (0.5) */
    float band_prob;               /* half of them a phone band (300-3400 Hz), half a cheap
                                    * microphone (high-pass 80-200 Hz, low-pass 2-8 kHz) */
    int alternate;                 /* augment every other batch only, and keep the batch-norm
                                    * running statistics of the clean batches: an augmented
                                    * batch moves them towards noisy input, which costs clean
                                    * accuracy even with no weight change at all */
} TrainAugment;

typedef struct TrainOptions {
    const char *arch;       /* "fcn" or "seed-cnn" */
    int fcn_blocks;         /* 0: nn default (the CLI default is 4 blocks of 16,32,64,128) */
    int fcn_channels[8];
    float dropout;          /* <0: arch default */
    int epochs;
    int steps_per_epoch;    /* 0: ceil(train files / batch) */
    float lr, lr_min_frac;  /* cosine from lr to lr*lr_min_frac after warmup */
    int warmup_epochs;
    int batch;
    uint64_t seed;
    float weight_decay;     /* AdamW: decoupled; SGD: added to the gradient (L2) */
    float momentum;         /* > 0: SGD with this momentum instead of AdamW */
    int crop_min, crop_max; /* fcn crop width in frames (all crops of a batch share one) */
    float eq_db;            /* random per-band gain (a smooth tilt), +- dB */
    int time_masks, time_mask_max;
    int freq_masks, freq_mask_max;
    float mixup_alpha;      /* 0: off */
    float label_smoothing;
    int balanced;           /* draw label uniformly, then a file, then a window */
    int patience;           /* epochs without a better valid balanced accuracy, 0: off */
    float ema;              /* cap of the per-step decay of an exponential moving average of
                             * the weights, whose decay warms up as (1+step)/(10+step) (so a
                             * cap above 0.98 matters only after ~500 steps); 0: off. Valid
                             * scores, and the kept model is, the average */
    int ema_warmup;         /* the decay's warm-up (1+step)/(ema_warmup+step): 10; smaller
                             * reaches the cap sooner (2: 0.99 after 98 steps) */
    int ema_bn;             /* with ema: batches of clean training crops that re-estimate the
                             * averaged net's batch-norm statistics before each valid (0: off) */
    TrainAugment aug;       /* waveform augmentation (default off) */
    NnModel *init;          /* fine-tuning: start from a copy of this model (its arch, labels
                             * and crop limits; the set must be labelled with its labels);
                             * NULL: a new model from arch */
    int freeze_conv;        /* train only the dense head (fine-tuning on a CPU) */
    float blend;            /* with init, in (0, 1): what is scored and kept is
                             * blend * trained + (1 - blend) * init, weights and batch-norm
                             * statistics (weight-space ensembling, "WiSE-FT": keeps most of
                             * the robustness gained and most of the clean accuracy the
                             * starting model had); 0 or 1: the trained weights */
    float distill;          /* with init: the share of each target that is init's prediction
                             * on the clean version of the same crop (learning without
                             * forgetting: noisy crops learn to say what the model said on
                             * clean ones, clean crops keep saying it); 0: labels only */
    const TrainFeat *vf_noisy; /* the valid items again with noise added (NULL: none); the
                             * epoch kept is then the best mean of clean and noisy balanced
                             * accuracy, so robustness is not bought with clean accuracy */
    int device;             /* enum NnDevice for the trained model's forward + backward:
                             * AUTO (default: the GPU when usable), CPU, CUDA (an error
                             * when no GPU is usable); the optimizer steps on the host */
    FILE *log;              /* per-epoch lines (NULL: silent) */
} TrainOptions;

TrainOptions train_default_options(void);

typedef struct TrainResult {
    int best_epoch;         /* 1-based, 0: no valid set (the last epoch is kept) */
    int epochs_run;
    double best_valid_acc, best_valid_bal, last_valid_bal, mean_last_valid_bal;
    double best_noisy_acc, best_noisy_bal; /* with vf_noisy: at the kept epoch, else -1 */
    /* with ema: the same figures of the raw (not averaged) weights of the same run, -1 without */
    int raw_best_epoch;
    double raw_best_valid_bal, raw_mean_last_valid_bal;
    double seconds;
} TrainResult;

/* Trains a new model on train (features tf) and keeps the best weights on valid (vf, may be
 * NULL with n_valid 0). *out gets the model (caller frees). */
int train_run(const TrainSet *train, const TrainFeat *tf, const TrainSet *valid,
              const TrainFeat *vf, const TrainFeatOptions *fo, const TrainOptions *o,
              NnModel **out, TrainResult *res, ErrMsg *e);

#endif
