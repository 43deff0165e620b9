// bench/micro/rate_limit_bench.cc — the per-request cost of the rate limiter
// (proxy/rate_limit.h): an rpm take (one compare-and-swap on the key's bucket word), a tpm
// reservation and its settle (a CAS and a fetch_sub), alone on one thread and with a second
// thread on the same key (the cache line moving between cores, as two shards serving one
// key do), the same rpm take when limits are shared through Redis (rate_share.h), and the
// x-ratelimit-* header lines a limited answer carries.
#include <benchmark/benchmark.h>

#include "proxy/admission.h"
#include "proxy/rate_limit.h"
#include "proxy/rate_share.h"

namespace rw {
namespace {

RateBuckets& bench_buckets() {
    static RateBuckets buckets(16);
    return buckets;
}

int64_t bench_now_us() {
    return 1'700'000'000'000'000;
}

// An rpm take that always fits (the limit is huge), then given back: the head's check.
void BM_RpmTake(benchmark::State& state) {
    RateBuckets& buckets = bench_buckets();
    RateView view{};
    uint64_t wait_us = 0;
    for (auto _ : state) {
        const bool is_taken = buckets.try_take(0, 1, 4'000'000'000u, bench_now_us(), view, wait_us);
        benchmark::DoNotOptimize(is_taken);
        benchmark::DoNotOptimize(view);
        buckets.give_back(0, 1, 4'000'000'000u);
    }
}
BENCHMARK(BM_RpmTake)->Threads(1)->Threads(2);

// A tpm reservation of a request's bound, then its settle to the usage.
void BM_TpmReserveSettle(benchmark::State& state) {
    RateBuckets& buckets = bench_buckets();
    RateView view{};
    uint64_t wait_us = 0;
    for (auto _ : state) {
        const bool is_taken =
            buckets.try_take(1, 4200, 4'000'000'000u, bench_now_us(), view, wait_us);
        benchmark::DoNotOptimize(is_taken);
        buckets.give_back(1, 4200 - 57, 4'000'000'000u);
    }
}
BENCHMARK(BM_TpmReserveSettle)->Threads(1)->Threads(2);

// A refusal: the bucket has no room (one load, no write).
void BM_RpmRefused(benchmark::State& state) {
    RateBuckets& buckets = bench_buckets();
    RateView view{};
    uint64_t wait_us = 0;
    for (uint32_t index = 0; index < 10; index++) {
        (void)buckets.try_take(2, 1, 10, bench_now_us(), view, wait_us);
    }
    for (auto _ : state) {
        const bool is_taken = buckets.try_take(2, 1, 10, bench_now_us(), view, wait_us);
        benchmark::DoNotOptimize(is_taken);
    }
}
BENCHMARK(BM_RpmRefused);

// RINGWAY_REDIS set: the rpm take as a shard does it when limits are shared (the local
// bucket, then this host's lease: the limit word, the touched flag, the listed check and a
// CAS on the lease word; no lock once the limit is listed, no syscall), then both given back.
// The rw-redis thread is not started: the request path never waits for it.
void BM_RpmTakeShared(benchmark::State& state) {
    static Config config{};
    static KeyLimits key_limits(16);
    static RateShare share(config, 16, 16, key_limits);
    RateBuckets& buckets = bench_buckets();
    if (state.thread_index() == 0) {
        share.give_back(RateKind::key_requests, 3, uint64_t(1) << 40);  // A large lease.
    }
    char name[rate_share_name_bytes];
    const uint32_t name_bytes = rate_share_name(KeyHash{}, {}, name);
    RateView view{};
    uint64_t wait_us = 0;
    for (auto _ : state) {
        const bool is_taken =
            buckets.try_take(3, 1, 4'000'000'000u, bench_now_us(), view, wait_us) &&
            share.take(RateKind::key_requests, 3, 1, 4'000'000'000u, {name, name_bytes});
        benchmark::DoNotOptimize(is_taken);
        share.give_back(RateKind::key_requests, 3, 1);
        buckets.give_back(3, 1, 4'000'000'000u);
    }
}
BENCHMARK(BM_RpmTakeShared)->Threads(1)->Threads(2);

// The six x-ratelimit-* lines of a key with both limits.
void BM_RateHeaders(benchmark::State& state) {
    RateHold hold{};
    hold.requests = {60, 59, 1'000'000};
    hold.tokens = {90000, 85800, 2'800'000};
    char out[rate_headers_bytes_max];
    for (auto _ : state) {
        benchmark::DoNotOptimize(rate_headers_write(hold, out));
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_RateHeaders);

}  // namespace
}  // namespace rw

BENCHMARK_MAIN();
