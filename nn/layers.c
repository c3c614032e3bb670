/* layers: forward/backward pairs of every layer the nn module uses, on the CPU (llm.c style).
 * Not a network: no allocation here, callers pass outputs, inputs, scratch and sizes.
 * Backward adds into parameter gradients and assigns activation gradients. NCHW throughout.
 * Thread-safe: no state besides the caller's buffers (sgemm may use OpenBLAS threads). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "nn_internal.h"

/* col (C*9, Ho*Wo) from one image (C, H, W), 3x3 kernel, stride 1, zero padding pad. */
static void im2col3(float *col, const float *in, int C, int H, int W, int pad)
{
    int ho = H + 2 * pad - 2, wo = W + 2 * pad - 2;
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < 3; ky++) {
            for (int kx = 0; kx < 3; kx++) {
                float *row = col + ((int64_t)(c * 9 + ky * 3 + kx)) * ho * wo;
                /* valid output columns: 0 <= ox + kx - pad < W */
                int x0 = pad - kx > 0 ? pad - kx : 0;
                int x1 = W + pad - kx < wo ? W + pad - kx : wo;
                for (int oy = 0; oy < ho; oy++) {
                    float *r = row + (int64_t)oy * wo;
                    int iy = oy + ky - pad;
                    if (iy < 0 || iy >= H || x1 <= x0) {
                        memset(r, 0, sizeof(float) * wo);
                        continue;
                    }
                    if (x0 > 0) memset(r, 0, sizeof(float) * x0);
                    memcpy(r + x0, in + ((int64_t)c * H + iy) * W + (x0 + kx - pad),
                           sizeof(float) * (x1 - x0));
                    if (x1 < wo) memset(r + x1, 0, sizeof(float) * (wo - x1));
                }
            }
        }
    }
}

/* The adjoint of im2col3: adds col back into din (C, H, W), which it first clears. */
static void col2im3(float *din, const float *col, int C, int H, int W, int pad)
{
    int ho = H + 2 * pad - 2, wo = W + 2 * pad - 2;
    memset(din, 0, sizeof(float) * (int64_t)C * H * W);
    for (int c = 0; c < C; c++) {
        for (int ky = 0; ky < 3; ky++) {
            for (int kx = 0; kx < 3; kx++) {
                const float *row = col + ((int64_t)(c * 9 + ky * 3 + kx)) * ho * wo;
                int x0 = pad - kx > 0 ? pad - kx : 0;
                int x1 = W + pad - kx < wo ? W + pad - kx : wo;
                for (int oy = 0; oy < ho; oy++) {
                    int iy = oy + ky - pad;
                    if (iy < 0 || iy >= H) continue;
                    const float *r = row + (int64_t)oy * wo;
                    float *d = din + ((int64_t)c * H + iy) * W + (kx - pad);
                    for (int ox = x0; ox < x1; ox++) d[ox] += r[ox];
                }
            }
        }
    }
}

void nn_conv2d_forward(float *out, float *col, const float *in, const float *w, const float *b,
                       int N, int C, int H, int W, int OC, int pad)
{
    int ho = H + 2 * pad - 2, wo = W + 2 * pad - 2;
    int64_t hw = (int64_t)ho * wo;
    for (int n = 0; n < N; n++) {
        float *o = out + (int64_t)n * OC * hw;
        im2col3(col, in + (int64_t)n * C * H * W, C, H, W, pad);
        for (int oc = 0; oc < OC; oc++) {
            float *p = o + oc * hw;
            for (int64_t i = 0; i < hw; i++) p[i] = b[oc];
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)hw, C * 9, 1.0f, w,
                    C * 9, col, (int)hw, 1.0f, o, (int)hw);
    }
}

void nn_conv2d_backward(float *din, float *dw, float *db, float *col, float *dcol,
                        const float *dout, const float *in, const float *w,
                        int N, int C, int H, int W, int OC, int pad)
{
    int ho = H + 2 * pad - 2, wo = W + 2 * pad - 2;
    int64_t hw = (int64_t)ho * wo;
    for (int n = 0; n < N; n++) {
        const float *d = dout + (int64_t)n * OC * hw;
        for (int oc = 0; oc < OC; oc++) {
            const float *p = d + oc * hw;
            float s = 0.0f;
            for (int64_t i = 0; i < hw; i++) s += p[i];
            db[oc] += s;
        }
        im2col3(col, in + (int64_t)n * C * H * W, C, H, W, pad);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C * 9, (int)hw, 1.0f, d,
                    (int)hw, col, (int)hw, 1.0f, dw, C * 9);
        if (din) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C * 9, (int)hw, OC, 1.0f, w,
                        C * 9, d, (int)hw, 0.0f, dcol, (int)hw);
            col2im3(din + (int64_t)n * C * H * W, dcol, C, H, W, pad);
        }
    }
}

void nn_relu_forward(float *out, const float *in, int64_t count)
{
    for (int64_t i = 0; i < count; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void nn_relu_backward(float *din, const float *dout, const float *out, int64_t count)
{
    for (int64_t i = 0; i < count; i++) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

void nn_maxpool_forward(float *out, int32_t *idx, const float *in, int NC, int H, int W)
{
    int ho = H / 2, wo = W / 2;
    for (int p = 0; p < NC; p++) {
        const float *x = in + (int64_t)p * H * W;
        float *o = out + (int64_t)p * ho * wo;
        int32_t *ix = idx + (int64_t)p * ho * wo;
        for (int oy = 0; oy < ho; oy++) {
            const float *r0 = x + 2 * oy * W, *r1 = r0 + W;
            int32_t base = 2 * oy * W;
            for (int ox = 0; ox < wo; ox++) {
                /* the first maximum in row-major order wins, as in PyTorch */
                float bv = r0[2 * ox];
                int32_t bi = base + 2 * ox;
                if (r0[2 * ox + 1] > bv) bv = r0[2 * ox + 1], bi = base + 2 * ox + 1;
                if (r1[2 * ox] > bv) bv = r1[2 * ox], bi = base + W + 2 * ox;
                if (r1[2 * ox + 1] > bv) bv = r1[2 * ox + 1], bi = base + W + 2 * ox + 1;
                o[oy * wo + ox] = bv;
                ix[oy * wo + ox] = bi;
            }
        }
    }
}

void nn_maxpool_backward(float *din, const float *dout, const int32_t *idx, int NC, int H, int W)
{
    int64_t hw = (int64_t)(H / 2) * (W / 2);
    memset(din, 0, sizeof(float) * (int64_t)NC * H * W);
    for (int p = 0; p < NC; p++) {
        float *d = din + (int64_t)p * H * W;
        for (int64_t i = 0; i < hw; i++) d[idx[p * hw + i]] += dout[p * hw + i];
    }
}

void nn_batchnorm_eval(float *out, const float *in, const float *g, const float *b,
                       const float *rm, const float *rv, float eps, int N, int C, int HW)
{
    for (int c = 0; c < C; c++) {
        float s = g[c] / sqrtf(rv[c] + eps);
        float t = b[c] - rm[c] * s;
        for (int n = 0; n < N; n++) {
            const float *x = in + ((int64_t)n * C + c) * HW;
            float *o = out + ((int64_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) o[i] = x[i] * s + t;
        }
    }
}

void nn_batchnorm_forward(float *out, float *mean, float *invstd, const float *in,
                          const float *g, const float *b, float *rm, float *rv, float eps,
                          float momentum, int N, int C, int HW)
{
    int64_t cnt = (int64_t)N * HW;
    for (int c = 0; c < C; c++) {
        /* two passes in double: the batch can hold ~10^5 values per channel */
        double s = 0.0;
        for (int n = 0; n < N; n++) {
            const float *x = in + ((int64_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) s += x[i];
        }
        double mu = s / (double)cnt, ss = 0.0;
        for (int n = 0; n < N; n++) {
            const float *x = in + ((int64_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) ss += ((double)x[i] - mu) * ((double)x[i] - mu);
        }
        double var = ss / (double)cnt;
        float is = (float)(1.0 / sqrt(var + (double)eps));
        mean[c] = (float)mu;
        invstd[c] = is;
        for (int n = 0; n < N; n++) {
            const float *x = in + ((int64_t)n * C + c) * HW;
            float *o = out + ((int64_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) o[i] = (x[i] - (float)mu) * is * g[c] + b[c];
        }
        double unbiased = cnt > 1 ? ss / (double)(cnt - 1) : var;
        rm[c] = (1.0f - momentum) * rm[c] + momentum * (float)mu;
        rv[c] = (1.0f - momentum) * rv[c] + momentum * (float)unbiased;
    }
}

void nn_batchnorm_backward(float *din, float *dg, float *db, const float *dout, const float *in,
                           const float *mean, const float *invstd, const float *g,
                           int N, int C, int HW)
{
    int64_t cnt = (int64_t)N * HW;
    for (int c = 0; c < C; c++) {
        double sd = 0.0, sdx = 0.0; /* sum dout, sum dout * xhat */
        for (int n = 0; n < N; n++) {
            const float *x = in + ((int64_t)n * C + c) * HW;
            const float *d = dout + ((int64_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                sd += d[i];
                sdx += (double)d[i] * ((x[i] - mean[c]) * invstd[c]);
            }
        }
        dg[c] += (float)sdx;
        db[c] += (float)sd;
        if (!din) continue;
        /* din = g * invstd * (dout - mean(dout) - xhat * mean(dout * xhat)) */
        float k = g[c] * invstd[c];
        float md = (float)(sd / (double)cnt), mdx = (float)(sdx / (double)cnt);
        for (int n = 0; n < N; n++) {
            const float *x = in + ((int64_t)n * C + c) * HW;
            const float *d = dout + ((int64_t)n * C + c) * HW;
            float *o = din + ((int64_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                float xh = (x[i] - mean[c]) * invstd[c];
                o[i] = k * (d[i] - md - xh * mdx);
            }
        }
    }
}

void nn_gap_forward(float *out, const float *in, int N, int C, int HW)
{
    for (int64_t p = 0; p < (int64_t)N * C; p++) {
        double s = 0.0;
        for (int i = 0; i < HW; i++) s += in[p * HW + i];
        out[p] = (float)(s / HW);
    }
}

void nn_gap_backward(float *din, const float *dout, int N, int C, int HW)
{
    for (int64_t p = 0; p < (int64_t)N * C; p++) {
        float v = dout[p] / (float)HW;
        for (int i = 0; i < HW; i++) din[p * HW + i] = v;
    }
}

void nn_dense_forward(float *out, const float *in, const float *w, const float *b,
                      int N, int ID, int OD)
{
    for (int n = 0; n < N; n++) memcpy(out + (int64_t)n * OD, b, sizeof(float) * OD);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OD, ID, 1.0f, in, ID, w, ID, 1.0f, out,
                OD);
}

void nn_dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                       const float *w, int N, int ID, int OD)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OD; o++) db[o] += dout[(int64_t)n * OD + o];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OD, ID, N, 1.0f, dout, OD, in, ID, 1.0f,
                dw, ID);
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, ID, OD, 1.0f, dout, OD, w, ID,
                    0.0f, din, ID);
}

void nn_dropout_forward(float *out, float *mask, const float *in, int64_t count, float p,
                        uint64_t *rng)
{
    float keep = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < count; i++) {
        mask[i] = nn_rng_uniform(rng) < p ? 0.0f : keep;
        out[i] = in[i] * mask[i];
    }
}

void nn_dropout_backward(float *din, const float *dout, const float *mask, int64_t count)
{
    for (int64_t i = 0; i < count; i++) din[i] = dout[i] * mask[i];
}

void nn_softmax(float *x, int N, int L)
{
    for (int n = 0; n < N; n++) {
        float *r = x + (int64_t)n * L;
        float mx = r[0];
        for (int k = 1; k < L; k++) mx = r[k] > mx ? r[k] : mx;
        float s = 0.0f;
        for (int k = 0; k < L; k++) {
            r[k] = expf(r[k] - mx);
            s += r[k];
        }
        for (int k = 0; k < L; k++) r[k] /= s;
    }
}

float nn_softmax_xent(float *dlogits, const float *logits, const float *targets, int N, int L)
{
    double loss = 0.0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (int64_t)n * L;
        const float *t = targets + (int64_t)n * L;
        float *d = dlogits + (int64_t)n * L;
        float mx = z[0];
        for (int k = 1; k < L; k++) mx = z[k] > mx ? z[k] : mx;
        double s = 0.0;
        for (int k = 0; k < L; k++) s += exp((double)(z[k] - mx));
        double lse = log(s) + mx;
        for (int k = 0; k < L; k++) {
            double logp = (double)z[k] - lse;
            loss -= (double)t[k] * logp;
            d[k] = (float)((exp(logp) - (double)t[k]) / N);
        }
    }
    return (float)(loss / N);
}

uint64_t nn_rng_next(uint64_t *s)
{ /* splitmix64: tiny, good enough for init and dropout, and the same on every platform */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float nn_rng_uniform(uint64_t *s)
{
    return (float)(nn_rng_next(s) >> 40) * (1.0f / 16777216.0f);
}

float nn_rng_normal(uint64_t *s)
{
    double u1 = ((double)(nn_rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(nn_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
