/* pipeline_check: test program for pipeline_classify. Given a model and audio files, it runs
 * the pipeline several ways (ordered/unordered delivery, 1 and 3 workers, batch 1 and 4, mel per
 * worker or per batch as on a GPU) and
 * checks that every way delivers each track exactly once, in input order when asked, with the
 * same probabilities (batching must not change a track's result), that probabilities sum to 1,
 * that confidence/top match probs, that failures carry a reason, and that a callback's stop
 * request ends the run early. The same files read into memory go through
 * pipeline_classify_buffers with keep_mel: same results, named by the buffer's name, with the
 * mel windows pipeline_mel gives for the path. Prints one line per track. Exit 0 ok, 1 mismatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

typedef struct Run {
    int n, n_labels;
    int *seen;      /* (n) deliveries per track */
    int *order;     /* (n) index delivered at position i */
    int got;
    int *ok;        /* (n) */
    float *probs;   /* (n, n_labels) */
    int stop_after; /* 0: never */
    int bad;
    const NnInfo *info;
    char **paths;   /* buffers run: the files the buffers were read from */
    int check_mel;  /* buffers run: r->mel must equal pipeline_mel of the path */
} Run;

static void check_mel(Run *u, const PipelineResult *r)
{
    PipelineSettings s = pipeline_settings_from_model(u->info);
    float *db = NULL;
    int nw = 0, nm = 0, fr = 0;
    ErrMsg e = {{0}};
    if (pipeline_mel(u->paths[r->index], &s, &db, &nw, &nm, &fr, &e) != 0) {
        fprintf(stderr, "%s: pipeline_mel: %s\n", r->path, e.msg);
        u->bad = 1;
        return;
    }
    /* pipeline_mel does not pad a short whole-track window to min_frames; compare the part
     * both have. */
    if (!r->mel || r->n_mels != nm || nm != u->info->n_mels || nw != r->n_windows ||
        r->mel_frames < fr) {
        fprintf(stderr, "%s: kept mel %p %d x %d, pipeline_mel %d x %d x %d\n", r->path,
                (const void *)r->mel, r->n_mels, r->mel_frames, nw, nm, fr);
        u->bad = 1;
    } else {
        for (int w = 0; w < nw; w++)
            for (int b = 0; b < nm; b++)
                for (int t = 0; t < fr; t++) {
                    float a = r->mel[((size_t)w * nm + b) * r->mel_frames + t];
                    float c = db[((size_t)w * nm + b) * fr + t];
                    if (fr == r->mel_frames && fabsf(a - c) > 1e-4f) {
                        fprintf(stderr, "%s: mel differs at %d,%d,%d: %f vs %f\n", r->path, w,
                                b, t, a, c);
                        u->bad = 1;
                        free(db);
                        return;
                    }
                }
    }
    free(db);
}

static int cb(const PipelineResult *r, void *user)
{
    Run *u = user;
    if (r->index < 0 || r->index >= u->n) {
        fprintf(stderr, "bad index %d\n", r->index);
        u->bad = 1;
        return 1;
    }
    u->seen[r->index]++;
    if (u->check_mel && r->ok) check_mel(u, r);
    if (u->check_mel && strncmp(r->path, "upload:", 7) != 0) {
        fprintf(stderr, "buffer result named %s\n", r->path);
        u->bad = 1;
    }
    u->order[u->got++] = r->index;
    u->ok[r->index] = r->ok;
    if (!r->ok) {
        if (!r->err.msg[0]) {
            fprintf(stderr, "%s: failure without a reason\n", r->path);
            u->bad = 1;
        }
    } else {
        double sum = 0;
        int top = 0;
        for (int k = 0; k < r->n_labels; k++) {
            sum += r->probs[k];
            if (r->probs[k] > r->probs[top]) top = k;
        }
        if (fabs(sum - 1) > 1e-4 || top != r->top || r->confidence != r->probs[top] ||
            r->n_windows < 1) {
            fprintf(stderr, "%s: inconsistent result (sum %f top %d/%d)\n", r->path, sum, top,
                    r->top);
            u->bad = 1;
        }
        for (int w = 0; w < r->n_windows; w++) {
            double ws = 0;
            for (int k = 0; k < r->n_labels; k++) ws += r->window_probs[w * r->n_labels + k];
            if (fabs(ws - 1) > 1e-4) {
                fprintf(stderr, "%s: window %d sums to %f\n", r->path, w, ws);
                u->bad = 1;
            }
        }
        memcpy(u->probs + (size_t)r->index * (size_t)u->n_labels, r->probs,
               (size_t)u->n_labels * sizeof(float));
    }
    return u->stop_after && u->got >= u->stop_after;
}

static int run(NnModel *m, char **paths, int n, int jobs, int batch, int ordered, int batch_mel,
               int stop_after, Run *u)
{
    memset(u->seen, 0, (size_t)n * sizeof(int));
    u->got = 0;
    u->stop_after = stop_after;
    PipelineOptions o = {.jobs = jobs, .batch = batch, .ordered = ordered, .batch_mel = batch_mel};
    ErrMsg e = {{0}};
    int rc = pipeline_classify(m, (const char *const *)paths, n, &o, cb, u, &e);
    if (rc < 0) fprintf(stderr, "pipeline: %s\n", e.msg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: pipeline_check MODEL FILE...\n");
        return 2;
    }
    ErrMsg e = {{0}};
    NnModel *m = nn_model_load(argv[1], &e);
    if (!m) {
        fprintf(stderr, "%s: %s\n", argv[1], e.msg);
        return 1;
    }
    int n = argc - 2, L = nn_model_info(m)->n_labels;
    char **paths = argv + 2;
    Run u = {.n = n, .n_labels = L};
    u.seen = calloc((size_t)n, sizeof(int));
    u.order = calloc((size_t)n, sizeof(int));
    u.ok = calloc((size_t)n, sizeof(int));
    u.probs = calloc((size_t)n * (size_t)L, sizeof(float));
    float *ref = calloc((size_t)n * (size_t)L, sizeof(float));
    int *ref_ok = calloc((size_t)n, sizeof(int));
    int fail = 0;

    /* jobs, batch, ordered, batch_mel (1: the calling thread computes each batch's mel with
     * mel_compute_batch, as it does on a GPU; -1: every worker its own track's) */
    static const int cfg[][4] = {{1, 1, 1, -1}, {3, 4, 1, -1}, {3, 4, 0, 1}, {2, 16, 0, -1},
                                 {1, 3, 1, 1},  {2, 16, 1, 1}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        int jobs = cfg[c][0], batch = cfg[c][1], ordered = cfg[c][2], batch_mel = cfg[c][3];
        if (run(m, paths, n, jobs, batch, ordered, batch_mel, 0, &u) != 0) fail = 1;
        for (int i = 0; i < n; i++) {
            if (u.seen[i] != 1) {
                fprintf(stderr, "jobs %d batch %d: track %d delivered %d times\n", jobs, batch, i,
                        u.seen[i]);
                fail = 1;
            }
            if (ordered && u.order[i] != i) {
                fprintf(stderr, "jobs %d batch %d: position %d got track %d\n", jobs, batch, i,
                        u.order[i]);
                fail = 1;
            }
        }
        if (c == 0) {
            memcpy(ref, u.probs, (size_t)n * (size_t)L * sizeof(float));
            memcpy(ref_ok, u.ok, (size_t)n * sizeof(int));
            for (int i = 0; i < n; i++) {
                printf("%s\t%s", paths[i], ref_ok[i] ? "ok" : "failed");
                for (int k = 0; ref_ok[i] && k < L; k++) printf(" %.4f", ref[i * L + k]);
                printf("\n");
            }
            continue;
        }
        for (int i = 0; i < n; i++) {
            if (u.ok[i] != ref_ok[i]) {
                fprintf(stderr, "jobs %d batch %d: track %d ok %d, first run %d\n", jobs, batch, i,
                        u.ok[i], ref_ok[i]);
                fail = 1;
            }
            for (int k = 0; u.ok[i] && k < L; k++)
                if (fabsf(u.probs[i * L + k] - ref[i * L + k]) > 1e-5f) {
                    fprintf(stderr, "jobs %d batch %d: track %d label %d: %f vs %f\n", jobs,
                            batch, i, k, u.probs[i * L + k], ref[i * L + k]);
                    fail = 1;
                    break;
                }
        }
    }
    if (n >= 3) {
        int rc = run(m, paths, n, 2, 1, 1, 0, 2, &u);
        if (rc != 1 || u.got != 2) {
            fprintf(stderr, "stop request: rc %d after %d deliveries (want 1 after 2)\n", rc, u.got);
            fail = 1;
        }
    }
    /* From memory, as uploads are: the same results, the buffers' names, the mel kept. */
    {
        PipelineBuffer *bufs = calloc((size_t)n, sizeof *bufs);
        char **names = calloc((size_t)n, sizeof *names);
        for (int i = 0; i < n; i++) {
            FILE *f = fopen(paths[i], "rb");
            size_t cap = 1 << 16, len = 0, got;
            unsigned char *data = malloc(cap);
            while (f && (got = fread(data + len, 1, cap - len, f)) > 0)
                if ((len += got) == cap) data = realloc(data, cap *= 2);
            if (f) fclose(f);
            bufs[i] = (PipelineBuffer){.data = data, .len = len};
            names[i] = malloc(32);
            snprintf(names[i], 32, "upload:%d", i);
            bufs[i].name = names[i];
        }
        memset(u.seen, 0, (size_t)n * sizeof(int));
        u.got = 0;
        u.stop_after = 0;
        u.info = nn_model_info(m);
        u.paths = paths;
        u.check_mel = 1;
        PipelineOptions o = {.jobs = 2, .batch = 2, .ordered = 1, .keep_mel = 1};
        if (pipeline_classify_buffers(m, bufs, n, &o, cb, &u, &e) != 0) fail = 1;
        for (int i = 0; i < n; i++) {
            if (u.seen[i] != 1 || u.order[i] != i || u.ok[i] != ref_ok[i]) {
                fprintf(stderr, "buffers: track %d seen %d ok %d\n", i, u.seen[i], u.ok[i]);
                fail = 1;
            }
            for (int k = 0; u.ok[i] && k < L; k++)
                if (fabsf(u.probs[i * L + k] - ref[i * L + k]) > 1e-5f) {
                    fprintf(stderr, "buffers: track %d label %d: %f vs %f\n", i, k,
                            u.probs[i * L + k], ref[i * L + k]);
                    fail = 1;
                    break;
                }
            free((void *)bufs[i].data);
            free(names[i]);
        }
        free(bufs);
        free(names);
    }
    fail |= u.bad;
    printf("pipeline_check: %s\n", fail ? "FAILED" : "ok");
    nn_model_free(m);
    free(u.seen);
    free(u.order);
    free(u.ok);
    free(u.probs);
    free(ref);
    free(ref_ok);
    return fail;
}
