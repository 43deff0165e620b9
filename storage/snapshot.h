// storage/snapshot.h — what the data plane knows about keys and channels, and how it
// changes without locks. A Snapshot is immutable once published: built on the control
// plane from the database (SnapshotStore::reload), published through one
// std::atomic<const Snapshot*> (SnapshotPublisher), and freed only after every shard
// acknowledged an epoch past it. Quota counters live outside snapshots (QuotaTable), so
// a reload never resets what shards have counted.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "arena/zero_pages.h"
#include "core/assert.h"
#include "core/cidr.h"
#include "storage/aliases.h"
#include "storage/budget.h"
#include "storage/config.h"
#include "storage/db.h"
#include "storage/log_queue.h"
#include "storage/model_pattern.h"
#include "storage/prices.h"
#include "storage/result.h"

namespace rw {

constexpr uint32_t key_hash_bytes = 32;  // SHA-256.
using KeyHash = std::array<uint8_t, key_hash_bytes>;

enum class ChannelKind : uint8_t { openai, anthropic, openai_compatible };

[[nodiscard]] std::string_view channel_kind_name(ChannelKind kind);
[[nodiscard]] bool channel_kind_parse(std::string_view text, ChannelKind& kind);

// Streamed chat requests to a channel: stream_options.include_usage forced on so the
// stream can be metered (inject), or sent as the client wrote them (off: for upstreams
// that reject stream_options; such streams are billed by estimate).
enum class StreamUsage : uint8_t { inject, off };

[[nodiscard]] std::string_view stream_usage_name(StreamUsage mode);
[[nodiscard]] bool stream_usage_parse(std::string_view text, StreamUsage& mode);

// A key's limits for one model (its `limits` column), with the shared slot its rate
// buckets use (QuotaTable::model_slot_for, stable across reloads).
struct ModelLimit {
    std::string model;
    uint32_t rpm = 0;  // 0 = none.
    uint32_t tpm = 0;  // 0 = none.
    uint32_t slot = 0;
};

struct KeyEntry {
    int64_t id = 0;
    KeyHash hash{};
    std::string name;
    std::string key_prefix;  // Display only, e.g. "sk-rw-abcd".
    bool is_active = false;  // status == 'active'; revoked keys stay visible.
    bool has_quota_limit = false;
    int64_t quota_limit_tokens = 0;        // Meaningful when has_quota_limit.
    int64_t expires_at_s = 0;              // Unix seconds; 0 = never expires.
    uint32_t rpm = 0;                      // 0 = unlimited.
    uint32_t concurrency_max = 0;          // 0 = unlimited.
    uint32_t tpm = 0;                      // Tokens per minute; 0 = unlimited.
    std::vector<ModelLimit> model_limits;  // Per-model rpm/tpm (few; scanned).
    uint32_t quota_slot = 0;               // Index into QuotaTable (stable across reloads).
    bool allows_all_models = true;         // models column NULL.
    std::vector<std::string> models;       // Names and "prefix*" patterns.
    // `models` compiled by key_models_compile (snapshot load), best match first.
    std::vector<ModelPattern> model_patterns;
    // The addresses the key may be used from, parsed once at load; empty: any address.
    std::vector<Cidr> allowed_cidrs;
    // The money budget (nano-USD) and the period of both it and the token quota; top-ups
    // raise the budget of the period they were made in (topup_period, by index).
    bool has_budget = false;
    int64_t budget_nano = 0;
    BudgetPeriod period = BudgetPeriod::none;
    int64_t topup_nano = 0;
    int64_t topup_period = 0;  // The period index topup_nano belongs to.
    // A request setting no output limit gets the largest one the remaining budget and
    // token quota afford (proxy/budget.h, budget_strict_limit).
    bool is_strict = false;

    // The budget of the period with index `period_index`: budget plus its top-ups.
    [[nodiscard]] int64_t budget_limit_nano(int64_t period_index) const {
        const int64_t raise = period_index == topup_period ? topup_nano : 0;
        return budget_nano > budget_amount_max - raise ? budget_amount_max : budget_nano + raise;
    }

    // Whether the key may use the concrete model `model` (model_pattern.h's rule; the
    // patterns compiled). No allocation.
    [[nodiscard]] bool allows_model(std::string_view model) const;
    // The limits set for `model`, or nullptr. No allocation.
    [[nodiscard]] const ModelLimit* model_limit(std::string_view model) const {
        for (const ModelLimit& limit : model_limits) {
            if (limit.model == model) {
                return &limit;
            }
        }
        return nullptr;
    }
    // True when allowed_cidrs is empty or holds the client address. No allocation.
    [[nodiscard]] bool allows_address(const IpAddress& client) const {
        return allowed_cidrs.empty() || cidr_list_contains(allowed_cidrs, client);
    }
};

// A key's allowed_cidrs column, a JSON array of CIDR strings ("10.0.0.0/8"), parsed into
// blocks (at most cidr_list_entries_max). False with error naming the bad entry:
// "\"10.0.0.300/8\": not an IPv4 or IPv6 address". Control plane.
[[nodiscard]] bool key_cidrs_parse(std::string_view json, std::vector<Cidr>& cidrs,
                                   std::string& error);

// One entry of a channel's compiled model list: a `models` entry (map_index < 0: sent
// under the name asked) or a `model_map` key (sent as model_map[map_index].second).
struct ChannelModelRule {
    ModelPattern pattern;
    int32_t map_index = -1;
};

struct ChannelEntry {
    int64_t id = 0;
    std::string name;
    ChannelKind kind = ChannelKind::openai;
    std::string base_url;
    std::string api_key;  // The upstream secret; never logged.
    std::vector<std::string> models;
    std::vector<std::pair<std::string, std::string>> model_map;  // requested -> sent
    // `models` and `model_map` keys (names or "prefix*" patterns) compiled by
    // channel_models_compile (snapshot load): the map keys best match first
    // (model_pattern.h), then the `models` entries best first, so the rename is found by a
    // scan of the map block alone. serves_all: `models` is empty.
    std::vector<ChannelModelRule> model_rules;
    bool serves_all = true;
    // What GET /v1/models lists for the channel (Snapshot's constructor): its exact `models`
    // and model_map names, and where it serves every model or a pattern, the names priced
    // exactly (for any channel or this one) that it serves; at most models_listed_max.
    std::vector<std::string> listed_models;
    int32_t priority = 0;
    uint32_t weight = 1;
    bool is_enabled = true;
    bool allow_private_network = false;
    std::string ca_file;  // Empty = system CA paths.
    bool auto_disable = true;
    bool is_health_down = false;  // Persisted health (see proxy/channel_health.h).
    std::string health_reason;
    int64_t health_since_ms = 0;
    StreamUsage stream_usage = StreamUsage::inject;
    std::string probe_model;  // An idle down channel's probe (proxy/idle_probe.h); empty: none.
};

// Compile a key's `models` and a channel's `models` + `model_map` into their pattern
// lists (Snapshot's constructor calls both for every entry).
void key_models_compile(KeyEntry& key);
void channel_models_compile(ChannelEntry& channel);

// Immutable after construction. Lookups are plain reads: no SQL, no locks.
class Snapshot {
public:
    Snapshot(std::vector<KeyEntry> keys, std::vector<ChannelEntry> channels, PriceTable prices = {},
             std::vector<AliasEntry> aliases = {});

    // The key whose SHA-256 is `hash`, or nullptr. Open addressing on the hash's first
    // 8 bytes (already uniform), linear probing, load factor <= 1/2.
    [[nodiscard]] const KeyEntry* find_key(const KeyHash& hash) const;
    [[nodiscard]] const KeyEntry* find_key_by_id(int64_t id) const;
    [[nodiscard]] std::span<const KeyEntry> keys() const { return keys_; }
    [[nodiscard]] std::span<const ChannelEntry> channels() const { return channels_; }
    // The live price versions (storage/prices.h); find() prices a request.
    [[nodiscard]] const PriceTable& prices() const { return prices_; }
    // The alias named `name`, or nullptr (binary search by name).
    [[nodiscard]] const AliasEntry* find_alias(std::string_view name) const;
    [[nodiscard]] std::span<const AliasEntry> aliases() const { return aliases_; }
    [[nodiscard]] uint64_t epoch() const { return epoch_; }

private:
    friend class SnapshotPublisher;

    std::vector<KeyEntry> keys_;          // Sorted by id.
    std::vector<ChannelEntry> channels_;  // By priority desc, then id.
    PriceTable prices_;
    std::vector<AliasEntry> aliases_;  // Sorted by name.
    std::vector<uint32_t> table_;      // keys_ index + 1; 0 = empty slot.
    uint64_t table_mask_ = 0;
    uint64_t epoch_ = 0;  // Set once by publish().
};

// Per-key token counters shared by all shards, indexed by KeyEntry::quota_slot. Slots
// are assigned on the control plane the first time a key is loaded, initialised from
// keys.quota_used, and never reused (keys are revoked, not deleted), so a snapshot swap
// keeps every count.
//
// A slot holds one word: the tokens charged plus the tokens reserved by requests still in
// flight. A request of a limited key reserves an upper bound of what it can cost before it
// goes upstream (try_reserve: one compare-and-swap, so shards never admit together more
// than the limit leaves) and settles it to what it really cost when it ends (settle). The
// word therefore never passes the limit through admission; it can only pass it when a
// request costs more than its bound (counted by the caller). Keys without a limit are
// charged at the end (add_tokens). With budget leases (PostgreSQL) a lifetime quota is
// reserved from the host's lease instead (BudgetTable's tokens word, budget_lease.h): this
// word then only counts this host's charges on top of keys.quota_used at load, a lower
// bound of the key's total that refuses a spent key at the head.
class QuotaTable {
public:
    explicit QuotaTable(uint32_t slot_count);

    // Tokens charged plus tokens reserved.
    [[nodiscard]] int64_t used_tokens(uint32_t slot) const {
        RW_ASSERT(slot < slot_count_);
        return counter(slot).load(std::memory_order_relaxed);
    }
    void add_tokens(uint32_t slot, int64_t tokens) {
        RW_ASSERT(slot < slot_count_);
        counter(slot).fetch_add(tokens, std::memory_order_relaxed);
    }
    // Reserves `tokens` when charged + reserved + tokens stays within `limit`. The CAS
    // needs no ordering with other memory: the word is the whole decision.
    [[nodiscard]] bool try_reserve(uint32_t slot, int64_t tokens, int64_t limit) {
        RW_ASSERT(slot < slot_count_);
        RW_ASSERT(tokens >= 0);
        int64_t word = counter(slot).load(std::memory_order_relaxed);
        for (;;) {
            if (word > limit - tokens) {
                return false;
            }
            if (counter(slot).compare_exchange_weak(word, word + tokens,
                                                    std::memory_order_relaxed)) {
                return true;
            }
        }
    }
    // Replaces a reservation by what the request really cost (either may be larger).
    void settle(uint32_t slot, int64_t reserved_tokens, int64_t charged_tokens) {
        RW_ASSERT(slot < slot_count_);
        RW_ASSERT(reserved_tokens >= 0);
        RW_ASSERT(charged_tokens >= 0);
        counter(slot).fetch_add(charged_tokens - reserved_tokens, std::memory_order_relaxed);
    }

    // Control plane (SnapshotStore::reload, under its mutex): the slot of key_id,
    // assigned and set to initial_used_tokens on first sight. Fails when all slots
    // are taken (StorageConfig::keys_max).
    [[nodiscard]] Result<uint32_t> slot_for_key(int64_t key_id, int64_t initial_used_tokens);
    [[nodiscard]] uint32_t assigned_count() const { return assigned_count_; }
    // Control plane, likewise: the rate-limit slot of (key_id, model), assigned on first
    // sight; there are model_slot_count() of them. Fails when all are taken.
    [[nodiscard]] Result<uint32_t> model_slot_for(int64_t key_id, const std::string& model);
    [[nodiscard]] uint32_t model_slot_count() const { return slot_count_ * 4; }

private:
    std::map<std::pair<int64_t, std::string>, uint32_t> model_slots_;
    [[nodiscard]] std::atomic_ref<int64_t> counter(uint32_t slot) const {
        return std::atomic_ref<int64_t>(counters_[slot]);
    }
    ZeroPages<int64_t> counters_;  // Resident only for the pages of slots in use.
    std::unordered_map<int64_t, uint32_t> slot_by_key_id_;
    uint32_t slot_count_;
    uint32_t assigned_count_ = 0;
};

// RCU-style publication with per-reader epochs. Reader i is one shard thread.
// Contract for readers: a reader that called acquire(i) may use the returned snapshot
// (and any older one it still holds) until its next acquire(i)/quiesce(i); to keep a
// snapshot across loop turns, report the oldest epoch still held with acknowledge().
class SnapshotPublisher {
public:
    explicit SnapshotPublisher(uint32_t reader_count);
    SnapshotPublisher(const SnapshotPublisher&) = delete;
    SnapshotPublisher& operator=(const SnapshotPublisher&) = delete;
    ~SnapshotPublisher();  // Frees everything: readers must be gone.

    // Reader i (its own thread only): the current snapshot, acknowledging its epoch.
    // nullptr only before the first publish(). Three seq_cst operations; no lock.
    [[nodiscard]] const Snapshot* acquire(uint32_t reader_index) {
        RW_ASSERT(reader_index < reader_count_);
        const uint64_t epoch = epoch_.load(std::memory_order_seq_cst);
        // The ack is stored before the pointer load: a collector that missed this ack
        // ran before it, and then already published what we load (see snapshot.cc).
        acks_[reader_index].epoch.store(epoch, std::memory_order_seq_cst);
        return current_.load(std::memory_order_seq_cst);
    }
    // Reader i: "I hold nothing older than `epoch`" (epoch of a snapshot it still uses).
    void acknowledge(uint32_t reader_index, uint64_t epoch) {
        RW_ASSERT(reader_index < reader_count_);
        RW_ASSERT(epoch <= epoch_.load(std::memory_order_relaxed));
        acks_[reader_index].epoch.store(epoch, std::memory_order_seq_cst);
    }
    // Reader i: holds no snapshot at all (idle, or exiting).
    void quiesce(uint32_t reader_index) {
        RW_ASSERT(reader_index < reader_count_);
        acks_[reader_index].epoch.store(epoch_quiescent, std::memory_order_seq_cst);
    }

    // Control plane: makes `snapshot` current (taking ownership) and retires the old
    // one, then collects. Serialised by an internal mutex.
    void publish(std::unique_ptr<Snapshot> snapshot);
    // Control plane: frees retired snapshots every reader has moved past; returns how
    // many were freed. publish() calls it; call it also from a periodic timer.
    uint32_t collect();

    [[nodiscard]] const Snapshot* current() const {
        return current_.load(std::memory_order_acquire);
    }
    [[nodiscard]] uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
    [[nodiscard]] uint32_t retired_count() const;

private:
    static constexpr uint64_t epoch_quiescent = UINT64_MAX;
    struct alignas(cache_line_bytes) ReaderAck {
        std::atomic<uint64_t> epoch{epoch_quiescent};
    };

    uint32_t collect_locked();

    std::atomic<const Snapshot*> current_{nullptr};
    std::atomic<uint64_t> epoch_{0};
    std::unique_ptr<ReaderAck[]> acks_;
    uint32_t reader_count_;
    mutable std::mutex mutex_;  // Guards retired_ and publishing.
    std::vector<const Snapshot*> retired_;
};

// The control plane's handle: a read-only connection, the quota table and the
// publisher. reload() rebuilds the snapshot from committed data and publishes it; it is
// called at startup and after every admin change (Catalog does that). Thread-safe.
class SnapshotStore {
public:
    SnapshotStore() = default;
    SnapshotStore(const SnapshotStore&) = delete;
    SnapshotStore& operator=(const SnapshotStore&) = delete;

    // After Writer::open (the schema must exist). reader_count = number of shards.
    [[nodiscard]] bool open(const StorageConfig& config, uint32_t reader_count, std::string& error);
    // Loads keys, channels and live prices and publishes them. On failure the current snapshot
    // stays.
    [[nodiscard]] bool reload(std::string& error);

    [[nodiscard]] SnapshotPublisher& publisher() { return *publisher_; }
    [[nodiscard]] QuotaTable& quotas() { return *quotas_; }
    [[nodiscard]] BudgetTable& budgets() { return *budgets_; }

private:
    // The key's top-ups of the current period and, when its slot is new or its period
    // changed, its per-period words seeded from the committed usage of the period.
    [[nodiscard]] bool reload_key_budget(KeyEntry& key, int64_t spend_nano, int64_t now_s,
                                         std::string& error);
    // With budget leases: this host's committed use of the period (its budget_leases row).
    [[nodiscard]] bool lease_committed(const KeyEntry& key, int64_t index, int64_t& tokens,
                                       int64_t& nano, std::string& error);
    [[nodiscard]] bool reload_keys(std::vector<KeyEntry>& keys, std::string& error);
    [[nodiscard]] bool key_model_limits_load(KeyEntry& key, std::string_view json,
                                             std::string& error);
    [[nodiscard]] bool reload_channels(std::vector<ChannelEntry>& channels, std::string& error);
    [[nodiscard]] bool reload_prices(std::vector<PriceEntry>& prices, std::string& error);
    [[nodiscard]] bool reload_aliases(std::vector<AliasEntry>& aliases, std::string& error);

    std::mutex mutex_;  // One reload at a time (the Db is single-threaded).
    Db db_;
    std::string secret_key_;  // Opens sealed channel keys (storage/secrets.h).
    std::string lease_host_;  // PostgreSQL: budget words count this host's use (budget_lease.h).
    std::unique_ptr<QuotaTable> quotas_;
    std::unique_ptr<BudgetTable> budgets_;
    std::unique_ptr<SnapshotPublisher> publisher_;
};

}  // namespace rw
