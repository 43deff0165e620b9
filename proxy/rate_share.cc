// proxy/rate_share.cc — leases of the global rate buckets and the hosts' concurrency counts
// through Redis (see rate_share.h). The shard side is a few atomics per limit; the rw-redis
// thread owns the connection, the list of limits in use and every Redis exchange.
#include "proxy/rate_share.h"

#include <pthread.h>
#include <sys/random.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <unordered_map>

#include "core/assert.h"
#include "core/log.h"
#include "core/resp.h"
#include "proxy/admission.h"

namespace rw {
namespace {

// One script call per batch: for each key, give back, repay the advances, then grant what
// fits of `want` (GCRA on Redis's clock; the value is the time the bucket is full again).
constexpr const char* lease_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 4
  local per = window / tonumber(ARGV[base + 1])
  local want = tonumber(ARGV[base + 2])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tat = tat - tonumber(ARGV[base + 4]) * per
  if tat < now then tat = now end
  tat = tat + tonumber(ARGV[base + 3]) * per
  local room = math.floor((now + window - tat) / per + 1e-9)
  if room < 0 then room = 0 end
  if want > room then want = room end
  tat = tat + want * per
  if tat > now then
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
  else
    redis.call('DEL', key)
  end
  out[i] = want
end
return out
)lua";

// One script call per batch: this host's in-flight count per key (0 removes it), and the
// sum of the other live hosts' (a host whose heartbeat key expired is removed).
constexpr const char* concurrency_script = R"lua(
local host = ARGV[1]
local ttl = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[2 + i])
  if count > 0 then
    redis.call('HSET', key, host, count)
    redis.call('PEXPIRE', key, ttl)
  else
    redis.call('HDEL', key, host)
  end
  local others = 0
  local fields = redis.call('HGETALL', key)
  for j = 1, #fields, 2 do
    if fields[j] ~= host then
      if redis.call('EXISTS', 'rw:host:' .. fields[j]) == 1 then
        others = others + tonumber(fields[j + 1])
      else
        redis.call('HDEL', key, fields[j])
      end
    end
  end
  out[i] = others
end
return out
)lua";

constexpr uint32_t batch_keys_max = 256;           // Keys per script call.
constexpr size_t demands_max = 65536;              // Limits first seen, waiting for the thread.
constexpr int64_t idle_ms = 2000;                  // A limit unused this long gives its lease back.
constexpr int64_t idle_heartbeat_ms = 1000;        // The batch period with no limit in use.
constexpr uint32_t backoff_first_ms = 100;         // Reconnect waits, doubling...
constexpr uint32_t backoff_max_ms = 5000;          // ... up to this.
constexpr uint32_t concurrency_kind = rate_kinds;  // Tracked entries: 0..3 rates, 4 this.

int64_t monotonic_ms() {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

int64_t unix_us() {
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return int64_t(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
}

template <class T>
std::atomic_ref<T> word(const ZeroPages<T>& pages, uint32_t slot) {
    return std::atomic_ref<T>(pages[slot]);
}

void atomic_max(std::atomic_ref<int64_t> target, int64_t value) {
    int64_t seen = target.load(std::memory_order_relaxed);
    while (seen < value && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
}

std::string decimal(int64_t value) {
    char text[24];
    return {text, std::to_chars(text, text + sizeof(text), value).ptr};
}

// One limit's words, for every slot of one kind.
struct PerKind {
    explicit PerKind(uint32_t slots)
        : credit(slots),
          repay(slots),
          need(slots),
          limit(slots),
          listed(slots),
          touched(slots),
          advance(slots) {}
    ZeroPages<int64_t> credit;  // Leased units not yet used.
    ZeroPages<int64_t> repay;   // Units admitted in advance, to take from Redis.
    ZeroPages<int64_t> need;    // The largest amount refused for want of a lease.
    ZeroPages<uint32_t> limit;  // The limit last taken against.
    ZeroPages<uint8_t> listed;  // Tracked by the thread (or queued to be).
    ZeroPages<uint8_t> touched;
    RateBuckets advance;  // Per window, units admitted ahead of a lease.
};

struct Demand {
    uint32_t kind;
    uint32_t slot;
    uint32_t name_bytes;
    char name[rate_share_name_bytes];
};

// What one pass sends for one tracked limit, and what it does with the answer.
struct Sent {
    uint64_t id;
    bool is_forgotten;  // Idle: its lease went back; tracked no more after this pass.
};

// One pass: the tracked limits with something to say, and the pipelined commands.
struct Batch {
    std::vector<Sent> rate_sent, concurrency_sent;
    std::vector<std::string> rate_keys, rate_args, concurrency_keys, concurrency_args;
    std::string commands;
    size_t count = 0;       // Commands (and so replies): the heartbeat, then the scripts.
    size_t rate_calls = 0;  // Lease script calls, after the heartbeat.
};

struct Tracked {
    std::string redis_key;
    int64_t used_ms;    // Last pass that saw it touched.
    int64_t slice = 0;  // Units the lease is topped up to: limit/8, doubled while refusing.
};

}  // namespace

struct RateShare::Impl {
    Impl(const Config& config_in, uint32_t key_slots, uint32_t model_slots, KeyLimits& limits)
        : config(config_in),
          key_limits(limits),
          others(std::max<uint32_t>(key_slots, 1)),
          concurrency_listed(std::max<uint32_t>(key_slots, 1)),
          concurrency_touched(std::max<uint32_t>(key_slots, 1)) {
        for (uint32_t kind = 0; kind < rate_kinds; kind++) {
            kinds[kind] = std::make_unique<PerKind>(
                std::max<uint32_t>(kind < 2 ? key_slots : model_slots, 1));
        }
        uint8_t random[8] = {};
        if (::getrandom(random, sizeof(random), 0) != sizeof(random)) {
            const uint64_t fallback = uint64_t(unix_us()) ^ uint64_t(::getpid()) << 32;
            std::memcpy(random, &fallback, sizeof(random));
        }
        static constexpr char hex[] = "0123456789abcdef";
        for (const uint8_t byte : random) {
            host_id += hex[byte >> 4];
            host_id += hex[byte & 15];
        }
        demands.reserve(1024);
    }

    const Config& config;
    KeyLimits& key_limits;
    std::unique_ptr<PerKind> kinds[rate_kinds];
    ZeroPages<uint32_t> others;  // Per key slot: the other hosts' in-flight sum.
    ZeroPages<uint8_t> concurrency_listed;
    ZeroPages<uint8_t> concurrency_touched;
    std::atomic<bool> is_up{false};
    std::string host_id;
    // Shards append a limit the first time they meet it (the only lock a shard takes here,
    // once per limit per idle period); the thread swaps the list out each pass.
    std::mutex demand_mutex;
    std::vector<Demand> demands;
    std::mutex stop_mutex;
    std::condition_variable stop_changed;
    bool is_stopping = false;  // Guarded by stop_mutex.
    std::thread thread;
    // Thread only.
    RespClient client;
    std::unordered_map<uint64_t, Tracked> tracked;  // By kind << 32 | slot.
    std::string down_error;
    int64_t last_pass_ms = 0;
    // Stats.
    std::atomic<uint64_t> batches{0}, errors{0}, failure_refused{0}, failure_local{0},
        lease_refused{0}, round_trip_us_last{0}, round_trip_us_max{0}, round_trip_us_total{0};

    uint32_t advance_units(uint32_t limit) const {
        if (config.redis_advance_percent == 0) {
            return 0;
        }
        return std::max<uint32_t>(uint32_t(uint64_t(limit) * config.redis_advance_percent / 100),
                                  1);
    }

    void list(uint32_t kind, uint32_t slot, ZeroPages<uint8_t>& listed, std::string_view name) {
        if (std::atomic_ref<uint8_t>(listed[slot]).load(std::memory_order_relaxed) != 0) {
            return;
        }
        Demand demand{
            kind, slot, uint32_t(std::min<size_t>(name.size(), rate_share_name_bytes)), {}};
        std::memcpy(demand.name, name.data(), demand.name_bytes);
        std::lock_guard lock(demand_mutex);
        if (demands.size() < demands_max &&
            std::atomic_ref<uint8_t>(listed[slot]).exchange(1, std::memory_order_relaxed) == 0) {
            demands.push_back(demand);  // Within the reserve but on a burst of new keys.
        }
    }

    void run();
    bool connect();
    void mark_down(const std::string& error);
    void adopt_demands();
    bool pass();
    void collect(Batch& batch);
    void encode(Batch& batch) const;
    bool apply(const Batch& batch, const std::vector<RespValue>& replies);
    void forget_leases();
};

namespace {

void touch(ZeroPages<uint8_t>& touched, uint32_t slot) {
    std::atomic_ref<uint8_t> flag(touched[slot]);
    if (flag.load(std::memory_order_relaxed) == 0) {
        flag.store(1, std::memory_order_relaxed);
    }
}

}  // namespace

RateShare::RateShare(const Config& config, uint32_t key_slots, uint32_t model_slots,
                     KeyLimits& key_limits)
    : impl_(std::make_unique<Impl>(config, key_slots, model_slots, key_limits)) {}

RateShare::~RateShare() {
    stop();
}

void RateShare::start() {
    impl_->thread = std::thread([impl = impl_.get()] {
        pthread_setname_np(pthread_self(), "rw-redis");  // In ps -L, top -H and perf.
        impl->run();
    });
}

void RateShare::stop() {
    {
        std::lock_guard lock(impl_->stop_mutex);
        impl_->is_stopping = true;
    }
    impl_->stop_changed.notify_all();
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    }
}

ShareMode RateShare::mode() const {
    if (impl_->is_up.load(std::memory_order_relaxed)) {
        return ShareMode::shared;
    }
    switch (impl_->config.redis_failure) {
        case RedisFailure::closed: return ShareMode::closed;
        case RedisFailure::open: return ShareMode::open;
        case RedisFailure::local: break;
    }
    return ShareMode::local;
}

bool RateShare::take(RateKind kind, uint32_t slot, uint64_t amount, uint32_t limit,
                     std::string_view name) {
    Impl& impl = *impl_;
    PerKind& words = *impl.kinds[uint32_t(kind)];
    if (word(words.limit, slot).load(std::memory_order_relaxed) != limit) {
        word(words.limit, slot).store(limit, std::memory_order_relaxed);
    }
    touch(words.touched, slot);
    impl.list(uint32_t(kind), slot, words.listed, name);
    std::atomic_ref<int64_t> credit = word(words.credit, slot);
    int64_t seen = credit.load(std::memory_order_relaxed);
    while (seen >= int64_t(amount)) {
        if (credit.compare_exchange_weak(seen, seen - int64_t(amount), std::memory_order_relaxed)) {
            return true;
        }
    }
    const uint32_t advance = impl.advance_units(limit);
    RateView view;
    uint64_t wait_us = 0;
    if (advance != 0 && words.advance.try_take(slot, amount, advance, unix_us(), view, wait_us)) {
        word(words.repay, slot).fetch_add(int64_t(amount), std::memory_order_relaxed);
        return true;
    }
    atomic_max(word(words.need, slot), int64_t(amount));
    impl.lease_refused.fetch_add(1, std::memory_order_relaxed);
    return false;
}

void RateShare::give_back(RateKind kind, uint32_t slot, uint64_t amount) {
    word(impl_->kinds[uint32_t(kind)]->credit, slot)
        .fetch_add(int64_t(amount), std::memory_order_relaxed);
}

void RateShare::take_more(RateKind kind, uint32_t slot, uint64_t amount) {
    PerKind& words = *impl_->kinds[uint32_t(kind)];
    std::atomic_ref<int64_t> credit = word(words.credit, slot);
    int64_t seen = credit.load(std::memory_order_relaxed);
    int64_t from_credit = 0;
    do {
        from_credit = std::clamp<int64_t>(seen, 0, int64_t(amount));
    } while (!credit.compare_exchange_weak(seen, seen - from_credit, std::memory_order_relaxed));
    if (int64_t(amount) > from_credit) {
        word(words.repay, slot).fetch_add(int64_t(amount) - from_credit, std::memory_order_relaxed);
    }
}

bool RateShare::concurrency_allows(uint32_t slot, uint32_t in_flight, uint32_t max,
                                   std::string_view name) {
    Impl& impl = *impl_;
    touch(impl.concurrency_touched, slot);
    impl.list(concurrency_kind, slot, impl.concurrency_listed, name);
    const uint32_t others = word(impl.others, slot).load(std::memory_order_relaxed);
    return uint64_t(in_flight) + others <= max;
}

void RateShare::count_failure_decision(bool is_refused) {
    (is_refused ? impl_->failure_refused : impl_->failure_local)
        .fetch_add(1, std::memory_order_relaxed);
}

RateShareStats RateShare::stats() const {
    const Impl& impl = *impl_;
    return {impl.batches.load(),
            impl.errors.load(),
            impl.failure_refused.load(),
            impl.failure_local.load(),
            impl.lease_refused.load(),
            impl.round_trip_us_last.load(),
            impl.round_trip_us_max.load(),
            impl.round_trip_us_total.load(),
            impl.is_up.load()};
}

// ---- the rw-redis thread -------------------------------------------------------------

void RateShare::Impl::mark_down(const std::string& error) {
    errors.fetch_add(1, std::memory_order_relaxed);
    client.close();
    if (is_up.exchange(false, std::memory_order_relaxed) || down_error.empty()) {
        RW_LOG_WARN("event=redis_down address=%s:%u error=\"%s\" policy=%s",
                    config.redis_host.c_str(), unsigned(config.redis_port), error.c_str(),
                    config.redis_failure == RedisFailure::local
                        ? "local"
                        : (config.redis_failure == RedisFailure::closed ? "closed" : "open"));
    }
    down_error = error;
}

// Leases and counts from before a failure are dropped: Redis may have restarted empty, and
// what the hosts admitted meanwhile was the failure policy's to decide.
void RateShare::Impl::forget_leases() {
    for (auto& [id, entry] : tracked) {
        const auto kind = uint32_t(id >> 32);
        const auto slot = uint32_t(id);
        if (kind == concurrency_kind) {
            word(others, slot).store(0, std::memory_order_relaxed);
        } else {
            word(kinds[kind]->credit, slot).store(0, std::memory_order_relaxed);
            word(kinds[kind]->repay, slot).store(0, std::memory_order_relaxed);
        }
    }
}

bool RateShare::Impl::connect() {
    std::string error;
    if (!client.connect(config.redis_host, config.redis_port, config.redis_timeout_ms, error)) {
        mark_down(error);
        return false;
    }
    forget_leases();
    // The first pass (heartbeat included) is what makes it up: a port that accepts but is
    // no Redis stays down.
    return true;
}

void RateShare::Impl::adopt_demands() {
    std::vector<Demand> taken;
    {
        std::lock_guard lock(demand_mutex);
        taken.swap(demands);
        demands.reserve(1024);
    }
    const int64_t now_ms = monotonic_ms();
    for (const Demand& demand : taken) {
        const std::string_view name(demand.name, demand.name_bytes);
        std::string redis_key = demand.kind == concurrency_kind ? "rw:cc:" : "rw:rl:";
        if (demand.kind != concurrency_kind) {
            redis_key += "rRtT"[demand.kind];  // key rpm, key tpm, model rpm, model tpm.
            redis_key += ':';
        }
        redis_key += name;
        tracked.insert_or_assign(uint64_t(demand.kind) << 32 | demand.slot,
                                 Tracked{std::move(redis_key), now_ms});
    }
}

namespace {

void eval_command(std::string& out, const char* script, const std::vector<std::string>& keys,
                  size_t key_begin, size_t key_end, const std::vector<std::string>& head,
                  const std::vector<std::string>& per_key, size_t per_key_width) {
    std::vector<std::string_view> args;
    const std::string count = decimal(int64_t(key_end - key_begin));
    args.emplace_back("EVAL");
    args.emplace_back(script);
    args.emplace_back(count);
    for (size_t i = key_begin; i < key_end; i++) {
        args.emplace_back(keys[i]);
    }
    for (const std::string& arg : head) {
        args.emplace_back(arg);
    }
    for (size_t i = key_begin * per_key_width; i < key_end * per_key_width; i++) {
        args.emplace_back(per_key[i]);
    }
    resp_command(out, args);
}

}  // namespace

void RateShare::Impl::collect(Batch& batch) {
    const int64_t now_ms = monotonic_ms();
    for (auto& [id, entry] : tracked) {
        const auto kind = uint32_t(id >> 32);
        const auto slot = uint32_t(id);
        ZeroPages<uint8_t>& touched =
            kind == concurrency_kind ? concurrency_touched : kinds[kind]->touched;
        if (std::atomic_ref<uint8_t>(touched[slot]).exchange(0, std::memory_order_relaxed) != 0) {
            entry.used_ms = now_ms;
        }
        const bool is_idle = now_ms - entry.used_ms > idle_ms;
        if (kind == concurrency_kind) {
            const uint32_t count = key_limits.in_flight_now(slot);
            const bool is_forgotten = is_idle && count == 0;
            if (is_forgotten) {
                std::atomic_ref<uint8_t>(concurrency_listed[slot]).store(0);
            }
            batch.concurrency_sent.push_back({id, is_forgotten});
            batch.concurrency_keys.push_back(entry.redis_key);
            batch.concurrency_args.push_back(decimal(count));
            continue;
        }
        PerKind& words = *kinds[kind];
        const uint32_t limit = word(words.limit, slot).load(std::memory_order_relaxed);
        const int64_t repay = word(words.repay, slot).exchange(0, std::memory_order_relaxed);
        int64_t want = 0;
        int64_t back = 0;
        if (is_idle) {  // Unlisted first: a shard meeting it again lists it anew.
            std::atomic_ref<uint8_t>(words.listed[slot]).store(0);
            back = word(words.credit, slot).exchange(0, std::memory_order_relaxed);
        } else {
            // A host that refused for want of a lease since the last pass gets twice the
            // slice (up to half the limit); one that did not drifts back to limit/8.
            const int64_t base = std::max<int64_t>((int64_t(limit) + 7) / 8, 1);
            const int64_t need = word(words.need, slot).exchange(0, std::memory_order_relaxed);
            if (need > 0) {
                entry.slice = std::min(std::max(entry.slice, base) * 2,
                                       std::max<int64_t>(int64_t(limit) / 2, base));
            } else if (entry.slice > base) {
                entry.slice -= std::max<int64_t>((entry.slice - base) / 16, 1);
            }
            const int64_t target = std::min<int64_t>(std::max({entry.slice, base, need}), limit);
            const int64_t credit = word(words.credit, slot).load(std::memory_order_relaxed);
            want = credit < target ? target - credit : 0;
        }
        if (want == 0 && repay == 0 && back <= 0 && !is_idle) {
            continue;
        }
        batch.rate_sent.push_back({id, is_idle});
        batch.rate_keys.push_back(entry.redis_key);
        for (const int64_t value :
             {int64_t(std::max<uint32_t>(limit, 1)), want, repay, std::max<int64_t>(back, 0)}) {
            batch.rate_args.push_back(decimal(value));
        }
    }
}

void RateShare::Impl::encode(Batch& batch) const {
    const uint32_t ttl_ms = std::max<uint32_t>(3 * config.redis_sync_ms, 1000);
    resp_command(batch.commands, {"SET", "rw:host:" + host_id, "1", "PX", decimal(ttl_ms)});
    batch.count = 1;
    const std::vector<std::string> rate_head{decimal(rate_window_us)};
    for (size_t begin = 0; begin < batch.rate_keys.size(); begin += batch_keys_max) {
        eval_command(batch.commands, lease_script, batch.rate_keys, begin,
                     std::min(batch.rate_keys.size(), begin + batch_keys_max), rate_head,
                     batch.rate_args, 4);
        batch.count++;
    }
    batch.rate_calls = batch.count - 1;
    const std::vector<std::string> concurrency_head{host_id, decimal(ttl_ms)};
    for (size_t begin = 0; begin < batch.concurrency_keys.size(); begin += batch_keys_max) {
        eval_command(batch.commands, concurrency_script, batch.concurrency_keys, begin,
                     std::min(batch.concurrency_keys.size(), begin + batch_keys_max),
                     concurrency_head, batch.concurrency_args, 1);
        batch.count++;
    }
}

// Every reply is checked before any is applied: a wrong answer changes nothing.
bool RateShare::Impl::apply(const Batch& batch, const std::vector<RespValue>& replies) {
    for (size_t i = 0; i < replies.size(); i++) {
        const RespValue& reply = replies[i];
        const bool is_rate = i >= 1 && i <= batch.rate_calls;
        const size_t begin = (i - 1 - (is_rate ? 0 : batch.rate_calls)) * batch_keys_max;
        const size_t total = is_rate ? batch.rate_sent.size() : batch.concurrency_sent.size();
        const bool is_ok =
            i == 0 ? reply.type == RespType::simple
                   : reply.type == RespType::array &&
                         reply.items.size() == std::min(total - begin, size_t(batch_keys_max));
        if (!is_ok) {
            mark_down("unexpected reply: " +
                      (reply.type == RespType::error ? reply.text : std::string("wrong shape")));
            return false;
        }
    }
    for (size_t i = 0; i < batch.rate_sent.size(); i++) {
        const RespValue& granted = replies[1 + i / batch_keys_max].items[i % batch_keys_max];
        const auto kind = uint32_t(batch.rate_sent[i].id >> 32);
        const auto slot = uint32_t(batch.rate_sent[i].id);
        if (granted.integer > 0) {
            word(kinds[kind]->credit, slot).fetch_add(granted.integer, std::memory_order_relaxed);
        }
        if (batch.rate_sent[i].is_forgotten) {
            tracked.erase(batch.rate_sent[i].id);
        }
    }
    for (size_t i = 0; i < batch.concurrency_sent.size(); i++) {
        const RespValue& sum =
            replies[1 + batch.rate_calls + i / batch_keys_max].items[i % batch_keys_max];
        const auto slot = uint32_t(batch.concurrency_sent[i].id);
        const bool is_forgotten = batch.concurrency_sent[i].is_forgotten;
        word(others, slot)
            .store(is_forgotten ? 0 : uint32_t(std::clamp<int64_t>(sum.integer, 0, UINT32_MAX)),
                   std::memory_order_relaxed);
        if (is_forgotten) {
            tracked.erase(batch.concurrency_sent[i].id);
        }
    }
    return true;
}

bool RateShare::Impl::pass() {
    adopt_demands();
    // Nothing in use: a heartbeat a second is enough to notice Redis going or coming.
    const int64_t now_ms = monotonic_ms();
    if (tracked.empty() && is_up.load(std::memory_order_relaxed) &&
        now_ms - last_pass_ms < idle_heartbeat_ms) {
        return true;
    }
    last_pass_ms = now_ms;
    Batch batch;
    collect(batch);
    encode(batch);
    std::vector<RespValue> replies;
    std::string error;
    const auto started = std::chrono::steady_clock::now();
    if (!client.exchange(batch.commands, batch.count, replies, config.redis_timeout_ms, error)) {
        mark_down(error);
        return false;
    }
    const auto round_trip_us = uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::steady_clock::now() - started)
                                            .count());
    if (!apply(batch, replies)) {
        return false;
    }
    batches.fetch_add(1, std::memory_order_relaxed);
    round_trip_us_last.store(round_trip_us, std::memory_order_relaxed);
    round_trip_us_total.fetch_add(round_trip_us, std::memory_order_relaxed);
    if (round_trip_us > round_trip_us_max.load(std::memory_order_relaxed)) {
        round_trip_us_max.store(round_trip_us, std::memory_order_relaxed);
    }
    if (!is_up.exchange(true, std::memory_order_relaxed)) {
        RW_LOG_INFO("event=redis_up address=%s:%u host_id=%s", config.redis_host.c_str(),
                    unsigned(config.redis_port), host_id.c_str());
        down_error.clear();
    }
    return true;
}

void RateShare::Impl::run() {
    uint32_t backoff_ms = backoff_first_ms;
    std::unique_lock lock(stop_mutex);
    while (!is_stopping) {
        lock.unlock();
        const bool is_ok = (client.is_connected() || connect()) && pass();
        lock.lock();
        const uint32_t wait_ms = is_ok ? config.redis_sync_ms : backoff_ms;
        backoff_ms = is_ok ? backoff_first_ms : std::min(backoff_ms * 2, backoff_max_ms);
        stop_changed.wait_for(lock, std::chrono::milliseconds(wait_ms),
                              [this] { return is_stopping; });
    }
    lock.unlock();
    if (client.is_connected()) {  // The other hosts get this host's slots back at once.
        std::string command;
        resp_command(command, {"DEL", "rw:host:" + host_id});
        std::vector<RespValue> replies;
        std::string error;
        (void)client.exchange(command, 1, replies, config.redis_timeout_ms, error);
    }
}

uint32_t rate_share_name(const KeyHash& hash, std::string_view model,
                         char (&out)[rate_share_name_bytes]) {
    static constexpr char hex[] = "0123456789abcdef";
    uint32_t used = 0;
    for (uint32_t i = 0; i < 16 && i < hash.size(); i++) {
        out[used++] = hex[hash[i] >> 4];
        out[used++] = hex[hash[i] & 15];
    }
    if (!model.empty()) {
        uint64_t fnv = 14695981039346656037ull;  // FNV-1a: the name, not a secret.
        for (const char c : model) {
            fnv = (fnv ^ uint8_t(c)) * 1099511628211ull;
        }
        out[used++] = ':';
        for (int shift = 60; shift >= 0; shift -= 4) {
            out[used++] = hex[(fnv >> shift) & 15];
        }
    }
    RW_ASSERT(used <= rate_share_name_bytes);
    return used;
}

}  // namespace rw
