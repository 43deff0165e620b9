// core/shard.h — one shard: a thread pinned to a CPU that owns an io_uring ring, a
// SO_REUSEPORT listener, a provided buffer ring, a chunk pool and its client connections
// (core/conn.h). Nothing here is touched by another thread except through ServerShared
// (atomics) and the wake eventfd. A loop turn is: one submit-and-wait, all completions
// handled, then turn_end() (the handler's turn end, buffer give-backs published, recvs
// re-armed, deadlines swept). Handlers only change state and queue SQEs.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "arena/buf_ring.h"
#include "arena/chunk_pool.h"
#include "core/config.h"
#include "core/handler.h"
#include "core/limits.h"
#include "core/metrics.h"
#include "core/op.h"

namespace rw {

class ClientConns;

// Sets up and tears down a small ring the way every shard will, so main() can refuse to
// start (io_uring disabled by sysctl or seccomp, too old a kernel) before touching
// storage or logging anything. False with one line of `error` naming the cause.
[[nodiscard]] bool io_uring_probe(std::string& error);

// What every shard shares: read-only config, the metrics of all shards (for /metrics)
// and the process-wide flags. Owned by the program's startup; outlives the shards.
struct ServerShared {
    const Config* config = nullptr;
    ShardMetrics* metrics[shards_max] = {};
    uint32_t shard_count = 0;
    std::atomic<bool> is_stopping{false};
    // Set with is_stopping when a reload's new process shares the listeners (see
    // Shard::on_accept).
    std::atomic<bool> is_handing_over{false};
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
    std::string_view date_line() const { return {date_line_, date_line_bytes}; }

    // The handler for requests the core does not serve. Set before run().
    void set_handler(const RequestHandler& handler);

    // An SQE for any operation on this shard's ring (flush-on-full).
    io_uring_sqe* sqe_get();

private:
    void submit_accept();
    void submit_wake_read();

    // Completion dispatch: the only switch on the core's Ops.
    void on_cqe(const io_uring_cqe& cqe);
    void on_conn_cqe(Op op, const io_uring_cqe& cqe);
    void on_wake();
    void on_accept(const io_uring_cqe& cqe);
    void listener_nudge();

    // Loop turn.
    void turn_end();
    void date_refresh();
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

    ChunkPool chunk_pool_;
    BufRing buf_ring_;
    ShardMetrics metrics_;
    ClientConns* clients_ = nullptr;  // Created in setup() (core/conn.h).
    RequestHandler handler_;
};

}  // namespace rw
