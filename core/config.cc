// core/config.cc — the table of RINGWAY_* knobs and their parsing. Control plane only:
// runs once in main() before any shard. Numbers must be plain decimal within the
// documented range; anything else is refused with the variable's name in the message.
#include "core/config.h"

#include <arpa/inet.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/limits.h"
#include "core/text.h"

namespace rw {
namespace {

struct Knob {
    const char* name;
    const char* default_text;  // nullptr: no default shown (computed or unset).
    const char* help;
};

// The single list of knobs. --help prints it; systemd/ringway.env mirrors it.
constexpr Knob knobs[] = {
    {"RINGWAY_LISTEN", "127.0.0.1:8080", "host:port to listen on; IPv6 as [::1]:8080"},
    {"RINGWAY_SHARDS", nullptr,
     "shard threads (default: CPUs in the affinity mask, clamped to it)"},
    {"RINGWAY_MAX_CONNECTIONS", nullptr,
     "client connections per shard (default: half the descriptor limit, less a reserve, over"
     " the shards; capped by memory); when full, idle keep-alive connections are closed to make"
     " room (oldest first), then new ones are closed at accept"},
    {"RINGWAY_TRUSTED_PROXIES", nullptr,
     "comma-separated CIDRs of reverse proxies (e.g. 10.0.0.0/8,2001:db8::/32); from such a peer"
     " the client address is read from X-Forwarded-For (the first untrusted entry from the"
     " right); from any other peer X-Forwarded-For is ignored. Unset (the default): it always is"},
    {"RINGWAY_MAX_REQUEST_LINE_BYTES", "8192", "request line limit (414)"},
    {"RINGWAY_MAX_HEADER_BYTES", "61440", "total request header bytes limit (431)"},
    {"RINGWAY_MAX_HEADERS", "100", "request header count limit (431)"},
    {"RINGWAY_MAX_BODY_BYTES", "16777216", "request body limit (413)"},
    {"RINGWAY_MAX_UPLOAD_BYTES", "26214400",
     "multipart upload limit (413) on /v1/audio/transcriptions, /translations and"
     " /v1/images/edits: relayed as it arrives, never stored whole"},
    {"RINGWAY_MULTIPART_MODEL_WINDOW_BYTES", "262144",
     "an upload's bytes buffered until its model part is complete (400 past it)"},
    {"RINGWAY_MAX_CHUNK_EXT_BYTES", "1024", "chunk extension bytes limit (400)"},
    {"RINGWAY_HEADER_TIMEOUT_MS", "10000", "total deadline for a request's header block (408)"},
    {"RINGWAY_BODY_TIMEOUT_MS", "30000", "idle time allowed between request body bytes (408)"},
    {"RINGWAY_BODY_MIN_RATE_BYTES_PER_S", "1024",
     "after the grace period a request body must average at least this rate (408); 0: off"},
    {"RINGWAY_BODY_RATE_GRACE_MS", "10000", "time a request body gets before its rate counts"},
    {"RINGWAY_DISCARD_BODY_MAX_BYTES", "65536",
     "a request refused at its head keeps its connection if its body is at most this (read and "
     "dropped); larger: closed after the answer"},
    {"RINGWAY_KEEPALIVE_TIMEOUT_MS", "75000", "idle keep-alive connections are closed after this"},
    {"RINGWAY_SEND_TIMEOUT_MS", "60000", "a client that accepts no bytes for this long is dropped"},
    {"RINGWAY_SHUTDOWN_TIMEOUT_MS", "30000", "on SIGTERM, in-flight requests get this long"},
    {"RINGWAY_RECV_BUFFERS", "1024", "provided recv buffers per shard (power of two)"},
    {"RINGWAY_RECV_BUFFER_BYTES", "16384", "bytes per recv buffer"},
    {"RINGWAY_LLHTTP_SIMD", "1",
     "1: llhttp's SSE4.2 build parses HTTP when the CPU has SSE4.2; 0: its baseline x86-64"
     " build (read at load, core/llhttp_simd.h)"},
    {"RINGWAY_POOL_TRIM_MS", "10000",
     "request memory a shard's pool kept but did not use for this long is given back"},
    {"RINGWAY_LOG_LEVEL", "info", "debug, info, warn or error"},
    {"RINGWAY_DB", "./var/ringway.db",
     "SQLite database file, or a postgres://user@host:port/db URL (PostgreSQL, shared by"
     " several ringways; the password is never logged)"},
    {"RINGWAY_DB_LOCAL", "./var/ringway-local",
     "with a postgres:// RINGWAY_DB: this host's local file, locked while ringway runs, beside"
     " which the spill file lives (<file>.spill)"},
    {"RINGWAY_DB_SYNCHRONOUS", "normal", "SQLite synchronous mode: normal or full"},
    {"RINGWAY_LOG_BATCH", "512",
     "usage rows that make a SQLite transaction due; a backlog: up to 8x in one"},
    {"RINGWAY_LOG_FLUSH_MS", "50", "usage rows wait at most this long before a commit"},
    {"RINGWAY_LOG_RETENTION_DAYS", "90",
     "usage_logs rows older than this are pruned (daily_usage aggregates are kept forever)"},
    {"RINGWAY_DB_MAX_BYTES", "0",
     "soft cap on the database's live data: over it the oldest usage rows are pruned early,"
     " with a warning, but the newest 10000 stay (0: no cap; else at least 4194304)"},
    {"RINGWAY_WAL_CHECKPOINT_BYTES", "4194304",
     "SQLite: a commit that leaves the WAL this large wakes the rw-checkpoint thread (a passive"
     " checkpoint); the WAL file is cut back to this size each time it starts over"},
    {"RINGWAY_WAL_MAX_BYTES", "33554432",
     "SQLite: a commit that leaves the WAL this large checkpoints inline (and waits for the"
     " thread's at twice this), so the WAL stays under about twice this plus one batch"},
    {"RINGWAY_LOG_QUEUE_SLOTS", "16384",
     "usage rows queued per shard at most (power of two); past it requests get 503"},
    {"RINGWAY_WRITER_STALL_MS", "2000",
     "once usage commits have failed this long, new requests get 503 + Retry-After"},
    {"RINGWAY_WRITER_DRAIN_MS", "10000",
     "after the shutdown drain, failing usage commits are retried this long; the rest goes to"
     " <RINGWAY_DB>.spill (PostgreSQL: <RINGWAY_DB_LOCAL>.spill; replayed at the next start)"
     " and the exit status is 1"},
    {"RINGWAY_BUDGET_LEASE_PERCENT", "10",
     "with a postgres:// RINGWAY_DB: the slice of a key's budget or per-period token quota a"
     " host leases at a time, in percent of the limit (at least what the request needs)"},
    {"RINGWAY_BUDGET_LEASE_TTL_MS", "10000",
     "a budget lease not renewed this long (a host killed or cut off) is free for the other"
     " hosts again; its host stops spending it a quarter earlier"},
    {"RINGWAY_BUDGET_LEASE_IDLE_MS", "5000",
     "a key unused this long gives back the part of its lease this host has not reserved"},
    {"RINGWAY_BUDGET_LEASE_WAIT_MS", "2000",
     "a request that does not fit this host's lease waits at most this long for a grant"
     " (then 429 insufficient_quota)"},
    {"RINGWAY_ADMIN_TOKEN", nullptr, "bearer token of the admin API; unset: admin API disabled"},
    {"RINGWAY_SECRET_KEY_FILE", nullptr,
     "file with the 32-byte key (64 hex digits) that encrypts channel keys at rest; unset: "
     "$CREDENTIALS_DIRECTORY/ringway-secret-key if present, else keys are stored unencrypted"},
    {"RINGWAY_ADMIN_LISTEN", "127.0.0.1:8081", "host:port of the admin API's own listener"},
    {"RINGWAY_ENV_FILE", nullptr,
     "KEY=value file read again on SIGHUP for the new process (the unit's EnvironmentFile=);"
     " unset: a reload keeps the current environment"},
    {"RINGWAY_RETRIES", "2",
     "extra attempts on the next channel when it is safe (connect error, 429, 5xx)"},
    {"RINGWAY_UPSTREAM_CONNECT_TIMEOUT_MS", "5000",
     "upstream TCP connect (and TLS handshake) deadline"},
    {"RINGWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS", "600000",
     "request sent to first response byte (reasoning models think long)"},
    {"RINGWAY_UPSTREAM_IDLE_TIMEOUT_MS", "300000",
     "silence allowed between upstream bytes of a response"},
    {"RINGWAY_SSE_KEEPALIVE_MS", "0",
     "a streamed request's upstream silent this long before its first event: the 200 head "
     "and a ': keep-alive' comment every interval (0: off)"},
    {"RINGWAY_UPSTREAM_KEEPALIVE_MS", "30000",
     "idle pooled upstream connections are closed after this"},
    {"RINGWAY_UPSTREAM_CONNECTIONS_MAX", nullptr,
     "upstream connections per shard (default: as RINGWAY_MAX_CONNECTIONS); when all are busy a"
     " request gets 503 overloaded"},
    {"RINGWAY_STREAM_BUFFER_BYTES", "65536",
     "recv-buffer bytes a relayed stream may hold while its client reads slowly; then its"
     " upstream read pauses (at least one RINGWAY_RECV_BUFFER_BYTES)"},
    {"RINGWAY_UPSTREAM_MULTISHOT", "1",
     "1: a plain (http) upstream connection is read with one multishot recv that delivers"
     " every piece; 0: one recv per piece"},
    {"RINGWAY_CHANNEL_FAILURE_WINDOW_MS", "60000",
     "sliding window in which a channel's server failures (5xx, connect, timeout) count"},
    {"RINGWAY_CHANNEL_FAILURE_MIN", "5", "failures in the window that may take a channel down"},
    {"RINGWAY_CHANNEL_FAILURE_PERCENT", "50",
     "... when they are at least this percentage of the channel's outcomes in the window"},
    {"RINGWAY_CHANNEL_BACKOFF_MS", "10000",
     "a down channel's first wait before one live request tries it (doubles per failure)"},
    {"RINGWAY_CHANNEL_BACKOFF_MAX_MS", "600000", "the longest wait before a trial"},
    {"RINGWAY_CHANNEL_RETRY_AFTER_MAX_MS", "60000",
     "cap on a provider's Retry-After (429) during which its channel is skipped"},
    {"RINGWAY_MAX_RESPONSE_BYTES", "67108864",
     "limit for a whole (non-streamed) upstream response body"},
    {"RINGWAY_DEFAULT_OUTPUT_RESERVE", "4096",
     "output tokens a quota reserves for a request that sets no max_tokens"},
    {"RINGWAY_STRICT_OUTPUT_MIN", "1",
     "a strict key's request without an output limit is refused (429) when its budget "
     "affords fewer output tokens"},
    {"RINGWAY_REDIS", nullptr,
     "redis://host:port (host: an IP address or localhost; IPv6 as [::1]) whose Redis the"
     " hosts of one deployment share their rpm, tpm and concurrency limits through; unset:"
     " each host's limits are its own"},
    {"RINGWAY_REDIS_FAILURE", "local",
     "while Redis is unreachable: local (each host enforces every limit alone), closed"
     " (requests of a key with an rpm or tpm get 429) or open (rpm and tpm are not enforced);"
     " concurrency falls back to each host's own count under all three"},
    {"RINGWAY_REDIS_SYNC_MS", "10",
     "how often the rw-redis thread sends its batch to Redis while limits are in use (once a"
     " second otherwise)"},
    {"RINGWAY_REDIS_TIMEOUT_MS", "500",
     "a Redis connect or batch taking longer marks Redis unreachable (then reconnects with"
     " backoff)"},
    {"RINGWAY_REDIS_ADVANCE_PERCENT", "10",
     "per window a host may admit this percentage of a limit (at least 1 unit, or one"
     " request of any size while untouched) ahead of the share it leased from Redis, so a"
     " first request need not wait: the bound on over-admission"},
    {"RINGWAY_ANTHROPIC_MAX_TOKENS", "(unset: 4096)",
     "max_tokens for a Chat request without one sent to an anthropic channel: "
     "pattern=N,... (model name or prefix*; first match, else 4096)"},
};

struct Parser {
    EnvLookup lookup;
    void* context;
    std::string& error;

    const char* get(const char* name) const {
        const char* value = lookup(name, context);
        return (value != nullptr && value[0] != '\0') ? value : nullptr;
    }

    bool fail(const char* name, const char* value, const char* why) const {
        error = std::string(name) + "=" + (value ? value : "") + ": " + why;
        return false;
    }

    // A plain decimal integer in [min, max]; fallback when unset.
    bool number(const char* name, uint64_t fallback, uint64_t min, uint64_t max,
                uint64_t& out) const {
        const char* value = get(name);
        if (value == nullptr) {
            out = fallback;
            return true;
        }
        uint64_t parsed = 0;
        if (!parse_decimal(value, UINT64_MAX, parsed)) {
            const bool is_digits =
                *value != '\0' && std::strspn(value, "0123456789") == std::strlen(value);
            return fail(name, value, is_digits ? "number too large" : "not a whole decimal number");
        }
        if (parsed < min || parsed > max) {
            error = std::string(name) + "=" + value + ": must be between " + std::to_string(min) +
                    " and " + std::to_string(max);
            return false;
        }
        out = parsed;
        return true;
    }

    bool number32(const char* name, uint32_t fallback, uint32_t min, uint32_t max,
                  uint32_t& out) const {
        uint64_t wide = 0;
        if (!number(name, fallback, min, max, wide)) {
            return false;
        }
        out = static_cast<uint32_t>(wide);
        return true;
    }
};

bool parse_listen(const Parser& parser, const char* name, const char* fallback,
                  ListenAddress& out) {
    const char* value = parser.get(name);
    if (value == nullptr) {
        value = fallback;
    }
    const size_t length = std::strlen(value);
    if (length >= sizeof(out.text)) {
        return parser.fail(name, value, "too long");
    }
    std::memcpy(out.text, value, length + 1);
    std::string host;
    const char* port_text = nullptr;
    if (value[0] == '[') {
        const char* close = std::strchr(value, ']');
        if (close == nullptr || close[1] != ':') {
            return parser.fail(name, value, "expected [ipv6]:port");
        }
        host.assign(value + 1, close);
        port_text = close + 2;
    } else {
        const char* colon = std::strrchr(value, ':');
        if (colon == nullptr) {
            return parser.fail(name, value, "expected host:port");
        }
        host.assign(value, colon);
        port_text = colon + 1;
    }
    uint64_t port = 0;
    if (*port_text == '\0') {
        return parser.fail(name, value, "missing port");
    }
    if (!parse_decimal(port_text, 65535, port)) {
        return parser.fail(name, value, "port must be a number from 0 to 65535");
    }
    if (host == "localhost") {
        host = "127.0.0.1";
    }
    std::memset(&out.address, 0, sizeof(out.address));
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.address);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.address);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        out.address_bytes = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        out.address_bytes = sizeof(sockaddr_in6);
    } else {
        return parser.fail(name, value, "host must be an IPv4 or IPv6 address (or localhost)");
    }
    return true;
}

bool parse_log_level(const Parser& parser, LogLevel& out) {
    const char* value = parser.get("RINGWAY_LOG_LEVEL");
    if (value == nullptr || std::strcmp(value, "info") == 0) {
        out = LogLevel::info;
    } else if (std::strcmp(value, "debug") == 0) {
        out = LogLevel::debug;
    } else if (std::strcmp(value, "warn") == 0) {
        out = LogLevel::warn;
    } else if (std::strcmp(value, "error") == 0) {
        out = LogLevel::error;
    } else {
        return parser.fail("RINGWAY_LOG_LEVEL", value, "must be debug, info, warn or error");
    }
    return true;
}

// Channel health (proxy/channel_health.h): the failure window and the backoff of trials.
bool parse_channel_health(const Parser& p, Config& config) {
    if (!(p.number32("RINGWAY_CHANNEL_FAILURE_WINDOW_MS", 60000, 100, 86400000,
                     config.channel_failure_window_ms) &&
          p.number32("RINGWAY_CHANNEL_FAILURE_MIN", 5, 1, 1000000, config.channel_failure_min) &&
          p.number32("RINGWAY_CHANNEL_FAILURE_PERCENT", 50, 1, 100,
                     config.channel_failure_percent) &&
          p.number32("RINGWAY_CHANNEL_BACKOFF_MS", 10000, 10, 86400000,
                     config.channel_backoff_ms) &&
          p.number32("RINGWAY_CHANNEL_BACKOFF_MAX_MS", 600000, 10, 86400000,
                     config.channel_backoff_max_ms) &&
          p.number32("RINGWAY_CHANNEL_RETRY_AFTER_MAX_MS", 60000, 0, 86400000,
                     config.channel_retry_after_max_ms))) {
        return false;
    }
    if (config.channel_backoff_max_ms < config.channel_backoff_ms) {
        // snprintf, not literals copied into a std::string: GCC splits those into
        // overlapping pieces, which the --help scan of the binary would misread.
        char message[160];
        std::snprintf(message, sizeof(message), "%s=%u: must be at least %s",
                      "RINGWAY_CHANNEL_BACKOFF_MAX_MS", config.channel_backoff_max_ms,
                      "RINGWAY_CHANNEL_BACKOFF_MS");
        p.error = message;
        return false;
    }
    return true;
}

// RINGWAY_DB_MAX_BYTES is 0 (no cap) or at least this: a smaller cap is within a few times
// an empty database (80 KB), and the other tables grow, so pruning would empty the log and
// the database still exceed it (storage/retention.h keeps the newest rows anyway).
constexpr uint64_t db_max_bytes_min = 4ull << 20;

bool parse_db_max_bytes(const Parser& parser, Config& config) {
    if (!parser.number("RINGWAY_DB_MAX_BYTES", 0, 0, 1ull << 50, config.db_max_bytes)) {
        return false;
    }
    if (config.db_max_bytes != 0 && config.db_max_bytes < db_max_bytes_min) {
        return parser.fail("RINGWAY_DB_MAX_BYTES", parser.get("RINGWAY_DB_MAX_BYTES"),
                           "must be 0 (no cap) or at least 4194304 (4 MiB): a smaller cap would "
                           "prune every usage row and still be exceeded");
    }
    return true;
}

// The WAL bounds (storage/wal_checkpointer.h): at least a few pages each, the inline bound
// not below the thread's.
bool parse_wal_bounds(const Parser& parser, Config& config) {
    constexpr uint64_t wal_bytes_min = 64 * 1024;
    if (!parser.number("RINGWAY_WAL_CHECKPOINT_BYTES", 4ull << 20, wal_bytes_min, 1ull << 40,
                       config.wal_checkpoint_bytes) ||
        !parser.number("RINGWAY_WAL_MAX_BYTES", 32ull << 20, wal_bytes_min, 1ull << 40,
                       config.wal_bytes_max)) {
        return false;
    }
    if (config.wal_bytes_max < config.wal_checkpoint_bytes) {
        return parser.fail("RINGWAY_WAL_MAX_BYTES", parser.get("RINGWAY_WAL_MAX_BYTES"),
                           "must be at least RINGWAY_WAL_CHECKPOINT_BYTES");
    }
    return true;
}

bool parse_storage(const Parser& parser, Config& config) {
    const char* db = parser.get("RINGWAY_DB");
    config.db_path = db ? db : "./var/ringway.db";
    const char* local = parser.get("RINGWAY_DB_LOCAL");
    config.db_local_path = local != nullptr && local[0] != '\0' ? local : "./var/ringway-local";
    const char* sync = parser.get("RINGWAY_DB_SYNCHRONOUS");
    if (sync == nullptr || std::strcmp(sync, "normal") == 0) {
        config.db_synchronous_full = false;
    } else if (std::strcmp(sync, "full") == 0) {
        config.db_synchronous_full = true;
    } else {
        return parser.fail("RINGWAY_DB_SYNCHRONOUS", sync, "must be normal or full");
    }
    const char* key_file = parser.get("RINGWAY_SECRET_KEY_FILE");
    const char* credentials = parser.get("CREDENTIALS_DIRECTORY");  // systemd LoadCredential=
    config.secret_key_file = key_file ? key_file : "";
    const char* env_file = parser.get("RINGWAY_ENV_FILE");
    config.env_file = env_file ? env_file : "";
    if (key_file == nullptr && credentials != nullptr) {
        const std::string credential = std::string(credentials) + "/ringway-secret-key";
        if (::access(credential.c_str(), F_OK) == 0) {
            config.secret_key_file = credential;
        }
    }
    const char* token = parser.get("RINGWAY_ADMIN_TOKEN");
    config.admin_token = token ? token : "";
    if (!config.admin_token.empty() && config.admin_token.size() < 16) {
        return parser.fail("RINGWAY_ADMIN_TOKEN", "(hidden)", "must be at least 16 characters");
    }
    return parser.number32("RINGWAY_LOG_BATCH", 512, 1, 65536, config.log_batch) &&
           parser.number32("RINGWAY_LOG_FLUSH_MS", 50, 1, 60000, config.log_flush_ms) &&
           parser.number32("RINGWAY_WRITER_DRAIN_MS", 10000, 1, 3600000, config.writer_drain_ms) &&
           parser.number32("RINGWAY_WRITER_STALL_MS", 2000, 1, 3600000, config.writer_stall_ms) &&
           parser.number32("RINGWAY_LOG_RETENTION_DAYS", 90, 1, 36500, config.log_retention_days) &&
           parse_db_max_bytes(parser, config) && parse_wal_bounds(parser, config) &&
           parser.number32("RINGWAY_LOG_QUEUE_SLOTS", 16384, 2, log_queue_slots_max,
                           config.log_queue_slots) &&
           parser.number32("RINGWAY_BUDGET_LEASE_PERCENT", 10, 1, 100,
                           config.budget_lease_percent) &&
           parser.number32("RINGWAY_BUDGET_LEASE_TTL_MS", 10000, 100, 3600000,
                           config.budget_lease_ttl_ms) &&
           parser.number32("RINGWAY_BUDGET_LEASE_IDLE_MS", 5000, 10, 3600000,
                           config.budget_lease_idle_ms) &&
           parser.number32("RINGWAY_BUDGET_LEASE_WAIT_MS", 2000, 1, 60000,
                           config.budget_lease_wait_ms);
}

bool parse_trusted_proxies(const Parser& parser, Config& config) {
    const char* value = parser.get("RINGWAY_TRUSTED_PROXIES");
    std::string why;
    if (value != nullptr && !cidr_list_parse(value, config.trusted_proxies, why)) {
        return parser.fail("RINGWAY_TRUSTED_PROXIES", value, why.c_str());
    }
    return true;
}

// RINGWAY_REDIS=redis://host:port and its companions.
bool parse_redis(const Parser& p, Config& config) {
    if (const char* failure = p.get("RINGWAY_REDIS_FAILURE"); failure != nullptr) {
        if (std::strcmp(failure, "local") == 0) {
            config.redis_failure = RedisFailure::local;
        } else if (std::strcmp(failure, "closed") == 0) {
            config.redis_failure = RedisFailure::closed;
        } else if (std::strcmp(failure, "open") == 0) {
            config.redis_failure = RedisFailure::open;
        } else {
            return p.fail("RINGWAY_REDIS_FAILURE", failure, "must be local, closed or open");
        }
    }
    if (!(p.number32("RINGWAY_REDIS_SYNC_MS", 10, 1, 10000, config.redis_sync_ms) &&
          p.number32("RINGWAY_REDIS_TIMEOUT_MS", 500, 10, 60000, config.redis_timeout_ms) &&
          p.number32("RINGWAY_REDIS_ADVANCE_PERCENT", 10, 0, 100, config.redis_advance_percent))) {
        return false;
    }
    const char* value = p.get("RINGWAY_REDIS");
    if (value == nullptr) {
        return true;
    }
    std::string_view rest(value);
    if (rest.substr(0, 8) != "redis://") {
        return p.fail("RINGWAY_REDIS", value, "expected redis://host:port");
    }
    rest.remove_prefix(8);
    size_t colon = 0;
    if (!rest.empty() && rest[0] == '[') {
        const size_t close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
            return p.fail("RINGWAY_REDIS", value, "expected redis://[ipv6]:port");
        }
        config.redis_host.assign(rest.substr(1, close - 1));
        colon = close + 1;
    } else {
        colon = rest.rfind(':');
        if (colon == std::string_view::npos) {
            return p.fail("RINGWAY_REDIS", value, "expected redis://host:port");
        }
        config.redis_host.assign(rest.substr(0, colon));
    }
    uint64_t port = 0;
    const std::string port_text(rest.substr(colon + 1));
    if (!parse_decimal(port_text.c_str(), 65535, port) || port == 0) {
        return p.fail("RINGWAY_REDIS", value, "port must be a number from 1 to 65535");
    }
    config.redis_port = uint16_t(port);
    if (config.redis_host == "localhost") {
        config.redis_host = "127.0.0.1";
    }
    unsigned char probe[16];
    if (inet_pton(AF_INET, config.redis_host.c_str(), probe) != 1 &&
        inet_pton(AF_INET6, config.redis_host.c_str(), probe) != 1) {
        config.redis_host.clear();
        return p.fail("RINGWAY_REDIS", value,
                      "host must be an IPv4 or IPv6 address (or localhost)");
    }
    return true;
}

}  // namespace

uint32_t config_cpus_available() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return 1;
    }
    const int count = CPU_COUNT(&set);
    return count > 0 ? static_cast<uint32_t>(count) : 1;
}

bool config_from_env(Config& config, EnvLookup lookup, void* lookup_context, std::string& error) {
    const Parser p{lookup, lookup_context, error};
    const uint32_t cpus = config_cpus_available();
    uint32_t shards = 0;
    const bool ok =
        parse_listen(p, "RINGWAY_LISTEN", "127.0.0.1:8080", config.listen) &&
        parse_listen(p, "RINGWAY_ADMIN_LISTEN", "127.0.0.1:8081", config.admin_listen) &&
        p.number32("RINGWAY_SHARDS", 0, 0, shards_max, shards) &&
        p.number32("RINGWAY_MAX_CONNECTIONS", 0, 1, conns_per_shard_max, config.max_connections) &&
        p.number32("RINGWAY_MAX_REQUEST_LINE_BYTES", 8192, 64, 1u << 20,
                   config.max_request_line_bytes) &&
        p.number32("RINGWAY_MAX_HEADER_BYTES", 61440, 256, 1u << 24, config.max_header_bytes) &&
        p.number32("RINGWAY_MAX_HEADERS", 100, 1, 10000, config.max_headers) &&
        p.number("RINGWAY_MAX_BODY_BYTES", 16u << 20, 0, 1ull << 30, config.max_body_bytes) &&
        p.number("RINGWAY_MAX_UPLOAD_BYTES", 25u << 20, 0, 1ull << 40, config.max_upload_bytes) &&
        p.number32("RINGWAY_MULTIPART_MODEL_WINDOW_BYTES", 256u << 10, 1024, 16u << 20,
                   config.multipart_model_window_bytes) &&
        p.number32("RINGWAY_MAX_CHUNK_EXT_BYTES", 1024, 0, 1u << 20, config.max_chunk_ext_bytes) &&
        p.number32("RINGWAY_HEADER_TIMEOUT_MS", 10000, 50, 3600000, config.header_timeout_ms) &&
        p.number32("RINGWAY_BODY_TIMEOUT_MS", 30000, 50, 3600000, config.body_timeout_ms) &&
        p.number32("RINGWAY_BODY_MIN_RATE_BYTES_PER_S", 1024, 0, 1u << 30,
                   config.body_min_rate_bytes_per_s) &&
        p.number32("RINGWAY_BODY_RATE_GRACE_MS", 10000, 50, 3600000, config.body_rate_grace_ms) &&
        p.number("RINGWAY_DISCARD_BODY_MAX_BYTES", 64u << 10, 0, 1ull << 30,
                 config.discard_body_max_bytes) &&
        p.number32("RINGWAY_KEEPALIVE_TIMEOUT_MS", 75000, 50, 86400000,
                   config.keepalive_timeout_ms) &&
        p.number32("RINGWAY_SEND_TIMEOUT_MS", 60000, 50, 3600000, config.send_timeout_ms) &&
        p.number32("RINGWAY_SHUTDOWN_TIMEOUT_MS", 30000, 0, 3600000, config.shutdown_timeout_ms) &&
        p.number32("RINGWAY_RECV_BUFFERS", 1024, 8, recv_buffers_max, config.recv_buffers) &&
        p.number32("RINGWAY_RECV_BUFFER_BYTES", 16384, recv_buffer_bytes_min, recv_buffer_bytes_max,
                   config.recv_buffer_bytes) &&
        p.number32("RINGWAY_POOL_TRIM_MS", 10000, 100, 3600000, config.pool_trim_ms) &&
        p.number32("RINGWAY_LLHTTP_SIMD", 1, 0, 1, config.llhttp_simd) &&
        parse_log_level(p, config.log_level) && parse_storage(p, config) &&
        p.number32("RINGWAY_RETRIES", 2, 0, 8, config.retries) &&
        p.number32("RINGWAY_UPSTREAM_CONNECT_TIMEOUT_MS", 5000, 50, 600000,
                   config.upstream_connect_timeout_ms) &&
        p.number32("RINGWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS", 600000, 50, 86400000,
                   config.upstream_first_byte_timeout_ms) &&
        p.number32("RINGWAY_UPSTREAM_IDLE_TIMEOUT_MS", 300000, 50, 86400000,
                   config.upstream_idle_timeout_ms) &&
        p.number32("RINGWAY_UPSTREAM_KEEPALIVE_MS", 30000, 0, 3600000,
                   config.upstream_keepalive_ms) &&
        p.number32("RINGWAY_SSE_KEEPALIVE_MS", 0, 0, 3600000, config.sse_keepalive_ms) &&
        p.number32("RINGWAY_UPSTREAM_CONNECTIONS_MAX", 0, 1, conns_per_shard_max,
                   config.upstream_connections_max) &&
        p.number32("RINGWAY_STREAM_BUFFER_BYTES", 65536, recv_buffer_bytes_min, 1u << 30,
                   config.stream_buffer_bytes) &&
        p.number32("RINGWAY_UPSTREAM_MULTISHOT", 1, 0, 1, config.upstream_multishot) &&
        parse_channel_health(p, config) &&
        p.number("RINGWAY_MAX_RESPONSE_BYTES", 64u << 20, 1024, response_bytes_max,
                 config.max_response_bytes) &&
        p.number32("RINGWAY_DEFAULT_OUTPUT_RESERVE", 4096, 0, 10000000,
                   config.default_output_reserve) &&
        p.number32("RINGWAY_STRICT_OUTPUT_MIN", 1, 1, 10000000, config.strict_output_min) &&
        parse_trusted_proxies(p, config) && parse_redis(p, config);
    if (!ok) {
        return false;
    }
    if (!std::has_single_bit(config.log_queue_slots)) {
        error = "RINGWAY_LOG_QUEUE_SLOTS=" + std::to_string(config.log_queue_slots) +
                ": must be a power of two";
        return false;
    }
    if (!std::has_single_bit(config.recv_buffers)) {
        error = "RINGWAY_RECV_BUFFERS=" + std::to_string(config.recv_buffers) +
                ": must be a power of two";
        return false;
    }
    // 0 (unset) means one shard per CPU we may run on; more than that is clamped, since
    // two pinned shards on one core only add contention.
    config.shards = (shards == 0 || shards > cpus) ? cpus : shards;
    config_derive_limits(config);
    return true;
}

bool config_raise_nofile(uint64_t& soft, uint64_t& hard) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        soft = hard = 1024;
        return false;
    }
    bool is_raised = true;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            limit = raised;
        } else {
            is_raised = false;
        }
    }
    soft = limit.rlim_cur == RLIM_INFINITY ? UINT32_MAX : limit.rlim_cur;
    hard = limit.rlim_max == RLIM_INFINITY ? UINT32_MAX : limit.rlim_max;
    return is_raised;
}

namespace {

uint64_t memory_available_bytes() {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page_bytes = sysconf(_SC_PAGESIZE);
    uint64_t bytes =
        (pages > 0 && page_bytes > 0) ? uint64_t(pages) * uint64_t(page_bytes) : (1ull << 30);
    // A cgroup v2 memory.max below the machine's memory is the real ceiling.
    if (FILE* file = std::fopen("/sys/fs/cgroup/memory.max", "r")) {
        unsigned long long cgroup_bytes = 0;
        if (std::fscanf(file, "%llu", &cgroup_bytes) == 1 && cgroup_bytes > 0 &&
            cgroup_bytes < bytes) {
            bytes = cgroup_bytes;
        }
        std::fclose(file);
    }
    return bytes;
}

}  // namespace

void config_derive_limits(Config& config) {
    if (config.nofile_limit == 0) {
        rlimit limit{};
        config.nofile_limit =
            getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                ? limit.rlim_cur
                : UINT32_MAX;
    }
    if (config.memory_bytes == 0) {
        config.memory_bytes = memory_available_bytes();
    }
    const uint32_t shards = config.shards == 0 ? 1 : config.shards;
    const uint64_t reserve = config_fd_reserve(shards);
    const uint64_t fds =
        config.nofile_limit > reserve + 2 * shards ? config.nofile_limit - reserve : 2 * shards;
    uint64_t per_shard = fds / 2 / shards;
    // Memory: a stream holds at most its buffer bound plus a connection slot and an arena
    // chunk; a quarter of the memory bounds what the shards' streams may hold together.
    const uint64_t stream_bytes = uint64_t(config.stream_buffer_bytes) + 2 * arena_chunk_bytes;
    const uint64_t memory_streams = config.memory_bytes / 4 / stream_bytes / shards;
    per_shard = per_shard < memory_streams ? per_shard : memory_streams;
    per_shard = per_shard < conns_per_shard_max ? per_shard : conns_per_shard_max;
    per_shard = per_shard > 1 ? per_shard : 1;
    config.is_max_connections_derived = config.max_connections == 0;
    config.is_upstream_connections_derived = config.upstream_connections_max == 0;
    if (config.is_max_connections_derived) {
        config.max_connections = static_cast<uint32_t>(per_shard);
    }
    if (config.is_upstream_connections_derived) {
        config.upstream_connections_max = static_cast<uint32_t>(per_shard);
    }
}

std::string config_help_text() {
    std::string text =
        "ringway — an OpenAI-compatible LLM API gateway\n"
        "\n"
        "usage: ringway [--help] [--version]\n"
        "       ringway backup FILE   (an online copy of RINGWAY_DB; see the README to restore)\n"
        "\n"
        "Configured by environment variables (defaults in brackets):\n";
    for (const Knob& knob : knobs) {
        text += "  ";
        text += knob.name;
        if (knob.default_text != nullptr) {
            text += " [";
            text += knob.default_text;
            text += "]";
        }
        text += "\n      ";
        text += knob.help;
        text += "\n";
    }
    text +=
        "\n"
        "Test hook (honoured only by the test binary, build/tests/ringway-test; this\n"
        "binary as make build, make install and make deb ship it ignores it):\n"
        "  RINGWAY_TEST_CLOCK_FILE\n"
        "      a file holding milliseconds added to the one wall clock (budgets, expiry,\n"
        "      usage days, rate-limit buckets, channel health times), read at every call\n"
        "\n"
        "Set by ringway itself for the process a SIGHUP reload starts (never set them):\n"
        "  RINGWAY_INHERITED_FDS\n"
        "      the listening sockets handed over, \"L1,L2,...;ADMIN\"\n"
        "  RINGWAY_RELOAD_READY_FD\n"
        "      the pipe on which the new process says it accepts\n"
        "\n"
        "Endpoints: GET /healthz, GET /readyz, GET /metrics (Prometheus text).\n"
        "Signals: SIGTERM or SIGINT drain in-flight requests, then exit 0 (1 when usage rows\n"
        "had to go to the spill file).\n";
    return text;
}

}  // namespace rw
