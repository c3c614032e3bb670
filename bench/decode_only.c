/* decode_only: benchmark helper for tag_bench.sh. Runs decode_windows (DESIGN.md defaults:
 * six 4 s windows at 22050 Hz) over the given files on --jobs threads, as genred tag's
 * workers do, but with no mel, no CNN and no tagging, and prints the rate. Not installed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

static char **files;
static int n_files;
static atomic_int next_file;
static atomic_int failed;

static void *worker(void *arg)
{
    (void)arg;
    DecodeOptions o = decode_default_options();
    for (;;) {
        int i = atomic_fetch_add(&next_file, 1);
        if (i >= n_files) return NULL;
        DecodeWindows w;
        memset(&w, 0, sizeof w);
        ErrMsg e = {{0}};
        if (decode_windows(files[i], &o, &w, &e) != 0) {
            fprintf(stderr, "decode_only: %s: %s\n", files[i], e.msg);
            atomic_fetch_add(&failed, 1);
        }
        decode_windows_free(&w);
    }
}

int main(int argc, char **argv)
{
    int jobs = common_cpu_count(), a = 1;
    if (argc > 2 && strcmp(argv[1], "--jobs") == 0) {
        jobs = atoi(argv[2]);
        a = 3;
    }
    if (a >= argc || jobs < 1) {
        fprintf(stderr, "usage: decode_only [--jobs N] FILE...\n");
        return 2;
    }
    files = argv + a;
    n_files = argc - a;
    pthread_t *t = calloc((size_t)jobs, sizeof *t);
    double t0 = common_now();
    int started = 0;
    for (; started < jobs; started++)
        if (pthread_create(&t[started], NULL, worker, NULL) != 0) break;
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    double el = common_now() - t0;
    printf("decode_only: %d tracks in %.3f s (%.2f tracks/s) on %d threads, %d failed\n", n_files,
           el, n_files / el, started, atomic_load(&failed));
    free(t);
    return atomic_load(&failed) ? 1 : 0;
}
