// A stand-in for libcublas.so, for testing only: cublasGemmEx in f32 and bf16 (f32 accumulation), computed on
// the CPU with cuBLAS's column-major semantics, and the handle calls cudarc makes. Arguments are validated
// as cuBLAS documents (leading dimensions at least the rows of the stored matrix, each operand spanning fewer
// than 2^31 elements), and every operand must lie inside one allocation of the fake driver (cuda_emu.cpp), so a
// wrong leading dimension, transpose or extent in the engine fails here as it would on a GPU, instead of
// reading past a buffer.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#define API extern "C" __attribute__((visibility("default")))

typedef int Status;
enum : Status { SUCCESS = 0, NOT_INITIALIZED = 1, INVALID_VALUE = 7, EXECUTION_FAILED = 13, NOT_SUPPORTED = 15 };
enum { OP_N = 0, OP_T = 1 };
enum { R_32F = 0, R_16BF = 14 };
enum { COMPUTE_32F = 68 };

namespace {

struct Handle {
    void* stream;
};

size_t bytes_after(const void* p) {
    typedef size_t (*F)(uintptr_t);
    static F f = [] {
        void* dl = dlopen("libcuda.so", RTLD_NOW | RTLD_NOLOAD);
        return dl ? (F)dlsym(dl, "gm_emu_bytes_after") : (F) nullptr;
    }();
    return f ? f((uintptr_t)p) : SIZE_MAX;
}

float load(const void* base, int type, size_t i) {
    if (type == R_32F) return static_cast<const float*>(base)[i];
    uint32_t u = (uint32_t) static_cast<const uint16_t*>(base)[i] << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

void store(void* base, int type, size_t i, float v) {
    if (type == R_32F) {
        static_cast<float*>(base)[i] = v;
        return;
    }
    uint32_t u;
    std::memcpy(&u, &v, 4);
    uint16_t h;
    if ((u & 0x7fffffffu) > 0x7f800000u)
        h = (uint16_t)((u >> 16) | 0x40u);
    else
        h = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    static_cast<uint16_t*>(base)[i] = h;
}

// Bytes spanned by a column-major `rows x cols` matrix with leading dimension `ld`.
size_t span(int rows, int cols, int ld, int type) {
    if (rows == 0 || cols == 0) return 0;
    return ((size_t)(cols - 1) * ld + rows) * (type == R_32F ? 4 : 2);
}

// Whether a column-major `rows x cols` operand with leading dimension `ld` spans fewer than 2^31 elements:
// cuBLAS documents failures for larger operands, so the emulation refuses them.
bool span_ok(const char* what, int rows, int cols, int ld) {
    size_t n = rows == 0 || cols == 0 ? 0 : (size_t)(cols - 1) * ld + rows;
    if (n < ((size_t)1 << 31)) return true;
    std::fprintf(stderr, "cublas-emu: operand %s spans %zu elements (2^31 or more)\n", what, n);
    return false;
}

bool operand_ok(const char* what, const void* p, size_t need) {
    if (need == 0) return true;
    size_t have = bytes_after(p);
    if (have >= need) return true;
    std::fprintf(stderr, "cublas-emu: operand %s needs %zu bytes, its allocation has %zu after it\n", what, need,
                 have);
    return false;
}

}  // namespace

API Status cublasCreate_v2(void** h) {
    *h = new Handle{nullptr};
    return SUCCESS;
}
API Status cublasDestroy_v2(void* h) {
    delete static_cast<Handle*>(h);
    return SUCCESS;
}
API Status cublasSetStream_v2(void* h, void* s) {
    static_cast<Handle*>(h)->stream = s;
    return SUCCESS;
}
API Status cublasGetStream_v2(void* h, void** s) {
    *s = static_cast<Handle*>(h)->stream;
    return SUCCESS;
}
API Status cublasSetMathMode(void*, int) { return SUCCESS; }
API Status cublasSetWorkspace_v2(void*, void*, size_t) { return SUCCESS; }

// C (m x n) = alpha op(A) op(B) + beta C, column-major; op(A) is m x k, op(B) is k x n.
API Status cublasGemmEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha, const void* A,
                        int atype, int lda, const void* B, int btype, int ldb, const void* beta, void* C, int ctype,
                        int ldc, int compute, int /*algo*/) {
    if (!handle) return NOT_INITIALIZED;
    if (compute != COMPUTE_32F) return NOT_SUPPORTED;
    if (atype != btype || atype != ctype || (atype != R_32F && atype != R_16BF)) return NOT_SUPPORTED;
    if ((transa != OP_N && transa != OP_T) || (transb != OP_N && transb != OP_T)) return NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0) return INVALID_VALUE;
    int a_rows = transa == OP_N ? m : k, a_cols = transa == OP_N ? k : m;
    int b_rows = transb == OP_N ? k : n, b_cols = transb == OP_N ? n : k;
    if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) || ldc < (m > 1 ? m : 1)) {
        std::fprintf(stderr, "cublas-emu: leading dimension too small (m %d n %d k %d lda %d ldb %d ldc %d)\n", m, n,
                     k, lda, ldb, ldc);
        return INVALID_VALUE;
    }
    if (!span_ok("A", a_rows, a_cols, lda) || !span_ok("B", b_rows, b_cols, ldb) ||
        !span_ok("C", m, n, ldc))
        return NOT_SUPPORTED;
    if (m == 0 || n == 0) return SUCCESS;
    if (!operand_ok("A", A, span(a_rows, a_cols, lda, atype)) || !operand_ok("B", B, span(b_rows, b_cols, ldb, btype)) ||
        !operand_ok("C", C, span(m, n, ldc, ctype)))
        return EXECUTION_FAILED;
    float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
    // Gather op(A) rows and op(B) columns contiguously, then dot products with f32 accumulation.
    std::vector<float> a((size_t)m * k), b((size_t)k);
    for (int i = 0; i < m; ++i)
        for (int l = 0; l < k; ++l)
            a[(size_t)i * k + l] = load(A, atype, transa == OP_N ? (size_t)l * lda + i : (size_t)i * lda + l);
    for (int j = 0; j < n; ++j) {
        for (int l = 0; l < k; ++l)
            b[l] = load(B, btype, transb == OP_N ? (size_t)j * ldb + l : (size_t)l * ldb + j);
        for (int i = 0; i < m; ++i) {
            const float* ar = &a[(size_t)i * k];
            float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int l = 0;
            for (; l + 8 <= k; l += 8)
                for (int u = 0; u < 8; ++u) s[u] += ar[l + u] * b[l + u];
            float acc = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
            for (; l < k; ++l) acc += ar[l] * b[l];
            size_t ci = (size_t)j * ldc + i;
            float v = al * acc;
            if (be != 0.0f) v += be * load(C, ctype, ci);
            store(C, ctype, ci, v);
        }
    }
    return SUCCESS;
}

API const char* cublasGetStatusString(Status s) {
    switch (s) {
        case SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        default: return "CUBLAS_STATUS_UNKNOWN";
    }
}
API const char* cublasGetStatusName(Status s) { return cublasGetStatusString(s); }
