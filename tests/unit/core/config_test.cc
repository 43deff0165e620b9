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
    EXPECT_EQ(config.max_connections, 4096u);
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
        {"RINGWAY_LOG_LEVEL", "loud", "must be debug, info, warn or error"},
        {"RINGWAY_DB_SYNCHRONOUS", "off", "must be normal or full"},
        {"RINGWAY_ADMIN_TOKEN", "short", "at least 16 characters"},
        {"RINGWAY_HEADER_TIMEOUT_MS", "10", "must be between 50"},
        {"RINGWAY_LOG_QUEUE_SLOTS", "1000", "must be a power of two"},
        {"RINGWAY_LOG_QUEUE_SLOTS", "1", "must be between 2"},
        {"RINGWAY_WRITER_STALL_MS", "0", "must be between 1"},
        {"RINGWAY_WRITER_DRAIN_MS", "0", "must be between 1"},
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

TEST(Config, AdminTokenIsNeverEchoedInErrors) {
    Config config;
    std::string error;
    EXPECT_FALSE(parse({{"RINGWAY_ADMIN_TOKEN", "secret1"}}, config, error));
    EXPECT_EQ(error.find("secret1"), std::string::npos) << error;
}

TEST(Config, HelpListsEveryVariable) {
    const std::string help = config_help_text();
    for (const char* name :
         {"RINGWAY_LISTEN", "RINGWAY_SHARDS", "RINGWAY_MAX_CONNECTIONS", "RINGWAY_MAX_BODY_BYTES",
          "RINGWAY_HEADER_TIMEOUT_MS", "RINGWAY_KEEPALIVE_TIMEOUT_MS", "RINGWAY_SEND_TIMEOUT_MS",
          "RINGWAY_SHUTDOWN_TIMEOUT_MS", "RINGWAY_RECV_BUFFERS", "RINGWAY_DB", "RINGWAY_LOG_BATCH",
          "RINGWAY_ADMIN_TOKEN", "RINGWAY_BODY_MIN_RATE_BYTES_PER_S", "RINGWAY_BODY_RATE_GRACE_MS",
          "RINGWAY_DISCARD_BODY_MAX_BYTES", "RINGWAY_POOL_TRIM_MS", "RINGWAY_LOG_QUEUE_SLOTS",
          "RINGWAY_WRITER_STALL_MS", "RINGWAY_WRITER_DRAIN_MS"}) {
        EXPECT_NE(help.find(name), std::string::npos) << name;
    }
}

}  // namespace
}  // namespace rw
