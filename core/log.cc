// core/log.cc — logfmt lines on stderr, one write(2) each. The level is set once at
// startup before any shard runs, then only read (relaxed atomic).
#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace rw {
namespace {

std::atomic<uint8_t> level_min{static_cast<uint8_t>(LogLevel::info)};

const char* level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
    }
    return "error";
}

}  // namespace

void log_set_level(LogLevel level) {
    level_min.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) {
    return static_cast<uint8_t>(level) >= level_min.load(std::memory_order_relaxed);
}

void log_write(LogLevel level, const char* format, ...) {
    if (!log_enabled(level)) {
        return;
    }
    char line[2048];
    int length = std::snprintf(line, sizeof(line), "level=%s ", level_name(level));
    va_list args;
    va_start(args, format);
    const int body = std::vsnprintf(line + length, sizeof(line) - size_t(length) - 1, format, args);
    va_end(args);
    if (body > 0) {
        length += body;
    }
    if (static_cast<size_t>(length) > sizeof(line) - 2) {
        length = static_cast<int>(sizeof(line) - 2);  // A cut line is still one line.
    }
    line[length] = '\n';
    [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line, size_t(length) + 1);
}

}  // namespace rw
