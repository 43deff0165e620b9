// storage/budget_lease.h — money budgets and token quotas (per period and lifetime) exact
// across the hosts that share one PostgreSQL database (RINGWAY_DB=postgres://…). Not used
// with SQLite.
//
// A host spends a key's budget only from a lease: a slice of what is left that it took in
// the table budget_leases (PostgreSQL migration 6), one row per key and host. On such a
// host the key's BudgetTable word (storage/budget.h) counts this host's own use in the
// period (seeded from its row's committed part) and its ceiling is not the key's limit but
// the row's granted part, published here per slot. Admission stays one compare-and-swap
// against that ceiling and never touches the database; a request that does not fit asks
// the lease thread (rw-lease, never a shard, its own connection) for more and waits for
// its answer without blocking its shard (proxy/budget.cc, the gateway's lease wait list).
//
// The thread grants in one transaction: it locks the key's row (SELECT … FOR UPDATE, the
// lock every grant and every writer commit of that key takes first), sums the period's
// committed use (keys.spend_nano and keys.quota_used for a lifetime budget and quota,
// daily_usage over the period's days otherwise), the period's top-ups and the unspent part
// (granted - committed) of every other host's live lease, and raises its own grant by at
// most a slice (RINGWAY_BUDGET_LEASE_PERCENT of the limit, at least what the request
// needs) so that committed + Σ live unspent never exceeds the limit. The writer moves what it
// commits from a lease's unspent part into committed in the same transaction as the rows, so a
// commit never grows that sum. Leases live RINGWAY_BUDGET_LEASE_TTL_MS on the server's
// clock and are renewed every third of it; this host stops spending a lease a quarter of
// the TTL before it could expire (its own monotonic clock, measured from before the
// statement that renewed it), so a host cut off from PostgreSQL stops on its own before
// the others may take its unspent part. A key idle RINGWAY_BUDGET_LEASE_IDLE_MS gives back
// what this host has not reserved. Thread-safety: shard calls are lock-free but want().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "arena/zero_pages.h"
#include "storage/budget.h"
#include "storage/config.h"
#include "storage/db.h"

namespace rw {

struct BudgetLeaseSettings {
    uint32_t percent = 10;    // RINGWAY_BUDGET_LEASE_PERCENT: slice, share of the limit.
    uint32_t ttl_ms = 10000;  // RINGWAY_BUDGET_LEASE_TTL_MS.
    uint32_t idle_ms = 5000;  // RINGWAY_BUDGET_LEASE_IDLE_MS: unused this long: returned.
    uint32_t wait_ms = 2000;  // RINGWAY_BUDGET_LEASE_WAIT_MS: a parked request's bound.
};

struct BudgetLeaseStats {
    uint64_t grants;          // Grant transactions committed.
    uint64_t grant_failures;  // Grant transactions that failed (PostgreSQL unreachable).
    uint64_t granted_nano;    // Sum of what was granted.
    uint64_t returned_nano;   // Sum of what idle keys gave back.
    uint64_t grant_us_total;  // Wall time of the grant transactions.
    uint64_t renewals;
};

// The monotonic clock (CLOCK_MONOTONIC_COARSE, ms) the shards' now_ms() reads too.
[[nodiscard]] uint64_t lease_clock_ms();

// The host's name in budget_leases: hostname ':' RINGWAY_DB_LOCAL (made absolute with the
// working directory when relative).
[[nodiscard]] std::string lease_host_id(const std::string& local_path);

class BudgetLeases {
public:
    BudgetLeases(uint32_t slot_count, const BudgetLeaseSettings& settings, BudgetTable& budgets);
    ~BudgetLeases() { stop(); }
    BudgetLeases(const BudgetLeases&) = delete;
    BudgetLeases& operator=(const BudgetLeases&) = delete;

    // Opens the thread's connection (false with `error`), then starts rw-lease. `wake`
    // is called (from rw-lease) after each batch of answers, so parked requests look again.
    [[nodiscard]] bool start(const StorageConfig& config, void (*wake)(void*), void* context,
                             std::string& error);
    void stop();

    const BudgetLeaseSettings& settings() const { return settings_; }

    // Shard side. The most this host may count in `word` for period `index` now (now_ms:
    // lease_clock_ms's clock); 0 without a live lease.
    [[nodiscard]] int64_t ceiling(uint32_t slot, BudgetTable::Word word, int64_t index,
                                  uint64_t now_ms) const;
    // A key's last grant found nothing free for a moment: a request that does not fit is
    // refused at once instead of asking again.
    [[nodiscard]] bool is_exhausted(uint32_t slot, uint64_t now_ms) const;
    // Marks the slot as used now (idle detection).
    void touch(uint32_t slot, uint64_t now_ms);
    // Asks for at least need_* more (takes a short lock). period: BudgetPeriod as uint8_t.
    void want(uint32_t slot, int64_t key_id, uint8_t period, int64_t index, int64_t need_nano,
              int64_t need_tokens);
    // Bumped once per batch of answers.
    [[nodiscard]] uint64_t generation() const {
        return generation_.load(std::memory_order_acquire);
    }

    [[nodiscard]] BudgetLeaseStats stats() const;

private:
    struct Want {
        uint32_t slot;
        int64_t key_id;
        uint8_t period;
        int64_t index;
        int64_t need_nano;
        int64_t need_tokens;
    };
    // Thread side, per slot with a lease.
    struct Held {
        uint32_t slot;
        int64_t key_id;
        uint8_t period;
        int64_t index;
        bool is_returned;  // Idle: the unreserved part went back.
    };
    // Per slot, shared with the shards through atomic_ref: cell_words words.
    enum CellWord : uint32_t {
        ceiling_tokens = 0,  // BudgetTable::tokens
        ceiling_nano = 1,    // BudgetTable::nano
        period_index,
        valid_until_ms,
        used_ms,
        exhausted_until_ms,
        cell_words = 8,
    };

    // One grant's figures per word (BudgetTable::Word), read under the key's lock.
    struct Grant {
        bool has[2] = {false, false};  // The key has this limit.
        int64_t limit[2] = {0, 0};     // With the period's top-ups.
        int64_t used[2] = {0, 0};      // Committed in the period, all hosts.
        int64_t others[2] = {0, 0};    // Other hosts' live unspent parts.
        int64_t granted[2] = {0, 0};   // This host's row (granted, committed) in the period.
        int64_t committed[2] = {0, 0};
        char first_day[10];
        char end_day[10];
    };

    void run();
    bool grant(const Want& want);
    bool grant_locked(const Want& want, int64_t& granted_nano);
    bool grant_read_key(const Want& want, Grant& grant);
    bool grant_read_own(const Want& want, Grant& grant);
    void renew(uint64_t now_ms);
    void return_idle(uint64_t now_ms);
    bool return_one(Held& held);
    Held* held_find(uint32_t slot);
    void publish(uint32_t slot, int64_t index, int64_t tokens, int64_t nano, uint64_t valid_until);

    std::atomic_ref<uint64_t> cell(uint32_t slot, uint32_t word) const {
        return std::atomic_ref<uint64_t>(cells_[size_t(slot) * cell_words + word]);
    }

    BudgetLeaseSettings settings_;
    BudgetTable& budgets_;
    ZeroPages<uint64_t> cells_;
    std::string host_;
    Db db_;
    void (*wake_)(void*) = nullptr;
    void* wake_context_ = nullptr;
    std::vector<Held> held_;  // Thread only.
    uint64_t renewed_ms_ = 0;
    std::mutex mutex_;
    std::condition_variable wanted_;
    std::vector<Want> wants_;   // Under mutex_.
    bool is_stopping_ = false;  // Under mutex_.
    std::thread thread_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<uint64_t> grants_{0};
    std::atomic<uint64_t> grant_failures_{0};
    std::atomic<uint64_t> granted_nano_{0};
    std::atomic<uint64_t> returned_nano_{0};
    std::atomic<uint64_t> grant_us_total_{0};
    std::atomic<uint64_t> renewals_{0};
};

}  // namespace rw
