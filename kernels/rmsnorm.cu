// Fused residual add + RMSNorm. Needs prelude.cuh (prepended by the loader).
//
// One block per row (blockDim.x a multiple of 32, <= 1024; gridDim.x = rows).
// resid: (rows, d) f32, updated in place: resid += delta when delta != 0 (delta: (rows, d) act_t, the mixer
// output of the previous block). out = resid * rsqrt(mean(resid^2) + eps) * w, w: (d,) f32; w == 0 (a model cut
// after a block, `--layer`): out = resid, the residual stream unnormalised.

template <typename OutT>
__device__ __forceinline__ void add_rmsnorm_row(float* __restrict__ resid, const act_t* __restrict__ delta,
                                                const float* __restrict__ w, OutT* __restrict__ out, int d,
                                                float eps) {
    i64 row = blockIdx.x;
    float* r = resid + row * d;
    OutT* o = out + row * d;
    float ss = 0.0f;
    if (delta != 0) {
        const act_t* dl = delta + row * d;
        for (int c = threadIdx.x; c < d; c += blockDim.x) {
            float v = r[c] + ld(dl + c);
            r[c] = v;
            ss += v * v;
        }
    } else {
        for (int c = threadIdx.x; c < d; c += blockDim.x) {
            float v = r[c];
            ss += v * v;
        }
    }
    ss = block_sum(ss);
    if (w == 0) {
        // Uniform across the block, after the reduction's barriers.
        for (int c = threadIdx.x; c < d; c += blockDim.x) st(o + c, r[c]);
        return;
    }
    float inv = rsqrtf(ss / (float)d + eps);
    // Each thread re-reads only the columns it wrote above, so no barrier is needed for resid.
    for (int c = threadIdx.x; c < d; c += blockDim.x) st(o + c, r[c] * inv * w[c]);
}

// Block input norm: out is act_t (feeds the in_proj GEMM).
extern "C" __global__ void add_rmsnorm(float* __restrict__ resid, const act_t* __restrict__ delta,
                                       const float* __restrict__ w, act_t* __restrict__ out, int d, float eps) {
    add_rmsnorm_row<act_t>(resid, delta, w, out, d, eps);
}

// Final norm_f: out is always f32 (the hidden states handed to heads and to the host).
extern "C" __global__ void add_rmsnorm_f32(float* __restrict__ resid, const act_t* __restrict__ delta,
                                           const float* __restrict__ w, float* __restrict__ out, int d,
                                           float eps) {
    add_rmsnorm_row<float>(resid, delta, w, out, d, eps);
}
