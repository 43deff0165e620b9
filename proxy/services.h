// proxy/services.h — what the running program is made of and the order it starts and
// stops in: storage (writer thread, snapshot store), the services beside the shards
// (resolver, admin API), then the shard threads with a Gateway each. The composition root
// (proxy/main.cc) calls these steps in turn; each startup failure is one line in `error`.
// Main thread only.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/shard.h"
#include "proxy/admin/server.h"
#include "proxy/gateway.h"
#include "proxy/idle_probe.h"
#include "proxy/probe.h"
#include "proxy/resolver.h"
#include "proxy/stored_response.h"
#include "storage/budget_lease.h"
#include "storage/catalog_listener.h"
#include "storage/keys.h"
#include "storage/queries.h"
#include "storage/snapshot.h"
#include "storage/writer.h"

namespace rw {

// Startup rendezvous between main and the shard threads (control plane only).
struct StartGate {
    std::mutex mutex;
    std::condition_variable changed;
    uint32_t setup_done_count = 0;
    std::string first_error;
};

struct Services {
    explicit Services(const Config& config_in) : config(config_in) {}

    const Config& config;
    // Started by a reload (proxy/reload.h): the writer waits for the previous process to
    // release the database while the shards already queue rows.
    bool is_reload = false;
    std::string secret_key;  // Seals channel keys at rest; empty: none configured.
    Writer writer;
    SnapshotStore store;
    // PostgreSQL: other hosts' catalog writes reload this host's snapshot (one thread).
    CatalogListener catalog_listener;
    Resolver resolver;
    std::unique_ptr<KeyLimits> key_limits;
    std::unique_ptr<RateLimits> rate_limits;
    std::unique_ptr<RateShare> rate_share;  // RINGWAY_REDIS set: the rw-redis thread.
    std::unique_ptr<BudgetLeases> leases;   // PostgreSQL: the rw-lease thread.
    std::unique_ptr<MetricsShared> metrics_shared;
    std::unique_ptr<ChannelHealthBoard> health;
    std::unique_ptr<StoredResponses> stored_responses;  // Response ids and their channels.
    ProbeDeps probe;                                    // The admin API's channel probe.
    IdleProbeDeps idle_probe;  // Idle down channels' trials, on the admin thread's tick.
    GatewayShared gateway;
    std::unique_ptr<Catalog> catalog;
    Queries queries;
    AdminServer admin;
    std::thread writer_thread;
    std::thread health_thread;  // rw-health: persists channel health changes.
    std::mutex health_mutex;
    std::condition_variable health_stop;
    bool is_health_stopping = false;  // Guarded by health_mutex.
    ServerShared shared;
    std::vector<std::unique_ptr<Shard>> shards;
    std::vector<std::thread> shard_threads;
    StartGate gate;
};

// Opens (creating its directory when missing, owner-only, locked against a second
// process) and migrates the database, seals plain channel keys when a secret key is
// configured, checks the quota invariant, loads the first snapshot.
// Under a reload, only the writer's queues and the reading side (snapshot, admin queries)
// open here, on a schema already current (else a restart is needed); the rest is done by
// the writer thread once the previous process has released the database.
[[nodiscard]] bool services_open_storage(Services& services, std::string& error);

// Starts the writer thread, the resolver, first-start channels from the environment and
// the admin API, and wires what the gateway shares.
[[nodiscard]] bool services_start(Services& services, EnvLookup lookup, std::string& error);

// One pinned thread per shard on its listener; returns once every shard is set up. On
// failure the shards that did start are told to stop and `error` names the first cause.
[[nodiscard]] bool services_start_shards(Services& services, const std::vector<int>& listen_fds,
                                         std::string& error);

// SIGTERM/SIGINT: stop the shards (they drain), then the admin API, then the writer
// (everything queued is committed), then the resolver. False (after one error line) when
// the writer's drain deadline passed and rows went to the spill file or were lost.
[[nodiscard]] bool services_stop(Services& services);

}  // namespace rw
