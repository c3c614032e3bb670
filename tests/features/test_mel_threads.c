/* test_mel_threads: mel_compute on one shared MelPlan from 4 threads at once, each on its own
 * inputs, must equal the single-threaded results bit for bit.
 *   test_mel_threads IN.f32     (raw float32 audio at 22050 Hz, at least 4 s)
 * Each thread computes windows of different lengths and offsets, several rounds, so the calls
 * overlap in time. */
#include "mel.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_THREADS = 4, PER_THREAD = 3, ROUNDS = 4, N_JOBS = N_THREADS * PER_THREAD };

typedef struct Job {
    const float *x; /* start of the window inside the shared input */
    int n;
    float *want; /* single-threaded result */
} Job;

typedef struct Worker {
    const MelPlan *plan;
    Job *jobs; /* PER_THREAD jobs */
    int mismatches;
} Worker;

static void *worker_main(void *arg)
{
    Worker *w = arg;
    /* a private plan too, so plan creation races with the other threads' computations */
    ErrMsg e = {{0}};
    MelPlan *own = mel_plan_create(22050, 2048, 512, 64, &e);
    if (!own) {
        w->mismatches++;
        return NULL;
    }
    size_t count0 = (size_t)mel_n_mels(own) * mel_frames(own, w->jobs[0].n);
    float *got0 = xmalloc(count0 * sizeof *got0);
    mel_compute(own, w->jobs[0].x, w->jobs[0].n, got0);
    if (memcmp(got0, w->jobs[0].want, count0 * sizeof *got0) != 0) w->mismatches++;
    free(got0);
    mel_plan_free(own);
    for (int r = 0; r < ROUNDS; r++)
        for (int j = 0; j < PER_THREAD; j++) {
            Job *job = &w->jobs[(j + r) % PER_THREAD];
            size_t count = (size_t)mel_n_mels(w->plan) * mel_frames(w->plan, job->n);
            float *got = xmalloc(count * sizeof *got);
            mel_compute(w->plan, job->x, job->n, got);
            if (memcmp(got, job->want, count * sizeof *got) != 0) w->mismatches++;
            free(got);
        }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_mel_threads IN.f32\n");
        return 2;
    }
    ErrMsg e = {{0}};
    uint8_t *data;
    size_t len;
    if (common_read_file(argv[1], &data, &len, &e) < 0) {
        fprintf(stderr, "test_mel_threads: %s: %s\n", argv[1], e.msg);
        return 1;
    }
    int n = (int)(len / sizeof(float));
    if (n < 88200) {
        fprintf(stderr, "test_mel_threads: need at least 88200 samples, got %d\n", n);
        return 1;
    }
    float *x = xmalloc((size_t)n * sizeof *x);
    memcpy(x, data, (size_t)n * sizeof *x);
    free(data);
    MelPlan *p = mel_plan_create(22050, 2048, 512, 64, &e);
    if (!p) {
        fprintf(stderr, "test_mel_threads: %s\n", e.msg);
        return 1;
    }

    Job jobs[N_JOBS];
    for (int i = 0; i < N_JOBS; i++) {
        int w = 88200 - i * 3001; /* different lengths, some not multiples of the hop */
        jobs[i].n = w;
        jobs[i].x = x + (size_t)(n - w) * i / (N_JOBS - 1);
        size_t count = (size_t)mel_n_mels(p) * mel_frames(p, w);
        jobs[i].want = xmalloc(count * sizeof(float));
        mel_compute(p, jobs[i].x, w, jobs[i].want);
    }
    Worker workers[N_THREADS];
    pthread_t tid[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        workers[t] = (Worker){.plan = p, .jobs = jobs + t * PER_THREAD, .mismatches = 0};
        if (pthread_create(&tid[t], NULL, worker_main, &workers[t]) != 0) {
            fprintf(stderr, "test_mel_threads: pthread_create failed\n");
            return 1;
        }
    }
    int bad = 0;
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(tid[t], NULL);
        bad += workers[t].mismatches;
    }
    printf("%d threads x %d rounds x %d windows: %d mismatches\n", N_THREADS, ROUNDS, PER_THREAD,
           bad);
    for (int i = 0; i < N_JOBS; i++) free(jobs[i].want);
    free(x);
    mel_plan_free(p);
    return bad ? 1 : 0;
}
