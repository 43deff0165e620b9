// tests/e2e/redis_server.h — a real redis-server (Debian's redis-server package) on a spare
// loopback port for the tests that share rate limits between hosts (redis_share_test,
// pg_leases_test), and the bound an rpm shared through it keeps.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {

inline constexpr const char* redis_server_path = "/usr/bin/redis-server";

// Why a Redis test cannot run here, or empty.
inline std::string redis_unavailable() {
    if (::access(redis_server_path, X_OK) != 0) {
        return "redis-server is not installed (`make deps` installs the Debian package "
               "redis-server)";
    }
    return {};
}

// redis-server on a spare loopback port, in its own temp dir, nothing persisted.
class RedisServer {
public:
    void start(uint16_t port) {
        port_ = port;
        SpawnOptions options;
        options.program = redis_server_path;
        options.args = {"--port",       std::to_string(port),
                        "--bind",       "127.0.0.1",
                        "--save",       "",
                        "--appendonly", "no",
                        "--dir",        dir_.path(),
                        "--daemonize",  "no",
                        "--logfile",    ""};
        std::string error;
        process_ = std::make_unique<Process>();
        ASSERT_TRUE(process_->start(options, &error)) << error;
        ASSERT_TRUE(process_
                        ->wait_for_line(Stream::out, "Ready to accept connections",
                                        Deadline::after_ms(20000))
                        .has_value())
            << process_->output(Stream::out) << process_->output(Stream::err);
    }
    // SIGKILL: a crash, not a goodbye.
    void kill() { process_.reset(); }
    [[nodiscard]] uint16_t port() const { return port_; }
    [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

private:
    TempDir dir_;
    std::unique_ptr<Process> process_;  // Destroyed (killed, reaped) before dir_.
    uint16_t port_ = 0;
};

// The most an rpm of `limit` may serve across `hosts` hosts over elapsed_ms: the limit, each
// host's advance (10% of the limit, at least 1), and GCRA's refill meanwhile.
inline int redis_rpm_bound(int limit, int hosts, int64_t elapsed_ms) {
    const int advance = std::max(limit / 10, 1);
    return limit + hosts * advance + int(elapsed_ms * limit / 60000) + 1;
}

}  // namespace rw::test::proxy
