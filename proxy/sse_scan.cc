// proxy/sse_scan.cc — SSE framing per the WHATWG EventSource parsing rules (line ends CRLF,
// LF or CR; "field: value" with one leading space stripped; data lines joined with LF;
// ':' comments; an event is dispatched at a blank line if it has data) plus the usage
// decisions per API. The common path per line is one vector scan for CR/LF and a few byte
// compares; per chat event a check of the data's tail. Copies happen only when a piece
// boundary cuts a line or an event, and for the one event that goes to simdjson.
#include "proxy/sse_scan.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/assert.h"
#include "proxy/json_fields.h"

namespace rw {
namespace {

constexpr uint32_t buffer_bytes_min = 512;

bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// "field: value" → value when the line's field is exactly name (a line without ':' is
// the field with an empty value) [WHATWG HTML §9.2.6 "interpret as an event stream"].
// name_bytes is a compile-time constant at every call, so the memcmp is inlined.
template <uint32_t name_bytes>
bool field_value(std::string_view line, const char (&name)[name_bytes + 1],
                 std::string_view& value) {
    if (line.size() < name_bytes || std::memcmp(line.data(), name, name_bytes) != 0) {
        return false;
    }
    if (line.size() == name_bytes) {
        value = {};
        return true;
    }
    if (line[name_bytes] != ':') {
        return false;
    }
    value = line.substr(name_bytes + 1);
    if (!value.empty() && value[0] == ' ') {
        value.remove_prefix(1);
    }
    return true;
}

// True when data ends with "usage":null} (spaces allowed): the last member of the outermost
// object is a null usage, which is how OpenAI ends every chunk but the usage one when
// include_usage is set. Checked backwards from the end, so it costs a few compares.
bool is_tail_usage_null(const char* p, uint32_t n) {
    // OpenAI's own spelling, without spaces, in two loads; then the general walk.
    constexpr char compact[] = "\"usage\":null}";
    constexpr uint32_t compact_bytes = sizeof(compact) - 1;
    if (n >= compact_bytes && std::memcmp(p + n - compact_bytes, compact, compact_bytes) == 0) {
        return true;
    }
    uint32_t end = n;
    auto skip_space = [&]() {
        while (end > 0 && is_json_space(p[end - 1])) {
            end -= 1;
        }
    };
    skip_space();
    if (end == 0 || p[end - 1] != '}') {
        return false;
    }
    end -= 1;
    skip_space();
    // Fixed-size memcmp compiles to one load and compare (no libc call).
    if (end < 4 || std::memcmp(p + end - 4, "null", 4) != 0) {
        return false;
    }
    end -= 4;
    skip_space();
    if (end == 0 || p[end - 1] != ':') {
        return false;
    }
    end -= 1;
    skip_space();
    return end >= 7 && std::memcmp(p + end - 7, "\"usage\"", 7) == 0;
}

// A candidate at p[index] is "usage" or "error" (quotes included, 7 bytes). True when it
// is a key whose value may matter: usage followed by an object, error by anything but
// null. The end of data after the key or colon counts as maybe (the data is cut there only
// when it is malformed or multi-line, and simdjson will decide).
bool is_candidate_key(const char* p, uint32_t n, uint32_t index) {
    RW_DASSERT(index + 7 <= n);
    const bool is_usage = std::memcmp(p + index, "\"usage\"", 7) == 0;
    if (!is_usage && std::memcmp(p + index, "\"error\"", 7) != 0) {
        return false;
    }
    uint32_t at = index + 7;
    while (at < n && is_json_space(p[at])) {
        at += 1;
    }
    if (at == n) {
        return true;
    }
    if (p[at] != ':') {
        return false;  // A string value "usage", not a key.
    }
    at += 1;
    while (at < n && is_json_space(p[at])) {
        at += 1;
    }
    if (at == n) {
        return true;
    }
    return is_usage ? p[at] == '{' : p[at] != 'n';
}

// The "type" string of a data payload, for servers that send no event: lines. The first
// "type" member is the top-level one in every Responses and Anthropic event.
std::string_view peek_type(std::string_view data) {
    size_t at = data.find("\"type\"");
    if (at == std::string_view::npos) {
        return {};
    }
    at += 6;
    while (at < data.size() && is_json_space(data[at])) {
        at += 1;
    }
    if (at == data.size() || data[at] != ':') {
        return {};
    }
    at += 1;
    while (at < data.size() && is_json_space(data[at])) {
        at += 1;
    }
    if (at == data.size() || data[at] != '"') {
        return {};
    }
    const size_t end = data.find('"', at + 1);
    if (end == std::string_view::npos) {
        return {};
    }
    return data.substr(at + 1, end - at - 1);
}

}  // namespace

uint32_t sse_find_line_end_baseline(const char* p, uint32_t n) {
    uint32_t index = 0;
#if defined(__SSE2__)
    // SSE2 is baseline on x86-64. Per 16 bytes: compare with LF and CR, OR, one movemask.
    // The main loop takes 64 bytes per step and tests the OR of four blocks with one
    // branch; chat data lines are 200-400 bytes, so most of a line goes through it.
    const __m128i line_feed = _mm_set1_epi8('\n');
    const __m128i carriage_return = _mm_set1_epi8('\r');
    auto block_mask = [&](uint32_t at) {
        const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at));
        return _mm_or_si128(_mm_cmpeq_epi8(block, line_feed),
                            _mm_cmpeq_epi8(block, carriage_return));
    };
    for (; index + 64 <= n; index += 64) {
        const __m128i m0 = block_mask(index);
        const __m128i m1 = block_mask(index + 16);
        const __m128i m2 = block_mask(index + 32);
        const __m128i m3 = block_mask(index + 48);
        if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(m0, m1), _mm_or_si128(m2, m3))) != 0) {
            const uint64_t mask = uint64_t(uint32_t(_mm_movemask_epi8(m0))) |
                                  uint64_t(uint32_t(_mm_movemask_epi8(m1))) << 16 |
                                  uint64_t(uint32_t(_mm_movemask_epi8(m2))) << 32 |
                                  uint64_t(uint32_t(_mm_movemask_epi8(m3))) << 48;
            return index + static_cast<uint32_t>(__builtin_ctzll(mask));
        }
    }
    for (; index + 16 <= n; index += 16) {
        const auto mask = static_cast<uint32_t>(_mm_movemask_epi8(block_mask(index)));
        if (mask != 0) {
            return index + static_cast<uint32_t>(__builtin_ctz(mask));
        }
    }
    if (n >= 16 && index < n) {
        // The last 16 bytes, overlapping what was already scanned: no byte loop for the tail.
        const uint32_t at = n - 16;
        const uint32_t mask =
            static_cast<uint32_t>(_mm_movemask_epi8(block_mask(at))) >> (index - at);
        return mask != 0 ? index + static_cast<uint32_t>(__builtin_ctz(mask)) : n;
    }
#endif
    for (; index < n; index += 1) {
        if (p[index] == '\n' || p[index] == '\r') {
            return index;
        }
    }
    return n;
}

#if defined(__x86_64__)
namespace {

// The same scan with 32-byte AVX2 blocks, compiled for AVX2 whatever the build's -march and
// called only when the CPU has it (sse_find_line_end checks once). Lines under 32 bytes go
// to the baseline.
// 0xFF in each byte of the 32 at p that is LF or CR. (A lambda would not inherit the
// target attribute, so this is a function forced inline.)
[[gnu::target("avx2"), gnu::always_inline]] inline __m256i line_end_block_avx2(const char* p) {
    const __m256i block = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm256_or_si256(_mm256_cmpeq_epi8(block, _mm256_set1_epi8('\n')),
                           _mm256_cmpeq_epi8(block, _mm256_set1_epi8('\r')));
}

[[gnu::target("avx2")]] uint32_t find_line_end_avx2(const char* p, uint32_t n) {
    if (n < 32) {
        return sse_find_line_end_baseline(p, n);
    }
    uint32_t index = 0;
    for (; index + 64 <= n; index += 64) {
        const __m256i m0 = line_end_block_avx2(p + index);
        const __m256i m1 = line_end_block_avx2(p + index + 32);
        if (_mm256_movemask_epi8(_mm256_or_si256(m0, m1)) != 0) {
            const uint64_t mask = uint64_t(uint32_t(_mm256_movemask_epi8(m0))) |
                                  uint64_t(uint32_t(_mm256_movemask_epi8(m1))) << 32;
            return index + static_cast<uint32_t>(__builtin_ctzll(mask));
        }
    }
    if (index + 32 <= n) {
        const auto mask =
            static_cast<uint32_t>(_mm256_movemask_epi8(line_end_block_avx2(p + index)));
        if (mask != 0) {
            return index + static_cast<uint32_t>(__builtin_ctz(mask));
        }
        index += 32;
    }
    if (index < n) {
        // The last 32 bytes, overlapping what was already scanned.
        const uint32_t at = n - 32;
        const uint32_t mask =
            static_cast<uint32_t>(_mm256_movemask_epi8(line_end_block_avx2(p + at))) >>
            (index - at);
        return mask != 0 ? index + static_cast<uint32_t>(__builtin_ctz(mask)) : n;
    }
    return n;
}

}  // namespace
#endif

uint32_t sse_find_line_end(const char* p, uint32_t n) {
#if defined(__x86_64__)
    // Resolved once per process [gcc: __builtin_cpu_supports needs __builtin_cpu_init when
    // used before constructors run; a function-local static runs after them].
    static const bool has_avx2 = __builtin_cpu_supports("avx2");
    if (has_avx2) {
        return find_line_end_avx2(p, n);
    }
#endif
    return sse_find_line_end_baseline(p, n);
}

bool sse_chat_data_needs_parse(const char* p, uint32_t n) {
    if (is_tail_usage_null(p, n)) {
        return false;
    }
    uint32_t index = 0;
#if defined(__SSE2__)
    // Candidates are positions with '"' at +0 and +6 and u..e or e..r at +1 and +5: four
    // unaligned loads per 16 positions, and almost no false candidates in chunk JSON.
    const __m128i quote = _mm_set1_epi8('"');
    for (; index + 22 <= n; index += 16) {
        const char* at = p + index;
        const __m128i at1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 1));
        const __m128i at5 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 5));
        const __m128i quotes = _mm_and_si128(
            _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)), quote),
            _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 6)), quote));
        const __m128i usage = _mm_and_si128(_mm_cmpeq_epi8(at1, _mm_set1_epi8('u')),
                                            _mm_cmpeq_epi8(at5, _mm_set1_epi8('e')));
        const __m128i error = _mm_and_si128(_mm_cmpeq_epi8(at1, _mm_set1_epi8('e')),
                                            _mm_cmpeq_epi8(at5, _mm_set1_epi8('r')));
        auto mask = static_cast<unsigned>(
            _mm_movemask_epi8(_mm_and_si128(quotes, _mm_or_si128(usage, error))));
        while (mask != 0) {
            const uint32_t candidate = index + static_cast<uint32_t>(__builtin_ctz(mask));
            if (is_candidate_key(p, n, candidate)) {
                return true;
            }
            mask &= mask - 1;
        }
    }
#endif
    for (; index + 7 <= n; index += 1) {
        if (p[index] == '"' && p[index + 6] == '"' && is_candidate_key(p, n, index)) {
            return true;
        }
    }
    return false;
}

bool sse_chat_data_has_empty_choices(std::string_view data) {
    size_t at = data.find("\"choices\"");
    if (at == std::string_view::npos) {
        return false;
    }
    at += 9;
    for (const char expected : {':', '[', ']'}) {
        while (at < data.size() && is_json_space(data[at])) {
            at += 1;
        }
        if (at == data.size() || data[at] != expected) {
            return false;
        }
        at += 1;
    }
    return true;
}

SseEventKind sse_event_kind(std::string_view name) {
    struct KindName {
        std::string_view name;
        SseEventKind kind;
    };
    constexpr KindName kind_names[] = {
        {"error", SseEventKind::error},
        {"response.completed", SseEventKind::response_completed},
        {"response.incomplete", SseEventKind::response_incomplete},
        {"response.failed", SseEventKind::response_failed},
        {"response.created", SseEventKind::response_created},
        {"image_generation.completed", SseEventKind::media_done},
        {"image_edit.completed", SseEventKind::media_done},
        {"speech.audio.done", SseEventKind::media_done},
        {"message_start", SseEventKind::message_start},
        {"message_delta", SseEventKind::message_delta},
        {"message_stop", SseEventKind::message_stop},
    };
    if (name.empty()) {
        return SseEventKind::none;
    }
    for (const KindName& entry : kind_names) {
        if (name == entry.name) {
            return entry.kind;
        }
    }
    return SseEventKind::other;
}

void SseUsageScanner::start(UsageFormat format, Arena& arena, bool cut_usage) {
    *this = SseUsageScanner{};
    arena_ = &arena;
    format_ = format;
    is_cut_usage_ = cut_usage && format == UsageFormat::chat;
    RW_ASSERT(data_at_ == DataAt::none);
    RW_ASSERT(events_count_ == 0);
}

void SseUsageScanner::feed(std::string_view piece) {
    RW_ASSERT(arena_ != nullptr);
    RW_ASSERT(piece.size() < UINT32_MAX);
    const char* p = piece.data();
    const auto n = static_cast<uint32_t>(piece.size());
    cut_count_ = 0;  // Cuts are per feed.
    if (n == 0) {
        return;
    }
    uint32_t at = 0;
    if (is_after_cr_) {
        is_after_cr_ = false;
        at = p[0] == '\n' ? 1 : 0;  // The LF of a CRLF cut between pieces ends nothing.
        if (at == 1 && event_start_ == fed_bytes_) {
            event_start_ += 1;  // That LF still belongs to the blank line before.
        }
        if (at == 1 && is_cut_usage_ && last_cut_end_ == fed_bytes_) {
            cuts_[0] = SseSpan{fed_bytes_, fed_bytes_ + 1};  // The cut event's last byte.
            cut_count_ = 1;
        }
    }
    while (at < n) {
        const uint32_t end = at + sse_find_line_end(p + at, n - at);
        if (end == n) {
            carry_append(p + at, n - at);  // A line cut by the piece's end.
            break;
        }
        uint32_t next = end + 1;
        if (p[end] == '\r') {
            if (next == n) {
                is_after_cr_ = true;
            } else if (p[next] == '\n') {
                next += 1;
            }
        }
        line_end_offset_ = fed_bytes_ + next;
        if (carry_.used_bytes == 0 && !is_carry_truncated_) {
            on_line(std::string_view(p + at, end - at), true);
            if (next < n && p[next] == '\n') {
                // The blank line that ends most events, right behind their last line: taken
                // here, as the next turn would, without searching for its line end.
                next += 1;
                line_end_offset_ = fed_bytes_ + next;
                on_line({}, true);
            }
        } else {
            carry_append(p + at, end - at);
            if (is_carry_truncated_) {
                on_line_truncated();
            } else {
                on_line(std::string_view(carry_.bytes, carry_.used_bytes), false);
            }
            carry_.used_bytes = 0;
            is_carry_truncated_ = false;
        }
        at = next;
    }
    // The piece goes back to the kernel when we return: an event still open keeps a copy.
    if (data_at_ == DataAt::piece) {
        data_to_scratch();
    }
    fed_bytes_ += n;
    RW_ASSERT(data_at_ != DataAt::piece);
    RW_ASSERT(event_start_ <= fed_bytes_);
}

// A complete line, without its line end. is_in_piece: it points into the caller's piece
// (valid until feed returns) rather than into carry_ (valid until the next cut line).
void SseUsageScanner::on_line(std::string_view line, bool is_in_piece) {
    if (line.empty()) {
        dispatch();
        event_start_ = line_end_offset_;  // The next event starts after this blank line.
        return;
    }
    std::string_view value;
    if (line[0] == 'd' && field_value<4>(line, "data", value)) {
        on_data(value, is_in_piece);
        return;
    }
    if (line[0] == 'e' && field_value<5>(line, "event", value)) {
        event_kind_ = sse_event_kind(value);
        return;
    }
    // Comments (':'), id, retry and unknown fields change nothing ringway needs.
}

// A line longer than sse_event_bytes_max whose start is in carry_. If it may be data, the
// event's data is incomplete: it is still dispatched (so is_done and events_count stay
// right) but its payload is not read.
void SseUsageScanner::on_line_truncated() {
    const std::string_view start(carry_.bytes, carry_.used_bytes);
    std::string_view value;
    if (start.size() >= 6 && !field_value<4>(start, "data", value)) {
        if (field_value<5>(start, "event", value)) {
            event_kind_ = SseEventKind::other;  // No event name ringway knows is that long.
        }
        return;  // A comment or another field: nothing ringway needs was lost.
    }
    is_event_damaged_ = true;  // Data, or unknown (the arena refused even the line's start).
    data_line_count_ += 1;
}

void SseUsageScanner::on_data(std::string_view value, bool is_in_piece) {
    if (data_line_count_ == 0 && is_in_piece) {
        data_view_ = value;  // The common case: one data line, read where it lies.
        data_at_ = DataAt::piece;
    } else if (!is_event_damaged_) {
        if (data_at_ == DataAt::piece) {
            data_to_scratch();  // A second data line: the first must join it in scratch.
        }
        data_at_ = DataAt::scratch;
        const auto value_bytes = static_cast<uint32_t>(value.size());
        const bool is_kept = !is_event_damaged_ &&
                             (data_line_count_ == 0 || buffer_append(scratch_, "\n", 1)) &&
                             buffer_append(scratch_, value.data(), value_bytes);
        if (!is_kept) {
            is_event_damaged_ = true;
        }
    }
    data_line_count_ += 1;
}

// Copies the data view into scratch_ (its only copy once the piece is gone). False, with
// the event marked damaged, when it does not fit.
bool SseUsageScanner::data_to_scratch() {
    RW_ASSERT(data_at_ == DataAt::piece);
    RW_ASSERT(scratch_.used_bytes == 0);
    data_at_ = DataAt::scratch;
    if (buffer_append(scratch_, data_view_.data(), static_cast<uint32_t>(data_view_.size()))) {
        return true;
    }
    is_event_damaged_ = true;
    return false;
}

void SseUsageScanner::carry_append(const char* p, uint32_t n) {
    if (is_carry_truncated_ || buffer_append(carry_, p, n)) {
        return;
    }
    if (carry_.used_bytes == 0) {
        // Keep at least the start, which names the field (on_line_truncated).
        (void)buffer_append(carry_, p, std::min<uint32_t>(n, 8));
    }
    is_carry_truncated_ = true;
}

// Appends to an arena buffer, growing it by doubling (the old block stays in the arena
// until release; the waste is bounded by the final size). False at sse_event_bytes_max or
// when the arena refuses.
bool SseUsageScanner::buffer_append(Buffer& buffer, const char* p, uint32_t n) {
    const uint64_t needed_bytes = uint64_t(buffer.used_bytes) + n;
    if (needed_bytes > sse_event_bytes_max) {
        return false;
    }
    if (needed_bytes > buffer.capacity_bytes || buffer.bytes == nullptr) {
        const uint64_t doubled_bytes =
            std::max<uint64_t>(buffer_bytes_min, 2 * uint64_t(buffer.capacity_bytes));
        const auto capacity_bytes = static_cast<uint32_t>(
            std::min<uint64_t>(sse_event_bytes_max, std::max(needed_bytes, doubled_bytes)));
        auto* bytes =
            static_cast<char*>(arena_->alloc(capacity_bytes + uint64_t(json_padding_bytes), 1));
        if (bytes == nullptr) {
            return false;
        }
        if (buffer.used_bytes > 0) {
            std::memcpy(bytes, buffer.bytes, buffer.used_bytes);
        }
        buffer.bytes = bytes;
        buffer.capacity_bytes = capacity_bytes;
    }
    if (n > 0) {
        std::memcpy(buffer.bytes + buffer.used_bytes, p, n);
    }
    buffer.used_bytes += n;
    RW_ASSERT(buffer.used_bytes <= buffer.capacity_bytes);
    return true;
}

// End of an event (a blank line). Without data the SSE spec dispatches nothing.
void SseUsageScanner::dispatch() {
    if (data_line_count_ > 0) {
        events_count_ += 1;
        std::string_view data;
        if (data_at_ == DataAt::piece) {
            data = data_view_;
        } else if (data_at_ == DataAt::scratch) {
            data = std::string_view(scratch_.bytes, scratch_.used_bytes);
        }
        SseEventKind kind = event_kind_;
        if (format_ == UsageFormat::chat || format_ == UsageFormat::embeddings) {
            dispatch_chat(data);
        } else {
            if (kind == SseEventKind::none && !is_event_damaged_) {
                kind = sse_event_kind(peek_type(data));
            }
            dispatch_kind(kind);
        }
    }
    data_view_ = {};
    data_at_ = DataAt::none;
    scratch_.used_bytes = 0;
    data_line_count_ = 0;
    event_kind_ = SseEventKind::none;
    is_event_damaged_ = false;
}

void SseUsageScanner::dispatch_chat(std::string_view data) {
    if (event_kind_ == SseEventKind::error) {
        had_error_ = true;
    }
    if (is_event_damaged_) {
        events_skipped_count_ += 1;  // Unknown content: it might have been the usage.
        return;
    }
    if (data.size() == 6 && std::memcmp(data.data(), "[DONE]", 6) == 0) {
        is_done_ = true;
        return;
    }
    if (sse_chat_data_needs_parse(data.data(), static_cast<uint32_t>(data.size())) &&
        parse_usage(UsageAt::root) && is_cut_usage_) {
        cut_if_usage_only(data);
    }
}

// The event just dispatched carried usage: reported for cutting when it is the usage-only
// chunk (empty choices). A usage on a chunk that also carries a choice is relayed.
void SseUsageScanner::cut_if_usage_only(std::string_view data) {
    RW_ASSERT(is_cut_usage_);
    RW_ASSERT(event_start_ < line_end_offset_);
    if (cut_count_ < sse_cuts_per_feed_max && sse_chat_data_has_empty_choices(data)) {
        cuts_[cut_count_] = SseSpan{event_start_, line_end_offset_};
        cut_count_ += 1;
        last_cut_end_ = line_end_offset_;
    }
}

void SseUsageScanner::dispatch_kind(SseEventKind kind) {
    const bool is_anthropic = format_ == UsageFormat::anthropic_messages;
    switch (kind) {
        case SseEventKind::error: had_error_ = true; return;
        case SseEventKind::response_failed: had_error_ = true; [[fallthrough]];
        case SseEventKind::response_completed:
        case SseEventKind::response_incomplete:
            if (!is_anthropic) {
                is_done_ = true;
                parse_usage(UsageAt::in_response);
            }
            return;
        case SseEventKind::media_done:
            if (format_ == UsageFormat::responses) {
                is_done_ = true;
                parse_usage(UsageAt::root);
            }
            return;
        case SseEventKind::response_created:
            if (format_ == UsageFormat::responses && response_id_.empty()) {
                read_response_id();
            }
            return;
        case SseEventKind::message_start:
            if (is_anthropic) {
                parse_usage(UsageAt::in_message);
            }
            return;
        case SseEventKind::message_delta:
            if (is_anthropic) {
                parse_usage(UsageAt::root);
            }
            return;
        case SseEventKind::message_stop: is_done_ = is_done_ || is_anthropic; return;
        case SseEventKind::none:
            if (is_event_damaged_) {
                events_skipped_count_ += 1;  // No name, unreadable data: maybe the usage.
            }
            return;
        case SseEventKind::other: return;
    }
    RW_UNREACHABLE();
}

// response.created: the stored response's id, copied into the arena (the scratch is reused).
void SseUsageScanner::read_response_id() {
    if (data_at_ == DataAt::piece) {
        data_to_scratch();
    }
    if (is_event_damaged_) {
        return;
    }
    std::memset(scratch_.bytes + scratch_.used_bytes, 0, json_padding_bytes);
    const std::string_view id =
        stored_response_id_read(std::string_view(scratch_.bytes, scratch_.used_bytes), true);
    const char* copy = id.empty() ? nullptr : arena_->copy(id);
    if (copy != nullptr) {
        response_id_ = {copy, id.size()};
    }
}

// Runs simdjson on the current event's data, which must be in scratch_ for the padding.
// True when the event carried a usage object.
bool SseUsageScanner::parse_usage(UsageAt at) {
    if (data_at_ == DataAt::piece) {
        data_to_scratch();
    }
    if (is_event_damaged_) {
        events_skipped_count_ += 1;
        return false;
    }
    RW_ASSERT(data_at_ == DataAt::scratch);
    RW_ASSERT(scratch_.bytes != nullptr);
    RW_ASSERT(scratch_.used_bytes <= scratch_.capacity_bytes);  // Padding fits after it.
    std::memset(scratch_.bytes + scratch_.used_bytes, 0, json_padding_bytes);
    events_parsed_count_ += 1;
    const UsageDocument document = usage_read_document(
        std::string_view(scratch_.bytes, scratch_.used_bytes), format_, at, parts_);
    if (document.has_error) {
        had_error_ = true;
    }
    if (document.has_usage) {
        usage_ = usage_counts_from_parts(parts_, format_);
    }
    return document.has_usage;
}

}  // namespace rw
