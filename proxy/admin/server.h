// proxy/admin/server.h — the admin API: keys, channels, usage and logs over HTTP/JSON on
// its own loopback listener (RINGWAY_ADMIN_LISTEN), authorised by RINGWAY_ADMIN_TOKEN.
// Control plane only: one thread of its own serves one connection at a time with a total
// deadline, off the shards. Writes go through Catalog (the Writer thread, then a snapshot
// reload), so the data plane sees a change as soon as the response is sent. Without a
// token the listener is never opened. Nothing here logs a token, key secret or upstream key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "core/config.h"
#include "core/limits.h"
#include "proxy/probe.h"

namespace rw {

class Catalog;
class ChannelHealthBoard;
class Queries;
class Writer;

// True when `presented` equals `expected`. Both are hashed (SHA-256) and the digests
// compared with CRYPTO_memcmp, so the time taken depends only on the presented length,
// never on how many leading bytes match or on the secret's length. An empty expected
// token matches nothing.
[[nodiscard]] bool admin_token_matches(std::string_view presented, std::string_view expected);

// The admin listener and its thread. start() and stop() are called by the main thread
// (startup, shutdown); everything else runs on the admin thread.
class AdminServer {
public:
    AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;
    ~AdminServer();  // Calls stop().

    // Binds config.admin_listen and starts the admin thread. With an empty
    // config.admin_token it opens nothing and returns true (is_enabled() false). The
    // references must outlive stop(); the Writer must be running (admin writes and the
    // channel-secret read run on its thread). False with one line in `error`.
    [[nodiscard]] bool start(const Config& config, Writer& writer, Catalog& catalog,
                             Queries& queries, std::string& error);
    // The running gateway's channel health (live state in GET /admin/channels, probes of
    // POST /admin/channels/{id}/test). Before start(); without one the API shows what the
    // database holds.
    void set_health(ChannelHealthBoard* health) { health_ = health; }
    // How POST /admin/channels/{id}/test probes a channel (proxy/probe.h). Before start().
    void set_probe(ChannelProbeFn probe, void* context) {
        probe_ = probe;
        probe_context_ = context;
    }
    // Called on the admin thread about once a second, between connections (the idle
    // channels' probes, proxy/idle_probe.h). Before start().
    using TickFn = void (*)(void* context);
    void set_tick(TickFn tick, void* context) {
        tick_ = tick;
        tick_context_ = context;
    }
    // Wakes the thread, lets the connection in progress finish or time out, joins, and
    // closes the listener. Idempotent; a no-op when not started.
    void stop();

    [[nodiscard]] bool is_enabled() const { return listen_fd_ >= 0; }
    // A reload: the previous process's admin listener (proxy/reload.h), used by start()
    // when it is on RINGWAY_ADMIN_LISTEN's address, else closed. listen_fd() is handed on.
    void adopt_listener(int fd) { adopted_fd_ = fd; }
    [[nodiscard]] int listen_fd() const { return listen_fd_; }
    [[nodiscard]] uint16_t port() const { return port_; }
    // "127.0.0.1:PORT" with the real port (for the ready line); empty when disabled.
    [[nodiscard]] const std::string& listen_text() const { return listen_text_; }

private:
    struct Impl;
    void run();

    std::unique_ptr<Impl> impl_;  // Parser, chunk pool, JSON parser, dependencies.
    ChannelHealthBoard* health_ = nullptr;
    ChannelProbeFn probe_ = nullptr;
    void* probe_context_ = nullptr;
    TickFn tick_ = nullptr;
    void* tick_context_ = nullptr;
    int listen_fd_ = -1;
    int adopted_fd_ = -1;
    int stop_fd_ = -1;  // eventfd: stop() writes, the thread polls it.
    uint16_t port_ = 0;
    std::string listen_text_;
    std::thread thread_;
};

}  // namespace rw
