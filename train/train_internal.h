/* train/train_internal.h: what train.c and augment.c share; not part of the module's face. */
#ifndef GENRED_TRAIN_INTERNAL_H
#define GENRED_TRAIN_INTERNAL_H

#include "rng.h"
#include "train.h"

/* The random choices for one crop, drawn in a fixed order whatever is switched on, so turning
 * one augmentation off does not reshuffle the others. */
typedef struct TrainAugDraw {
    int mix, noise, band;  /* what applies */
    double mix_db, snr_db; /* levels below the crop's own power */
    int noise_kind;        /* enum TrainNoise */
    double hp_hz, lp_hz;   /* band limit corners */
} TrainAugDraw;

void train_augment_draw(Rng *r, const TrainAugment *a, TrainAugDraw *d);
/* Applies d to wave[0..n): other (n samples of a second file, used when d->mix) mixed in, noise
 * drawn from r, then the band limit. scratch: n floats. */
void train_augment_apply(Rng *r, const TrainAugDraw *d, int sample_rate, float *wave, int n,
                         const float *other, float *scratch);

#endif
