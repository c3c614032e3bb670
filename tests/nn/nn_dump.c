/* nn_dump: runs genred's nn on inputs from raw float32 files and writes the results raw, for
 * tests/nn/twin.py to compare against PyTorch. Test tool only, not installed.
 *   nn_dump forward MODEL X.f32 N FRAMES OUT.f32      -> probs (N, L)
 *   nn_dump grads MODEL X.f32 T.f32 N FRAMES OUT.f32 AFTER.safetensors
 *       -> logits (N, L), loss, then every parameter gradient in the order printed on stdout
 *          (one name per line); AFTER gets the model with its updated running statistics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

static float *read_f32(const char *path, size_t want)
{
    uint8_t *d;
    size_t len;
    ErrMsg e;
    if (common_read_file(path, &d, &len, &e) < 0 || len != want * 4) {
        fprintf(stderr, "nn_dump: %s: bad input file\n", path);
        exit(2);
    }
    return (float *)d;
}

static void put(FILE *f, const float *v, size_t n)
{
    if (fwrite(v, 4, n, f) != n) {
        fprintf(stderr, "nn_dump: write failed\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    ErrMsg e;
    if (argc < 7) {
        fprintf(stderr, "usage: see the comment at the top of nn_dump.c\n");
        return 2;
    }
    int grads = strcmp(argv[1], "grads") == 0;
    if (grads && argc != 9) return 2;
    NnModel *m = nn_model_load(argv[2], &e);
    if (!m) {
        fprintf(stderr, "nn_dump: %s: %s\n", argv[2], e.msg);
        return 1;
    }
    const NnInfo *in = nn_model_info(m);
    int n = atoi(argv[grads ? 5 : 4]), frames = atoi(argv[grads ? 6 : 5]), L = in->n_labels;
    float *x = read_f32(argv[3], (size_t)n * in->n_mels * frames);
    FILE *out = fopen(argv[grads ? 7 : 6], "wb");
    if (!out) return 2;
    if (!grads) {
        float *p = malloc(sizeof(float) * n * L);
        if (nn_forward(m, x, n, frames, p, &e) < 0) {
            fprintf(stderr, "nn_dump: forward: %s\n", e.msg);
            return 1;
        }
        put(out, p, (size_t)n * L);
        free(p);
    } else {
        float *t = read_f32(argv[4], (size_t)n * L);
        NnOptim o = {.kind = NN_ADAMW, .lr = 1e-3f};
        NnTrainer *tr = nn_trainer_new(m, &o, 1, &e);
        float loss, *logits = malloc(sizeof(float) * n * L);
        if (!tr || nn_train_grads(tr, x, n, frames, t, 0, &loss, logits, &e) < 0) {
            fprintf(stderr, "nn_dump: grads: %s\n", e.msg);
            return 1;
        }
        put(out, logits, (size_t)n * L);
        put(out, &loss, 1);
        const char **names;
        int np = nn_model_param_names(m, &names);
        for (int i = 0; i < np; i++) {
            int64_t cnt;
            const float *g = nn_trainer_grad(tr, names[i], &cnt);
            put(out, g, (size_t)cnt);
            printf("%s\n", names[i]);
        }
        if (nn_model_save(m, argv[8], &e) < 0) {
            fprintf(stderr, "nn_dump: save: %s\n", e.msg);
            return 1;
        }
        nn_trainer_free(tr);
        free(logits);
        free(t);
    }
    fclose(out);
    free(x);
    nn_model_free(m);
    return 0;
}
