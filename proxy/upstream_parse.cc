// proxy/upstream_parse.cc — the response-side llhttp adapter. Headers the gateway needs
// (framing, content type, Connection, Retry-After, x-request-id) are copied into small
// fixed fields; everything else is skipped. Body spans point into the caller's input.
#include "proxy/upstream_parse.h"

#include <cstring>

#include "core/assert.h"
#include "core/text.h"

namespace rw {
namespace {

UpstreamParser& self(llhttp_t* parser) {
    return *static_cast<UpstreamParser*>(parser->data);
}

bool equals_lower(std::string_view text, std::string_view lower) {
    if (text.size() != lower.size()) {
        return false;
    }
    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (c != lower[i]) {
            return false;
        }
    }
    return true;
}

std::string_view trim_spaces(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

bool contains_lower(std::string_view text, std::string_view lower) {
    for (size_t i = 0; i + lower.size() <= text.size(); i++) {
        if (equals_lower(text.substr(i, lower.size()), lower)) {
            return true;
        }
    }
    return false;
}

template <size_t N>
void copy_text(char (&target)[N], std::string_view text) {
    const size_t length = text.size() < N - 1 ? text.size() : N - 1;
    std::memcpy(target, text.data(), length);
    target[length] = '\0';
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

}  // namespace

bool upstream_header_is_relayed(std::string_view name) {
    // Most lines are none of the names clients act on and are turned away on their first
    // byte. The exact names carry no credential; of a prefixed name only what follows the
    // prefix can (the prefixes end in '-', so no word straddles them).
    if (name.empty() || (name[0] != 'x' && name[0] != 'r' && name[0] != 'o' && name[0] != 'a')) {
        return false;
    }
    if (name == "x-request-id" || name == "request-id" || name == "retry-after" ||
        name == "retry-after-ms" || name == "openai-processing-ms") {
        return true;
    }
    std::string_view rest;
    if (starts_with(name, "x-ratelimit-")) {
        rest = name.substr(12);
        // OpenAI's six names, every answer: accepted without the four searches below (none of
        // them holds a refused word).
        if (rest == "limit-requests" || rest == "limit-tokens" || rest == "remaining-requests" ||
            rest == "remaining-tokens" || rest == "reset-requests" || rest == "reset-tokens") {
            return true;
        }
    } else if (starts_with(name, "anthropic-ratelimit-")) {
        rest = name.substr(20);
    } else {
        return false;
    }
    return !contains(rest, "key") && !contains(rest, "auth") && !contains(rest, "cookie") &&
           !contains(rest, "secret");
}

bool upstream_header_is_replaced(std::string_view name, uint8_t replaced) {
    if (replaced == upstream_replaces_none || !starts_with(name, "x-ratelimit-")) {
        return false;
    }
    const auto ends_with = [name](std::string_view suffix) {
        return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
    };
    return ((replaced & upstream_replaces_requests) != 0 && ends_with("-requests")) ||
           ((replaced & upstream_replaces_tokens) != 0 && ends_with("-tokens"));
}

UpstreamParser::UpstreamParser() {
    llhttp_settings_init(&settings_);
    settings_.on_status_complete = on_status_complete;
    settings_.on_header_field = on_header_field;
    settings_.on_header_value = on_header_value;
    settings_.on_header_value_complete = on_header_value_complete;
    settings_.on_headers_complete = on_headers_complete;
    settings_.on_body = on_body;
    settings_.on_message_complete = on_message_complete;
    start();
}

void UpstreamParser::start(char* relayed, uint32_t relayed_capacity, uint8_t replaced) {
    relayed_ = relayed;
    relayed_capacity_ = relayed != nullptr ? relayed_capacity : 0;
    relayed_bytes_ = 0;
    replaced_ = replaced;
    llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
    parser_.data = this;
    head_ = UpstreamHead{};
    span_count_ = 0;
    body_bytes_ = 0;
    field_bytes_ = 0;
    value_bytes_ = 0;
    is_value_after_field_ = false;
    is_field_truncated_ = false;
    is_value_truncated_ = false;
    is_head_complete_ = false;
    is_message_complete_ = false;
    is_head_reported_ = false;
    is_interim_ = false;
    has_transfer_encoding_ = false;
    is_transfer_encoding_ok_ = true;
    interim_count_ = 0;
    head_error_ = nullptr;
}

int UpstreamParser::on_status_complete(llhttp_t* parser) {
    self(parser).head_.status = static_cast<uint16_t>(parser->status_code);
    return 0;
}

int UpstreamParser::on_header_field(llhttp_t* parser, const char* at, size_t length) {
    UpstreamParser& p = self(parser);
    if (p.is_value_after_field_) {  // A new header starts.
        p.field_bytes_ = 0;
        p.value_bytes_ = 0;
        p.is_field_truncated_ = false;
        p.is_value_truncated_ = false;
        p.is_value_after_field_ = false;
    }
    // Lower-cased into field_, eight bytes per step (core/text.h).
    const size_t room = sizeof(p.field_) - p.field_bytes_;
    const size_t take = length < room ? length : room;
    ascii_lower_copy(p.field_ + p.field_bytes_, at, take);
    p.field_bytes_ += static_cast<uint32_t>(take);
    if (take < length) {
        p.is_field_truncated_ = true;  // Longer than any header we read: skipped.
    }
    return 0;
}

int UpstreamParser::on_header_value(llhttp_t* parser, const char* at, size_t length) {
    UpstreamParser& p = self(parser);
    p.is_value_after_field_ = true;
    const size_t room = sizeof(p.value_) - p.value_bytes_;
    const size_t take = length < room ? length : room;
    std::memcpy(p.value_ + p.value_bytes_, at, take);
    p.value_bytes_ += static_cast<uint32_t>(take);
    p.is_value_truncated_ = p.is_value_truncated_ || take < length;
    return 0;
}

int UpstreamParser::on_header_value_complete(llhttp_t* parser) {
    UpstreamParser& p = self(parser);
    p.is_value_after_field_ = true;
    if (p.is_field_truncated_) {
        return 0;
    }
    const std::string_view name(p.field_, p.field_bytes_);
    const std::string_view value(p.value_, p.value_bytes_);
    if (!upstream_header_is_replaced(name, p.replaced_) && upstream_header_is_relayed(name)) {
        // The answer's x-request-id is ringway's own (proxy/request.h); the provider's goes on
        // under x-upstream-request-id (and onto the usage row, head().request_id).
        p.relay_header(name == "x-request-id" ? "x-upstream-request-id" : name, value);
    }
    if (name == "content-type") {
        copy_text(p.head_.content_type, value);
        p.head_.is_event_stream = contains_lower(value, "text/event-stream");
    } else if (name == "connection") {
        p.head_.has_connection_close = contains_lower(value, "close");
    } else if (name == "retry-after") {
        // Delta-seconds only; an HTTP-date or a bad value reads as 0 (not given).
        uint64_t seconds = 0;
        p.head_.retry_after_s =
            parse_decimal(value, 100000, seconds) ? static_cast<uint32_t>(seconds) : 0;
    } else if (name == "x-request-id" || (name == "request-id" && p.head_.request_id[0] == '\0')) {
        copy_text(p.head_.request_id, value);  // OpenAI's x-request-id, Anthropic's request-id.
    } else if (name == "transfer-encoding") {
        // RULES §2: only a single `chunked` frames a body ringway can delimit; `gzip`,
        // `chunked, gzip` or `chunked, chunked` would be read to EOF or mis-framed.
        p.is_transfer_encoding_ok_ = !p.has_transfer_encoding_ && !p.is_value_truncated_ &&
                                     equals_lower(trim_spaces(value), "chunked");
        p.has_transfer_encoding_ = true;
    } else if (name == "content-encoding") {
        // Relayed as it came with the body it describes; one line that fits, or refused.
        const std::string_view coding = trim_spaces(value);
        if (p.head_.content_encoding[0] != '\0' || p.is_value_truncated_ ||
            coding.size() >= sizeof(p.head_.content_encoding)) {
            p.head_error_ = "repeated or oversized Content-Encoding";
        } else {
            copy_text(p.head_.content_encoding, coding);
        }
    }
    if (name == "retry-after" || name == "retry-after-ms") {
        p.head_.has_retry_after = true;
    }
    return 0;
}

// Keeps one relayed header line, unless it does not fit or its value outgrew value_ (a
// truncated value would be a wrong one).
void UpstreamParser::relay_header(std::string_view name, std::string_view value) {
    const uint64_t line_bytes = name.size() + 2 + value.size() + 2;
    if (is_value_truncated_ || relayed_bytes_ + line_bytes > relayed_capacity_) {
        return;
    }
    // Two copies and two fixed pairs of bytes, not four copies.
    char* cursor = relayed_ + relayed_bytes_;
    std::memcpy(cursor, name.data(), name.size());
    cursor += name.size();
    cursor[0] = ':';
    cursor[1] = ' ';
    std::memcpy(cursor + 2, value.data(), value.size());
    cursor += 2 + value.size();
    cursor[0] = '\r';
    cursor[1] = '\n';
    relayed_bytes_ += static_cast<uint32_t>(line_bytes);
    RW_ASSERT(relayed_bytes_ <= relayed_capacity_);
}

int UpstreamParser::on_headers_complete(llhttp_t* parser) {
    UpstreamParser& p = self(parser);
    const uint16_t status = p.head_.status;
    if (status == 101) {
        p.head_error_ = "101 Switching Protocols from the upstream";
        return -1;  // Never switch to another protocol (RULES §3).
    }
    if (status >= 100 && status < 200) {
        // An interim answer (100 Continue, 103 Early Hints): never the final response.
        // Skip its body (it has none) and parse the next head (RFC 9110 15.2).
        p.interim_count_ += 1;
        if (p.interim_count_ > upstream_interim_heads_max) {
            p.head_error_ = "too many 1xx interim responses";
            return -1;
        }
        p.is_interim_ = true;
        return 1;
    }
    if (p.head_error_ != nullptr) {
        return -1;
    }
    if (p.has_transfer_encoding_ &&
        (!p.is_transfer_encoding_ok_ || (parser->flags & F_CHUNKED) == 0)) {
        p.head_error_ = "transfer coding other than a single chunked";
        return -1;
    }
    p.head_.version_minor = parser->http_minor;
    p.head_.is_chunked = (parser->flags & F_CHUNKED) != 0;
    p.head_.has_content_length = (parser->flags & F_CONTENT_LENGTH) != 0;
    p.head_.content_length = p.head_.has_content_length ? parser->content_length : 0;
    if (status == 204 || status == 304) {
        // No body, whatever the framing headers say (llhttp would read one by its
        // Content-Length): the bytes after the head are extra, and the connection closes.
        p.head_.has_skipped_body = p.head_.is_chunked || p.head_.content_length > 0;
        parser->flags |= F_SKIPBODY;
    }
    p.is_head_complete_ = true;
    // Pause: the caller must see the head (relay, retry or refuse) before any body byte,
    // even when the whole response arrived in one buffer.
    return HPE_PAUSED;
}

int UpstreamParser::on_body(llhttp_t* parser, const char* at, size_t length) {
    UpstreamParser& p = self(parser);
    RW_ASSERT(p.span_count_ < upstream_body_spans_max);
    p.spans_[p.span_count_++] = {at, length};
    p.body_bytes_ += length;
    // A full span list pauses the parser; the caller relays the spans and feeds on.
    return p.span_count_ == upstream_body_spans_max ? HPE_PAUSED : 0;
}

int UpstreamParser::on_message_complete(llhttp_t* parser) {
    UpstreamParser& p = self(parser);
    if (p.is_interim_) {
        // The end of a skipped 1xx: the final head follows in the same stream.
        p.is_interim_ = false;
        const uint32_t interim_count = p.interim_count_;
        p.head_ = UpstreamHead{};
        p.relayed_bytes_ = 0;  // Only the final head's headers reach the client.
        p.has_transfer_encoding_ = false;
        p.is_transfer_encoding_ok_ = true;
        p.head_error_ = nullptr;
        p.interim_count_ = interim_count;
        return 0;
    }
    p.is_message_complete_ = true;
    return HPE_PAUSED;  // Bytes after the message are not part of it.
}

UpstreamFeed UpstreamParser::feed(std::string_view input) {
    if (is_message_complete_) {
        return {UpstreamEvent::message_complete, 0};
    }
    const llhttp_errno_t rc = llhttp_execute(&parser_, input.data(), input.size());
    uint32_t consumed = static_cast<uint32_t>(input.size());
    if (rc == HPE_PAUSED) {
        consumed = static_cast<uint32_t>(llhttp_get_error_pos(&parser_) - input.data());
        llhttp_resume(&parser_);
    } else if (rc != HPE_OK) {
        return {UpstreamEvent::error,
                static_cast<uint32_t>(llhttp_get_error_pos(&parser_) - input.data())};
    }
    if (is_head_complete_ && !is_head_reported_) {
        is_head_reported_ = true;
        return {UpstreamEvent::head_complete, consumed};
    }
    if (is_message_complete_) {
        return {UpstreamEvent::message_complete, consumed};
    }
    if (span_count_ == upstream_body_spans_max) {
        return {UpstreamEvent::spans_full, consumed};
    }
    return {UpstreamEvent::need_more, consumed};
}

bool UpstreamParser::finish_on_eof() {
    if (is_message_complete_) {
        return true;
    }
    // on_message_complete pauses, and llhttp_finish reports that pause as its result.
    const llhttp_errno_t rc = llhttp_finish(&parser_);
    return (rc == HPE_OK || rc == HPE_PAUSED) && is_message_complete_;
}

bool UpstreamParser::is_reusable() const {
    return is_message_complete_ && head_.version_minor == 1 && !head_.has_connection_close &&
           !head_.has_skipped_body &&
           (head_.is_chunked || head_.has_content_length || head_.status == 204 ||
            head_.status == 304);
}

const char* UpstreamParser::error_reason() const {
    if (head_error_ != nullptr) {
        return head_error_;
    }
    return parser_.reason != nullptr ? parser_.reason : "unknown";
}

}  // namespace rw
