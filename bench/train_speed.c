/* train_speed: genred's side of bench/train_speed.py. Times nn_train_step (AdamW) or nn_forward
 * on random mel windows and prints one line "windows/s N". Not a test: no assertions.
 *   train_speed train|forward ARCH BATCH FRAMES STEPS
 * Threads: OpenBLAS's (OPENBLAS_NUM_THREADS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: train_speed train|forward ARCH BATCH FRAMES STEPS\n");
        return 2;
    }
    int train = strcmp(argv[1], "train") == 0;
    int n = atoi(argv[3]), frames = atoi(argv[4]), steps = atoi(argv[5]);
    const char *labels[] = {"blues", "classical", "country", "disco", "hiphop",
                            "jazz",  "metal",     "pop",     "reggae", "rock"};
    NnArchConfig cfg = {.arch = argv[2], .n_labels = 10, .labels = labels, .dropout = -1};
    ErrMsg e;
    NnModel *m = nn_model_new(&cfg, 1, &e);
    if (!m) {
        fprintf(stderr, "train_speed: %s\n", e.msg);
        return 1;
    }
    float *x = malloc(sizeof(float) * n * 64 * frames), *y = calloc((size_t)n * 10, sizeof(float));
    float *p = malloc(sizeof(float) * n * 10);
    unsigned s = 1;
    for (int i = 0; i < n * 64 * frames; i++) x[i] = -80.0f * (float)(rand_r(&s) % 1000) / 1000.0f;
    for (int i = 0; i < n; i++) y[i * 10 + i % 10] = 1.0f;
    NnOptim o = {.kind = NN_ADAMW, .lr = 1e-4f};
    NnTrainer *t = nn_trainer_new(m, &o, 1, &e);
    float loss;
    double t0 = 0;
    for (int i = 0; i <= steps; i++) {
        if (i == 1) t0 = common_now(); /* the first step allocates: not timed */
        int rc = train ? nn_train_step(t, x, n, frames, y, o.lr, &loss, NULL, &e)
                       : nn_forward(m, x, n, frames, p, &e);
        if (rc < 0) {
            fprintf(stderr, "train_speed: %s\n", e.msg);
            return 1;
        }
    }
    double dt = common_now() - t0;
    printf("windows/s %.1f\n", steps * n / dt);
    nn_trainer_free(t);
    nn_model_free(m);
    free(x);
    free(y);
    free(p);
    return 0;
}
