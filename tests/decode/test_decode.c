/* test_decode: a thin command-line face of the decode module for tests/decode/run_tests.py.
 * It is not a test by itself (except `units`): the driver makes the audio files and checks
 * the numbers it prints and the raw float32 files it writes.
 *   test_decode units                                  window rule and name checks
 *   test_decode all FILE OUT.f32 [MAX]                 decode_all -> raw float32
 *   test_decode windows FILE OUT.f32 [pad|whole] [RATE] [W] [N]   decode_windows -> raw
 *   test_decode fail FILE                              decode_windows and decode_all must fail
 *   test_decode threads FILE                           4 threads decode at once, must agree
 *   test_decode mem FILE OUT.f32 [MAX_WHOLE]           decode_windows_mem of the file's bytes
 *                                                      (read into memory) -> raw float32
 * Exit 0 on success, 1 on a failed expectation, 2 on bad usage. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

static int write_raw(const char *path, const float *x, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof *x, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        if (f) fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

static int check(int ok, const char *what)
{
    if (!ok) fprintf(stderr, "FAIL: %s\n", what);
    return ok ? 0 : 1;
}

static int units(void)
{
    int bad = 0;
    /* DESIGN.md §2: floor((N - W) * (2i + 1) / 12). */
    bad += check(decode_window_start(88200 + 1200, 88200, 0, 6) == 100, "start 0");
    bad += check(decode_window_start(88200 + 1200, 88200, 5, 6) == 1100, "start 5");
    bad += check(decode_window_start(88200 + 13, 88200, 2, 6) == 5, "start floors");
    bad += check(decode_window_start(1000, 88200, 3, 6) == 0, "short track");
    bad += check(decode_window_start(10000, 100, 0, 1) == 4950, "one window is centred");
    bad += check(decode_is_audio_name("/a/b/Song.MP3"), "MP3 upper case");
    bad += check(decode_is_audio_name("x.flac") && decode_is_audio_name("x.Opus") &&
                     decode_is_audio_name("x.wv") && decode_is_audio_name("x.aifc") &&
                     decode_is_audio_name("x.tta") && decode_is_audio_name("x.webm"),
                 "known extensions");
    bad += check(!decode_is_audio_name("cover.jpg") && !decode_is_audio_name("mp3") &&
                     !decode_is_audio_name("/dir.mp3/notes") && !decode_is_audio_name(".mp3") &&
                     !decode_is_audio_name("x.mp33") && !decode_is_audio_name(""),
                 "non-audio names");
    DecodeOptions o = decode_default_options();
    bad += check(o.sample_rate == 22050 && o.window_samples == 88200 && o.n_windows == 6 &&
                     o.short_policy == DECODE_SHORT_PAD,
                 "defaults");
    printf("units: %d failed\n", bad);
    return bad ? 1 : 0;
}

enum { N_THREADS = 4 };

typedef struct Job {
    const char *path;
    DecodeWindows w;
    float *all;
    int64_t n_all;
    int rc;
    ErrMsg e;
} Job;

static void *job_run(void *arg)
{
    Job *j = arg;
    DecodeOptions o = decode_default_options();
    j->rc = decode_windows(j->path, &o, &j->w, &j->e);
    if (j->rc == 0) j->rc = decode_all(j->path, 22050, 0, &j->all, &j->n_all, &j->e);
    return NULL;
}

static int threads(const char *path)
{
    Job jobs[N_THREADS];
    pthread_t t[N_THREADS];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i].path = path;
        if (pthread_create(&t[i], NULL, job_run, &jobs[i]) != 0) return check(0, "pthread_create");
    }
    for (int i = 0; i < N_THREADS; i++) pthread_join(t[i], NULL);
    int bad = 0;
    for (int i = 0; i < N_THREADS; i++) {
        if (jobs[i].rc != 0) {
            fprintf(stderr, "thread %d: %s\n", i, jobs[i].e.msg);
            bad++;
            continue;
        }
        const Job *a = &jobs[0], *b = &jobs[i];
        size_t nw = (size_t)a->w.n_windows * a->w.window_len;
        bad += check(b->w.n_windows == a->w.n_windows && b->w.window_len == a->w.window_len &&
                         memcmp(a->w.samples, b->w.samples, nw * sizeof(float)) == 0,
                     "windows agree across threads");
        bad += check(b->n_all == a->n_all &&
                         memcmp(a->all, b->all, (size_t)a->n_all * sizeof(float)) == 0,
                     "full decodes agree across threads");
    }
    printf("threads=%d\nfailed=%d\n", N_THREADS, bad);
    for (int i = 0; i < N_THREADS; i++) {
        decode_windows_free(&jobs[i].w);
        free(jobs[i].all);
    }
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "units") == 0) return units();
    if (argc >= 3 && strcmp(argv[1], "threads") == 0) return threads(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "all") == 0) {
        float *x = NULL;
        int64_t n = 0;
        ErrMsg e = {{0}};
        int64_t max = argc >= 5 ? atoll(argv[4]) : 0;
        if (decode_all(argv[2], 22050, max, &x, &n, &e) < 0) {
            printf("error=%s\n", e.msg);
            return 1;
        }
        printf("n=%lld\n", (long long)n);
        int rc = write_raw(argv[3], x, (size_t)n);
        free(x);
        return rc;
    }
    if (argc >= 4 && strcmp(argv[1], "windows") == 0) {
        DecodeOptions o = decode_default_options();
        if (argc >= 5) o.short_policy = strcmp(argv[4], "whole") == 0 ? DECODE_SHORT_WHOLE
                                                                       : DECODE_SHORT_PAD;
        if (argc >= 6) o.sample_rate = atoi(argv[5]);
        if (argc >= 7) o.window_samples = atoi(argv[6]);
        if (argc >= 8) o.n_windows = atoi(argv[7]);
        DecodeWindows w;
        ErrMsg e = {{0}};
        if (decode_windows(argv[2], &o, &w, &e) < 0) {
            printf("error=%s\n", e.msg);
            return 1;
        }
        printf("n_windows=%d\nwindow_len=%d\ntrack_samples=%lld\ndecoded_samples=%lld\n",
               w.n_windows, w.window_len, (long long)w.track_samples,
               (long long)w.decoded_samples);
        int rc = write_raw(argv[3], w.samples, (size_t)w.n_windows * w.window_len);
        decode_windows_free(&w);
        return rc;
    }
    if (argc >= 4 && strcmp(argv[1], "mem") == 0) {
        FILE *f = fopen(argv[2], "rb");
        if (!f) return check(0, "open");
        size_t cap = 1 << 20, len = 0, got;
        unsigned char *data = malloc(cap);
        while (data && (got = fread(data + len, 1, cap - len, f)) > 0) {
            len += got;
            if (len == cap) data = realloc(data, cap *= 2);
        }
        fclose(f);
        if (!data) return check(0, "memory");
        DecodeOptions o = decode_default_options();
        if (argc >= 5) o.max_whole_samples = atoll(argv[4]);
        DecodeWindows w;
        ErrMsg e = {{0}};
        int rc = decode_windows_mem(data, len, &o, &w, &e);
        free(data);
        if (rc < 0) {
            printf("error=%s\n", e.msg);
            return 1;
        }
        printf("n_windows=%d\nwindow_len=%d\ntrack_samples=%lld\ndecoded_samples=%lld\n",
               w.n_windows, w.window_len, (long long)w.track_samples,
               (long long)w.decoded_samples);
        rc = write_raw(argv[3], w.samples, (size_t)w.n_windows * w.window_len);
        decode_windows_free(&w);
        return rc;
    }
    if (argc >= 3 && strcmp(argv[1], "fail") == 0) {
        DecodeOptions o = decode_default_options();
        DecodeWindows w;
        ErrMsg e1 = {{0}}, e2 = {{0}};
        float *x = NULL;
        int64_t n = 0;
        int r1 = decode_windows(argv[2], &o, &w, &e1);
        int r2 = decode_all(argv[2], 22050, 0, &x, &n, &e2);
        if (r1 == 0) decode_windows_free(&w);
        free(x);
        printf("windows_error=%s\nall_error=%s\n", e1.msg, e2.msg);
        int bad = check(r1 == -1 && r2 == -1, "expected both calls to fail");
        bad += check(e1.msg[0] && !strchr(e1.msg, '\n') && e2.msg[0] && !strchr(e2.msg, '\n'),
                     "one-line reasons");
        return bad ? 1 : 0;
    }
    fprintf(stderr, "usage: test_decode units | all FILE OUT [MAX] | windows FILE OUT "
                    "[pad|whole] [RATE] [W] [N] | fail FILE | threads FILE | mem FILE OUT "
                    "[MAX_WHOLE]\n");
    return 2;
}
