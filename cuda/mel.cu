/* mel.cu: mel spectrograms of a batch of windows on the GPU, the twin of features/mel.c:
 * framing with zero-pad centring and the periodic Hann window, one batched cuFFT D2Z
 * (n_fft 2048) over every frame of every window, power, the filter bank as one strided
 * batched GEMM (cuBLAS), then dB against each window's max with the -80 dB floor.
 * Double precision up to the dB step, as mel.c, so the two agree far inside 0.01 dB.
 * Not here: decoding, the CNN (cnn.cu takes this file's device output directly).
 * Invariants: the window and the filter bank are uploaded once per plan; buffers and the
 * cuFFT plan grow with the largest batch and are dropped on out-of-memory. Not thread-safe
 * by itself: callers hold the object's lock (cuda_mel_lock). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

static int cu_fail(ErrMsg *e, cudaError_t s, const char *what)
{
    if (s == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        err_set(e, "%s: out of device memory", what);
        return CUDA_EOOM;
    }
    return err_set(e, "%s: %s", what, cudaGetErrorString(s));
}

#define CU(call)                                                                                   \
    do {                                                                                           \
        cudaError_t s_ = (call);                                                                   \
        if (s_ != cudaSuccess) return cu_fail(e, s_, #call);                                       \
    } while (0)
#define FFT(call)                                                                                  \
    do {                                                                                           \
        cufftResult s_ = (call);                                                                   \
        if (s_ != CUFFT_SUCCESS) {                                                                 \
            err_set(e, "%s: cufft status %d", #call, (int)s_);                                     \
            return s_ == CUFFT_ALLOC_FAILED ? CUDA_EOOM : -1;                                      \
        }                                                                                          \
    } while (0)
#define BLAS(call)                                                                                 \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            err_set(e, "%s: cublas status %d", #call, (int)s_);                                    \
            return s_ == CUBLAS_STATUS_ALLOC_FAILED ? CUDA_EOOM : -1;                              \
        }                                                                                          \
    } while (0)

#define AMIN 1e-10
#define TOP_DB 80.0

static int grid_for(long long count)
{
    long long b = (count + 255) / 256;
    return (int)(b > 65535 ? 65535 : (b < 1 ? 1 : b));
}

/* frames (nw * F, n_fft): frame t of window w covers samples t*hop - n_fft/2 + i of x's
 * window w (zero outside [0, ns)), times the Hann window. */
__global__ void frame_kernel(double *frames, const float *x, const double *win, int nw, int ns,
                             int F, int n_fft, int hop)
{
    long long count = (long long)nw * F * n_fft;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < count;
         idx += (long long)gridDim.x * blockDim.x) {
        int i = (int)(idx % n_fft);
        long long r = idx / n_fft;
        int t = (int)(r % F);
        long long w = r / F;
        long long j = (long long)t * hop - n_fft / 2 + i;
        frames[idx] = (j >= 0 && j < ns) ? win[i] * (double)x[w * ns + j] : 0.0;
    }
}

/* power (rows, n_bins) = |spec|^2 */
__global__ void power_kernel(double *power, const cufftDoubleComplex *spec, long long count)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        power[i] = spec[i].x * spec[i].x + spec[i].y * spec[i].y;
}

/* out (nw, per) float dB: one block per window; the max over the window is the reference,
 * clamped to AMIN as librosa's power_to_db does, then the floor 80 dB below the top (which
 * is always 0 dB). */
__global__ void db_kernel(float *out, const double *mel, int per)
{
    __shared__ double red[256];
    const double *s = mel + (long long)blockIdx.x * per;
    double mx = AMIN;
    for (int i = threadIdx.x; i < per; i += blockDim.x) mx = fmax(mx, s[i]);
    red[threadIdx.x] = mx;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o /= 2) {
        if ((int)threadIdx.x < o) red[threadIdx.x] = fmax(red[threadIdx.x], red[threadIdx.x + o]);
        __syncthreads();
    }
    double ref_db = 10.0 * log10(red[0]);
    float *o = out + (long long)blockIdx.x * per;
    for (int i = threadIdx.x; i < per; i += blockDim.x)
        o[i] = (float)fmax(10.0 * log10(fmax(s[i], AMIN)) - ref_db, -TOP_DB);
}

struct CudaMel {
    pthread_mutex_t lock;
    CudaMelDesc d; /* sizes only */
    cudaStream_t stream;
    cublasHandle_t blas;
    double *win; /* (n_fft) */
    double *fb;  /* (n_mels, n_bins) row-major = (n_bins, n_mels) column-major */
    cufftHandle fft;
    int fft_rows; /* batch the plan was made for; 0: none */
    /* batch buffers */
    float *x;          /* (nw, ns) */
    double *frames;    /* (nw * F, n_fft); reused for the power (nw * F, n_bins) */
    cufftDoubleComplex *spec; /* (nw * F, n_bins); reused for the mel power (nw, n_mels, F) */
    float *out;        /* (nw, n_mels, F) */
    size_t x_cap, rows_cap, out_cap;
    float *pinned;
    size_t pinned_cap;
};

static void drop(CudaMel *cm)
{
    cudaStreamSynchronize(cm->stream);
    if (cm->fft_rows) cufftDestroy(cm->fft);
    cm->fft_rows = 0;
    cudaFree(cm->x);
    cudaFree(cm->frames);
    cudaFree(cm->spec);
    cudaFree(cm->out);
    cm->x = cm->out = NULL;
    cm->frames = NULL;
    cm->spec = NULL;
    cm->x_cap = cm->rows_cap = cm->out_cap = 0;
    (void)cudaGetLastError();
}

extern "C" void cuda_mel_free(CudaMel *cm)
{
    if (!cm) return;
    drop(cm);
    cudaFree(cm->win);
    cudaFree(cm->fb);
    cudaFreeHost(cm->pinned);
    if (cm->blas) cublasDestroy(cm->blas);
    if (cm->stream) cudaStreamDestroy(cm->stream);
    pthread_mutex_destroy(&cm->lock);
    free(cm);
}

static int setup(CudaMel *cm, const CudaMelDesc *d, ErrMsg *e)
{
    CU(cudaStreamCreateWithFlags(&cm->stream, cudaStreamNonBlocking));
    BLAS(cublasCreate(&cm->blas));
    BLAS(cublasSetStream(cm->blas, cm->stream));
    CU(cudaMalloc((void **)&cm->win, sizeof(double) * d->n_fft));
    CU(cudaMalloc((void **)&cm->fb, sizeof(double) * d->n_mels * d->n_bins));
    /* on our non-blocking stream, then waited for (see cnn.cu's upload) */
    CU(cudaMemcpyAsync(cm->win, d->window, sizeof(double) * d->n_fft, cudaMemcpyHostToDevice,
                       cm->stream));
    CU(cudaMemcpyAsync(cm->fb, d->fb, sizeof(double) * d->n_mels * d->n_bins,
                       cudaMemcpyHostToDevice, cm->stream));
    CU(cudaStreamSynchronize(cm->stream));
    return 0;
}

extern "C" CudaMel *cuda_mel_create(const CudaMelDesc *d, ErrMsg *e)
{
    if (d->n_bins != d->n_fft / 2 + 1 || d->n_mels < 1 || d->hop < 1) {
        err_set(e, "bad mel sizes");
        return NULL;
    }
    CudaMel *cm = (CudaMel *)calloc(1, sizeof *cm);
    if (!cm) {
        err_set(e, "out of host memory");
        return NULL;
    }
    pthread_mutex_init(&cm->lock, NULL);
    cm->d = *d;
    if (setup(cm, d, e) != 0) {
        cuda_mel_free(cm);
        return NULL;
    }
    return cm;
}

extern "C" void cuda_mel_lock(CudaMel *cm) { pthread_mutex_lock(&cm->lock); }
extern "C" void cuda_mel_unlock(CudaMel *cm) { pthread_mutex_unlock(&cm->lock); }

static int grow(void **p, size_t *cap, size_t bytes, ErrMsg *e)
{
    if (bytes <= *cap) return 0;
    cudaFree(*p);
    *p = NULL;
    *cap = 0;
    CU(cudaMalloc(p, bytes));
    *cap = bytes;
    return 0;
}

static int run(CudaMel *cm, float *out_host, float **out_dev, const float *samples, int nw,
               int ns, ErrMsg *e)
{
    const CudaMelDesc *d = &cm->d;
    int F = 1 + ns / d->hop, n_fft = d->n_fft, nb = d->n_bins;
    long long rows = (long long)nw * F;
    if (rows > (1LL << 31) - 1) return err_set(e, "mel batch too large");
    size_t per = (size_t)d->n_mels * F;
    int rc;
    if ((rc = grow((void **)&cm->x, &cm->x_cap, sizeof(float) * nw * (size_t)ns, e))) return rc;
    if ((size_t)rows > cm->rows_cap) {
        cudaFree(cm->frames);
        cudaFree(cm->spec);
        cm->frames = NULL;
        cm->spec = NULL;
        cm->rows_cap = 0;
        CU(cudaMalloc((void **)&cm->frames, sizeof(double) * rows * n_fft));
        CU(cudaMalloc((void **)&cm->spec, sizeof(cufftDoubleComplex) * rows * nb));
        cm->rows_cap = (size_t)rows;
    }
    if ((rc = grow((void **)&cm->out, &cm->out_cap, sizeof(float) * nw * per, e))) return rc;
    if (cm->fft_rows != rows) {
        if (cm->fft_rows) cufftDestroy(cm->fft);
        cm->fft_rows = 0;
        int n[1] = {n_fft};
        /* rows transforms of n_fft reals each, back to back, into n_bins complex each */
        FFT(cufftPlanMany(&cm->fft, 1, n, NULL, 1, n_fft, NULL, 1, nb, CUFFT_D2Z, (int)rows));
        cm->fft_rows = (int)rows;
        FFT(cufftSetStream(cm->fft, cm->stream));
    }
    size_t in_bytes = sizeof(float) * nw * (size_t)ns;
    size_t host_need = in_bytes > sizeof(float) * nw * per ? in_bytes : sizeof(float) * nw * per;
    if (host_need > cm->pinned_cap) {
        cudaFreeHost(cm->pinned);
        cm->pinned = NULL;
        cm->pinned_cap = 0;
        CU(cudaMallocHost((void **)&cm->pinned, host_need));
        cm->pinned_cap = host_need;
    }
    memcpy(cm->pinned, samples, in_bytes);
    CU(cudaMemcpyAsync(cm->x, cm->pinned, in_bytes, cudaMemcpyHostToDevice, cm->stream));
    long long nf = rows * n_fft;
    frame_kernel<<<grid_for(nf), 256, 0, cm->stream>>>(cm->frames, cm->x, cm->win, nw, ns, F,
                                                         n_fft, d->hop);
    CU(cudaGetLastError());
    FFT(cufftExecD2Z(cm->fft, cm->frames, cm->spec));
    double *power = cm->frames; /* the frames are consumed */
    power_kernel<<<grid_for(rows * nb), 256, 0, cm->stream>>>(power, cm->spec, rows * nb);
    CU(cudaGetLastError());
    /* per window w: mel (n_mels, F) row-major = fb (n_mels, nb) @ power_w^T (nb, F).
     * Column-major: C (F, n_mels) = A^T B with A = power_w seen as (nb, F), B = fb seen as
     * (nb, n_mels); C's column-major (F, n_mels) is row-major (n_mels, F). */
    double *mel = (double *)cm->spec; /* the spectrum is consumed */
    const double one = 1.0, zero = 0.0;
    BLAS(cublasDgemmStridedBatched(cm->blas, CUBLAS_OP_T, CUBLAS_OP_N, F, d->n_mels, nb, &one,
                                   power, nb, (long long)F * nb, cm->fb, nb, 0, &zero, mel, F,
                                   (long long)per, nw));
    db_kernel<<<nw, 256, 0, cm->stream>>>(cm->out, mel, (int)per);
    CU(cudaGetLastError());
    if (out_host) {
        CU(cudaMemcpyAsync(cm->pinned, cm->out, sizeof(float) * nw * per, cudaMemcpyDeviceToHost,
                           cm->stream));
    }
    CU(cudaStreamSynchronize(cm->stream));
    if (out_host) memcpy(out_host, cm->pinned, sizeof(float) * nw * per);
    if (out_dev) *out_dev = cm->out;
    return 0;
}

extern "C" int cuda_mel_run(CudaMel *cm, float *out_host, float **out_dev, const float *samples,
                            int n_windows, int n_samples, ErrMsg *e)
{
    int rc = run(cm, out_host, out_dev, samples, n_windows, n_samples, e);
    if (rc == CUDA_EOOM) drop(cm);
    return rc;
}
