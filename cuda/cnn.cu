/* cnn.cu: the genre CNN on the GPU: inference (cuDNN convolution, pooling and softmax,
 * cuBLAS for the dense layers, small kernels for input scaling, batch norm (eval), ReLU,
 * global average pooling and bias) and one training step's forward + backward (batch-norm
 * batch statistics, cuDNN backward data/filter/bias and pooling backward, cuBLAS dense
 * backward, cross-entropy). The CPU twin is nn/net.c: same layer order, ReLU after the pool
 * there too, batch norm and cross-entropy reductions in double as there, so results agree to
 * rounding. Not here: the optimizer step (net.c, on the host), mel (mel.cu).
 * Invariants: weights are uploaded once (create/upload), batch buffers grow to the largest
 * batch seen and are freed when the device runs out of memory; the convolution algorithm is
 * chosen once per (batch, width) and cached; FMA maths only (no TF32), so that the parity
 * target of 1e-4 on probabilities holds. Every status is checked; nothing throws or exits.
 * Threads: one mutex per net serialises forward and upload. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define PLAN_CACHE 8

/* ---------------------------------------------------------------- status -> ErrMsg */

static int cu_fail(ErrMsg *e, cudaError_t s, const char *what)
{
    if (s == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError(); /* not sticky: clear it so a smaller batch may run */
        err_set(e, "%s: out of device memory", what);
        return CUDA_EOOM;
    }
    return err_set(e, "%s: %s", what, cudaGetErrorString(s));
}

static int dnn_fail(ErrMsg *e, cudnnStatus_t s, const char *what)
{
    err_set(e, "%s: %s", what, cudnnGetErrorString(s));
    return s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED ? CUDA_EOOM : -1;
}

static int blas_fail(ErrMsg *e, cublasStatus_t s, const char *what)
{
    err_set(e, "%s: cublas status %d", what, (int)s);
    return s == CUBLAS_STATUS_ALLOC_FAILED ? CUDA_EOOM : -1;
}

#define CU(call)                                                                                   \
    do {                                                                                           \
        cudaError_t s_ = (call);                                                                   \
        if (s_ != cudaSuccess) return cu_fail(e, s_, #call);                                       \
    } while (0)
#define DNN(call)                                                                                  \
    do {                                                                                           \
        cudnnStatus_t s_ = (call);                                                                 \
        if (s_ != CUDNN_STATUS_SUCCESS) return dnn_fail(e, s_, #call);                             \
    } while (0)
#define BLAS(call)                                                                                 \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) return blas_fail(e, s_, #call);                           \
    } while (0)
#define LAUNCHED(what) CU(cudaGetLastError())

/* ---------------------------------------------------------------- kernels (llm.c order:
 * outputs, inputs, sizes) */

static int grid_for(long long count) /* one thread per element, grid-stride beyond */
{
    long long b = (count + 255) / 256;
    return (int)(b > 65535 ? 65535 : (b < 1 ? 1 : b));
}

/* out = (in + shift) * scale: the model's input scaling of mel dB. */
__global__ void scale_shift_kernel(float *out, const float *in, long long count, float shift,
                                   float scale)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        out[i] = (in[i] + shift) * scale;
}

/* Batch norm in eval mode folded into y = x * mul[c] + add[c], in place over (N, C, HW);
 * relu_before: y = max(x, 0) * mul + add (seed-cnn's pool -> ReLU -> BN). */
__global__ void channel_affine_kernel(float *x, long long count, int C, int HW,
                                      const float *mul, const float *add, int relu_before)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x) {
        int c = (int)((i / HW) % C);
        float v = x[i];
        if (relu_before) v = fmaxf(v, 0.0f);
        x[i] = v * mul[c] + add[c];
    }
}

__global__ void relu_kernel(float *x, long long count)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        x[i] = fmaxf(x[i], 0.0f);
}

/* out (NC) = mean over HW of in (NC, HW); one warp per plane. */
__global__ void gap_kernel(float *out, const float *in, int NC, int HW)
{
    int plane = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (plane >= NC) return;
    const float *p = in + (long long)plane * HW;
    float s = 0.0f;
    for (int i = lane; i < HW; i += 32) s += p[i];
    for (int o = 16; o > 0; o /= 2) s += __shfl_down_sync(0xffffffffu, s, o);
    if (lane == 0) out[plane] = s / (float)HW;
}

/* out (N, O) += b (O), then ReLU when asked. */
__global__ void bias_act_kernel(float *out, const float *b, int N, int O, int relu)
{
    long long count = (long long)N * O;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x) {
        float v = out[i] + b[i % O];
        out[i] = relu ? fmaxf(v, 0.0f) : v;
    }
}

/* ---------------------------------------------------------------- the net */

typedef struct ShapePlan {
    int n, frames; /* n == 0: empty slot */
    cudnnConvolutionFwdAlgo_t algo[CUDA_MAX_BLOCKS];
    size_t ws[CUDA_MAX_BLOCKS];
} ShapePlan;

struct CudaNet {
    pthread_mutex_t lock;
    CudaNetDesc d; /* sizes only: its host pointers are not kept valid */
    cudaStream_t stream;
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    cudnnFilterDescriptor_t wdesc[CUDA_MAX_BLOCKS];
    cudnnConvolutionDescriptor_t cdesc[CUDA_MAX_BLOCKS];
    cudnnTensorDescriptor_t bdesc[CUDA_MAX_BLOCKS]; /* (1, cout, 1, 1) conv bias */
    cudnnTensorDescriptor_t xdesc, ydesc, pdesc, ldesc;
    cudnnPoolingDescriptor_t pool;
    /* weights: one allocation; per block w, b, bn mul, bn add; per dense w, b */
    float *params;
    size_t n_params;
    float *w[CUDA_MAX_BLOCKS], *b[CUDA_MAX_BLOCKS], *mul[CUDA_MAX_BLOCKS], *add[CUDA_MAX_BLOCKS];
    float *g[CUDA_MAX_BLOCKS], *beta[CUDA_MAX_BLOCKS]; /* raw BN affine, for training */
    float *dw[CUDA_MAX_DENSE], *db[CUDA_MAX_DENSE];
    /* batch buffers: one allocation of cap floats, carved per call */
    float *buf;
    size_t buf_cap;
    void *ws;
    size_t ws_cap;
    float *pinned; /* host staging for inputs and probabilities */
    size_t pinned_cap;
    ShapePlan plans[PLAN_CACHE];
    int next_plan;
};

static size_t param_count(const CudaNetDesc *d)
{
    size_t n = 0;
    for (int i = 0; i < d->n_blocks; i++)
        n += (size_t)d->blocks[i].cout * d->blocks[i].cin * 9 + 5 * (size_t)d->blocks[i].cout;
    for (int i = 0; i < d->n_dense; i++)
        n += (size_t)d->dense[i].out * d->dense[i].in + d->dense[i].out;
    return n;
}

/* Lays the weights out on the host as on the device (BN folded to mul/add exactly as the
 * CPU's nn_batchnorm_eval folds them), then one copy. */
static int upload(CudaNet *net, const CudaNetDesc *d, ErrMsg *e)
{
    float *h = (float *)malloc(sizeof(float) * net->n_params);
    if (!h) return err_set(e, "out of host memory for the weights");
    size_t off = 0;
    for (int i = 0; i < d->n_blocks; i++) {
        const CudaBlockDesc *bl = &d->blocks[i];
        size_t nw = (size_t)bl->cout * bl->cin * 9;
        memcpy(h + off, bl->w, sizeof(float) * nw);
        net->w[i] = net->params + off;
        off += nw;
        memcpy(h + off, bl->b, sizeof(float) * bl->cout);
        net->b[i] = net->params + off;
        off += bl->cout;
        net->mul[i] = net->params + off;
        net->add[i] = net->params + off + bl->cout;
        for (int c = 0; c < bl->cout; c++) { /* as nn_batchnorm_eval, in float */
            float sc = bl->g[c] / sqrtf(bl->rv[c] + d->bn_eps);
            h[off + c] = sc;
            h[off + bl->cout + c] = bl->beta[c] - bl->rm[c] * sc;
        }
        off += 2 * (size_t)bl->cout;
        memcpy(h + off, bl->g, sizeof(float) * bl->cout);
        net->g[i] = net->params + off;
        off += bl->cout;
        memcpy(h + off, bl->beta, sizeof(float) * bl->cout);
        net->beta[i] = net->params + off;
        off += bl->cout;
    }
    for (int i = 0; i < d->n_dense; i++) {
        const CudaDenseDesc *dd = &d->dense[i];
        size_t nw = (size_t)dd->out * dd->in;
        memcpy(h + off, dd->w, sizeof(float) * nw);
        net->dw[i] = net->params + off;
        off += nw;
        memcpy(h + off, dd->b, sizeof(float) * dd->out);
        net->db[i] = net->params + off;
        off += dd->out;
    }
    /* on the net's own stream and waited for: a plain cudaMemcpy from pageable memory may
     * return before its DMA lands, and the net's non-blocking stream would not wait for it */
    cudaError_t s = cudaMemcpyAsync(net->params, h, sizeof(float) * off, cudaMemcpyHostToDevice,
                                    net->stream);
    if (s == cudaSuccess) s = cudaStreamSynchronize(net->stream);
    free(h);
    if (s != cudaSuccess) return cu_fail(e, s, "upload weights");
    return 0;
}

static void destroy(CudaNet *net)
{
    for (int i = 0; i < CUDA_MAX_BLOCKS; i++) {
        if (net->wdesc[i]) cudnnDestroyFilterDescriptor(net->wdesc[i]);
        if (net->cdesc[i]) cudnnDestroyConvolutionDescriptor(net->cdesc[i]);
        if (net->bdesc[i]) cudnnDestroyTensorDescriptor(net->bdesc[i]);
    }
    if (net->xdesc) cudnnDestroyTensorDescriptor(net->xdesc);
    if (net->ydesc) cudnnDestroyTensorDescriptor(net->ydesc);
    if (net->pdesc) cudnnDestroyTensorDescriptor(net->pdesc);
    if (net->ldesc) cudnnDestroyTensorDescriptor(net->ldesc);
    if (net->pool) cudnnDestroyPoolingDescriptor(net->pool);
    if (net->dnn) cudnnDestroy(net->dnn);
    if (net->blas) cublasDestroy(net->blas);
    cudaFree(net->params);
    cudaFree(net->buf);
    cudaFree(net->ws);
    cudaFreeHost(net->pinned);
    if (net->stream) cudaStreamDestroy(net->stream);
    pthread_mutex_destroy(&net->lock);
    free(net);
}

static int setup(CudaNet *net, const CudaNetDesc *d, ErrMsg *e)
{
    CU(cudaStreamCreateWithFlags(&net->stream, cudaStreamNonBlocking));
    DNN(cudnnCreate(&net->dnn));
    DNN(cudnnSetStream(net->dnn, net->stream));
    BLAS(cublasCreate(&net->blas));
    BLAS(cublasSetStream(net->blas, net->stream));
    /* plain FP32 (no TF32 tensor cores): parity with the CPU comes first */
    BLAS(cublasSetMathMode(net->blas, CUBLAS_PEDANTIC_MATH));
    for (int i = 0; i < d->n_blocks; i++) {
        const CudaBlockDesc *bl = &d->blocks[i];
        DNN(cudnnCreateFilterDescriptor(&net->wdesc[i]));
        DNN(cudnnSetFilter4dDescriptor(net->wdesc[i], CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                       bl->cout, bl->cin, 3, 3));
        DNN(cudnnCreateConvolutionDescriptor(&net->cdesc[i]));
        /* PyTorch's conv2d is a cross-correlation (no kernel flip) */
        DNN(cudnnSetConvolution2dDescriptor(net->cdesc[i], bl->pad, bl->pad, 1, 1, 1, 1,
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        DNN(cudnnSetConvolutionMathType(net->cdesc[i], CUDNN_FMA_MATH));
        DNN(cudnnCreateTensorDescriptor(&net->bdesc[i]));
        DNN(cudnnSetTensor4dDescriptor(net->bdesc[i], CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                       bl->cout, 1, 1));
    }
    DNN(cudnnCreateTensorDescriptor(&net->xdesc));
    DNN(cudnnCreateTensorDescriptor(&net->ydesc));
    DNN(cudnnCreateTensorDescriptor(&net->pdesc));
    DNN(cudnnCreateTensorDescriptor(&net->ldesc));
    DNN(cudnnCreatePoolingDescriptor(&net->pool));
    /* 2x2, stride 2, no padding: output floor(H/2), as the CPU's floor pooling */
    DNN(cudnnSetPooling2dDescriptor(net->pool, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN, 2, 2,
                                    0, 0, 2, 2));
    net->n_params = param_count(d);
    CU(cudaMalloc((void **)&net->params, sizeof(float) * net->n_params));
    return upload(net, d, e);
}

extern "C" CudaNet *cuda_net_create(const CudaNetDesc *d, ErrMsg *e)
{
    if (d->n_blocks < 1 || d->n_blocks > CUDA_MAX_BLOCKS || d->n_dense < 1 ||
        d->n_dense > CUDA_MAX_DENSE) {
        err_set(e, "unsupported net: %d blocks, %d dense layers", d->n_blocks, d->n_dense);
        return NULL;
    }
    CudaNet *net = (CudaNet *)calloc(1, sizeof *net);
    if (!net) {
        err_set(e, "out of host memory");
        return NULL;
    }
    pthread_mutex_init(&net->lock, NULL);
    net->d = *d;
    if (setup(net, d, e) != 0) {
        destroy(net);
        return NULL;
    }
    return net;
}

extern "C" int cuda_net_upload(CudaNet *net, const CudaNetDesc *d, ErrMsg *e)
{
    pthread_mutex_lock(&net->lock);
    int rc = param_count(d) == net->n_params ? upload(net, d, e)
                                              : err_set(e, "upload: the net's shape changed");
    pthread_mutex_unlock(&net->lock);
    return rc;
}

extern "C" void cuda_net_free(CudaNet *net)
{
    if (!net) return;
    cudaStreamSynchronize(net->stream);
    destroy(net);
}

/* Frees the batch buffers: after an out-of-memory, so that a smaller batch can fit. */
static void drop_buffers(CudaNet *net)
{
    cudaStreamSynchronize(net->stream);
    cudaFree(net->buf);
    cudaFree(net->ws);
    net->buf = NULL;
    net->ws = NULL;
    net->buf_cap = net->ws_cap = 0;
    (void)cudaGetLastError();
}

/* Per-window sizes as net.c's sizes(): the largest activation and the feature width. */
static void sizes(const CudaNetDesc *d, int frames, size_t *max_act, int *feat, int *width)
{
    int h = d->n_mels, w = frames;
    *max_act = (size_t)h * w;
    for (int i = 0; i < d->n_blocks; i++) {
        const CudaBlockDesc *b = &d->blocks[i];
        size_t ho = h + 2 * b->pad - 2, wo = w + 2 * b->pad - 2;
        if (b->cout * ho * wo > *max_act) *max_act = b->cout * ho * wo;
        h = (int)(ho / 2);
        w = (int)(wo / 2);
    }
    int c = d->blocks[d->n_blocks - 1].cout;
    *feat = d->gap ? c : c * h * w;
    *width = *feat;
    for (int i = 0; i < d->n_dense; i++)
        if (d->dense[i].out > *width) *width = d->dense[i].out;
}

/* The cached convolution algorithms for (n, frames), chosen by cuDNN's heuristics among
 * the FMA-only ones on first use. */
static int plan_for(CudaNet *net, int n, int frames, ShapePlan **out, ErrMsg *e)
{
    for (int i = 0; i < PLAN_CACHE; i++) {
        if (net->plans[i].n == n && net->plans[i].frames == frames) {
            *out = &net->plans[i];
            return 0;
        }
    }
    ShapePlan *p = &net->plans[net->next_plan];
    net->next_plan = (net->next_plan + 1) % PLAN_CACHE;
    p->n = 0;
    const CudaNetDesc *d = &net->d;
    int h = d->n_mels, w = frames;
    for (int i = 0; i < d->n_blocks; i++) {
        const CudaBlockDesc *b = &d->blocks[i];
        int ho = h + 2 * b->pad - 2, wo = w + 2 * b->pad - 2;
        DNN(cudnnSetTensor4dDescriptor(net->xdesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, b->cin,
                                       h, w));
        DNN(cudnnSetTensor4dDescriptor(net->ydesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, b->cout,
                                       ho, wo));
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int got = 0;
        DNN(cudnnGetConvolutionForwardAlgorithm_v7(net->dnn, net->xdesc, net->wdesc[i],
                                                   net->cdesc[i], net->ydesc,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
        /* results come best first; skip any that would use tensor-op maths or need more than
         * 1 GiB of workspace */
        p->algo[i] = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
        for (int k = 0; k < got; k++) {
            if (perf[k].status == CUDNN_STATUS_SUCCESS && perf[k].mathType == CUDNN_FMA_MATH &&
                perf[k].memory <= ((size_t)1 << 30)) {
                p->algo[i] = perf[k].algo;
                break;
            }
        }
        DNN(cudnnGetConvolutionForwardWorkspaceSize(net->dnn, net->xdesc, net->wdesc[i],
                                                    net->cdesc[i], net->ydesc, p->algo[i],
                                                    &p->ws[i]));
        h = ho / 2;
        w = wo / 2;
    }
    p->n = n;
    p->frames = frames;
    *out = p;
    return 0;
}

static int grow_host(CudaNet *net, size_t floats, ErrMsg *e)
{
    if (floats <= net->pinned_cap) return 0;
    cudaFreeHost(net->pinned);
    net->pinned = NULL;
    net->pinned_cap = 0;
    CU(cudaMallocHost((void **)&net->pinned, sizeof(float) * floats));
    net->pinned_cap = floats;
    return 0;
}

static int forward_locked(CudaNet *net, float *probs, const float *x, int x_on_device, int n,
                          int frames, ErrMsg *e)
{
    const CudaNetDesc *d = &net->d;
    const float one = 1.0f, zero = 0.0f;
    size_t max_act;
    int feat, width;
    sizes(d, frames, &max_act, &feat, &width);
    size_t plane = (size_t)d->n_mels * frames, L = (size_t)d->n_labels;
    /* buf: A, B (n * max_act each), H0, H1 (n * width each), P (n * L) */
    size_t need = 2 * n * max_act + 2 * (size_t)n * width + n * L;
    if (need > net->buf_cap) {
        cudaFree(net->buf);
        net->buf = NULL;
        net->buf_cap = 0;
        CU(cudaMalloc((void **)&net->buf, sizeof(float) * need));
        net->buf_cap = need;
    }
    float *A = net->buf, *B = A + n * max_act, *H0 = B + n * max_act, *H1 = H0 + (size_t)n * width,
          *P = H1 + (size_t)n * width;
    ShapePlan *sp;
    int rc = plan_for(net, n, frames, &sp, e);
    if (rc) return rc;
    size_t ws_need = 0;
    for (int i = 0; i < d->n_blocks; i++) ws_need = sp->ws[i] > ws_need ? sp->ws[i] : ws_need;
    if (ws_need > net->ws_cap) {
        cudaFree(net->ws);
        net->ws = NULL;
        net->ws_cap = 0;
        CU(cudaMalloc(&net->ws, ws_need));
        net->ws_cap = ws_need;
    }
    size_t host_need = (x_on_device ? 0 : n * plane) + n * L;
    rc = grow_host(net, host_need, e);
    if (rc) return rc;

    /* input: (n, 1, n_mels, frames), scaled into A */
    const float *src = x;
    if (!x_on_device) {
        memcpy(net->pinned, x, sizeof(float) * n * plane);
        CU(cudaMemcpyAsync(B, net->pinned, sizeof(float) * n * plane, cudaMemcpyHostToDevice,
                           net->stream));
        src = B;
    }
    long long cnt = (long long)n * plane;
    scale_shift_kernel<<<grid_for(cnt), 256, 0, net->stream>>>(A, src, cnt, d->input_shift,
                                                                d->input_scale);
    LAUNCHED("scale_shift");

    int h = d->n_mels, w = frames;
    for (int i = 0; i < d->n_blocks; i++) {
        const CudaBlockDesc *b = &d->blocks[i];
        int ho = h + 2 * b->pad - 2, wo = w + 2 * b->pad - 2, ph = ho / 2, pw = wo / 2;
        DNN(cudnnSetTensor4dDescriptor(net->xdesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, b->cin,
                                       h, w));
        DNN(cudnnSetTensor4dDescriptor(net->ydesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, b->cout,
                                       ho, wo));
        DNN(cudnnSetTensor4dDescriptor(net->pdesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, b->cout,
                                       ph, pw));
        DNN(cudnnConvolutionForward(net->dnn, &one, net->xdesc, A, net->wdesc[i], net->w[i],
                                    net->cdesc[i], sp->algo[i], net->ws, sp->ws[i], &zero,
                                    net->ydesc, B));
        DNN(cudnnAddTensor(net->dnn, &one, net->bdesc[i], net->b[i], &one, net->ydesc, B));
        long long full = (long long)n * b->cout * ho * wo, pooled = (long long)n * b->cout * ph * pw;
        if (b->bn_first) { /* fcn: BN -> pool -> ReLU */
            channel_affine_kernel<<<grid_for(full), 256, 0, net->stream>>>(
                B, full, b->cout, ho * wo, net->mul[i], net->add[i], 0);
            LAUNCHED("batchnorm");
            DNN(cudnnPoolingForward(net->dnn, net->pool, &one, net->ydesc, B, &zero, net->pdesc,
                                    A));
            relu_kernel<<<grid_for(pooled), 256, 0, net->stream>>>(A, pooled);
            LAUNCHED("relu");
        } else { /* seed-cnn: pool -> ReLU -> BN */
            DNN(cudnnPoolingForward(net->dnn, net->pool, &one, net->ydesc, B, &zero, net->pdesc,
                                    A));
            channel_affine_kernel<<<grid_for(pooled), 256, 0, net->stream>>>(
                A, pooled, b->cout, ph * pw, net->mul[i], net->add[i], 1);
            LAUNCHED("relu+batchnorm");
        }
        h = ph;
        w = pw;
    }
    const float *in = A; /* (n, C, h, w): flattening is a no-op in NCHW */
    if (d->gap) {
        int C = d->blocks[d->n_blocks - 1].cout, NC = n * C;
        gap_kernel<<<(NC + 7) / 8, 256, 0, net->stream>>>(H0, A, NC, h * w);
        LAUNCHED("global average pool");
        in = H0;
    }
    float *outs[2] = {H1, H0};
    float *out = H1;
    for (int i = 0; i < d->n_dense; i++) {
        const CudaDenseDesc *dd = &d->dense[i];
        out = outs[i % 2];
        /* row-major out (n, O) = in (n, I) @ W^T, W (O, I) row-major. Column-major view:
         * out^T (O, n) = W'^T (O, I) * in^T (I, n), with W' = W seen as (I, O) col-major. */
        BLAS(cublasSgemm(net->blas, CUBLAS_OP_T, CUBLAS_OP_N, dd->out, n, dd->in, &one,
                         net->dw[i], dd->in, in, dd->in, &zero, out, dd->out));
        long long c = (long long)n * dd->out;
        bias_act_kernel<<<grid_for(c), 256, 0, net->stream>>>(out, net->db[i], n, dd->out,
                                                               dd->relu);
        LAUNCHED("dense bias");
        in = out;
    }
    DNN(cudnnSetTensor4dDescriptor(net->ldesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n,
                                   d->n_labels, 1, 1));
    DNN(cudnnSoftmaxForward(net->dnn, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE, &one,
                            net->ldesc, out, &zero, net->ldesc, P));
    float *hp = net->pinned + (x_on_device ? 0 : n * plane);
    CU(cudaMemcpyAsync(hp, P, sizeof(float) * n * L, cudaMemcpyDeviceToHost, net->stream));
    CU(cudaStreamSynchronize(net->stream));
    memcpy(probs, hp, sizeof(float) * n * L);
    return 0;
}

extern "C" int cuda_net_forward(CudaNet *net, float *probs, const float *x, int x_on_device,
                                int n, int frames, ErrMsg *e)
{
    pthread_mutex_lock(&net->lock);
    int rc = forward_locked(net, probs, x, x_on_device, n, frames, e);
    if (rc == CUDA_EOOM) drop_buffers(net);
    pthread_mutex_unlock(&net->lock);
    return rc;
}

extern "C" int cuda_dev_probe(char *name, size_t namesz, ErrMsg *e)
{
    int count = 0;
    cudaError_t s = cudaGetDeviceCount(&count);
    if (s != cudaSuccess) {
        (void)cudaGetLastError();
        return err_set(e, "no CUDA device (%s)", cudaGetErrorString(s));
    }
    if (count < 1) return err_set(e, "no CUDA device");
    int dev = 0;
    CU(cudaGetDevice(&dev));
    cudaDeviceProp prop;
    CU(cudaGetDeviceProperties(&prop, dev));
    if (prop.major < 5) return err_set(e, "%s: compute capability %d.%d is too old", prop.name,
                                       prop.major, prop.minor);
    size_t v = cudnnGetVersion();
    if (v < 90000) return err_set(e, "cuDNN %zu is older than 9", v);
    snprintf(name, namesz, "%s", prop.name);
    return 0;
}

/* ---------------------------------------------------------------- training (twin of net.c's
 * train_forward / train_backward; backward assigns activation gradients, parameter gradients
 * go to a zeroed device buffer and are then copied out) */

/* Per channel of in (N, C, HW): mean, 1/sqrt(var + eps) with the biased variance, and the
 * unbiased variance; two passes in double as nn_batchnorm_forward. One block per channel. */
__global__ void bn_stats_kernel(float *mean, float *invstd, float *uvar, const float *in, int N,
                                int C, int HW, float eps)
{
    __shared__ double red[256];
    int c = blockIdx.x;
    long long cnt = (long long)N * HW;
    double s = 0.0;
    for (long long k = threadIdx.x; k < cnt; k += blockDim.x)
        s += in[((k / HW) * C + c) * HW + k % HW];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o /= 2) {
        if ((int)threadIdx.x < o) red[threadIdx.x] += red[threadIdx.x + o];
        __syncthreads();
    }
    double mu = red[0] / (double)cnt;
    __syncthreads();
    double ss = 0.0;
    for (long long k = threadIdx.x; k < cnt; k += blockDim.x) {
        double v = (double)in[((k / HW) * C + c) * HW + k % HW] - mu;
        ss += v * v;
    }
    red[threadIdx.x] = ss;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o /= 2) {
        if ((int)threadIdx.x < o) red[threadIdx.x] += red[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        double var = red[0] / (double)cnt;
        mean[c] = (float)mu;
        invstd[c] = (float)(1.0 / sqrt(var + (double)eps));
        uvar[c] = (float)(cnt > 1 ? red[0] / (double)(cnt - 1) : var);
    }
}

/* out = (x - mean) * invstd * g + b, as nn_batchnorm_forward writes it */
__global__ void bn_apply_kernel(float *out, const float *in, const float *mean,
                                const float *invstd, const float *g, const float *b,
                                long long count, int C, int HW)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x) {
        int c = (int)((i / HW) % C);
        out[i] = (in[i] - mean[c]) * invstd[c] * g[c] + b[c];
    }
}

/* dg += sum(dout * xhat), db += sum(dout); din (when non-NULL) =
 * g * invstd * (dout - mean(dout) - xhat * mean(dout * xhat)). One block per channel. */
__global__ void bn_backward_kernel(float *din, float *dg, float *db, const float *dout,
                                   const float *in, const float *mean, const float *invstd,
                                   const float *g, int N, int C, int HW)
{
    __shared__ double r1[256], r2[256];
    int c = blockIdx.x;
    long long cnt = (long long)N * HW;
    double sd = 0.0, sdx = 0.0;
    for (long long k = threadIdx.x; k < cnt; k += blockDim.x) {
        long long i = ((k / HW) * C + c) * HW + k % HW;
        sd += dout[i];
        sdx += (double)dout[i] * ((in[i] - mean[c]) * invstd[c]);
    }
    r1[threadIdx.x] = sd;
    r2[threadIdx.x] = sdx;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o /= 2) {
        if ((int)threadIdx.x < o) {
            r1[threadIdx.x] += r1[threadIdx.x + o];
            r2[threadIdx.x] += r2[threadIdx.x + o];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        dg[c] += (float)r2[0];
        db[c] += (float)r1[0];
    }
    if (!din) return;
    float k = g[c] * invstd[c];
    float md = (float)(r1[0] / (double)cnt), mdx = (float)(r2[0] / (double)cnt);
    for (long long kk = threadIdx.x; kk < cnt; kk += blockDim.x) {
        long long i = ((kk / HW) * C + c) * HW + kk % HW;
        float xh = (in[i] - mean[c]) * invstd[c];
        din[i] = k * (dout[i] - md - xh * mdx);
    }
}

__global__ void relu_fwd_kernel(float *out, const float *in, long long count)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        out[i] = fmaxf(in[i], 0.0f);
}

/* din = out > 0 ? dout : 0 (din may alias dout) */
__global__ void relu_bwd_kernel(float *din, const float *dout, const float *out, long long count)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

/* out = a * b elementwise (dropout forward and backward with the mask) */
__global__ void mul_kernel(float *out, const float *a, const float *b, long long count)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        out[i] = a[i] * b[i];
}

__global__ void gap_bwd_kernel(float *din, const float *dout, long long NC, int HW)
{
    long long count = NC * HW;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        din[i] = dout[i / HW] / (float)HW;
}

/* db (O) += column sums of dout (N, O) */
__global__ void colsum_kernel(float *db, const float *dout, int N, int O)
{
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= O) return;
    float s = 0.0f;
    for (int n = 0; n < N; n++) s += dout[(long long)n * O + o];
    db[o] += s;
}

/* Per row: loss[n] = -sum t log softmax(z), dz = (softmax(z) - t) / N (nn_softmax_xent). */
__global__ void xent_kernel(float *dz, double *loss, const float *z, const float *t, int N, int L)
{
    int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float *zr = z + (long long)n * L, *tr = t + (long long)n * L;
    float *d = dz + (long long)n * L;
    float mx = zr[0];
    for (int k = 1; k < L; k++) mx = zr[k] > mx ? zr[k] : mx;
    double s = 0.0;
    for (int k = 0; k < L; k++) s += exp((double)(zr[k] - mx));
    double lse = log(s) + mx, l = 0.0;
    for (int k = 0; k < L; k++) {
        double logp = (double)zr[k] - lse;
        l -= (double)tr[k] * logp;
        d[k] = (float)((exp(logp) - (double)tr[k]) / N);
    }
    loss[n] = l;
}

typedef struct TrainActs {
    float *in, *conv, *s1, *pool, *s2, *mean, *invstd, *uvar; /* as net.c's BlockActs */
    int h, w, ho, wo;
} TrainActs;

static int pick_bwd_algos(CudaNet *net, int i, cudnnConvolutionBwdDataAlgo_t *da, size_t *dws,
                          cudnnConvolutionBwdFilterAlgo_t *fa, size_t *fws, ErrMsg *e)
{
    /* xdesc: input, ydesc: conv output, set by the caller */
    cudnnConvolutionBwdFilterAlgoPerf_t fp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int got = 0;
    DNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(net->dnn, net->xdesc, net->ydesc,
                                                      net->cdesc[i], net->wdesc[i],
                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                      &got, fp));
    *fa = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0;
    for (int k = 0; k < got; k++) {
        if (fp[k].status == CUDNN_STATUS_SUCCESS && fp[k].mathType == CUDNN_FMA_MATH &&
            fp[k].memory <= ((size_t)1 << 30)) {
            *fa = fp[k].algo;
            break;
        }
    }
    DNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(net->dnn, net->xdesc, net->ydesc,
                                                       net->cdesc[i], net->wdesc[i], *fa, fws));
    DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(net->dnn, net->wdesc[i], net->ydesc,
                                                    net->cdesc[i], net->xdesc,
                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got,
                                                    dp));
    *da = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
    for (int k = 0; k < got; k++) {
        if (dp[k].status == CUDNN_STATUS_SUCCESS && dp[k].mathType == CUDNN_FMA_MATH &&
            dp[k].memory <= ((size_t)1 << 30)) {
            *da = dp[k].algo;
            break;
        }
    }
    DNN(cudnnGetConvolutionBackwardDataWorkspaceSize(net->dnn, net->wdesc[i], net->ydesc,
                                                     net->cdesc[i], net->xdesc, *da, dws));
    return 0;
}

static int ensure_ws(CudaNet *net, size_t bytes, ErrMsg *e)
{
    if (bytes <= net->ws_cap) return 0;
    cudaFree(net->ws);
    net->ws = NULL;
    net->ws_cap = 0;
    CU(cudaMalloc(&net->ws, bytes));
    net->ws_cap = bytes;
    return 0;
}

static int set4(cudnnTensorDescriptor_t t, int n, int c, int h, int w, ErrMsg *e)
{
    DNN(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
    return 0;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        if (r_) return r_;                                                                         \
    } while (0)
#define GRID(c) grid_for(c), 256, 0, net->stream

static int train_locked(CudaNet *net, CudaTrainOut *o, const float *x, const float *targets,
                        const float *const *masks, int n, int frames, int head_only, ErrMsg *e)
{
    const CudaNetDesc *d = &net->d;
    const float one = 1.0f, zero = 0.0f;
    size_t max_act;
    int feat, width;
    sizes(d, frames, &max_act, &feat, &width);
    int L = d->n_labels;
    size_t plane = (size_t)d->n_mels * frames;
    TrainActs ta[CUDA_MAX_BLOCKS];
    float *din_in[CUDA_MAX_DENSE], *dmask[CUDA_MAX_DENSE], *pre[CUDA_MAX_DENSE],
        *post[CUDA_MAX_DENSE];
    float *xs, *featb, *dlog, *tg, *g0, *g1, *grads;
    double *lossb;
    /* two passes: measure, then carve the training arena (floats; doubles take two) */
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
#define TAKE(cnt) (pass ? net->buf + (off += (cnt)) - (cnt) : (off += (cnt), (float *)NULL))
        /* first, so that the doubles sit on cudaMalloc's aligned start */
        lossb = (double *)TAKE(2 * (size_t)n);
        xs = TAKE((size_t)n * plane);
        int h = d->n_mels, w = frames;
        float *prev = xs;
        for (int i = 0; i < d->n_blocks; i++) {
            const CudaBlockDesc *b = &d->blocks[i];
            TrainActs *a = &ta[i];
            a->h = h;
            a->w = w;
            a->ho = h + 2 * b->pad - 2;
            a->wo = w + 2 * b->pad - 2;
            size_t full = (size_t)n * b->cout * a->ho * a->wo;
            size_t pooled = (size_t)n * b->cout * (a->ho / 2) * (a->wo / 2);
            a->in = prev;
            a->conv = TAKE(full);
            a->s1 = TAKE(b->bn_first ? full : pooled);
            a->pool = TAKE(pooled);
            a->s2 = TAKE(pooled);
            a->mean = TAKE(b->cout);
            a->invstd = TAKE(b->cout);
            a->uvar = TAKE(b->cout);
            prev = a->s2;
            h = a->ho / 2;
            w = a->wo / 2;
        }
        featb = d->gap ? TAKE((size_t)n * feat) : prev;
        int dim = feat;
        for (int i = 0; i < d->n_dense; i++) {
            const CudaDenseDesc *dd = &d->dense[i];
            dmask[i] = masks && masks[i] ? TAKE((size_t)n * dim) : NULL;
            din_in[i] = masks && masks[i] ? TAKE((size_t)n * dim) : NULL;
            pre[i] = TAKE((size_t)n * dd->out);
            post[i] = dd->relu ? TAKE((size_t)n * dd->out) : pre[i];
            dim = dd->out;
        }
        dlog = TAKE((size_t)n * L);
        tg = TAKE((size_t)n * L);
        size_t gsz = (size_t)n * (max_act > (size_t)width ? max_act : (size_t)width);
        g0 = TAKE(gsz);
        g1 = TAKE(gsz);
        grads = TAKE(net->n_params);
#undef TAKE
        if (!pass && off > net->buf_cap) {
            cudaFree(net->buf);
            net->buf = NULL;
            net->buf_cap = 0;
            CU(cudaMalloc((void **)&net->buf, sizeof(float) * off));
            net->buf_cap = off;
        }
    }
    size_t host_need = (size_t)n * plane + (size_t)n * L;
    TRY(grow_host(net, host_need, e));

    /* inputs: x and targets through the pinned buffer */
    memcpy(net->pinned, x, sizeof(float) * n * plane);
    memcpy(net->pinned + n * plane, targets, sizeof(float) * n * L);
    CU(cudaMemcpyAsync(g0, net->pinned, sizeof(float) * n * plane, cudaMemcpyHostToDevice,
                       net->stream));
    CU(cudaMemcpyAsync(tg, net->pinned + n * plane, sizeof(float) * n * L,
                       cudaMemcpyHostToDevice, net->stream));
    for (int i = 0; i < d->n_dense; i++)
        if (dmask[i])
            CU(cudaMemcpyAsync(dmask[i], masks[i], sizeof(float) * n * d->dense[i].in,
                               cudaMemcpyHostToDevice, net->stream));
    CU(cudaMemsetAsync(grads, 0, sizeof(float) * net->n_params, net->stream));
    long long cnt = (long long)n * plane;
    scale_shift_kernel<<<GRID(cnt)>>>(xs, g0, cnt, d->input_shift, d->input_scale);
    LAUNCHED("scale");

    /* ---- forward, training mode */
    for (int i = 0; i < d->n_blocks; i++) {
        const CudaBlockDesc *b = &d->blocks[i];
        TrainActs *a = &ta[i];
        int ph = a->ho / 2, pw = a->wo / 2;
        long long full = (long long)n * b->cout * a->ho * a->wo,
                  pooled = (long long)n * b->cout * ph * pw;
        TRY(set4(net->xdesc, n, b->cin, a->h, a->w, e));
        TRY(set4(net->ydesc, n, b->cout, a->ho, a->wo, e));
        TRY(set4(net->pdesc, n, b->cout, ph, pw, e));
        ShapePlan *sp;
        TRY(plan_for(net, n, frames, &sp, e));
        TRY(ensure_ws(net, sp->ws[i], e));
        TRY(set4(net->xdesc, n, b->cin, a->h, a->w, e)); /* plan_for reused the descriptors */
        TRY(set4(net->ydesc, n, b->cout, a->ho, a->wo, e));
        DNN(cudnnConvolutionForward(net->dnn, &one, net->xdesc, a->in, net->wdesc[i], net->w[i],
                                    net->cdesc[i], sp->algo[i], net->ws, sp->ws[i], &zero,
                                    net->ydesc, a->conv));
        DNN(cudnnAddTensor(net->dnn, &one, net->bdesc[i], net->b[i], &one, net->ydesc, a->conv));
        if (b->bn_first) { /* fcn: BN -> pool -> ReLU */
            bn_stats_kernel<<<b->cout, 256, 0, net->stream>>>(a->mean, a->invstd, a->uvar, a->conv,
                                                              n, b->cout, a->ho * a->wo,
                                                              d->bn_eps);
            bn_apply_kernel<<<GRID(full)>>>(a->s1, a->conv, a->mean, a->invstd, net->g[i],
                                           net->beta[i], full, b->cout, a->ho * a->wo);
            LAUNCHED("batchnorm");
            DNN(cudnnPoolingForward(net->dnn, net->pool, &one, net->ydesc, a->s1, &zero,
                                    net->pdesc, a->pool));
            relu_fwd_kernel<<<GRID(pooled)>>>(a->s2, a->pool, pooled);
            LAUNCHED("relu");
        } else { /* seed: pool -> ReLU -> BN */
            DNN(cudnnPoolingForward(net->dnn, net->pool, &one, net->ydesc, a->conv, &zero,
                                    net->pdesc, a->pool));
            relu_fwd_kernel<<<GRID(pooled)>>>(a->s1, a->pool, pooled);
            bn_stats_kernel<<<b->cout, 256, 0, net->stream>>>(a->mean, a->invstd, a->uvar, a->s1,
                                                              n, b->cout, ph * pw, d->bn_eps);
            bn_apply_kernel<<<GRID(pooled)>>>(a->s2, a->s1, a->mean, a->invstd, net->g[i],
                                             net->beta[i], pooled, b->cout, ph * pw);
            LAUNCHED("relu+batchnorm");
        }
    }
    const TrainActs *la = &ta[d->n_blocks - 1];
    int C = d->blocks[d->n_blocks - 1].cout, lhw = (la->ho / 2) * (la->wo / 2);
    if (d->gap) {
        gap_kernel<<<(n * C + 7) / 8, 256, 0, net->stream>>>(featb, la->s2, n * C, lhw);
        LAUNCHED("gap");
    }
    const float *hin = featb;
    const float *dense_in[CUDA_MAX_DENSE];
    for (int i = 0; i < d->n_dense; i++) {
        const CudaDenseDesc *dd = &d->dense[i];
        if (dmask[i]) {
            long long c = (long long)n * dd->in;
            mul_kernel<<<GRID(c)>>>(din_in[i], hin, dmask[i], c);
            LAUNCHED("dropout");
            hin = din_in[i];
        }
        dense_in[i] = hin;
        BLAS(cublasSgemm(net->blas, CUBLAS_OP_T, CUBLAS_OP_N, dd->out, n, dd->in, &one,
                         net->dw[i], dd->in, hin, dd->in, &zero, pre[i], dd->out));
        long long c = (long long)n * dd->out;
        bias_act_kernel<<<GRID(c)>>>(pre[i], net->db[i], n, dd->out, 0);
        if (dd->relu) relu_fwd_kernel<<<GRID(c)>>>(post[i], pre[i], c);
        LAUNCHED("dense");
        hin = post[i];
    }
    xent_kernel<<<(n + 127) / 128, 128, 0, net->stream>>>(dlog, lossb, pre[d->n_dense - 1], tg,
                                                          n, L);
    LAUNCHED("cross-entropy");

    /* ---- backward: parameter gradients into grads (net->params' layout) */
#define G(p) (grads + ((p) - net->params))
    float *cur = dlog, *other = g0;
    for (int i = d->n_dense - 1; i >= 0; i--) {
        const CudaDenseDesc *dd = &d->dense[i];
        long long c = (long long)n * dd->out;
        if (dd->relu) {
            relu_bwd_kernel<<<GRID(c)>>>(cur, cur, post[i], c);
            LAUNCHED("relu backward");
        }
        colsum_kernel<<<(dd->out + 255) / 256, 256, 0, net->stream>>>(G(net->db[i]), cur, n,
                                                                      dd->out);
        LAUNCHED("bias backward");
        /* dW (O, I) row-major = (I, O) column-major = in^T-view (I, n) * dout-view^T (n, O) */
        BLAS(cublasSgemm(net->blas, CUBLAS_OP_N, CUBLAS_OP_T, dd->in, dd->out, n, &one,
                         dense_in[i], dd->in, cur, dd->out, &one, G(net->dw[i]), dd->in));
        int need_din = i > 0 || !head_only;
        if (!need_din) break;
        other = cur == g0 ? g1 : g0;
        /* din (n, I) row-major = (I, n) column-major = W-view (I, O) * dout-view (O, n) */
        BLAS(cublasSgemm(net->blas, CUBLAS_OP_N, CUBLAS_OP_N, dd->in, n, dd->out, &one,
                         net->dw[i], dd->in, cur, dd->out, &zero, other, dd->in));
        if (dmask[i]) {
            long long ci = (long long)n * dd->in;
            mul_kernel<<<GRID(ci)>>>(other, other, dmask[i], ci);
            LAUNCHED("dropout backward");
        }
        cur = other;
    }
    if (!head_only) {
        if (d->gap) {
            other = cur == g0 ? g1 : g0;
            gap_bwd_kernel<<<GRID((long long)n * C * lhw)>>>(other, cur, (long long)n * C, lhw);
            LAUNCHED("gap backward");
            cur = other;
        }
        for (int i = d->n_blocks - 1; i >= 0; i--) {
            const CudaBlockDesc *b = &d->blocks[i];
            TrainActs *a = &ta[i];
            int ph = a->ho / 2, pw = a->wo / 2;
            long long pooled = (long long)n * b->cout * ph * pw;
            TRY(set4(net->xdesc, n, b->cin, a->h, a->w, e));
            TRY(set4(net->ydesc, n, b->cout, a->ho, a->wo, e));
            TRY(set4(net->pdesc, n, b->cout, ph, pw, e));
            other = cur == g0 ? g1 : g0;
            if (b->bn_first) { /* cur: d ReLU out */
                relu_bwd_kernel<<<GRID(pooled)>>>(cur, cur, a->s2, pooled);
                LAUNCHED("relu backward");
                DNN(cudnnPoolingBackward(net->dnn, net->pool, &one, net->pdesc, a->pool,
                                         net->pdesc, cur, net->ydesc, a->s1, &zero, net->ydesc,
                                         other));
                bn_backward_kernel<<<b->cout, 256, 0, net->stream>>>(
                    cur, G(net->g[i]), G(net->beta[i]), other, a->conv, a->mean, a->invstd,
                    net->g[i], n, b->cout, a->ho * a->wo);
                LAUNCHED("batchnorm backward");
            } else { /* cur: d BN out */
                bn_backward_kernel<<<b->cout, 256, 0, net->stream>>>(
                    other, G(net->g[i]), G(net->beta[i]), cur, a->s1, a->mean, a->invstd,
                    net->g[i], n, b->cout, ph * pw);
                relu_bwd_kernel<<<GRID(pooled)>>>(other, other, a->s1, pooled);
                LAUNCHED("batchnorm+relu backward");
                DNN(cudnnPoolingBackward(net->dnn, net->pool, &one, net->pdesc, a->pool,
                                         net->pdesc, other, net->ydesc, a->conv, &zero,
                                         net->ydesc, cur));
            }
            /* cur: d conv out (n, cout, ho, wo) */
            cudnnConvolutionBwdDataAlgo_t da = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
            cudnnConvolutionBwdFilterAlgo_t fa = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0;
            size_t dws = 0, fws = 0;
            TRY(pick_bwd_algos(net, i, &da, &dws, &fa, &fws, e));
            TRY(ensure_ws(net, dws > fws ? dws : fws, e));
            DNN(cudnnConvolutionBackwardBias(net->dnn, &one, net->ydesc, cur, &one, net->bdesc[i],
                                             G(net->b[i])));
            DNN(cudnnConvolutionBackwardFilter(net->dnn, &one, net->xdesc, a->in, net->ydesc, cur,
                                               net->cdesc[i], fa, net->ws, fws, &one,
                                               net->wdesc[i], G(net->w[i])));
            if (i > 0) {
                other = cur == g0 ? g1 : g0;
                DNN(cudnnConvolutionBackwardData(net->dnn, &one, net->wdesc[i], net->w[i],
                                                 net->ydesc, cur, net->cdesc[i], da, net->ws,
                                                 dws, &zero, net->xdesc, other));
                cur = other;
            }
        }
    }

    /* ---- results to the host */
    CU(cudaStreamSynchronize(net->stream));
#define OUT(dst, src, cnt) CU(cudaMemcpy((dst), (src), sizeof(float) * (cnt), cudaMemcpyDeviceToHost))
    for (int i = 0; i < d->n_dense; i++) {
        const CudaDenseDesc *dd = &d->dense[i];
        OUT(o->ddw[i], G(net->dw[i]), (size_t)dd->out * dd->in);
        OUT(o->ddb[i], G(net->db[i]), dd->out);
    }
    for (int i = 0; i < d->n_blocks; i++) {
        const CudaBlockDesc *b = &d->blocks[i];
        OUT(o->mean[i], ta[i].mean, b->cout);
        OUT(o->var[i], ta[i].uvar, b->cout);
        if (head_only) continue;
        OUT(o->dw[i], G(net->w[i]), (size_t)b->cout * b->cin * 9);
        OUT(o->db[i], G(net->b[i]), b->cout);
        OUT(o->dg[i], G(net->g[i]), b->cout);
        OUT(o->dbeta[i], G(net->beta[i]), b->cout);
    }
    OUT(o->logits, pre[d->n_dense - 1], (size_t)n * L);
#undef OUT
#undef G
    double *lh = (double *)malloc(sizeof(double) * n);
    if (!lh) return err_set(e, "out of host memory");
    cudaError_t s = cudaMemcpy(lh, lossb, sizeof(double) * n, cudaMemcpyDeviceToHost);
    double l = 0.0;
    for (int k = 0; k < n; k++) l += lh[k];
    free(lh);
    if (s != cudaSuccess) return cu_fail(e, s, "copy loss");
    o->loss = l / n;
    return 0;
}

extern "C" int cuda_net_train(CudaNet *net, CudaTrainOut *o, const float *x, const float *targets,
                              const float *const *masks, int n, int frames, int head_only,
                              ErrMsg *e)
{
    pthread_mutex_lock(&net->lock);
    int rc = train_locked(net, o, x, targets, masks, n, frames, head_only, e);
    if (rc == CUDA_EOOM) drop_buffers(net);
    pthread_mutex_unlock(&net->lock);
    return rc;
}
