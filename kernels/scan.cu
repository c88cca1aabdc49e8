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

#define N D_STATE

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
    for (int t = t0; t < t1; ++t) {
        i64 m = b * T + t;
        float dt = softplus20(ld(dt_raw + m * E + e) + bias);
        float dx = dt * ld(x + m * E + e);
        const act_t* bp = xdbl + m * ld_dbl + off_b;
#pragma unroll
        for (int n = 0; n < N; ++n) {
            // P as the product of the very decays the sequential scan applies: exp2(a * sum dt) would carry
            // the rounding of a long f32 sum into every later block's entering state.
            float d = exp2f(dt * a[n]);
            p[n] *= d;
            h[n] = d * h[n] + dx * ld(bp + n);
        }
    }
    i64 o = ((b * nblk + blk) * E + e) * N;
#pragma unroll
    for (int n = 0; n < N; ++n) {
        P[o + n] = p[n];
        H[o + n] = h[n];
    }
}

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
        for (int blk = 0; blk < nblk; ++blk) {
            i64 o = (i64)blk * EN;
            float pv = p[o], hv = hp[o];
            hp[o] = h;
            h = pv * h + hv;
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
    for (int t = t0; t < t1; ++t) {
        i64 m = b * T + t;
        float xv = ld(x + m * E + e);
        float dt = softplus20(ld(dt_raw + m * E + e) + bias);
        float dx = dt * xv;
        const act_t* bp = xdbl + m * ld_dbl + off_b;
        const act_t* cp = xdbl + m * ld_dbl + off_c;
        float acc = 0.0f;
#pragma unroll
        for (int n = 0; n < N; ++n) {
            h[n] = exp2f(dt * a[n]) * h[n] + dx * ld(bp + n);
            acc += h[n] * ld(cp + n);
        }
        float out = acc + dskip * xv;
        out *= silu(ld(z + m * ld_z + e));
        st(y + m * E + e, out);
    }
    if (final_state != 0) {
#pragma unroll
        for (int n = 0; n < N; ++n) final_state[(b * E + e) * N + n] = h[n];
    }
}
