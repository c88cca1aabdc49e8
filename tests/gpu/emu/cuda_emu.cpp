// A stand-in for the CUDA driver library (libcuda.so), for testing only: the subset of the driver API that
// cudarc calls for genomamba-cuda, executed on the CPU. One emulated device; every call is synchronous, so
// streams and events keep their ordering trivially; kernels are modules built by the fake NVRTC
// (nvrtc_emu.cpp), run by the fiber scheduler of cuda_on_cpu.h.
//
// Device memory is host memory laid out so mistakes show: every allocation ends at a page followed by an
// inaccessible guard page (an overrun by a kernel faults), new memory is filled with 0xFF bytes (NaN as f32
// and bf16, so a read before any write poisons the result), and every copy or memset is checked to lie inside
// one live allocation. Memory pools are reported (attribute 115), as on Hopper, so cudarc allocates with
// cuMemAllocAsync and frees with cuMemFreeAsync; those check their stream (the legacy default or one that is
// live) and that what they free is device memory, and allocate like cuMemAlloc. Environment:
// GENOMAMBA_EMU_SMS (multiprocessors reported, default 4), GENOMAMBA_EMU_FREE_MIB (free memory reported,
// default 2048), GENOMAMBA_EMU_TRACE=1 (print each launch).
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>

#define API extern "C" __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

enum : CUresult {
    OK = 0,
    INVALID_VALUE = 1,
    OUT_OF_MEMORY = 2,
    INVALID_DEVICE = 101,
    INVALID_IMAGE = 200,
    INVALID_HANDLE = 400,
    NOT_FOUND = 500,
    ILLEGAL_ADDRESS = 700,
    LAUNCH_FAILED = 719,
    NOT_SUPPORTED = 801,
};

namespace {

struct Context {
    unsigned flags = 0;  // cuCtxSetFlags / cuCtxGetFlags (scheduling policy; no effect here)
} g_context;

struct Stream {};

struct Event {
    std::chrono::steady_clock::time_point at;
    bool recorded = false;
};

typedef int (*LaunchFn)(const char*, const unsigned*, const unsigned*, void**);
typedef int (*HasFn)(const char*);

struct Module {
    LaunchFn launch;
    HasFn has;
};

struct Function {
    Module* module;
    std::string name;
};

enum class Kind { Device, DeviceAsync, Host };

struct Allocation {
    size_t bytes;      // what was asked for
    char* map;         // start of the mapping
    size_t map_bytes;  // whole mapping, guard page included
    Kind kind;         // how it was allocated (cuMemAlloc, cuMemAllocAsync, cuMemHostAlloc)
};

std::mutex g_mutex;
std::map<uintptr_t, Allocation> g_allocs;  // keyed by the address handed out
std::set<void*> g_streams;                 // live streams (cuStreamCreate*, not yet destroyed)

size_t env_size(const char* name, size_t dflt) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 10) : dflt;
}

size_t page() {
    static size_t p = (size_t)sysconf(_SC_PAGESIZE);
    return p;
}

// Maps `bytes` so that they end 256-byte aligned right before a PROT_NONE page.
CUresult allocate(void** out, size_t bytes, Kind kind) {
    size_t body = (bytes + 255) / 256 * 256;
    if (body == 0) body = 256;
    size_t data_pages = (body + page() - 1) / page() * page();
    size_t map_bytes = data_pages + page();
    void* m = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return OUT_OF_MEMORY;
    char* base = static_cast<char*>(m);
    if (mprotect(base + data_pages, page(), PROT_NONE) != 0) {
        munmap(m, map_bytes);
        return OUT_OF_MEMORY;
    }
    char* p = base + data_pages - body;
    if (!std::getenv("GENOMAMBA_EMU_NO_POISON")) std::memset(p, 0xff, body);
    std::lock_guard<std::mutex> g(g_mutex);
    g_allocs[(uintptr_t)p] = Allocation{bytes, base, map_bytes, kind};
    *out = p;
    return OK;
}

// Frees the allocation starting at `p`, which must be host memory when `host` and device memory (from either
// device allocator: cuMemFree and cuMemFreeAsync each take both) when not.
CUresult release(uintptr_t p, bool host, const char* what) {
    std::lock_guard<std::mutex> g(g_mutex);
    auto it = g_allocs.find(p);
    if (it == g_allocs.end()) {
        std::fprintf(stderr, "cuda-emu: %s of 0x%llx, which is no live allocation\n", what, (unsigned long long)p);
        return INVALID_VALUE;
    }
    if ((it->second.kind == Kind::Host) != host) {
        std::fprintf(stderr, "cuda-emu: %s of 0x%llx, which is %s memory\n", what, (unsigned long long)p,
                     host ? "device" : "page-locked host");
        return INVALID_VALUE;
    }
    munmap(it->second.map, it->second.map_bytes);
    g_allocs.erase(it);
    return OK;
}

// Whether [p, p + n) lies inside one live allocation (device or pinned host).
bool inside(uintptr_t p, size_t n) {
    std::lock_guard<std::mutex> g(g_mutex);
    auto it = g_allocs.upper_bound(p);
    if (it == g_allocs.begin()) return false;
    --it;
    return p >= it->first && p + n <= it->first + it->second.bytes;
}

// Whether `s` names a stream work may be enqueued on: the legacy (0) or per-thread (2) default stream, or a live
// stream.
CUresult check_stream(const char* what, void* s) {
    if (s == nullptr || s == (void*)0x2) return OK;
    std::lock_guard<std::mutex> g(g_mutex);
    if (g_streams.count(s)) return OK;
    std::fprintf(stderr, "cuda-emu: %s on stream %p, which is not a live stream\n", what, s);
    return INVALID_HANDLE;
}

CUresult check_range(const char* what, uintptr_t p, size_t n) {
    if (n == 0 || inside(p, n)) return OK;
    std::fprintf(stderr, "cuda-emu: %s of %zu bytes at 0x%llx is outside every device allocation\n", what, n,
                 (unsigned long long)p);
    return ILLEGAL_ADDRESS;
}

}  // namespace

// ---- for the fake cuBLAS: how many bytes of one live allocation follow `p` (0 when none).
API size_t gm_emu_bytes_after(uintptr_t p) {
    std::lock_guard<std::mutex> g(g_mutex);
    auto it = g_allocs.upper_bound(p);
    if (it == g_allocs.begin()) return 0;
    --it;
    if (p < it->first || p >= it->first + it->second.bytes) return 0;
    return it->first + it->second.bytes - p;
}

// ---- initialisation, devices, contexts
API CUresult cuInit(unsigned) { return OK; }
API CUresult cuDriverGetVersion(int* v) {
    *v = 13000;
    return OK;
}
API CUresult cuDeviceGetCount(int* n) {
    *n = 1;
    return OK;
}
API CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    if (ordinal != 0) return INVALID_DEVICE;
    *d = 0;
    return OK;
}
API CUresult cuDeviceGetName(char* name, int len, CUdevice) {
    std::snprintf(name, (size_t)len, "genomamba CPU emulation of CUDA (not a GPU)");
    return OK;
}
API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice) {
    *bytes = env_size("GENOMAMBA_EMU_FREE_MIB", 2048) << 21;
    return OK;
}
API CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice) {
    switch (attr) {
        case 1:  // max threads per block
        case 2:  // max block dim x
            *v = 1024;
            break;
        case 3:
        case 4:
            *v = 1024;
            break;
        case 10:  // warp size
            *v = 32;
            break;
        case 13:  // SM clock, kHz: a nominal 1 GHz, so that the benchmark's peak arithmetic runs here
        case 36:  // memory clock, kHz: likewise
            *v = 1000000;
            break;
        case 37:  // memory bus width, bits
            *v = 64;
            break;
        case 16:  // multiprocessors
            *v = (int)env_size("GENOMAMBA_EMU_SMS", 4);
            break;
        case 75:  // compute capability
            *v = 9;
            break;
        case 76:
            *v = 0;
            break;
        case 115:  // memory pools supported (as on every GPU since Pascal with CUDA 11.2+)
            *v = 1;
            break;
        default:  // everything else: not supported
            *v = 0;
    }
    return OK;
}
API CUresult cuDeviceGetUuid(unsigned char* uuid, CUdevice) {
    std::memset(uuid, 0, 16);
    return OK;
}
API CUresult cuDeviceGetUuid_v2(unsigned char* uuid, CUdevice d) { return cuDeviceGetUuid(uuid, d); }
API CUresult cuDevicePrimaryCtxRetain(void** ctx, CUdevice) {
    *ctx = &g_context;
    return OK;
}
API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return OK; }
API CUresult cuCtxGetCurrent(void** ctx) {
    *ctx = &g_context;
    return OK;
}
API CUresult cuCtxSetCurrent(void*) { return OK; }
API CUresult cuCtxSynchronize() { return OK; }
API CUresult cuCtxSetFlags(unsigned flags) {
    g_context.flags = flags;
    return OK;
}
API CUresult cuCtxGetFlags(unsigned* flags) {
    *flags = g_context.flags;
    return OK;
}
API CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total) {
    *free_bytes = env_size("GENOMAMBA_EMU_FREE_MIB", 2048) << 20;
    *total = *free_bytes * 2;
    return OK;
}

// ---- streams and events (all work is already done when a call returns)
API CUresult cuStreamCreate(void** s, unsigned flags) {
    (void)flags;
    *s = new Stream{};
    std::lock_guard<std::mutex> g(g_mutex);
    g_streams.insert(*s);
    return OK;
}
API CUresult cuStreamCreateWithPriority(void** s, unsigned flags, int) { return cuStreamCreate(s, flags); }
API CUresult cuStreamDestroy_v2(void* s) {
    {
        std::lock_guard<std::mutex> g(g_mutex);
        if (!g_streams.erase(s)) return INVALID_HANDLE;
    }
    delete static_cast<Stream*>(s);
    return OK;
}
API CUresult cuStreamSynchronize(void*) { return OK; }
API CUresult cuStreamWaitEvent(void*, void*, unsigned) { return OK; }
API CUresult cuEventCreate(void** e, unsigned) {
    *e = new Event();
    return OK;
}
API CUresult cuEventRecord(void* e, void*) {
    auto* ev = static_cast<Event*>(e);
    ev->at = std::chrono::steady_clock::now();
    ev->recorded = true;
    return OK;
}
API CUresult cuEventSynchronize(void*) { return OK; }
API CUresult cuEventQuery(void*) { return OK; }
API CUresult cuEventElapsedTime(float* ms, void* a, void* b) {
    auto* s = static_cast<Event*>(a);
    auto* e = static_cast<Event*>(b);
    if (!s->recorded || !e->recorded) return INVALID_HANDLE;
    *ms = std::chrono::duration<float, std::milli>(e->at - s->at).count();
    return OK;
}
API CUresult cuEventElapsedTime_v2(float* ms, void* a, void* b) { return cuEventElapsedTime(ms, a, b); }
API CUresult cuEventDestroy_v2(void* e) {
    delete static_cast<Event*>(e);
    return OK;
}

// ---- memory
namespace {
CUresult device_alloc(CUdeviceptr* p, size_t bytes, Kind kind) {
    void* v = nullptr;
    CUresult r = allocate(&v, bytes, kind);
    *p = (CUdeviceptr)(uintptr_t)v;
    return r;
}
}  // namespace

API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) { return device_alloc(p, bytes, Kind::Device); }
// Stream-ordered allocation from the device's default pool: the memory is usable by work enqueued on `s` after
// this call (here at once, as all work is synchronous), with the same guard page and NaN fill as cuMemAlloc.
API CUresult cuMemAllocAsync(CUdeviceptr* p, size_t bytes, void* s) {
    if (CUresult r = check_stream("cuMemAllocAsync", s)) return r;
    return device_alloc(p, bytes, Kind::DeviceAsync);
}
API CUresult cuMemFree_v2(CUdeviceptr p) { return release((uintptr_t)p, false, "cuMemFree"); }
// Stream-ordered free: the memory returns to the pool once `s` reaches it (here at once: it is unmapped).
API CUresult cuMemFreeAsync(CUdeviceptr p, void* s) {
    if (CUresult r = check_stream("cuMemFreeAsync", s)) return r;
    return release((uintptr_t)p, false, "cuMemFreeAsync");
}
API CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned) { return allocate(p, bytes, Kind::Host); }
API CUresult cuMemFreeHost(void* p) { return release((uintptr_t)p, true, "cuMemFreeHost"); }

API CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, void*) {
    if (CUresult r = check_range("memset", (uintptr_t)p, n)) return r;
    std::memset((void*)(uintptr_t)p, v, n);
    return OK;
}
API CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n) { return cuMemsetD8Async(p, v, n, nullptr); }
API CUresult cuMemsetD32Async(CUdeviceptr p, unsigned v, size_t n, void*) {
    if (CUresult r = check_range("memset32", (uintptr_t)p, n * 4)) return r;
    auto* w = (unsigned*)(uintptr_t)p;
    for (size_t i = 0; i < n; ++i) w[i] = v;
    return OK;
}
API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void*) {
    if (CUresult r = check_range("copy to device", (uintptr_t)dst, n)) return r;
    std::memcpy((void*)(uintptr_t)dst, src, n);
    return OK;
}
API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void*) {
    if (CUresult r = check_range("copy from device", (uintptr_t)src, n)) return r;
    std::memcpy(dst, (const void*)(uintptr_t)src, n);
    return OK;
}
API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void*) {
    if (CUresult r = check_range("copy destination", (uintptr_t)dst, n)) return r;
    if (CUresult r = check_range("copy source", (uintptr_t)src, n)) return r;
    std::memmove((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, n);
    return OK;
}
API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
    return cuMemcpyHtoDAsync_v2(dst, src, n, nullptr);
}
API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
    return cuMemcpyDtoHAsync_v2(dst, src, n, nullptr);
}
API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
    return cuMemcpyDtoDAsync_v2(dst, src, n, nullptr);
}

// ---- modules and launches
static const char MAGIC[] = "GENOMAMBA-CUDA-EMU-SO:";

API CUresult cuModuleLoadData(void** module, const void* image) {
    const char* s = static_cast<const char*>(image);
    if (std::strncmp(s, MAGIC, sizeof MAGIC - 1) != 0) {
        std::fprintf(stderr, "cuda-emu: module image is not from the emulated NVRTC (a real CUBIN?)\n");
        return INVALID_IMAGE;
    }
    std::string path(s + sizeof MAGIC - 1);
    void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        std::fprintf(stderr, "cuda-emu: dlopen %s: %s\n", path.c_str(), dlerror());
        return INVALID_IMAGE;
    }
    auto launch = (LaunchFn)dlsym(dl, "gm_emu_launch");
    auto has = (HasFn)dlsym(dl, "gm_emu_has");
    if (!launch || !has) return INVALID_IMAGE;
    *module = new Module{launch, has};
    return OK;
}
API CUresult cuModuleUnload(void* m) {
    // The library stays loaded: its fibers' thread-local state may outlive the module handle.
    delete static_cast<Module*>(m);
    return OK;
}
API CUresult cuModuleGetFunction(void** f, void* m, const char* name) {
    auto* mod = static_cast<Module*>(m);
    if (!mod->has(name)) return NOT_FOUND;
    *f = new Function{mod, name};
    return OK;
}
API CUresult cuFuncGetAttribute(int* v, int, void*) {
    *v = 0;
    return OK;
}
API CUresult cuFuncSetAttribute(void*, int, int) { return OK; }

API CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                            unsigned shared_bytes, void*, void** params, void** extra) {
    auto* fn = static_cast<Function*>(f);
    if (extra != nullptr || shared_bytes != 0) return NOT_SUPPORTED;
    // The limits of compute capability 9.0.
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gx > 0x7fffffffu || gy > 65535 ||
        gz > 65535 || bx > 1024 || by > 1024 || bz > 64 || (unsigned long long)bx * by * bz > 1024)
        return INVALID_VALUE;
    if (std::getenv("GENOMAMBA_EMU_TRACE"))
        std::fprintf(stderr, "cuda-emu: launch %s grid (%u,%u,%u) block (%u,%u,%u)\n", fn->name.c_str(), gx, gy, gz,
                     bx, by, bz);
    unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
    // The kernel modules keep their scheduler in globals: one launch at a time in the process.
    static std::mutex launch_lock;
    std::lock_guard<std::mutex> g(launch_lock);
    return fn->module->launch(fn->name.c_str(), grid, block, params) == 0 ? OK : LAUNCH_FAILED;
}

// ---- errors
API CUresult cuGetErrorName(CUresult e, const char** s) {
    switch (e) {
        case OK: *s = "CUDA_SUCCESS"; break;
        case INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; break;
        case OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
        case INVALID_DEVICE: *s = "CUDA_ERROR_INVALID_DEVICE"; break;
        case INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; break;
        case INVALID_HANDLE: *s = "CUDA_ERROR_INVALID_HANDLE"; break;
        case NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; break;
        case ILLEGAL_ADDRESS: *s = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
        case LAUNCH_FAILED: *s = "CUDA_ERROR_LAUNCH_FAILED"; break;
        case NOT_SUPPORTED: *s = "CUDA_ERROR_NOT_SUPPORTED"; break;
        default: *s = "CUDA_ERROR_UNKNOWN";
    }
    return OK;
}
API CUresult cuGetErrorString(CUresult e, const char** s) { return cuGetErrorName(e, s); }
