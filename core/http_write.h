// core/http_write.h — response heads and OpenAI-style JSON error bodies, written into
// caller-provided memory (a request arena). No heap, no exceptions. Every error the
// gateway produces itself goes through write_error_response, so all of them share one
// shape: {"error":{"message":…,"type":…,"code":…}}.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/limits.h"

namespace rw {

std::string_view status_reason(uint16_t status);

// "invalid_request_error" for 4xx, "server_error" for 5xx (OpenAI's error types).
std::string_view error_type_for(uint16_t status);

struct ResponseSpec {
    uint16_t status;
    std::string_view content_type;
    std::string_view body;
    bool is_close;                     // Adds "Connection: close".
    bool is_head_only;                 // HEAD: Content-Length of the body, no body bytes.
    std::string_view extra_headers;    // Complete "Name: value\r\n" lines, or empty.
    std::string_view date_line;        // "Date: …\r\n" from the shard's per-second cache.
    std::string_view connection_line;  // e.g. "Connection: keep-alive\r\n" for HTTP/1.0.
};

// Head plus body into out (a 204 or 304: the head alone, without Content-Length). Returns
// the bytes written, or 0 if capacity is too small (callers size the buffer from the body
// first, so 0 is a bug: they assert on it).
[[nodiscard]] uint32_t write_response(char* out, uint32_t capacity, const ResponseSpec& spec);

// The JSON error body alone. message is escaped; code is snake_case ASCII.
[[nodiscard]] uint32_t write_error_body(char* out, uint32_t capacity, uint16_t status,
                                        std::string_view code, std::string_view message);

// Formats "Date: <IMF-fixdate>\r\n" for unix_seconds into out (date_line_bytes).
void format_date_line(char (&out)[date_line_bytes + 1], int64_t unix_seconds);

// Bytes needed at most for an error body with this message and code.
constexpr uint32_t error_body_bytes_max(std::string_view code, std::string_view message) {
    return static_cast<uint32_t>(96 + code.size() + message.size() * 6);
}

}  // namespace rw
