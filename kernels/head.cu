// Four-base head: softmax over the LM-head logits of A, C, G, T, shifted by one position so that row t holds
// the distribution of the base at t given the bases before it; optional entropy and log P(ref).
// Needs prelude.cuh.
//
// hidden:    (nb*T, d) f32, final hidden states after norm_f
// wt:        (4, d) f32, LM-head rows of tokens A=7, C=8, G=9, T=10
// tokens:    (nb*T,) u8 (for logp_ref)
// carry_in:  (nb, 4) f32, prediction for row 0 of each window (made at the previous chunk's last row; NaN when
//            the window is fresh). carry_out: (nb, 4) f32, prediction made at each window's last row. The two
//            must not alias (the host swaps them between chunks).
// probs:     (nb*T, 4) f32 out. extra: (nb*T, 2) f32 out or 0: entropy (nats), log P(token) (NaN for a token
//            that is not A/C/G/T or a row without context).
// Launch: one warp per row, block (256,1,1), grid ceil(nb*T / 8).

__device__ __forceinline__ float xlogx(float p) { return p > 0.0f ? p * logf(p) : (p == 0.0f ? 0.0f : p); }

__device__ __forceinline__ void head_write(float* probs, float* extra, const unsigned char* tokens, i64 row,
                                           float p0, float p1, float p2, float p3) {
    probs[row * 4] = p0;
    probs[row * 4 + 1] = p1;
    probs[row * 4 + 2] = p2;
    probs[row * 4 + 3] = p3;
    if (extra != 0) {
        // NaN inputs (no context) propagate to both outputs.
        float ent = -(xlogx(p0) + xlogx(p1) + xlogx(p2) + xlogx(p3));
        int tok = tokens[row];
        float pt = tok == 7 ? p0 : tok == 8 ? p1 : tok == 9 ? p2 : p3;
        float lp = (tok >= 7 && tok <= 10) ? logf(pt) : __int_as_float(0x7fc00000);
        extra[row * 2] = ent;
        extra[row * 2 + 1] = lp;
    }
}

extern "C" __global__ void base_head(const float* __restrict__ hidden, const float* __restrict__ wt,
                                     const unsigned char* __restrict__ tokens, const float* __restrict__ carry_in,
                                     float* __restrict__ carry_out, float* __restrict__ probs,
                                     float* __restrict__ extra, int nb, int T, int d) {
    i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= (i64)nb * T) return;  // whole warp leaves together
    const float* hr = hidden + row * d;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (int c = lane; c < d; c += 32) {
        float v = hr[c];
        s0 += v * wt[c];
        s1 += v * wt[d + c];
        s2 += v * wt[2 * d + c];
        s3 += v * wt[3 * d + c];
    }
    s0 = warp_sum(s0);
    s1 = warp_sum(s1);
    s2 = warp_sum(s2);
    s3 = warp_sum(s3);
    if (lane != 0) return;
    float mx = fmaxf(fmaxf(s0, s1), fmaxf(s2, s3));
    float p[4] = {__expf(s0 - mx), __expf(s1 - mx), __expf(s2 - mx), __expf(s3 - mx)};
    float inv = 1.0f / (p[0] + p[1] + p[2] + p[3]);
#pragma unroll
    for (int j = 0; j < 4; ++j) p[j] *= inv;
    i64 b = row / T;
    int t = (int)(row - b * T);
    if (t + 1 < T) {
        head_write(probs, extra, tokens, row + 1, p[0], p[1], p[2], p[3]);
    } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) carry_out[b * 4 + j] = p[j];
    }
    if (t == 0) {
        const float* c = carry_in + b * 4;
        head_write(probs, extra, tokens, row, c[0], c[1], c[2], c[3]);
    }
}
