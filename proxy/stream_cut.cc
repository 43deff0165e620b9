// proxy/stream_cut.cc — the injected usage chunk cut out of a relayed stream (see
// stream_cut.h). The bytes of one piece that stay are moved down over a cut inside the
// piece's own buffer (memmove, no new memory), as relay_spans does for chunk framing.
// Shard thread only.
#include "proxy/stream_cut.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <utility>

#include "core/assert.h"
#include "core/client.h"
#include "core/limits.h"
#include "proxy/gateway.h"
#include "proxy/request.h"

namespace rw {
namespace {

constexpr uint32_t hold_bytes_min = 512;

bool cut_starts_at(std::span<const SseSpan> cuts, uint64_t offset) {
    return std::any_of(cuts.begin(), cuts.end(),
                       [offset](const SseSpan& cut) { return cut.start == offset; });
}

// Lends the bytes to the client send, or gives the buffer back when nothing is left of the
// piece or the client is gone (the room was checked before the upstream recv was armed).
void piece_send(Gateway& gateway, ProxyRequest& request, const char* data, uint32_t length_bytes,
                uint16_t bid) {
    if (length_bytes > 0 && !request.is_client_gone &&
        client_stream_piece(*request.conn, {data, length_bytes}, bid)) {
        return;
    }
    if (bid != no_bid) {
        gateway.shard.buf_ring().give_back(bid);
    }
}

// An empty hold starts in a buffer the client's sends are done with (sent_bytes:
// client_bytes_sent): its own, else the spare; with neither free, in new arena memory (the
// one still being sent is left to the send queue).
void hold_start(StreamHold& hold, uint64_t sent_bytes) {
    RW_ASSERT(hold.used_bytes == 0);
    if (sent_bytes < hold.buffer.sent_mark || hold.buffer.bytes == nullptr) {
        if (hold.spare.bytes != nullptr && sent_bytes >= hold.spare.sent_mark) {
            std::swap(hold.buffer, hold.spare);
        } else if (sent_bytes < hold.buffer.sent_mark) {
            hold.buffer = HoldBuffer{};
        }
    }
}

// Appends to the hold, growing it in the arena. False past stream_hold_bytes_max or when
// the arena refuses memory; the held bytes are unchanged then.
bool hold_append(Arena& arena, StreamHold& hold, const char* data, uint32_t length_bytes,
                 uint64_t sent_bytes) {
    const uint64_t needed = uint64_t(hold.used_bytes) + length_bytes;
    if (needed > stream_hold_bytes_max) {
        return false;
    }
    if (hold.used_bytes == 0) {
        hold_start(hold, sent_bytes);
    }
    HoldBuffer& buffer = hold.buffer;
    if (needed > buffer.capacity_bytes) {
        const auto capacity = static_cast<uint32_t>(std::min<uint64_t>(
            stream_hold_bytes_max,
            std::max<uint64_t>({needed, 2 * uint64_t(buffer.capacity_bytes), hold_bytes_min})));
        auto* bytes = static_cast<char*>(arena.alloc(capacity, 1));
        if (bytes == nullptr) {
            return false;
        }
        if (hold.used_bytes > 0) {
            std::memcpy(bytes, buffer.bytes, hold.used_bytes);
        }
        buffer.bytes = bytes;
        buffer.capacity_bytes = capacity;
    }
    std::memcpy(buffer.bytes + hold.used_bytes, data, length_bytes);
    hold.used_bytes += length_bytes;
    RW_ASSERT(hold.used_bytes <= buffer.capacity_bytes);
    return true;
}

// Sends what is held; its buffer is then the send queue's until the client's sends pass
// what is queued now, and becomes the spare (the old spare takes its turn).
void hold_send(Gateway& gateway, ProxyRequest& request) {
    StreamHold& hold = request.hold;
    if (hold.used_bytes > 0) {
        piece_send(gateway, request, hold.buffer.bytes, hold.used_bytes, no_bid);
        hold.buffer.sent_mark = client_bytes_queued(*request.conn);
        std::swap(hold.buffer, hold.spare);
        hold.used_bytes = 0;
    }
}

// Removes the cuts from the piece's decided bytes [piece_offset, decided_end), moving what
// follows each cut down over it. Returns the bytes kept, now at piece[0, kept).
uint32_t piece_compact(char* piece, uint64_t piece_offset, uint64_t decided_end,
                       std::span<const SseSpan> cuts, const StreamHold& hold) {
    uint32_t kept = 0;
    uint64_t read = piece_offset;  // The next stream offset to keep from.
    for (const SseSpan& cut : cuts) {
        if (hold.has_passed_event && cut.start == hold.passed_event_start) {
            continue;  // Its start already went out: relayed whole.
        }
        const uint64_t low = std::max(cut.start, piece_offset);
        const uint64_t high = std::min(cut.end, decided_end);
        if (low >= high) {
            continue;
        }
        RW_ASSERT(low >= read);  // Cuts come in stream order and do not overlap.
        const auto keep = static_cast<uint32_t>(low - read);
        std::memmove(piece + kept, piece + (read - piece_offset), keep);
        kept += keep;
        read = high;
    }
    const auto keep = static_cast<uint32_t>(decided_end - read);
    std::memmove(piece + kept, piece + (read - piece_offset), keep);
    kept += keep;
    RW_ASSERT(kept <= decided_end - piece_offset);
    return kept;
}

}  // namespace

void stream_cut_relay(Gateway& gateway, ProxyRequest& request, char* piece, uint32_t length_bytes,
                      uint16_t bid, uint64_t piece_offset) {
    RW_ASSERT(request.is_usage_cut);
    StreamHold& hold = request.hold;
    if (hold.used_bytes > 0) {
        RW_ASSERT(hold.offset + hold.used_bytes == piece_offset);  // Held bytes come first.
    }
    const std::span<const SseSpan> cuts = request.scanner.cuts();
    const uint64_t piece_end = piece_offset + length_bytes;
    const uint64_t open_start = request.scanner.open_event_start();
    RW_ASSERT(open_start <= piece_end);
    // 1. A held event start is decided once its event ended: cut, or sent before the piece.
    if (hold.used_bytes > 0 && open_start > hold.offset) {
        if (cut_starts_at(cuts, hold.offset)) {
            hold.used_bytes = 0;  // Never sent: the memory is reused.
        } else {
            hold_send(gateway, request);
        }
    }
    // 2. The bytes of the event still open wait in the hold for its end, unless that event
    // was already found too long to hold.
    uint64_t decided_end = std::max(open_start, piece_offset);
    const bool is_passed = hold.has_passed_event && hold.passed_event_start == open_start;
    if (decided_end < piece_end && !is_passed) {
        if (hold.used_bytes == 0) {
            hold.offset = decided_end;
        }
        const auto tail_bytes = static_cast<uint32_t>(piece_end - decided_end);
        if (!hold_append(client_arena(*request.conn), hold, piece + (decided_end - piece_offset),
                         tail_bytes, client_bytes_sent(*request.conn))) {
            // Far longer than a usage chunk (or no memory): it is relayed uncut.
            hold_send(gateway, request);
            hold.has_passed_event = true;
            hold.passed_event_start = open_start;
            decided_end = piece_end;
        }
    } else {
        decided_end = piece_end;
    }
    // 3. The decided bytes of the piece, without the cuts, in one piece.
    const uint32_t kept = piece_compact(piece, piece_offset, decided_end, cuts, hold);
    piece_send(gateway, request, piece, kept, bid);
}

void stream_cut_flush(ProxyRequest& request) {
    StreamHold& hold = request.hold;
    if (hold.used_bytes > 0 && !request.is_client_gone) {
        // Best effort: an event without its blank line is dropped by SSE clients anyway.
        [[maybe_unused]] const bool is_queued =
            client_stream_piece(*request.conn, {hold.buffer.bytes, hold.used_bytes}, no_bid);
    }
    hold.used_bytes = 0;
}

}  // namespace rw
