// bench/micro/route_bench.cc — the route lookup on the request path: route_pick over a
// snapshot's channels (24 channels in 3 priority groups, 8 models and 2 model_map entries
// each) and the model each picked channel is sent, for a name listed exactly, a name only a
// model_map serves, and a name no channel serves. Channels are compiled as a snapshot load
// compiles them (Snapshot's constructor).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "proxy/route.h"

namespace rw {
namespace {

Snapshot bench_snapshot() {
    std::vector<ChannelEntry> channels;
    for (int i = 0; i < 24; i++) {
        ChannelEntry channel;
        channel.id = i + 1;
        channel.name = "channel-" + std::to_string(i);
        channel.priority = 10 - (i / 8) * 5;  // Sorted by priority, highest first.
        channel.weight = 1 + uint32_t(i % 3);
        for (int m = 0; m < 8; m++) {
            channel.models.push_back("model-" + std::to_string((i + m) % 32) + "-2025-01-01");
        }
        channel.model_map = {{"alias-" + std::to_string(i % 4), "model-" + std::to_string(i)},
                             {"short-" + std::to_string(i), "model-" + std::to_string(i)}};
        channels.push_back(std::move(channel));
    }
    return Snapshot({}, std::move(channels));
}

void route_lookup(benchmark::State& state, std::string_view model) {
    const Snapshot snapshot = bench_snapshot();
    ChannelHealthBoard health{HealthSettings{}};
    uint64_t random = 0x9E3779B97F4A7C15ull;
    for (auto _ : state) {
        const ChannelEntry* picked[attempts_max];
        const RoutePicks picks = route_pick(snapshot.channels(), Endpoint::chat, model, health,
                                            1000, random, {picked, 3});
        std::string_view sent;
        for (uint32_t i = 0; i < picks.count; i++) {
            sent = channel_model_sent(*picked[i], model);
        }
        benchmark::DoNotOptimize(sent);
        benchmark::DoNotOptimize(picks);
    }
}

void BM_RouteExact(benchmark::State& state) {
    route_lookup(state, "model-20-2025-01-01");
}
BENCHMARK(BM_RouteExact);

void BM_RouteModelMap(benchmark::State& state) {
    route_lookup(state, "alias-2");
}
BENCHMARK(BM_RouteModelMap);

void BM_RouteMiss(benchmark::State& state) {
    route_lookup(state, "no-such-model");
}
BENCHMARK(BM_RouteMiss);

}  // namespace
}  // namespace rw

BENCHMARK_MAIN();
