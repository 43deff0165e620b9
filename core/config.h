// core/config.h — RINGWAY_* environment variables parsed into one immutable Config. All
// validation happens here, before any thread starts: a bad value is one clear error line
// and exit(1) (STYLE §4, startup errors). The table in config.cc is the single list of
// knobs; --help and systemd/ringway.env are written from the same names and defaults.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/cidr.h"
#include "core/log.h"

namespace rw {

struct ListenAddress {
    sockaddr_storage address;
    socklen_t address_bytes;
    char text[64];  // As given, e.g. "127.0.0.1:8080" or "[::1]:8080".
};

// What rate limits do while Redis is unreachable (RINGWAY_REDIS_FAILURE).
enum class RedisFailure : uint8_t {
    local,   // Each host enforces the full limit alone (the default).
    closed,  // Requests of a key with a rate limit are refused (429).
    open,    // Rate limits are not enforced.
};

struct Config {
    ListenAddress listen;
    ListenAddress admin_listen;  // The admin API's own listener (loopback by default).
    uint32_t shards;             // Resolved: never 0, never more than the CPUs we may run on.
    uint32_t max_connections;    // Per shard; derived (see config_derive_limits) unless set.
    uint32_t max_request_line_bytes;
    uint32_t max_header_bytes;
    uint32_t max_headers;
    uint64_t max_body_bytes;
    uint32_t max_chunk_ext_bytes;
    uint64_t max_upload_bytes;              // A streamed (multipart) body's limit.
    uint32_t multipart_model_window_bytes;  // Buffered until the model part is complete.
    uint32_t header_timeout_ms;
    uint32_t body_timeout_ms;            // Idle time between body bytes.
    uint32_t body_min_rate_bytes_per_s;  // After the grace period; 0: no rate floor.
    uint32_t body_rate_grace_ms;
    uint64_t discard_body_max_bytes;  // A body refused at its head up to this is read and dropped.
    uint32_t keepalive_timeout_ms;
    uint32_t send_timeout_ms;
    uint32_t shutdown_timeout_ms;
    uint32_t recv_buffers;
    uint32_t recv_buffer_bytes;
    uint32_t pool_trim_ms;  // Cached pool memory unused this long is given back.
    // RINGWAY_LLHTTP_SIMD, 0 or 1: only checked here; core/llhttp_simd.cc reads it at load.
    uint32_t llhttp_simd;
    LogLevel log_level;
    std::string db_path;        // A file (SQLite) or a postgres:// URL.
    std::string db_local_path;  // RINGWAY_DB_LOCAL: lock + spill file with PostgreSQL.
    bool db_synchronous_full;
    uint32_t log_batch;
    uint32_t log_flush_ms;
    uint32_t writer_drain_ms;       // The writer's own deadline after the shutdown drain.
    uint32_t writer_stall_ms;       // Failing commits for this long: admission refuses.
    uint32_t log_queue_slots;       // Per-shard usage queue (power of two).
    uint32_t log_retention_days;    // usage_logs rows older than this are pruned.
    uint64_t db_max_bytes;          // Soft cap on live data; 0: none.
    uint64_t wal_checkpoint_bytes;  // SQLite: WAL size that wakes the checkpoint thread.
    uint64_t wal_bytes_max;         // SQLite: WAL size at which the writer checkpoints inline.
    std::string admin_token;        // Empty: admin API disabled.
    // The channel keys' encryption key: RINGWAY_SECRET_KEY_FILE, else the systemd
    // credential $CREDENTIALS_DIRECTORY/ringway-secret-key when present; empty: none.
    std::string secret_key_file;
    std::string env_file;  // RINGWAY_ENV_FILE: re-read on SIGHUP for the new process.
    // Upstream (proxy/).
    uint32_t retries;  // Extra attempts on other channels, when safe.
    uint32_t upstream_connect_timeout_ms;
    uint32_t upstream_first_byte_timeout_ms;
    uint32_t upstream_idle_timeout_ms;  // Between bytes of a streamed response.
    // A streamed request whose upstream is silent this long gets the 200 head and SSE
    // keep-alive comments, one per interval, until its first event; 0: off.
    uint32_t sse_keepalive_ms;
    uint32_t upstream_keepalive_ms;     // Idle pooled upstream connections are closed after.
    uint32_t upstream_connections_max;  // Per shard; derived unless set.
    // Recv-buffer bytes one relayed stream may hold while its client reads slowly; at the
    // bound its upstream read pauses (TCP back-pressure to the provider).
    uint32_t stream_buffer_bytes;
    // RINGWAY_UPSTREAM_MULTISHOT, 0 or 1: plain upstream connections read with a multishot recv.
    uint32_t upstream_multishot;
    // What the derived limits came from: the soft RLIMIT_NOFILE when the config was read
    // and the memory the process may use (physical memory or its cgroup's memory.max).
    uint64_t nofile_limit = 0;  // 0: read by config_derive_limits.
    uint64_t memory_bytes = 0;  // 0: read by config_derive_limits.
    bool is_max_connections_derived = false;
    bool is_upstream_connections_derived = false;
    // Channel health (proxy/channel_health.h).
    uint32_t channel_failure_window_ms;
    uint32_t channel_failure_min;
    uint32_t channel_failure_percent;
    uint32_t channel_backoff_ms;
    uint32_t channel_backoff_max_ms;
    uint32_t channel_retry_after_max_ms;
    uint64_t max_response_bytes;      // Whole (non-streamed) upstream bodies.
    uint32_t default_output_reserve;  // Output tokens reserved when a request sets no limit.
    uint32_t strict_output_min;       // A strict key's smallest injected output limit.
    // Peers whose X-Forwarded-For is believed (RINGWAY_TRUSTED_PROXIES); empty: nobody's.
    std::vector<Cidr> trusted_proxies;
    // Rate limits shared by several hosts through Redis (proxy/rate_share.h); redis_host
    // empty: RINGWAY_REDIS unset, every limit is this host's alone.
    std::string redis_host;  // An IPv4 or IPv6 address (brackets removed).
    uint16_t redis_port = 6379;
    RedisFailure redis_failure = RedisFailure::local;
    uint32_t redis_sync_ms = 10;          // Between the background thread's batches.
    uint32_t redis_timeout_ms = 500;      // One connect or exchange with Redis.
    uint32_t redis_advance_percent = 10;  // Of a limit, admitted per window ahead of a lease.
    // Budget leases across hosts on one PostgreSQL (storage/budget_lease.h).
    uint32_t budget_lease_percent = 10;
    uint32_t budget_lease_ttl_ms = 10000;
    uint32_t budget_lease_idle_ms = 5000;
    uint32_t budget_lease_wait_ms = 2000;
};

// Looks a variable up; nullptr when unset. Tests pass their own.
using EnvLookup = const char* (*)(const char* name, void* context);

// Fills config from the environment. On failure returns false and writes one sentence
// naming the variable and the problem into error.
[[nodiscard]] bool config_from_env(Config& config, EnvLookup lookup, void* lookup_context,
                                   std::string& error);

// Raises the soft RLIMIT_NOFILE to the hard limit (before config_from_env, whose derived
// limits read it). Fills the limits as they are afterwards; false if setrlimit failed
// (the soft limit is then what it was).
bool config_raise_nofile(uint64_t& soft, uint64_t& hard);

// Descriptors kept out of the per-shard budgets: listeners, eventfds, rings, SQLite and its
// WAL, the admin API, the resolver and log files.
constexpr uint64_t config_fd_reserve(uint32_t shards) {
    return 64 + 8 * uint64_t(shards);
}

// The per-shard client and upstream connection limits an operator did not set, from the
// descriptor limit (two per proxied stream: one client, one upstream) and the memory (a
// quarter of it for connection slots and the recv buffers streams may hold).
void config_derive_limits(Config& config);

// CPUs in this process's affinity mask (the default and the cap for RINGWAY_SHARDS).
uint32_t config_cpus_available();

// The --help text: usage plus every variable with its default and meaning.
std::string config_help_text();

}  // namespace rw
