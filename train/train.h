/* train: labelled data sets, mel caching, augmentation, training loops and evaluation
 * (stub: owned by the training work). */
#ifndef GENRED_TRAIN_H
#define GENRED_TRAIN_H
#include "common.h"
#endif
