/* test_mel_api: features/mel checks that need no reference implementation: argument
 * validation, frame counts, power_to_db's edge cases (silence, values below amin, the 80 dB
 * floor) and that a pure tone lands in the mel band whose centre is nearest to it.
 * The numeric parity with the float64 reference is mel_parity.py's job. */
#include "mel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_bad_args(void)
{
    ErrMsg e = {{0}};
    CHECK(mel_plan_create(0, 2048, 512, 64, &e) == NULL && e.msg[0], "sample rate 0 accepted");
    e.msg[0] = 0;
    CHECK(mel_plan_create(22050, 1, 512, 64, &e) == NULL && e.msg[0], "n_fft 1 accepted");
    e.msg[0] = 0;
    CHECK(mel_plan_create(22050, 2048, 0, 64, &e) == NULL && e.msg[0], "hop 0 accepted");
    e.msg[0] = 0;
    CHECK(mel_plan_create(22050, 2048, 512, 0, &e) == NULL && e.msg[0], "n_mels 0 accepted");
    CHECK(mel_plan_create(-1, 2048, 512, 64, NULL) == NULL, "bad args with no ErrMsg");
}

static void test_frames(const MelPlan *p)
{
    CHECK(mel_n_mels(p) == 64, "n_mels %d", mel_n_mels(p));
    CHECK(mel_frames(p, 88200) == 173, "88200 -> %d frames", mel_frames(p, 88200));
    CHECK(mel_frames(p, 1) == 1, "1 -> %d", mel_frames(p, 1));
    CHECK(mel_frames(p, 511) == 1, "511 -> %d", mel_frames(p, 511));
    CHECK(mel_frames(p, 512) == 2, "512 -> %d", mel_frames(p, 512));
    CHECK(mel_frames(p, 1000) == 2, "1000 -> %d", mel_frames(p, 1000));
    CHECK(mel_frames(p, 512 * 7) == 8, "3584 -> %d", mel_frames(p, 512 * 7));
}

static void test_power_to_db(void)
{
    float zeros[5] = {0};
    mel_power_to_db(zeros, 5);
    for (int i = 0; i < 5; i++) CHECK(zeros[i] == 0.0f, "silence -> %g dB, want 0", zeros[i]);

    /* every value below amin: ref clamps to amin as well, so librosa gives 0 dB */
    float tiny[3] = {1e-12f, 0.0f, 1e-11f};
    mel_power_to_db(tiny, 3);
    for (int i = 0; i < 3; i++) CHECK(tiny[i] == 0.0f, "below amin -> %g dB, want 0", tiny[i]);

    float s[5] = {1.0f, 1e-3f, 1e-8f, 1e-12f, 0.0f};
    float want[5] = {0.0f, -30.0f, -80.0f, -80.0f, -80.0f};
    mel_power_to_db(s, 5);
    for (int i = 0; i < 5; i++)
        CHECK(fabsf(s[i] - want[i]) < 1e-4f, "s[%d] -> %g dB, want %g", i, s[i], want[i]);

    float big[2] = {4e6f, 4e2f}; /* the reference is the max, not 1 */
    mel_power_to_db(big, 2);
    CHECK(big[0] == 0.0f && fabsf(big[1] + 40.0f) < 1e-4f, "max ref: %g %g", big[0], big[1]);
}

/* Slaney mel, only to find which band centre is nearest a frequency. */
static double hz_to_mel(double hz)
{
    return hz < 1000.0 ? hz * 3.0 / 200.0 : 15.0 + log(hz / 1000.0) / (log(6.4) / 27.0);
}

static void test_tone(const MelPlan *p, double hz)
{
    int n = 22050, frames = mel_frames(p, n);
    float *x = xmalloc((size_t)n * sizeof *x);
    for (int i = 0; i < n; i++) x[i] = (float)(0.5 * sin(2.0 * M_PI * hz * i / 22050.0));
    float *db = xmalloc((size_t)64 * frames * sizeof *db);
    mel_compute(p, x, n, db);

    double step = hz_to_mel(11025.0) / 65.0; /* band m is centred on mel (m + 1) * step */
    int want = (int)lround(hz_to_mel(hz) / step) - 1;
    float top = -1000.0f, bottom = 1000.0f;
    for (int t = 4; t < frames - 4; t++) { /* away from the zero-padded edges */
        int best = 0;
        for (int m = 1; m < 64; m++)
            if (db[m * frames + t] > db[best * frames + t]) best = m;
        CHECK(abs(best - want) <= 1, "%g Hz frame %d: loudest band %d, want %d", hz, t, best,
              want);
    }
    for (int i = 0; i < 64 * frames; i++) {
        if (db[i] > top) top = db[i];
        if (db[i] < bottom) bottom = db[i];
    }
    CHECK(top == 0.0f, "%g Hz: max %g dB, want 0", hz, top);
    CHECK(bottom >= -80.0f, "%g Hz: min %g dB below the floor", hz, bottom);

    /* power: the zero-padded first frame holds about half the energy of a full one */
    float *pw = xmalloc((size_t)64 * frames * sizeof *pw);
    mel_compute_power(p, x, n, pw);
    double e0 = 0, emid = 0;
    for (int m = 0; m < 64; m++) {
        e0 += pw[m * frames];
        emid += pw[m * frames + frames / 2];
    }
    CHECK(e0 > 0.2 * emid && e0 < 0.8 * emid, "%g Hz: edge/middle energy %g", hz, e0 / emid);
    free(pw);
    free(db);
    free(x);
}

static void test_silence(const MelPlan *p)
{
    int n = 88200, frames = mel_frames(p, n);
    float *x = xcalloc((size_t)n, sizeof *x);
    float *out = xmalloc((size_t)64 * frames * sizeof *out);
    mel_compute_power(p, x, n, out);
    for (int i = 0; i < 64 * frames; i++) CHECK(out[i] == 0.0f, "silence power %g", out[i]);
    mel_compute(p, x, n, out);
    for (int i = 0; i < 64 * frames; i++) CHECK(out[i] == 0.0f, "silence %g dB", out[i]);
    free(out);
    free(x);
}

int main(void)
{
    ErrMsg e = {{0}};
    test_bad_args();
    MelPlan *p = mel_plan_create(22050, 2048, 512, 64, &e);
    if (!p) {
        fprintf(stderr, "mel_plan_create: %s\n", e.msg);
        return 1;
    }
    test_frames(p);
    test_power_to_db();
    test_tone(p, 440.0);
    test_tone(p, 1000.0);
    test_tone(p, 4000.0);
    test_silence(p);
    mel_plan_free(p);
    mel_plan_free(NULL);
    printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
