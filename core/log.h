// core/log.h — structured logging to stderr in logfmt (`level=info event=ready k=v`),
// which journald stores as is. One write(2) per line, so lines from different threads
// never interleave. Never log a secret: callers pass only masked values.
#pragma once

#include <cstdint>

namespace rw {

enum class LogLevel : uint8_t { debug, info, warn, error };

void log_set_level(LogLevel level);
bool log_enabled(LogLevel level);

// printf-style; the text after "level=X " is the format's expansion.
[[gnu::format(printf, 2, 3)]] void log_write(LogLevel level, const char* format, ...);

}  // namespace rw

#define RW_LOG_DEBUG(...)                                        \
    do {                                                         \
        if (::rw::log_enabled(::rw::LogLevel::debug)) {          \
            ::rw::log_write(::rw::LogLevel::debug, __VA_ARGS__); \
        }                                                        \
    } while (0)
#define RW_LOG_INFO(...) ::rw::log_write(::rw::LogLevel::info, __VA_ARGS__)
#define RW_LOG_WARN(...) ::rw::log_write(::rw::LogLevel::warn, __VA_ARGS__)
#define RW_LOG_ERROR(...) ::rw::log_write(::rw::LogLevel::error, __VA_ARGS__)
