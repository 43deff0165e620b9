// proxy/services.cc — the program's services started and stopped in order (see
// services.h). Startup and shutdown only, on the main thread; the shard threads run
// shard_thread_main.
#include "proxy/services.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/listen.h"
#include "core/log.h"
#include "proxy/admin/bootstrap.h"
#include "storage/db_files.h"
#include "storage/migrations.h"
#include "storage/secrets.h"

namespace rw {
namespace {

uint32_t render_service_metrics(void* context, char* out, uint32_t capacity) {
    auto* services = static_cast<Services*>(context);
    return gateway_metrics_render(out, capacity, services->gateway.metrics, services->config.shards,
                                  services->metrics_shared.get(), &services->writer);
}

const char* service_not_ready_reason(void* context) {
    auto* services = static_cast<Services*>(context);
    return services->writer.is_stalled() ? "The usage log cannot be written (SQLite commits fail)."
                                         : nullptr;
}

// A channel write waits for its address before the admin call returns (resolver_wait_ms_max).
void channels_changed(void* context, uint64_t snapshot_epoch) {
    auto* resolver = static_cast<Resolver*>(context);
    if (!resolver->wait_published(snapshot_epoch, resolver_wait_ms_max)) {
        RW_LOG_WARN("event=channel_address_pending snapshot_epoch=%lu wait_ms=%u",
                    static_cast<unsigned long>(snapshot_epoch), resolver_wait_ms_max);
    }
}

StorageConfig storage_config(const Config& config, const std::string& secret_key) {
    StorageConfig storage;
    storage.secret_key = secret_key;
    storage.db_path = config.db_path;
    storage.local_path = db_is_postgres(config.db_path) ? config.db_local_path : std::string();
    storage.lease_host =
        db_is_postgres(config.db_path) ? lease_host_id(config.db_local_path) : std::string();
    storage.synchronous_full = config.db_synchronous_full;
    storage.log_batch_rows = config.log_batch;
    storage.log_flush_ms = config.log_flush_ms;
    storage.drain_timeout_ms = config.writer_drain_ms;
    storage.stall_refuse_ms = config.writer_stall_ms;
    storage.queue_slots = config.log_queue_slots;
    storage.retention_days = config.log_retention_days;
    storage.db_max_bytes = config.db_max_bytes;
    storage.wal_checkpoint_bytes = config.wal_checkpoint_bytes;
    storage.wal_bytes_max = config.wal_bytes_max;
    return storage;
}

// The default ./var/ringway.db works from a fresh checkout without `make run`: the
// database's own directory is created (one level, owner only) when it is missing.
bool db_directory_create(const std::string& db_path, std::string& error) {
    const size_t slash = db_path.rfind('/');
    if (slash == std::string::npos || slash == 0) {
        return true;
    }
    const std::string parent = db_path.substr(0, slash);
    if (::mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) {
        error =
            "cannot create the directory of RINGWAY_DB (" + parent + "): " + std::strerror(errno);
        return false;
    }
    return true;
}

void shard_thread_main(Services& services, Shard& shard, uint32_t index) {
    char name[16];  // "rw-shard-N" in ps -L, top -H and perf (15 characters at most).
    std::snprintf(name, sizeof(name), "rw-shard-%u", index);
    thread_name_and_pin(name, index);
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
        std::lock_guard lock(services.gate.mutex);
        services.gate.setup_done_count += 1;
        if (!is_ok && services.gate.first_error.empty()) {
            services.gate.first_error = error;
        }
    }
    services.gate.changed.notify_all();
    if (is_ok) {
        shard.run();
    }
}

void shards_wake_to_stop(Services& services) {
    services.shared.is_stopping.store(true, std::memory_order_release);
    for (auto& shard : services.shards) {
        shard->wake();
    }
}

// The lease thread answered: every shard looks at its lease wait list (a loop turn).
void shards_wake_for_leases(void* context) {
    auto& services = *static_cast<Services*>(context);
    for (auto& shard : services.shards) {
        shard->wake();
    }
}

// The database's files owner-only (a readable one is fixed and reported), and the lock
// that keeps a second process (server or `ringway secrets rotate`) off them.
bool db_files_prepare(const std::string& db_path, std::string& error) {
    std::vector<std::string> fixed;
    if (!db_directory_create(db_path, error) || !db_files_secure(db_path, fixed, error)) {
        return false;
    }
    for (const std::string& file : fixed) {
        RW_LOG_WARN(
            "event=db_file_mode_fixed file=%s mode=0600 reason=\"was readable by group or "
            "others\"",
            file.c_str());
    }
    return db_files_lock(db_path, error);
}

// Plain channel keys sealed now when a key is configured; said once when none is.
bool channel_keys_prepare(Services& services, std::string& error) {
    SecretsReport report;
    if (!secrets_prepare(services.writer.db_before_run(), services.secret_key, report, error)) {
        return false;
    }
    if (services.secret_key.empty()) {
        RW_LOG_WARN(
            "event=channel_keys_unencrypted channels=%u reason=\"no "
            "RINGWAY_SECRET_KEY_FILE or ringway-secret-key credential: channel keys are "
            "stored unencrypted\"",
            report.plain_rows);
    } else if (report.sealed_now > 0) {
        RW_LOG_INFO("event=channel_keys_encrypted channels=%u", report.sealed_now);
    }
    return true;
}

HealthSettings health_settings(const Config& config) {
    HealthSettings settings;
    settings.window_ms = config.channel_failure_window_ms;
    settings.failures_min = config.channel_failure_min;
    settings.failure_percent = config.channel_failure_percent;
    settings.backoff_ms = config.channel_backoff_ms;
    settings.backoff_max_ms = config.channel_backoff_max_ms;
    settings.retry_after_max_ms = config.channel_retry_after_max_ms;
    return settings;
}

// The board starts from what was persisted: a channel down at the last stop is down again,
// with a trial after one backoff.
void health_restore(Services& services) {
    const Snapshot* snapshot = services.store.publisher().current();
    if (snapshot == nullptr) {
        return;
    }
    for (const ChannelEntry& channel : snapshot->channels()) {
        if (channel.is_health_down) {
            services.health->restore_down(
                channel.id,
                channel.health_reason == "auth" ? HealthReason::auth : HealthReason::server,
                channel.health_since_ms, health_clock_ms());
        }
    }
}

// rw-health: every 100 ms, each channel whose health version moved is written through the
// writer (one UPDATE), so the database says what the gateway decided within a moment. A
// failed write is retried at the next round (the version stays unpersisted).
void health_persist_loop(Services& services) {
    std::vector<uint32_t> persisted(channel_states_max, 0);
    std::unique_lock lock(services.health_mutex);
    while (!services.health_stop.wait_for(lock, std::chrono::milliseconds(100),
                                          [&] { return services.is_health_stopping; })) {
        lock.unlock();
        for (uint32_t slot = 0; slot < channel_states_max; slot++) {
            const int64_t channel_id = services.health->channel_at(slot);
            if (channel_id == 0) {
                continue;
            }
            const HealthView view = services.health->view(channel_id, health_clock_ms());
            if (view.version == persisted[slot]) {
                continue;
            }
            ChannelHealthRow row{channel_id, view.is_down,
                                 std::string(health_reason_name(view.reason)), view.since_unix_ms,
                                 view.last_error};
            std::string error;
            if (channel_health_store(services.writer, row, error)) {
                persisted[slot] = view.version;
            } else {
                RW_LOG_WARN("event=channel_health_not_stored channel_id=%ld error=\"%s\"",
                            static_cast<long>(channel_id), error.c_str());
            }
        }
        lock.lock();
    }
}

// After the writer's open(): plain channel keys sealed, the spill replay said, the quota
// invariant checked (a broken one is logged, not fatal).
bool writer_startup_checks(Services& services, std::string& error) {
    if (!channel_keys_prepare(services, error)) {
        return false;
    }
    if (services.writer.replayed_rows() > 0) {
        const StorageConfig storage = storage_config(services.config, {});
        RW_LOG_WARN("event=spill_replayed rows=%lu path=%s",
                    static_cast<unsigned long>(services.writer.replayed_rows()),
                    spill_path(storage_local_path(storage)).c_str());
    }
    const QuotaInvariantReport invariant = check_quota_invariant(services.writer.db_before_run());
    if (!invariant.error.empty()) {
        error = "quota invariant check failed: " + invariant.error;
        return false;
    }
    if (!invariant.holds) {
        // Served anyway (refusing would stop all traffic), but loudly: an operator must look.
        // A key offends when its quota_used or its spend_nano disagrees with its rows.
        RW_LOG_ERROR("event=quota_invariant_broken keys=%zu first_key_id=%ld",
                     invariant.offending_key_ids.size(),
                     static_cast<long>(invariant.offending_key_ids.front()));
    }
    return true;
}

// A reload serves before it may migrate: the schema must already be this binary's.
bool schema_is_current(const StorageConfig& storage, std::string& error) {
    Db db;
    if (!db.open(storage, DbMode::read_only, error)) {
        return false;
    }
    const Result<int64_t> version = schema_version(db);
    if (!version.ok() || version.value != int64_t(schema_version_latest(db))) {
        error = "the database schema is not this binary's (version " +
                (version.ok() ? std::to_string(version.value) : std::string("unknown")) +
                ", expected " + std::to_string(schema_version_latest(db)) +
                "): a schema upgrade needs a restart";
        return false;
    }
    return true;
}

int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// rw-writer under a reload: polls the database lock until the previous process (its
// writer drained and committed) has exited, then opens the writer as a cold start would.
// Past its bound the queued rows wait on, but new requests are refused (stalled). False,
// with the queued rows counted lost, when a stop's drain deadline passed first.
bool writer_take_over(Services& services) {
    const Config& config = services.config;
    const int64_t start_ms = steady_ms();
    const int64_t bound_ms =
        int64_t(config.shutdown_timeout_ms) + int64_t(config.writer_drain_ms) + 5000;
    bool is_stalled = false;
    std::string error;
    const StorageConfig storage = storage_config(config, {});
    const std::string& local_path = storage_local_path(storage);
    for (;;) {
        bool is_busy = false;
        if (db_files_lock(local_path, error, &is_busy)) {
            break;
        }
        if (!is_busy || services.writer.is_stop_expired()) {
            RW_LOG_ERROR("event=writer_handover_failed error=\"%s\"",
                         is_busy ? "stopped before the previous process released the database"
                                 : error.c_str());
            services.writer.abandon();
            return false;
        }
        if (!is_stalled && steady_ms() - start_ms > bound_ms) {
            is_stalled = true;
            services.writer.set_handover_stalled(true);
            RW_LOG_ERROR("event=writer_handover_late wait_ms=%ld",
                         static_cast<long>(steady_ms() - start_ms));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!services.writer.open_db(error) || !writer_startup_checks(services, error)) {
        RW_LOG_ERROR("event=writer_open_failed error=\"%s\"", error.c_str());
        std::_Exit(1);  // Serving unrecorded is worse; systemd restarts a cold start.
    }
    services.writer.set_handover_stalled(false);
    uint64_t queued_rows = 0;
    for (uint32_t index = 0; index < services.writer.queue_count(); index++) {
        queued_rows += services.writer.queue(index).depth();
    }
    RW_LOG_INFO("event=writer_handover wait_ms=%ld queued_rows=%lu",
                static_cast<long>(steady_ms() - start_ms), static_cast<unsigned long>(queued_rows));
    return true;
}

}  // namespace

bool services_open_storage(Services& services, std::string& error) {
    const std::string& key_file = services.config.secret_key_file;
    if (!key_file.empty() && !secret_key_load(key_file, services.secret_key, error)) {
        return false;
    }
    const StorageConfig storage = storage_config(services.config, services.secret_key);
    if (error = storage_config_check(storage); !error.empty()) {
        return false;
    }
    if (services.is_reload) {
        if (!schema_is_current(storage, error) ||
            !services.writer.open_queues(storage, services.config.shards, error)) {
            return false;
        }
    } else if (!db_files_prepare(storage_local_path(storage), error) ||
               !services.writer.open(storage, services.config.shards, error) ||
               !writer_startup_checks(services, error)) {
        return false;
    }
    // One reader slot per shard, one for the resolver thread, one for the admin thread's
    // probes (services_probe_reader).
    return services.store.open(storage, services.config.shards + 2, error) &&
           services.store.reload(error);
}

namespace {

// The shards' view of the services (GatewayShared): pointers to what every shard shares.
void services_wire_gateway(Services& services) {
    GatewayShared& gateway = services.gateway;
    gateway.config = &services.config;
    gateway.snapshots = &services.store.publisher();
    gateway.quotas = &services.store.quotas();
    gateway.budgets = &services.store.budgets();
    gateway.writer = &services.writer;
    gateway.key_limits = services.key_limits.get();
    gateway.rate_limits = services.rate_limits.get();
    gateway.rate_share = services.rate_share.get();
    gateway.metrics_shared = services.metrics_shared.get();
    gateway.health = services.health.get();
    gateway.stored_responses = services.stored_responses.get();
    services.metrics_shared->health = services.health.get();
    gateway.resolver = &services.resolver;
}

// PostgreSQL only: the catalog's notification listener and the budget lease thread.
bool services_start_postgres(Services& services, const StorageConfig& storage, std::string& error) {
    if (!services.catalog_listener.start(storage, services.store, error)) {
        return false;
    }
    const BudgetLeaseSettings settings{
        services.config.budget_lease_percent, services.config.budget_lease_ttl_ms,
        services.config.budget_lease_idle_ms, services.config.budget_lease_wait_ms};
    services.leases =
        std::make_unique<BudgetLeases>(storage.keys_max, settings, services.store.budgets());
    if (!services.leases->start(storage, shards_wake_for_leases, &services, error)) {
        return false;
    }
    services.gateway.leases = services.leases.get();
    services.metrics_shared->leases = services.leases.get();
    return true;
}

}  // namespace

bool services_start(Services& services, EnvLookup lookup, std::string& error) {
    const StorageConfig storage = storage_config(services.config, services.secret_key);
    services.key_limits = std::make_unique<KeyLimits>(storage.keys_max);
    services.rate_limits =
        std::make_unique<RateLimits>(storage.keys_max, services.store.quotas().model_slot_count());
    services.metrics_shared = std::make_unique<MetricsShared>();
    if (!services.config.redis_host.empty()) {
        services.rate_share = std::make_unique<RateShare>(
            services.config, storage.keys_max, services.store.quotas().model_slot_count(),
            *services.key_limits);
        services.rate_share->start();
        services.metrics_shared->rate_share = services.rate_share.get();
    }
    services.health = std::make_unique<ChannelHealthBoard>(health_settings(services.config));
    health_restore(services);
    services.stored_responses = std::make_unique<StoredResponses>(stored_responses_capacity);
    uint32_t stored_loaded = 0;
    if (!stored_responses_load(storage, *services.stored_responses, stored_loaded, error)) {
        error = "cannot load stored response ids: " + error;
        return false;
    }
    RW_LOG_INFO("event=stored_responses_loaded count=%u", stored_loaded);
    services.resolver.start(services.store.publisher(), services.config.shards, 60000);
    GatewayShared& gateway = services.gateway;
    if (const char* max_tokens = lookup("RINGWAY_ANTHROPIC_MAX_TOKENS", nullptr);
        max_tokens != nullptr &&
        !max_tokens_defaults_parse(max_tokens, gateway.max_tokens_defaults, error)) {
        return false;
    }
    services_wire_gateway(services);
    services.writer_thread = std::thread([&services] {
        thread_name_and_pin("rw-writer", -1);
        if (!services.is_reload || writer_take_over(services)) {
            services.writer.run();
        }
    });
    services.health_thread = std::thread([&services] {
        thread_name_and_pin("rw-health", -1);
        health_persist_loop(services);
    });
    services.admin.set_health(services.health.get());
    const uint32_t probe_reader = services.config.shards + 1;
    services.probe = {&services.resolver, services.health.get(),       10000,
                      &services.writer,   &services.store.publisher(), probe_reader};
    services.admin.set_probe(channel_probe, &services.probe);
    services.idle_probe = {&services.probe, services.health.get(), &services.store.publisher(),
                           probe_reader};
    services.admin.set_tick(idle_probe_tick, &services.idle_probe);
    // Control plane: admin writes go through the running writer, then a snapshot reload.
    services.catalog =
        std::make_unique<Catalog>(services.writer, services.store, services.secret_key);
    services.catalog->set_channels_changed(channels_changed, &services.resolver);
    if (db_is_postgres(storage.db_path) && !services_start_postgres(services, storage, error)) {
        return false;
    }
    // First-start channels are a cold start's: a reload's writer may still be waiting.
    return services.queries.open(storage, error) &&
           (services.is_reload || bootstrap_channels_from_env(*services.catalog, services.queries,
                                                              lookup, nullptr, error)) &&
           services.admin.start(services.config, services.writer, *services.catalog,
                                services.queries, error);
}

bool services_start_shards(Services& services, const std::vector<int>& listen_fds,
                           std::string& error) {
    const uint32_t count = services.config.shards;
    services.shared.config = &services.config;
    services.shared.shard_count = count;
    services.shared.render_metrics = render_service_metrics;
    services.shared.not_ready_reason = service_not_ready_reason;
    services.shared.hooks_context = &services;
    for (uint32_t i = 0; i < count; i++) {
        services.shards.push_back(std::make_unique<Shard>(services.shared, i, listen_fds[i]));
    }
    for (uint32_t i = 0; i < count; i++) {
        services.shard_threads.emplace_back(shard_thread_main, std::ref(services),
                                            std::ref(*services.shards[i]), i);
    }
    std::unique_lock lock(services.gate.mutex);
    services.gate.changed.wait(lock, [&] { return services.gate.setup_done_count == count; });
    if (!services.gate.first_error.empty()) {
        error = services.gate.first_error;
        lock.unlock();
        shards_wake_to_stop(services);  // Shards that did start own rings and threads.
        return false;
    }
    services.shared.is_ready.store(true, std::memory_order_release);
    return true;
}

bool services_stop(Services& services) {
    shards_wake_to_stop(services);
    for (auto& thread : services.shard_threads) {
        thread.join();
    }
    services.admin.stop();  // Before the writer: admin commands run on its thread.
    services.catalog_listener.stop();
    if (services.leases != nullptr) {
        services.leases->stop();
    }
    {
        std::lock_guard lock(services.health_mutex);
        services.is_health_stopping = true;
    }
    services.health_stop.notify_all();
    if (services.health_thread.joinable()) {
        services.health_thread.join();  // Its writes, too, need the writer.
    }
    // Shards have stopped pushing: everything they queued is committed before exit.
    services.writer.request_stop();
    services.writer_thread.join();
    services.resolver.stop();
    if (services.rate_share != nullptr) {
        services.rate_share->stop();
    }
    services.shards.clear();
    const Writer& writer = services.writer;
    if (writer.spilled_rows() == 0 && writer.lost_rows() == 0) {
        return true;
    }
    RW_LOG_ERROR("event=usage_not_committed spilled_rows=%lu lost_rows=%lu spill=%s%s%s",
                 static_cast<unsigned long>(writer.spilled_rows()),
                 static_cast<unsigned long>(writer.lost_rows()), writer.spill_file_path().c_str(),
                 writer.spill_error().empty() ? "" : " error=", writer.spill_error().c_str());
    return false;
}

}  // namespace rw
