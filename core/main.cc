// core/main.cc — process startup and shutdown: environment → Config, listening sockets,
// one pinned thread per shard, readiness (log line + sd_notify), then the main thread
// waits for SIGTERM/SIGINT and drains. Every startup failure is one clear line on stderr
// and a non-zero exit before any request is served.
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/shard.h"
#include "proxy/admin_cli.h"
#include "proxy/admin_server.h"
#include "proxy/gateway.h"
#include "proxy/resolver.h"
#include "storage/keys.h"
#include "storage/migrations.h"
#include "storage/queries.h"
#include "storage/snapshot.h"
#include "storage/writer.h"

namespace rw {
namespace {

constexpr const char* version_text = "ringway 0.1.0";
constexpr int listen_backlog = 4096;

const char* env_lookup(const char* name, void*) {
    return std::getenv(name);
}

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "ringway: %s\n", message.c_str());
    std::exit(1);
}

uint16_t address_port(const sockaddr_storage& address) {
    if (address.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
    }
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
}

void address_set_port(sockaddr_storage& address, uint16_t port) {
    if (address.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6&>(address).sin6_port = htons(port);
    } else {
        reinterpret_cast<sockaddr_in&>(address).sin_port = htons(port);
    }
}

// One listening socket per shard, all on the same address with SO_REUSEPORT so the
// kernel spreads connections across shards.
bool open_listeners(ListenAddress& listen, uint32_t count, std::vector<int>& fds,
                    std::string& error) {
    // SO_REUSEPORT would let a second ringway (same user) share a port that is already
    // taken, silently splitting traffic between two processes. A probe without it fails
    // with EADDRINUSE against any listener there; with port 0 it also picks the port.
    const int probe = ::socket(listen.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (probe < 0 || ::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        ::bind(probe, reinterpret_cast<const sockaddr*>(&listen.address), listen.address_bytes) !=
            0) {
        error = std::string("cannot listen on ") + listen.text + ": " + std::strerror(errno);
        return false;
    }
    if (address_port(listen.address) == 0) {
        sockaddr_storage bound;
        socklen_t bound_bytes = sizeof(bound);
        if (::getsockname(probe, reinterpret_cast<sockaddr*>(&bound), &bound_bytes) != 0) {
            error = std::string("getsockname: ") + std::strerror(errno);
            return false;
        }
        address_set_port(listen.address, address_port(bound));
    }
    ::close(probe);
    for (uint32_t i = 0; i < count; i++) {
        const int fd = ::socket(listen.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            error = std::string("socket: ") + std::strerror(errno);
            return false;
        }
        fds.push_back(fd);
        // TCP_NODELAY is inherited by accepted sockets: streamed events leave at once.
        if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
            error = std::string("setsockopt: ") + std::strerror(errno);
            return false;
        }
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&listen.address), listen.address_bytes) !=
                0 ||
            ::listen(fd, listen_backlog) != 0) {
            error = std::string("cannot listen on ") + listen.text + ": " + std::strerror(errno);
            return false;
        }
    }
    // The text shown in logs names the real port.
    char host[INET6_ADDRSTRLEN] = {};
    const uint16_t port = address_port(listen.address);
    if (listen.address.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6&>(listen.address).sin6_addr, host,
                  sizeof(host));
        std::snprintf(listen.text, sizeof(listen.text), "[%s]:%u", host, port);
    } else {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(listen.address).sin_addr, host,
                  sizeof(host));
        std::snprintf(listen.text, sizeof(listen.text), "%s:%u", host, port);
    }
    return true;
}

// The index-th CPU of the affinity mask, or -1.
int cpu_for_shard(uint32_t index) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return -1;
    }
    uint32_t seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &set)) {
            if (seen == index) {
                return cpu;
            }
            seen += 1;
        }
    }
    return -1;
}

// Startup rendezvous between main and the shard threads (control plane only).
struct StartGate {
    std::mutex mutex;
    std::condition_variable changed;
    uint32_t setup_done_count = 0;
    std::string first_error;
};

// What main owns for the gateway and hands to the shards and the metrics hooks.
struct Services {
    Writer writer;
    SnapshotStore store;
    Resolver resolver;
    std::unique_ptr<KeyLimits> key_limits;
    GatewayShared gateway;
    uint32_t shard_count = 0;
};

uint32_t render_service_metrics(void* context, char* out, uint32_t capacity) {
    auto* services = static_cast<Services*>(context);
    return gateway_metrics_render(out, capacity, services->gateway, services->shard_count);
}

const char* service_not_ready_reason(void* context) {
    auto* services = static_cast<Services*>(context);
    return services->writer.is_stalled() ? "The usage log cannot be written (SQLite commits fail)."
                                         : nullptr;
}

StorageConfig storage_config(const Config& config) {
    StorageConfig storage;
    storage.db_path = config.db_path;
    storage.synchronous_full = config.db_synchronous_full;
    storage.log_batch_rows = config.log_batch;
    storage.log_flush_ms = config.log_flush_ms;
    return storage;
}

void shard_thread(Shard& shard, uint32_t index, StartGate& gate, Services& services) {
    char name[16];  // "rw-shard-N" in ps -L, top -H and perf (15 characters at most).
    std::snprintf(name, sizeof(name), "rw-shard-%u", index);
    pthread_setname_np(pthread_self(), name);
    const int cpu = cpu_for_shard(index);
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        // Pinning is best effort: a container may forbid it; the shard still runs.
        [[maybe_unused]] const int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    std::string error;
    const bool is_ok = shard.setup(error);
    // The gateway lives on its shard's thread and stack: its memory is allocated here,
    // before the loop starts counting allocations.
    std::unique_ptr<Gateway> gateway;
    if (is_ok) {
        gateway = std::make_unique<Gateway>(services.gateway, shard);
        shard.set_handler(gateway->handler());
    }
    {
        std::lock_guard lock(gate.mutex);
        gate.setup_done_count += 1;
        if (!is_ok && gate.first_error.empty()) {
            gate.first_error = error;
        }
    }
    gate.changed.notify_all();
    if (is_ok) {
        shard.run();
    }
}

int run_server() {
    Config config;
    std::string error;
    if (!config_from_env(config, env_lookup, nullptr, error)) {
        die(error);
    }
    log_set_level(config.log_level);

    // Signals are taken by the main thread with sigwait; every thread inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    if (!io_uring_probe(error)) {
        die(error);
    }
    std::vector<int> listen_fds;
    if (!open_listeners(config.listen, config.shards, listen_fds, error)) {
        die(error);
    }

    // Storage first: a database that cannot be opened or migrated stops startup here.
    auto services = std::make_unique<Services>();
    services->shard_count = config.shards;
    const StorageConfig storage = storage_config(config);
    if (const std::string problem = storage_config_check(storage); !problem.empty()) {
        die(problem);
    }
    // The default ./var/ringway.db works from a fresh checkout without `make run`: the
    // database's own directory is created (one level, owner only) when it is missing.
    if (const size_t slash = storage.db_path.rfind('/'); slash != std::string::npos && slash > 0) {
        const std::string parent = storage.db_path.substr(0, slash);
        if (::mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) {
            die("cannot create the directory of RINGWAY_DB (" + parent +
                "): " + std::strerror(errno));
        }
    }
    if (!services->writer.open(storage, config.shards, error)) {
        die(error);
    }
    const QuotaInvariantReport invariant = check_quota_invariant(services->writer.db_before_run());
    if (!invariant.error.empty()) {
        die("quota invariant check failed: " + invariant.error);
    }
    if (!invariant.holds) {
        // Served anyway (refusing would stop all traffic), but loudly: an operator must look.
        RW_LOG_ERROR("event=quota_invariant_broken keys=%zu first_key_id=%ld",
                     invariant.offending_key_ids.size(),
                     static_cast<long>(invariant.offending_key_ids.front()));
    }
    // One reader slot per shard plus one for the resolver thread.
    if (!services->store.open(storage, config.shards + 1, error) ||
        !services->store.reload(error)) {
        die(error);
    }
    services->key_limits = std::make_unique<KeyLimits>(storage.keys_max);
    services->resolver.start(services->store.publisher(), config.shards, 60000);
    services->gateway.config = &config;
    services->gateway.snapshots = &services->store.publisher();
    services->gateway.quotas = &services->store.quotas();
    services->gateway.writer = &services->writer;
    services->gateway.key_limits = services->key_limits.get();
    services->gateway.resolver = &services->resolver;
    std::thread writer_thread([&services] {
        pthread_setname_np(pthread_self(), "rw-writer");
        services->writer.run();
    });
    // Control plane: admin writes go through the running writer, then a snapshot reload.
    Catalog catalog(services->writer, services->store);
    Queries queries;
    if (!queries.open(storage, error) ||
        !bootstrap_channels_from_env(catalog, queries, env_lookup, nullptr, error)) {
        die(error);
    }
    AdminServer admin;
    if (!admin.start(config, services->writer, catalog, queries, error)) {
        die(error);
    }

    auto shared = std::make_unique<ServerShared>();
    shared->config = &config;
    shared->shard_count = config.shards;
    shared->render_metrics = render_service_metrics;
    shared->not_ready_reason = service_not_ready_reason;
    shared->hooks_context = services.get();
    std::vector<std::unique_ptr<Shard>> shards;
    for (uint32_t i = 0; i < config.shards; i++) {
        shards.push_back(std::make_unique<Shard>(*shared, i, listen_fds[i]));
    }
    StartGate gate;
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < config.shards; i++) {
        threads.emplace_back(shard_thread, std::ref(*shards[i]), i, std::ref(gate),
                             std::ref(*services));
    }
    {
        std::unique_lock lock(gate.mutex);
        gate.changed.wait(lock, [&] { return gate.setup_done_count == config.shards; });
    }
    if (!gate.first_error.empty()) {
        // Shards that did start must stop before exit: they own rings and threads.
        shared->is_stopping.store(true, std::memory_order_release);
        for (auto& shard : shards) {
            shard->wake();
        }
        std::fprintf(stderr, "ringway: %s\n", gate.first_error.c_str());
        std::_Exit(1);
    }
    shared->is_ready.store(true, std::memory_order_release);
    RW_LOG_INFO("event=ready listen=%s shards=%u admin=%s version=\"%s\"", config.listen.text,
                config.shards, admin.is_enabled() ? admin.listen_text().c_str() : "off",
                version_text);
    if (!notify_systemd("READY=1")) {
        RW_LOG_WARN("event=notify_failed state=READY");
    }

    int signal_number = 0;
    sigwait(&signals, &signal_number);
    RW_LOG_INFO("event=stopping signal=%s timeout_ms=%u", signal_number == SIGINT ? "INT" : "TERM",
                config.shutdown_timeout_ms);
    [[maybe_unused]] const bool notified = notify_systemd("STOPPING=1");
    shared->is_stopping.store(true, std::memory_order_release);
    for (auto& shard : shards) {
        shard->wake();
    }
    for (auto& thread : threads) {
        thread.join();
    }
    admin.stop();  // Before the writer: admin commands run on its thread.
    // Shards have stopped pushing: everything they queued is committed before exit.
    services->writer.request_stop();
    writer_thread.join();
    services->resolver.stop();
    shards.clear();
    RW_LOG_INFO("event=stopped rows_written=%lu",
                static_cast<unsigned long>(services->writer.rows_written()));
    return 0;
}

}  // namespace
}  // namespace rw

int main(int argc, char** argv) {
    if (argc > 1 && rw::admin_cli_is_command(argv[1])) {
        return rw::admin_cli_main(argc, argv);
    }
    for (int i = 1; i < argc; i++) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fputs(rw::config_help_text().c_str(), stdout);
            return 0;
        }
        if (arg == "--version") {
            std::puts(rw::version_text);
            return 0;
        }
        std::fprintf(stderr, "ringway: unknown argument %s (see --help)\n", argv[i]);
        return 2;
    }
    return rw::run_server();
}
