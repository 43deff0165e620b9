// proxy/stream_cut.h — a chat stream relayed without the usage chunk ringway injected.
// ringway forces stream_options.include_usage on so every stream can be metered; a client
// that did not ask for it (or said false) must not see the extra chunk whose choices are
// empty (`chunk.choices[0].delta` throws on it). The scanner reports where that event lies
// (stream offsets); here it is cut out of the pieces before they are lent to the client.
// Every other event still goes out zero-copy from the recv buffer it arrived in; only an
// event that a recv piece cut in two is held back (its start copied into the arena, at most
// stream_hold_bytes_max) until its end shows whether it is the one to cut. Shard thread only.
#pragma once

#include <cstdint>

namespace rw {

struct Gateway;
struct ProxyRequest;

// Arena memory a hold lies in. Once sent it is the client send queue's until the client's
// sends pass sent_mark (client_bytes_queued after it was queued), then reusable.
struct HoldBuffer {
    char* bytes;  // nullptr until needed.
    uint32_t capacity_bytes;
    uint64_t sent_mark;
};

// The start of an event held back while its end has not arrived. Two buffers take turns:
// a piece that ends one held event often holds the next one's start while the first is
// still being sent, so a stream takes arena memory for its holds about twice, not once per
// held event.
struct StreamHold {
    HoldBuffer buffer;  // The hold's bytes: buffer.bytes[0, used_bytes).
    HoldBuffer spare;   // The one sent last.
    uint32_t used_bytes;
    uint64_t offset;              // Stream offset of bytes[0].
    uint64_t passed_event_start;  // An event too long to hold, relayed uncut.
    bool has_passed_event;
};

// Client send-queue entries one relayed piece may need: a held event start and the piece,
// three entries (size line, bytes, CRLF) each.
constexpr uint32_t stream_cut_room_needed = 6;

// Relays the piece [piece, piece + length_bytes) found at stream offset piece_offset, which
// the request's scanner has just been fed, without the cuts it reported. bid (or no_bid for
// arena memory) is lent to the client send, or given back when nothing of it is left.
void stream_cut_relay(Gateway& gateway, ProxyRequest& request, char* piece, uint32_t length_bytes,
                      uint16_t bid, uint64_t piece_offset);

// The stream ended cleanly: bytes still held (an event without its blank line) go out as
// they came.
void stream_cut_flush(ProxyRequest& request);

}  // namespace rw
