/* decode_dump: test helper. Writes the samples decode_windows gives for FILE (the DESIGN.md
 * defaults, as `genred mel` uses without a model) to OUT as raw float32, window after window,
 * and prints "n_windows window_len track_samples decoded_samples" on stdout, so a test can
 * feed the very same samples to the numpy reference. Not installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "--whole") == 0)) {
        fprintf(stderr, "usage: decode_dump FILE OUT.f32 [--whole]\n");
        return 2;
    }
    DecodeOptions o = decode_default_options();
    if (argc == 4) o.short_policy = DECODE_SHORT_WHOLE;
    DecodeWindows w;
    memset(&w, 0, sizeof w);
    ErrMsg e = {{0}};
    if (decode_windows(argv[1], &o, &w, &e) != 0) {
        fprintf(stderr, "decode_dump: %s: %s\n", argv[1], e.msg);
        return 1;
    }
    size_t n = (size_t)w.n_windows * (size_t)w.window_len;
    if (common_write_atomic(argv[2], w.samples, n * sizeof(float), &e) != 0) {
        fprintf(stderr, "decode_dump: %s: %s\n", argv[2], e.msg);
        decode_windows_free(&w);
        return 1;
    }
    printf("%d %d %lld %lld\n", w.n_windows, w.window_len, (long long)w.track_samples,
           (long long)w.decoded_samples);
    decode_windows_free(&w);
    return 0;
}
