// proxy/upstream_parse.h — llhttp in response mode over an upstream's bytes. Body bytes
// are not copied: the parser reports them as spans into the input buffer (through the
// chunked framing), so the relay can lend that buffer to the client send. It pauses at
// the end of the head (the caller decides: relay, retry or refuse) and when its span
// list is full. One per upstream attempt; single-threaded (the shard).
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string_view>

#include "core/limits.h"

namespace rw {

struct UpstreamHead {
    uint16_t status = 0;
    uint8_t version_minor = 1;
    bool is_chunked = false;
    bool has_content_length = false;
    bool is_event_stream = false;  // Content-Type: text/event-stream.
    bool has_connection_close = false;
    // A 204 or 304 that announced a body (Content-Length > 0 or chunked): the body is not
    // read (RFC 9110 15.3.5, 15.4.5) and the connection is not reused.
    bool has_skipped_body = false;
    uint64_t content_length = 0;
    uint32_t retry_after_s = 0;
    bool has_retry_after = false;    // Retry-After or retry-after-ms was sent (and relayed).
    char content_type[96] = {};      // Copied: relayed to the client.
    char content_encoding[64] = {};  // Copied: relayed with the body it describes.
    char request_id[64] = {};        // x-request-id (or request-id): the usage row keeps it.
};

enum class UpstreamEvent : uint8_t {
    need_more,
    head_complete,
    spans_full,
    message_complete,
    error
};

// Whether a response header (name lower-cased) goes on to the client: the ones clients act
// on — request ids (x-request-id, request-id), back-off advice (retry-after,
// retry-after-ms, x-ratelimit-*, anthropic-ratelimit-*) and openai-processing-ms — and
// never one naming a credential or a cookie, whatever its prefix.
[[nodiscard]] bool upstream_header_is_relayed(std::string_view name);

// Which of the provider's x-ratelimit-* lines ringway's own limits replace (the client runs
// into ringway's limit first): the parser drops them instead of relaying them.
enum UpstreamReplaced : uint8_t {
    upstream_replaces_none = 0,
    upstream_replaces_requests = 1,  // x-ratelimit-*-requests.
    upstream_replaces_tokens = 2,    // x-ratelimit-*-tokens.
};

// Whether a relayed name (lower-cased) is one of the x-ratelimit-* lines `replaced` names.
[[nodiscard]] bool upstream_header_is_replaced(std::string_view name, uint8_t replaced);

struct UpstreamFeed {
    UpstreamEvent event;
    uint32_t consumed_bytes;
};

class UpstreamParser {
public:
    UpstreamParser();
    UpstreamParser(const UpstreamParser&) = delete;
    UpstreamParser& operator=(const UpstreamParser&) = delete;

    // relayed: where the relayed headers go as "name: value\r\n" lines (caller's memory,
    // capacity bytes; nullptr: none are kept). A line that does not fit is dropped whole;
    // the x-ratelimit-* lines `replaced` names (UpstreamReplaced bits) are dropped and take
    // no room.
    void start(char* relayed = nullptr, uint32_t relayed_capacity = 0,
               uint8_t replaced = upstream_replaces_none);

    // Parses input. Spans of body bytes found are appended to spans() (views into
    // input, valid while input is). Stops at head_complete (once), at spans_full, at
    // message_complete (bytes after consumed_bytes are extra bytes: the connection must
    // not be reused) or at error. Interim 1xx heads (100 Continue, 103 Early Hints) are
    // skipped, up to upstream_interim_heads_max; a 101, a transfer coding other than one
    // `chunked`, or a repeated or oversized Content-Encoding is an error.
    [[nodiscard]] UpstreamFeed feed(std::string_view input);

    // The upstream closed its side: completes a response delimited by EOF (HTTP/1.0
    // without length) or reports truncation. Returns true if the message is complete.
    [[nodiscard]] bool finish_on_eof();

    const UpstreamHead& head() const { return head_; }
    std::string_view relayed_headers() const { return {relayed_, relayed_bytes_}; }
    // The head is relayed: header lines after it (a chunked body's trailers) are not kept,
    // so the buffer may end at its bytes (attempt_relayed_headers_trim).
    void relayed_seal() { relayed_capacity_ = relayed_bytes_; }
    const std::string_view* spans() const { return spans_; }
    uint32_t span_count() const { return span_count_; }
    void spans_clear() { span_count_ = 0; }
    bool is_head_complete() const { return is_head_complete_; }
    bool is_message_complete() const { return is_message_complete_; }
    // Keep-alive possible after the message (HTTP/1.1, no Connection: close).
    bool is_reusable() const;
    uint64_t body_bytes() const { return body_bytes_; }
    const char* error_reason() const;

private:
    static int on_status_complete(llhttp_t* parser);
    static int on_header_field(llhttp_t* parser, const char* at, size_t length);
    static int on_header_value(llhttp_t* parser, const char* at, size_t length);
    static int on_header_value_complete(llhttp_t* parser);
    static int on_headers_complete(llhttp_t* parser);
    static int on_body(llhttp_t* parser, const char* at, size_t length);
    static int on_message_complete(llhttp_t* parser);
    void relay_header(std::string_view name, std::string_view value);

    llhttp_settings_t settings_;
    llhttp_t parser_;
    UpstreamHead head_;
    std::string_view spans_[upstream_body_spans_max];
    uint32_t span_count_ = 0;
    uint64_t body_bytes_ = 0;
    // The header being read: its name (lower-cased, truncated) and value, copied since
    // llhttp may deliver them in pieces across buffers.
    char field_[64] = {};
    uint32_t field_bytes_ = 0;
    bool is_field_truncated_ = false;
    char value_[96] = {};
    uint32_t value_bytes_ = 0;
    bool is_value_after_field_ = false;
    bool is_value_truncated_ = false;  // The header's value outgrew value_.
    char* relayed_ = nullptr;
    uint32_t relayed_capacity_ = 0;
    uint32_t relayed_bytes_ = 0;
    uint8_t replaced_ = upstream_replaces_none;
    bool is_head_complete_ = false;
    bool is_message_complete_ = false;
    bool is_head_reported_ = false;
    bool is_interim_ = false;  // The current head is a 1xx being skipped.
    bool has_transfer_encoding_ = false;
    bool is_transfer_encoding_ok_ = true;  // One Transfer-Encoding line, exactly "chunked".
    uint32_t interim_count_ = 0;
    const char* head_error_ = nullptr;  // Why the head was refused (llhttp's reason otherwise).
};

}  // namespace rw
