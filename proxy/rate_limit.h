// proxy/rate_limit.h — requests and tokens per minute, per key and per key and model, as
// token buckets every shard shares (one atomic word each), and the x-ratelimit-* headers
// a client reads them by. A bucket holds `limit` units and refills at limit per minute
// continuously, so no minute boundary lets twice the limit through (a fixed window does).
// Requests are taken at admission; tokens reserve the request's upper bound (as the token
// quota does) and settle to its real usage at request_finish. A request that never reached
// an upstream gives everything back, so a refusal by one limit spends no other's budget.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "proxy/fault.h"

namespace rw {

struct Gateway;
struct KeyEntry;
struct ProxyRequest;

constexpr int64_t rate_window_us = 60'000'000;  // A limit is per minute.

// What one bucket showed a request: the header's figures. limit 0: no such limit.
struct RateView {
    uint32_t limit;
    uint32_t remaining;
    uint64_t reset_us;  // Until the bucket is full again.
};

// Token buckets in GCRA form: each word holds the time (unix us) at which its bucket is
// full again ("theoretical arrival time"); taking n units moves it n * window / limit
// later, and is refused when that would put it more than a window past now.
class RateBuckets {
public:
    // The words are zero anonymous pages, not written until used: a million idle keys
    // cost address space, not resident memory.
    explicit RateBuckets(uint32_t count);
    ~RateBuckets();
    RateBuckets(const RateBuckets&) = delete;
    RateBuckets& operator=(const RateBuckets&) = delete;
    // Takes `amount` units of a bucket of `limit` per minute at now_us: true, or false
    // with wait_us = how long until they would fit. view: the bucket after (or as it is,
    // when refused). amount > limit never fits (wait_us = UINT64_MAX).
    [[nodiscard]] bool try_take(uint32_t slot, uint64_t amount, uint32_t limit, int64_t now_us,
                                RateView& view, uint64_t& wait_us);
    // Takes `amount` units, however many, from a full bucket (nothing taken within the
    // last window): a bucket smaller than one request would otherwise never admit one. It
    // is then overdrawn and admits nothing until amount * window / limit has passed.
    // False when the bucket is not full.
    [[nodiscard]] bool try_take_whole(uint32_t slot, uint64_t amount, uint32_t limit,
                                      int64_t now_us);
    // Gives `amount` back (a refused or unsent request; a reservation above the usage).
    void give_back(uint32_t slot, uint64_t amount, uint32_t limit);
    // Takes `amount` more without a check (usage above the reservation).
    void take_more(uint32_t slot, uint64_t amount, uint32_t limit, int64_t now_us);
    [[nodiscard]] uint32_t count() const { return count_; }

private:
    [[nodiscard]] std::atomic_ref<int64_t> at(uint32_t slot) {
        return std::atomic_ref<int64_t>(full_at_us_[slot]);
    }
    int64_t* full_at_us_;  // Shared by every shard, used through atomic_ref only.
    uint32_t count_;
};

// Every shard's buckets: per key (by KeyEntry::quota_slot) and per key and model (by
// ModelLimit::slot).
struct RateLimits {
    RateLimits(uint32_t key_slots, uint32_t model_slots)
        : key_requests(key_slots),
          key_tokens(key_slots),
          model_requests(model_slots),
          model_tokens(model_slots) {}
    RateBuckets key_requests;
    RateBuckets key_tokens;
    RateBuckets model_requests;
    RateBuckets model_tokens;
};

// What a request holds of the buckets, and what its headers say. Zeroed with the request.
struct RateHold {
    uint32_t key_slot;
    uint32_t model_slot;
    uint32_t key_rpm, key_tpm, model_rpm, model_tpm;  // The limits taken against.
    bool holds_key_request;
    bool holds_model_request;
    uint64_t key_tokens;      // Reserved in the key's tpm bucket (0: none).
    uint64_t model_tokens;    // Reserved in the key and model's tpm bucket (0: none).
    uint32_t retry_after_ms;  // A refusal's wait (retry-after-ms); 0: none.
    uint8_t shared_mask;      // Bit per RateKind: taken from a Redis lease (rate_share.h).
    RateView requests;        // The binding requests limit (limit 0: none).
    RateView tokens;          // The binding tokens limit (limit 0: none).
};

// At the head: the key's rpm (one request). Fault::client_rate_limited with
// request.retry_after_s set when its bucket is empty.
[[nodiscard]] Fault rate_limit_head(Gateway& gateway, ProxyRequest& request, const KeyEntry& key);

// Once the model is known: the key and model's rpm, then the key's and the key and model's
// tpm for token_bound tokens. On a refusal what this call took is given back at once.
[[nodiscard]] Fault rate_limit_body(Gateway& gateway, ProxyRequest& request, const KeyEntry& key,
                                    int64_t token_bound);

// At the request's end: a request that never reached an upstream gives back its requests and
// tokens; one that did settles its token reservations to charged_tokens. Idempotent.
void rate_limit_release(Gateway& gateway, ProxyRequest& request, bool reached_upstream,
                        int64_t charged_tokens);

// Which of the provider's x-ratelimit-* lines ringway's own limits replace (UpstreamReplaced
// bits, for the upstream parser): -requests when the request has a requests limit, -tokens
// likewise.
[[nodiscard]] uint8_t rate_replaced_headers(const RateHold& hold);

// Capacity rate_headers_write needs.
constexpr uint32_t rate_headers_bytes_max = 512;
// The x-ratelimit-{limit,remaining,reset}-{requests,tokens} lines of the limits the request
// has (none without limits), and retry-after-ms on a refusal. Returns the bytes written.
uint32_t rate_headers_write(const RateHold& hold, char (&out)[rate_headers_bytes_max]);

// A duration as OpenAI writes it: "20ms", "1s", "59.123s", "6m0s". Returns the bytes.
uint32_t rate_duration_write(uint64_t us, char* out);

}  // namespace rw
