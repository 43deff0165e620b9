// proxy/rate_limit.cc — shared token buckets and the x-ratelimit-* headers (see
// rate_limit.h). The buckets' atomics are shared by every shard; the rest runs on the
// request's shard. Nothing here allocates.
#include "proxy/rate_limit.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "core/assert.h"
#include "core/text.h"
#include "core/wall_clock.h"
#include "proxy/gateway.h"
#include "proxy/request.h"
#include "proxy/upstream_parse.h"
#include "storage/snapshot.h"

namespace rw {
namespace {

// The time `amount` units of a `limit`-per-minute bucket stand for, rounded up (so a
// give_back of the same amount is exact).
int64_t rate_cost_us(uint64_t amount, uint32_t limit) {
    RW_ASSERT(limit != 0);
    const unsigned __int128 scaled = (unsigned __int128)amount * uint64_t(rate_window_us);
    const unsigned __int128 cost = (scaled + limit - 1) / limit;
    return cost > (unsigned __int128)(INT64_MAX / 4) ? INT64_MAX / 4 : int64_t(cost);
}

// What a bucket full again at full_at_us has left at now_us.
RateView rate_view(uint32_t limit, int64_t full_at_us, int64_t now_us) {
    const int64_t busy_us = std::max<int64_t>(full_at_us - now_us, 0);
    const int64_t free_us = std::max<int64_t>(rate_window_us - busy_us, 0);
    const auto remaining = uint32_t((unsigned __int128)free_us * limit / uint64_t(rate_window_us));
    return {limit, remaining, uint64_t(busy_us)};
}

// Admission's clock (core/wall_clock.h, read when the request started).
int64_t rate_now_us(const ProxyRequest& request) {
    return request.started_unix_ms * 1000;
}

// The limit a header shows of two: the one with less left (the one a client meets first).
void rate_bind(RateView& shown, const RateView& view) {
    if (shown.limit == 0 || view.remaining < shown.remaining ||
        (view.remaining == shown.remaining && view.limit < shown.limit)) {
        shown = view;
    }
}

// A refusal: its view replaces the header's, and Retry-After / retry-after-ms say the wait.
Fault rate_refuse(Gateway& gateway, ProxyRequest& request, RateView& shown, const RateView& view,
                  uint64_t wait_us, Fault fault) {
    gateway.metrics.limited.add();
    shown = view;
    if (wait_us == UINT64_MAX) {
        return Fault::client_tokens_too_large;  // No wait helps (x-should-retry: false).
    }
    const uint64_t wait_ms = std::max<uint64_t>((wait_us + 999) / 1000, 1);
    request.rate.retry_after_ms = uint32_t(std::min<uint64_t>(wait_ms, UINT32_MAX));
    request.retry_after_s = uint32_t(std::min<uint64_t>((wait_ms + 999) / 1000, 3600));
    return fault;
}

char* put(char* cursor, std::string_view text) {
    std::memcpy(cursor, text.data(), text.size());
    return cursor + text.size();
}

char* put_number(char* cursor, uint64_t value) {
    return decimal_write(cursor, value);
}

// The constant parts of one kind's three lines, each written with one copy.
struct RateLineNames {
    std::string_view limit;
    std::string_view remaining;
    std::string_view reset;
};
constexpr RateLineNames requests_lines = {
    "x-ratelimit-limit-requests: ", "\r\nx-ratelimit-remaining-requests: ",
    "\r\nx-ratelimit-reset-requests: "};
constexpr RateLineNames tokens_lines = {
    "x-ratelimit-limit-tokens: ", "\r\nx-ratelimit-remaining-tokens: ",
    "\r\nx-ratelimit-reset-tokens: "};

char* put_view(char* cursor, const RateView& view, const RateLineNames& names) {
    cursor = put_number(put(cursor, names.limit), view.limit);
    cursor = put_number(put(cursor, names.remaining), view.remaining);
    cursor = put(cursor, names.reset);
    cursor += rate_duration_write(view.reset_us, cursor);
    return put(cursor, "\r\n");
}

// What rpm and tpm do now: local without RINGWAY_REDIS, else the share's mode.
ShareMode share_mode(const Gateway& gateway) {
    return gateway.shared.rate_share == nullptr ? ShareMode::local
                                                : gateway.shared.rate_share->mode();
}

// RINGWAY_REDIS_FAILURE=closed while Redis is unreachable: a key with a rate limit waits.
Fault share_closed_refuse(Gateway& gateway, ProxyRequest& request, RateView& shown,
                          uint32_t limit) {
    gateway.shared.rate_share->count_failure_decision(true);
    request.fault_message =
        "Rate limits cannot be checked right now (their shared store is unreachable).";
    return rate_refuse(gateway, request, shown, RateView{limit, 0, 0}, 1'000'000,
                       Fault::client_rate_limited);
}

// Takes `amount` from the local bucket and, when limits are shared, from this host's
// lease: true, or false with view and wait_us (what the local bucket took is given back).
bool rate_take(Gateway& gateway, RateHold& hold, RateBuckets& buckets, RateKind kind, uint32_t slot,
               uint64_t amount, uint32_t limit, int64_t now_us, const KeyEntry& key,
               std::string_view model, RateView& view, uint64_t& wait_us) {
    if (!buckets.try_take(slot, amount, limit, now_us, view, wait_us)) {
        return false;
    }
    RateShare* share = gateway.shared.rate_share;
    if (share == nullptr) {
        return true;
    }
    if (share->mode() != ShareMode::shared) {
        share->count_failure_decision(false);  // local: this host's bucket alone decided.
        return true;
    }
    char name[rate_share_name_bytes];
    const uint32_t name_bytes = rate_share_name(key.hash, model, name);
    if (share->take(kind, slot, amount, limit, {name, name_bytes})) {
        hold.shared_mask |= uint8_t(1u << uint32_t(kind));
        return true;
    }
    buckets.give_back(slot, amount, limit);
    view.remaining = 0;  // This host holds none of it until its next lease.
    wait_us = std::max<uint64_t>(2 * uint64_t(gateway.config.redis_sync_ms) * 1000, 1000);
    return false;
}

}  // namespace

namespace {

size_t rate_buckets_bytes(uint32_t count) {
    return (count == 0 ? 1 : size_t(count)) * sizeof(int64_t);
}

}  // namespace

// Anonymous pages straight from the kernel: zero, and resident only once written (calloc
// through the allocator wrote them all: +80 MB for the default keys_max).
RateBuckets::RateBuckets(uint32_t count) : full_at_us_(nullptr), count_(count) {
    void* pages = ::mmap(nullptr, rate_buckets_bytes(count), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    RW_ASSERT(pages != MAP_FAILED);  // Startup only.
    full_at_us_ = static_cast<int64_t*>(pages);
}

RateBuckets::~RateBuckets() {
    ::munmap(full_at_us_, rate_buckets_bytes(count_));
}

bool RateBuckets::try_take(uint32_t slot, uint64_t amount, uint32_t limit, int64_t now_us,
                           RateView& view, uint64_t& wait_us) {
    RW_ASSERT(slot < count_);
    RW_ASSERT(limit != 0);
    std::atomic_ref<int64_t> bucket = at(slot);
    int64_t seen = bucket.load(std::memory_order_relaxed);
    if (amount > limit) {
        view = rate_view(limit, seen, now_us);
        wait_us = UINT64_MAX;
        return false;
    }
    const int64_t cost = rate_cost_us(amount, limit);
    for (;;) {
        const int64_t next = std::max(seen, now_us) + cost;
        if (next - now_us > rate_window_us) {
            view = rate_view(limit, seen, now_us);
            wait_us = uint64_t(next - now_us - rate_window_us);
            return false;
        }
        // The word is the whole decision: no ordering with other memory is needed.
        if (bucket.compare_exchange_weak(seen, next, std::memory_order_relaxed)) {
            view = rate_view(limit, next, now_us);
            return true;
        }
    }
}

bool RateBuckets::try_take_whole(uint32_t slot, uint64_t amount, uint32_t limit, int64_t now_us) {
    RW_ASSERT(slot < count_);
    RW_ASSERT(limit != 0);
    const int64_t cost = rate_cost_us(amount, limit);
    std::atomic_ref<int64_t> bucket = at(slot);
    int64_t seen = bucket.load(std::memory_order_relaxed);
    while (seen <= now_us) {
        if (bucket.compare_exchange_weak(seen, now_us + cost, std::memory_order_relaxed)) {
            return true;
        }
    }
    return false;
}

void RateBuckets::give_back(uint32_t slot, uint64_t amount, uint32_t limit) {
    RW_ASSERT(slot < count_);
    at(slot).fetch_sub(rate_cost_us(amount, limit), std::memory_order_relaxed);
}

void RateBuckets::take_more(uint32_t slot, uint64_t amount, uint32_t limit, int64_t now_us) {
    RW_ASSERT(slot < count_);
    const int64_t cost = rate_cost_us(amount, limit);
    std::atomic_ref<int64_t> bucket = at(slot);
    int64_t seen = bucket.load(std::memory_order_relaxed);
    while (!bucket.compare_exchange_weak(seen, std::max(seen, now_us) + cost,
                                         std::memory_order_relaxed)) {
    }
}

Fault rate_limit_head(Gateway& gateway, ProxyRequest& request, const KeyEntry& key) {
    RateHold& hold = request.rate;
    RW_ASSERT(!hold.holds_key_request);
    hold.key_slot = key.quota_slot;
    if (key.rpm == 0) {
        return Fault::none;
    }
    const ShareMode mode = share_mode(gateway);
    if (mode == ShareMode::open) {
        return Fault::none;
    }
    if (mode == ShareMode::closed) {
        return share_closed_refuse(gateway, request, hold.requests, key.rpm);
    }
    RateView view;
    uint64_t wait_us = 0;
    if (!rate_take(gateway, hold, gateway.shared.rate_limits->key_requests, RateKind::key_requests,
                   key.quota_slot, 1, key.rpm, rate_now_us(request), key, {}, view, wait_us)) {
        return rate_refuse(gateway, request, hold.requests, view, wait_us,
                           Fault::client_rate_limited);
    }
    hold.key_rpm = key.rpm;
    hold.holds_key_request = true;
    rate_bind(hold.requests, view);
    return Fault::none;
}

Fault rate_limit_body(Gateway& gateway, ProxyRequest& request, const KeyEntry& key,
                      int64_t token_bound) {
    RateHold& hold = request.rate;
    RateLimits& limits = *gateway.shared.rate_limits;
    const ModelLimit* model = key.model_limit(request.model_requested);
    const int64_t now_us = rate_now_us(request);
    const auto bound = uint64_t(std::max<int64_t>(token_bound, 1));
    RateView view;
    uint64_t wait_us = 0;
    Fault fault = Fault::none;
    const ShareMode mode = share_mode(gateway);
    const bool has_limit =
        key.tpm != 0 || (model != nullptr && (model->rpm != 0 || model->tpm != 0));
    if (mode == ShareMode::open || !has_limit) {
        return Fault::none;
    }
    if (mode == ShareMode::closed) {  // The header shows a limit the key has.
        const bool is_tokens = key.tpm != 0 || model->rpm == 0;
        return share_closed_refuse(gateway, request, is_tokens ? hold.tokens : hold.requests,
                                   key.tpm != 0 ? key.tpm : (is_tokens ? model->tpm : model->rpm));
    }
    const std::string_view model_name = request.model_requested;
    if (model != nullptr && model->rpm != 0) {
        if (!rate_take(gateway, hold, limits.model_requests, RateKind::model_requests, model->slot,
                       1, model->rpm, now_us, key, model_name, view, wait_us)) {
            request.fault_message =
                "Rate limit reached for requests per minute on this API key and model.";
            return rate_refuse(gateway, request, hold.requests, view, wait_us,
                               Fault::client_rate_limited);
        }
        hold.model_slot = model->slot;
        hold.model_rpm = model->rpm;
        hold.holds_model_request = true;
        rate_bind(hold.requests, view);
    }
    if (key.tpm != 0) {
        if (!rate_take(gateway, hold, limits.key_tokens, RateKind::key_tokens, key.quota_slot,
                       bound, key.tpm, now_us, key, {}, view, wait_us)) {
            fault = rate_refuse(gateway, request, hold.tokens, view, wait_us,
                                Fault::client_tokens_limited);
        } else {
            hold.key_tpm = key.tpm;
            hold.key_tokens = bound;
            rate_bind(hold.tokens, view);
        }
    }
    if (fault == Fault::none && model != nullptr && model->tpm != 0) {
        if (!rate_take(gateway, hold, limits.model_tokens, RateKind::model_tokens, model->slot,
                       bound, model->tpm, now_us, key, model_name, view, wait_us)) {
            request.fault_message =
                "Rate limit reached for tokens per minute on this API key and model.";
            fault = rate_refuse(gateway, request, hold.tokens, view, wait_us,
                                Fault::client_tokens_limited);
        } else {
            hold.model_slot = model->slot;
            hold.model_tpm = model->tpm;
            hold.model_tokens = bound;
            rate_bind(hold.tokens, view);
        }
    }
    if (fault != Fault::none) {
        rate_limit_release(gateway, request, false, 0);  // Nothing else is spent.
    }
    return fault;
}

void rate_limit_release(Gateway& gateway, ProxyRequest& request, bool reached_upstream,
                        int64_t charged_tokens) {
    RateHold& hold = request.rate;
    RateLimits& limits = *gateway.shared.rate_limits;
    RateShare* share = gateway.shared.rate_share;
    // A lease's units go back to this host's lease (only what was taken from one).
    const auto is_shared = [&hold, share](RateKind kind) {
        return share != nullptr && (hold.shared_mask & (1u << uint32_t(kind))) != 0;
    };
    if (!reached_upstream) {
        if (hold.holds_key_request) {
            limits.key_requests.give_back(hold.key_slot, 1, hold.key_rpm);
            if (is_shared(RateKind::key_requests)) {
                share->give_back(RateKind::key_requests, hold.key_slot, 1);
            }
        }
        if (hold.holds_model_request) {
            limits.model_requests.give_back(hold.model_slot, 1, hold.model_rpm);
            if (is_shared(RateKind::model_requests)) {
                share->give_back(RateKind::model_requests, hold.model_slot, 1);
            }
        }
        charged_tokens = 0;
    }
    hold.holds_key_request = false;
    hold.holds_model_request = false;
    const auto charged = uint64_t(std::max<int64_t>(charged_tokens, 0));
    struct Reservation {
        RateBuckets& buckets;
        RateKind kind;
        uint32_t slot;
        uint32_t limit;
        uint64_t& reserved;
    };
    for (const Reservation& held :
         {Reservation{limits.key_tokens, RateKind::key_tokens, hold.key_slot, hold.key_tpm,
                      hold.key_tokens},
          Reservation{limits.model_tokens, RateKind::model_tokens, hold.model_slot, hold.model_tpm,
                      hold.model_tokens}}) {
        if (held.reserved == 0) {
            continue;
        }
        if (charged < held.reserved) {
            held.buckets.give_back(held.slot, held.reserved - charged, held.limit);
            if (is_shared(held.kind)) {
                share->give_back(held.kind, held.slot, held.reserved - charged);
            }
        } else if (charged > held.reserved) {
            held.buckets.take_more(held.slot, charged - held.reserved, held.limit,
                                   wall_clock_unix_us());
            if (is_shared(held.kind)) {
                share->take_more(held.kind, held.slot, charged - held.reserved);
            }
        }
        held.reserved = 0;
    }
    hold.shared_mask = 0;
}

uint8_t rate_replaced_headers(const RateHold& hold) {
    return uint8_t((hold.requests.limit != 0 ? upstream_replaces_requests : 0) |
                   (hold.tokens.limit != 0 ? upstream_replaces_tokens : 0));
}

uint32_t rate_headers_write(const RateHold& hold, char (&out)[rate_headers_bytes_max]) {
    char* cursor = out;
    if (hold.requests.limit != 0) {
        cursor = put_view(cursor, hold.requests, requests_lines);
    }
    if (hold.tokens.limit != 0) {
        cursor = put_view(cursor, hold.tokens, tokens_lines);
    }
    if (hold.retry_after_ms != 0) {
        cursor = put(put_number(put(cursor, "retry-after-ms: "), hold.retry_after_ms), "\r\n");
    }
    RW_ASSERT(cursor <= out + rate_headers_bytes_max);
    return uint32_t(cursor - out);
}

uint32_t rate_duration_write(uint64_t us, char* out) {
    const uint64_t ms = (us + 999) / 1000;
    char* cursor = out;
    if (ms < 1000) {
        return uint32_t(put(put_number(cursor, ms), ms == 0 ? "s" : "ms") - out);
    }
    const uint64_t minutes = ms / 60000;
    if (minutes != 0) {
        cursor = put(put_number(cursor, minutes), "m");
    }
    cursor = put_number(cursor, (ms % 60000) / 1000);
    uint64_t fraction = ms % 1000;
    if (fraction != 0) {
        char digits[3] = {char('0' + fraction / 100), char('0' + fraction / 10 % 10),
                          char('0' + fraction % 10)};
        uint32_t length = 3;
        while (digits[length - 1] == '0') {
            length--;
        }
        cursor = put(put(cursor, "."), {digits, length});
    }
    return uint32_t(put(cursor, "s") - out);
}

}  // namespace rw
