// core/shard.h — one shard: a thread pinned to a CPU that owns an io_uring ring, a
// SO_REUSEPORT listener, a provided buffer ring, a chunk pool and a fixed array of
// connection slots. Nothing here is touched by another thread except through
// ServerShared (atomics) and the wake eventfd. A loop turn is: one submit-and-wait, all
// completions handled, then turn_end() (buffer give-backs published, recvs re-armed,
// deadlines swept). Handlers only change state and queue SQEs.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "arena/buf_ring.h"
#include "arena/chunk_pool.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/handler.h"
#include "core/http_write.h"
#include "core/metrics.h"
#include "core/op.h"

namespace rw {

class Shard;

// Sets up and tears down a small ring the way every shard will, so main() can refuse to
// start (io_uring disabled by sysctl or seccomp, too old a kernel) before touching
// storage or logging anything. False with one line of `error` naming the cause.
[[nodiscard]] bool io_uring_probe(std::string& error);

// What every shard shares: read-only config, the metrics of all shards (for /metrics)
// and the process-wide flags. Owned by main(); outlives the shards.
struct ServerShared {
    const Config* config = nullptr;
    ShardMetrics* metrics[shards_max] = {};
    uint32_t shard_count = 0;
    std::atomic<bool> is_stopping{false};
    std::atomic<bool> is_ready{false};
    // Other subsystems' metrics, appended to /metrics (Prometheus text; bytes written).
    uint32_t (*render_metrics)(void* context, char* out, uint32_t capacity) = nullptr;
    // A reason /readyz answers 503 (e.g. the usage writer is failing), or nullptr.
    const char* (*not_ready_reason)(void* context) = nullptr;
    void* hooks_context = nullptr;
};

class Shard {
public:
    Shard(ServerShared& shared, uint32_t index, int listen_fd);
    ~Shard();
    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;

    // Creates the ring, buffer ring, slots and pools. Returns false with a one-line
    // cause in error (e.g. io_uring disabled). Runs on the shard's own thread, so the
    // ring's single issuer is the thread that will submit.
    [[nodiscard]] bool setup(std::string& error);

    // The loop. Returns when a stop was requested and every connection is closed (or
    // the shutdown deadline passed and they were closed by force).
    void run();

    // Any thread: makes the shard look at ServerShared::is_stopping.
    void wake();

    ShardMetrics& metrics() { return metrics_; }
    uint32_t index() const { return index_; }
    uint64_t now_ms() const { return now_ms_; }
    const Config& config() const { return config_; }
    BufRing& buf_ring() { return buf_ring_; }
    bool is_draining() const { return is_draining_; }

    // The handler for requests the core does not serve. Set before run().
    void set_handler(const RequestHandler& handler) { handler_ = handler; }

    // An SQE for the handler's own operations (flush-on-full).
    io_uring_sqe* sqe_get();

    // --- For the handler: answering a request it was given. ---
    // The handler keeps the connection (and its arena) alive until handler_release.
    void handler_take(Conn& conn, void* request);
    void handler_release(Conn& conn);
    // A whole response; body (arena or static memory) is copied after the head.
    void respond(Conn& conn, uint16_t status, std::string_view content_type, std::string_view body,
                 std::string_view extra_headers);
    void respond_error(Conn& conn, uint16_t status, std::string_view code,
                       std::string_view message);
    // 404 "Invalid URL (METHOD /path)", as OpenAI answers unknown routes.
    void respond_unknown_url(Conn& conn);
    // A chunked response: the head now, pieces as they come, then the end. A piece may
    // lend a recv buffer (bid): it is given back when the piece has been sent. Returns
    // false when the send queue is full: wait for on_client_writable.
    [[nodiscard]] bool stream_begin(Conn& conn, uint16_t status, std::string_view content_type,
                                    std::string_view extra_headers);
    [[nodiscard]] bool stream_piece(Conn& conn, std::string_view piece, uint16_t bid);
    // is_complete: the terminating chunk is sent and the connection may be reused.
    // Otherwise the queued bytes are sent and the connection is closed without it, so
    // the client sees an incomplete body (RULES §7).
    void stream_end(Conn& conn, bool is_complete);
    uint32_t send_segments_free(const Conn& conn) const {
        return conn_send_segments_max - conn.segment_count;
    }

private:
    // Submission helpers.
    void submit_accept();
    void submit_wake_read();
    void submit_recv(Conn& conn);
    void submit_send(Conn& conn);
    void submit_send_continue(Conn& conn);
    void submit_cancel_recv(Conn& conn);
    void submit_cancel_all(Conn& conn);
    void submit_shutdown(Conn& conn);
    void submit_close(Conn& conn);

    // Completion dispatch.
    void on_cqe(const io_uring_cqe& cqe);
    void on_shard_cqe(Op op, const io_uring_cqe& cqe);
    void on_accept(const io_uring_cqe& cqe);
    void on_recv(Conn& conn, const io_uring_cqe& cqe);
    void on_recv_error(Conn& conn, int error);
    void on_send(Conn& conn, const io_uring_cqe& cqe);
    void on_close(Conn& conn);

    // Connection state machine.
    void conn_open(int fd);
    void conn_process_input(Conn& conn);
    void conn_request_complete(Conn& conn);
    void conn_dispatch(Conn& conn);
    void conn_respond(Conn& conn, uint16_t status, std::string_view content_type,
                      std::string_view body, bool is_head_only, std::string_view extra_headers);
    bool conn_response_is_close(const Conn& conn) const;
    bool conn_queue(Conn& conn, const char* data, uint32_t length_bytes, uint16_t bid);
    bool conn_queue_inline(Conn& conn, const char* text, uint32_t length_bytes);
    void conn_flush(Conn& conn);
    void conn_segments_drop(Conn& conn);
    void conn_respond_parse_error(Conn& conn, ParseError error);
    void conn_response_sent(Conn& conn);
    void conn_start_request(Conn& conn);
    void conn_linger(Conn& conn);
    void conn_close(Conn& conn);
    void conn_pending_drop(Conn& conn);
    void conn_set_deadline(Conn& conn, Deadline deadline, uint32_t timeout_ms);
    void conn_on_deadline(Conn& conn);
    void conn_maybe_finish_close(Conn& conn);
    void conn_maybe_rearm_recv(Conn& conn);

    // Loop turn.
    void turn_end();
    void date_refresh();
    void sweep_deadlines();
    void drain_begin();
    bool is_drained() const;

    ServerShared& shared_;
    const Config& config_;
    const uint32_t index_;
    int listen_fd_;
    int wake_fd_ = -1;
    uint64_t wake_value_ = 0;  // eventfd read target.
    io_uring ring_{};
    bool is_ring_ready_ = false;
    bool is_accept_armed_ = false;
    bool is_draining_ = false;
    uint32_t shard_ops_inflight_ = 0;  // accept + wake reads.
    uint64_t now_ms_ = 0;
    int64_t date_second_ = -1;
    char date_line_[date_line_bytes + 1] = {};  // Refreshed when the second changes.
    uint64_t next_sweep_ms_ = 0;
    uint64_t clock_slack_ms_ = 0;  // clock_ms()'s resolution: a sweep this close is due.
    uint64_t drain_deadline_ms_ = 0;

    ParserLimits parser_limits_;
    ChunkPool chunk_pool_;
    BufRing buf_ring_;
    Conn* conns_ = nullptr;  // [config_.max_connections], constructed in setup().
    uint32_t* free_slots_ = nullptr;
    uint32_t free_slot_count_ = 0;
    uint32_t conns_open_count_ = 0;
    uint32_t slots_high_water_ = 0;   // Slots [0, high water) have been used.
    uint32_t* rearm_list_ = nullptr;  // Conns whose recv must be re-armed at turn end.
    uint32_t rearm_count_ = 0;
    ShardMetrics metrics_;
    RequestHandler handler_;
};

}  // namespace rw
