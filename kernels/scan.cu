// Selective scan, fused with softplus(dt + bias), exp(dt*A), dt*B*x, C.h + D*x and the SiLU(z) gate, with a
// carried SSM state, parallel in time as well as across channels (two-level chunked scan).
// Needs prelude.cuh; specialised by D_STATE (N) and ACT_BF16.
//
// Recurrence per window b, channel e, state n:  h_t = a_t h_{t-1} + u_t,  a_t = exp(dt_t A[e,n]),
// u_t = dt_t B[t,n] x_t,  y_t = (sum_n h_t C[t,n] + D[e] x_t) * silu(z_t),  dt_t = softplus20(dt_raw_t + bias[e]).
// Time is cut into nblk blocks of Lb steps. Level 1 (scan_local): each block from h = 0 gives (P, Hp) with
// P = prod a_t (the product of its decays) and Hp its end state. Level 2 (scan_carry): h_in[blk] = P[blk-1] h_in[blk-1]
// + Hp[blk-1], seeded with the carried state; the final value becomes the new carried state. Level 3
// (scan_output): each block re-runs from h_in[blk] and writes y. With nblk == 1, scan_output alone reads the
// carried state and writes the final one (h_in = final_state = state).
//
// Shapes (row m = b*T + t):
//   dt_raw (nb*T, E) act_t: dt_proj output before its bias;  dt_bias (E,) f32
//   a2     (E, N) f32: A * log2(e) = -exp(A_log) * log2(e)   (so exp(dt A) = exp2(dt a2))
//   x      (nb*T, E) act_t: conv output xc;   D (E,) f32
//   xdbl   (nb*T, ld_dbl) act_t: x_proj output [dt_low | B | C]; B at column off_b, C at off_c
//   z      (nb*T, ld_z) act_t: gate (in_proj columns [E, 2E), passed as xz + E)
//   P, H   (nb, nblk, E, N) f32 scratch; state (nb, E, N) f32
//   y      (nb*T, E) act_t
// Launch (scan_local, scan_output): block (128,1,1), grid (ceil(E/128), nblk, nb); one thread per
// (e, blk, b), sequential over the block's time steps; a warp covers 32 consecutive channels at the same t,
// so dt/x/z/y accesses coalesce and B/C loads are warp broadcasts.
// Launch (scan_carry): 1-D grid-stride over nb*E*N, sequential over nblk.
//
// The fused multiply-adds are written out, so every variant (and the CPU emulation) rounds as the default does.
//
// Variants the GPU benchmark times against this default (every macro 0), compiled only at its request
// (kernels.rs: ScanTuning; tests/gpu/README.md explains why these three):
//   SCAN_EX2_POLY k  the decays of states n < k by exp2_fma on the FMA pipes instead of exp2f on the
//                    special-function units
//   SCAN_VEC_BC 1    B and C of a row read 16 bytes at a time (G states per load); the caller checked that every
//                    row allows it (scan_plan::vector_rows)
//   SCAN_PREFETCH 1  step t+1's dt, x (and z) loaded before step t's arithmetic

#define N D_STATE
#ifndef SCAN_EX2_POLY
#define SCAN_EX2_POLY 0
#endif
#ifndef SCAN_VEC_BC
#define SCAN_VEC_BC 0
#endif
#ifndef SCAN_PREFETCH
#define SCAN_PREFETCH 0
#endif

// 2^v for v <= 0 without the special-function units: v = i + f with i = round(v) and |f| <= 1/2, 2^f by a
// degree-6 polynomial (fitted for relative error on [-1/2, 1/2]; 1.6e-8 in exact arithmetic with these f32
// coefficients), then i added to the exponent bits. Relative error at most 8.0e-8 over every float in
// [-125, 0] (tests/gpu/emu/exp2_fma_check.cpp, against exp2 in double). v is first clamped to -125 so that
// the exponent arithmetic stays in the normal range: below it (and for -inf and NaN) the result is
// 2^-125 = 2.4e-38, where exp2f gives 0 under 2^-126. A decay that small leaves the state as 0 would; a NaN dt
// still reaches the state through dt * x.
__device__ __forceinline__ float exp2_fma(float v) {
    v = fmaxf(v, -125.0f);
    const float shifter = 12582912.0f;  // 1.5 * 2^23: v + shifter holds round(v) in its low mantissa bits
    float r = v + shifter;
    float f = v - (r - shifter);
    float p = 1.534581243e-4f;
    p = fmaf(p, f, 1.339993090e-3f);
    p = fmaf(p, f, 9.618489072e-3f);
    p = fmaf(p, f, 5.550328642e-2f);
    p = fmaf(p, f, 2.402264625e-1f);
    p = fmaf(p, f, 6.931471825e-1f);
    p = fmaf(p, f, 1.0f);
    // round(v) sits in the low bits of r's pattern: shifted to the exponent field (unsigned, so the high bits
    // wrap away), it adds round(v) to p's exponent.
    return __uint_as_float(__float_as_uint(p) + (__float_as_uint(r) << 23));
}

// The decay of state n (a compile-time constant once the state loops unroll).
__device__ __forceinline__ float decay(int n, float v) { return n < SCAN_EX2_POLY ? exp2_fma(v) : exp2f(v); }

// States per B/C load: a 16-byte group with SCAN_VEC_BC (at most N), else 1.
#define G_FULL (16 / (int)sizeof(act_t))
#if SCAN_VEC_BC
#define G (G_FULL < N ? G_FULL : N)
#else
#define G 1
#endif
static_assert(N % G == 0, "the state loops step through B and C in whole groups of G");

// p[0..G) as f32: one 16-byte load when G fills one, else G scalar loads.
__device__ __forceinline__ void ld_group(const act_t* p, float (&v)[G]) {
#if SCAN_VEC_BC
    if (G == G_FULL) {
        uint4 q = ld16(p);
        unsigned w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int j = 0; j < G; ++j) {
#if ACT_BF16
            v[j] = __uint_as_float((j & 1) ? (w[j >> 1] & 0xffff0000u) : (w[j >> 1] << 16));
#else
            v[j] = __uint_as_float(w[j]);
#endif
        }
        return;
    }
#endif
#pragma unroll
    for (int j = 0; j < G; ++j) v[j] = ld(p + j);
}

extern "C" __global__ void scan_local(const act_t* __restrict__ dt_raw, const float* __restrict__ dt_bias,
                                      const float* __restrict__ a2, const act_t* __restrict__ x,
                                      const act_t* __restrict__ xdbl, i64 ld_dbl, int off_b,
                                      float* __restrict__ P, float* __restrict__ H, int T, int E, int nblk,
                                      int Lb) {
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    int blk = blockIdx.y;
    i64 b = blockIdx.z;
    int t0 = blk * Lb;
    int t1 = min(T, t0 + Lb);
    float a[N], h[N], p[N];
#pragma unroll
    for (int n = 0; n < N; ++n) {
        a[n] = a2[(i64)e * N + n];
        h[n] = 0.0f;
        p[n] = 1.0f;
    }
    float bias = dt_bias[e];
#if SCAN_PREFETCH
    float dr_next = 0.0f, x_next = 0.0f;
    if (t0 < t1) {
        i64 m0 = b * T + t0;
        dr_next = ld(dt_raw + m0 * E + e);
        x_next = ld(x + m0 * E + e);
    }
#endif
    for (int t = t0; t < t1; ++t) {
        i64 m = b * T + t;
#if SCAN_PREFETCH
        float dr = dr_next, xv = x_next;
        if (t + 1 < t1) {
            dr_next = ld(dt_raw + (m + 1) * E + e);
            x_next = ld(x + (m + 1) * E + e);
        }
        float dt = softplus20(dr + bias);
        float dx = dt * xv;
#else
        float dt = softplus20(ld(dt_raw + m * E + e) + bias);
        float dx = dt * ld(x + m * E + e);
#endif
        const act_t* bp = xdbl + m * ld_dbl + off_b;
#pragma unroll
        for (int g = 0; g < N; g += G) {
            float bv[G];
            ld_group(bp + g, bv);
#pragma unroll
            for (int j = 0; j < G; ++j) {
                int n = g + j;
                // P as the product of the very decays the sequential scan applies: exp2(a * sum dt) would
                // carry the rounding of a long f32 sum into every later block's entering state.
                float d = decay(n, dt * a[n]);
                p[n] *= d;
                h[n] = fmaf(d, h[n], dx * bv[j]);
            }
        }
    }
    i64 o = ((b * nblk + blk) * E + e) * N;
#pragma unroll
    for (int n = 0; n < N; ++n) {
        P[o + n] = p[n];
        H[o + n] = h[n];
    }
}

// Blocks whose P and H scan_carry loads at once.
#define CARRY_BATCH 8

// Replaces H[b, blk] (block-local end states) by the state entering each block; state <- state after the last.
extern "C" __global__ void scan_carry(const float* __restrict__ P, float* __restrict__ H, float* __restrict__ state,
                                      int nb, int E, int nblk) {
    i64 EN = (i64)E * N;
    GRID_STRIDE(i, (i64)nb * EN) {
        i64 b = i / EN;
        i64 en = i - b * EN;
        float h = state[i];
        const float* p = P + b * nblk * EN + en;
        float* hp = H + b * nblk * EN + en;
        // CARRY_BATCH blocks' P and H are loaded before any is used: the chain through h is sequential, but its
        // loads need not wait on each other (nor on the stores to H, which go to other blocks' slots).
        int full = nblk - nblk % CARRY_BATCH;
        for (int blk0 = 0; blk0 < full; blk0 += CARRY_BATCH) {
            float pv[CARRY_BATCH], hv[CARRY_BATCH];
#pragma unroll
            for (int k = 0; k < CARRY_BATCH; ++k) {
                i64 o = (i64)(blk0 + k) * EN;
                pv[k] = p[o];
                hv[k] = hp[o];
            }
#pragma unroll
            for (int k = 0; k < CARRY_BATCH; ++k) {
                hp[(i64)(blk0 + k) * EN] = h;
                h = fmaf(pv[k], h, hv[k]);
            }
        }
        for (int blk = full; blk < nblk; ++blk) {
            i64 o = (i64)blk * EN;
            float pv = p[o], hv = hp[o];
            hp[o] = h;
            h = fmaf(pv, h, hv);
        }
        state[i] = h;
    }
}

// h_in: (nb, nblk, E, N) states entering each block. final_state: (nb, E, N) or 0; when set, the state after
// each window's last step is written there (only meaningful with nblk == 1, where h_in may alias it).
extern "C" __global__ void scan_output(const act_t* __restrict__ dt_raw, const float* __restrict__ dt_bias,
                                       const float* __restrict__ a2, const act_t* __restrict__ x,
                                       const act_t* __restrict__ xdbl, i64 ld_dbl, int off_b, int off_c,
                                       const act_t* __restrict__ z, i64 ld_z, const float* __restrict__ Dskip,
                                       const float* h_in, float* final_state, act_t* __restrict__ y, int T,
                                       int E, int nblk, int Lb) {
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    int blk = blockIdx.y;
    i64 b = blockIdx.z;
    int t0 = blk * Lb;
    int t1 = min(T, t0 + Lb);
    i64 o = ((b * nblk + blk) * E + e) * N;
    float a[N], h[N];
#pragma unroll
    for (int n = 0; n < N; ++n) {
        a[n] = a2[(i64)e * N + n];
        h[n] = h_in[o + n];
    }
    float bias = dt_bias[e];
    float dskip = Dskip[e];
#if SCAN_PREFETCH
    float x_next = 0.0f, dr_next = 0.0f, z_next = 0.0f;
    if (t0 < t1) {
        i64 m0 = b * T + t0;
        x_next = ld(x + m0 * E + e);
        dr_next = ld(dt_raw + m0 * E + e);
        z_next = ld(z + m0 * ld_z + e);
    }
#endif
    for (int t = t0; t < t1; ++t) {
        i64 m = b * T + t;
#if SCAN_PREFETCH
        float xv = x_next, dr = dr_next, zv = z_next;
        if (t + 1 < t1) {
            x_next = ld(x + (m + 1) * E + e);
            dr_next = ld(dt_raw + (m + 1) * E + e);
            z_next = ld(z + (m + 1) * ld_z + e);
        }
        float dt = softplus20(dr + bias);
#else
        float xv = ld(x + m * E + e);
        float dt = softplus20(ld(dt_raw + m * E + e) + bias);
#endif
        float dx = dt * xv;
        const act_t* bp = xdbl + m * ld_dbl + off_b;
        const act_t* cp = xdbl + m * ld_dbl + off_c;
        float acc = 0.0f;
#pragma unroll
        for (int g = 0; g < N; g += G) {
            float bv[G], cv[G];
            ld_group(bp + g, bv);
            ld_group(cp + g, cv);
#pragma unroll
            for (int j = 0; j < G; ++j) {
                int n = g + j;
                h[n] = fmaf(decay(n, dt * a[n]), h[n], dx * bv[j]);
                acc = fmaf(h[n], cv[j], acc);
            }
        }
        float out = acc + dskip * xv;
#if SCAN_PREFETCH
        out *= silu(zv);
#else
        out *= silu(ld(z + m * ld_z + e));  // loaded where used: fewer registers live across the state loop
#endif
        st(y + m * E + e, out);
    }
    if (final_state != 0) {
#pragma unroll
        for (int n = 0; n < N; ++n) final_state[(b * E + e) * N + n] = h[n];
    }
}
