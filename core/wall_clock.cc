// core/wall_clock.cc — see wall_clock.h. Built twice: plain into rw_base (every program),
// and with RW_TEST_CLOCK into rw_test_clock, which only the test binary links.
#include "core/wall_clock.h"

#include <ctime>

#ifdef RW_TEST_CLOCK
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#endif

namespace rw {
namespace {

#ifdef RW_TEST_CLOCK
// The offset in milliseconds the test's file holds now (0 when unset or unreadable).
int64_t test_clock_offset_us() {
    static const char* const path = std::getenv("RINGWAY_TEST_CLOCK_FILE");
    if (path == nullptr || path[0] == '\0') {
        return 0;
    }
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char text[32] = {};
    const ssize_t got = ::read(fd, text, sizeof(text) - 1);
    ::close(fd);
    if (got <= 0) {
        return 0;
    }
    return std::strtoll(text, nullptr, 10) * 1000;
}
#else
constexpr int64_t test_clock_offset_us() {
    return 0;
}
#endif

}  // namespace

int64_t wall_clock_unix_us() {
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return int64_t(now.tv_sec) * 1000000 + now.tv_nsec / 1000 + test_clock_offset_us();
}

}  // namespace rw
