// Sums of hidden rows over row ranges, for mean pooling on the GPU: only the sums cross PCIe. Needs prelude.cuh.
//
// Two passes, no atomics, so every sum is the same from run to run: the host cuts each range into tiles of at
// most a few dozen rows, `sum_tiles` sums each tile, `sum_tile_runs` sums each range's run of tiles. f64
// accumulation, so a range as long as a million-row chunk sums as exactly as the host's f64 pooling.

// hidden: (rows, d) f32. tiles: (ntiles, 2) int, [row0, row1) of hidden. partial: (ntiles, d) f64, each the
// sum of its tile's rows in row order.
// Launch: 1-D grid-stride over ntiles*d (column fastest, so reads and writes coalesce).
extern "C" __global__ void sum_tiles(const float* __restrict__ hidden, const int* __restrict__ tiles,
                                     double* __restrict__ partial, int ntiles, int d) {
    GRID_STRIDE(i, (i64)ntiles * d) {
        i64 k = i / d;
        int c = (int)(i - k * d);
        int r0 = tiles[2 * k], r1 = tiles[2 * k + 1];
        const float* src = hidden + (i64)r0 * d + c;
        double s = 0.0;
        for (int r = r0; r < r1; ++r, src += d) s += (double)*src;
        partial[i] = s;
    }
}

// partial: (ntiles, d) f64 from sum_tiles. first: (nruns + 1,) int, run j owns tiles [first[j], first[j+1]).
// out: (nruns, d) f64, each the sum of its run's tiles in order (0 for an empty run).
// Launch: 1-D grid-stride over nruns*d.
extern "C" __global__ void sum_tile_runs(const double* __restrict__ partial, const int* __restrict__ first,
                                         double* __restrict__ out, int nruns, int d) {
    GRID_STRIDE(i, (i64)nruns * d) {
        i64 j = i / d;
        int c = (int)(i - j * d);
        double s = 0.0;
        for (int k = first[j]; k < first[j + 1]; ++k) s += partial[(i64)k * d + c];
        out[i] = s;
    }
}
