// core/http_parse.cc — RequestParser: a head scanner for what llhttp 8.1.0 strict still
// accepts (obs-fold, bare LF in the request line) and for the byte limits, llhttp itself for
// the grammar and the framing, and callbacks that copy every piece into the request arena
// and apply ringway's refusals. Callers: conn.cc (data plane) and the fuzz target.
// Invariant: error_ != none exactly when a callback refused; llhttp then returns an error.
#include "core/http_parse.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/http_syntax.h"

namespace rw {
namespace {

// A body view of size zero still promises body_padding_bytes readable zeros after it.
alignas(16) constexpr char empty_body_padded[body_padding_bytes] = {};

// llhttp_execute() needs a valid pointer even for zero bytes (it stores span starts).
constexpr char empty_input[1] = {};

constexpr uint32_t header_capacity_first = 16;

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// lowercase must already be lower case; text is compared folded.
bool equals_lowercase(std::string_view text, std::string_view lowercase) {
    if (text.size() != lowercase.size()) {
        return false;
    }
    for (size_t index = 0; index < text.size(); index += 1) {
        if (ascii_lower(text[index]) != lowercase[index]) {
            return false;
        }
    }
    return true;
}

// llhttp delivers header values without leading whitespace but with trailing SP/HTAB
// (RFC 9110 5.5: OWS around the value is not part of it).
std::string_view trim_trailing_ows(std::string_view value) {
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
    }
    return value;
}

Method method_from_llhttp(uint8_t method) {
    switch (method) {
        case HTTP_GET: return Method::get;
        case HTTP_HEAD: return Method::head;
        case HTTP_POST: return Method::post;
        case HTTP_PUT: return Method::put;
        case HTTP_DELETE: return Method::delete_;
        case HTTP_OPTIONS: return Method::options;
        case HTTP_PATCH: return Method::patch;
        default: return Method::other;
    }
}

struct ErrorInfo {
    uint16_t status;
    std::string_view code;
    std::string_view message;
};

// Indexed by ParseError; the static_assert below keeps it in step with the enum.
constexpr ErrorInfo error_infos[] = {
    {200, "none", "The request is valid."},
    {400, "bad_request", "The request is not valid HTTP/1.1."},
    {400, "bad_method", "The request method is not valid."},
    {400, "bad_target", "The request target must be an absolute path."},
    {414, "request_line_too_long", "The request line is longer than the gateway allows."},
    {431, "header_bytes_too_large", "The request headers are larger than the gateway allows."},
    {431, "too_many_headers", "The request has more header fields than the gateway allows."},
    {413, "body_too_large", "The request body is larger than the gateway allows."},
    {400, "chunk_ext_too_long", "A chunk extension is longer than the gateway allows."},
    {400, "obs_fold", "Header lines must not start with whitespace (obsolete line folding)."},
    {400, "bare_cr_or_lf", "Lines must end with CRLF; a bare CR or LF was received."},
    {400, "invalid_header", "A header field name or value contains invalid characters."},
    {400, "missing_host", "HTTP/1.1 requests must carry a Host header."},
    {400, "duplicate_host", "The request carries more than one Host header."},
    {505, "bad_version", "Only HTTP/1.0 and HTTP/1.1 are supported."},
    {400, "upgrade_refused", "Protocol upgrades are not supported; remove the Upgrade header."},
    {405, "connect_refused", "The CONNECT method is not supported."},
    {400, "cl_and_te", "Content-Length and Transfer-Encoding must not both be present."},
    {400, "duplicate_content_length", "The request carries more than one Content-Length."},
    {400, "bad_content_length", "The Content-Length header is not a valid length."},
    {501, "bad_transfer_encoding", "Only \"Transfer-Encoding: chunked\" on HTTP/1.1 is supported."},
    {400, "bad_chunk", "The chunked request body is malformed."},
    {431, "arena_exhausted", "The gateway has no memory left for this request's headers."},
    {413, "body_arena_exhausted", "The gateway has no memory left for this request's body."},
    {400, "bad_host", "The Host header is not a valid host[:port]."},
};
static_assert(std::size(error_infos) == static_cast<size_t>(ParseError::count_));

const ErrorInfo& error_info(ParseError error) {
    RW_ASSERT(error < ParseError::count_);
    return error_infos[static_cast<size_t>(error)];
}

// The end of the run of bytes from index that are neither CR nor LF (head_scan). Whole
// 16-byte blocks first (SSE2, x86-64's baseline), never reading past size_bytes (a recv
// buffer has no padding), then byte by byte.
uint32_t line_run_end(const char* bytes, uint32_t index, uint32_t size_bytes) {
#if defined(__SSE2__)
    const __m128i carriage_return = _mm_set1_epi8('\r');
    const __m128i line_feed = _mm_set1_epi8('\n');
    for (; index + 16 <= size_bytes; index += 16) {
        const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + index));
        const auto mask = static_cast<uint32_t>(_mm_movemask_epi8(_mm_or_si128(
            _mm_cmpeq_epi8(block, carriage_return), _mm_cmpeq_epi8(block, line_feed))));
        if (mask != 0) {
            return index + static_cast<uint32_t>(__builtin_ctz(mask));
        }
    }
#endif
    while (index < size_bytes && bytes[index] != '\r' && bytes[index] != '\n') {
        index += 1;
    }
    return index;
}

}  // namespace

uint16_t parse_error_status(ParseError error) {
    RW_ASSERT(error != ParseError::none);  // A success has no error response.
    return error_info(error).status;
}

std::string_view parse_error_code(ParseError error) {
    return error_info(error).code;
}

std::string_view parse_error_message(ParseError error) {
    return error_info(error).message;
}

std::string_view ParsedRequest::find_header(std::string_view lowercase_name) const {
    for (uint32_t index = 0; index < header_count; index += 1) {
        if (equals_lowercase(headers[index].name, lowercase_name)) {
            return headers[index].value;
        }
    }
    return {};
}

// The llhttp side. Each callback turns its piece or event into arena copies and checks;
// a refusal records the ParseError in error_ and returns -1, which llhttp reports as
// HPE_USER (data callbacks) or HPE_CB_* (event callbacks) [llhttp.h, api.c]. Returning
// HPE_PAUSED from on_headers_complete / on_message_complete makes llhttp_execute() stop
// with error_pos just past the final CRLF / the last body byte [llhttp.c pause nodes].
struct RequestParserCallbacks {
    static RequestParser& self(llhttp_t* llhttp) {
        return *static_cast<RequestParser*>(llhttp->data);
    }

    static int on_method_complete(llhttp_t* llhttp) {
        RequestParser& parser = self(llhttp);
        if (llhttp->method == HTTP_CONNECT) {
            return parser.refuse(ParseError::connect_refused);
        }
        if (llhttp->method == HTTP_PRI) {  // Only the HTTP/2 preface uses it.
            return parser.refuse(ParseError::bad_version);
        }
        parser.request_.method = method_from_llhttp(llhttp->method);
        parser.request_.method_text =
            llhttp_method_name(static_cast<llhttp_method_t>(llhttp->method));
        return 0;
    }

    // llhttp may deliver the target in pieces, one per feed it spans [llhttp.h spans].
    static int on_url(llhttp_t* llhttp, const char* at, size_t size_bytes) {
        RequestParser& parser = self(llhttp);
        return parser.append_piece(parser.target_, at, size_bytes)
                   ? 0
                   : parser.refuse(ParseError::arena_exhausted);
    }

    // Only origin-form: absolute-form would make the authority in the target compete
    // with Host (RFC 9112 3.2.2) and ringway is not a forward proxy.
    static int on_url_complete(llhttp_t* llhttp) {
        RequestParser& parser = self(llhttp);
        const std::string_view target(parser.target_.bytes, parser.target_.size_bytes);
        ParsedRequest& request = parser.request_;
        if (target == "*" && request.method == Method::options) {
            request.target = target;
            request.path = target;
            return 0;
        }
        if (target.empty() || target.front() != '/' || !is_valid_target_escapes(target)) {
            return parser.refuse(ParseError::bad_target);
        }
        request.target = target;
        const size_t question_index = target.find('?');
        request.path = target.substr(0, question_index);
        if (question_index != std::string_view::npos) {
            request.query = target.substr(question_index + 1);
        }
        return 0;
    }

    // llhttp has already refused versions other than 0.9, 1.0, 1.1 and 2.0 here.
    static int on_version_complete(llhttp_t* llhttp) {
        if (llhttp->http_major != 1 || llhttp->http_minor > 1) {
            return self(llhttp).refuse(ParseError::bad_version);
        }
        return 0;
    }

    static int on_header_field(llhttp_t* llhttp, const char* at, size_t size_bytes) {
        RequestParser& parser = self(llhttp);
        if (parser.phase_ == RequestParser::Phase::trailers) {
            return count_trailer_bytes(parser, size_bytes);
        }
        return parser.append_piece(parser.name_, at, size_bytes)
                   ? 0
                   : parser.refuse(ParseError::arena_exhausted);
    }

    static int on_header_value(llhttp_t* llhttp, const char* at, size_t size_bytes) {
        RequestParser& parser = self(llhttp);
        if (parser.phase_ == RequestParser::Phase::trailers) {
            return count_trailer_bytes(parser, size_bytes);
        }
        return parser.append_piece(parser.value_, at, size_bytes)
                   ? 0
                   : parser.refuse(ParseError::arena_exhausted);
    }

    // Trailers bypass the head scanner, so their limits are counted here. They are
    // parsed for framing and dropped: nothing after the body may change the request.
    static int count_trailer_bytes(RequestParser& parser, size_t size_bytes) {
        const uint64_t trailer_bytes = uint64_t(parser.trailer_bytes_) + size_bytes;
        if (trailer_bytes > parser.limits_.header_bytes_max) {
            return parser.refuse(ParseError::header_bytes_too_large);
        }
        parser.trailer_bytes_ = static_cast<uint32_t>(trailer_bytes);
        return 0;
    }

    // The name is complete at its ':' — before llhttp's own Content-Length and
    // Transfer-Encoding checks, which run on the value — so the refusals here are exact.
    static int on_header_field_complete(llhttp_t* llhttp) {
        RequestParser& parser = self(llhttp);
        if (parser.phase_ == RequestParser::Phase::trailers) {
            parser.trailer_count_ += 1;
            return parser.trailer_count_ > parser.limits_.header_count_max
                       ? parser.refuse(ParseError::too_many_headers)
                       : 0;
        }
        if (parser.request_.header_count >= parser.limits_.header_count_max) {
            return parser.refuse(ParseError::too_many_headers);
        }
        const std::string_view name(parser.name_.bytes, parser.name_.size_bytes);
        parser.kind_ = RequestParser::HeaderKind::other;
        if (equals_lowercase(name, "host")) {
            if (parser.has_host_) {
                return parser.refuse(ParseError::duplicate_host);
            }
            parser.has_host_ = true;
            parser.kind_ = RequestParser::HeaderKind::host;
        } else if (equals_lowercase(name, "content-length")) {
            if (parser.has_content_length_) {
                return parser.refuse(ParseError::duplicate_content_length);
            }
            if (parser.has_transfer_encoding_) {
                return parser.refuse(ParseError::cl_and_te);
            }
            parser.has_content_length_ = true;
            parser.kind_ = RequestParser::HeaderKind::content_length;
        } else if (equals_lowercase(name, "transfer-encoding")) {
            if (parser.has_content_length_) {
                return parser.refuse(ParseError::cl_and_te);
            }
            if (parser.has_transfer_encoding_) {  // "chunked" twice is chunked twice.
                return parser.refuse(ParseError::bad_transfer_encoding);
            }
            parser.has_transfer_encoding_ = true;
            parser.kind_ = RequestParser::HeaderKind::transfer_encoding;
        } else if (equals_lowercase(name, "upgrade")) {
            return parser.refuse(ParseError::upgrade_refused);
        } else if (equals_lowercase(name, "expect")) {
            parser.kind_ = RequestParser::HeaderKind::expect;
        }
        return 0;
    }

    static int on_header_value_complete(llhttp_t* llhttp) {
        RequestParser& parser = self(llhttp);
        if (parser.phase_ == RequestParser::Phase::trailers) {
            return 0;
        }
        if (!parser.push_header()) {
            return parser.refuse(ParseError::arena_exhausted);
        }
        const std::string_view value =
            parser.request_.headers[parser.request_.header_count - 1].value;
        switch (parser.kind_) {
            case RequestParser::HeaderKind::host:
                if (!is_valid_authority(value)) {
                    return parser.refuse(ParseError::bad_host);
                }
                parser.request_.host = value;
                break;
            case RequestParser::HeaderKind::transfer_encoding:
                // llhttp 8.1.0 accepts "gzip, chunked" and "chunked  " as chunked.
                if (!equals_lowercase(value, "chunked")) {
                    return parser.refuse(ParseError::bad_transfer_encoding);
                }
                break;
            case RequestParser::HeaderKind::expect:
                parser.has_expect_continue_ = equals_lowercase(value, "100-continue");
                break;
            case RequestParser::HeaderKind::content_length:  // llhttp parses the digits.
            case RequestParser::HeaderKind::other: break;
        }
        return 0;
    }

    static int on_headers_complete(llhttp_t* llhttp);

    static int on_chunk_extension_piece(llhttp_t* llhttp, const char*, size_t size_bytes) {
        return count_chunk_ext_bytes(self(llhttp), size_bytes);
    }

    static int on_chunk_extension_complete(llhttp_t* llhttp) {
        return count_chunk_ext_bytes(self(llhttp), 1);  // The ';' or '=' before it.
    }

    // Extension (and trailer) bytes are counted per llhttp piece, not by the scanner, so
    // when an over-long extension also holds a syntax error later in the same span the
    // refusal is chunk_ext_too_long or bad_chunk depending on where the feeds were cut.
    // Both close the connection; only the reported kind differs (the fuzz target allows it).
    static int count_chunk_ext_bytes(RequestParser& parser, size_t size_bytes) {
        const uint64_t ext_bytes = uint64_t(parser.chunk_ext_bytes_) + size_bytes;
        if (ext_bytes > parser.limits_.chunk_ext_bytes_max) {
            return parser.refuse(ParseError::chunk_ext_too_long);
        }
        parser.chunk_ext_bytes_ = static_cast<uint32_t>(ext_bytes);
        return 0;
    }

    // llhttp stores the size of the chunk about to start in content_length [llhttp.h
    // on_chunk_header]. The whole chunk is reserved now so on_body only copies.
    static int on_chunk_header(llhttp_t* llhttp) {
        RequestParser& parser = self(llhttp);
        const uint64_t chunk_bytes = llhttp->content_length;
        RW_ASSERT(parser.body_size_bytes_ <= parser.limits_.body_bytes_max);
        if (chunk_bytes > parser.limits_.body_bytes_max - parser.body_size_bytes_) {
            return parser.refuse(ParseError::body_too_large);
        }
        parser.chunk_ext_bytes_ = 0;  // The next size line starts its own count.
        if (chunk_bytes == 0) {
            // The last chunk: its size line (CRLF included) is consumed. The trailer
            // section bypasses the head scanner inside llhttp, which accepts a bare LF
            // there, so llhttp pauses here and feed_body scans the trailers like a head.
            parser.phase_ = RequestParser::Phase::trailers;
            parser.scan_ = RequestParser::HeadScan{};
            parser.scan_.line = RequestParser::HeadLine::header;
            return HPE_PAUSED;
        }
        if (!parser.is_body_discarded_ &&
            !parser.body_reserve(parser.body_size_bytes_ + chunk_bytes)) {
            return parser.refuse(ParseError::body_arena_exhausted);
        }
        return 0;
    }

    // llhttp never delivers more than Content-Length or the chunk size, both reserved.
    // A Content-Length body is reserved at its first byte, not at head time: the caller
    // decides between the head and the body whether to keep it (discard_body()).
    static int on_body(llhttp_t* llhttp, const char* at, size_t size_bytes) {
        RequestParser& parser = self(llhttp);
        if (parser.is_body_discarded_) {
            parser.body_size_bytes_ += size_bytes;  // Counted, never stored.
            return 0;
        }
        if (parser.body_ == nullptr && parser.request_.has_content_length &&
            !parser.body_reserve(parser.request_.content_length)) {
            return parser.refuse(ParseError::body_arena_exhausted);
        }
        RW_ASSERT(parser.body_ != nullptr);
        RW_ASSERT(parser.body_size_bytes_ + size_bytes + body_padding_bytes <=
                  parser.body_capacity_bytes_);
        std::memcpy(parser.body_ + parser.body_size_bytes_, at, size_bytes);
        parser.body_size_bytes_ += size_bytes;
        return 0;
    }

    static int on_message_complete(llhttp_t* llhttp) {
        RequestParser& parser = self(llhttp);
        RW_ASSERT(parser.phase_ == RequestParser::Phase::body ||
                  parser.phase_ == RequestParser::Phase::trailers);
        ParsedRequest& request = parser.request_;
        if (parser.body_size_bytes_ == 0 || parser.is_body_discarded_) {
            request.body = std::string_view(empty_body_padded, 0);
        } else {
            std::memset(parser.body_ + parser.body_size_bytes_, 0, body_padding_bytes);
            request.body = std::string_view(parser.body_, parser.body_size_bytes_);
        }
        RW_ASSERT(parser.is_body_discarded_ || !request.has_content_length ||
                  request.body.size() == request.content_length);
        // Must be read before llhttp's after_message_complete clears the flags.
        request.keep_alive = llhttp_should_keep_alive(llhttp) != 0;
        parser.phase_ = RequestParser::Phase::complete;
        return HPE_PAUSED;
    }

    static const llhttp_settings_t& settings() {
        static const llhttp_settings_t value = [] {
            llhttp_settings_t built;
            llhttp_settings_init(&built);
            built.on_url = on_url;
            built.on_header_field = on_header_field;
            built.on_header_value = on_header_value;
            built.on_chunk_extension_name = on_chunk_extension_piece;
            built.on_chunk_extension_value = on_chunk_extension_piece;
            built.on_headers_complete = on_headers_complete;
            built.on_body = on_body;
            built.on_message_complete = on_message_complete;
            built.on_url_complete = on_url_complete;
            built.on_method_complete = on_method_complete;
            built.on_version_complete = on_version_complete;
            built.on_header_field_complete = on_header_field_complete;
            built.on_header_value_complete = on_header_value_complete;
            built.on_chunk_extension_name_complete = on_chunk_extension_complete;
            built.on_chunk_extension_value_complete = on_chunk_extension_complete;
            built.on_chunk_header = on_chunk_header;
            return built;
        }();
        return value;
    }
};

// The head is complete: the last refusals that need the whole head, the framing fields,
// and the body buffer for a Content-Length body. Pausing hands control back to feed()
// with error_pos just past the final CRLF.
int RequestParserCallbacks::on_headers_complete(llhttp_t* llhttp) {
    RequestParser& parser = self(llhttp);
    ParsedRequest& request = parser.request_;
    RW_ASSERT(parser.phase_ == RequestParser::Phase::head);
    // "GET /\r\n" is HTTP/0.9 to llhttp and reaches here without on_version_complete.
    if (llhttp->http_major != 1 || llhttp->http_minor > 1) {
        return parser.refuse(ParseError::bad_version);
    }
    request.version_minor = llhttp->http_minor;
    if (request.version_minor == 1 && !parser.has_host_) {
        return parser.refuse(ParseError::missing_host);
    }
    if (request.version_minor == 0 && parser.has_transfer_encoding_) {
        return parser.refuse(ParseError::bad_transfer_encoding);  // RFC 9112 6.1.
    }
    request.has_content_length = (llhttp->flags & F_CONTENT_LENGTH) != 0;
    request.content_length = request.has_content_length ? llhttp->content_length : 0;
    request.is_chunked = (llhttp->flags & F_CHUNKED) != 0;
    if (request.is_chunked != parser.has_transfer_encoding_) {
        return parser.refuse(ParseError::bad_transfer_encoding);  // Our check and llhttp's differ.
    }
    request.expects_continue = request.version_minor == 1 && parser.has_expect_continue_;
    request.keep_alive = llhttp_should_keep_alive(llhttp) != 0;
    if (request.content_length >
        std::max(parser.limits_.body_bytes_max, parser.limits_.content_length_max)) {
        return parser.refuse(ParseError::body_too_large);
    }
    parser.phase_ = RequestParser::Phase::body;
    return HPE_PAUSED;
}

RequestParser::RequestParser(const ParserLimits& limits) : limits_(limits) {
    RW_ASSERT(limits.request_line_bytes_max > 0);
    RW_ASSERT(limits.header_count_max > 0);
    llhttp_init(&llhttp_, HTTP_REQUEST, &RequestParserCallbacks::settings());
    llhttp_.data = this;
}

void RequestParser::start(Arena& arena) {
    // llhttp_reset keeps type, settings and data [api.c]. It also drops any pause left by
    // the previous message's on_message_complete, so the parser never needs a resume.
    llhttp_reset(&llhttp_);
    RW_ASSERT(llhttp_.data == this);
    arena_ = &arena;
    request_ = ParsedRequest{};
    request_.method = Method::other;
    request_.body = std::string_view(empty_body_padded, 0);
    phase_ = Phase::head;
    error_ = ParseError::none;
    has_consumed_ = false;
    scan_ = HeadScan{};
    scan_.line = HeadLine::leading;
    target_ = PieceText{};
    name_ = PieceText{};
    value_ = PieceText{};
    kind_ = HeaderKind::other;
    header_capacity_ = 0;
    has_host_ = false;
    has_content_length_ = false;
    has_transfer_encoding_ = false;
    has_expect_continue_ = false;
    is_body_discarded_ = false;
    body_ = nullptr;
    body_size_bytes_ = 0;
    body_capacity_bytes_ = 0;
    chunk_ext_bytes_ = 0;
    trailer_bytes_ = 0;
    trailer_count_ = 0;
}

ParseResult RequestParser::feed(std::string_view input) {
    RW_ASSERT(arena_ != nullptr);
    RW_ASSERT(phase_ == Phase::head || phase_ == Phase::body || phase_ == Phase::trailers);
    RW_ASSERT(input.size() <= UINT32_MAX);
    const char* bytes = input.empty() ? empty_input : input.data();
    const auto size_bytes = static_cast<uint32_t>(input.size());
    const ParseResult result =
        phase_ == Phase::head ? feed_head(bytes, size_bytes) : feed_body(bytes, size_bytes);
    RW_ASSERT(result.consumed_bytes <= size_bytes);
    if (result.event == ParseEvent::need_more) {
        RW_ASSERT(result.consumed_bytes == size_bytes);
    }
    has_consumed_ = has_consumed_ || result.consumed_bytes > 0;
    return result;
}

// Runs the scanner first and gives llhttp only the bytes it passed, so an error llhttp
// finds earlier in the stream wins over the scanner's, and the outcome does not depend
// on how the stream was split across feeds.
ParseResult RequestParser::feed_head(const char* bytes, uint32_t size_bytes) {
    const HeadScanResult scan = head_scan(bytes, size_bytes);
    const llhttp_errno_t code = llhttp_execute(&llhttp_, bytes, scan.clean_bytes);
    if (code == HPE_PAUSED && phase_ == Phase::body) {
        // Paused by on_headers_complete; error_pos is just past the final CRLF.
        const auto consumed_bytes = static_cast<uint32_t>(llhttp_get_error_pos(&llhttp_) - bytes);
        if (!scan.is_head_end || consumed_bytes != scan.clean_bytes) {
            return fail(ParseError::bad_request, consumed_bytes);  // Scanner and llhttp disagree.
        }
        llhttp_resume(&llhttp_);
        return {ParseEvent::head_complete, ParseError::none, consumed_bytes};
    }
    if (code != HPE_OK) {
        return fail_llhttp(code, bytes, scan.clean_bytes);
    }
    if (scan.error != ParseError::none) {
        return fail(scan.error, scan.clean_bytes);
    }
    if (scan.is_head_end) {
        return fail(ParseError::bad_request, scan.clean_bytes);  // llhttp wants more head.
    }
    RW_ASSERT(scan.clean_bytes == size_bytes);
    return {ParseEvent::need_more, ParseError::none, size_bytes};
}

void RequestParser::discard_body() {
    RW_ASSERT(phase_ == Phase::body);
    RW_ASSERT(body_ == nullptr);  // Nothing of the body was stored yet.
    is_body_discarded_ = true;
}

ParseResult RequestParser::feed_body(const char* bytes, uint32_t size_bytes) {
    if (phase_ == Phase::trailers) {
        return feed_trailers(bytes, 0, size_bytes);
    }
    const llhttp_errno_t code = llhttp_execute(&llhttp_, bytes, size_bytes);
    if (code == HPE_OK) {
        return {ParseEvent::need_more, ParseError::none, size_bytes};
    }
    if (code == HPE_PAUSED && phase_ == Phase::trailers) {
        // Paused by on_chunk_header for the last chunk, error_pos just past its size line.
        const char* end = llhttp_get_error_pos(&llhttp_);
        RW_ASSERT(end >= bytes);
        RW_ASSERT(end <= bytes + size_bytes);
        llhttp_resume(&llhttp_);
        return feed_trailers(bytes, static_cast<uint32_t>(end - bytes), size_bytes);
    }
    if (code == HPE_PAUSED && phase_ == Phase::complete) {
        // Paused by on_message_complete; error_pos is just past the message's last byte.
        // llhttp stays paused: start() resets it for the next message.
        const char* end = llhttp_get_error_pos(&llhttp_);
        RW_ASSERT(end >= bytes);
        RW_ASSERT(end <= bytes + size_bytes);
        return {ParseEvent::message_complete, ParseError::none, static_cast<uint32_t>(end - bytes)};
    }
    return fail_llhttp(code, bytes, size_bytes);
}

// The trailer section (after the last chunk), bytes [offset_bytes, size_bytes) of this
// feed: scanned like a head (CRLF pairs, obs-fold, byte limit) before llhttp sees it, so
// a bare LF is refused here as everywhere else. Offsets returned count from `bytes`.
ParseResult RequestParser::feed_trailers(const char* bytes, uint32_t offset_bytes,
                                         uint32_t size_bytes) {
    RW_ASSERT(phase_ == Phase::trailers);
    RW_ASSERT(offset_bytes <= size_bytes);
    const char* start = bytes + offset_bytes;
    const HeadScanResult scan = head_scan(start, size_bytes - offset_bytes);
    const llhttp_errno_t code = llhttp_execute(&llhttp_, start, scan.clean_bytes);
    if (code == HPE_PAUSED && phase_ == Phase::complete) {
        const char* end = llhttp_get_error_pos(&llhttp_);
        const auto consumed_bytes = static_cast<uint32_t>(end - bytes);
        if (!scan.is_head_end || end != start + scan.clean_bytes) {
            return fail(ParseError::bad_chunk, consumed_bytes);  // Scanner and llhttp disagree.
        }
        return {ParseEvent::message_complete, ParseError::none, consumed_bytes};
    }
    if (code != HPE_OK) {
        return fail_llhttp(code, bytes, offset_bytes + scan.clean_bytes);
    }
    if (scan.error != ParseError::none) {
        return fail(scan.error, offset_bytes + scan.clean_bytes);
    }
    if (scan.is_head_end) {
        return fail(ParseError::bad_chunk, offset_bytes + scan.clean_bytes);
    }
    RW_ASSERT(offset_bytes + scan.clean_bytes == size_bytes);
    return {ParseEvent::need_more, ParseError::none, size_bytes};
}

ParseResult RequestParser::fail(ParseError error, uint32_t consumed_bytes) {
    RW_ASSERT(error != ParseError::none);
    phase_ = Phase::failed;
    error_ = error;
    return {ParseEvent::error, error, consumed_bytes};
}

// llhttp keeps returning the same error until llhttp_init/reset [llhttp.h execute], so
// a failed parser is dead until start().
ParseResult RequestParser::fail_llhttp(llhttp_errno_t code, const char* bytes,
                                       uint32_t size_bytes) {
    RW_ASSERT(code != HPE_OK);
    const ParseError error = error_ != ParseError::none ? error_ : map_llhttp_error(code);
    const char* position = llhttp_get_error_pos(&llhttp_);
    uint32_t consumed_bytes = size_bytes;
    if (position != nullptr && position >= bytes && position <= bytes + size_bytes) {
        consumed_bytes = static_cast<uint32_t>(position - bytes);
    }
    return fail(error, consumed_bytes);
}

// The llhttp error classes, made finer where llhttp's reason text is the only signal.
ParseError RequestParser::map_llhttp_error(llhttp_errno_t code) const {
    switch (code) {
        case HPE_INVALID_METHOD: return ParseError::bad_method;
        case HPE_INVALID_URL: return ParseError::bad_target;
        case HPE_INVALID_VERSION: {
            // "Invalid HTTP version" is llhttp 8.1.0's reason for a well-formed
            // version it does not know (1.2, 3.0); "Invalid major/minor version" and
            // "Expected dot" are syntax. Pinned by http_parse_test.
            const char* reason = llhttp_get_error_reason(&llhttp_);
            const bool is_unknown =
                reason != nullptr && std::strcmp(reason, "Invalid HTTP version") == 0;
            return is_unknown ? ParseError::bad_version : ParseError::bad_request;
        }
        case HPE_INVALID_HEADER_TOKEN:
        case HPE_UNEXPECTED_SPACE: return ParseError::invalid_header;
        case HPE_CR_EXPECTED:
        case HPE_LF_EXPECTED:
            return phase_ == Phase::body ? ParseError::bad_chunk : ParseError::bare_cr_or_lf;
        case HPE_UNEXPECTED_CONTENT_LENGTH:  // The field callback normally refuses first.
            return has_transfer_encoding_ ? ParseError::cl_and_te
                                          : ParseError::duplicate_content_length;
        case HPE_INVALID_CONTENT_LENGTH: return ParseError::bad_content_length;
        case HPE_INVALID_TRANSFER_ENCODING: return ParseError::bad_transfer_encoding;
        case HPE_INVALID_CHUNK_SIZE: return ParseError::bad_chunk;
        case HPE_STRICT:  // "Expected CRLF after chunk", chunk extension syntax.
            return phase_ == Phase::head ? ParseError::bad_request : ParseError::bad_chunk;
        case HPE_PAUSED_UPGRADE:  // Unreachable: Upgrade and CONNECT are refused earlier.
            return ParseError::upgrade_refused;
        case HPE_PAUSED_H2_UPGRADE: return ParseError::bad_version;
        default: return ParseError::bad_request;
    }
}

// See HeadScan. Returns at the first refused byte, past the head's final CRLF, or at the end
// of input. CR and LF come in pairs; leading empty lines (RFC 9112 2.2) count as header bytes.
RequestParser::HeadScanResult RequestParser::head_scan(const char* bytes, uint32_t size_bytes) {
    // A local copy (written back on return): byte loads through char* may alias scan_.
    HeadScan scan = scan_;
    const uint32_t request_line_max = limits_.request_line_bytes_max;
    const uint32_t header_bytes_max = limits_.header_bytes_max;
    const auto done = [&](uint32_t index, ParseError error, bool is_head_end) {
        scan_ = scan;
        return HeadScanResult{index, error, is_head_end};
    };
    for (uint32_t index = 0; index < size_bytes; index += 1) {
        const char c = bytes[index];
        if (scan.saw_cr) {
            if (c != '\n') {
                return done(index, ParseError::bare_cr_or_lf, false);
            }
            scan.saw_cr = false;
            if (scan.line == HeadLine::request) {
                scan.line = HeadLine::header;
                scan.line_bytes = 0;
                continue;
            }
            if (scan.line == HeadLine::header && scan.line_bytes == 0) {
                return done(index + 1, ParseError::none, true);  // The empty line ends the head.
            }
            scan.line_bytes = 0;
        } else if (c == '\n') {
            return done(index, ParseError::bare_cr_or_lf, false);
        } else if (c == '\r') {
            scan.saw_cr = true;
            if (scan.line == HeadLine::request ||
                (scan.line == HeadLine::header && scan.line_bytes == 0)) {
                continue;  // Not a header byte: ends the request line or the head.
            }
        } else if (scan.line != HeadLine::header) {
            // This byte and the rest of the request line up to CR/LF, counted at once.
            scan.line = HeadLine::request;
            const uint32_t run_bytes = line_run_end(bytes, index + 1, size_bytes) - index;
            if (scan.request_line_bytes + uint64_t(run_bytes) > request_line_max) {
                const uint32_t refused = index + (request_line_max - scan.request_line_bytes);
                scan.request_line_bytes = request_line_max + 1;
                return done(refused, ParseError::request_line_too_long, false);
            }
            scan.request_line_bytes += run_bytes;
            index += run_bytes - 1;
            continue;
        } else {
            if (scan.line_bytes == 0 && (c == ' ' || c == '\t')) {
                return done(index, ParseError::obs_fold, false);
            }
            if (scan.line_bytes == 0 && c == ':') {
                // An empty field name: strict llhttp 8.1.0 lets ": x" through.
                return done(index, ParseError::invalid_header, false);
            }
            // This byte and the rest of the header line up to CR/LF, counted at once.
            const uint32_t run_bytes = line_run_end(bytes, index + 1, size_bytes) - index;
            if (scan.header_bytes + uint64_t(run_bytes) > header_bytes_max) {
                const uint32_t refused = index + (header_bytes_max - scan.header_bytes);
                scan.line_bytes += refused - index + 1;
                scan.header_bytes = header_bytes_max + 1;
                return done(refused, ParseError::header_bytes_too_large, false);
            }
            scan.line_bytes += run_bytes;
            scan.header_bytes += run_bytes;
            index += run_bytes - 1;
            continue;
        }
        // A CR or LF of a header line, or of a leading empty line.
        scan.header_bytes += 1;
        if (scan.header_bytes > header_bytes_max) {
            return done(index, ParseError::header_bytes_too_large, false);
        }
    }
    return done(size_bytes, ParseError::none, false);
}

// Appends one llhttp piece to a field. The field is the newest arena allocation while
// its pieces arrive (nothing else is allocated between them), so extend_last usually
// grows it in place; otherwise the text moves to a fresh allocation.
bool RequestParser::append_piece(PieceText& text, const char* at, size_t size_bytes) {
    if (size_bytes == 0) {
        return true;
    }
    const uint64_t total_bytes = uint64_t(text.size_bytes) + size_bytes;
    RW_ASSERT(total_bytes <= UINT32_MAX);  // Head fields are bounded by the scanner.
    if (text.bytes == nullptr || !arena_->extend_last(text.bytes, total_bytes)) {
        auto* moved = static_cast<char*>(arena_->alloc(total_bytes, 1));
        if (moved == nullptr) {
            return false;
        }
        if (text.size_bytes > 0) {
            std::memcpy(moved, text.bytes, text.size_bytes);
        }
        text.bytes = moved;
    }
    std::memcpy(text.bytes + text.size_bytes, at, size_bytes);
    text.size_bytes = static_cast<uint32_t>(total_bytes);
    return true;
}

// Moves the completed name_/value_ into request_.headers, doubling the array when full
// (the old array stays in the arena; the waste is bounded by the final size).
bool RequestParser::push_header() {
    RW_ASSERT(request_.header_count < limits_.header_count_max);  // Field callback checked.
    if (request_.header_count == header_capacity_) {
        uint32_t capacity = header_capacity_ == 0 ? header_capacity_first : header_capacity_ * 2;
        capacity = capacity < limits_.header_count_max ? capacity : limits_.header_count_max;
        void* place = arena_->alloc(uint64_t(capacity) * sizeof(HeaderField), alignof(HeaderField));
        if (place == nullptr) {
            return false;
        }
        auto* headers = static_cast<HeaderField*>(place);
        for (uint32_t index = 0; index < request_.header_count; index += 1) {
            ::new (&headers[index]) HeaderField{request_.headers[index]};
        }
        request_.headers = headers;
        header_capacity_ = capacity;
    }
    const std::string_view name(name_.bytes, name_.size_bytes);
    const std::string_view value =
        trim_trailing_ows(std::string_view(value_.bytes, value_.size_bytes));
    ::new (&request_.headers[request_.header_count]) HeaderField{name, value};
    request_.header_count += 1;
    name_ = PieceText{};
    value_ = PieceText{};
    return true;
}

// Makes room for body_bytes_needed body bytes plus the padding. Content-Length bodies get
// exactly their size once; chunked bodies grow geometrically up to body_bytes_max, so the
// arena holds at most about twice the final body (old buffers are not freed).
bool RequestParser::body_reserve(uint64_t body_bytes_needed) {
    RW_ASSERT(body_bytes_needed <= limits_.body_bytes_max);
    RW_ASSERT(body_bytes_needed >= body_size_bytes_);
    const uint64_t needed_bytes = body_bytes_needed + body_padding_bytes;
    if (needed_bytes <= body_capacity_bytes_) {
        return true;
    }
    const uint64_t ceiling_bytes = limits_.body_bytes_max + body_padding_bytes;
    uint64_t capacity = body_capacity_bytes_ * 2;
    capacity = capacity < ceiling_bytes ? capacity : ceiling_bytes;
    capacity = capacity > needed_bytes ? capacity : needed_bytes;
    if (body_ != nullptr && arena_->extend_last(body_, capacity)) {
        body_capacity_bytes_ = capacity;
        return true;
    }
    auto* moved = static_cast<char*>(arena_->alloc(capacity, 16));
    if (moved == nullptr) {
        return false;
    }
    if (body_size_bytes_ > 0) {
        std::memcpy(moved, body_, body_size_bytes_);
    }
    body_ = moved;
    body_capacity_bytes_ = capacity;
    // Content-Length bodies are filled exactly, so their padding can be zeroed now.
    std::memset(body_ + body_bytes_needed, 0, body_padding_bytes);
    return true;
}

// Records why a callback fails llhttp. The first refusal wins: llhttp stops at the -1.
int RequestParser::refuse(ParseError error) {
    RW_ASSERT(error != ParseError::none);
    RW_ASSERT(error_ == ParseError::none);
    error_ = error;
    return -1;
}

}  // namespace rw
