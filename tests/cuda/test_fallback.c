/* test_fallback: nn_forward's and mel_compute_batch's device dispatch, with a fake backend
 * registered in place of the GPU, so it runs on any machine: out-of-memory halves the batch
 * and the stitched result equals the CPU's; any other failure falls back to the CPU with one
 * log line and the device is not used again; changed weights are uploaded again; a failing
 * probe makes `cuda` an error and `auto` the CPU. The fake computes with the CPU code, so
 * a mismatch means the dispatch put windows in the wrong place. Exits non-zero on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mel_backend.h"
#include "nn_backend.h"

static int failures;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stdout, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stdout, __VA_ARGS__);                                                          \
            fputc('\n', stdout);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- the fake nn backend: OOM above max_n, a hard error when broken, else the CPU */
static int probe_ok = 1, max_n = 2, broken, calls, uploads, creates, frees;
static int sizes_seen[64], n_seen;

static int f_probe(char *desc, size_t sz, ErrMsg *e)
{
    if (!probe_ok) return err_set(e, "fake: no device");
    snprintf(desc, sz, "fake gpu");
    return 0;
}
static void *f_create(const NnModel *m, ErrMsg *e)
{
    (void)e;
    creates++;
    return (void *)m;
}
static int f_upload(void *net, const NnModel *m, ErrMsg *e)
{
    (void)net, (void)m, (void)e;
    uploads++;
    return 0;
}
static int f_forward(void *net, float *probs, const float *x, int n, int frames, ErrMsg *e)
{
    calls++;
    if (n_seen < 64) sizes_seen[n_seen++] = n;
    if (broken) return err_set(e, "fake: device lost");
    if (n > max_n) return NN_BACKEND_EOOM;
    return nn_cpu_forward(net, x, n, frames, probs, e);
}
static void f_free(void *net)
{
    (void)net;
    frees++;
}
static int train_calls, train_masks;
static int f_train(void *net, NnModel *m, float *grads, float *loss, float *logits,
                   const float *x, const float *targets, const float *const *masks, int n,
                   int frames, int head_only, ErrMsg *e)
{
    (void)net, (void)grads, (void)loss, (void)logits, (void)x, (void)targets, (void)n;
    (void)frames, (void)head_only;
    train_calls++;
    for (int i = 0; i < m->n_dense; i++) train_masks += masks[i] != NULL;
    return err_set(e, "fake: training lost");
}
static const NnBackend fake = {.name = "fake",
                               .probe = f_probe,
                               .net_create = f_create,
                               .net_upload = f_upload,
                               .forward = f_forward,
                               .net_free = f_free,
                               .train_grads = f_train};

/* ---- the fake mel backend */
static int mel_broken, mel_calls;
static void *fm_create(const MelPlan *p, ErrMsg *e)
{
    (void)e;
    return (void *)p;
}
static int fm_batch(void *dp, float *out, const float *x, int nw, int ns, ErrMsg *e)
{
    mel_calls++;
    if (mel_broken) return err_set(e, "fake: mel lost");
    if (nw > 2) return MEL_BACKEND_EOOM;
    const MelPlan *p = dp;
    size_t per = (size_t)mel_n_mels(p) * mel_frames(p, ns);
    for (int i = 0; i < nw; i++) mel_compute(p, x + (size_t)i * ns, ns, out + i * per);
    return 0;
}
static void fm_free(void *dp) { (void)dp; }
static const MelBackend fake_mel = {"fake", fm_create, fm_batch, fm_free};

static float maxdiff(const float *a, const float *b, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

/* stderr goes to a file while f runs, so the log lines can be counted */
static int count_in_stderr(const char *needle, void (*f)(void *), void *arg)
{
    char path[] = "/tmp/genred-fallback-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    f(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[8192] = {0};
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    int n = 0;
    for (char *p = buf; got > 0 && (p = strstr(p, needle)); p++) n++;
    fputs(buf, stderr); /* keep it visible in the test log */
    return n;
}

typedef struct Run {
    NnModel *m;
    const float *x;
    int n, frames;
    float *probs;
    int rc;
} Run;
static void run_twice(void *arg)
{
    Run *r = arg;
    ErrMsg e = {{0}};
    r->rc = nn_forward(r->m, r->x, r->n, r->frames, r->probs, &e);
    r->rc |= nn_forward(r->m, r->x, r->n, r->frames, r->probs, &e);
}

typedef struct MelRun {
    const MelPlan *p;
    const float *x;
    int nw, ns;
    float *out;
    int rc;
} MelRun;
static void mel_twice(void *arg)
{
    MelRun *r = arg;
    ErrMsg e = {{0}};
    r->rc = mel_compute_batch(r->p, r->x, r->nw, r->ns, r->out, &e);
    r->rc |= mel_compute_batch(r->p, r->x, r->nw, r->ns, r->out, &e);
}

int main(void)
{
    common_log_level = LOG_WARN;
    const char *labels[] = {"a", "b", "c", "d"};
    NnArchConfig ac = {.arch = "fcn", .n_labels = 4, .labels = labels, .fcn_blocks = 2,
                       .fcn_channels = {4, 8}, .dropout = -1.0f};
    ErrMsg e = {{0}};
    NnModel *m = nn_model_new(&ac, 7, &e);
    if (!m) {
        printf("FAIL nn_model_new: %s\n", e.msg);
        return 1;
    }
    const NnInfo *in = nn_model_info(m);
    int n = 7, frames = 24;
    size_t plane = (size_t)in->n_mels * frames;
    float *x = malloc(sizeof(float) * n * plane);
    uint64_t s = 12345;
    for (size_t i = 0; i < n * plane; i++) x[i] = -80.0f * nn_rng_uniform(&s);
    float *ref = malloc(sizeof(float) * n * 4), *got = malloc(sizeof(float) * n * 4);
    CHECK(nn_forward(m, x, n, frames, ref, &e) == 0, "cpu forward: %s", e.msg);

    /* no backend registered: cuda is an error, auto the CPU */
    nn_backend_register(NULL);
    CHECK(nn_model_set_device(m, NN_DEVICE_CUDA, &e) < 0 && strstr(e.msg, "without CUDA"),
          "cuda without a backend: %s", e.msg);
    CHECK(nn_model_set_device(m, NN_DEVICE_AUTO, &e) == NN_DEVICE_CPU, "auto without a backend");

    /* a backend whose probe fails */
    nn_backend_register(&fake);
    probe_ok = 0;
    CHECK(nn_model_set_device(m, NN_DEVICE_CUDA, &e) < 0 && strstr(e.msg, "fake: no device"),
          "cuda with a failing probe: %s", e.msg);
    CHECK(nn_model_set_device(m, NN_DEVICE_AUTO, &e) == NN_DEVICE_CPU, "auto, failing probe");
    CHECK(creates == 0, "created a net without a device");
    probe_ok = 1;

    /* out of memory above 2 windows: 7 -> 3 -> (1, 2), 4 -> (2, 2) */
    CHECK(nn_model_set_device(m, NN_DEVICE_AUTO, &e) == NN_DEVICE_CUDA, "auto, fake device");
    CHECK(strcmp(nn_model_device_name(m), "fake (fake gpu)") == 0, "name %s",
          nn_model_device_name(m));
    memset(got, 0, sizeof(float) * n * 4);
    CHECK(nn_forward(m, x, n, frames, got, &e) == 0, "halving forward: %s", e.msg);
    /* not bit-equal: with many threads OpenBLAS splits a GEMM by its size, so sub-batches of
     * 1-4 windows round differently from 7 (seen: 3e-8 on 16 cores) */
    CHECK(maxdiff(ref, got, (size_t)n * 4) <= 1e-6f, "halved result differs by %g",
          maxdiff(ref, got, (size_t)n * 4));
    int want[] = {7, 3, 1, 2, 4, 2, 2};
    CHECK(n_seen == 7, "%d device calls, want 7", n_seen);
    for (int i = 0; i < 7 && i < n_seen; i++)
        CHECK(sizes_seen[i] == want[i], "call %d had %d windows, want %d", i, sizes_seen[i],
              want[i]);
    CHECK(nn_model_device(m) == NN_DEVICE_CUDA, "OOM must not leave the device");

    /* changed weights are uploaded before the next forward, once */
    NnModel *c = nn_model_clone(m);
    CHECK(nn_model_device(c) == NN_DEVICE_CPU, "a clone starts on the CPU");
    nn_model_copy_weights(m, c);
    nn_model_free(c);
    CHECK(frees == 0, "freeing a clone released the original's device net");
    int up0 = uploads;
    CHECK(nn_forward(m, x, 2, frames, got, &e) == 0 && uploads == up0 + 1, "no re-upload");
    CHECK(nn_forward(m, x, 2, frames, got, &e) == 0 && uploads == up0 + 1, "upload repeated");

    /* a hard failure: CPU results, one log line for two calls, the device left for good */
    broken = 1;
    int calls0 = calls;
    Run r = {m, x, n, frames, got, -1};
    memset(got, 0, sizeof(float) * n * 4);
    int lines = count_in_stderr("scoring on the CPU from now on", run_twice, &r);
    CHECK(r.rc == 0, "forward after a device failure returned an error");
    CHECK(maxdiff(ref, got, (size_t)n * 4) == 0.0f, "fallback result differs");
    CHECK(lines == 1, "%d fallback log lines, want 1", lines);
    CHECK(calls == calls0 + 1, "device called %d times after failing", calls - calls0);
    CHECK(nn_model_device(m) == NN_DEVICE_CPU && strcmp(nn_model_device_name(m), "cpu") == 0,
          "device after failure: %s", nn_model_device_name(m));
    /* choosing the device again retries it */
    broken = 0;
    CHECK(nn_model_set_device(m, NN_DEVICE_CUDA, &e) == NN_DEVICE_CUDA, "retry: %s", e.msg);
    CHECK(frees == 1, "set_device did not free the old net (%d)", frees);
    CHECK(nn_model_set_device(m, NN_DEVICE_CPU, &e) == NN_DEVICE_CPU && frees == 2, "to cpu");

    /* training on a device that fails: the CPU takes over with the dropout generator rewound,
     * so the losses equal a CPU-only trainer's with the same seed, step for step */
    NnModel *m2 = nn_model_clone(m);
    CHECK(nn_model_set_device(m, NN_DEVICE_CUDA, &e) == NN_DEVICE_CUDA, "train: %s", e.msg);
    NnOptim opt = {.kind = NN_ADAMW, .lr = 1e-3f};
    NnTrainer *ta = nn_trainer_new(m, &opt, 99, &e), *tb = nn_trainer_new(m2, &opt, 99, &e);
    float *tgt = calloc((size_t)n * 4, sizeof(float));
    for (int i = 0; i < n; i++) tgt[i * 4 + i % 4] = 1.0f;
    float la[3], lb[3];
    for (int step = 0; step < 3; step++) {
        CHECK(nn_train_step(ta, x, n, frames, tgt, 1e-3f, &la[step], NULL, &e) == 0, "a: %s",
              e.msg);
        CHECK(nn_train_step(tb, x, n, frames, tgt, 1e-3f, &lb[step], NULL, &e) == 0, "b: %s",
              e.msg);
        CHECK(la[step] == lb[step], "step %d: loss %.9g after a device failure, %.9g on the CPU",
              step, la[step], lb[step]);
    }
    CHECK(train_calls == 1, "device training tried %d times, want 1", train_calls);
    CHECK(train_masks == 1, "%d dropout masks handed to the device, want 1 (fcn: one dense)",
          train_masks);
    nn_trainer_free(ta);
    nn_trainer_free(tb);
    nn_model_free(m2);
    free(tgt);
    nn_model_free(m);

    /* ---- mel */
    MelPlan *p = mel_plan_create(22050, 2048, 512, 64, &e);
    CHECK(p != NULL, "mel plan: %s", e.msg);
    int nw = 5, ns = 6000;
    float *sx = malloc(sizeof(float) * nw * ns);
    for (int i = 0; i < nw * ns; i++) sx[i] = sinf(0.01f * i * (1 + i % 7)) * 0.5f;
    size_t per = (size_t)64 * mel_frames(p, ns);
    float *mref = malloc(sizeof(float) * nw * per), *mgot = malloc(sizeof(float) * nw * per);
    for (int i = 0; i < nw; i++) mel_compute(p, sx + (size_t)i * ns, ns, mref + i * per);
    mel_backend_register(NULL);
    CHECK(mel_plan_set_device(p, 2, &e) < 0 && strstr(e.msg, "without CUDA"), "mel cuda: %s",
          e.msg);
    CHECK(mel_compute_batch(p, sx, nw, ns, mgot, &e) == 0 &&
              maxdiff(mref, mgot, nw * per) == 0.0f, "cpu batch differs from mel_compute");
    mel_backend_register(&fake_mel);
    CHECK(mel_plan_set_device(p, 0, &e) == 2, "mel auto with a backend");
    memset(mgot, 0, sizeof(float) * nw * per);
    CHECK(mel_compute_batch(p, sx, nw, ns, mgot, &e) == 0, "mel halving: %s", e.msg);
    CHECK(maxdiff(mref, mgot, nw * per) == 0.0f, "halved mel differs");
    CHECK(mel_calls == 5, "%d mel device calls, want 5 (5 -> 2 | 3 -> 1 | 2)", mel_calls);
    mel_broken = 1;
    memset(mgot, 0, sizeof(float) * nw * per);
    MelRun mr = {p, sx, nw, ns, mgot, -1};
    lines = count_in_stderr("computing on the CPU from now on", mel_twice, &mr);
    CHECK(mr.rc == 0 && maxdiff(mref, mgot, nw * per) == 0.0f, "mel fallback result");
    CHECK(lines == 1, "%d mel fallback lines, want 1", lines);
    CHECK(mel_compute_batch(p, sx, 0, ns, mgot, &e) < 0, "0 windows accepted");
    mel_plan_free(p);
    free(sx);
    free(mref);
    free(mgot);
    free(x);
    free(ref);
    free(got);
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("ok: halving, re-upload, fallback with one log line, probe errors (nn and mel)\n");
    return 0;
}
