// bench/micro/cost_bench.cc — what pricing adds to a request's record on the shard: the
// price lookup in the snapshot's PriceTable (exact hit, longest-prefix fallback, miss)
// over a table of realistic size, the cost rule (128-bit sum, one rounding), and a money
// budget's reserve + settle on its per-period word.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "proxy/cost.h"
#include "storage/budget.h"
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

// The admission cost of a money budget, as admission and request_finish pay it: the price
// lookup and the request's bound, one reservation on the key's tagged per-period word (a
// compare-and-swap), and its settle to the row's cost (another). With two threads on the
// same key the word's cache line moves between cores, as with two shards serving one key.
void BM_MoneyReserveSettle(benchmark::State& state) {
    static const PriceTable table = bench_table();
    static BudgetTable budgets(4);
    const uint32_t tag = BudgetTable::tag_of(budget_period_index(BudgetPeriod::daily, 1796472000));
    for (auto _ : state) {
        const PriceEntry* price = table.find("model-517-2025-01-01", 5, 2'000'000);
        const int64_t bound = cost_upper_bound_nano(price->rates, 2000, 256);
        uint32_t counted = 0;
        const bool is_reserved =
            budgets.try_add(0, BudgetTable::nano, tag, bound, budget_amount_max, counted);
        benchmark::DoNotOptimize(is_reserved);
        budgets.settle(0, BudgetTable::nano, counted, bound, bound / 3);
    }
}
BENCHMARK(BM_MoneyReserveSettle)->Threads(1)->Threads(2);

// The word alone: reserve and settle, without the price lookup.
void BM_BudgetWordReserveSettle(benchmark::State& state) {
    static BudgetTable budgets(4);
    const uint32_t tag = BudgetTable::tag_of(20000);
    for (auto _ : state) {
        uint32_t counted = 0;
        const bool is_reserved =
            budgets.try_add(1, BudgetTable::nano, tag, 4200, budget_amount_max, counted);
        benchmark::DoNotOptimize(is_reserved);
        budgets.settle(1, BudgetTable::nano, counted, 4200, 57);
    }
}
BENCHMARK(BM_BudgetWordReserveSettle)->Threads(1)->Threads(2);

}  // namespace
}  // namespace rw

BENCHMARK_MAIN();
