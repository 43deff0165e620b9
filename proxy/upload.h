// proxy/upload.h — multipart uploads (/v1/audio/transcriptions, /translations,
// /v1/images/edits) relayed as they arrive: the core hands the body over piece by piece
// (core/client.h client_body_stream); the start of it is kept in the request's arena until
// its `model` part is complete (RINGWAY_MULTIPART_MODEL_WINDOW_BYTES), then the channel is
// chosen and the upstream gets the head and that prefix, and the rest goes out one piece
// at a time through a fixed window, the client's recv paused while a send is in flight.
// Memory per upload: the prefix window plus one send window, whatever the upload's size.
// Another channel may be tried only while nothing past the prefix has gone upstream.
// Shard thread only.
#pragma once

#include <cstdint>
#include <string_view>

#include "arena/arena.h"
#include "core/client.h"
#include "proxy/fault.h"

namespace rw {

struct Gateway;
struct ProxyRequest;
struct UpstreamConn;
struct Candidate;

struct Upload {
    std::string_view content_type;  // The client's (multipart/form-data; boundary=…).
    std::string_view boundary;
    uint64_t length_bytes;           // The client's Content-Length.
    uint64_t upstream_length_bytes;  // The current attempt's (the model part renamed).
    char* prefix;                    // Buffered until the model part is complete.
    uint32_t prefix_bytes;
    uint32_t prefix_capacity;
    uint32_t model_begin;  // The model part's value in prefix.
    uint32_t model_end;
    char* window;  // One piece on its way upstream (plaintext, or TLS records).
    uint32_t window_capacity;
    uint64_t taken_after_prefix;  // Client bytes relayed past the prefix.
    bool is_routed;               // The model is known and the first attempt started.
    bool is_prefix_sent;          // The current attempt's head and prefix went out whole.
    bool is_window_sending;
};

// At the head (on_head): the upload's framing and type. Refusals: 411 for a chunked body,
// 413 over RINGWAY_MAX_UPLOAD_BYTES, 400 without a multipart/form-data boundary.
[[nodiscard]] Fault upload_head(Gateway& gateway, ProxyRequest& request, const ParsedRequest& http);
// on_request (the head was dispatched, no body yet).
void upload_start(Gateway& gateway, ProxyRequest& request);
// core/handler.h on_body.
[[nodiscard]] uint32_t upload_on_body(Gateway& gateway, ProxyRequest& request,
                                      std::string_view piece, bool is_last);
// The attempt's send went out whole: true when the upload goes on (more to send), false
// when the request is sent whole and the attempt waits for its answer.
[[nodiscard]] bool upload_on_sent(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request);
// The upstream body's prefix for the current candidate (the model part renamed to
// model_sent); false: out of memory.
[[nodiscard]] bool upload_body_build(Arena& arena, ProxyRequest& request,
                                     const Candidate& candidate);
// Nothing past the prefix went upstream, so another channel may get the whole upload.
[[nodiscard]] bool upload_can_retry(const ProxyRequest& request);
// Every byte of the upload went upstream (an upstream connection is reusable only then).
[[nodiscard]] bool upload_is_sent_whole(const ProxyRequest& request);

}  // namespace rw
