// core/http_parse.h — the client request parser: llhttp 8.1.0 in strict mode plus ringway's
// own refusals, turning received bytes into a ParsedRequest whose every view lives in the
// request arena. conn.cc owns one RequestParser per client connection and calls start() for
// each pipelined message, then feed() for each received buffer. The input buffer may be
// given back to the kernel as soon as feed() returns: nothing here points into it.
// Shard thread only; allocates only from the arena given to start().
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string_view>

#include "arena/arena.h"
#include "core/limits.h"

namespace rw {

enum class Method : uint8_t { get, head, post, put, delete_, options, patch, other };

// Why a request was refused. Every value but none ends the connection: the caller answers
// with parse_error_status() and closes (RULES.md 1). The order is fixed: metrics index
// their per-kind counters by it.
enum class ParseError : uint8_t {
    none,
    bad_request,               // 400: llhttp rejected the syntax (no finer class fits).
    bad_method,                // 400: not a method token llhttp knows.
    bad_target,                // 400: not origin-form ("*" only for OPTIONS), '#', bare '%'.
    request_line_too_long,     // 414
    header_bytes_too_large,    // 431: header lines (and trailers) over header_bytes_max.
    too_many_headers,          // 431
    body_too_large,            // 413: by Content-Length at head time or while de-chunking.
    chunk_ext_too_long,        // 400
    obs_fold,                  // 400: a header line starts with SP or HTAB.
    bare_cr_or_lf,             // 400: CR not followed by LF, or LF not preceded by CR.
    invalid_header,            // 400: bad header name or value bytes.
    missing_host,              // 400: HTTP/1.1 without Host.
    duplicate_host,            // 400
    bad_version,               // 505: well-formed but not HTTP/1.0 or 1.1 (0.9, 1.2, 2.0).
    upgrade_refused,           // 400: any Upgrade header; ringway never switches protocols.
    connect_refused,           // 405: CONNECT; ringway is not a tunnel.
    cl_and_te,                 // 400: Content-Length together with Transfer-Encoding.
    duplicate_content_length,  // 400: even when the values are equal.
    bad_content_length,        // 400: not digits, or overflows 64 bits.
    bad_transfer_encoding,     // 501: anything but exactly one "chunked" on HTTP/1.1.
    bad_chunk,                 // 400: chunk size or chunk framing.
    arena_exhausted,           // 431: the arena refused memory for the head.
    body_arena_exhausted,      // 413: the arena refused memory for the body.
    bad_host,                  // 400: Host is not uri-host[:port] (space, '/', '\\', non-ASCII).
    count_,
};

uint16_t parse_error_status(ParseError error);           // HTTP status to answer with.
std::string_view parse_error_code(ParseError error);     // snake_case: JSON "code", metrics kind.
std::string_view parse_error_message(ParseError error);  // One sentence for JSON "message".

struct HeaderField {
    std::string_view name;   // As received (case kept); in the request arena.
    std::string_view value;  // Without leading or trailing SP/HTAB; in the request arena.
};

// The parsed message. Views point into the request arena (method_text into a static
// llhttp string) and are valid until that arena's release().
struct ParsedRequest {
    Method method;
    std::string_view method_text;
    std::string_view target;  // Origin-form: starts with '/', or "*" for OPTIONS.
    std::string_view path;    // target up to '?'.
    std::string_view query;   // After '?', without it; empty if none.
    uint8_t version_minor;    // 0 or 1; the major is always 1.
    HeaderField* headers;     // In arrival order, trailers excluded.
    uint32_t header_count;
    std::string_view host;  // Value of the only Host header; empty if none (HTTP/1.0).
    bool has_content_length;
    uint64_t content_length;
    bool is_chunked;
    bool keep_alive;        // llhttp_should_keep_alive(); final once message_complete.
    bool expects_continue;  // "Expect: 100-continue" on HTTP/1.1 (case-insensitive).
    // The whole body, contiguous, followed by body_padding_bytes zero bytes outside the view.
    std::string_view body;

    // Value of the first header named lowercase_name (compared case-insensitively).
    std::string_view find_header(std::string_view lowercase_name) const;
};

struct ParserLimits {
    uint32_t request_line_bytes_max;  // Request line without its CRLF.
    uint32_t header_bytes_max;        // Header lines with their CRLFs, without the final CRLF.
    uint32_t header_count_max;
    uint64_t body_bytes_max;
    uint32_t chunk_ext_bytes_max;  // Per chunk: names + values + one per ';' or '='.
    // Content-Length refused at head time above this (body_too_large). May exceed
    // body_bytes_max: a body the handler streams (client_body_stream) is never stored, and
    // the caller refuses a stored one over body_bytes_max before feeding it. 0: body_bytes_max.
    uint64_t content_length_max = 0;
};

enum class ParseEvent : uint8_t { need_more, head_complete, message_complete, error };

struct ParseResult {
    ParseEvent event;
    ParseError error;         // none unless event == error.
    uint32_t consumed_bytes;  // See RequestParser::feed().
};

struct RequestParserCallbacks;  // The llhttp callbacks (http_parse.cc).

class RequestParser {
public:
    explicit RequestParser(const ParserLimits& limits);
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    // Begins a new message whose copies all go into arena. Resets llhttp, so it is also
    // the way to reuse the parser for another connection. Valid in any state.
    void start(Arena& arena);

    // Feeds input; nothing of it is referenced after the return. Events, per message:
    //   head_complete    exactly once, consumed_bytes = bytes up to and including the
    //                    final CRLF of the header block. request() has every head field.
    //   message_complete always after head_complete, in a later call; consumed_bytes =
    //                    bytes of this call belonging to the message. A message without a
    //                    body completes on the next call with consumed_bytes 0 (the input
    //                    may be empty). input past consumed_bytes is the next pipelined
    //                    message: call start() and feed it again.
    //   need_more        every byte was consumed.
    //   error            the connection must be closed after the error response.
    //                    consumed_bytes is the offset of the byte the error was detected
    //                    at (for logs only). Do not feed again without start().
    // Limits are checked as the bytes arrive, so an over-long line is refused before it
    // ends and Content-Length over body_bytes_max fails at head time.
    [[nodiscard]] ParseResult feed(std::string_view input);

    // After head_complete, before any body byte was fed: the body is still parsed (its
    // framing decides where the next message starts) but not stored; request().body
    // stays empty. For a request refused at its head whose small body is read and dropped.
    void discard_body();

    const ParsedRequest& request() const { return request_; }

    // True once a byte of the current message was consumed and until it completes.
    bool in_message() const { return has_consumed_ && phase_ != Phase::complete; }

private:
    friend struct RequestParserCallbacks;

    enum class Phase : uint8_t { idle, head, body, trailers, complete, failed };
    enum class HeadLine : uint8_t { leading, request, header };
    enum class HeaderKind : uint8_t { other, host, content_length, transfer_encoding, expect };

    // A field being assembled from llhttp pieces; the bytes live in the arena.
    struct PieceText {
        char* bytes;
        uint32_t size_bytes;
    };

    // The byte-level checks llhttp 8.1.0 strict lets through (obs-fold, bare CR and LF)
    // and the head limits, run before llhttp sees a head byte. State survives feeds.
    struct HeadScan {
        HeadLine line;
        bool saw_cr;
        uint32_t line_bytes;          // Bytes of the current header line, no CR/LF.
        uint32_t request_line_bytes;  // Without CRLF.
        uint32_t header_bytes;        // Header lines with CRLF; leading empty lines too.
    };
    struct HeadScanResult {
        uint32_t clean_bytes;  // Bytes llhttp may see.
        ParseError error;      // The byte at clean_bytes is refused for this reason.
        bool is_head_end;      // clean_bytes ends with the head's final CRLF.
    };

    [[nodiscard]] HeadScanResult head_scan(const char* bytes, uint32_t size_bytes);
    [[nodiscard]] ParseResult feed_head(const char* bytes, uint32_t size_bytes);
    [[nodiscard]] ParseResult feed_body(const char* bytes, uint32_t size_bytes);
    [[nodiscard]] ParseResult feed_trailers(const char* bytes, uint32_t offset_bytes,
                                            uint32_t size_bytes);
    [[nodiscard]] ParseResult fail(ParseError error, uint32_t consumed_bytes);
    [[nodiscard]] ParseResult fail_llhttp(llhttp_errno_t code, const char* bytes,
                                          uint32_t size_bytes);
    [[nodiscard]] ParseError map_llhttp_error(llhttp_errno_t code) const;
    [[nodiscard]] bool append_piece(PieceText& text, const char* at, size_t size_bytes);
    [[nodiscard]] bool push_header();
    [[nodiscard]] bool body_reserve(uint64_t body_bytes_needed);
    int refuse(ParseError error);

    llhttp_t llhttp_;
    ParserLimits limits_;
    Arena* arena_ = nullptr;
    ParsedRequest request_{};
    Phase phase_ = Phase::idle;
    ParseError error_ = ParseError::none;  // Set by a callback before it fails llhttp.
    bool has_consumed_ = false;
    HeadScan scan_{};

    PieceText target_{};
    PieceText name_{};
    PieceText value_{};
    HeaderKind kind_ = HeaderKind::other;
    uint32_t header_capacity_ = 0;  // Slots in request_.headers.
    bool has_host_ = false;
    bool has_content_length_ = false;
    bool has_transfer_encoding_ = false;
    bool has_expect_continue_ = false;

    bool is_body_discarded_ = false;    // discard_body(): counted, not stored.
    char* body_ = nullptr;              // In the arena; nullptr until the first body byte.
    uint64_t body_size_bytes_ = 0;      // Received so far.
    uint64_t body_capacity_bytes_ = 0;  // Allocated, padding included.
    uint32_t chunk_ext_bytes_ = 0;      // Of the chunk size line being parsed.
    uint32_t trailer_bytes_ = 0;
    uint32_t trailer_count_ = 0;
};

}  // namespace rw
