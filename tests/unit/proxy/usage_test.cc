// tests/unit/proxy/usage_test.cc — usage extraction from whole upstream bodies in each
// format (chat, Responses, embeddings, Anthropic), with missing totals, null or partial
// usage, odd number spellings and garbage; and the merge rules the SSE scanner relies on.
#include "proxy/usage.h"

#include <gtest/gtest.h>

#include <string>

#include "proxy/json_fields.h"

namespace rw {
namespace {

// Runs usage_from_json on text followed by the padding simdjson reads.
bool usage_of(std::string_view text, UsageFormat format, UsageCounts& counts) {
    std::string padded(text);
    padded.append(json_padding_bytes, '\0');
    return usage_from_json(std::string_view(padded.data(), text.size()), format, counts);
}

void expect_counts(const UsageCounts& counts, uint64_t prompt, uint64_t completion,
                   uint64_t total) {
    EXPECT_TRUE(counts.has_usage);
    EXPECT_EQ(counts.prompt_tokens, prompt);
    EXPECT_EQ(counts.completion_tokens, completion);
    EXPECT_EQ(counts.total_tokens, total);
}

// The token kinds kept apart (parts of prompt and completion, usage.h).
void expect_kinds(const UsageCounts& counts, uint64_t cached_input, uint64_t cache_write,
                  uint64_t reasoning) {
    EXPECT_EQ(counts.cached_input_tokens, cached_input);
    EXPECT_EQ(counts.cache_write_tokens, cache_write);
    EXPECT_EQ(counts.reasoning_tokens, reasoning);
}

TEST(UsageFromJson, ChatCompletion) {
    const std::string_view body = R"({
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [{"index": 0, "message": {"role": "assistant",
      "content": "Hello! \"usage\": {\"prompt_tokens\": 999}", "refusal": null,
      "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {
    "prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default"
})";
    UsageCounts counts;
    ASSERT_TRUE(usage_of(body, UsageFormat::chat, counts));
    expect_counts(counts, 19, 10, 29);
}

// Golden: an o-series chat answer with a prompt-cache hit and reasoning, as OpenAI sends it.
// cached_tokens is part of prompt_tokens, reasoning_tokens part of completion_tokens.
TEST(UsageFromJson, ChatKeepsCachedAndReasoningTokensApart) {
    const std::string_view body = R"({"id":"chatcmpl-C1","object":"chat.completion",
"created":1741569952,"model":"o4-mini-2025-04-16","choices":[{"index":0,"message":{"role":
"assistant","content":"42"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2006,
"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920,
"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":256,"audio_tokens":0,
"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default"})";
    UsageCounts counts;
    ASSERT_TRUE(usage_of(body, UsageFormat::chat, counts));
    expect_counts(counts, 2006, 300, 2306);
    expect_kinds(counts, 1920, 0, 256);
}

// Golden: the Responses API's names for the same kinds.
TEST(UsageFromJson, ResponsesKeepsCachedAndReasoningTokensApart) {
    const std::string_view body = R"({"id":"resp_1","object":"response","status":"completed",
"output":[],"usage":{"input_tokens":5000,"input_tokens_details":{"cached_tokens":4096},
"output_tokens":900,"output_tokens_details":{"reasoning_tokens":640},"total_tokens":5900}})";
    UsageCounts counts;
    ASSERT_TRUE(usage_of(body, UsageFormat::responses, counts));
    expect_counts(counts, 5000, 900, 5900);
    expect_kinds(counts, 4096, 0, 640);
}

// Golden: Anthropic reports cache reads and writes beside input_tokens (not inside it); the
// prompt total keeps all three, the kinds say which is which.
TEST(UsageFromJson, AnthropicKeepsCacheReadsAndWritesApart) {
    const std::string_view body = R"({"id":"msg_01","type":"message","role":"assistant",
"content":[{"type":"text","text":"Hi"}],"model":"claude-sonnet-4-20250514","stop_reason":
"end_turn","usage":{"input_tokens":12,"cache_creation_input_tokens":100,
"cache_read_input_tokens":2000,"cache_creation":{"ephemeral_5m_input_tokens":100,
"ephemeral_1h_input_tokens":0},"output_tokens":6,"service_tier":"standard"}})";
    UsageCounts counts;
    ASSERT_TRUE(usage_of(body, UsageFormat::anthropic_messages, counts));
    expect_counts(counts, 2112, 6, 2118);
    expect_kinds(counts, 2000, 100, 0);
}

TEST(UsageFromJson, KindsAreClampedToTheTotalsTheyArePartOf) {
    UsageCounts counts;
    // More cached than prompt, more reasoning than completion: never priced twice.
    ASSERT_TRUE(usage_of(
        R"({"usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":50},"completion_tokens_details":{"reasoning_tokens":9}}})",
        UsageFormat::chat, counts));
    expect_counts(counts, 10, 3, 13);
    expect_kinds(counts, 10, 0, 3);
    // Embeddings have no output: no reasoning either.
    ASSERT_TRUE(usage_of(R"({"usage":{"prompt_tokens":9,"total_tokens":9}})",
                         UsageFormat::embeddings, counts));
    expect_kinds(counts, 0, 0, 0);
    // The chat names mean nothing in a Responses body and the other way round.
    ASSERT_TRUE(
        usage_of(R"({"usage":{"input_tokens":8,"prompt_tokens_details":{"cached_tokens":4}}})",
                 UsageFormat::responses, counts));
    expect_kinds(counts, 0, 0, 0);
}

TEST(UsageFromJson, MalformedDetailsAreIgnoredNotFatal) {
    // Details refine the totals; a server that writes them oddly still has its totals
    // charged (the tokens are then priced as plain input and output).
    const char* cases[] = {
        R"({"usage":{"prompt_tokens":7,"completion_tokens":2,"prompt_tokens_details":null}})",
        R"({"usage":{"prompt_tokens":7,"completion_tokens":2,"prompt_tokens_details":[1]}})",
        R"({"usage":{"prompt_tokens":7,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":"4"}}})",
        R"({"usage":{"prompt_tokens":7,"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":-1}}})",
        R"({"usage":{"prompt_tokens":7,"completion_tokens":2,"completion_tokens_details":"none"}})",
    };
    for (const char* text : cases) {
        UsageCounts counts;
        ASSERT_TRUE(usage_of(text, UsageFormat::chat, counts)) << text;
        expect_counts(counts, 7, 2, 9);
        expect_kinds(counts, 0, 0, 0);
    }
    // Broken JSON inside a details object is still broken JSON.
    UsageCounts counts;
    EXPECT_FALSE(
        usage_of(R"({"usage":{"prompt_tokens":7,"prompt_tokens_details":{"cached_tokens":}}})",
                 UsageFormat::chat, counts));
}

TEST(UsageFromJson, LegacyCompletionAndUsageFirst) {
    UsageCounts counts;
    ASSERT_TRUE(usage_of(
        R"({"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12},"object":"text_completion","choices":[{"text":"x"}]})",
        UsageFormat::chat, counts));
    expect_counts(counts, 5, 7, 12);
}

TEST(UsageFromJson, ResponsesApi) {
    const std::string_view body = R"({"id":"resp_67cb","object":"response","status":"completed",
"output":[{"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text",
"text":"Hi","annotations":[]}]}],"usage":{"input_tokens":36,"input_tokens_details":
{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},
"total_tokens":123},"user":null,"metadata":{}})";
    UsageCounts counts;
    ASSERT_TRUE(usage_of(body, UsageFormat::responses, counts));
    expect_counts(counts, 36, 87, 123);
}

TEST(UsageFromJson, Embeddings) {
    UsageCounts counts;
    ASSERT_TRUE(usage_of(
        R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023,-0.0093]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})",
        UsageFormat::embeddings, counts));
    expect_counts(counts, 8, 0, 8);
    // Missing total: prompt alone.
    ASSERT_TRUE(usage_of(R"({"usage":{"prompt_tokens":9}})", UsageFormat::embeddings, counts));
    expect_counts(counts, 9, 0, 9);
    // Total alone (vLLM's and Jina's rerank): all of it is input.
    ASSERT_TRUE(
        usage_of(R"({"results":[],"usage":{"total_tokens":37}})", UsageFormat::embeddings, counts));
    expect_counts(counts, 37, 0, 37);
    // Both reported: the prompt stays as reported.
    ASSERT_TRUE(usage_of(R"({"usage":{"prompt_tokens":5,"total_tokens":37}})",
                         UsageFormat::embeddings, counts));
    expect_counts(counts, 5, 0, 37);
}

TEST(UsageFromJson, AnthropicCountsCacheTokensIntoPrompt) {
    const std::string_view body = R"({"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message",
"role":"assistant","content":[{"type":"text","text":"Hello!"}],"model":"claude-sonnet-4-20250514",
"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,
"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":6,
"service_tier":"standard"}})";
    UsageCounts counts;
    ASSERT_TRUE(usage_of(body, UsageFormat::anthropic_messages, counts));
    expect_counts(counts, 2112, 6, 2118);
    ASSERT_TRUE(
        usage_of(R"({"usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":null}})",
                 UsageFormat::anthropic_messages, counts));
    expect_counts(counts, 3, 4, 7);
}

TEST(UsageFromJson, MissingTotalIsComputed) {
    UsageCounts counts;
    ASSERT_TRUE(usage_of(R"({"usage":{"prompt_tokens":11,"completion_tokens":4}})",
                         UsageFormat::chat, counts));
    expect_counts(counts, 11, 4, 15);
    ASSERT_TRUE(usage_of(R"({"usage":{"input_tokens":1,"output_tokens":2}})",
                         UsageFormat::responses, counts));
    expect_counts(counts, 1, 2, 3);
}

TEST(UsageFromJson, PartialUsageCountsWhatIsThere) {
    UsageCounts counts;
    ASSERT_TRUE(usage_of(R"({"usage":{"completion_tokens":4}})", UsageFormat::chat, counts));
    expect_counts(counts, 0, 4, 4);
    ASSERT_TRUE(usage_of(R"({"usage":{}})", UsageFormat::chat, counts));
    expect_counts(counts, 0, 0, 0);
    // The other API's key names are not counted.
    ASSERT_TRUE(
        usage_of(R"({"usage":{"input_tokens":5,"output_tokens":6}})", UsageFormat::chat, counts));
    expect_counts(counts, 0, 0, 0);
}

TEST(UsageFromJson, IntegralDoublesAreAcceptedFractionsAreNot) {
    UsageCounts counts;
    ASSERT_TRUE(usage_of(R"({"usage":{"prompt_tokens":12.0,"completion_tokens":1e1}})",
                         UsageFormat::chat, counts));
    expect_counts(counts, 12, 10, 22);
    EXPECT_FALSE(usage_of(R"({"usage":{"prompt_tokens":1.5}})", UsageFormat::chat, counts));
    EXPECT_FALSE(counts.has_usage);
    EXPECT_FALSE(usage_of(R"({"usage":{"prompt_tokens":-3}})", UsageFormat::chat, counts));
    EXPECT_FALSE(usage_of(R"({"usage":{"prompt_tokens":"3"}})", UsageFormat::chat, counts));
    EXPECT_FALSE(usage_of(R"({"usage":{"prompt_tokens":true}})", UsageFormat::chat, counts));
}

TEST(UsageFromJson, AbsentOrNullUsageIsNotAnError) {
    UsageCounts counts;
    counts.prompt_tokens = 77;  // Overwritten, not merged.
    ASSERT_TRUE(usage_of(R"({"id":"x","choices":[]})", UsageFormat::chat, counts));
    EXPECT_FALSE(counts.has_usage);
    EXPECT_EQ(counts.prompt_tokens, 0u);
    ASSERT_TRUE(usage_of(R"({"id":"x","usage":null})", UsageFormat::chat, counts));
    EXPECT_FALSE(counts.has_usage);
    ASSERT_TRUE(usage_of(R"({"error":{"message":"bad","type":"invalid_request_error"}})",
                         UsageFormat::chat, counts));
    EXPECT_FALSE(counts.has_usage);
}

TEST(UsageFromJson, GarbageIsFalseNeverACrash) {
    const char* cases[] = {
        "",
        "   ",
        "not json",
        "[1,2,3]",
        "\"usage\"",
        "{",
        R"({"usage":)",
        R"({"usage":{"prompt_tokens":1)",
        R"({"usage":[1,2]})",
        R"({"usage":"lots"})",
        R"({"usage":{"prompt_tokens":1,}})",
        "{\"usage\":{\"prompt_tokens\":1}\xFF}",
        R"({"usage":{"prompt_tokens":99999999999999999999999}})",
    };
    for (const char* text : cases) {
        UsageCounts counts;
        EXPECT_FALSE(usage_of(text, UsageFormat::chat, counts)) << text;
        EXPECT_FALSE(counts.has_usage) << text;
        EXPECT_EQ(counts.total_tokens, 0u) << text;
    }
}

TEST(UsageFromJson, HugeCountersSaturateInsteadOfWrapping) {
    UsageCounts counts;
    ASSERT_TRUE(usage_of(
        R"({"usage":{"input_tokens":18446744073709551615,"cache_read_input_tokens":5,"output_tokens":1}})",
        UsageFormat::anthropic_messages, counts));
    EXPECT_EQ(counts.prompt_tokens, UINT64_MAX);
    EXPECT_EQ(counts.total_tokens, UINT64_MAX);
}

TEST(UsageReadDocument, NestedPathsAndErrorDetection) {
    std::string text =
        R"({"type":"response.completed","response":{"id":"r","usage":{"input_tokens":4,"output_tokens":5,"total_tokens":9}}})";
    text.append(json_padding_bytes, '\0');
    UsageParts parts;
    UsageDocument document =
        usage_read_document(std::string_view(text.data(), text.size() - json_padding_bytes),
                            UsageFormat::responses, UsageAt::in_response, parts);
    EXPECT_TRUE(document.is_json);
    EXPECT_TRUE(document.has_usage);
    EXPECT_FALSE(document.has_error);
    const UsageCounts counts = usage_counts_from_parts(parts, UsageFormat::responses);
    expect_counts(counts, 4, 5, 9);

    std::string error_text = R"({"error":{"message":"overloaded"},"usage":null})";
    error_text.append(json_padding_bytes, '\0');
    UsageParts untouched = parts;
    document = usage_read_document(
        std::string_view(error_text.data(), error_text.size() - json_padding_bytes),
        UsageFormat::chat, UsageAt::root, untouched);
    EXPECT_TRUE(document.is_json);
    EXPECT_FALSE(document.has_usage);
    EXPECT_TRUE(document.has_error);
    EXPECT_EQ(untouched.input_tokens, 4u);
}

TEST(UsageReadDocument, LaterPartsOverwriteOnlyWhatTheyCarry) {
    UsageParts parts;
    std::string start =
        R"({"type":"message_start","message":{"usage":{"input_tokens":25,"cache_read_input_tokens":7,"output_tokens":1}}})";
    start.append(json_padding_bytes, '\0');
    ASSERT_TRUE(
        usage_read_document(std::string_view(start.data(), start.size() - json_padding_bytes),
                            UsageFormat::anthropic_messages, UsageAt::in_message, parts)
            .has_usage);
    std::string delta = R"({"type":"message_delta","usage":{"output_tokens":15}})";
    delta.append(json_padding_bytes, '\0');
    ASSERT_TRUE(
        usage_read_document(std::string_view(delta.data(), delta.size() - json_padding_bytes),
                            UsageFormat::anthropic_messages, UsageAt::root, parts)
            .has_usage);
    expect_counts(usage_counts_from_parts(parts, UsageFormat::anthropic_messages), 32, 15, 47);
    // A malformed later document changes nothing.
    std::string broken = R"({"usage":{"output_tokens":99,"input_tokens":"x"}})";
    broken.append(json_padding_bytes, '\0');
    EXPECT_FALSE(
        usage_read_document(std::string_view(broken.data(), broken.size() - json_padding_bytes),
                            UsageFormat::anthropic_messages, UsageAt::root, parts)
            .is_json);
    expect_counts(usage_counts_from_parts(parts, UsageFormat::anthropic_messages), 32, 15, 47);
}

// Keys are matched raw against a table (32 bytes at the key's start, masked after the
// closing quote): a name's prefix, a name with more after it, an escaped quote inside the
// key and keys longer than the 32 bytes read must not count; a document ending right after
// a key reads only the padding past it.
TEST(UsageFromJson, KeysMatchWholeNamesOnly) {
    UsageCounts counts;
    ASSERT_TRUE(
        usage_of(R"({"usage":{"prompt_token":1,"prompt_tokensX":2,"prompt_tokens\"":3,)"
                 R"("completion_tokens_details_and_then_some_more_bytes":{"reasoning_tokens":4},)"
                 R"("total_tokens_":5,"prompt_tokens":6,"completion_tokens":7}})",
                 UsageFormat::chat, counts));
    expect_counts(counts, 6, 7, 13);
    expect_kinds(counts, 0, 0, 0);
    ASSERT_TRUE(usage_of(R"({"usage":{"total_tokens":3}})", UsageFormat::chat, counts));
    expect_counts(counts, 0, 0, 3);
    // A key of exactly 31 bytes and one of 32 whose first 31 are a known name's prefix.
    ASSERT_TRUE(usage_of(R"({"usage":{"cache_creation_input_tokens_abcd":9,)"
                         R"("cache_creation_input_tokens_abcde":9,"input_tokens":2}})",
                         UsageFormat::anthropic_messages, counts));
    expect_counts(counts, 2, 0, 2);
    // Each format reads only its own names.
    ASSERT_TRUE(usage_of(R"({"usage":{"input_tokens":5,"prompt_tokens":8}})",
                         UsageFormat::embeddings, counts));
    expect_counts(counts, 8, 0, 8);
    ASSERT_TRUE(
        usage_of(R"({"usage":{"seconds":4,"type":"duration"}})", UsageFormat::chat, counts));
    EXPECT_FALSE(counts.has_usage);  // whisper-1's duration: no token usage.
}

// usage_and_response_id_from_json reads in one walk what usage_from_json and
// stored_response_id_read(body, false) read in two, for every shape of answer: ids
// before and after usage, "store": false or not a bool, an id that is not a string or not
// valid, malformed usage (the id is still learnt), broken JSON.
TEST(UsageFromJson, OneWalkGivesUsageAndResponseIdAsTwoReadsDo) {
    struct Case {
        const char* text;
        bool is_ok;
        uint64_t total;
        const char* id;
    };
    const Case cases[] = {
        {R"({"id":"resp_1","object":"response","usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}})",
         true, 3, "resp_1"},
        {R"({"usage":{"input_tokens":1,"output_tokens":2},"store":true,"id":"resp_2"})", true, 3,
         "resp_2"},
        {R"({"id":"resp_3","store":false,"usage":{"total_tokens":3}})", true, 3, ""},
        {R"({"id":"resp_4","store":"no","usage":null})", true, 0, "resp_4"},
        {R"({"id":7,"usage":{"total_tokens":3}})", true, 3, ""},
        {R"({"id":"resp 5","usage":{"total_tokens":3}})", true, 3, ""},
        {R"({"id":"resp_6","usage":{"input_tokens":"x"},"store":true})", false, 0, "resp_6"},
        {R"({"id":"resp_7","usage":"lots"})", false, 0, "resp_7"},
        {R"({"id":"resp_8","usage":{"total_tokens":3}},)", false, 0, ""},
        {R"({"id":"resp_9","id":"resp_10","usage":{"total_tokens":3}})", true, 3, "resp_10"},
        {R"(["resp_11"])", false, 0, ""},
    };
    for (const Case& entry : cases) {
        std::string padded(entry.text);
        padded.append(json_padding_bytes, '\0');
        const std::string_view body(padded.data(), padded.size() - json_padding_bytes);
        UsageCounts counts;
        std::string_view id;
        EXPECT_EQ(usage_and_response_id_from_json(body, UsageFormat::responses, counts, id),
                  entry.is_ok)
            << entry.text;
        EXPECT_EQ(counts.total_tokens, entry.total) << entry.text;
        EXPECT_EQ(std::string(id), entry.id) << entry.text;
        UsageCounts apart;
        EXPECT_EQ(usage_from_json(body, UsageFormat::responses, apart), entry.is_ok);
        EXPECT_EQ(apart.total_tokens, counts.total_tokens) << entry.text;
        EXPECT_EQ(apart.has_usage, counts.has_usage) << entry.text;
        EXPECT_EQ(stored_response_id_read(body, false), entry.id) << entry.text;
    }
}

}  // namespace
}  // namespace rw
