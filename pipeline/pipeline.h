/* pipeline: decode -> mel -> CNN for a batch of tracks (stub, owned by the CLI work). */
#ifndef GENRED_PIPELINE_H
#define GENRED_PIPELINE_H
#include "common.h"
#endif
