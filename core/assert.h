// core/assert.h — ringway's assertions. RW_ASSERT is on in every build (Redis, Seastar,
// TigerBeetle): an impossible state logs the condition, file and line, then aborts.
// RW_DASSERT is for expensive checks and compiles away outside debug builds. Asserts
// are for our own invariants only; untrusted input produces a Fault, never an assert.
#pragma once

namespace rw {

[[noreturn, gnu::cold]] void assert_fail(const char* condition, const char* file, int line);

}  // namespace rw

#define RW_LIKELY(x) __builtin_expect(!!(x), 1)
#define RW_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define RW_ASSERT(cond)                                   \
    do {                                                  \
        if (RW_UNLIKELY(!(cond))) {                       \
            ::rw::assert_fail(#cond, __FILE__, __LINE__); \
        }                                                 \
    } while (0)

#if defined(RW_DEBUG)
#define RW_DASSERT(cond) RW_ASSERT(cond)
#else
#define RW_DASSERT(cond)    \
    do {                    \
        (void)sizeof(cond); \
    } while (0)
#endif

#define RW_UNREACHABLE() ::rw::assert_fail("unreachable", __FILE__, __LINE__)
