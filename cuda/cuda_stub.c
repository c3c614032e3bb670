/* cuda_stub: cuda.h for a build without the CUDA toolkit or cuDNN: nothing registers, so
 * nn and features stay on the CPU, and the GPU-only entry points say why.
 * Not the backend (cuda.c, cnn.cu, mel.cu). No state. */
#include <stdlib.h>

#include "cuda.h"

const int cuda_built = 0;

int cuda_backend_init(ErrMsg *e) { return err_set(e, "this genred was built without CUDA"); }

int cuda_probe(char *name, size_t namesz, ErrMsg *e)
{
    if (namesz) name[0] = '\0';
    return err_set(e, "this genred was built without CUDA");
}

int cuda_score_samples(NnModel *m, const MelPlan *p, const float *samples, int n_windows,
                       int n_samples, float *probs, ErrMsg *e)
{
    if (n_windows < 1 || n_samples < 1) return err_set(e, "no windows to score");
    int frames = mel_frames(p, n_samples);
    float *x = xmalloc(sizeof(float) * (size_t)n_windows * mel_n_mels(p) * frames);
    int rc = mel_compute_batch(p, samples, n_windows, n_samples, x, e);
    if (rc == 0) rc = nn_forward(m, x, n_windows, frames, probs, e);
    free(x);
    return rc;
}
