// bench/micro/usage_bench.cc — simdjson On Demand on the JSON the gateway reads per
// request: usage_from_json on a typical non-streaming chat completion and Responses body,
// and request_fields_parse + request_rewrite on a typical chat request (the request side
// of the same library, proxy/json_fields).
#include <benchmark/benchmark.h>

#include <string>

#include "proxy/json_fields.h"
#include "proxy/usage.h"

namespace rw {
namespace {

std::string bench_padded(std::string_view text) {
    std::string padded(text);
    padded.append(json_padding_bytes, '\0');
    return padded;
}

constexpr std::string_view chat_completion_body = R"({
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today? I can answer questions, write and review code, summarise documents or help you plan your week.",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default",
  "system_fingerprint": "fp_f5bdcc3276"
})";

void bench_usage(benchmark::State& state, std::string_view text, UsageFormat format,
                 uint64_t total_expected) {
    const std::string padded = bench_padded(text);
    const std::string_view body(padded.data(), text.size());
    for (auto _ : state) {
        UsageCounts counts;
        const bool is_ok = usage_from_json(body, format, counts);
        benchmark::DoNotOptimize(counts.total_tokens);
        if (!is_ok || counts.total_tokens != total_expected) {
            state.SkipWithError("wrong usage");
            break;
        }
    }
    state.SetBytesProcessed(int64_t(state.iterations() * text.size()));
    state.counters["body_bytes"] = double(text.size());
}

void BM_UsageFromJsonChatCompletion(benchmark::State& state) {
    bench_usage(state, chat_completion_body, UsageFormat::chat, 29);
}
BENCHMARK(BM_UsageFromJsonChatCompletion);

void BM_UsageFromJsonResponses(benchmark::State& state) {
    bench_usage(
        state,
        R"({"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response",)"
        R"("created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,)"
        R"("instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[)"
        R"({"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",)"
        R"("status":"completed","role":"assistant","content":[{"type":"output_text","text":)"
        R"("In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a )"
        R"(hidden pool that reflected the stars.","annotations":[]}]}],"parallel_tool_calls":true,)"
        R"("previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,)"
        R"("temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],)"
        R"("top_p":1.0,"truncation":"disabled","usage":{"input_tokens":36,"input_tokens_details":)"
        R"({"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},)"
        R"("total_tokens":123},"user":null,"metadata":{}})",
        UsageFormat::responses, 123);
}
BENCHMARK(BM_UsageFromJsonResponses);

constexpr std::string_view chat_request_body =
    R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful )"
    R"(assistant."},{"role":"user","content":"Write a haiku about recursion in programming, )"
    R"(and explain it in two sentences."}],"temperature":0.7,"max_tokens":256,"stream":true})";

void BM_RequestFieldsParse(benchmark::State& state) {
    const std::string padded = bench_padded(chat_request_body);
    const std::string_view body(padded.data(), chat_request_body.size());
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 16 << 20);
    for (auto _ : state) {
        RequestFields fields;
        const RequestFieldsError error = request_fields_parse(arena, body, fields);
        benchmark::DoNotOptimize(fields.model_span);
        if (error != RequestFieldsError::none || !fields.is_streaming) {
            state.SkipWithError("wrong fields");
            break;
        }
    }
    arena.release();
    state.SetBytesProcessed(int64_t(state.iterations() * chat_request_body.size()));
}
BENCHMARK(BM_RequestFieldsParse);

void BM_RequestRewriteModelAndIncludeUsage(benchmark::State& state) {
    const std::string padded = bench_padded(chat_request_body);
    const std::string_view body(padded.data(), chat_request_body.size());
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 16 << 20);
    RequestFields fields;
    if (request_fields_parse(arena, body, fields) != RequestFieldsError::none) {
        state.SkipWithError("parse failed");
    }
    for (auto _ : state) {
        const std::string_view output =
            request_rewrite(arena, body, fields, "gpt-4o-mini-2024-07-18", true);
        benchmark::DoNotOptimize(output.data());
        arena.release();
    }
    arena.release();
    state.SetBytesProcessed(int64_t(state.iterations() * chat_request_body.size()));
}
BENCHMARK(BM_RequestRewriteModelAndIncludeUsage);

}  // namespace
}  // namespace rw

BENCHMARK_MAIN();
