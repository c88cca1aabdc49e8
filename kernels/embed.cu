// Embedding gather and bias add. Needs prelude.cuh (prepended by the loader).

// out[r, c] = table[tokens[r], c]. tokens: (rows,) u8, already checked < vocab on the host.
// table: (vocab, d) f32; out: (rows, d) f32 (the residual stream). 1-D grid-stride launch.
extern "C" __global__ void embed_gather(const unsigned char* __restrict__ tokens, const float* __restrict__ table,
                                        float* __restrict__ out, i64 rows, int d) {
    GRID_STRIDE(i, rows * d) {
        i64 r = i / d;
        int c = (int)(i - r * d);
        out[i] = table[(i64)tokens[r] * d + c];
    }
}

// x[r, c] += bias[c] for c < cols; x: (rows, ld) act_t. Used only by models with in_proj/out_proj biases.
extern "C" __global__ void add_bias(act_t* __restrict__ x, i64 ld_x, const float* __restrict__ bias, i64 rows,
                                    int cols) {
    GRID_STRIDE(i, rows * cols) {
        i64 r = i / cols;
        int c = (int)(i - r * cols);
        act_t* p = x + r * ld_x + c;
        st(p, ld(p) + bias[c]);
    }
}
