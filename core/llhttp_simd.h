// core/llhttp_simd.h — which of llhttp's two builds parses HTTP in this process. llhttp.c
// is compiled twice on x86-64 (core/llhttp.cmake): for baseline x86-64 and with its SSE4.2
// fast paths (16 header bytes per step). core/llhttp_simd.cc picks one before main() runs:
// SSE4.2 when the CPU has it, unless RINGWAY_LLHTTP_SIMD=0 forces the baseline (tests run
// the parsers under both). Both are built with LLHTTP_STRICT_MODE=1 and accept and refuse
// the same input. Any thread (read-only after load).
#pragma once

namespace rw {

// True when llhttp runs its SSE4.2 build.
bool llhttp_simd_active();

}  // namespace rw
