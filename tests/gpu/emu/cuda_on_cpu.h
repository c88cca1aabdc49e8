// CUDA C on the CPU, for testing only: force-included (g++ -include) before a genomamba kernel source so that
// the very text NVRTC compiles for the GPU also builds as a host shared library. The fake libnvrtc
// (nvrtc_emu.cpp) compiles it; the fake libcuda (cuda_emu.cpp) loads it and calls gm_emu_launch.
//
// Execution model: one launch at a time in the process (the fake driver holds a lock), its blocks one after
// another; the threads of a block run as fibers, each on its own stack, switching only at __syncthreads() and
// warp shuffles, which wait for every live thread of the block (or warp). So warp-synchronous code and
// shared memory behave as on a GPU, and a barrier that not every thread reaches is reported, not hung on.
// What this cannot show: data races between threads (there is no true concurrency; GENOMAMBA_EMU_REVERSE=1
// at least reverses the order blocks and threads start in), the memory model, and speed.
//
// Shapes: gridDim and blockDim as in CUDA (x fastest). Warps are 32 consecutive linear thread ids.
#pragma once

#include <math.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/mman.h>

struct gm_dim3 {
    unsigned x, y, z;
};

// The indices a kernel reads; set by the scheduler before it resumes each fiber.
static gm_dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// One block runs at a time in the process (the fake driver serialises launches), so a function-scope static
// is per block.
#define __shared__ static

static inline float gm_bits_f(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
static inline unsigned gm_f_bits(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}
static inline float __uint_as_float(unsigned u) { return gm_bits_f(u); }
static inline unsigned __float_as_uint(float f) { return gm_f_bits(f); }
static inline float __int_as_float(int i) { return gm_bits_f((unsigned)i); }
static inline int __float_as_int(float f) { return (int)gm_f_bits(f); }
// GENOMAMBA_EMU_EX2_ULP=k (default 0): every normal exp2f and __expf result moved k units in the last place, all
// the same way (results that would leave the normal range stay as they are). On the GPU both are ex2.approx
// under --use_fast_math: CUDA documents 2 ulp for exp2f, and for __expf an error that grows with |x|, in a
// pattern this cannot copy. A bias of that size in the same direction everywhere is the worst case for the
// scan, whose decays compound, so parity under k = +-2 bounds what the GPU's exp2 can cost.
static inline int gm_ex2_ulp() {
    static const int k = [] {
        const char* s = std::getenv("GENOMAMBA_EMU_EX2_ULP");
        return s ? std::atoi(s) : 0;
    }();
    return k;
}
static inline float gm_ulp_biased(float r) {
    int k = gm_ex2_ulp();
    if (k == 0 || !std::isnormal(r) || r < 0.0f) return r;
    float b = gm_bits_f(gm_f_bits(r) + (unsigned)k);
    return std::isnormal(b) ? b : r;
}
static inline float gm_exp2f(float v) { return gm_ulp_biased(exp2f(v)); }
#define exp2f(v) gm_exp2f(v)
// glibc declares its own __expf and __logf; the kernels mean CUDA's fast versions, here the exact ones (but
// for the bias above).
#define __expf(v) gm_ulp_biased(expf(v))
#define __logf(v) logf(v)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float v) { return 1.0f / sqrtf(v); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }

// Everything here has internal linkage: each kernel module keeps its own scheduler and registry (an inline
// function's static would otherwise be one process-wide object shared by every loaded module).
namespace gm_emu {
namespace {

[[noreturn]] inline void die(const std::string& what) {
    std::fprintf(stderr, "cuda-on-cpu: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

// ---- fibers: a stack and a saved stack pointer; the switch saves the callee-saved registers (x86-64 SysV).
extern "C" void gm_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .p2align 4
    .globl gm_emu_switch
    .hidden gm_emu_switch
    .type gm_emu_switch,@function
gm_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size gm_emu_switch, .-gm_emu_switch
)");

enum class State { Ready, AtBlockBarrier, AtWarpBarrier, Done };

constexpr size_t STACK_BYTES = 256 * 1024;

struct Fiber {
    void* sp = nullptr;
    char* stack = nullptr;
    gm_dim3 tid{0, 0, 0};
    State state = State::Done;
    unsigned shuffles = 0;  // shuffles done so far in this launch (picks the exchange buffer)
};

// A kernel launch: the registry's trampoline for the kernel, the kernel, and CUDA's `void** kernelParams`.
struct Launch {
    void (*call)(void* fn, void** params);
    void* fn;
    void** params;
};

// The fibers (reused across launches), the running one, the body they run, and the barrier counters of the
// block being run. The fake driver runs one launch at a time in the whole process, so plain globals serve.
struct Scheduler {
    std::vector<Fiber> fibers;
    void* main_sp = nullptr;
    int current = -1;
    const Launch* launch = nullptr;  // what every fiber of the current launch runs
    unsigned n = 0;  // threads in the block
    std::vector<unsigned> ready;
    size_t ready_head = 0;
    unsigned block_live = 0, block_arrived = 0;
    std::vector<unsigned> warp_live, warp_arrived;
    // Warp shuffle exchange: two buffers (alternating per shuffle) of one slot per linear thread id.
    std::vector<float> slots[2];
};

Scheduler g_sched;

[[noreturn]] static void fiber_entry();

void grow(Scheduler& s, size_t n) {
    while (s.fibers.size() < n) {
        Fiber f;
        void* m = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (m == MAP_FAILED) die("mmap of a fiber stack failed");
        f.stack = static_cast<char*>(m);
        s.fibers.push_back(f);
    }
    for (auto& b : s.slots) b.resize(n);
    s.warp_live.resize((n + 31) / 32);
    s.warp_arrived.resize((n + 31) / 32);
}

// A fresh fiber's stack: six zero registers for the switch to pop, then fiber_entry as the return address;
// after that `ret` the stack pointer is 8 mod 16, as after a call.
void arm(Fiber& f) {
    uintptr_t top = reinterpret_cast<uintptr_t>(f.stack + STACK_BYTES) & ~uintptr_t(15);
    void** sp = reinterpret_cast<void**>(top - 64);
    for (int i = 0; i < 6; ++i) sp[i] = nullptr;
    sp[6] = reinterpret_cast<void*>(&fiber_entry);
    f.sp = sp;
}

// The running thread stops (at a barrier, or done): switches straight to the next ready thread, or back to
// run_block when none is.
void yield_to_scheduler() {
    Scheduler& s = g_sched;
    void** save = &s.fibers[s.current].sp;
    if (s.ready_head == s.ready.size()) {
        gm_emu_switch(save, s.main_sp);
        return;
    }
    unsigned next = s.ready[s.ready_head++];
    if (next == (unsigned)s.current) return;
    s.current = (int)next;
    threadIdx = s.fibers[next].tid;
    gm_emu_switch(save, s.fibers[next].sp);
}

// Marks every thread of [lo, hi) waiting in `st` ready.
void release(Scheduler& s, unsigned lo, unsigned hi, State st) {
    for (unsigned i = lo; i < hi; ++i)
        if (s.fibers[i].state == st) {
            s.fibers[i].state = State::Ready;
            s.ready.push_back(i);
        }
}

// After a thread arrives at a barrier or leaves: opens the warp's and the block's barrier once every live
// thread is there.
void settle(Scheduler& s, unsigned w) {
    if (s.warp_arrived[w] > 0 && s.warp_arrived[w] == s.warp_live[w]) {
        s.warp_arrived[w] = 0;
        release(s, w * 32, w * 32 + 32 < s.n ? w * 32 + 32 : s.n, State::AtWarpBarrier);
    }
    if (s.block_arrived > 0 && s.block_arrived == s.block_live) {
        s.block_arrived = 0;
        release(s, 0, s.n, State::AtBlockBarrier);
    }
}

[[noreturn]] static void fiber_entry() {
    for (;;) {
        Scheduler& s = g_sched;
        s.launch->call(s.launch->fn, s.launch->params);
        unsigned me = (unsigned)s.current;
        s.fibers[me].state = State::Done;
        --s.block_live;
        --s.warp_live[me / 32];
        settle(s, me / 32);
        yield_to_scheduler();
    }
}

unsigned linear_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

// GENOMAMBA_EMU_REVERSE=1: blocks, and threads within a block, start in reverse order, so a kernel that
// depends on the order of blocks or threads it does not synchronise gives different results.
bool reversed() {
    static const bool r = [] {
        const char* v = std::getenv("GENOMAMBA_EMU_REVERSE");
        return v && *v && *v != '0';
    }();
    return r;
}

// Runs one block of `n` threads to completion.
void run_block(Scheduler& s, unsigned n) {
    s.n = n;
    s.ready.clear();
    s.ready_head = 0;
    s.block_live = n;
    s.block_arrived = 0;
    for (unsigned w = 0; w < (n + 31) / 32; ++w) {
        s.warp_live[w] = (w + 1) * 32 <= n ? 32 : n - w * 32;
        s.warp_arrived[w] = 0;
    }
    for (unsigned k = 0; k < n; ++k) {
        unsigned i = reversed() ? n - 1 - k : k;
        Fiber& f = s.fibers[i];
        f.tid = {i % blockDim.x, (i / blockDim.x) % blockDim.y, i / (blockDim.x * blockDim.y)};
        f.state = State::Ready;
        f.shuffles = 0;
        arm(f);
        s.ready.push_back(i);
    }
    // Threads hand over to each other directly; control comes back here only when none is ready.
    while (s.ready_head < s.ready.size()) {
        unsigned i = s.ready[s.ready_head++];
        s.current = (int)i;
        threadIdx = s.fibers[i].tid;
        gm_emu_switch(&s.main_sp, s.fibers[i].sp);
        s.current = -1;
    }
    if (s.block_live != 0)
        die("deadlock: a __syncthreads or warp shuffle that not every live thread of the block (or warp) "
            "reaches");
}

// The running thread waits at a warp (`warp`) or block barrier until every live thread of it has arrived.
void wait(bool warp) {
    Scheduler& s = g_sched;
    if (s.current < 0) die("__syncthreads or a shuffle outside a kernel");
    unsigned me = (unsigned)s.current;
    s.fibers[me].state = warp ? State::AtWarpBarrier : State::AtBlockBarrier;
    if (warp)
        ++s.warp_arrived[me / 32];
    else
        ++s.block_arrived;
    // If this was the last to arrive, settle queues everyone (this thread last), so it yields all the same.
    settle(s, me / 32);
    yield_to_scheduler();
}

// ---- kernel registry: name -> trampoline that unpacks CUDA's `void** kernelParams` by the signature.
std::map<std::string, std::pair<void (*)(void*, void**), void*>>& registry() {
    static std::map<std::string, std::pair<void (*)(void*, void**), void*>> r;
    return r;
}

template <class... A, size_t... I>
void call_unpacked(void (*f)(A...), void** p, std::index_sequence<I...>) {
    f(*static_cast<std::remove_reference_t<A>*>(p[I])...);
}

template <class... A>
void trampoline(void* fn, void** params) {
    call_unpacked(reinterpret_cast<void (*)(A...)>(fn), params, std::index_sequence_for<A...>{});
}

struct Register {
    template <class... A>
    Register(const char* name, void (*f)(A...)) {
        registry()[name] = {&trampoline<A...>, reinterpret_cast<void*>(f)};
    }
};

}  // namespace
}  // namespace gm_emu

static inline void __syncthreads() { gm_emu::wait(false); }

// CUDA's 16-byte vector type, and the alignment a GPU demands of a vector load (checked: a misaligned one fails
// the launch there, while x86 would just load it).
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
#define GM_CHECK_ALIGNED(p, bytes)                                                                  \
    do {                                                                                            \
        if (reinterpret_cast<uintptr_t>(p) % (bytes) != 0)                                          \
            gm_emu::die("misaligned " #bytes "-byte vector load in " + std::string(__func__));    \
    } while (0)

// Every shuffle in the kernels uses the full mask. Each lane publishes its value in this shuffle's buffer,
// the warp meets, and each reads its partner's. Buffers alternate, so a lane can only overwrite one after the
// next meeting, which every lane reaches only once it has read.
static inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
    if (mask != 0xffffffffu) gm_emu::die("only full-warp shuffles are emulated");
    gm_emu::Scheduler& s = gm_emu::g_sched;
    unsigned me = gm_emu::linear_tid();
    std::vector<float>& buf = s.slots[s.fibers[me].shuffles++ & 1];
    buf[me] = v;
    gm_emu::wait(true);
    unsigned other = (me & ~31u) | ((me & 31u) ^ (unsigned)(lane_mask & 31));
    if (other >= s.n) gm_emu::die("shuffle with a lane outside the block");
    return buf[other];
}

// Called by the fake driver: runs `name` over the grid. Returns 0, or 1 when the name is unknown.
extern "C" __attribute__((visibility("default"))) int gm_emu_launch(const char* name, const unsigned grid[3],
                                                                     const unsigned block[3], void** params) {
    auto it = gm_emu::registry().find(name);
    if (it == gm_emu::registry().end()) return 1;
    gm_emu::Scheduler& s = gm_emu::g_sched;
    unsigned n = block[0] * block[1] * block[2];
    if (n == 0 || n > 1024) gm_emu::die("block of " + std::to_string(n) + " threads");
    gm_emu::grow(s, n);
    gm_emu::Launch l{it->second.first, it->second.second, params};
    s.launch = &l;
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    bool rev = gm_emu::reversed();
    for (unsigned z = 0; z < grid[2]; ++z)
        for (unsigned y = 0; y < grid[1]; ++y)
            for (unsigned x = 0; x < grid[0]; ++x) {
                blockIdx = rev ? gm_dim3{grid[0] - 1 - x, grid[1] - 1 - y, grid[2] - 1 - z} : gm_dim3{x, y, z};
                gm_emu::run_block(s, n);
            }
    return 0;
}

// Whether this module defines kernel `name`.
extern "C" __attribute__((visibility("default"))) int gm_emu_has(const char* name) {
    return gm_emu::registry().count(name) ? 1 : 0;
}

#define GM_EMU_REGISTER(name) static gm_emu::Register gm_emu_reg_##name(#name, &name);
