// Checks exp2_fma of kernels/scan.cu (the SCAN_EX2_POLY variant's exp2) against exp2 in double over every float
// in [-125, 0], and its edge cases. Built and run by tests/gpu/emu/run.sh:
//   g++ -std=c++17 -O2 -include tests/gpu/emu/cuda_on_cpu.h tests/gpu/emu/exp2_fma_check.cpp && ./a.out
// Prints the largest relative error; fails above the 8.0e-8 that kernels/scan.cu and its READMEs state.
#include "../../../kernels/prelude.cuh"
#include "../../../kernels/scan.cu"

int main() {
    double worst = 0.0;
    float at = 0.0f;
    // Negative floats from -0.0 (0x80000000) to -125, in order of their bit patterns.
    for (unsigned u = 0x80000000u, end = __float_as_uint(-125.0f); u <= end; ++u) {
        float v = __uint_as_float(u);
        double want = std::exp2((double)v);
        double err = std::fabs((double)exp2_fma(v) - want) / want;
        if (err > worst) {
            worst = err;
            at = v;
        }
    }
    std::printf("exp2_fma: largest relative error %.3g at %.9g over every float in [-125, 0]\n", worst, at);
    bool ok = worst <= 8.0e-8;
    float tiny = 0x1p-125f;
    float edges[] = {-0.0f, -126.0f, -INFINITY, NAN};
    float want_edges[] = {1.0f, tiny, tiny, tiny};
    for (int i = 0; i < 4; ++i) {
        if (exp2_fma(edges[i]) != want_edges[i]) {
            std::printf("exp2_fma(%g) = %g, want %g\n", edges[i], exp2_fma(edges[i]), want_edges[i]);
            ok = false;
        }
    }
    return ok ? 0 : 1;
}
