// A stand-in for libnvrtc.so, for testing only: "compiles" the exact source the engine hands NVRTC (prelude and
// kernel file, with its -D options) into a host shared library with the system C++ compiler, force-including
// cuda_on_cpu.h, and returns as the "CUBIN" a marker naming that library, which the fake driver
// (cuda_emu.cpp) loads. Each `extern "C" __global__` function found in the source is registered for launch.
// Libraries are cached by a hash of the source, the options and the header, in cache/ beside this library.
// Environment: CXX (default c++).
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#define API extern "C" __attribute__((visibility("default")))

typedef int Result;
enum : Result { SUCCESS = 0, INVALID_INPUT = 3, INVALID_PROGRAM = 4, COMPILATION = 6 };

namespace {

const char MAGIC[] = "GENOMAMBA-CUDA-EMU-SO:";

struct Program {
    std::string source, name, log, image;
};

std::string own_dir() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&own_dir), &info) == 0 || !info.dli_fname) return ".";
    std::string p = info.dli_fname;
    size_t slash = p.rfind('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

}  // namespace

API Result nvrtcVersion(int* major, int* minor) {
    *major = 13;
    *minor = 0;
    return SUCCESS;
}

API Result nvrtcCreateProgram(void** prog, const char* src, const char* name, int num_headers, const char* const*,
                              const char* const*) {
    if (!prog || !src) return INVALID_INPUT;
    if (num_headers != 0) return INVALID_INPUT;
    *prog = new Program{src, name ? name : "program.cu", "", ""};
    return SUCCESS;
}

API Result nvrtcDestroyProgram(void** prog) {
    if (!prog || !*prog) return INVALID_PROGRAM;
    delete static_cast<Program*>(*prog);
    *prog = nullptr;
    return SUCCESS;
}

API Result nvrtcCompileProgram(void* prog, int num_options, const char* const* options) {
    auto* p = static_cast<Program*>(prog);
    if (!p) return INVALID_PROGRAM;
    std::string dir = own_dir();
    std::string header = dir + "/cuda_on_cpu.h";
    std::string defines;
    for (int i = 0; i < num_options; ++i) {
        std::string o = options[i];
        if (o.rfind("-D", 0) == 0) defines += " " + quote(o);
        // Architecture, --use_fast_math, ptxas options: nothing to do on the CPU.
    }
    std::string text = p->source + "\n";
    static const std::regex entry(R"(extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\()");
    for (auto it = std::sregex_iterator(p->source.begin(), p->source.end(), entry); it != std::sregex_iterator();
         ++it)
        text += "GM_EMU_REGISTER(" + (*it)[1].str() + ")\n";
    const char* cxx = std::getenv("CXX");
    std::string compiler = cxx && *cxx ? cxx : "c++";
    uint64_t h = fnv1a(text, fnv1a(defines, fnv1a(read_file(header), fnv1a(compiler))));
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    std::string cache = dir + "/cache";
    mkdir(cache.c_str(), 0755);
    std::string stem = cache + "/" + p->name + "-" + hex;
    std::string so = stem + ".so";
    if (access(so.c_str(), R_OK) != 0) {
        // Names of this call's own: two threads (or processes) may compile the same kernel at once, and each
        // renames its finished library into place.
        static std::atomic<unsigned> calls{0};
        std::string unique = "." + std::to_string(getpid()) + "-" + std::to_string(calls++);
        std::string cpp = stem + unique + ".cpp";
        {
            std::ofstream f(cpp, std::ios::binary);
            f << text;
        }
        std::string log = stem + unique + ".log";
        std::string tmp = stem + unique + ".tmp.so";
        std::string cmd = compiler + " -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -fno-gnu-unique -Wno-unknown-pragmas -include " + quote(header) +
                          defines + " " + quote(cpp) + " -o " + quote(tmp) + " > " + quote(log) + " 2>&1";
        int rc = std::system(cmd.c_str());
        p->log = read_file(log);
        if (rc != 0 || std::rename(tmp.c_str(), so.c_str()) != 0) {
            p->log = "cuda-emu: `" + cmd + "` failed:\n" + p->log;
            std::remove(tmp.c_str());
            return COMPILATION;
        }
        std::rename(cpp.c_str(), (stem + ".cpp").c_str());
        std::rename(log.c_str(), (stem + ".log").c_str());
    }
    p->image = std::string(MAGIC) + so;
    p->image.push_back('\0');
    return SUCCESS;
}

API Result nvrtcGetProgramLogSize(void* prog, size_t* size) {
    *size = static_cast<Program*>(prog)->log.size() + 1;
    return SUCCESS;
}
API Result nvrtcGetProgramLog(void* prog, char* out) {
    const std::string& l = static_cast<Program*>(prog)->log;
    std::memcpy(out, l.c_str(), l.size() + 1);
    return SUCCESS;
}
API Result nvrtcGetCUBINSize(void* prog, size_t* size) {
    auto* p = static_cast<Program*>(prog);
    if (p->image.empty()) return INVALID_PROGRAM;
    *size = p->image.size();
    return SUCCESS;
}
API Result nvrtcGetCUBIN(void* prog, char* out) {
    auto* p = static_cast<Program*>(prog);
    if (p->image.empty()) return INVALID_PROGRAM;
    std::memcpy(out, p->image.data(), p->image.size());
    return SUCCESS;
}
API Result nvrtcGetPTXSize(void* prog, size_t* size) { return nvrtcGetCUBINSize(prog, size); }
API Result nvrtcGetPTX(void* prog, char* out) { return nvrtcGetCUBIN(prog, out); }
API const char* nvrtcGetErrorString(Result r) {
    switch (r) {
        case SUCCESS: return "NVRTC_SUCCESS";
        case INVALID_INPUT: return "NVRTC_ERROR_INVALID_INPUT";
        case INVALID_PROGRAM: return "NVRTC_ERROR_INVALID_PROGRAM";
        case COMPILATION: return "NVRTC_ERROR_COMPILATION";
        default: return "NVRTC_ERROR_UNKNOWN";
    }
}
