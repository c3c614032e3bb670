/* test_plot_errors: plot/ refuses what it cannot write, with a reason, and leaves no file:
 * unknown extensions, a mel picture named .svg, empty inputs, a missing directory.
 * plot_mel_png_mem gives the bytes plot_mel_png writes, and refuses what it refuses.
 * Works in a fresh directory under $TMPDIR (or /tmp) and removes it. */
#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

static void expect_fail(int rc, const ErrMsg *e, const char *path, const char *what)
{
    if (rc != -1 || e->msg[0] == 0) {
        failures++;
        fprintf(stderr, "FAIL: %s: rc %d, message \"%s\"\n", what, rc, e->msg);
    } else {
        printf("%-34s -> %s\n", what, e->msg);
    }
    if (path && access(path, F_OK) == 0) {
        failures++;
        fprintf(stderr, "FAIL: %s: %s was created\n", what, path);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/genred-plot-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *labels[2] = {"a", "b"};
    int counts[4] = {3, 1, 0, 4};
    float db[64 * 4] = {0};
    char p[4096];
    ErrMsg e;

    const char *bad[] = {"m.jpg", "m", "m.pdf", "m.svg.gz", "dir.png/m"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, bad[i]);
        memset(&e, 0, sizeof e);
        expect_fail(plot_confusion(p, counts, 2, labels, "t", &e), &e, p, bad[i]);
    }
    snprintf(p, sizeof p, "%s/mel.svg", dir);
    memset(&e, 0, sizeof e);
    expect_fail(plot_mel_png(p, db, 1, 64, 4, 22050, 512, "t", &e), &e, p, "mel as svg");
    snprintf(p, sizeof p, "%s/empty.png", dir);
    memset(&e, 0, sizeof e);
    expect_fail(plot_mel_png(p, db, 0, 64, 4, 22050, 512, "t", &e), &e, p, "mel with 0 windows");
    memset(&e, 0, sizeof e);
    expect_fail(plot_confusion(p, counts, 0, labels, "t", &e), &e, p, "confusion with 0 labels");
    snprintf(p, sizeof p, "%s/no/such/dir/c.png", dir);
    memset(&e, 0, sizeof e);
    expect_fail(plot_confusion(p, counts, 2, labels, "t", &e), &e, p, "missing directory");

    /* and the happy path with a NULL title and NULL labels still works */
    snprintf(p, sizeof p, "%s/ok.svg", dir);
    memset(&e, 0, sizeof e);
    if (plot_confusion(p, counts, 2, NULL, NULL, &e) != 0 || access(p, F_OK) != 0) {
        failures++;
        fprintf(stderr, "FAIL: untitled confusion: %s\n", e.msg);
    }
    unlink(p);

    /* the picture in memory is the file's bytes */
    snprintf(p, sizeof p, "%s/mel.png", dir);
    for (int i = 0; i < 64 * 4; i++) db[i] = -80.0f * (float)(i % 7) / 6.0f;
    unsigned char *png = NULL;
    size_t len = 0;
    memset(&e, 0, sizeof e);
    int rc_file = plot_mel_png(p, db, 1, 64, 4, 22050, 512, "t", &e);
    int rc_mem = plot_mel_png_mem(&png, &len, db, 1, 64, 4, 22050, 512, "t", &e);
    FILE *f = fopen(p, "rb");
    unsigned char *file = malloc(len + 1);
    size_t flen = f && file ? fread(file, 1, len + 1, f) : 0;
    if (f) fclose(f);
    if (rc_file != 0 || rc_mem != 0 || len < 8 || memcmp(png, "\x89PNG\r\n\x1a\n", 8) != 0 ||
        flen != len || memcmp(file, png, len) != 0) {
        failures++;
        fprintf(stderr, "FAIL: mel png in memory (%zu bytes) differs from the file (%zu): %s\n",
                len, flen, e.msg);
    }
    free(file);
    free(png);
    unlink(p);
    memset(&e, 0, sizeof e);
    expect_fail(plot_mel_png_mem(&png, &len, db, 0, 64, 4, 22050, 512, "t", &e), &e, NULL,
                "mel in memory with 0 windows");
    if (png || len) {
        failures++;
        fprintf(stderr, "FAIL: a failed picture left %zu bytes\n", len);
    }
    if (rmdir(dir) != 0) {
        failures++;
        fprintf(stderr, "FAIL: stray files left in %s\n", dir);
    }
    printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
