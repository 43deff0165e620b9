// tests/unit/core/config_test.cc — RINGWAY_* parsing: defaults, valid overrides, and every
// kind of refusal naming the variable. The environment is a map passed to the parser.
#include "core/config.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace rw {
namespace {

using Env = std::map<std::string, std::string>;

const char* lookup(const char* name, void* context) {
    auto* env = static_cast<Env*>(context);
    auto it = env->find(name);
    return it == env->end() ? nullptr : it->second.c_str();
}

bool parse(Env env, Config& config, std::string& error) {
    return config_from_env(config, lookup, &env, error);
}

TEST(Config, DefaultsWhenNothingIsSet) {
    Config config;
    std::string error;
    ASSERT_TRUE(parse({}, config, error)) << error;
    EXPECT_STREQ(config.listen.text, "127.0.0.1:8080");
    EXPECT_EQ(config.listen.address.ss_family, AF_INET);
    EXPECT_EQ(config.shards, config_cpus_available());
    EXPECT_TRUE(config.is_max_connections_derived);
    EXPECT_TRUE(config.is_upstream_connections_derived);
    EXPECT_GE(config.max_connections, 1u);
    EXPECT_EQ(config.stream_buffer_bytes, 65536u);
    EXPECT_EQ(config.max_request_line_bytes, 8192u);
    EXPECT_EQ(config.max_header_bytes, 61440u);
    EXPECT_EQ(config.max_headers, 100u);
    EXPECT_EQ(config.max_body_bytes, 16u << 20);
    EXPECT_EQ(config.header_timeout_ms, 10000u);
    EXPECT_EQ(config.keepalive_timeout_ms, 75000u);
    EXPECT_EQ(config.recv_buffers, 1024u);
    EXPECT_EQ(config.log_level, LogLevel::info);
    EXPECT_EQ(config.db_path, "./var/ringway.db");
    EXPECT_FALSE(config.db_synchronous_full);
    EXPECT_EQ(config.log_batch, 512u);
    EXPECT_EQ(config.log_queue_slots, 16384u);
    EXPECT_EQ(config.writer_stall_ms, 2000u);
    EXPECT_EQ(config.writer_drain_ms, 10000u);
    EXPECT_TRUE(config.admin_token.empty());
    EXPECT_EQ(config.body_min_rate_bytes_per_s, 1024u);
    EXPECT_EQ(config.body_rate_grace_ms, 10000u);
    EXPECT_EQ(config.discard_body_max_bytes, 64u << 10);
    EXPECT_EQ(config.pool_trim_ms, 10000u);
}

// Two descriptors per proxied stream: the client and upstream tables of every shard share
// the descriptor limit less a reserve; memory caps them (a quarter of it over what a stream
// may hold); a variable set wins.
TEST(Config, ConnectionLimitsDeriveFromDescriptorsAndMemory) {
    Config config;
    config.shards = 1;
    config.stream_buffer_bytes = 65536;
    config.max_connections = 0;
    config.upstream_connections_max = 0;
    config.nofile_limit = 20000;
    config.memory_bytes = 64ull << 30;
    config_derive_limits(config);
    EXPECT_EQ(config.max_connections, (20000 - config_fd_reserve(1)) / 2);
    EXPECT_EQ(config.upstream_connections_max, config.max_connections);
    EXPECT_GE(config.max_connections, 9000u);  // The 9,000 streams on one shard.

    config.shards = 2;
    config.max_connections = 0;
    config.upstream_connections_max = 0;
    config_derive_limits(config);
    EXPECT_EQ(config.max_connections, (20000 - config_fd_reserve(2)) / 4);

    config.shards = 1;
    config.max_connections = 0;
    config.upstream_connections_max = 0;
    config.memory_bytes = 256ull << 20;  // 64 MiB for streams of 64 KiB + 32 KiB.
    config_derive_limits(config);
    EXPECT_EQ(config.max_connections, (64ull << 20) / (65536 + 2 * 16384));

    config.max_connections = 7;
    config.upstream_connections_max = 0;
    config_derive_limits(config);
    EXPECT_EQ(config.max_connections, 7u);
    EXPECT_FALSE(config.is_max_connections_derived);
    EXPECT_TRUE(config.is_upstream_connections_derived);
}

// The knobs of issue 8's client hardening: a body rate floor (0 turns it off), the body a
// refused request may have read and dropped, the pool's idle trim period.
TEST(Config, ParsesTheHardeningKnobs) {
    Config config;
    std::string error;
    ASSERT_TRUE(parse({{"RINGWAY_BODY_MIN_RATE_BYTES_PER_S", "0"},
                       {"RINGWAY_BODY_RATE_GRACE_MS", "250"},
                       {"RINGWAY_DISCARD_BODY_MAX_BYTES", "0"},
                       {"RINGWAY_POOL_TRIM_MS", "100"}},
                      config, error))
        << error;
    EXPECT_EQ(config.body_min_rate_bytes_per_s, 0u);
    EXPECT_EQ(config.body_rate_grace_ms, 250u);
    EXPECT_EQ(config.discard_body_max_bytes, 0u);
    EXPECT_EQ(config.pool_trim_ms, 100u);
    EXPECT_FALSE(parse({{"RINGWAY_POOL_TRIM_MS", "99"}}, config, error));
    EXPECT_NE(error.find("RINGWAY_POOL_TRIM_MS"), std::string::npos) << error;
    EXPECT_FALSE(parse({{"RINGWAY_BODY_RATE_GRACE_MS", "x"}}, config, error));
    EXPECT_NE(error.find("RINGWAY_BODY_RATE_GRACE_MS"), std::string::npos) << error;
}

TEST(Config, ParsesOverrides) {
    Config config;
    std::string error;
    ASSERT_TRUE(parse({{"RINGWAY_LISTEN", "[::1]:0"},
                       {"RINGWAY_SHARDS", "1"},
                       {"RINGWAY_MAX_BODY_BYTES", "1024"},
                       {"RINGWAY_HEADER_TIMEOUT_MS", "500"},
                       {"RINGWAY_LOG_LEVEL", "debug"},
                       {"RINGWAY_DB_SYNCHRONOUS", "full"},
                       {"RINGWAY_ADMIN_TOKEN", "0123456789abcdef"}},
                      config, error))
        << error;
    EXPECT_EQ(config.listen.address.ss_family, AF_INET6);
    EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in6&>(config.listen.address).sin6_port), 0);
    EXPECT_EQ(config.shards, 1u);
    EXPECT_EQ(config.max_body_bytes, 1024u);
    EXPECT_EQ(config.header_timeout_ms, 500u);
    EXPECT_EQ(config.log_level, LogLevel::debug);
    EXPECT_TRUE(config.db_synchronous_full);
    EXPECT_EQ(config.admin_token, "0123456789abcdef");
}

TEST(Config, ShardsAreClampedToTheAffinityMask) {
    Config config;
    std::string error;
    ASSERT_TRUE(parse({{"RINGWAY_SHARDS", "200"}}, config, error)) << error;
    EXPECT_EQ(config.shards, config_cpus_available());
}

struct Refusal {
    const char* name;
    const char* value;
    const char* expected_in_error;
};

TEST(Config, RefusesBadValuesNamingTheVariable) {
    const Refusal cases[] = {
        {"RINGWAY_SHARDS", "abc", "RINGWAY_SHARDS=abc: not a whole decimal number"},
        {"RINGWAY_SHARDS", "-1", "not a whole decimal number"},
        {"RINGWAY_SHARDS", "999", "must be between 0 and 256"},
        {"RINGWAY_MAX_CONNECTIONS", "0", "must be between 1"},
        {"RINGWAY_MAX_HEADERS", "18446744073709551616", "number too large"},
        {"RINGWAY_LISTEN", "127.0.0.1", "expected host:port"},
        {"RINGWAY_LISTEN", "127.0.0.1:70000", "port must be a number from 0 to 65535"},
        {"RINGWAY_LISTEN", "example.com:80", "host must be an IPv4 or IPv6 address"},
        {"RINGWAY_LISTEN", "[::1:80", "expected [ipv6]:port"},
        {"RINGWAY_RECV_BUFFERS", "1000", "must be a power of two"},
        {"RINGWAY_LLHTTP_SIMD", "2", "must be between 0 and 1"},
        {"RINGWAY_LOG_LEVEL", "loud", "must be debug, info, warn or error"},
        {"RINGWAY_DB_SYNCHRONOUS", "off", "must be normal or full"},
        {"RINGWAY_ADMIN_TOKEN", "short", "at least 16 characters"},
        {"RINGWAY_HEADER_TIMEOUT_MS", "10", "must be between 50"},
        {"RINGWAY_LOG_QUEUE_SLOTS", "1000", "must be a power of two"},
        {"RINGWAY_LOG_QUEUE_SLOTS", "1", "must be between 2"},
        {"RINGWAY_WRITER_STALL_MS", "0", "must be between 1"},
        {"RINGWAY_WRITER_DRAIN_MS", "0", "must be between 1"},
        {"RINGWAY_DB_MAX_BYTES", "65536", "must be 0 (no cap) or at least 4194304"},
        {"RINGWAY_WAL_CHECKPOINT_BYTES", "4096", "must be between 65536"},
        {"RINGWAY_WAL_MAX_BYTES", "1048576", "must be at least RINGWAY_WAL_CHECKPOINT_BYTES"},
    };
    for (const Refusal& refusal : cases) {
        Config config;
        std::string error;
        EXPECT_FALSE(parse({{refusal.name, refusal.value}}, config, error))
            << refusal.name << "=" << refusal.value;
        EXPECT_NE(error.find(refusal.expected_in_error), std::string::npos)
            << refusal.name << "=" << refusal.value << " gave: " << error;
        EXPECT_NE(error.find(refusal.name), std::string::npos) << error;
    }
}

// RINGWAY_DB_MAX_BYTES: 0 is no cap; the smallest cap accepted is 4 MiB.
TEST(Config, DbMaxBytesIsZeroOrAtLeastTheMinimum) {
    Config config;
    std::string error;
    ASSERT_TRUE(parse({{"RINGWAY_DB_MAX_BYTES", "0"}}, config, error)) << error;
    EXPECT_EQ(config.db_max_bytes, 0u);
    ASSERT_TRUE(parse({{"RINGWAY_DB_MAX_BYTES", "4194304"}}, config, error)) << error;
    EXPECT_EQ(config.db_max_bytes, 4194304u);
    EXPECT_FALSE(parse({{"RINGWAY_DB_MAX_BYTES", "4194303"}}, config, error));
}

// The WAL bounds: 4 MB and 32 MB unset; the inline bound may equal the thread's.
TEST(Config, WalBoundsDefaultAndOrder) {
    Config config;
    std::string error;
    ASSERT_TRUE(parse({}, config, error)) << error;
    EXPECT_EQ(config.wal_checkpoint_bytes, 4u << 20);
    EXPECT_EQ(config.wal_bytes_max, 32u << 20);
    ASSERT_TRUE(
        parse({{"RINGWAY_WAL_CHECKPOINT_BYTES", "1048576"}, {"RINGWAY_WAL_MAX_BYTES", "1048576"}},
              config, error))
        << error;
    EXPECT_EQ(config.wal_checkpoint_bytes, 1u << 20);
    EXPECT_EQ(config.wal_bytes_max, 1u << 20);
    EXPECT_FALSE(
        parse({{"RINGWAY_WAL_CHECKPOINT_BYTES", "8388608"}, {"RINGWAY_WAL_MAX_BYTES", "4194304"}},
              config, error));
}

// RINGWAY_TRUSTED_PROXIES: unset is nobody; a list of IPv4 and IPv6 blocks; a bad entry
// stops startup with the variable and the entry named.
TEST(Config, ParsesTrustedProxies) {
    Config config;
    std::string error;
    ASSERT_TRUE(parse({}, config, error)) << error;
    EXPECT_TRUE(config.trusted_proxies.empty());
    ASSERT_TRUE(parse({{"RINGWAY_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8,2001:db8::/32"}},
                      config, error))
        << error;
    ASSERT_EQ(config.trusted_proxies.size(), 3u);
    EXPECT_EQ(cidr_text(config.trusted_proxies[2]), "2001:db8::/32");
    EXPECT_FALSE(parse({{"RINGWAY_TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.1/99"}}, config, error));
    EXPECT_EQ(error,
              "RINGWAY_TRUSTED_PROXIES=10.0.0.0/8,10.0.0.1/99: \"10.0.0.1/99\": prefix must be "
              "0..32 for IPv4");
}

// RINGWAY_REDIS: unset is no sharing; redis://host:port with an IPv4, [IPv6] or localhost;
// the failure policy by name; anything else stops startup naming the variable.
TEST(Config, ParsesRedis) {
    Config config;
    std::string error;
    ASSERT_TRUE(parse({}, config, error)) << error;
    EXPECT_TRUE(config.redis_host.empty());
    EXPECT_EQ(config.redis_failure, RedisFailure::local);
    EXPECT_EQ(config.redis_sync_ms, 10u);
    EXPECT_EQ(config.redis_advance_percent, 10u);
    ASSERT_TRUE(parse({{"RINGWAY_REDIS", "redis://localhost:6380"},
                       {"RINGWAY_REDIS_FAILURE", "closed"},
                       {"RINGWAY_REDIS_SYNC_MS", "25"},
                       {"RINGWAY_REDIS_ADVANCE_PERCENT", "0"}},
                      config, error))
        << error;
    EXPECT_EQ(config.redis_host, "127.0.0.1");
    EXPECT_EQ(config.redis_port, 6380);
    EXPECT_EQ(config.redis_failure, RedisFailure::closed);
    EXPECT_EQ(config.redis_sync_ms, 25u);
    EXPECT_EQ(config.redis_advance_percent, 0u);
    Config v6;
    ASSERT_TRUE(parse({{"RINGWAY_REDIS", "redis://[::1]:6379"}, {"RINGWAY_REDIS_FAILURE", "open"}},
                      v6, error))
        << error;
    EXPECT_EQ(v6.redis_host, "::1");
    EXPECT_EQ(v6.redis_failure, RedisFailure::open);
    for (const char* bad : {"127.0.0.1:6379", "redis://127.0.0.1", "redis://127.0.0.1:0",
                            "redis://cache.internal:6379", "redis://[::1:6379"}) {
        Config refused;
        EXPECT_FALSE(parse({{"RINGWAY_REDIS", bad}}, refused, error)) << bad;
        EXPECT_EQ(error.rfind("RINGWAY_REDIS=", 0), 0u) << error;
    }
    Config refused;
    EXPECT_FALSE(parse({{"RINGWAY_REDIS_FAILURE", "maybe"}}, refused, error));
    EXPECT_EQ(error, "RINGWAY_REDIS_FAILURE=maybe: must be local, closed or open");
}

TEST(Config, AdminTokenIsNeverEchoedInErrors) {
    Config config;
    std::string error;
    EXPECT_FALSE(parse({{"RINGWAY_ADMIN_TOKEN", "secret1"}}, config, error));
    EXPECT_EQ(error.find("secret1"), std::string::npos) << error;
}

TEST(Config, HelpListsEveryVariable) {
    const std::string help = config_help_text();
    for (const char* name : {"RINGWAY_LISTEN",
                             "RINGWAY_SHARDS",
                             "RINGWAY_MAX_CONNECTIONS",
                             "RINGWAY_MAX_BODY_BYTES",
                             "RINGWAY_HEADER_TIMEOUT_MS",
                             "RINGWAY_KEEPALIVE_TIMEOUT_MS",
                             "RINGWAY_SEND_TIMEOUT_MS",
                             "RINGWAY_SHUTDOWN_TIMEOUT_MS",
                             "RINGWAY_RECV_BUFFERS",
                             "RINGWAY_DB",
                             "RINGWAY_LOG_BATCH",
                             "RINGWAY_ADMIN_TOKEN",
                             "RINGWAY_BODY_MIN_RATE_BYTES_PER_S",
                             "RINGWAY_BODY_RATE_GRACE_MS",
                             "RINGWAY_DISCARD_BODY_MAX_BYTES",
                             "RINGWAY_POOL_TRIM_MS",
                             "RINGWAY_LOG_QUEUE_SLOTS",
                             "RINGWAY_WRITER_STALL_MS",
                             "RINGWAY_WRITER_DRAIN_MS",
                             "RINGWAY_TRUSTED_PROXIES",
                             "RINGWAY_REDIS",
                             "RINGWAY_REDIS_FAILURE",
                             "RINGWAY_REDIS_SYNC_MS",
                             "RINGWAY_REDIS_TIMEOUT_MS",
                             "RINGWAY_REDIS_ADVANCE_PERCENT"}) {
        EXPECT_NE(help.find(name), std::string::npos) << name;
    }
}

}  // namespace
}  // namespace rw
