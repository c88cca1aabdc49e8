// Depthwise causal conv + SiLU with a carried conv state. Needs prelude.cuh; specialised by D_CONV (K >= 2).
//
// Layout: nb windows of T rows each, row m = b*T + t.
// xz:    (nb*T, ld_xz) act_t, the in_proj output; x (the conv input) is columns [0, E).
// state: (nb, E, K-1) f32, the K-1 pre-conv inputs before this chunk, oldest first (zeros for a fresh window).
// w:     (E, K) f32, tap K-1 multiplies the current token (PyTorch cross-correlation). bias: (E,) f32.
// xc:    (nb*T, E) act_t, SiLU(bias + sum_k w[e,k] * x[t-(K-1)+k]).

#define KM1 (D_CONV - 1)

// 1-D grid-stride launch over nb*T*E (channel fastest, so loads and stores coalesce).
extern "C" __global__ void conv_silu(const act_t* __restrict__ xz, i64 ld_xz, const float* __restrict__ state,
                                     const float* __restrict__ w, const float* __restrict__ bias,
                                     act_t* __restrict__ xc, int nb, int T, int E) {
    GRID_STRIDE(i, (i64)nb * T * E) {
        i64 m = i / E;
        int e = (int)(i - m * E);
        int t = (int)(m % T);
        i64 b = m / T;
        float acc = bias[e];
#pragma unroll
        for (int k = 0; k < D_CONV; ++k) {
            int tau = t - KM1 + k;  // time of this tap relative to the chunk start
            float xv = tau >= 0 ? ld(xz + (m - KM1 + k) * ld_xz + e) : state[(b * E + e) * KM1 + (KM1 + tau)];
            acc += w[(i64)e * D_CONV + k] * xv;
        }
        st(xc + i, silu(acc));
    }
}

// After conv_silu: state <- the last K-1 entries of (state ++ x[0..T)), per (b, e). One thread per (b, e).
// Works for any T >= 1, including T < K-1: index j of the new state is index T+j of the concatenation, which
// is never an entry already overwritten (T+j > j), so the in-place update is safe in increasing j.
extern "C" __global__ void conv_state_update(const act_t* __restrict__ xz, i64 ld_xz, float* __restrict__ state,
                                             int nb, int T, int E) {
    GRID_STRIDE(i, (i64)nb * E) {
        i64 b = i / E;
        int e = (int)(i - b * E);
        float* s = state + i * KM1;
#pragma unroll
        for (int j = 0; j < KM1; ++j) {
            int src = T + j;
            s[j] = src < KM1 ? s[src] : ld(xz + (b * T + (src - KM1)) * ld_xz + e);
        }
    }
}
