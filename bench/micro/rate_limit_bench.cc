// bench/micro/rate_limit_bench.cc — the per-request cost of the rate limiter
// (proxy/rate_limit.h): an rpm take (one compare-and-swap on the key's bucket word), a tpm
// reservation and its settle (a CAS and a fetch_sub), alone on one thread and with a second
// thread on the same key (the cache line moving between cores, as two shards serving one
// key do), and the x-ratelimit-* header lines a limited answer carries.
#include <benchmark/benchmark.h>

#include "proxy/rate_limit.h"

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
