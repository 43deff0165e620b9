// storage/snapshot.cc — Snapshot construction and lookup, QuotaTable slots, the epoch
// publisher, and SnapshotStore::reload (control plane; reads through a read-only Db).
//
// Why the reader protocol in snapshot.h is safe (all operations seq_cst, one total
// order S): publish() stores current_ = new before epoch_ = E+1, and retires the old
// snapshot (epoch E) only after both. collect() frees E only if every ack it reads is
// > E. A reader stores its ack, then loads current_. If collect() read that reader's
// previous ack (quiescent or older), the ack store comes later in S, so the reader's
// load of current_ also comes after the store of the new pointer: it cannot see E.
#include "storage/snapshot.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/wall_clock.h"
#include "storage/json_lite.h"
#include "storage/secrets.h"

namespace rw {

std::string_view channel_kind_name(ChannelKind kind) {
    switch (kind) {
        case ChannelKind::openai: return "openai";
        case ChannelKind::anthropic: return "anthropic";
        case ChannelKind::openai_compatible: return "openai-compatible";
    }
    RW_UNREACHABLE();
}

std::string_view stream_usage_name(StreamUsage mode) {
    return mode == StreamUsage::off ? "off" : "inject";
}

bool stream_usage_parse(std::string_view text, StreamUsage& mode) {
    if (text == "inject" || text == "off") {
        mode = text == "off" ? StreamUsage::off : StreamUsage::inject;
        return true;
    }
    return false;
}

bool channel_kind_parse(std::string_view text, ChannelKind& kind) {
    if (text == "openai") {
        kind = ChannelKind::openai;
    } else if (text == "anthropic") {
        kind = ChannelKind::anthropic;
    } else if (text == "openai-compatible") {
        kind = ChannelKind::openai_compatible;
    } else {
        return false;
    }
    return true;
}

bool KeyEntry::allows_model(std::string_view model) const {
    if (allows_all_models) {
        return true;
    }
    for (const ModelPattern& allowed : model_patterns) {
        if (model_pattern_rank(allowed, model) != 0) {
            return true;
        }
    }
    return false;
}

void key_models_compile(KeyEntry& key) {
    key.model_patterns.clear();
    for (const std::string& model : key.models) {
        key.model_patterns.push_back(model_pattern_parse(model));
    }
    std::stable_sort(key.model_patterns.begin(), key.model_patterns.end(), model_pattern_precedes);
}

void channel_models_compile(ChannelEntry& channel) {
    channel.model_rules.clear();
    for (size_t i = 0; i < channel.model_map.size(); i++) {
        channel.model_rules.push_back(
            {model_pattern_parse(channel.model_map[i].first), int32_t(i)});
    }
    for (const std::string& model : channel.models) {
        channel.model_rules.push_back({model_pattern_parse(model), -1});
    }
    std::stable_sort(channel.model_rules.begin(), channel.model_rules.end(),
                     [](const ChannelModelRule& a, const ChannelModelRule& b) {
                         if ((a.map_index >= 0) != (b.map_index >= 0)) {
                             return a.map_index >= 0;  // The map's block first.
                         }
                         return model_pattern_precedes(a.pattern, b.pattern);
                     });
    channel.serves_all = channel.models.empty();
}

bool key_cidrs_parse(std::string_view json, std::vector<Cidr>& cidrs, std::string& error) {
    std::vector<std::string> texts;
    cidrs.clear();
    if (!json_parse_string_array(json, texts, error)) {
        return false;
    }
    if (texts.size() > cidr_list_entries_max) {
        error = std::string("more than ")
                    .append(std::to_string(cidr_list_entries_max))
                    .append(" entries");
        return false;
    }
    for (const std::string& text : texts) {
        Cidr cidr;
        std::string_view why;
        if (!cidr_parse(text, cidr, &why)) {
            // Appended piece by piece (GCC 12 -Wrestrict false positive, PR 105651).
            error = std::string("\"")
                        .append(std::string_view(text).substr(0, 64))
                        .append("\": ")
                        .append(why);
            return false;
        }
        cidrs.push_back(cidr);
    }
    return true;
}

// ---- Snapshot --------------------------------------------------------------------------

namespace {

void listed_add(ChannelEntry& channel, const std::string& model) {
    if (channel.listed_models.size() < models_listed_max &&
        std::find(channel.listed_models.begin(), channel.listed_models.end(), model) ==
            channel.listed_models.end()) {
        channel.listed_models.push_back(model);
    }
}

// ChannelEntry::listed_models, from its compiled rules and the live prices.
void channel_listed_models(ChannelEntry& channel, const PriceTable& prices) {
    channel.listed_models.clear();
    bool has_pattern = channel.serves_all;
    for (const ChannelModelRule& rule : channel.model_rules) {
        if (!rule.pattern.is_prefix) {
            listed_add(channel, rule.pattern.stem);
        }
        has_pattern = has_pattern || rule.pattern.is_prefix;
    }
    if (!has_pattern) {
        return;
    }
    const std::string* last = nullptr;
    for (const PriceEntry& price : prices.exact_entries()) {
        if (channel.listed_models.size() == models_listed_max) {
            return;
        }
        if ((price.channel_id != 0 && price.channel_id != channel.id) ||
            (last != nullptr && *last == price.model)) {
            continue;
        }
        bool is_served = channel.serves_all;
        for (size_t i = 0; i < channel.model_rules.size() && !is_served; i++) {
            is_served = model_pattern_rank(channel.model_rules[i].pattern, price.model) != 0;
        }
        if (is_served) {
            listed_add(channel, price.model);
            last = &price.model;
        }
    }
}

uint64_t key_hash_bucket(const KeyHash& hash) {
    uint64_t bucket = 0;
    std::memcpy(&bucket, hash.data(), sizeof(bucket));  // SHA-256 bytes are uniform.
    return bucket;
}
}  // namespace

Snapshot::Snapshot(std::vector<KeyEntry> keys, std::vector<ChannelEntry> channels,
                   PriceTable prices, std::vector<AliasEntry> aliases)
    : keys_(std::move(keys)),
      channels_(std::move(channels)),
      prices_(std::move(prices)),
      aliases_(std::move(aliases)) {
    for (KeyEntry& key : keys_) {
        key_models_compile(key);
    }
    for (ChannelEntry& channel : channels_) {
        channel_models_compile(channel);
        channel_listed_models(channel, prices_);
    }
    std::sort(aliases_.begin(), aliases_.end(),
              [](const AliasEntry& a, const AliasEntry& b) { return a.name < b.name; });
    RW_ASSERT(keys_.size() < UINT32_MAX / 4);
    const uint64_t capacity = std::bit_ceil(std::max<uint64_t>(16, keys_.size() * 2));
    table_.assign(capacity, 0);
    table_mask_ = capacity - 1;
    for (uint32_t index = 0; index < keys_.size(); index++) {
        uint64_t slot = key_hash_bucket(keys_[index].hash) & table_mask_;
        while (table_[slot] != 0) {
            // The UNIQUE constraint on key_hash makes duplicates impossible.
            RW_ASSERT(keys_[table_[slot] - 1].hash != keys_[index].hash);
            slot = (slot + 1) & table_mask_;
        }
        table_[slot] = index + 1;
    }
}

const KeyEntry* Snapshot::find_key(const KeyHash& hash) const {
    uint64_t slot = key_hash_bucket(hash) & table_mask_;
    // Terminates: the load factor is at most 1/2, so an empty slot exists.
    for (;;) {
        const uint32_t entry = table_[slot];
        if (entry == 0) {
            return nullptr;
        }
        const KeyEntry& key = keys_[entry - 1];
        // Not constant-time, and need not be: this compares hashes of what the client
        // sent, which reveal nothing about stored secrets.
        if (key.hash == hash) {
            return &key;
        }
        slot = (slot + 1) & table_mask_;
    }
}

const AliasEntry* Snapshot::find_alias(std::string_view name) const {
    const auto found = std::lower_bound(
        aliases_.begin(), aliases_.end(), name,
        [](const AliasEntry& alias, std::string_view v) { return alias.name < v; });
    return found != aliases_.end() && found->name == name ? &*found : nullptr;
}

const KeyEntry* Snapshot::find_key_by_id(int64_t id) const {
    const auto found = std::lower_bound(keys_.begin(), keys_.end(), id,
                                        [](const KeyEntry& key, int64_t v) { return key.id < v; });
    return found != keys_.end() && found->id == id ? &*found : nullptr;
}

// ---- QuotaTable ------------------------------------------------------------------------

QuotaTable::QuotaTable(uint32_t slot_count) : counters_(slot_count), slot_count_(slot_count) {
    RW_ASSERT(slot_count > 0);
}

Result<uint32_t> QuotaTable::model_slot_for(int64_t key_id, const std::string& model) {
    const auto found = model_slots_.find({key_id, model});
    if (found != model_slots_.end()) {
        return Result<uint32_t>::success(found->second);
    }
    const auto slot = static_cast<uint32_t>(model_slots_.size());
    if (slot == model_slot_count()) {
        return Result<uint32_t>::failure("more per-model limits than slots (" +
                                         std::to_string(model_slot_count()) + "); raise keys_max");
    }
    model_slots_.emplace(std::make_pair(key_id, model), slot);
    return Result<uint32_t>::success(slot);
}

Result<uint32_t> QuotaTable::slot_for_key(int64_t key_id, int64_t initial_used_tokens) {
    const auto found = slot_by_key_id_.find(key_id);
    if (found != slot_by_key_id_.end()) {
        return Result<uint32_t>::success(found->second);
    }
    if (assigned_count_ == slot_count_) {
        return Result<uint32_t>::failure("more keys than quota slots (" +
                                         std::to_string(slot_count_) + "); raise keys_max");
    }
    const uint32_t slot = assigned_count_;
    assigned_count_ += 1;
    counter(slot).store(initial_used_tokens, std::memory_order_relaxed);
    slot_by_key_id_.emplace(key_id, slot);
    RW_ASSERT(assigned_count_ <= slot_count_);
    return Result<uint32_t>::success(slot);
}

// ---- SnapshotPublisher -----------------------------------------------------------------

SnapshotPublisher::SnapshotPublisher(uint32_t reader_count)
    : acks_(std::make_unique<ReaderAck[]>(reader_count)), reader_count_(reader_count) {
    RW_ASSERT(reader_count > 0);
}

SnapshotPublisher::~SnapshotPublisher() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Snapshot* snapshot : retired_) {
        delete snapshot;
    }
    delete current_.load();
}

void SnapshotPublisher::publish(std::unique_ptr<Snapshot> snapshot) {
    RW_ASSERT(snapshot != nullptr);
    std::lock_guard<std::mutex> lock(mutex_);
    const uint64_t epoch = epoch_.load(std::memory_order_relaxed) + 1;
    snapshot->epoch_ = epoch;
    const Snapshot* old = current_.exchange(snapshot.release(), std::memory_order_seq_cst);
    epoch_.store(epoch, std::memory_order_seq_cst);  // After the pointer: see file header.
    if (old != nullptr) {
        RW_ASSERT(old->epoch_ + 1 == epoch);
        retired_.push_back(old);
    }
    (void)collect_locked();
}

uint32_t SnapshotPublisher::collect() {
    std::lock_guard<std::mutex> lock(mutex_);
    return collect_locked();
}

uint32_t SnapshotPublisher::collect_locked() {
    uint64_t ack_min = epoch_quiescent;
    for (uint32_t index = 0; index < reader_count_; index++) {
        ack_min = std::min(ack_min, acks_[index].epoch.load(std::memory_order_seq_cst));
    }
    uint32_t freed_count = 0;
    auto keep_end = std::remove_if(retired_.begin(), retired_.end(), [&](const Snapshot* s) {
        if (s->epoch_ >= ack_min) {
            return false;
        }
        delete s;
        freed_count += 1;
        return true;
    });
    retired_.erase(keep_end, retired_.end());
    return freed_count;
}

uint32_t SnapshotPublisher::retired_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return uint32_t(retired_.size());
}

// ---- SnapshotStore ---------------------------------------------------------------------

bool SnapshotStore::open(const StorageConfig& config, uint32_t reader_count, std::string& error) {
    RW_ASSERT(!db_.is_open());
    if (reader_count == 0 || reader_count > storage_shards_max) {
        error = "snapshot reader count must be in 1.." + std::to_string(storage_shards_max);
        return false;
    }
    if (!db_.open(config, DbMode::read_only, error)) {
        return false;
    }
    secret_key_ = config.secret_key;
    lease_host_ = config.lease_host;
    quotas_ = std::make_unique<QuotaTable>(config.keys_max);
    budgets_ = std::make_unique<BudgetTable>(config.keys_max);
    publisher_ = std::make_unique<SnapshotPublisher>(reader_count);
    return true;
}

// A key's `limits` column into its model_limits, each with its rate slot.
bool SnapshotStore::key_model_limits_load(KeyEntry& key, std::string_view json,
                                          std::string& error) {
    std::vector<ModelLimitSpec> specs;
    if (!json_parse_model_limits(json, specs, error)) {
        error = "key " + std::to_string(key.id) + " limits: " + error;
        return false;
    }
    for (ModelLimitSpec& spec : specs) {
        const Result<uint32_t> slot = quotas_->model_slot_for(key.id, spec.model);
        if (!slot.ok()) {
            error = slot.error;
            return false;
        }
        key.model_limits.push_back(
            {std::move(spec.model), uint32_t(spec.rpm), uint32_t(spec.tpm), slot.value});
    }
    return true;
}

bool SnapshotStore::reload_keys(std::vector<KeyEntry>& keys, std::string& error) {
    return db_.rows(
        "SELECT id, key_hash, name, key_prefix, status, quota_limit, quota_used,"
        " expires_at, models, rpm, max_concurrency, allowed_cidrs, tpm, limits,"
        " budget_nano, budget_period, spend_nano, strict FROM keys WHERE system = 0 "
        "ORDER BY id",
        [&](const Stmt& row) {
            KeyEntry key;
            key.id = row.column_int64(0);
            const std::span<const uint8_t> hash = row.column_blob(1);
            if (hash.size() != key_hash_bytes) {
                error = "key " + std::to_string(key.id) + " has a malformed key_hash";
                return false;
            }
            std::memcpy(key.hash.data(), hash.data(), key_hash_bytes);
            key.name = row.column_text(2);
            key.key_prefix = row.column_text(3);
            key.is_active = row.column_text(4) == "active";
            key.has_quota_limit = !row.column_is_null(5);
            key.quota_limit_tokens = row.column_int64(5);
            const int64_t quota_used = row.column_int64(6);
            key.expires_at_s = row.column_int64(7);  // NULL reads as 0 = never.
            key.allows_all_models = row.column_is_null(8);
            if (!key.allows_all_models &&
                !json_parse_string_array(row.column_text(8), key.models, error)) {
                error = "key " + std::to_string(key.id) + " models: " + error;
                return false;
            }
            if (!row.column_is_null(11) &&
                !key_cidrs_parse(row.column_text(11), key.allowed_cidrs, error)) {
                error = "key " + std::to_string(key.id) + " allowed_cidrs: " + error;
                return false;
            }
            key.rpm = uint32_t(std::clamp<int64_t>(row.column_int64(9), 0, UINT32_MAX));
            key.concurrency_max =
                uint32_t(std::clamp<int64_t>(row.column_int64(10), 0, UINT32_MAX));
            const Result<uint32_t> slot = quotas_->slot_for_key(key.id, quota_used);
            if (!slot.ok()) {
                error = slot.error;
                return false;
            }
            key.quota_slot = slot.value;
            key.tpm = uint32_t(std::clamp<int64_t>(row.column_int64(12), 0, UINT32_MAX));
            if (!row.column_is_null(13) &&
                !key_model_limits_load(key, row.column_text(13), error)) {
                return false;
            }
            key.has_budget = !row.column_is_null(14);
            key.budget_nano = row.column_int64(14);
            key.is_strict = row.column_int64(17) != 0;
            if (!budget_period_parse(row.column_text(15), key.period)) {
                error = "key " + std::to_string(key.id) + " has an unknown budget_period";
                return false;
            }
            if (!reload_key_budget(key, row.column_int64(16), wall_clock_unix_ms() / 1000, error)) {
                return false;
            }
            keys.push_back(std::move(key));
            return true;
        },
        error);
}

bool SnapshotStore::reload_key_budget(KeyEntry& key, int64_t spend_nano, int64_t now_s,
                                      std::string& error) {
    const int64_t index = budget_period_index(key.period, now_s);
    const int64_t start_s = budget_period_start_s(key.period, index);
    Stmt stmt;
    if (!db_.prepare("SELECT COALESCE(SUM(amount_nano), 0) FROM key_topups"
                     " WHERE key_id = ?1 AND created_at >= ?2",
                     stmt)) {
        error = db_.last_error();
        return false;
    }
    stmt.bind_int64(1, key.id);
    stmt.bind_int64(2, start_s);
    if (stmt.step() != StepStatus::row) {
        error = db_.last_error();
        return false;
    }
    key.topup_nano = std::min(stmt.column_int64(0), budget_amount_max);
    key.topup_period = index;
    stmt.reset();
    // With budget leases the words count this host's own use, seeded again when the key
    // gains or loses a limit (its lease row then starts from what this host committed). A
    // lifetime token quota is a lease's too there (SQLite counts it in QuotaTable).
    const bool is_limited = key.has_budget || key.has_quota_limit;
    const uint8_t period = static_cast<uint8_t>(static_cast<uint8_t>(key.period) |
                                                (!lease_host_.empty() && is_limited ? 0x40 : 0));
    if (budgets_->seeded_period(key.quota_slot) == period) {
        return true;  // The words count live; a reload never resets them.
    }
    if (!lease_host_.empty()) {
        int64_t tokens = 0;
        int64_t nano = 0;
        if (!lease_committed(key, index, tokens, nano, error)) {
            return false;
        }
        const uint32_t tag = BudgetTable::tag_of(index);
        budgets_->seed(key.quota_slot, BudgetTable::tokens, tag, tokens);
        budgets_->seed(key.quota_slot, BudgetTable::nano, tag, nano);
        budgets_->set_seeded_period(key.quota_slot, period);
        return true;
    }
    // First sight (startup, a new key) or a changed period: the committed use of the
    // current period. Rows still queued for the writer are not in it yet (a period change
    // while requests are in flight may count those few twice or not at all).
    int64_t used_tokens = 0;
    int64_t used_nano = spend_nano;
    if (key.period != BudgetPeriod::none) {
        char day[10];
        budget_day_text(start_s, day);
        Stmt used;
        if (!db_.prepare("SELECT COALESCE(SUM(total_tokens), 0), COALESCE(SUM(cost_nano), 0)"
                         " FROM daily_usage WHERE key_id = ?1 AND day >= ?2",
                         used)) {
            error = db_.last_error();
            return false;
        }
        used.bind_int64(1, key.id);
        used.bind_text(2, std::string_view(day, sizeof(day)));
        if (used.step() != StepStatus::row) {
            error = db_.last_error();
            return false;
        }
        used_tokens = used.column_int64(0);
        used_nano = used.column_int64(1);
        used.reset();
    }
    const uint32_t tag = BudgetTable::tag_of(index);
    budgets_->seed(key.quota_slot, BudgetTable::tokens, tag, used_tokens);
    budgets_->seed(key.quota_slot, BudgetTable::nano, tag, used_nano);
    budgets_->set_seeded_period(key.quota_slot, period);
    return true;
}

bool SnapshotStore::lease_committed(const KeyEntry& key, int64_t index, int64_t& tokens,
                                    int64_t& nano, std::string& error) {
    Stmt stmt;
    if (!db_.prepare("SELECT committed_tokens, committed_nano FROM budget_leases"
                     " WHERE key_id = ?1 AND host = ?2 AND period_index = ?3",
                     stmt)) {
        error = db_.last_error();
        return false;
    }
    stmt.bind_int64(1, key.id);
    stmt.bind_text(2, lease_host_);
    stmt.bind_int64(3, index);
    const StepStatus status = stmt.step();
    if (status == StepStatus::error) {
        error = db_.last_error();
        return false;
    }
    tokens = status == StepStatus::row ? stmt.column_int64(0) : 0;
    nano = status == StepStatus::row ? stmt.column_int64(1) : 0;
    stmt.reset();
    return true;
}

bool SnapshotStore::reload_channels(std::vector<ChannelEntry>& channels, std::string& error) {
    return db_.rows(
        "SELECT id, name, kind, base_url, api_key, models, model_map, priority,"
        " weight, enabled, allow_private_network, ca_file, stream_usage, auto_disable,"
        " health_state, health_reason, health_since_ms, probe_model FROM channels"
        " ORDER BY priority DESC, id",
        [&](const Stmt& row) {
            ChannelEntry channel;
            channel.id = row.column_int64(0);
            const std::string where = "channel " + std::to_string(channel.id);
            channel.name = row.column_text(1);
            if (!channel_kind_parse(row.column_text(2), channel.kind)) {
                error = where + " has an unknown kind";
                return false;
            }
            channel.base_url = row.column_text(3);
            if (!secret_open(secret_key_, row.column_text(4), channel.api_key, error)) {
                error = where + ": " + error;
                return false;
            }
            if (!json_parse_string_array(row.column_text(5), channel.models, error) ||
                !json_parse_string_map(row.column_text(6), channel.model_map, error)) {
                error = where + ": " + error;
                return false;
            }
            channel.priority =
                int32_t(std::clamp<int64_t>(row.column_int64(7), INT32_MIN, INT32_MAX));
            channel.weight = uint32_t(std::clamp<int64_t>(row.column_int64(8), 0, UINT32_MAX));
            channel.is_enabled = row.column_int64(9) != 0;
            channel.allow_private_network = row.column_int64(10) != 0;
            channel.ca_file = row.column_text(11);
            if (!stream_usage_parse(row.column_text(12), channel.stream_usage)) {
                error = where + " has an unknown stream_usage";
                return false;
            }
            channel.auto_disable = row.column_int64(13) != 0;
            channel.is_health_down = row.column_text(14) == "down";
            channel.health_reason = row.column_text(15);
            channel.health_since_ms = row.column_int64(16);
            channel.probe_model = row.column_text(17);
            channels.push_back(std::move(channel));
            return true;
        },
        error);
}

// Live versions only (deleted_at NULL): a deleted version prices nothing from now on,
// while the rows it priced keep their cost and price_id.
bool SnapshotStore::reload_prices(std::vector<PriceEntry>& prices, std::string& error) {
    return db_.rows(
        "SELECT id, model, channel_id, input_per_mtok, output_per_mtok,"
        " cached_input_per_mtok, cache_write_per_mtok, reasoning_per_mtok,"
        " per_request, effective_from FROM prices WHERE deleted_at IS NULL"
        " ORDER BY id",
        [&](const Stmt& row) {
            if (prices.size() == prices_max) {
                error = "more than " + std::to_string(prices_max) + " live prices";
                return false;
            }
            PriceSpec spec;
            const int64_t id = row.column_int64(0);
            spec.model = row.column_text(1);
            spec.channel_id = row.column_int64(2);  // NULL reads as 0 = any channel.
            spec.input_per_mtok = row.column_int64(3);
            spec.output_per_mtok = row.column_int64(4);
            spec.has_cached_input = !row.column_is_null(5);
            spec.cached_input_per_mtok = row.column_int64(5);
            spec.has_cache_write = !row.column_is_null(6);
            spec.cache_write_per_mtok = row.column_int64(6);
            spec.has_reasoning = !row.column_is_null(7);
            spec.reasoning_per_mtok = row.column_int64(7);
            spec.per_request = row.column_int64(8);
            spec.effective_from_s = row.column_int64(9);
            // The table's CHECKs hold the same bounds; a hand-edited row must not price
            // anything with a rate the cost arithmetic was not sized for.
            const std::string check = price_spec_check(spec);
            if (!check.empty()) {
                error = "price " + std::to_string(id) + ": " + check;
                return false;
            }
            PriceEntry entry;
            entry.id = id;
            ModelPattern pattern = model_pattern_parse(spec.model);
            entry.is_prefix = pattern.is_prefix;
            entry.model = std::move(pattern.stem);
            entry.channel_id = spec.channel_id;
            entry.effective_from_ms = spec.effective_from_s * 1000;
            entry.rates = price_rates_resolve(spec);
            prices.push_back(std::move(entry));
            return true;
        },
        error);
}

bool SnapshotStore::reload_aliases(std::vector<AliasEntry>& aliases, std::string& error) {
    return db_.rows(
        "SELECT id, name, models FROM aliases ORDER BY name",
        [&](const Stmt& row) {
            AliasEntry alias;
            alias.id = row.column_int64(0);
            alias.name = row.column_text(1);
            if (!alias_models_parse(std::string(row.column_text(2)), alias.models, error)) {
                error = "alias " + std::to_string(alias.id) + " models: " + error;
                return false;
            }
            aliases.push_back(std::move(alias));
            return true;
        },
        error);
}

bool SnapshotStore::reload(std::string& error) {
    std::lock_guard<std::mutex> lock(mutex_);
    RW_ASSERT(db_.is_open());
    std::vector<KeyEntry> keys;
    std::vector<ChannelEntry> channels;
    std::vector<PriceEntry> prices;
    std::vector<AliasEntry> aliases;
    // One read transaction so keys, channels and prices come from the same commit (WAL gives
    // the reader a stable view until COMMIT) [wal.html#concurrency].
    // PostgreSQL: REPEATABLE READ gives the three reads one snapshot, as WAL does.
    if (!db_.exec(db_.is_postgres() ? "BEGIN ISOLATION LEVEL REPEATABLE READ" : "BEGIN")) {
        error = db_.last_error();
        return false;
    }
    const bool is_ok = reload_keys(keys, error) && reload_channels(channels, error) &&
                       reload_prices(prices, error) && reload_aliases(aliases, error);
    if (!db_.exec("COMMIT") && is_ok) {
        error = db_.last_error();
        return false;
    }
    if (!is_ok) {
        return false;
    }
    publisher_->publish(std::make_unique<Snapshot>(
        std::move(keys), std::move(channels), PriceTable(std::move(prices)), std::move(aliases)));
    RW_ASSERT(publisher_->current() != nullptr);
    return true;
}

}  // namespace rw
