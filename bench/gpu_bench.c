/* gpu_bench: the GPU backend's throughput beside the CPU's in the same run, for
 * bench/gpu_bench.sh. For batches of 1, 16, 64 and 256 tracks (6 windows each) it prints
 *   cnn   windows/s of nn_forward alone (mel dB input already in memory)
 *   mel+cnn tracks/s from decoded audio (mel_compute_batch + nn_forward on the CPU;
 *         cuda_score_samples on the GPU, windows staying on the device)
 * Timing only: nothing is asserted. Exits 77 printing "no GPU: skipped" without a GPU.
 * usage: gpu_bench MODEL [SECONDS_PER_POINT] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"

static double rate(NnModel *m, const MelPlan *p, const float *x, const float *audio, int n,
                   int frames, int ns, double budget, int what)
{
    int L = nn_model_info(m)->n_labels;
    float *probs = malloc(sizeof(float) * L * n);
    ErrMsg e = {{0}};
    int iters = 0;
    double t0 = common_now(), t = 0.0;
    do {
        int rc = what == 0 ? nn_forward(m, x, n, frames, probs, &e)
                           : cuda_score_samples(m, p, audio, n, ns, probs, &e);
        if (rc) {
            fprintf(stderr, "gpu_bench: %s\n", e.msg);
            exit(1);
        }
        iters++;
        t = common_now() - t0;
    } while (t < budget);
    free(probs);
    return iters * (double)n / t;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gpu_bench MODEL [SECONDS_PER_POINT]\n");
        return 2;
    }
    double budget = argc > 2 ? atof(argv[2]) : 2.0;
    ErrMsg e = {{0}};
    char name[128];
    if (cuda_backend_init(&e) != 0 || cuda_probe(name, sizeof name, &e) != 0) {
        printf("no GPU: skipped (%s)\n", e.msg);
        return 77;
    }
    NnModel *cm = nn_model_load(argv[1], &e), *gm = cm ? nn_model_load(argv[1], &e) : NULL;
    if (!gm || nn_model_set_device(gm, NN_DEVICE_CUDA, &e) != NN_DEVICE_CUDA) {
        fprintf(stderr, "gpu_bench: %s\n", e.msg);
        return 1;
    }
    const NnInfo *in = nn_model_info(cm);
    MelPlan *cp = mel_plan_create(in->sample_rate, in->n_fft, in->hop_length, in->n_mels, &e);
    MelPlan *gp = mel_plan_create(in->sample_rate, in->n_fft, in->hop_length, in->n_mels, &e);
    if (!gp || mel_plan_set_device(gp, NN_DEVICE_CUDA, &e) != NN_DEVICE_CUDA) {
        fprintf(stderr, "gpu_bench: mel: %s\n", e.msg);
        return 1;
    }
    int ns = in->window_samples, frames = mel_frames(cp, ns), max_n = 256 * in->windows;
    size_t plane = (size_t)in->n_mels * frames;
    float *audio = malloc(sizeof(float) * (size_t)max_n * ns);
    float *x = malloc(sizeof(float) * max_n * plane);
    uint32_t s = 1;
    for (size_t i = 0; i < (size_t)max_n * ns; i++) { /* noise: costs what music costs */
        s = s * 1664525u + 1013904223u;
        audio[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
    }
    mel_compute_batch(gp, audio, max_n < 64 ? max_n : 64, ns, x, &e);
    for (int k = 64; k < max_n; k++) memcpy(x + k * plane, x + (k % 64) * plane, 4 * plane);
    printf("device: %s; model %s (%s); %.1f s per point\n", name, in->id, in->arch, budget);
    printf("%-6s %14s %14s %8s %16s %16s %8s\n", "tracks", "cnn cpu win/s", "cnn gpu win/s",
           "ratio", "mel+cnn cpu tr/s", "mel+cnn gpu tr/s", "ratio");
    int batches[] = {1, 16, 64, 256};
    for (int b = 0; b < 4; b++) {
        int n = batches[b] * in->windows;
        double c1 = rate(cm, cp, x, audio, n, frames, ns, budget, 0);
        double g1 = rate(gm, gp, x, audio, n, frames, ns, budget, 0);
        double c2 = rate(cm, cp, x, audio, n, frames, ns, budget, 1) / in->windows;
        double g2 = rate(gm, gp, x, audio, n, frames, ns, budget, 1) / in->windows;
        printf("%-6d %14.0f %14.0f %8.1f %16.1f %16.1f %8.1f\n", batches[b], c1, g1, g1 / c1, c2,
               g2, g2 / c2);
        fflush(stdout);
    }
    if (nn_model_device(gm) != NN_DEVICE_CUDA) printf("warning: the GPU model fell back to the CPU\n");
    nn_model_free(cm);
    nn_model_free(gm);
    mel_plan_free(cp);
    mel_plan_free(gp);
    free(audio);
    free(x);
    return 0;
}
