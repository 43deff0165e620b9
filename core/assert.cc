// core/assert.cc — assert_fail(), the one place an assertion ends the process. It is its
// own tiny library (rw_assert) so arena, storage and every test can link it.
// It writes with write(2) only: the heap or stdio may be the thing that broke.
#include "core/assert.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace rw {

void assert_fail(const char* condition, const char* file, int line) {
    char text[512];
    const int length = std::snprintf(text, sizeof(text), "ringway: assertion failed: %s (%s:%d)\n",
                                     condition, file, line);
    if (length > 0) {
        const auto bytes = static_cast<size_t>(length) < sizeof(text) ? static_cast<size_t>(length)
                                                                      : sizeof(text) - 1;
        [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, text, bytes);
    }
    std::abort();
}

}  // namespace rw
