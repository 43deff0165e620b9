// core/conn.h — client connection slots and their state machine, inside core only (the
// handler sees core/client.h). Slots live in a fixed array owned by one shard and are
// recycled only when no operation can still complete for them (inflight_sqes is zero, no
// handler owns the request, and the close CQE has come back); the generation in every tag
// proves a completion belongs to the current occupant. A connection serves one request
// at a time: pipelined bytes wait in `pending` (recv buffers still owned by the app) until
// the previous response has been sent, so responses leave in request order. Outgoing
// bytes wait in `segments`, a queue sent with one send/sendmsg at a time.
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <algorithm>

#include <cstdint>
#include <string>

#include "arena/arena.h"
#include "arena/buf_ring.h"
#include "arena/chunk_pool.h"
#include "core/client.h"
#include "core/config.h"
#include "core/handler.h"
#include "core/http_parse.h"
#include "core/limits.h"
#include "core/metrics.h"
#include "core/shard.h"

namespace rw {

enum class ConnState : uint8_t {
    free,       // Slot unused.
    reading,    // Waiting for or parsing a request.
    handling,   // Request complete; its response is being produced and/or sent.
    lingering,  // Last response sent, half-closed; input discarded until EOF.
    closing,    // Cancel issued; the fd is closed once nothing is in flight.
};

// How far the response of the current request has come.
enum class ResponsePhase : uint8_t {
    none,       // Nothing queued yet.
    streaming,  // Head queued; the handler queues more (chunked body).
    complete,   // Everything queued; when the queue drains the request is done.
    aborting,   // Queue the rest, then close without completing the response.
};

enum class Deadline : uint8_t { none, keepalive, header, body, send, linger };

// Whether the connection's peer address was read yet (client_peer_address).
enum class PeerAddressState : uint8_t { unread, known, unavailable };

// Received bytes not yet parsed: a recv buffer the app still owns.
struct PendingBuf {
    uint16_t bid;
    uint32_t offset_bytes;  // Bytes of the buffer already fed to the parser.
    uint32_t length_bytes;  // Bytes the recv delivered.
};

// One piece of output. data points into the request arena, static memory, a recv
// buffer lent to this send (bid != no_bid: given back when its bytes are sent) or, when
// data is nullptr, into inline_text (chunk-size lines).
struct SendSegment {
    const char* data;
    uint32_t length_bytes;
    uint16_t bid;
    uint8_t inline_bytes;
    char inline_text[segment_inline_bytes_max];
};

struct Conn {
    explicit Conn(const ParserLimits& limits) : parser(limits) {}

    RequestParser parser;
    Arena arena;                   // The current request's memory; released between requests.
    ClientConns* table = nullptr;  // The shard's table this slot belongs to.
    int fd = -1;
    uint32_t gen = 0;
    uint32_t slot = 0;
    uint32_t inflight_sqes = 0;
    ConnState state = ConnState::free;
    ResponsePhase response_phase = ResponsePhase::none;
    Deadline deadline = Deadline::none;
    bool is_recv_armed = false;
    bool is_peer_closed = false;       // recv returned 0.
    bool is_close_after_send = false;  // Response carries Connection: close.
    bool is_error_response = false;
    bool is_close_submitted = false;
    bool is_rearm_listed = false;         // In the table's re-arm list (after -ENOBUFS).
    bool is_recv_cancel_pending = false;  // Recv paused: too many pending buffers.
    bool is_send_inflight = false;
    bool is_handler_owned = false;    // The handler may still touch this request.
    bool is_closed_by_drain = false;  // Closed by the drain deadline, not by the client.
    bool is_stream_raw = false;       // HTTP/1.0 client: close-delimited, no chunking.
    bool is_in_head_hook = false;     // The handler's on_head is running.
    // Refused at its head: the answer goes out first, then the small body is read and
    // dropped before the next request is parsed (never dispatched).
    bool is_body_discarded = false;
    bool is_idle_listed = false;  // In the table's keep-alive idle list (evictable).
    // The handler streams this body (client_body_stream): dispatched at its head, the body
    // handed to on_body piece by piece, never stored (conn_body.cc).
    bool is_body_streamed = false;
    bool is_in_body_hook = false;  // The handler's on_body is running.
    PeerAddressState peer_address_state = PeerAddressState::unread;
    IpAddress peer_address;  // Meaningful when peer_address_state is known.
    uint8_t pending_head = 0;
    uint8_t pending_count = 0;
    uint8_t segment_head = 0;
    uint8_t segment_count = 0;
    uint8_t segment_inflight_count = 0;  // Segments covered by the send in flight.
    uint16_t response_status = 0;
    uint64_t deadline_ms = 0;
    uint32_t idle_prev = UINT32_MAX;  // Keep-alive idle list links (by slot), oldest first.
    uint32_t idle_next = UINT32_MAX;
    uint32_t lent_buffers = 0;  // Recv buffers lent to this connection's queued sends.
    uint64_t linger_bytes = 0;
    uint64_t requests_count = 0;
    uint64_t response_bytes_sent = 0;       // Completed by sends.
    uint64_t response_bytes_queued = 0;     // Handed to the send queue (head, framing, body).
    void* handler_request = nullptr;        // The handler's per-request state (in the arena).
    void* head_state = nullptr;             // on_head's state until on_request or abandon.
    void* head_state_dispatched = nullptr;  // The same, handed over during on_request.
    // The body deadline (RINGWAY_BODY_TIMEOUT_MS idle, RINGWAY_BODY_MIN_RATE_BYTES_PER_S
    // after RINGWAY_BODY_RATE_GRACE_MS): when the body began and the bytes received since.
    uint64_t body_started_ms = 0;
    uint64_t body_received_bytes = 0;
    uint64_t body_idle_deadline_ms = 0;
    // A streamed body whose handler is full (its upstream not reading): the body deadline
    // is off since then, and the paused time does not count once the handler resumes
    // (conn_body_deadline_pause / _resume). 0: not paused.
    uint64_t body_paused_ms = 0;
    uint64_t body_stream_left = 0;  // A streamed body's bytes not yet taken by on_body.
    // A streamed body's bytes that arrived with every pending slot taken (a burst the
    // multishot recv posted before its cancel landed): copied here in the arena, after the
    // pending buffers in order. Re-arms while a body streams are single-shot, so this holds
    // at most the burst in flight when the handler first paused.
    char* spill = nullptr;
    uint32_t spill_offset_bytes = 0;
    uint32_t spill_bytes = 0;
    uint32_t spill_capacity_bytes = 0;
    PendingBuf pending[conn_pending_bufs_max];
    SendSegment segments[conn_send_segments_max];
    iovec iov[conn_send_segments_max];  // Built per send from segments; stable while in flight.
    msghdr message{};
};

// A shard's client connections: the slots, the recv → parse → dispatch state machine
// (conn.cc) and the send queue with the responses built on it (conn_send.cc). The shard's
// loop feeds it completions; the handler reaches it through core/client.h.
class ClientConns {
public:
    ClientConns(Shard& shard, ServerShared& shared, ShardMetrics& metrics, BufRing& buf_ring,
                ChunkPool& chunk_pool);
    ~ClientConns();
    ClientConns(const ClientConns&) = delete;
    ClientConns& operator=(const ClientConns&) = delete;

    // Allocates the slots (RINGWAY_MAX_CONNECTIONS). False with a one-line cause.
    [[nodiscard]] bool setup(std::string& error);
    void set_handler(const RequestHandler& handler) { handler_ = handler; }
    const RequestHandler& handler() const { return handler_; }

    // --- Fed by the shard's loop. ---
    void open(int fd);  // An accepted socket.
    // The slot a completion names; asserts it is the tag's current occupant.
    Conn& at(uint32_t slot, uint32_t gen);
    void on_recv(Conn& conn, const io_uring_cqe& cqe);
    void on_send(Conn& conn, const io_uring_cqe& cqe);
    void on_send_continue(Conn& conn, int result);
    void on_advisory(Conn& conn);  // A cancel or shutdown completed (results advisory).
    void on_close(Conn& conn);
    void after_cqe(Conn& conn);  // Closes the fd once nothing is in flight.
    void rearm_listed();         // Turn end: recvs that hit -ENOBUFS, if buffers came back.
    void sweep(uint64_t now_ms, bool is_drain_overdue);
    void drain_begin();  // Closes idle connections.
    uint32_t open_count() const { return open_count_; }
    uint32_t buf_bytes() const { return buf_ring_.buf_bytes(); }

    // --- For core/client.h (the handler's interface). ---
    void take(Conn& conn, void* request);
    void release(Conn& conn);
    void respond(Conn& conn, const ClientResponse& response, bool is_body_borrowed);
    // The core's own error answers (malformed input, timeouts): the connection closes.
    void respond_error(Conn& conn, uint16_t status, std::string_view code,
                       std::string_view message);
    void respond_unknown_url(Conn& conn);
    [[nodiscard]] bool stream_begin(Conn& conn, uint16_t status, std::string_view content_type,
                                    std::string_view extra_headers);
    [[nodiscard]] bool stream_piece(Conn& conn, std::string_view piece, uint16_t bid);
    bool is_framed_in_buffer(std::string_view piece, uint16_t bid,
                             std::string_view size_line) const;
    void stream_end(Conn& conn, bool is_complete);
    void body_stream(Conn& conn);
    void body_resume(Conn& conn);

private:
    // Submission (each SQE counts in the connection's inflight_sqes until its last CQE).
    void submit_recv(Conn& conn);
    void submit_send(Conn& conn);
    void submit_send_continue(Conn& conn);
    void submit_cancel_recv(Conn& conn);
    void submit_cancel_all(Conn& conn);
    void submit_shutdown(Conn& conn);
    void submit_close(Conn& conn);

    // Input: recv → parse → dispatch (conn.cc).
    void on_recv_bytes(Conn& conn, uint16_t bid, uint32_t length_bytes);
    bool on_recv_merge(Conn& conn, uint16_t bid, uint32_t length_bytes);
    void on_recv_eof(Conn& conn);
    void on_recv_error(Conn& conn, int error);
    void conn_process_input(Conn& conn);
    void conn_head_complete(Conn& conn);
    bool conn_head_hook(Conn& conn);
    void conn_head_abandon(Conn& conn);
    bool conn_body_is_discardable(const Conn& conn) const;
    void conn_body_deadline_start(Conn& conn);
    void conn_body_deadline_note(Conn& conn, uint32_t length_bytes);
    void conn_body_deadline_pause(Conn& conn);
    void conn_body_deadline_resume(Conn& conn);
    void conn_request_complete(Conn& conn);
    // A streamed body (conn_body.cc): dispatched at its head, then pumped to on_body.
    void conn_body_stream_begin(Conn& conn);
    void conn_body_pump(Conn& conn);
    [[nodiscard]] bool conn_body_spill(Conn& conn, uint16_t bid, uint32_t length_bytes);
    void conn_body_pump_spill(Conn& conn);
    [[nodiscard]] bool conn_body_offer(Conn& conn, const char* bytes, uint64_t unread,
                                       uint32_t& taken, bool& is_full);
    void conn_dispatch(Conn& conn);
    void conn_serve_builtin(Conn& conn, std::string_view path, bool is_head);
    void conn_start_request(Conn& conn);
    void open_in_slot(int fd);
    void conn_linger(Conn& conn);
    void conn_close(Conn& conn);
    void conn_pending_drop(Conn& conn);
    void conn_set_deadline(Conn& conn, Deadline deadline, uint32_t timeout_ms);
    void idle_link(Conn& conn);
    void idle_unlink(Conn& conn);
    bool evict_oldest_idle(int fd);
    void refuse(int fd);
    void conn_on_deadline(Conn& conn);
    void conn_maybe_rearm_recv(Conn& conn);
    void conn_respond_parse_error(Conn& conn, ParseError error);

    // Output: the send queue and responses (conn_send.cc).
    void conn_respond(Conn& conn, uint16_t status, std::string_view content_type,
                      std::string_view body, bool is_head_only, std::string_view extra_headers,
                      bool is_body_borrowed = false);
    void conn_respond_overloaded(Conn& conn);
    bool conn_response_is_close(const Conn& conn) const;
    void conn_respond_json_error(Conn& conn, uint16_t status, std::string_view code,
                                 std::string_view message);
    bool conn_queue(Conn& conn, const char* data, uint32_t length_bytes, uint16_t bid);
    bool conn_queue_inline(Conn& conn, const char* text, uint32_t length_bytes);
    void conn_flush(Conn& conn);
    void conn_segments_drop(Conn& conn);
    void conn_lent_note(Conn& conn, int delta);
    uint32_t conn_segments_retire(Conn& conn, uint8_t covered, uint32_t sent_bytes);
    void conn_response_sent(Conn& conn);

    Shard& shard_;
    ServerShared& shared_;
    const Config& config_;
    ShardMetrics& metrics_;
    BufRing& buf_ring_;
    ChunkPool& chunk_pool_;
    ParserLimits parser_limits_;
    RequestHandler handler_;
    Conn* conns_ = nullptr;  // [config_.max_connections], constructed in setup().
    uint32_t* free_slots_ = nullptr;
    uint32_t free_slot_count_ = 0;
    uint32_t open_count_ = 0;
    uint32_t slots_high_water_ = 0;   // Slots [0, high water) have been used.
    uint32_t* rearm_list_ = nullptr;  // Conns whose recv must be re-armed at turn end.
    uint32_t rearm_count_ = 0;
    uint32_t lent_buffers_ = 0;  // Recv buffers lent to sends, all connections.
    // The parked-input mark past which a connection's recv is cancelled: at most a quarter
    // of the ring, so one client pipelining into a small ring (RINGWAY_RECV_BUFFERS=8)
    // cannot park every buffer and starve the others' recvs until it reads.
    uint32_t pending_pause() const {
        return std::max<uint32_t>(
            1, std::min<uint32_t>(conn_pending_bufs_pause, buf_ring_.buf_count() / 4));
    }
    // Keep-alive connections waiting for their next request, oldest first: at the cap the
    // oldest is closed to make room for a new connection, which waits here for its slot.
    uint32_t idle_head_ = UINT32_MAX;
    uint32_t idle_tail_ = UINT32_MAX;
    int waiting_fds_[accept_waiting_max];
    uint32_t waiting_count_ = 0;
    uint64_t refusals_unlogged_ = 0;  // Refusals since the last log line (one a second).
    uint64_t refusal_logged_ms_ = 0;
};

}  // namespace rw
