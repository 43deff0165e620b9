// proxy/sse_scan.h — the incremental scanner that watches an upstream SSE body for usage,
// completion and errors while the relay forwards the bytes untouched. The relay calls
// feed() with each de-chunked piece as it arrives (split at any byte); the piece's buffer is
// given back after the call, so nothing here points into a piece across calls. Event bytes
// are not copied in the common case: only a line or event cut by a piece boundary, and the
// one event whose data must go through simdjson, are copied into bounded arena scratch.
// With cut_usage on, it also reports where the chat usage event sits in the stream (stream
// offsets of the event's first byte and of the byte after its blank line) so the relay can
// cut the usage chunk ringway injected out of what the client gets (stream_cut.h).
// Shard thread only; memory from the request arena given to start().
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/limits.h"

#include "arena/arena.h"
#include "proxy/usage.h"

namespace rw {

// The largest event data (and line) the scanner copies. Larger usage events are skipped
// and counted (events_skipped_count); the stream itself is relayed regardless.

// The hot loop: index of the first CR or LF in p[0, n), or n when there is none. Uses
// AVX2 when the CPU has it; sse_find_line_end_baseline is the SSE2 (or byte loop) version,
// public so tests and the bench cover both.
uint32_t sse_find_line_end(const char* p, uint32_t n);
uint32_t sse_find_line_end_baseline(const char* p, uint32_t n);

// The chat pre-check run on every data payload: false when the JSON cannot carry a usage
// object or a top-level error, so simdjson never sees it. A fast no for OpenAI's
// intermediate chunks (they end in "usage":null}), else a search for "usage" followed by
// ':' and '{' or "error" followed by ':' and anything but null. May say true wrongly
// (a nested key); never says false for a document whose top-level usage is an object.
bool sse_chat_data_needs_parse(const char* p, uint32_t n);

// What an event's name (or, without an event: line, its data's "type") announces.
enum class SseEventKind : uint8_t {
    none,  // No event: line.
    other,
    error,                // "error" (OpenAI Responses, Anthropic).
    response_completed,   // Responses API: response.usage present.
    response_incomplete,  // Responses API: response.usage present.
    response_failed,      // Responses API: response.usage may be present.
    response_created,     // Responses API: response.id (a stored response's id).
    // The last event of a streamed image (image_generation.completed, image_edit.completed)
    // or an SSE speech answer (speech.audio.done): usage at the root.
    media_done,
    message_start,  // Anthropic: message.usage (input tokens).
    message_delta,  // Anthropic: usage (output tokens so far).
    message_stop,   // Anthropic: end of the message.
};
SseEventKind sse_event_kind(std::string_view name);

// True when a chat chunk's data has "choices": [] (spaces allowed): the usage-only chunk
// include_usage adds, as opposed to a provider's usage on its finish_reason chunk.
bool sse_chat_data_has_empty_choices(std::string_view data);

// Stream offsets [start, end) of an event: from the first byte after the blank line that
// ended the previous event to the byte after the blank line that ends this one.
struct SseSpan {
    uint64_t start;
    uint64_t end;
};

// One per streamed request, embedded in the request (trivially destructible; holds arena
// pointers only). start() binds the arena; everything it copies lives there.
class SseUsageScanner {
public:
    // cut_usage: report chat usage-only events as cuts (see cuts()).
    void start(UsageFormat format, Arena& arena, bool cut_usage = false);

    // Scans piece, which may cut a line, a CRLF or a UTF-8 sequence anywhere. Nothing in
    // piece is referenced after the call returns.
    void feed(std::string_view piece);

    // Usage as reported so far (later usage objects overwrite earlier counters).
    const UsageCounts& usage() const { return usage_; }
    // chat: saw data: [DONE]; responses: response.completed, .incomplete or .failed (or a
    // media stream's last event, image_generation.completed & co); anthropic: message_stop.
    bool is_done() const { return is_done_; }
    // Responses API: the id of the stored response its response.created announced (arena);
    // empty when none was seen, or the response is not stored ("store": false).
    std::string_view response_id() const { return response_id_; }
    // Dispatched events (the SSE spec's: events with at least one data line).
    uint32_t events_count() const { return events_count_; }
    // An `error` event, response.failed, or data JSON with a non-null top-level "error".
    bool had_error_event() const { return had_error_; }
    // Events given to simdjson (the usage events only, when the pre-checks work).
    uint32_t events_parsed_count() const { return events_parsed_count_; }
    // Events that might have carried usage but were over sse_event_bytes_max or met an
    // arena refusal; their usage is lost (the request is then billed by estimate).
    uint32_t events_skipped_count() const { return events_skipped_count_; }
    // Stream offset where the event still open starts: every byte before it belongs to
    // events that are complete (or to blank lines and comments between them).
    uint64_t open_event_start() const { return event_start_; }
    // The usage-only events completed by the last feed() (cut_usage only), in stream order;
    // at most sse_cuts_per_feed_max, later ones in the same piece are not reported. An event
    // whose CRLF blank line a piece boundary split is reported in two spans: up to the CR,
    // then the LF at the start of the next piece.
    std::span<const SseSpan> cuts() const { return {cuts_, cut_count_}; }

private:
    enum class DataAt : uint8_t { none, piece, scratch };

    // Growable arena buffer with json_padding_bytes spare after capacity_bytes.
    struct Buffer {
        char* bytes;
        uint32_t used_bytes;
        uint32_t capacity_bytes;
    };

    void on_line(std::string_view line, bool is_in_piece);
    void on_line_truncated();
    void on_data(std::string_view value, bool is_in_piece);
    void dispatch();
    void dispatch_chat(std::string_view data);
    void dispatch_kind(SseEventKind kind);
    bool parse_usage(UsageAt at);
    bool data_to_scratch();
    void carry_append(const char* p, uint32_t n);
    void cut_if_usage_only(std::string_view data);
    void read_response_id();
    [[nodiscard]] bool buffer_append(Buffer& buffer, const char* p, uint32_t n);

    Arena* arena_ = nullptr;
    UsageFormat format_ = UsageFormat::chat;
    UsageParts parts_;
    UsageCounts usage_;
    std::string_view response_id_;  // See response_id() (arena).
    Buffer carry_{};                // The start of a line cut by the end of the previous piece.
    Buffer scratch_{};              // The current event's data once it cannot stay a view (padded).
    std::string_view data_view_;    // The current event's data while DataAt::piece.
    DataAt data_at_ = DataAt::none;
    SseEventKind event_kind_ = SseEventKind::none;
    uint32_t data_line_count_ = 0;
    bool is_event_damaged_ = false;    // Some data of the current event could not be kept.
    bool is_carry_truncated_ = false;  // The carried line outgrew sse_event_bytes_max.
    bool is_after_cr_ = false;         // The last piece ended in CR: a leading LF is its pair.
    bool is_done_ = false;
    bool had_error_ = false;
    uint32_t events_count_ = 0;
    uint32_t events_parsed_count_ = 0;
    uint32_t events_skipped_count_ = 0;
    bool is_cut_usage_ = false;
    uint64_t fed_bytes_ = 0;        // Stream bytes fed before the current piece.
    uint64_t line_end_offset_ = 0;  // Stream offset after the current line's line end.
    uint64_t event_start_ = 0;      // See open_event_start().
    uint64_t last_cut_end_ = 0;     // A cut ending in CR takes the LF that may follow.
    SseSpan cuts_[sse_cuts_per_feed_max] = {};
    uint32_t cut_count_ = 0;
};

}  // namespace rw
