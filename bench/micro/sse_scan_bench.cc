// bench/micro/sse_scan_bench.cc — the SSE usage scanner's cost per stream: a 20-event
// OpenAI chat stream with include_usage (19 chunks with "usage":null, one usage chunk,
// [DONE]) fed as one piece per event (how upstreams flush) and as one piece, plus the two
// hot loops on their own. Goal (issue "JSON side"): a few hundred ns per stream, simdjson
// on the usage chunk only.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "proxy/sse_scan.h"

namespace rw {
namespace {

std::string bench_chat_chunk(std::string_view content) {
    return std::string(R"(data: {"id":"chatcmpl-AbC123xyz","object":"chat.completion.chunk",)"
                       R"("created":1717000000,"model":"gpt-4o-mini-2024-07-18",)"
                       R"("system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":)"
                       R"({"content":")") +
           std::string(content) + R"("},"logprobs":null,"finish_reason":null}],"usage":null})" +
           "\n\n";
}

// The pieces of a 20-event stream, one event each.
std::vector<std::string> bench_chat_events() {
    std::vector<std::string> events;
    const char* words[] = {"Hello", "!",      " How", " can",  " I",    " help",
                           " you",  " with",  " the", " code", " you",  " sent",
                           " me",   " today", "?",    " Ask",  " away", "."};
    for (const char* word : words) {
        events.push_back(bench_chat_chunk(word));
    }
    events.push_back(
        R"(data: {"id":"chatcmpl-AbC123xyz","object":"chat.completion.chunk","created":1717000000,)"
        R"("model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[],)"
        R"("usage":{"prompt_tokens":13,"completion_tokens":17,"total_tokens":30,)"
        R"("prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},)"
        R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
        R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})"
        "\n\n");
    events.push_back("data: [DONE]\n\n");
    return events;
}

uint64_t bench_total_bytes(const std::vector<std::string>& pieces) {
    uint64_t bytes = 0;
    for (const std::string& piece : pieces) {
        bytes += piece.size();
    }
    return bytes;
}

void bench_scan(benchmark::State& state, const std::vector<std::string>& pieces) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 16 << 20);
    SseUsageScanner scanner;
    for (auto _ : state) {
        scanner.start(UsageFormat::chat, arena);
        for (const std::string& piece : pieces) {
            scanner.feed(piece);
        }
        benchmark::DoNotOptimize(scanner.usage().total_tokens);
        if (!scanner.is_done() || scanner.usage().total_tokens != 30 ||
            scanner.events_parsed_count() != 1) {
            state.SkipWithError("wrong scan result");
            break;
        }
        arena.release();
    }
    arena.release();
    const uint64_t bytes = bench_total_bytes(pieces);
    state.SetBytesProcessed(int64_t(state.iterations() * bytes));
    state.counters["stream_bytes"] = double(bytes);
    state.counters["ns_per_byte"] = benchmark::Counter(
        double(bytes), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_SseScanChatStreamPiecePerEvent(benchmark::State& state) {
    bench_scan(state, bench_chat_events());
}
BENCHMARK(BM_SseScanChatStreamPiecePerEvent);

void BM_SseScanChatStreamOnePiece(benchmark::State& state) {
    std::string whole;
    for (const std::string& event : bench_chat_events()) {
        whole += event;
    }
    bench_scan(state, {whole});
}
BENCHMARK(BM_SseScanChatStreamOnePiece);

// The same stream with the usage chunk removed: the cost without simdjson.
void BM_SseScanChatStreamNoUsageEvent(benchmark::State& state) {
    std::vector<std::string> events = bench_chat_events();
    events.erase(events.end() - 2);
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 16 << 20);
    SseUsageScanner scanner;
    for (auto _ : state) {
        scanner.start(UsageFormat::chat, arena);
        for (const std::string& piece : events) {
            scanner.feed(piece);
        }
        benchmark::DoNotOptimize(scanner.events_count());
        arena.release();
    }
    arena.release();
    state.SetBytesProcessed(int64_t(state.iterations() * bench_total_bytes(events)));
}
BENCHMARK(BM_SseScanChatStreamNoUsageEvent);

void BM_SseFindLineEnd(benchmark::State& state) {
    const std::string line = bench_chat_chunk("Hello");  // ~260 bytes to the first LF.
    for (auto _ : state) {
        benchmark::DoNotOptimize(sse_find_line_end(line.data(), uint32_t(line.size())));
    }
    state.SetBytesProcessed(int64_t(state.iterations() * line.find('\n')));
}
BENCHMARK(BM_SseFindLineEnd);

// The pre-check on a chunk without a usage key (no tail fast path: a full search).
void BM_SseChatPreCheckFullSearch(benchmark::State& state) {
    std::string data = bench_chat_chunk("Hello").substr(6);
    data = data.substr(0, data.find(R"(,"usage":null)")) + "}";
    for (auto _ : state) {
        benchmark::DoNotOptimize(sse_chat_data_needs_parse(data.data(), uint32_t(data.size())));
    }
    state.SetBytesProcessed(int64_t(state.iterations() * data.size()));
}
BENCHMARK(BM_SseChatPreCheckFullSearch);

}  // namespace
}  // namespace rw

BENCHMARK_MAIN();
