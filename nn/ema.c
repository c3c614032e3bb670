/* ema: exponential moving average of a model's weights (weight averaging for training).
 * Not an optimizer: it only blends two models of the same architecture, in place in avg.
 * Invariants: avg and m have the same tensor table (else nothing changes and an error is
 * logged); the batch-norm running statistics are blended with the same decay as the
 * parameters. Why blend rather than copy them: the copy would pair statistics of the newest
 * weights with averaged weights; the blend tracks the averaged net at the same rate, and a
 * caller who wants exact statistics recomputes them with a pass over training data. */
#include <stdint.h>

#include "common.h"
#include "nn_internal.h"

void nn_model_ema(NnModel *avg, const NnModel *m, float decay)
{
    if (avg->n_params != m->n_params || avg->n_buffers != m->n_buffers ||
        avg->n_tensors != m->n_tensors) {
        log_error("nn: ema between different architectures ignored");
        return;
    }
    const float keep = decay, take = 1.0f - decay;
    for (int64_t i = 0; i < m->n_params; i++)
        avg->params[i] = keep * avg->params[i] + take * m->params[i];
    for (int64_t i = 0; i < m->n_buffers; i++)
        avg->buffers[i] = keep * avg->buffers[i] + take * m->buffers[i];
    avg->dev_stale = 1;
}
