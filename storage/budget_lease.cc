// storage/budget_lease.cc — the rw-lease thread and the per-slot ceilings the shards read
// (see budget_lease.h).
#include "storage/budget_lease.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/assert.h"
#include "core/wall_clock.h"

namespace rw {
namespace {

// The server's clock in ms: every host judges expiry by it.
#define RW_PG_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

// A grant that found less than was needed: requests that do not fit are refused at once
// for this long rather than each asking again.
constexpr uint64_t exhausted_hold_ms = 100;

void period_days(uint8_t period, int64_t index, char* first, char* end) {
    if (static_cast<BudgetPeriod>(period) == BudgetPeriod::none) {
        std::copy_n("0000-00-00", 10, first);
        std::copy_n("9999-99-99", 10, end);
        return;
    }
    const auto kind = static_cast<BudgetPeriod>(period);
    budget_day_text(budget_period_start_s(kind, index), first);
    budget_day_text(budget_period_start_s(kind, index + 1), end);
}

int64_t sum_clamp(int64_t a, int64_t b) {
    return std::clamp<int64_t>(a + b, 0, budget_amount_max);
}

}  // namespace

uint64_t lease_clock_ms() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return uint64_t(now.tv_sec) * 1000 + uint64_t(now.tv_nsec) / 1000000;
}

std::string lease_host_id(const std::string& local_path) {
    char name[256] = {};
    if (gethostname(name, sizeof(name) - 1) != 0) {
        std::copy_n("localhost", 9, name);
    }
    std::string path = local_path;
    if (path.empty() || path.front() != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof(cwd)) != nullptr) {
            path = std::string(cwd) + "/" + path;
        }
    }
    return std::string(name) + ":" + path;
}

BudgetLeases::BudgetLeases(uint32_t slot_count, const BudgetLeaseSettings& settings,
                           BudgetTable& budgets)
    : settings_(settings), budgets_(budgets), cells_(size_t(slot_count) * cell_words) {}

bool BudgetLeases::start(const StorageConfig& config, void (*wake)(void*), void* context,
                         std::string& error) {
    RW_ASSERT(!config.lease_host.empty());
    host_ = config.lease_host;
    wake_ = wake;
    wake_context_ = context;
    if (!db_.open(config, DbMode::read_write, error)) {
        return false;
    }
    thread_ = std::thread([this] {
        (void)pthread_setname_np(pthread_self(), "rw-lease");
        run();
    });
    return true;
}

void BudgetLeases::stop() {
    {
        std::lock_guard lock(mutex_);
        is_stopping_ = true;
    }
    wanted_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

int64_t BudgetLeases::ceiling(uint32_t slot, BudgetTable::Word word, int64_t index,
                              uint64_t now_ms) const {
    if (int64_t(cell(slot, period_index).load(std::memory_order_acquire)) != index ||
        cell(slot, valid_until_ms).load(std::memory_order_relaxed) <= now_ms) {
        return 0;
    }
    return int64_t(cell(slot, word).load(std::memory_order_seq_cst));
}

bool BudgetLeases::is_exhausted(uint32_t slot, uint64_t now_ms) const {
    return cell(slot, exhausted_until_ms).load(std::memory_order_relaxed) > now_ms;
}

void BudgetLeases::touch(uint32_t slot, uint64_t now_ms) {
    std::atomic_ref<uint64_t> used = cell(slot, used_ms);
    if (used.load(std::memory_order_relaxed) != now_ms) {
        used.store(now_ms, std::memory_order_relaxed);
    }
}

void BudgetLeases::want(uint32_t slot, int64_t key_id, uint8_t period, int64_t index,
                        int64_t need_nano, int64_t need_tokens) {
    {
        std::lock_guard lock(mutex_);
        wants_.push_back({slot, key_id, period, index, need_nano, need_tokens});
    }
    wanted_.notify_one();
}

BudgetLeaseStats BudgetLeases::stats() const {
    return {grants_.load(std::memory_order_relaxed),
            grant_failures_.load(std::memory_order_relaxed),
            granted_nano_.load(std::memory_order_relaxed),
            returned_nano_.load(std::memory_order_relaxed),
            grant_us_total_.load(std::memory_order_relaxed),
            renewals_.load(std::memory_order_relaxed)};
}

void BudgetLeases::publish(uint32_t slot, int64_t index, int64_t tokens, int64_t nano,
                           uint64_t valid_until) {
    // No period while the ceilings change, then the ceilings before the period index
    // (release): a shard that reads the new index reads the new ceilings, never an older
    // period's larger one.
    cell(slot, period_index).store(uint64_t(-1), std::memory_order_seq_cst);
    cell(slot, ceiling_tokens).store(uint64_t(tokens), std::memory_order_seq_cst);
    cell(slot, ceiling_nano).store(uint64_t(nano), std::memory_order_seq_cst);
    cell(slot, valid_until_ms).store(valid_until, std::memory_order_relaxed);
    cell(slot, period_index).store(uint64_t(index), std::memory_order_release);
}

BudgetLeases::Held* BudgetLeases::held_find(uint32_t slot) {
    for (Held& held : held_) {
        if (held.slot == slot) {
            return &held;
        }
    }
    return nullptr;
}

void BudgetLeases::run() {
    std::vector<Want> batch;
    const uint64_t tick_ms = std::max<uint64_t>(
        5, std::min<uint64_t>(settings_.ttl_ms / 3, std::max(settings_.idle_ms / 2, 5u)));
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wanted_.wait_for(lock, std::chrono::milliseconds(tick_ms),
                             [this] { return is_stopping_ || !wants_.empty(); });
            if (is_stopping_) {
                return;
            }
            batch.swap(wants_);
        }
        if (!batch.empty()) {
            // One grant per slot: the largest need asked for.
            std::sort(batch.begin(), batch.end(),
                      [](const Want& a, const Want& b) { return a.slot < b.slot; });
            for (size_t at = 0; at < batch.size();) {
                Want merged = batch[at];
                size_t next = at + 1;
                for (; next < batch.size() && batch[next].slot == merged.slot; next++) {
                    merged.need_nano = std::max(merged.need_nano, batch[next].need_nano);
                    merged.need_tokens = std::max(merged.need_tokens, batch[next].need_tokens);
                    merged.index = std::max(merged.index, batch[next].index);
                }
                (void)grant(merged);
                at = next;
            }
            batch.clear();
            generation_.fetch_add(1, std::memory_order_acq_rel);
            if (wake_ != nullptr) {
                wake_(wake_context_);
            }
        }
        const uint64_t now_ms = lease_clock_ms();
        if (now_ms >= renewed_ms_ + settings_.ttl_ms / 3) {
            renew(now_ms);
        }
        return_idle(now_ms);
    }
}

bool BudgetLeases::grant(const Want& want) {
    const uint64_t started_ms = lease_clock_ms();
    const auto started = std::chrono::steady_clock::now();
    int64_t granted_nano = 0;
    bool is_done = db_.exec("BEGIN") && grant_locked(want, granted_nano) && db_.exec("COMMIT");
    if (!is_done) {
        std::fprintf(stderr, "ringway: budget lease for key %lld failed: %s\n",
                     (long long)want.key_id, db_.last_error().c_str());
        if (db_.in_transaction()) {
            (void)db_.exec("ROLLBACK");
        }
        (void)db_.pg_reconnect();
        grant_failures_.fetch_add(1, std::memory_order_relaxed);
        cell(want.slot, exhausted_until_ms)
            .store(started_ms + exhausted_hold_ms, std::memory_order_relaxed);
        return false;
    }
    grants_.fetch_add(1, std::memory_order_relaxed);
    granted_nano_.fetch_add(uint64_t(granted_nano), std::memory_order_relaxed);
    grant_us_total_.fetch_add(uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                                           std::chrono::steady_clock::now() - started)
                                           .count()),
                              std::memory_order_relaxed);
    return true;
}

// Inside BEGIN: the key's row locked (FOR UPDATE), its limits, the period's committed use
// and top-ups, and the other hosts' live unspent parts. False: a statement failed; a key
// that is gone leaves `grant` without limits.
bool BudgetLeases::grant_read_key(const Want& want, Grant& grant) {
    Stmt key;
    if (!db_.prepare("SELECT budget_nano, quota_limit, spend_nano, quota_used FROM keys"
                     " WHERE id = ?1 FOR UPDATE",
                     key)) {
        return false;
    }
    key.bind_int64(1, want.key_id);
    const StepStatus status = key.step();
    if (status != StepStatus::row) {
        return status == StepStatus::done;  // The key is gone: nothing to grant.
    }
    // A lifetime period's committed use is the key's lifetime totals (spend_nano,
    // quota_used: the writer moves them with the rows); a period's, its days' sums below.
    const auto period = static_cast<BudgetPeriod>(want.period);
    grant.has[BudgetTable::nano] = !key.column_is_null(0);
    grant.has[BudgetTable::tokens] = !key.column_is_null(1);
    grant.limit[BudgetTable::nano] = grant.has[BudgetTable::nano] ? key.column_int64(0) : 0;
    grant.limit[BudgetTable::tokens] = grant.has[BudgetTable::tokens] ? key.column_int64(1) : 0;
    grant.used[BudgetTable::nano] = key.column_int64(2);
    grant.used[BudgetTable::tokens] = key.column_int64(3);
    key.reset();
    Stmt sums;
    if (!db_.prepare("SELECT COALESCE((SELECT SUM(total_tokens) FROM daily_usage WHERE key_id = ?1"
                     " AND day >= ?2 AND day < ?3), 0), COALESCE((SELECT SUM(cost_nano) FROM"
                     " daily_usage WHERE key_id = ?1 AND day >= ?2 AND day < ?3), 0),"
                     " COALESCE((SELECT SUM(amount_nano) FROM key_topups WHERE key_id = ?1 AND"
                     " created_at >= ?4), 0),"
                     " COALESCE((SELECT SUM(GREATEST(granted_tokens - committed_tokens, 0)) FROM"
                     " budget_leases WHERE key_id = ?1 AND host <> ?5 AND period_index = ?6 AND"
                     " expires_at_ms > " RW_PG_NOW_MS "), 0),"
                     " COALESCE((SELECT SUM(GREATEST(granted_nano - committed_nano, 0)) FROM"
                     " budget_leases WHERE key_id = ?1 AND host <> ?5 AND period_index = ?6 AND"
                     " expires_at_ms > " RW_PG_NOW_MS "), 0)",
                     sums)) {
        return false;
    }
    sums.bind_int64(1, want.key_id);
    sums.bind_text(2, std::string_view(grant.first_day, 10));
    sums.bind_text(3, std::string_view(grant.end_day, 10));
    sums.bind_int64(4, budget_period_start_s(period, want.index));
    sums.bind_text(5, host_);
    sums.bind_int64(6, want.index);
    if (sums.step() != StepStatus::row) {
        return false;
    }
    if (period != BudgetPeriod::none) {
        grant.used[BudgetTable::tokens] = sums.column_int64(0);
        grant.used[BudgetTable::nano] = sums.column_int64(1);
    }
    grant.limit[BudgetTable::nano] =
        sum_clamp(grant.limit[BudgetTable::nano], sums.column_int64(2));
    grant.others[BudgetTable::tokens] = sums.column_int64(3);
    grant.others[BudgetTable::nano] = sums.column_int64(4);
    sums.reset();
    return true;
}

// This host's row: its grant goes on in the same period while live; a row of another
// period starts from nothing, and an expired one keeps only what was committed (its
// unspent part may already be another host's).
bool BudgetLeases::grant_read_own(const Want& want, Grant& grant) {
    Stmt own;
    if (!db_.prepare("SELECT period_index, granted_tokens, granted_nano, committed_tokens,"
                     " committed_nano, expires_at_ms > " RW_PG_NOW_MS
                     " FROM budget_leases WHERE key_id = ?1 AND host = ?2",
                     own)) {
        return false;
    }
    own.bind_int64(1, want.key_id);
    own.bind_text(2, host_);
    const StepStatus status = own.step();
    if (status == StepStatus::error) {
        return false;
    }
    if (status == StepStatus::row && own.column_int64(0) == want.index) {
        const bool is_live = own.column_text(5) == "t";
        for (const BudgetTable::Word word : {BudgetTable::tokens, BudgetTable::nano}) {
            grant.committed[word] = own.column_int64(3 + word);
            grant.granted[word] = is_live ? own.column_int64(1 + word) : grant.committed[word];
        }
    }
    own.reset();
    return true;
}

// Inside BEGIN: what is free computed under the key's lock, this host's row raised by at
// most a slice and published.
bool BudgetLeases::grant_locked(const Want& want, int64_t& granted_nano) {
    const uint64_t started_ms = lease_clock_ms();
    Grant grant;
    period_days(want.period, want.index, grant.first_day, grant.end_day);
    if (!grant_read_key(want, grant) || !grant_read_own(want, grant)) {
        return false;
    }
    const int64_t need[2] = {want.need_tokens, want.need_nano};
    int64_t add[2] = {0, 0};
    bool is_short = false;
    for (const BudgetTable::Word word : {BudgetTable::tokens, BudgetTable::nano}) {
        if (!grant.has[word]) {
            continue;
        }
        const int64_t free = grant.limit[word] - grant.used[word] - grant.others[word] -
                             std::max<int64_t>(grant.granted[word] - grant.committed[word], 0);
        const int64_t slice =
            std::max<int64_t>(grant.limit[word] / 100 * settings_.percent, need[word]);
        add[word] = std::clamp<int64_t>(std::min(slice, free), 0, budget_amount_max);
        // The host's word counts what it committed (seeded from committed_*) even where
        // nothing was granted yet (the key had no such limit when the row was made, or a
        // charge went past its reservation): the grant adds to that, or its ceiling would
        // sit below the word. The unspent part above counted such a row as 0.
        grant.granted[word] =
            sum_clamp(std::max(grant.granted[word], grant.committed[word]), add[word]);
        is_short = is_short || add[word] < need[word];
    }
    Stmt upsert;
    if (!db_.prepare("INSERT INTO budget_leases (key_id, host, period_index, first_day, end_day,"
                     " granted_tokens, granted_nano, committed_tokens, committed_nano,"
                     " expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, " RW_PG_NOW_MS
                     " + ?10) ON CONFLICT (key_id, host) DO UPDATE SET period_index ="
                     " excluded.period_index, first_day = excluded.first_day, end_day ="
                     " excluded.end_day, granted_tokens = excluded.granted_tokens, granted_nano ="
                     " excluded.granted_nano, committed_tokens = excluded.committed_tokens,"
                     " committed_nano = excluded.committed_nano, expires_at_ms ="
                     " excluded.expires_at_ms",
                     upsert)) {
        return false;
    }
    upsert.bind_int64(1, want.key_id);
    upsert.bind_text(2, host_);
    upsert.bind_int64(3, want.index);
    upsert.bind_text(4, std::string_view(grant.first_day, 10));
    upsert.bind_text(5, std::string_view(grant.end_day, 10));
    upsert.bind_int64(6, grant.granted[BudgetTable::tokens]);
    upsert.bind_int64(7, grant.granted[BudgetTable::nano]);
    upsert.bind_int64(8, grant.committed[BudgetTable::tokens]);
    upsert.bind_int64(9, grant.committed[BudgetTable::nano]);
    upsert.bind_int64(10, settings_.ttl_ms);
    if (!db_.step_done(upsert)) {
        return false;
    }
    publish(want.slot, want.index, grant.granted[BudgetTable::tokens],
            grant.granted[BudgetTable::nano], started_ms + settings_.ttl_ms - settings_.ttl_ms / 4);
    cell(want.slot, exhausted_until_ms)
        .store(is_short ? started_ms + exhausted_hold_ms : 0, std::memory_order_relaxed);
    Held* held = held_find(want.slot);
    if (held == nullptr) {
        held_.push_back({});
        held = &held_.back();
    }
    *held = {want.slot, want.key_id, want.period, want.index, false};
    granted_nano = add[BudgetTable::nano];
    return true;
}

// Every live lease of this host gets a new TTL in one statement. A slot whose local
// validity ended before the statement returned is not extended here: its row may have
// expired on the server meanwhile (its next grant starts from what was committed).
void BudgetLeases::renew(uint64_t now_ms) {
    renewed_ms_ = now_ms;
    Stmt stmt;
    if (!db_.prepare("UPDATE budget_leases SET expires_at_ms = " RW_PG_NOW_MS
                     " + ?2 WHERE host = ?1 AND expires_at_ms > " RW_PG_NOW_MS,
                     stmt)) {
        (void)db_.pg_reconnect();
        return;
    }
    stmt.bind_text(1, host_);
    stmt.bind_int64(2, settings_.ttl_ms);
    if (!db_.step_done(stmt)) {
        (void)db_.pg_reconnect();
        return;
    }
    renewals_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t done_ms = lease_clock_ms();
    for (const Held& held : held_) {
        std::atomic_ref<uint64_t> valid = cell(held.slot, valid_until_ms);
        if (done_ms < valid.load(std::memory_order_relaxed)) {
            valid.store(now_ms + settings_.ttl_ms - settings_.ttl_ms / 4,
                        std::memory_order_relaxed);
        }
    }
}

void BudgetLeases::return_idle(uint64_t now_ms) {
    for (size_t at = 0; at < held_.size();) {
        Held& held = held_[at];
        const uint64_t used = cell(held.slot, used_ms).load(std::memory_order_relaxed);
        const int64_t index = budget_period_index(static_cast<BudgetPeriod>(held.period),
                                                  wall_clock_unix_ms() / 1000);
        if (index != held.index) {
            held_[at] = held_.back();  // A past period's lease: nothing to give back.
            held_.pop_back();
            continue;
        }
        if (!held.is_returned && used + settings_.idle_ms <= now_ms) {
            held.is_returned = return_one(held);
        }
        at++;
    }
}

// Lowers the local ceilings to what is reserved now, then gives the rest back. A shard
// that reserved between the two reads sees the lowered ceiling after its compare-and-swap
// (budget.cc) and takes its reservation back; what it took is not given back either way.
bool BudgetLeases::return_one(Held& held) {
    if (int64_t(cell(held.slot, period_index).load(std::memory_order_acquire)) != held.index) {
        return true;
    }
    const uint32_t tag = BudgetTable::tag_of(held.index);
    int64_t give[2] = {0, 0};
    for (const BudgetTable::Word word : {BudgetTable::tokens, BudgetTable::nano}) {
        const auto ceiling = int64_t(cell(held.slot, word).load(std::memory_order_seq_cst));
        const int64_t before = budgets_.used(held.slot, word, tag);
        if (before >= ceiling) {
            continue;
        }
        cell(held.slot, word).store(uint64_t(before), std::memory_order_seq_cst);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        const int64_t after = budgets_.used(held.slot, word, tag);
        give[word] = ceiling - std::max(before, after);
    }
    if (give[0] <= 0 && give[1] <= 0) {
        return true;
    }
    Stmt stmt;
    if (!db_.prepare("UPDATE budget_leases SET granted_tokens = granted_tokens - ?4,"
                     " granted_nano = granted_nano - ?5 WHERE key_id = ?1 AND host = ?2 AND"
                     " period_index = ?3",
                     stmt)) {
        return false;
    }
    stmt.bind_int64(1, held.key_id);
    stmt.bind_text(2, host_);
    stmt.bind_int64(3, held.index);
    stmt.bind_int64(4, std::max<int64_t>(give[0], 0));
    stmt.bind_int64(5, std::max<int64_t>(give[1], 0));
    if (!db_.step_done(stmt)) {
        (void)db_.pg_reconnect();
        return false;  // Kept by the row until it expires; this host no longer spends it.
    }
    returned_nano_.fetch_add(uint64_t(std::max<int64_t>(give[1], 0)), std::memory_order_relaxed);
    return true;
}

}  // namespace rw
