/* mel_tool: test helper that runs features/mel on a raw float32 file.
 *   mel_tool db|power IN.f32 OUT.f32
 * computes one spectrogram of all of IN (no windowing) with the shipped parameters (22050 Hz,
 * n_fft 2048, hop 512, 64 mels) and writes it as raw float32, (64, 1 + n / 512) row-major.
 * Not a user tool: `genred mel` is. */
#include "mel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "db") != 0 && strcmp(argv[1], "power") != 0)) {
        fprintf(stderr, "usage: mel_tool db|power IN.f32 OUT.f32\n");
        return 2;
    }
    ErrMsg e = {{0}};
    uint8_t *data;
    size_t len;
    if (common_read_file(argv[2], &data, &len, &e) < 0) {
        fprintf(stderr, "mel_tool: %s: %s\n", argv[2], e.msg);
        return 1;
    }
    int n = (int)(len / sizeof(float));
    if (n < 1) {
        fprintf(stderr, "mel_tool: %s: no samples\n", argv[2]);
        return 1;
    }
    float *x = xmalloc((size_t)n * sizeof *x);
    memcpy(x, data, (size_t)n * sizeof *x); /* data is only byte-aligned in principle */
    free(data);
    MelPlan *p = mel_plan_create(22050, 2048, 512, 64, &e);
    if (!p) {
        fprintf(stderr, "mel_tool: %s\n", e.msg);
        return 1;
    }
    size_t count = (size_t)mel_n_mels(p) * mel_frames(p, n);
    float *out = xmalloc(count * sizeof *out);
    if (argv[1][0] == 'd')
        mel_compute(p, x, n, out);
    else
        mel_compute_power(p, x, n, out);
    int rc = 0;
    if (common_write_atomic(argv[3], out, count * sizeof *out, &e) < 0) {
        fprintf(stderr, "mel_tool: %s: %s\n", argv[3], e.msg);
        rc = 1;
    }
    free(out);
    free(x);
    mel_plan_free(p);
    return rc;
}
