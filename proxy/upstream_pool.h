// proxy/upstream_pool.h — a shard's upstream connections: a fixed array of slots
// (RINGWAY_UPSTREAM_CONNECTIONS_MAX), a free list, and per channel a keep-alive list of
// idle connections, most recently used first. The pool opens sockets, submits their
// connect/send/recv/cancel/close on the shard's ring and accounts every SQE; what a
// completion means for a request is decided by the attempt and relay code. A closing
// connection detaches from its request at once but keeps the request alive (through
// ProxyRequest::upstreams_closing) until no SQE of it can still read the request's arena.
// Shard thread only.
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>

#include "core/metrics.h"
#include "core/shard.h"
#include "proxy/channel_table.h"
#include "proxy/tls.h"

namespace rw {

struct ProxyRequest;
struct Candidate;

enum class UpstreamState : uint8_t { free, connecting, sending, receiving, idle, closing };

// Pieces a plain connection's multishot recv delivered after its stream paused for a slow
// client (read before the cancel landed), waiting in order for the client: small ones are
// merged into the last buffer. The multishot stops by itself once it has read one recv
// buffer's worth of bytes (RINGWAY_RECV_BUFFER_BYTES), so fewer than two buffers' bytes can
// come after a pause, and merged they fill at most three buffers.
constexpr uint32_t upstream_held_max = 4;

struct HeldPiece {
    uint16_t bid;
    uint32_t length_bytes;
};

struct UpstreamConn {
    int fd = -1;
    uint32_t gen = 0;
    uint32_t slot = 0;
    uint32_t inflight_sqes = 0;
    UpstreamState state = UpstreamState::free;
    bool is_reused = false;  // Served an earlier request (keep-alive race possible).
    bool is_recv_inflight = false;
    bool is_recv_multishot = false;       // The armed recv delivers until it ends (no F_MORE).
    bool is_recv_cancel_pending = false;  // Paused: its cancel is on the way.
    bool is_end_held = false;             // EOF or an error came behind held pieces.
    uint8_t held_count = 0;
    bool is_send_inflight = false;
    bool is_close_submitted = false;
    bool has_response_bytes = false;  // Any byte of the current response arrived.
    bool is_tls = false;
    bool is_handshake_done = false;
    bool is_rearm_listed = false;
    TlsSession tls;  // OpenSSL over memory BIOs; io_uring moves the bytes.
    int64_t channel_id = 0;
    uint64_t endpoint_tag = 0;  // Hash of the address and TLS name it was opened for.
    uint64_t deadline_ms = 0;   // 0: none.
    uint64_t idle_since_ms = 0;
    uint32_t next_idle = UINT32_MAX;      // Pool list link (by slot).
    ProxyRequest* request = nullptr;      // While attached to a request.
    ProxyRequest* closing_for = nullptr;  // Closing; its SQEs may still read this request.
    uint32_t send_remaining_bytes = 0;
    int32_t end_error = 0;  // With is_end_held: errno of the recv's end, 0 for EOF.
    HeldPiece held[upstream_held_max];
    iovec iov[2];  // Request head + body (arena memory of the request).
    msghdr message{};
};

class UpstreamPool {
public:
    // is_multishot: plain connections read with a multishot recv (RINGWAY_UPSTREAM_MULTISHOT);
    // recvs_armed counts every recv SQE (ringway_upstream_recvs_armed_total).
    UpstreamPool(Shard& shard, uint32_t slot_count, bool is_multishot, Counter& recvs_armed);
    ~UpstreamPool();
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // The most recently pooled connection of the candidate's channel, marked reused;
    // nullptr if none. Pooled connections opened for another address or TLS name (the
    // channel's base_url changed since) are closed on the way, never reused.
    [[nodiscard]] UpstreamConn* take_idle(const Candidate& candidate);
    // A free slot with a new non-blocking TCP socket for the candidate's address family;
    // nullptr when every slot is taken or socket() fails.
    [[nodiscard]] UpstreamConn* open(const Candidate& candidate);
    // Every slot taken: closes the connection pooled idle the longest, whatever its channel,
    // so its slot comes free once its close completes (free_count() > 0 again). False when
    // no connection is idle.
    bool evict_oldest_idle();
    // Keep-alive: the connection joins its channel's idle list, its recv armed so an
    // upstream that closes or talks out of turn is noticed at once.
    void park(UpstreamConn& upstream, uint64_t now_ms, uint32_t keepalive_ms);
    // Cancels what is pending and closes the fd once nothing is in flight. Idempotent.
    void close(UpstreamConn& upstream);

    void submit_connect(UpstreamConn& upstream, const Candidate& candidate);
    void submit_send(UpstreamConn& upstream);
    // is_socket_empty: nothing can be waiting to be read (a request just sent, an answer
    // read to its last byte), so the kernel arms its poll at once instead of first trying
    // a recv that can only fail (IORING_RECVSEND_POLL_FIRST). A plain connection's recv is
    // multishot: one SQE delivers every piece (IORING_CQE_F_MORE) until it has read one
    // recv buffer's worth of bytes, then ends (no F_MORE); a TLS connection's is single-shot.
    void submit_recv(UpstreamConn& upstream, bool is_socket_empty = false);
    // Pauses an armed multishot recv: it ends with -ECANCELED (or whatever came first).
    void cancel_recv(UpstreamConn& upstream);
    // The kernel refused a multishot recv (-EINVAL: no byte cap before Linux 6.17): plain
    // connections read single-shot from now on. Logged once.
    void multishot_off();
    // A recv that hit -ENOBUFS: re-armed by rearm_listed() once buffers come back.
    void rearm_later(UpstreamConn& upstream);
    void rearm_listed();

    // The connection a handler completion names, its SQE count taken down when the
    // completion is its operation's last (is_final: no IORING_CQE_F_MORE).
    [[nodiscard]] UpstreamConn& completed(uint32_t slot, uint32_t gen, bool is_final);
    // After a close CQE: the slot is free again.
    void on_closed(UpstreamConn& upstream);
    // A closing connection with nothing in flight: the fd is closed; returns the request
    // it was closing for (now free of this connection's SQEs), or nullptr.
    [[nodiscard]] ProxyRequest* maybe_finish(UpstreamConn& upstream);

    [[nodiscard]] UpstreamConn& at(uint32_t slot) { return slots_[slot]; }
    [[nodiscard]] uint32_t high_water() const { return high_water_; }
    [[nodiscard]] uint32_t free_count() const { return free_count_; }
    // Connections closing: each one's slot comes free when its close completes.
    [[nodiscard]] uint32_t closing_count() const { return closing_count_; }

private:
    struct IdleList {
        uint32_t head = UINT32_MAX;  // Slot of the most recently pooled, UINT32_MAX: none.
        uint32_t count = 0;
    };
    void idle_unlink(UpstreamConn& upstream);
    void held_give_back(UpstreamConn& upstream);

    Shard& shard_;
    uint32_t slot_count_;
    // [slot_count_] of storage; slots below high_water_ are constructed (open() builds the
    // next one when first needed: the table is sized by the descriptor limit, and slots a
    // shard never used must not be resident).
    UpstreamConn* slots_ = nullptr;
    std::unique_ptr<uint32_t[]> free_;
    uint32_t free_count_ = 0;
    uint32_t high_water_ = 0;
    uint32_t closing_count_ = 0;
    bool is_multishot_;
    Counter& recvs_armed_;
    std::unique_ptr<uint32_t[]> rearm_;  // Slots whose recv hit -ENOBUFS.
    uint32_t rearm_count_ = 0;
    ChannelTable<IdleList> idle_;
};

}  // namespace rw
