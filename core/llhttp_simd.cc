// core/llhttp_simd.cc — llhttp's two entry points, forwarded to the build chosen at load
// (core/llhttp_simd.h). api.c (llhttp_init, llhttp_reset, llhttp_execute) calls these.
#include "core/llhttp_simd.h"

#include <llhttp.h>

#include <cstdlib>
#include <cstring>

extern "C" {
int rw_llhttp_base_init(llhttp__internal_t* state);
int rw_llhttp_base_execute(llhttp__internal_t* state, const char* p, const char* endp);
#if RW_LLHTTP_SSE42
int rw_llhttp_sse42_init(llhttp__internal_t* state);
int rw_llhttp_sse42_execute(llhttp__internal_t* state, const char* p, const char* endp);
#endif
}

namespace {

struct LlhttpBuild {
    int (*init)(llhttp__internal_t*);
    int (*execute)(llhttp__internal_t*, const char*, const char*);
    bool simd;
};

// Written once by choose_llhttp_build() before main(), read-only afterwards.
LlhttpBuild chosen = {rw_llhttp_base_init, rw_llhttp_base_execute, false};

// Runs at load, before main() and before any thread: RINGWAY_LLHTTP_SIMD=0 keeps the
// baseline; any other value (core/config.cc refuses all but 0 and 1) or none lets the CPU
// decide.
__attribute__((constructor)) void choose_llhttp_build() {
    const char* forced = std::getenv("RINGWAY_LLHTTP_SIMD");
    if (forced != nullptr && std::strcmp(forced, "0") == 0) {
        return;
    }
#if RW_LLHTTP_SSE42
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        chosen = {rw_llhttp_sse42_init, rw_llhttp_sse42_execute, true};
    }
#endif
}

}  // namespace

extern "C" int llhttp__internal_init(llhttp__internal_t* state) {
    return chosen.init(state);
}

extern "C" int llhttp__internal_execute(llhttp__internal_t* state, const char* p,
                                        const char* endp) {
    return chosen.execute(state, p, endp);
}

namespace rw {

bool llhttp_simd_active() {
    return chosen.simd;
}

}  // namespace rw
