// proxy/rate_share.h — rpm, tpm and concurrency shared by the hosts of one deployment
// through Redis (RINGWAY_REDIS). Shards never wait for Redis: they decide from words in
// memory; one background thread (rw-redis) talks to Redis in batches, one Lua script call
// per batch for many keys, and brings the answers back into those words.
//
// What is shared how:
// - rpm and tpm: Redis holds the global GCRA bucket of each limit (one string key, the time
//   it is full again, on Redis's own clock). A host serves a request when its own local
//   bucket (rate_limit.h, the full limit) allows it AND it holds a lease for it: units it
//   took from the global bucket in advance (`credit`). The thread tops the credit up to a
//   slice (limit/8, doubled up to limit/2 while the host refuses for want of a lease, at
//   least what a refused request needed) whenever it runs low, and gives
//   an idle key's credit back. With no credit a host may still admit `advance` units per
//   window (RINGWAY_REDIS_ADVANCE_PERCENT of the limit, at least 1), which the thread then
//   takes from the global bucket unconditionally: a first request never waits for Redis.
//   Worst case in any burst: limit + N × advance served across N hosts (leases never exceed
//   the global bucket; only the advances can), plus the refill GCRA allows over time.
// - concurrency: every host writes its in-flight count per key into a Redis hash (field =
//   its host id); a host id lives only while its heartbeat key (TTL 3 × the sync period,
//   at least 1 s) is renewed, so a dead host's slots come back. A host admits when its own
//   count plus the others' last-seen sum is below the limit; the first request of a key
//   the host has not seen yet is admitted on its own count (the others' sum is learned in
//   the next batch). Worst case: max + what other hosts admit within one sync period.
// - Redis unreachable (connect or batch fails or times out): ringway_redis_up 0, one log
//   line, reconnect with backoff (100 ms doubling to 5 s), and RINGWAY_REDIS_FAILURE says
//   what limits do meanwhile: local (each host alone enforces the full limit), closed (429
//   for every request of a key with a rate limit) or open (no rate limits). Leases and
//   counts held at the failure are dropped on reconnect (Redis may have restarted empty).
//
// Keys are named in Redis by what every host agrees on: the key's SHA-256 (its first 16
// bytes in hex), not its row id, so hosts with their own databases that imported the same
// key secret share its limits; a model's limit adds a 64-bit hash of the model name.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "arena/zero_pages.h"
#include "core/config.h"
#include "proxy/rate_limit.h"
#include "storage/snapshot.h"

namespace rw {

class KeyLimits;

enum class RateKind : uint8_t { key_requests, key_tokens, model_requests, model_tokens };
constexpr uint32_t rate_kinds = 4;

// What limits do now, as the shards see it.
enum class ShareMode : uint8_t { shared, local, closed, open };

struct RateShareStats {
    uint64_t batches;          // Script calls that succeeded.
    uint64_t errors;           // Connects or batches that failed.
    uint64_t failure_refused;  // Requests refused by RINGWAY_REDIS_FAILURE=closed.
    uint64_t failure_local;    // Requests decided by local limits alone while Redis was down.
    uint64_t lease_refused;    // Refused for want of a lease (the local bucket had room).
    uint64_t round_trip_us_last;
    uint64_t round_trip_us_max;
    uint64_t round_trip_us_total;
    bool is_up;
};

class RateShare {
public:
    RateShare(const Config& config, uint32_t key_slots, uint32_t model_slots,
              KeyLimits& key_limits);
    ~RateShare();
    RateShare(const RateShare&) = delete;
    RateShare& operator=(const RateShare&) = delete;

    // The rw-redis thread.
    void start();
    void stop();

    // Shard side (any shard; no locks but a rarely taken one when a key is first seen).
    [[nodiscard]] ShareMode mode() const;
    // After the local bucket took `amount`: whether this host may serve it. `name` is the
    // limit's Redis identity (rate_share_name).
    [[nodiscard]] bool take(RateKind kind, uint32_t slot, uint64_t amount, uint32_t limit,
                            std::string_view name);
    // A reservation given back (refused, unsent, or above the usage): it is this host's again.
    void give_back(RateKind kind, uint32_t slot, uint64_t amount);
    // Usage above a reservation: taken without a check.
    void take_more(RateKind kind, uint32_t slot, uint64_t amount);
    // After the local concurrency count went up to `in_flight`: whether the others' last-seen
    // count leaves room under max.
    [[nodiscard]] bool concurrency_allows(uint32_t slot, uint32_t in_flight, uint32_t max,
                                          std::string_view name);
    void count_failure_decision(bool is_refused);

    [[nodiscard]] RateShareStats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The Redis identity of a key's limit (hex of the key hash) or a key and model's.
// Capacity: rate_share_name_bytes.
constexpr uint32_t rate_share_name_bytes = 56;
uint32_t rate_share_name(const KeyHash& hash, std::string_view model,
                         char (&out)[rate_share_name_bytes]);

}  // namespace rw
