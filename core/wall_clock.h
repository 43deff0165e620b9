// core/wall_clock.h — the wall clock budgets and usage days are read from: UTC unix time
// (CLOCK_REALTIME_COARSE, a vDSO read, no syscall). Test builds only (RW_BUILD_TESTS, which
// defines RW_TEST_CLOCK for wall_clock.cc) honour RINGWAY_TEST_CLOCK_FILE: a file holding
// a whole number of seconds added to the clock, read at every call, so an e2e test can move
// the gateway across a budget period without waiting. -DRW_BUILD_TESTS=OFF builds without
// it. Any thread.
#pragma once

#include <cstdint>

namespace rw {

// Milliseconds since the Unix epoch, UTC.
[[nodiscard]] int64_t wall_clock_unix_ms();

}  // namespace rw
