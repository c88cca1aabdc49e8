// genomamba kernel prelude: prepended by genomamba-cuda to every kernels/*.cu before NVRTC compiles it, so the
// kernels need no headers and no include path. Specialisation macros (passed as -D options):
//   ACT_BF16  0: activations are f32; 1: activations are bf16 stored as raw 16-bit words (state/accum stay f32)
//   D_STATE   SSM state size N per channel (scan.cu)
//   D_CONV    depthwise causal conv width K (conv.cu)
#ifndef ACT_BF16
#define ACT_BF16 0
#endif
#ifndef D_STATE
#define D_STATE 16
#endif
#ifndef D_CONV
#define D_CONV 4
#endif

typedef long long i64;
typedef unsigned short bf16_t;

__device__ __forceinline__ float bf16_to_f32(bf16_t v) { return __uint_as_float(((unsigned int)v) << 16); }

// Round to nearest even; NaN stays NaN (quiet bit set).
__device__ __forceinline__ bf16_t f32_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16_t)(u >> 16);
}

#if ACT_BF16
typedef bf16_t act_t;
#else
typedef float act_t;
#endif

__device__ __forceinline__ float ld(const float* p) { return *p; }
__device__ __forceinline__ float ld(const bf16_t* p) { return bf16_to_f32(*p); }
__device__ __forceinline__ void st(float* p, float v) { *p = v; }
__device__ __forceinline__ void st(bf16_t* p, float v) { *p = f32_to_bf16(v); }

// A 16-byte load; p must be 16-byte aligned (on a GPU a misaligned vector load fails the launch; the CUDA
// emulation defines GM_CHECK_ALIGNED to stop there too).
#ifndef GM_CHECK_ALIGNED
#define GM_CHECK_ALIGNED(p, bytes)
#endif
__device__ __forceinline__ uint4 ld16(const void* p) {
    GM_CHECK_ALIGNED(p, 16);
    return *(const uint4*)p;
}

__device__ __forceinline__ float silu(float v) { return v / (1.0f + __expf(-v)); }

// PyTorch softplus with beta 1 and threshold 20 (identity above 20).
__device__ __forceinline__ float softplus20(float v) { return v <= 20.0f ? log1pf(__expf(v)) : v; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nwarps ? part[lane] : 0.0f;
    v = warp_sum(v);
    __syncthreads();
    return v;
}

// Grid-stride loop over [0, n) with 64-bit indices (rows x channels can exceed 2^31).
#define GRID_STRIDE(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)
