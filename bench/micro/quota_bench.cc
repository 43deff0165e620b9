// bench/micro/quota_bench.cc — the admission cost of an exact token quota: one reservation
// (a compare-and-swap on the key's QuotaTable word) and its settle (one fetch_add), alone
// on one thread, and with a second thread hammering the same key (the cache line moving
// between cores, as two shards serving one key do), against today's plain charge at the
// end (add_tokens) for comparison.
#include <benchmark/benchmark.h>

#include "storage/snapshot.h"

namespace rw {
namespace {

QuotaTable& bench_table() {
    static QuotaTable table(16);
    static const bool is_assigned = [] {
        for (int64_t key = 1; key <= 16; key++) {
            if (!table.slot_for_key(key, 0).ok()) {
                return false;
            }
        }
        return true;
    }();
    (void)is_assigned;
    return table;
}

// Reserve a request's bound, then settle it to what it cost: the admission + finish pair.
void BM_ReserveSettle(benchmark::State& state) {
    QuotaTable& table = bench_table();
    constexpr int64_t limit = INT64_MAX / 4;
    for (auto _ : state) {
        const bool is_reserved = table.try_reserve(0, 4200, limit);
        benchmark::DoNotOptimize(is_reserved);
        table.settle(0, 4200, 57);
    }
}
BENCHMARK(BM_ReserveSettle)->Threads(1)->Threads(2);

// A refusal: the bound does not fit (one load, no write).
void BM_ReserveRefused(benchmark::State& state) {
    QuotaTable& table = bench_table();
    for (auto _ : state) {
        const bool is_reserved = table.try_reserve(1, 4200, 100);
        benchmark::DoNotOptimize(is_reserved);
    }
}
BENCHMARK(BM_ReserveRefused);

// The charge an unlimited key pays at the end of a request (what every key paid before).
void BM_AddTokens(benchmark::State& state) {
    QuotaTable& table = bench_table();
    for (auto _ : state) {
        table.add_tokens(2, 57);
    }
}
BENCHMARK(BM_AddTokens)->Threads(1)->Threads(2);

}  // namespace
}  // namespace rw

BENCHMARK_MAIN();
