/* test_model: the model file and the public model API on files generated here by
 * tests/nn/make_model.py: every broken variant is refused with its reason, a save -> load
 * round trip keeps every tensor byte-exact, the id is the file's SHA-256 prefix, new/clone/
 * copy_weights/metadata behave, nn_forward checks widths and is safe from several threads.
 * Usage: test_model PYTHON MAKE_MODEL_PY. Exits 77 when numpy is missing. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn_internal.h"

#include "check.h"

static const char *python, *maker;
static char dir[256];

/* Runs argv; stdout into out (if not NULL). Returns the exit status or -1. */
static int run(char *const argv[], char *out, size_t cap)
{
    int fd[2];
    if (pipe(fd) < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t r;
    char sink[256];
    while ((r = read(fd[0], out ? out + len : sink, out ? cap - 1 - len : sizeof sink)) > 0)
        if (out) len += (size_t)r;
    if (out) out[len] = '\0';
    close(fd[0]);
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static void make(const char *name, const char *arch, const char *brk, const char *extra_flag,
                 const char *extra_val, char *path)
{
    snprintf(path, 512, "%s/%s.safetensors", dir, name);
    char *argv[12];
    int k = 0;
    argv[k++] = (char *)python;
    argv[k++] = (char *)maker;
    argv[k++] = "--arch";
    argv[k++] = (char *)arch;
    if (brk) {
        argv[k++] = "--break";
        argv[k++] = (char *)brk;
    }
    if (extra_flag) {
        argv[k++] = (char *)extra_flag;
        argv[k++] = (char *)extra_val;
    }
    argv[k++] = path;
    argv[k] = NULL;
    int rc = run(argv, NULL, 0);
    if (rc != 0) {
        fprintf(stderr, "make_model.py failed (%d) for %s\n", rc, name);
        exit(1);
    }
}

static void sha_prefix(const char *path, char out[13])
{
    char buf[256];
    char *argv[] = {(char *)python, "-c",
                    "import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],'rb').read())"
                    ".hexdigest()[:12])",
                    (char *)path, NULL};
    if (run(argv, buf, sizeof buf) != 0) buf[0] = '\0';
    snprintf(out, 13, "%.12s", buf);
}

static void test_refusals(void)
{
    static const struct {
        const char *brk, *arch, *want;
    } cases[] = {
        {"wrong-name", "seed-cnn", "unexpected tensor \"conv1.kernel\""},
        {"wrong-shape", "fcn", "conv1.bias\": shape [33], expected [32]"},
        {"missing-meta", "seed-cnn", "\"n_mels\" is missing"},
        {"bad-meta", "seed-cnn", "\"hop_length\": expected an integer"},
        {"bad-format", "fcn", "\"format\": expected \"genred-1\""},
        {"bad-labels", "seed-cnn", "\"labels\""},
        {"truncated", "seed-cnn", "truncated"},
        {"header-too-long", "fcn", "header length"},
        {"dtype", "seed-cnn", "dtype F16"},
        {"missing-tensor", "seed-cnn", "missing tensor \"bn2.running_var\""},
        {"extra-tensor", "fcn", "unexpected tensor \"bn1.num_batches_tracked\""},
        {"overlap", "seed-cnn", "overlaps"},
        {"nan", "seed-cnn", "non-finite"},
        {"bad-json", "fcn", "json"},
    };
    char path[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make(cases[i].brk, cases[i].arch, cases[i].brk, NULL, NULL, path);
        ErrMsg e = {""};
        NnModel *m = nn_model_load(path, &e);
        CHECK(!m, "%s: loaded a broken file", cases[i].brk);
        CHECK(strstr(e.msg, cases[i].want), "%s: message \"%s\" lacks \"%s\"", cases[i].brk,
              e.msg, cases[i].want);
        printf("refused %-16s %s\n", cases[i].brk, e.msg);
        nn_model_free(m);
    }
    ErrMsg e = {""};
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    CHECK(!nn_model_load(path, &e) && e.msg[0], "missing file loaded");
    /* a file of 5 bytes */
    FILE *f = fopen(path, "wb");
    fwrite("abcde", 1, 5, f);
    fclose(f);
    CHECK(!nn_model_load(path, &e) && strstr(e.msg, "truncated"), "5-byte file: %s", e.msg);
}

static void fill(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++) x[i] = -80.0f * nn_rng_uniform(&seed);
}

static void test_load_and_round_trip(void)
{
    char path[512], path2[512], id[13];
    make("seed", "seed-cnn", NULL, NULL, NULL, path);
    ErrMsg e = {""};
    NnModel *m = nn_model_load(path, &e);
    CHECK(m, "seed-cnn load: %s", e.msg);
    if (!m) return;
    const NnInfo *in = nn_model_info(m);
    CHECK(strcmp(in->arch, "seed-cnn") == 0 && in->n_labels == 10, "arch/labels");
    CHECK(strcmp(in->labels[4], "hiphop") == 0 && strcmp(in->display_names[4], "Hip-Hop") == 0,
          "labels[4] %s / %s", in->labels[4], in->display_names[4]);
    CHECK(in->sample_rate == 22050 && in->n_fft == 2048 && in->hop_length == 512 &&
              in->n_mels == 64 && in->window_samples == 88200 && in->windows == 6,
          "audio settings");
    CHECK(in->fixed_frames == 173 && in->min_frames == 173, "frames %d", in->fixed_frames);
    CHECK(fabsf(in->input_scale - 0.0125f) < 1e-9f && in->input_shift == 40.0f &&
              fabsf(in->bn_eps - 1e-3f) < 1e-10f,
          "scaling");
    sha_prefix(path, id);
    CHECK(strlen(in->id) == 12 && strcmp(in->id, id) == 0, "id %s, sha256 %s", in->id, id);
    CHECK(nn_model_get_meta(m, "command") && strstr(nn_model_get_meta(m, "command"), "seed-cnn"),
          "command metadata");

    /* save -> load keeps every tensor byte-exact, and the metadata */
    nn_model_set_meta(m, "train_list", "a,b.txt");
    nn_model_set_meta(m, "labels", "x,y"); /* owned by the model: ignored */
    snprintf(path2, sizeof path2, "%s/seed2.safetensors", dir);
    CHECK(nn_model_save(m, path2, &e) == 0, "save: %s", e.msg);
    sha_prefix(path2, id);
    CHECK(strcmp(in->id, id) == 0, "id after save %s, sha256 %s", in->id, id);
    NnModel *m2 = nn_model_load(path2, &e);
    CHECK(m2, "reload: %s", e.msg);
    if (m2) {
        CHECK(m2->n_params == m->n_params && m2->n_buffers == m->n_buffers, "sizes");
        CHECK(memcmp(m2->params, m->params, sizeof(float) * m->n_params) == 0, "params differ");
        CHECK(memcmp(m2->buffers, m->buffers, sizeof(float) * m->n_buffers) == 0,
              "buffers differ");
        CHECK(strcmp(nn_model_get_meta(m2, "train_list"), "a,b.txt") == 0, "train_list");
        CHECK(nn_model_info(m2)->n_labels == 10, "labels overwritten");
        CHECK(strcmp(nn_model_info(m2)->display_names[9], "Rock") == 0, "display names");
        CHECK(strcmp(nn_model_info(m2)->id, in->id) == 0, "loaded id %s saved id %s",
              nn_model_info(m2)->id, in->id);
        /* and the tensors match the file make_model wrote, read by an independent parser */
        char buf[256];
        char *argv[] = {(char *)python, "-c",
                        "import sys;sys.path.insert(0,sys.argv[1]);import make_model as mm;"
                        "import numpy as np;a,_=mm.read_safetensors(sys.argv[2]);"
                        "b,_=mm.read_safetensors(sys.argv[3]);"
                        "print(all(np.array_equal(a[k],b[k]) for k in a) and a.keys()==b.keys())",
                        NULL, path, path2, NULL};
        char mdir[512];
        snprintf(mdir, sizeof mdir, "%s", maker);
        char *slash = strrchr(mdir, '/');
        if (slash) *slash = '\0'; else snprintf(mdir, sizeof mdir, ".");
        argv[3] = mdir;
        CHECK(run(argv, buf, sizeof buf) == 0 && strncmp(buf, "True", 4) == 0,
              "python reads different tensors: %s", buf);
    }

    /* forward: width checks, probabilities, clone and threads agree */
    int n = 3;
    float *x = xmalloc(sizeof(float) * n * 64 * 173), p1[30], p2[30];
    fill(x, (int64_t)n * 64 * 173, 7);
    CHECK(nn_forward(m, x, n, 172, p1, &e) < 0 && strstr(e.msg, "173"), "172 frames: %s", e.msg);
    CHECK(nn_forward(m, x, n, 173, p1, &e) == 0, "forward: %s", e.msg);
    for (int i = 0; i < n; i++) {
        float s = 0;
        for (int k = 0; k < 10; k++) s += p1[i * 10 + k];
        CHECK(fabsf(s - 1.0f) < 1e-5f, "row %d sums to %g", i, s);
    }
    if (m2) {
        CHECK(nn_forward(m2, x, n, 173, p2, &e) == 0 && memcmp(p1, p2, sizeof p1) == 0,
              "reloaded model scores differently");
    }
    NnModel *c = nn_model_clone(m);
    CHECK(nn_forward(c, x, n, 173, p2, &e) == 0 && memcmp(p1, p2, sizeof p1) == 0,
          "clone scores differently");
    c->params[5] += 1.0f;
    nn_model_copy_weights(c, m);
    CHECK(memcmp(c->params, m->params, sizeof(float) * m->n_params) == 0, "copy_weights");
    nn_model_free(c);
    free(x);
    nn_model_free(m2);
    nn_model_free(m);
}

typedef struct Job {
    NnModel *m;
    const float *x;
    int n, frames;
    float probs[64 * 10];
    int rc;
} Job;

static void *job_run(void *arg)
{
    Job *j = arg;
    ErrMsg e;
    j->rc = nn_forward(j->m, j->x, j->n, j->frames, j->probs, &e);
    return NULL;
}

static void test_new_fcn(void)
{
    const char *labels[] = {"a", "b", "c"};
    NnArchConfig cfg = {.arch = "fcn", .n_labels = 3, .labels = labels, .dropout = -1};
    ErrMsg e = {""};
    NnModel *m = nn_model_new(&cfg, 42, &e);
    CHECK(m, "new fcn: %s", e.msg);
    if (!m) return;
    const NnInfo *in = nn_model_info(m);
    CHECK(in->fixed_frames == 0 && in->min_frames == 16, "fcn min %d", in->min_frames);
    CHECK(strcmp(in->id, "") == 0, "unsaved id");
    NnModel *same = nn_model_new(&cfg, 42, &e), *other = nn_model_new(&cfg, 43, &e);
    CHECK(memcmp(same->params, m->params, sizeof(float) * m->n_params) == 0,
          "init not deterministic");
    CHECK(memcmp(other->params, m->params, sizeof(float) * m->n_params) != 0, "seed ignored");
    nn_model_free(same);
    nn_model_free(other);

    float *x = xmalloc(sizeof(float) * 8 * 64 * 40);
    fill(x, 8 * 64 * 40, 9);
    float p[8 * 3];
    CHECK(nn_forward(m, x, 2, 15, p, &e) < 0 && strstr(e.msg, "16"), "15 frames: %s", e.msg);
    CHECK(nn_forward(m, x, 2, 16, p, &e) == 0, "16 frames: %s", e.msg);
    /* several threads on one model give the serial answer */
    Job jobs[3];
    pthread_t th[3];
    float serial[8 * 3];
    CHECK(nn_forward(m, x, 8, 40, serial, &e) == 0, "forward 40");
    for (int i = 0; i < 3; i++) {
        jobs[i] = (Job){.m = m, .x = x, .n = 8, .frames = 40};
        pthread_create(&th[i], NULL, job_run, &jobs[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].rc == 0 && memcmp(jobs[i].probs, serial, sizeof serial) == 0,
              "thread %d differs", i);
    }

    char path[512];
    snprintf(path, sizeof path, "%s/new.safetensors", dir);
    nn_model_set_meta(m, "command", "genred train --arch fcn");
    CHECK(nn_model_save(m, path, &e) == 0, "save: %s", e.msg);
    NnModel *l = nn_model_load(path, &e);
    CHECK(l, "reload new: %s", e.msg);
    if (l) {
        float q[8 * 3];
        CHECK(nn_forward(l, x, 8, 40, q, &e) == 0 && memcmp(q, serial, sizeof q) == 0,
              "reloaded fcn differs");
        CHECK(strcmp(nn_model_get_meta(l, "fcn_channels"), "32,64,128,128") == 0, "channels");
        CHECK(strcmp(nn_model_info(l)->display_names[2], "c") == 0, "display default");
        const char **names;
        int np = nn_model_param_names(l, &names);
        CHECK(np == 4 * 4 + 2 && strcmp(names[0], "conv1.weight") == 0 &&
                  strcmp(names[np - 1], "fc.bias") == 0,
              "param names (%d)", np);
    }
    nn_model_free(l);
    free(x);
    nn_model_free(m);

    /* small fcn: fewer blocks, custom channels */
    cfg.fcn_blocks = 2;
    cfg.fcn_channels[0] = 8;
    cfg.fcn_channels[1] = 16;
    m = nn_model_new(&cfg, 1, &e);
    CHECK(m && nn_model_info(m)->min_frames == 4, "2-block fcn");
    nn_model_free(m);

    /* refusals of nn_model_new */
    const char *dup[] = {"a", "a"}, *comma[] = {"a,b", "c"};
    NnArchConfig bad = {.arch = "fcn", .n_labels = 2, .labels = dup, .dropout = -1};
    CHECK(!nn_model_new(&bad, 1, &e) && strstr(e.msg, "duplicate"), "dup labels: %s", e.msg);
    bad.labels = comma;
    CHECK(!nn_model_new(&bad, 1, &e), "comma label accepted");
    bad.labels = labels;
    bad.n_labels = 1;
    CHECK(!nn_model_new(&bad, 1, &e), "one label accepted");
    bad.n_labels = 3;
    bad.arch = "resnet";
    CHECK(!nn_model_new(&bad, 1, &e) && strstr(e.msg, "resnet"), "arch: %s", e.msg);
}

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    python = argv[1];
    maker = argv[2];
    char buf[64];
    char *probe[] = {(char *)python, "-c", "import numpy; print('ok')", NULL};
    if (run(probe, buf, sizeof buf) != 0) {
        printf("SKIP: %s has no numpy\n", python);
        return 77;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/genred-nn-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return 2;
    test_refusals();
    test_load_and_round_trip();
    test_new_fcn();
    char *rm[] = {"/bin/rm", "-rf", dir, NULL};
    run(rm, NULL, 0);
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
