// core/http_write.cc — formatting of response heads and JSON error bodies into fixed
// buffers. Pure functions over memory the caller owns; called on the shard threads.
#include "core/http_write.h"

#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/assert.h"
#include "core/text.h"

namespace rw {
namespace {

struct Out {
    char* out;
    uint32_t capacity;
    uint32_t used = 0;
    bool is_full = false;

    void put(std::string_view text) {
        if (text.empty()) {
            return;  // An empty view may have a null data(): memcpy must not see it.
        }
        if (used + text.size() > capacity) {
            is_full = true;
            return;
        }
        std::memcpy(out + used, text.data(), text.size());
        used += static_cast<uint32_t>(text.size());
    }
    void put_number(uint64_t value) {
        char digits[decimal_bytes_max];  // No format parsing on every response head.
        const char* end = decimal_write(digits, value);
        put({digits, static_cast<size_t>(end - digits)});
    }
    // JSON string content (core/text.h's escaper).
    void put_json_escaped(std::string_view text) {
        const uint64_t escaped_bytes = json_escaped_bytes(text);
        if (used + escaped_bytes > capacity) {
            is_full = true;
            return;
        }
        used = static_cast<uint32_t>(json_escape_write(out + used, text) - out);
    }
};

}  // namespace

std::string_view status_reason(uint16_t status) {
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 417: return "Expectation Failed";
        case 422: return "Unprocessable Content";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

std::string_view error_type_for(uint16_t status) {
    return status >= 500 ? "server_error" : "invalid_request_error";
}

uint32_t write_response(char* out, uint32_t capacity, const ResponseSpec& spec) {
    RW_ASSERT(spec.status >= 100);
    RW_ASSERT(spec.status <= 599);
    Out text{out, capacity};
    text.put("HTTP/1.1 ");
    text.put_number(spec.status);
    text.put(" ");
    text.put(status_reason(spec.status));
    text.put("\r\nServer: ringway\r\n");
    text.put(spec.date_line);
    if (!spec.content_type.empty()) {
        text.put("Content-Type: ");
        text.put(spec.content_type);
        text.put("\r\n");
    }
    // A 204 or 304 has no content and no Content-Length [RFC 9110 8.6, 15.3.5, 15.4.5].
    const bool has_no_content = spec.status == 204 || spec.status == 304;
    if (!has_no_content) {
        text.put("Content-Length: ");
        text.put_number(spec.body.size());
        text.put("\r\n");
    }
    if (spec.is_close) {
        text.put("Connection: close\r\n");
    }
    text.put(spec.connection_line);
    text.put(spec.extra_headers);
    text.put("\r\n");
    if (!spec.is_head_only && !has_no_content) {
        text.put(spec.body);
    }
    return text.is_full ? 0 : text.used;
}

void format_date_line(char (&out)[date_line_bytes + 1], int64_t unix_seconds) {
    const time_t seconds = static_cast<time_t>(unix_seconds);
    tm parts;
    gmtime_r(&seconds, &parts);
    // RFC 9110 §5.6.7 IMF-fixdate, e.g. "Date: Wed, 25 Nov 2026 03:40:00 GMT\r\n".
    const size_t length = strftime(out, sizeof(out), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &parts);
    RW_ASSERT(length == date_line_bytes);
}

uint32_t write_error_body(char* out, uint32_t capacity, uint16_t status, std::string_view code,
                          std::string_view message) {
    Out text{out, capacity};
    text.put("{\"error\":{\"message\":\"");
    text.put_json_escaped(message);
    text.put("\",\"type\":\"");
    text.put(error_type_for(status));
    text.put("\",\"param\":null,\"code\":\"");
    text.put_json_escaped(code);
    text.put("\"}}");
    return text.is_full ? 0 : text.used;
}

}  // namespace rw
