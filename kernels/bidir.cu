// Bidirectional (Caduceus) plumbing around the Mamba kernels: flips of the f32 residual stream, combining a
// direction's mixer output into the window's mixer output, and the RCPS final hidden state. Needs prelude.cuh
// (act_t). All launches are 1-D grid-stride.

// dst[r, c] = src[flip_rows ? rows-1-r : r, flip_cols ? d-1-c : c]; src, dst: (rows, d) f32, not aliased.
// flip_rows and flip_cols both set is Caduceus' `rc` of a (L, D) stream (reverse length and channels).
extern "C" __global__ void flip_f32(const float* __restrict__ src, float* __restrict__ dst, i64 rows, int d,
                                    int flip_rows, int flip_cols) {
    GRID_STRIDE(i, rows * d) {
        i64 r = i / d;
        int c = (int)(i - r * d);
        i64 sr = flip_rows ? rows - 1 - r : r;
        int sc = flip_cols ? d - 1 - c : c;
        dst[i] = src[sr * d + sc];
    }
}

// Row i of mix (rows, d) act_t goes to row row0 + step*i of dst (f32, leading dimension d):
// mode 0: dst = mix; 1: dst += mix; 2: dst *= mix. step is +1 (forward direction) or -1 (the reverse direction
// ran over the flipped window, so its row i belongs to window row row0 - i).
extern "C" __global__ void combine_rows(const act_t* __restrict__ mix, float* __restrict__ dst, i64 rows, int d,
                                        i64 row0, i64 step, int mode) {
    GRID_STRIDE(i, rows * d) {
        i64 r = i / d;
        int c = (int)(i - r * d);
        float v = ld(mix + i);
        float* p = dst + (row0 + step * r) * d + c;
        if (mode == 0) {
            *p = v;
        } else if (mode == 1) {
            *p += v;
        } else {
            *p *= v;
        }
    }
}

// s += a, element-wise over n f32 (the residual add of a whole window).
extern "C" __global__ void add_f32(float* __restrict__ s, const float* __restrict__ a, i64 n) {
    GRID_STRIDE(i, n) { s[i] += a[i]; }
}

// RCPS hidden state from h1 (rows, d) and g = reverse_channels(h2) (rows, d), both f32:
// raw 0: out (rows, d) = (h1 + g) / 2 (the strand-symmetric embedding);
// raw 1: out (rows, 2d) = [h1 | h2] = [h1 | reverse_channels(g)] (the model's own final state).
extern "C" __global__ void rcps_hidden(const float* __restrict__ h1, const float* __restrict__ g,
                                       float* __restrict__ out, i64 rows, int d, int raw) {
    int w = raw ? 2 * d : d;
    GRID_STRIDE(i, rows * w) {
        i64 r = i / w;
        int c = (int)(i - r * w);
        if (!raw) {
            out[i] = 0.5f * (h1[r * d + c] + g[r * d + c]);
        } else {
            out[i] = c < d ? h1[r * d + c] : g[r * d + (2 * d - 1 - c)];
        }
    }
}

// Masked-LM four-base head at every position (not shifted: a bidirectional model's row t describes base t).
// logit_b = h1[t] . wt[b] (+ g[t] . wtc[b] for RCPS, where g = reverse_channels(h2) and wtc[b] is the LM-head
// row of the complement of b), softmax over b in A, C, G, T. h1, g: (rows, d) f32 (g = 0 for Ph); wt, wtc:
// (4, d) f32; probs: (rows, 4) f32 out. Launch: one warp per row, block (256,1,1), grid ceil(rows / 8).
extern "C" __global__ void mlm_head(const float* __restrict__ h1, const float* __restrict__ g,
                                    const float* __restrict__ wt, const float* __restrict__ wtc,
                                    float* __restrict__ probs, i64 rows, int d) {
    i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;  // whole warp leaves together
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const float* hr = h1 + row * d;
    for (int c = lane; c < d; c += 32) {
        float v = hr[c];
#pragma unroll
        for (int b = 0; b < 4; ++b) s[b] += v * wt[b * d + c];
    }
    if (g != 0) {
        const float* gr = g + row * d;
        for (int c = lane; c < d; c += 32) {
            float v = gr[c];
#pragma unroll
            for (int b = 0; b < 4; ++b) s[b] += v * wtc[b * d + c];
        }
    }
#pragma unroll
    for (int b = 0; b < 4; ++b) s[b] = warp_sum(s[b]);
    if (lane != 0) return;
    float mx = fmaxf(fmaxf(s[0], s[1]), fmaxf(s[2], s[3]));
    float p[4];
    float sum = 0.0f;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
        p[b] = __expf(s[b] - mx);
        sum += p[b];
    }
    float inv = 1.0f / sum;
#pragma unroll
    for (int b = 0; b < 4; ++b) probs[row * 4 + b] = p[b] * inv;
}
