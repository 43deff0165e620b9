// bench/micro/cost_bench.cc — what pricing adds to a request's record on the shard: the
// price lookup in the snapshot's PriceTable (exact hit, longest-prefix fallback, miss)
// over a table of realistic size, and the cost rule (128-bit sum, one rounding).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "proxy/cost.h"
#include "storage/prices.h"

namespace rw {
namespace {

// 1000 exact names and 100 prefixes, two versions each, some channel-specific.
PriceTable bench_table() {
    std::vector<PriceEntry> entries;
    int64_t id = 1;
    for (int i = 0; i < 1000; i++) {
        for (int version = 0; version < 2; version++) {
            PriceEntry entry;
            entry.id = id++;
            entry.model = "model-" + std::to_string(i) + "-2025-01-01";
            entry.channel_id = i % 10 == 0 ? 3 : 0;
            entry.effective_from_ms = version * 1'000'000;
            entry.rates.input_per_mtok = 150'000'000;
            entry.rates.output_per_mtok = 600'000'000;
            entries.push_back(entry);
        }
    }
    for (int i = 0; i < 100; i++) {
        PriceEntry entry;
        entry.id = id++;
        entry.model = "family-" + std::to_string(i);
        entry.is_prefix = true;
        entries.push_back(entry);
    }
    return PriceTable(std::move(entries));
}

void BM_PriceFindExact(benchmark::State& state) {
    const PriceTable table = bench_table();
    for (auto _ : state) {
        benchmark::DoNotOptimize(table.find("model-517-2025-01-01", 5, 2'000'000));
    }
}
BENCHMARK(BM_PriceFindExact);

void BM_PriceFindPrefix(benchmark::State& state) {
    const PriceTable table = bench_table();
    for (auto _ : state) {
        benchmark::DoNotOptimize(table.find("family-42-large-2025", 5, 2'000'000));
    }
}
BENCHMARK(BM_PriceFindPrefix);

void BM_PriceFindMiss(benchmark::State& state) {
    const PriceTable table = bench_table();
    for (auto _ : state) {
        benchmark::DoNotOptimize(table.find("unknown-model", 5, 2'000'000));
    }
}
BENCHMARK(BM_PriceFindMiss);

void BM_CostNano(benchmark::State& state) {
    PriceRates rates;
    rates.input_per_mtok = 150'000'000;
    rates.output_per_mtok = 600'000'000;
    rates.cached_input_per_mtok = 75'000'000;
    rates.cache_write_per_mtok = 150'000'000;
    rates.reasoning_per_mtok = 600'000'000;
    CostTokens tokens{2006, 300, 1920, 0, 256};
    for (auto _ : state) {
        benchmark::DoNotOptimize(tokens);
        benchmark::DoNotOptimize(cost_nano(rates, tokens, true));
    }
}
BENCHMARK(BM_CostNano);

}  // namespace
}  // namespace rw

BENCHMARK_MAIN();
