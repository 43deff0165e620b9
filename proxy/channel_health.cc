// proxy/channel_health.cc — the shared channel health board (see channel_health.h).
// Every field of a slot is an atomic of its own. The state word is the decision: changes
// of up/down go through a compare-and-swap on it, so two shards cannot both take a
// channel down (or both win its trial); the fields around it (reason, times, last error)
// are written by the winner before it bumps the version with release, and read by the
// persister after an acquire of the version.
#include "proxy/channel_health.h"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/assert.h"
#include "core/log.h"
#include "core/wall_clock.h"

namespace rw {

namespace {

constexpr uint8_t state_up = 0;
constexpr uint8_t state_down = 1;
constexpr uint8_t state_trial = 2;  // Down, and one request holds the trial.

}  // namespace

struct ChannelHealthBoard::Slot {
    std::atomic<int64_t> channel_id{0};  // 0: free; claimed once by CAS, never released.
    std::atomic<uint8_t> state{state_up};
    std::atomic<uint8_t> reason{0};
    std::atomic<uint32_t> version{0};
    std::atomic<int64_t> since_unix_ms{0};
    std::atomic<uint64_t> retry_at_ms{0};    // Down: the next trial may start then.
    std::atomic<uint32_t> backoff_ms{0};     // Down: the wait that set retry_at_ms.
    std::atomic<uint64_t> rate_until_ms{0};  // Up: a 429's Retry-After ends then.
    // Server outcomes in the current and the previous window (a sliding estimate).
    std::atomic<uint64_t> window_start_ms{0};
    std::atomic<uint32_t> current_total{0};
    std::atomic<uint32_t> current_failures{0};
    std::atomic<uint32_t> previous_total{0};
    std::atomic<uint32_t> previous_failures{0};
    std::atomic<uint16_t> last_status{0};
    char last_error[sizeof(HealthView::last_error)] = {};  // Written by the transition winner.
};

std::string_view health_reason_name(HealthReason reason) {
    switch (reason) {
        case HealthReason::none: return "";
        case HealthReason::auth: return "auth";
        case HealthReason::server: return "server";
        case HealthReason::probe: return "probe";
    }
    return "";
}

uint64_t health_clock_ms() {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return uint64_t(now.tv_sec) * 1000 + uint64_t(now.tv_nsec) / 1000000;
}

ChannelHealthBoard::ChannelHealthBoard(const HealthSettings& settings)
    : settings_(settings), slots_(new Slot[channel_states_max]) {
    RW_ASSERT(settings_.backoff_ms > 0);
    RW_ASSERT(settings_.backoff_max_ms >= settings_.backoff_ms);
}

ChannelHealthBoard::~ChannelHealthBoard() = default;

ChannelHealthBoard::Slot* ChannelHealthBoard::find(int64_t channel_id) const {
    RW_ASSERT(channel_id > 0);
    const uint64_t start = static_cast<uint64_t>(channel_id) * 0x9E3779B97F4A7C15ull;
    for (uint32_t probe = 0; probe < channel_states_max; probe++) {
        Slot& slot = slots_[(start + probe) & (channel_states_max - 1)];
        const int64_t id = slot.channel_id.load(std::memory_order_acquire);
        if (id == channel_id) {
            return &slot;
        }
        if (id == 0) {
            return nullptr;
        }
    }
    return nullptr;
}

ChannelHealthBoard::Slot* ChannelHealthBoard::find_or_add(int64_t channel_id) {
    RW_ASSERT(channel_id > 0);
    const uint64_t start = static_cast<uint64_t>(channel_id) * 0x9E3779B97F4A7C15ull;
    for (uint32_t probe = 0; probe < channel_states_max; probe++) {
        Slot& slot = slots_[(start + probe) & (channel_states_max - 1)];
        int64_t id = slot.channel_id.load(std::memory_order_acquire);
        if (id == 0 &&
            slot.channel_id.compare_exchange_strong(id, channel_id, std::memory_order_acq_rel)) {
            return &slot;
        }
        if (id == channel_id) {
            return &slot;
        }
    }
    return nullptr;  // More channels than slots: the rest are judged always up.
}

Verdict ChannelHealthBoard::judge(int64_t channel_id, uint64_t now_ms) {
    Slot* slot = find(channel_id);
    if (slot == nullptr) {
        return Verdict::use;
    }
    uint8_t state = slot->state.load(std::memory_order_acquire);
    if (state == state_up) {
        return now_ms < slot->rate_until_ms.load(std::memory_order_relaxed) ? Verdict::rate_limited
                                                                            : Verdict::use;
    }
    if (state == state_trial || now_ms < slot->retry_at_ms.load(std::memory_order_relaxed)) {
        return Verdict::down;
    }
    // One caller wins the trial; the others keep seeing the channel down.
    return slot->state.compare_exchange_strong(state, state_trial, std::memory_order_acq_rel)
               ? Verdict::trial
               : Verdict::down;
}

void ChannelHealthBoard::bring_up(Slot& slot) {
    slot.reason.store(0, std::memory_order_relaxed);
    slot.backoff_ms.store(0, std::memory_order_relaxed);
    slot.previous_total.store(0, std::memory_order_relaxed);
    slot.previous_failures.store(0, std::memory_order_relaxed);
    slot.current_total.store(0, std::memory_order_relaxed);
    slot.current_failures.store(0, std::memory_order_relaxed);
    slot.since_unix_ms.store(wall_clock_unix_ms(), std::memory_order_relaxed);
    slot.state.store(state_up, std::memory_order_release);
    slot.version.fetch_add(1, std::memory_order_release);
    transitions_up_.fetch_add(1, std::memory_order_relaxed);
    RW_LOG_WARN("event=channel_up channel_id=%ld",
                static_cast<long>(slot.channel_id.load(std::memory_order_relaxed)));
}

void ChannelHealthBoard::succeeded(int64_t channel_id, uint64_t now_ms, bool is_trial) {
    Slot* slot = is_trial ? find(channel_id) : find_or_add(channel_id);
    if (slot == nullptr) {
        return;
    }
    if (is_trial) {
        RW_ASSERT(slot->state.load(std::memory_order_relaxed) == state_trial);
        bring_up(*slot);
        return;
    }
    if (slot->state.load(std::memory_order_relaxed) == state_up) {
        [[maybe_unused]] const bool is_down = window_says_down(*slot, now_ms, false);
    }
}

// Counts one server outcome into the sliding window and says whether the failures now
// pass both thresholds. The window rotates by CAS on its start: one shard rotates, the
// others count into whichever window they read (advisory, see the header).
bool ChannelHealthBoard::window_says_down(Slot& slot, uint64_t now_ms, bool is_failure) {
    uint64_t start = slot.window_start_ms.load(std::memory_order_relaxed);
    const uint64_t window = settings_.window_ms;
    if (now_ms >= start + window &&
        slot.window_start_ms.compare_exchange_strong(start, now_ms, std::memory_order_relaxed)) {
        const bool is_adjacent = now_ms < start + 2 * window;
        slot.previous_total.store(
            is_adjacent ? slot.current_total.load(std::memory_order_relaxed) : 0,
            std::memory_order_relaxed);
        slot.previous_failures.store(
            is_adjacent ? slot.current_failures.load(std::memory_order_relaxed) : 0,
            std::memory_order_relaxed);
        slot.current_total.store(0, std::memory_order_relaxed);
        slot.current_failures.store(0, std::memory_order_relaxed);
        start = now_ms;
    }
    const uint32_t total = slot.current_total.fetch_add(1, std::memory_order_relaxed) + 1;
    const uint32_t failures =
        slot.current_failures.fetch_add(is_failure ? 1 : 0, std::memory_order_relaxed) +
        (is_failure ? 1 : 0);
    // The previous window weighs by how much of it still lies inside the sliding window.
    const uint64_t elapsed = now_ms > start ? std::min<uint64_t>(now_ms - start, window) : 0;
    const uint64_t weight = window - elapsed;
    const uint64_t window_total =
        total + slot.previous_total.load(std::memory_order_relaxed) * weight / window;
    const uint64_t window_failures =
        failures + slot.previous_failures.load(std::memory_order_relaxed) * weight / window;
    return is_failure && window_failures >= settings_.failures_min &&
           window_failures * 100 >= uint64_t(settings_.failure_percent) * window_total;
}

void ChannelHealthBoard::take_down(Slot& slot, HealthReason reason, const FailureReport& report,
                                   uint64_t now_ms, bool is_trial) {
    uint8_t expected = is_trial ? state_trial : state_up;
    if (!slot.state.compare_exchange_strong(expected, state_down, std::memory_order_acq_rel)) {
        return;  // Another shard took it down first (or it is not ours to change).
    }
    // A failed trial doubles the wait; a fresh failure starts at the first backoff.
    const uint32_t previous = slot.backoff_ms.load(std::memory_order_relaxed);
    const uint32_t backoff = is_trial && previous != 0
                                 ? std::min(settings_.backoff_max_ms, previous * 2)
                                 : settings_.backoff_ms;
    slot.backoff_ms.store(backoff, std::memory_order_relaxed);
    slot.retry_at_ms.store(now_ms + backoff, std::memory_order_relaxed);
    if (!is_trial) {
        slot.since_unix_ms.store(wall_clock_unix_ms(), std::memory_order_relaxed);
        transitions_down_.fetch_add(1, std::memory_order_relaxed);
    }
    slot.reason.store(static_cast<uint8_t>(reason), std::memory_order_relaxed);
    slot.last_status.store(report.status, std::memory_order_relaxed);
    char* cursor = slot.last_error;
    char* const end = slot.last_error + sizeof(slot.last_error) - 1;
    std::memset(slot.last_error, 0, sizeof(slot.last_error));
    if (report.status != 0) {
        std::memcpy(cursor, "HTTP ", 5);
        std::to_chars(cursor + 5, end, report.status);
    } else if (!report.what.empty()) {  // An empty view's pointer may be null.
        std::memcpy(cursor, report.what.data(),
                    std::min<size_t>(report.what.size(), size_t(end - cursor)));
    }
    slot.version.fetch_add(1, std::memory_order_release);
    RW_LOG_WARN("event=channel_down channel_id=%ld reason=%.*s error=\"%s\" retry_in_ms=%u",
                static_cast<long>(slot.channel_id.load(std::memory_order_relaxed)),
                int(health_reason_name(reason).size()), health_reason_name(reason).data(),
                slot.last_error, backoff);
}

void ChannelHealthBoard::failed(int64_t channel_id, bool auto_disable, const FailureReport& report,
                                uint64_t now_ms, bool is_trial) {
    Slot* slot = find_or_add(channel_id);
    if (slot == nullptr) {
        return;
    }
    if (report.kind == FailureKind::rate) {
        // The provider is reachable and takes the key: a trial that meets a 429 succeeded.
        const uint64_t wait_ms = std::min<uint64_t>(
            report.retry_after_s == 0 ? 1000 : uint64_t(report.retry_after_s) * 1000,
            settings_.retry_after_max_ms);
        slot->rate_until_ms.store(now_ms + wait_ms, std::memory_order_relaxed);
        if (is_trial) {
            bring_up(*slot);
        }
        return;
    }
    if (!auto_disable) {
        if (is_trial) {
            bring_up(*slot);  // Opted out since it went down: it is simply up again.
        }
        return;
    }
    const HealthReason reason =
        report.kind == FailureKind::auth ? HealthReason::auth : HealthReason::server;
    if (is_trial || report.kind == FailureKind::auth) {
        take_down(*slot, reason, report, now_ms, is_trial);
        return;
    }
    if (slot->state.load(std::memory_order_relaxed) == state_up &&
        window_says_down(*slot, now_ms, true)) {
        take_down(*slot, reason, report, now_ms, false);
    }
}

void ChannelHealthBoard::trial_abandoned(int64_t channel_id) {
    Slot* slot = find(channel_id);
    if (slot == nullptr) {
        return;
    }
    uint8_t expected = state_trial;
    // Back to down with its retry time unchanged: the next request may take the trial.
    slot->state.compare_exchange_strong(expected, state_down, std::memory_order_acq_rel);
}

void ChannelHealthBoard::restore_down(int64_t channel_id, HealthReason reason,
                                      int64_t since_unix_ms, uint64_t now_ms) {
    Slot* slot = find_or_add(channel_id);
    if (slot == nullptr) {
        return;
    }
    slot->reason.store(static_cast<uint8_t>(reason), std::memory_order_relaxed);
    slot->since_unix_ms.store(since_unix_ms, std::memory_order_relaxed);
    slot->backoff_ms.store(settings_.backoff_ms, std::memory_order_relaxed);
    slot->retry_at_ms.store(now_ms + settings_.backoff_ms, std::memory_order_relaxed);
    std::memcpy(slot->last_error, "persisted", 10);
    slot->state.store(state_down, std::memory_order_release);
}

void ChannelHealthBoard::reset(int64_t channel_id, uint64_t now_ms) {
    Slot* slot = find_or_add(channel_id);
    if (slot == nullptr) {
        return;
    }
    slot->rate_until_ms.store(now_ms, std::memory_order_relaxed);
    uint8_t state = slot->state.load(std::memory_order_acquire);
    // Up already, or a trial in flight (it decides): only a plain down comes up here.
    if (state == state_down &&
        slot->state.compare_exchange_strong(state, state_trial, std::memory_order_acq_rel)) {
        bring_up(*slot);
    }
}

HealthView ChannelHealthBoard::view(int64_t channel_id, uint64_t now_ms) const {
    HealthView view;
    const Slot* slot = find(channel_id);
    if (slot == nullptr) {
        return view;
    }
    view.is_known = true;
    view.version = slot->version.load(std::memory_order_acquire);  // Pairs with the bumps.
    view.is_down = slot->state.load(std::memory_order_acquire) != state_up;
    view.reason = static_cast<HealthReason>(slot->reason.load(std::memory_order_relaxed));
    view.since_unix_ms = slot->since_unix_ms.load(std::memory_order_relaxed);
    const uint64_t rate_until = slot->rate_until_ms.load(std::memory_order_relaxed);
    view.rate_limited_ms = !view.is_down && rate_until > now_ms ? rate_until - now_ms : 0;
    const uint64_t retry_at = slot->retry_at_ms.load(std::memory_order_relaxed);
    view.retry_in_ms = view.is_down && retry_at > now_ms ? retry_at - now_ms : 0;
    if (view.is_down) {
        std::memcpy(view.last_error, slot->last_error, sizeof(view.last_error));
        view.last_error[sizeof(view.last_error) - 1] = '\0';
    }
    return view;
}

int64_t ChannelHealthBoard::channel_at(uint32_t slot) const {
    RW_ASSERT(slot < channel_states_max);
    return slots_[slot].channel_id.load(std::memory_order_acquire);
}

}  // namespace rw
