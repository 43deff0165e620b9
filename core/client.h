// core/client.h — all a request handler (proxy/) sees of a client connection: the
// parsed request and its arena, the ways to answer (a whole response, or a chunked
// stream whose pieces may lend recv buffers), and the bytes that went out. The
// connection itself (core/conn.h) stays opaque: its state machine is core's alone.
// Shard thread only. A handler that took a request (client_take) keeps the connection
// and its arena alive until it calls client_release, however the client behaves.
#pragma once

#include <cstdint>
#include <string_view>

#include "arena/arena.h"
#include "arena/buf_ring.h"
#include "core/cidr.h"
#include "core/http_parse.h"

namespace rw {

struct Conn;

// Why a handler's client went away (RequestHandler::on_client_gone).
enum class ClientGone : uint8_t {
    closed,          // Reset, half-close while waiting, send deadline, pipelining abuse.
    drain_deadline,  // The shutdown deadline passed with the request still open.
};

// A whole response. client_respond copies the body after the head; client_respond_borrowed
// sends it from where it lies.
struct ClientResponse {
    uint16_t status;
    std::string_view content_type;
    std::string_view body;
    std::string_view extra_headers;  // Complete "Name: value\r\n" lines, or empty.
    bool is_close;                   // The connection closes after it (pipelined input is dropped).
};

[[nodiscard]] Arena& client_arena(Conn& conn);
// During on_request: what on_head returned for this request (nullptr if no on_head).
[[nodiscard]] void* client_head_state(const Conn& conn);
[[nodiscard]] const ParsedRequest& client_request(const Conn& conn);
// Response bytes handed to the send queue (head, framing, body) and those a send
// completed: a client still there gets everything queued, a gone one got what was sent.
[[nodiscard]] uint64_t client_bytes_queued(const Conn& conn);
[[nodiscard]] uint64_t client_bytes_sent(const Conn& conn);
// The connection's TCP peer (an IPv4-mapped one as IPv4, core/cidr.h). Read with
// getpeername(2) the first time a handler asks and kept for the connection's life, so a
// connection whose requests never need it costs no syscall. False when the kernel cannot
// say (the peer reset the connection before the first ask); the answer is kept either way.
[[nodiscard]] bool client_peer_address(Conn& conn, IpAddress& address);

// During on_head, for a request the handler accepts: its body (Content-Length only, up to
// RINGWAY_MAX_UPLOAD_BYTES rather than RINGWAY_MAX_BODY_BYTES) is not stored. The request is
// dispatched (on_request, with an empty body) as soon as its head is accepted, and the body
// is handed to on_body as it arrives. on_body takes a prefix of each piece (all of it, or
// less to pause: the client's recv stops once its unread buffers reach the pause mark)
// and the handler calls client_body_resume when it can take more. A response given before
// the whole body was taken closes the connection after it.
void client_body_stream(Conn& conn);
void client_body_resume(Conn& conn);
// A streamed body's bytes not yet taken by on_body.
[[nodiscard]] uint64_t client_body_left(const Conn& conn);

// The handler owns the request from on_request until client_release; `request` is
// passed back to on_client_gone and on_client_writable.
void client_take(Conn& conn, void* request);
void client_release(Conn& conn);

// A whole response (a HEAD request gets its head only; a 204 or 304 never has a body).
// When the shard cannot spare memory for the head, the client gets a static 503 with
// Retry-After and the connection closes.
void client_respond(Conn& conn, const ClientResponse& response);
// The same without copying the body: it is queued after the head as it lies, so it must
// stay valid until the response is sent (this request's arena, or static memory).
void client_respond_borrowed(Conn& conn, const ClientResponse& response);
// 404 "Invalid URL (METHOD /path)" as OpenAI answers unknown routes. A well-framed request
// keeps its connection (nginx does the same); see on_head for a body not yet read.
void client_respond_unknown_url(Conn& conn);

// A chunked response: the head now, pieces as they come, then the end. A piece may lend
// a recv buffer (bid, else no_bid from arena/buf_ring.h): it is given back once the piece has been
// sent, and no byte of it is written before then (when the bytes around the piece are
// already its chunk framing, the send takes them too). False when the send queue has no
// room: wait for on_client_writable.
[[nodiscard]] bool client_stream_begin(Conn& conn, uint16_t status, std::string_view content_type,
                                       std::string_view extra_headers);
[[nodiscard]] bool client_stream_piece(Conn& conn, std::string_view piece, uint16_t bid);
// is_complete: the terminating chunk is sent and the connection may be reused.
// Otherwise the queued bytes are sent and the connection is closed without it, so the
// client sees an incomplete body (RULES §7).
void client_stream_end(Conn& conn, bool is_complete);
// Pieces the send queue can still take (a relayed chunk takes three).
[[nodiscard]] uint32_t client_send_room(const Conn& conn);
// Bytes of recv buffers lent to this connection's queued sends (whole buffers: a lent
// buffer is held whatever part of it the piece uses).
[[nodiscard]] uint64_t client_lent_bytes(const Conn& conn);

}  // namespace rw
