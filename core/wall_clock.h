// core/wall_clock.h — the one wall clock of the gateway: UTC unix time (CLOCK_REALTIME, a
// vDSO read, no syscall), read by budgets, expiry, usage days, the rate limiter's buckets
// and channel health's timestamps. The test binary (build/tests/ringway-test, which links
// wall_clock.cc built with RW_TEST_CLOCK) honours RINGWAY_TEST_CLOCK_FILE: a file holding
// a whole number of milliseconds added to the clock, read at every call, so an e2e test can
// move the gateway across a budget period or a rate-limit minute without waiting. The
// ringway binary (make build, make install, make deb) is linked without it and ignores the
// variable. Any thread.
#pragma once

#include <cstdint>

namespace rw {

// Microseconds since the Unix epoch, UTC.
[[nodiscard]] int64_t wall_clock_unix_us();

// Milliseconds since the Unix epoch, UTC.
[[nodiscard]] inline int64_t wall_clock_unix_ms() {
    return wall_clock_unix_us() / 1000;
}

}  // namespace rw
