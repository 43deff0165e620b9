// bench/micro/stored_responses_bench.cc — the shared table of stored response ids
// (proxy/stored_response.h) as the request path uses it: a lookup of a known id (every
// GET /v1/responses/{id} and every previous_response_id), a lookup that misses, and a new
// id learnt at the end of a /v1/responses request; on one thread, and on two threads at
// once (two shards), each on ids of its own, as shards serving different clients are.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "proxy/stored_response.h"

namespace rw {
namespace {

constexpr uint32_t ids_per_thread = 4096;

StoredResponses& bench_table() {
    static StoredResponses table(stored_responses_capacity);
    return table;
}

std::vector<std::string> thread_ids(int thread_index, const char* kind) {
    std::vector<std::string> ids;
    ids.reserve(ids_per_thread);
    for (uint32_t i = 0; i < ids_per_thread; i++) {
        char id[64];
        std::snprintf(id, sizeof(id), "resp_%s%02d%08x6f1c2a9e4b7d3c5a", kind, thread_index, i);
        ids.emplace_back(id);
    }
    return ids;
}

// Lookups of this thread's ids: all known (`is_known`, put first) or none.
void bench_find(benchmark::State& state, const char* kind, bool is_known) {
    StoredResponses& table = bench_table();
    const std::vector<std::string> ids = thread_ids(state.thread_index(), kind);
    for (const std::string& id : ids) {
        if (is_known) {
            table.put(id, 7, 3, "gpt-4.1-mini");
        }
    }
    StoredResponse found;
    char model[record_model_bytes_max + 1];
    uint32_t index = 0;
    for (auto _ : state) {
        const bool is_found = table.find(ids[index++ % ids_per_thread], found, model);
        benchmark::DoNotOptimize(is_found);
        benchmark::DoNotOptimize(found);
    }
}

void BM_FindHit(benchmark::State& state) {
    bench_find(state, "hit", true);
}
BENCHMARK(BM_FindHit)->Threads(1)->Threads(2);

void BM_FindMiss(benchmark::State& state) {
    bench_find(state, "miss", false);
}
BENCHMARK(BM_FindMiss)->Threads(1)->Threads(2);

void BM_Put(benchmark::State& state) {
    StoredResponses& table = bench_table();
    const std::vector<std::string> ids = thread_ids(state.thread_index(), "put");
    uint32_t index = 0;
    for (auto _ : state) {
        table.put(ids[index++ % ids_per_thread], 7, 3, "gpt-4.1-mini");
    }
}
BENCHMARK(BM_Put)->Threads(1)->Threads(2);

}  // namespace
}  // namespace rw

BENCHMARK_MAIN();
