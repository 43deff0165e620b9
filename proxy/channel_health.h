// proxy/channel_health.h — one health state per channel, shared by every shard (atomics,
// like KeyLimits), judged from classified failures:
//   auth   (the provider refused the channel's own key: 401/403) takes the channel down
//          at once;
//   rate   (429) skips it until the provider's Retry-After (capped) has passed; it stays up;
//   server (5xx, connect errors, timeouts) takes it down when the failures in a sliding
//          window reach a count and a ratio of its outcomes.
// A down channel recovers half-open: once its backoff (doubling from RINGWAY_CHANNEL_
// BACKOFF_MS up to RINGWAY_CHANNEL_BACKOFF_MAX_MS) has passed, exactly one live request
// takes it as its first candidate (judge() answers `trial` to one caller only); that
// trial's outcome brings the channel up or keeps it down for the next, doubled backoff.
// A channel with auto_disable off is never taken down. Changes bump a version; the
// persister (services) writes them through the writer. Any thread; no locks, no allocation
// after construction. Health is advisory: two shards racing may both count a failure a
// window rotation dropped, never corrupt a state.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/limits.h"

namespace rw {

struct HealthSettings {
    uint32_t window_ms = 60000;     // The sliding window of server failures.
    uint32_t failures_min = 5;      // Failures in the window that may take a channel down...
    uint32_t failure_percent = 50;  // ... when they are at least this share of its outcomes.
    uint32_t backoff_ms = 10000;    // First wait before a trial; doubles per failed trial.
    uint32_t backoff_max_ms = 600000;
    uint32_t retry_after_max_ms = 60000;  // Cap on a 429's Retry-After.
};

enum class FailureKind : uint8_t { auth, rate, server };
enum class HealthReason : uint8_t { none, auth, server, probe };

[[nodiscard]] std::string_view health_reason_name(HealthReason reason);

// What routing may do with a channel now.
enum class Verdict : uint8_t {
    use,           // Up.
    rate_limited,  // Up, but inside a 429's Retry-After: tried only as a last resort.
    down,          // Not tried.
    trial,         // Down, its backoff passed, and this caller holds its one trial.
};

// A failure as the attempt saw it: its kind, and what the operator is shown.
struct FailureReport {
    FailureKind kind;
    uint16_t status;         // The upstream's HTTP status; 0 when none (connect, timeout).
    uint32_t retry_after_s;  // rate: the provider's Retry-After (0: not given).
    std::string_view what;   // For the last error when status is 0 (a Fault's name).
};

// A copy of one channel's health for the admin API and the persister.
struct HealthView {
    bool is_known = false;  // The board has seen the channel.
    bool is_down = false;
    HealthReason reason = HealthReason::none;
    int64_t since_unix_ms = 0;     // Of the last up/down change.
    uint64_t rate_limited_ms = 0;  // Left of a 429's Retry-After.
    uint64_t retry_in_ms = 0;      // Down: until the next trial may start.
    uint32_t version = 0;          // Bumped by every up/down change.
    char last_error[48] = {};      // "HTTP 401", "upstream_unreachable"...
};

class ChannelHealthBoard {
public:
    explicit ChannelHealthBoard(const HealthSettings& settings);
    ~ChannelHealthBoard();
    ChannelHealthBoard(const ChannelHealthBoard&) = delete;
    ChannelHealthBoard& operator=(const ChannelHealthBoard&) = delete;

    // Routing (shard): the verdict for a channel at now_ms (a monotonic ms clock shared
    // by every caller). A `trial` verdict must be followed by succeeded(), failed() or
    // trial_abandoned() with is_trial.
    [[nodiscard]] Verdict judge(int64_t channel_id, uint64_t now_ms);
    void succeeded(int64_t channel_id, uint64_t now_ms, bool is_trial);
    void failed(int64_t channel_id, bool auto_disable, const FailureReport& report, uint64_t now_ms,
                bool is_trial);
    // The trial's request ended without an outcome on the channel (it never got there).
    void trial_abandoned(int64_t channel_id);

    // Control plane: a channel persisted down comes back down (a trial after one backoff);
    // reset() brings a channel up at once (an operator's probe succeeded).
    void restore_down(int64_t channel_id, HealthReason reason, int64_t since_unix_ms,
                      uint64_t now_ms);
    void reset(int64_t channel_id, uint64_t now_ms);
    [[nodiscard]] HealthView view(int64_t channel_id, uint64_t now_ms) const;
    // The channel ids the board tracks, for the persister and the metrics (slot order).
    [[nodiscard]] int64_t channel_at(uint32_t slot) const;
    [[nodiscard]] uint64_t transitions_down() const {
        return transitions_down_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] uint64_t transitions_up() const {
        return transitions_up_.load(std::memory_order_relaxed);
    }

private:
    struct Slot;
    [[nodiscard]] Slot* find(int64_t channel_id) const;
    [[nodiscard]] Slot* find_or_add(int64_t channel_id);
    void take_down(Slot& slot, HealthReason reason, const FailureReport& report, uint64_t now_ms,
                   bool is_trial);
    void bring_up(Slot& slot);
    [[nodiscard]] bool window_says_down(Slot& slot, uint64_t now_ms, bool is_failure);

    HealthSettings settings_;
    std::unique_ptr<Slot[]> slots_;  // channel_states_max, open addressing by id.
    std::atomic<uint64_t> transitions_down_{0};
    std::atomic<uint64_t> transitions_up_{0};
};

// CLOCK_MONOTONIC_COARSE in ms: the shards' clock (Shard::now_ms), for other threads.
[[nodiscard]] uint64_t health_clock_ms();

}  // namespace rw
