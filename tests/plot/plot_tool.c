/* plot_tool: test helper around plot/.
 *   plot_tool mel OUT.png TITLE IN.f32...   one panel per raw float32 input (22050 Hz), each
 *                                           cut or zero-padded to 88200 samples, through
 *                                           features/mel then plot_mel_png
 *   plot_tool confusion OUT.(png|svg)       a fixed 10-label matrix whose last label needs XML
 *                                           escaping
 * Prints the ErrMsg and exits 1 when the plot call fails. */
#include "mel.h"
#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WINDOW = 88200 };

static int mel(const char *out, const char *title, int n_in, char **in)
{
    ErrMsg e = {{0}};
    MelPlan *p = mel_plan_create(22050, 2048, 512, 64, &e);
    if (!p) {
        fprintf(stderr, "plot_tool: %s\n", e.msg);
        return 1;
    }
    int frames = mel_frames(p, WINDOW);
    float *db = xmalloc((size_t)n_in * 64 * frames * sizeof *db);
    float *x = xmalloc(WINDOW * sizeof *x);
    for (int i = 0; i < n_in; i++) {
        uint8_t *data;
        size_t len;
        if (common_read_file(in[i], &data, &len, &e) < 0) {
            fprintf(stderr, "plot_tool: %s: %s\n", in[i], e.msg);
            return 1;
        }
        size_t n = len / sizeof(float);
        memset(x, 0, WINDOW * sizeof *x);
        memcpy(x, data, (n < WINDOW ? n : WINDOW) * sizeof *x);
        free(data);
        mel_compute(p, x, WINDOW, db + (size_t)i * 64 * frames);
    }
    int rc = plot_mel_png(out, db, n_in, 64, frames, 22050, 512, title, &e);
    if (rc < 0) fprintf(stderr, "plot_tool: %s: %s\n", out, e.msg);
    free(x);
    free(db);
    mel_plan_free(p);
    return rc < 0 ? 1 : 0;
}

static int confusion(const char *out)
{
    static const char *const labels[10] = {"blues", "classical", "country", "disco",
                                           "hip-hop", "jazz",      "metal",   "pop",
                                           "reggae", "rock & roll <live>"};
    int counts[100];
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) /* a strong diagonal, some confusion with neighbours */
            counts[i * 10 + j] = i == j ? 20 + i : (abs(i - j) == 1 ? (i + j) % 4 : 0);
    counts[9 * 10 + 6] = 7; /* rock taken for metal */
    ErrMsg e = {{0}};
    if (plot_confusion(out, counts, 10, labels, "Confusion (test split)", &e) < 0) {
        fprintf(stderr, "plot_tool: %s: %s\n", out, e.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "mel") == 0) return mel(argv[2], argv[3], argc - 4, argv + 4);
    if (argc == 3 && strcmp(argv[1], "confusion") == 0) return confusion(argv[2]);
    fprintf(stderr, "usage: plot_tool mel OUT.png TITLE IN.f32... | confusion OUT\n");
    return 2;
}
