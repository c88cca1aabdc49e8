// Mean pooling over bins of consecutive rows on the GPU, so only pooled rows cross PCIe. Needs prelude.cuh.
//
// hidden: (nb*T, d) f32; bins are [k*bin, min((k+1)*bin, T)) within each window, nbins = ceil(T/bin); the
// last bin may be shorter and is averaged over its own length. out: (nb*nbins, d) f32.
// Launch: 1-D grid-stride over nb*nbins*d (column fastest, so reads and writes coalesce).
extern "C" __global__ void pool_mean(const float* __restrict__ hidden, float* __restrict__ out, int nb, int T,
                                     int d, int bin) {
    int nbins = (T + bin - 1) / bin;
    GRID_STRIDE(i, (i64)nb * nbins * d) {
        i64 q = i / d;
        int c = (int)(i - q * d);
        i64 b = q / nbins;
        int k = (int)(q - b * nbins);
        int t0 = k * bin;
        int t1 = min(T, t0 + bin);
        const float* src = hidden + (b * T + t0) * d + c;
        float s = 0.0f;
        for (int t = t0; t < t1; ++t, src += d) s += *src;
        out[i] = s / (float)(t1 - t0);
    }
}
