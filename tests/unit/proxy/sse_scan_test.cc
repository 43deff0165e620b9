// tests/unit/proxy/sse_scan_test.cc — the SSE usage scanner on realistic OpenAI chat (with
// include_usage), Responses API and Anthropic streams, with LF, CRLF and CR line ends, fed
// whole, cut in two at every offset, and one byte at a time: results must be identical and
// simdjson must run only on the usage events. Also truncation, errors, multi-line data,
// oversize events and arena refusal, and the hot-loop helpers.
#include "proxy/sse_scan.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace rw {
namespace {

std::string chat_chunk(std::string_view delta, std::string_view finish_reason) {
    return std::string(R"(data: {"id":"chatcmpl-AbC123xyz","object":"chat.completion.chunk",)"
                       R"("created":1717000000,"model":"gpt-4o-mini-2024-07-18",)"
                       R"("system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":)") +
           std::string(delta) + R"(,"logprobs":null,"finish_reason":)" +
           std::string(finish_reason) + R"(}],"usage":null})" + "\n\n";
}

// 20 events as OpenAI sends them with stream_options.include_usage: usage null in every
// chunk, then a chunk with empty choices and the usage, then [DONE].
std::string chat_stream() {
    std::string stream = chat_chunk(R"({"role":"assistant","content":"","refusal":null})", "null");
    const char* words[] = {
        "Hello",  "!", " How", " can", " I",        " help", " you", " with", " \\\"usage\\\":{",
        " today", "?", " Ask", " me",  " anything", ".",     " \\n"};
    for (const char* word : words) {
        stream += chat_chunk(std::string(R"({"content":")") + word + "\"}", "null");
    }
    stream += ": keep-alive comment\n\n";
    stream += chat_chunk("{}", "\"stop\"");
    stream +=
        R"(data: {"id":"chatcmpl-AbC123xyz","object":"chat.completion.chunk","created":1717000000,)"
        R"("model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[],)"
        R"("usage":{"prompt_tokens":13,"completion_tokens":17,"total_tokens":30,)"
        R"("prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},)"
        R"("completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
        R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})"
        "\n\n";
    stream += "data: [DONE]\n\n";
    return stream;
}

std::string responses_stream() {
    return R"(event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":1741290958,"status":"in_progress","model":"gpt-4.1-2025-04-14","output":[],"usage":null}}

event: response.in_progress
data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[],"usage":null}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","status":"in_progress","type":"message","role":"assistant","content":[]}}

event: response.content_part.added
data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" there"}

event: response.output_text.done
data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"Hi there"}

event: response.completed
data: {"type":"response.completed","sequence_number":7,"response":{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there","annotations":[]}]}],"usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":0},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}}}

)";
}

std::string anthropic_stream() {
    return R"(event: message_start
data: {"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-20250514","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":3,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}

event: message_stop
data: {"type":"message_stop"}

)";
}

enum class LineEnd : uint8_t { lf, crlf, cr };

std::string with_line_end(std::string_view lf_text, LineEnd line_end) {
    std::string text;
    for (const char c : lf_text) {
        if (c != '\n' || line_end == LineEnd::lf) {
            text += c;
        } else {
            text += line_end == LineEnd::crlf ? "\r\n" : "\r";
        }
    }
    return text;
}

struct ScanResult {
    UsageCounts usage;
    bool is_done;
    uint32_t events_count;
    bool had_error;
    uint32_t events_parsed_count;
    uint32_t events_skipped_count;

    bool operator==(const ScanResult& other) const {
        return usage.has_usage == other.usage.has_usage &&
               usage.prompt_tokens == other.usage.prompt_tokens &&
               usage.completion_tokens == other.usage.completion_tokens &&
               usage.total_tokens == other.usage.total_tokens && is_done == other.is_done &&
               events_count == other.events_count && had_error == other.had_error &&
               events_parsed_count == other.events_parsed_count &&
               events_skipped_count == other.events_skipped_count;
    }
};

std::ostream& operator<<(std::ostream& out, const ScanResult& result) {
    return out << "{usage " << result.usage.has_usage << " " << result.usage.prompt_tokens << "/"
               << result.usage.completion_tokens << "/" << result.usage.total_tokens << " done "
               << result.is_done << " events " << result.events_count << " error "
               << result.had_error << " parsed " << result.events_parsed_count << " skipped "
               << result.events_skipped_count << "}";
}

// Feeds stream cut at ends (each piece in a buffer that is scribbled over after the call,
// as a recv buffer given back to the kernel would be).
ScanResult scan(std::string_view stream, UsageFormat format, const std::vector<size_t>& ends,
                uint64_t arena_bytes_max = 16 << 20) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, arena_bytes_max);
    SseUsageScanner scanner;
    scanner.start(format, arena);
    size_t start = 0;
    std::string buffer;
    for (const size_t end : ends) {
        buffer.assign(stream.substr(start, end - start));
        scanner.feed(buffer);
        std::memset(buffer.data(), 0xAA, buffer.size());
        start = end;
    }
    const ScanResult result{scanner.usage(),
                            scanner.is_done(),
                            scanner.events_count(),
                            scanner.had_error_event(),
                            scanner.events_parsed_count(),
                            scanner.events_skipped_count()};
    arena.release();
    return result;
}

ScanResult scan_whole(std::string_view stream, UsageFormat format) {
    return scan(stream, format, {stream.size()});
}

// Whole, every two-piece cut, and byte by byte must all equal expected.
void expect_same_at_every_cut(std::string_view stream, UsageFormat format,
                              const ScanResult& expected) {
    EXPECT_EQ(scan_whole(stream, format), expected);
    for (size_t cut = 0; cut <= stream.size(); cut += 1) {
        const ScanResult result = scan(stream, format, {cut, stream.size()});
        ASSERT_EQ(result, expected) << "cut at " << cut;
    }
    std::vector<size_t> ends;
    for (size_t end = 1; end <= stream.size(); end += 1) {
        ends.push_back(end);
    }
    EXPECT_EQ(scan(stream, format, ends), expected) << "byte by byte";
}

class SseScanLineEnds : public ::testing::TestWithParam<LineEnd> {};

TEST_P(SseScanLineEnds, OpenAiChatWithIncludeUsage) {
    const std::string stream = with_line_end(chat_stream(), GetParam());
    const ScanResult expected{{13, 17, 30, true}, true, 20, false, 1, 0};
    expect_same_at_every_cut(stream, UsageFormat::chat, expected);
}

TEST_P(SseScanLineEnds, ResponsesApi) {
    const std::string stream = with_line_end(responses_stream(), GetParam());
    const ScanResult expected{{37, 11, 48, true}, true, 8, false, 1, 0};
    expect_same_at_every_cut(stream, UsageFormat::responses, expected);
}

TEST_P(SseScanLineEnds, AnthropicMessages) {
    const std::string stream = with_line_end(anthropic_stream(), GetParam());
    const ScanResult expected{{28, 15, 43, true}, true, 8, false, 2, 0};
    expect_same_at_every_cut(stream, UsageFormat::anthropic_messages, expected);
}

TEST_P(SseScanLineEnds, TruncatedBeforeTheUsageEvent) {
    const std::string chat = with_line_end(chat_stream(), GetParam());
    const size_t chat_cut = chat.find(
        "data: "
        "{\"id\":\"chatcmpl-AbC123xyz\",\"object\":\"chat.completion.chunk\",\"created\":"
        "1717000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\","
        "\"choices\":[]");
    ASSERT_NE(chat_cut, std::string::npos);
    // Cut inside the usage event: its blank line never arrives.
    const std::string chat_truncated = chat.substr(0, chat_cut + 200);
    expect_same_at_every_cut(chat_truncated, UsageFormat::chat,
                             ScanResult{{0, 0, 0, false}, false, 18, false, 0, 0});

    const std::string responses = with_line_end(responses_stream(), GetParam());
    const std::string responses_truncated =
        responses.substr(0, responses.find("event: response.completed"));
    expect_same_at_every_cut(responses_truncated, UsageFormat::responses,
                             ScanResult{{0, 0, 0, false}, false, 7, false, 0, 0});

    // Anthropic: message_start counted, message_delta missing.
    const std::string anthropic = with_line_end(anthropic_stream(), GetParam());
    const std::string anthropic_truncated =
        anthropic.substr(0, anthropic.find("event: message_delta"));
    expect_same_at_every_cut(anthropic_truncated, UsageFormat::anthropic_messages,
                             ScanResult{{28, 1, 29, true}, false, 6, false, 1, 0});
}

// With cut_usage, the usage-only event is reported as one span, [its "data:" line, the byte
// after its blank line), however the stream is cut into pieces; nothing else is reported,
// and once everything is fed no event is open.
std::vector<SseSpan> scan_cuts(std::string_view stream, const std::vector<size_t>& ends,
                               uint64_t& open_start) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 16 << 20);
    SseUsageScanner scanner;
    scanner.start(UsageFormat::chat, arena, true);
    std::vector<SseSpan> cuts;
    size_t start = 0;
    std::string buffer;
    for (const size_t end : ends) {
        buffer.assign(stream.substr(start, end - start));
        scanner.feed(buffer);
        for (const SseSpan& cut : scanner.cuts()) {
            if (!cuts.empty() && cuts.back().end == cut.start) {
                cuts.back().end = cut.end;  // A CRLF split between pieces: one event.
            } else {
                cuts.push_back(cut);
            }
        }
        EXPECT_LE(scanner.open_event_start(), end);
        std::memset(buffer.data(), 0xAA, buffer.size());
        start = end;
    }
    open_start = scanner.open_event_start();
    arena.release();
    return cuts;
}

TEST_P(SseScanLineEnds, UsageOnlyEventIsReportedForCuttingAtEveryCut) {
    const std::string stream = with_line_end(chat_stream(), GetParam());
    const size_t usage_at = stream.find("\"choices\":[]");
    ASSERT_NE(usage_at, std::string::npos);
    const uint64_t event_start = stream.rfind("data: ", usage_at);
    const uint64_t event_end = stream.find("data: [DONE]");
    std::vector<std::vector<size_t>> cuttings = {{stream.size()}};
    for (size_t cut = 0; cut <= stream.size(); cut += 1) {
        cuttings.push_back({cut, stream.size()});
    }
    std::vector<size_t> bytes;
    for (size_t end = 1; end <= stream.size(); end += 1) {
        bytes.push_back(end);
    }
    cuttings.push_back(bytes);
    for (const std::vector<size_t>& ends : cuttings) {
        uint64_t open_start = 0;
        const std::vector<SseSpan> cuts = scan_cuts(stream, ends, open_start);
        ASSERT_EQ(cuts.size(), 1u)
            << "pieces " << ends.size() << " first end " << ends[0] << " cut " << cuts[0].start
            << ".." << cuts[0].end << " size " << stream.size() << " usage event " << event_start
            << ".." << event_end;
        EXPECT_EQ(cuts[0].start, event_start) << "first end " << ends[0];
        EXPECT_EQ(cuts[0].end, event_end) << "first end " << ends[0];
        EXPECT_EQ(open_start, stream.size()) << "first end " << ends[0];
    }
}

INSTANTIATE_TEST_SUITE_P(LineEnds, SseScanLineEnds,
                         ::testing::Values(LineEnd::lf, LineEnd::crlf, LineEnd::cr));

// The token kinds of a stream's usage, whole and byte by byte (golden per provider shape).
UsageCounts scan_usage_kinds(std::string_view stream, UsageFormat format, bool is_byte_by_byte) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 16 << 20);
    SseUsageScanner scanner;
    scanner.start(format, arena);
    const size_t step = is_byte_by_byte ? 1 : stream.size();
    for (size_t start = 0; start < stream.size(); start += step) {
        std::string buffer(stream.substr(start, step));
        scanner.feed(buffer);
        std::memset(buffer.data(), 0xAA, buffer.size());
    }
    const UsageCounts usage = scanner.usage();
    arena.release();
    return usage;
}

void expect_stream_kinds(std::string_view stream, UsageFormat format, UsageCounts expected) {
    for (const bool is_byte_by_byte : {false, true}) {
        const UsageCounts usage = scan_usage_kinds(stream, format, is_byte_by_byte);
        EXPECT_TRUE(usage.has_usage) << is_byte_by_byte;
        EXPECT_EQ(usage.prompt_tokens, expected.prompt_tokens) << is_byte_by_byte;
        EXPECT_EQ(usage.completion_tokens, expected.completion_tokens) << is_byte_by_byte;
        EXPECT_EQ(usage.total_tokens, expected.total_tokens) << is_byte_by_byte;
        EXPECT_EQ(usage.cached_input_tokens, expected.cached_input_tokens) << is_byte_by_byte;
        EXPECT_EQ(usage.cache_write_tokens, expected.cache_write_tokens) << is_byte_by_byte;
        EXPECT_EQ(usage.reasoning_tokens, expected.reasoning_tokens) << is_byte_by_byte;
    }
}

std::string replace_once(std::string text, std::string_view from, std::string_view to) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(SseScanKinds, ChatStreamCachedAndReasoning) {
    const std::string stream =
        replace_once(replace_once(chat_stream(), R"("cached_tokens":0)", R"("cached_tokens":8)"),
                     R"("reasoning_tokens":0)", R"("reasoning_tokens":12)");
    expect_stream_kinds(stream, UsageFormat::chat, {13, 17, 30, true, 8, 0, 12});
}

TEST(SseScanKinds, ResponsesStreamCachedAndReasoning) {
    const std::string stream = replace_once(
        replace_once(responses_stream(), R"("cached_tokens":0)", R"("cached_tokens":32)"),
        R"("reasoning_tokens":0)", R"("reasoning_tokens":4)");
    expect_stream_kinds(stream, UsageFormat::responses, {37, 11, 48, true, 32, 0, 4});
}

TEST(SseScanKinds, AnthropicStreamCacheReadsAndWrites) {
    // message_start carries input, cache writes and cache reads; message_delta the output.
    const std::string stream =
        replace_once(anthropic_stream(), R"("cache_creation_input_tokens":0)",
                     R"("cache_creation_input_tokens":40)");
    expect_stream_kinds(stream, UsageFormat::anthropic_messages, {68, 15, 83, true, 3, 40, 0});
}

TEST(SseScan, ChatWithoutIncludeUsageParsesNothing) {
    std::string stream;
    for (int index = 0; index < 10; index += 1) {
        std::string chunk = chat_chunk(R"({"content":"x"})", "null");
        chunk.replace(chunk.find(R"(,"usage":null)"), 13, "");
        stream += chunk;
    }
    stream += "data: [DONE]\n\n";
    const ScanResult result = scan_whole(stream, UsageFormat::chat);
    EXPECT_EQ(result, (ScanResult{{0, 0, 0, false}, true, 11, false, 0, 0}));
}

TEST(SseScan, UsageOnAChunkWithChoicesIsNotReportedForCutting) {
    const std::string stream =
        std::string(R"(data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],)"
                    R"("usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})") +
        "\n\ndata: [DONE]\n\n";
    uint64_t open_start = 0;
    EXPECT_TRUE(scan_cuts(stream, {stream.size()}, open_start).empty());
    EXPECT_EQ(open_start, stream.size());
}

TEST(SseScanHelpers, EmptyChoices) {
    EXPECT_TRUE(sse_chat_data_has_empty_choices(R"({"choices":[],"usage":{}})"));
    EXPECT_TRUE(sse_chat_data_has_empty_choices(R"({"choices" : [ ] })"));
    EXPECT_FALSE(sse_chat_data_has_empty_choices(R"({"choices":[{"index":0}]})"));
    EXPECT_FALSE(sse_chat_data_has_empty_choices(R"({"usage":{}})"));
    EXPECT_FALSE(sse_chat_data_has_empty_choices(R"({"choices":)"));
}

TEST(SseScan, ChatErrorChunk) {
    const std::string stream =
        chat_chunk(R"({"content":"x"})", "null") +
        "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n";
    expect_same_at_every_cut(stream, UsageFormat::chat,
                             ScanResult{{0, 0, 0, false}, false, 2, true, 1, 0});
}

TEST(SseScan, AnthropicErrorEvent) {
    const std::string stream =
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded\"}}\n\n";
    expect_same_at_every_cut(stream, UsageFormat::anthropic_messages,
                             ScanResult{{0, 0, 0, false}, false, 1, true, 0, 0});
}

TEST(SseScan, ResponsesFailedCarriesUsageAndIsAnError) {
    const std::string stream =
        "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":"
        "\"failed\",\"error\":{\"code\":\"server_error\"},\"usage\":{\"input_tokens\":3,"
        "\"output_tokens\":0,\"total_tokens\":3}}}\n\n";
    expect_same_at_every_cut(stream, UsageFormat::responses,
                             ScanResult{{3, 0, 3, true}, true, 1, true, 1, 0});
}

TEST(SseScan, EventTypeFromDataWhenThereAreNoEventLines) {
    std::string stream;
    const std::string anthropic = anthropic_stream();
    size_t at = 0;
    while (at < anthropic.size()) {  // Drop every event: line.
        const size_t end = anthropic.find('\n', at);
        const std::string_view line(anthropic.data() + at, end - at);
        if (line.substr(0, 6) != "event:") {
            stream.append(line);
            stream += '\n';
        }
        at = end + 1;
    }
    EXPECT_EQ(scan_whole(stream, UsageFormat::anthropic_messages),
              (ScanResult{{28, 15, 43, true}, true, 8, false, 2, 0}));
}

TEST_P(SseScanLineEnds, MultiLineDataIsJoinedWithLineFeeds) {
    const std::string stream = with_line_end(
        "data: {\"choices\":[],\n"
        "data:\"usage\":\n"
        "data: {\"prompt_tokens\":2,\"completion_tokens\":3}}\n"
        "\n"
        "data: [DONE]\n\n",
        GetParam());
    expect_same_at_every_cut(stream, UsageFormat::chat,
                             ScanResult{{2, 3, 5, true}, true, 2, false, 1, 0});
}

// The event: line alone says what the event is (the data has no "type"), so a line end
// cut between pieces must neither end the event early nor lose its name.
TEST_P(SseScanLineEnds, EventNameSurvivesEveryCut) {
    const std::string stream = with_line_end(
        "event: message_start\n"
        "data: {\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n"
        "\n"
        "event: message_delta\n"
        ": a comment between the fields\n"
        "data: {\"usage\":{\"output_tokens\":8}}\n"
        "\n"
        "event: message_stop\n"
        "data: {}\n"
        "\n",
        GetParam());
    expect_same_at_every_cut(stream, UsageFormat::anthropic_messages,
                             ScanResult{{5, 8, 13, true}, true, 3, false, 2, 0});
}

TEST(SseScan, FieldSyntaxEdgeCases) {
    // "data" without a colon is an empty data line; "database:" is another field; only one
    // leading space is stripped; an event without data is not dispatched; events at the
    // end of the stream without a blank line are not dispatched.
    const std::string stream =
        "database: {\"usage\":{\"prompt_tokens\":9}}\n\n"
        "event: message_stop\n\n"
        "data\n\n"
        "data:  [DONE]\n\n"
        "id: 7\nretry: 100\n:comment\n\n"
        "data: [DONE]";
    expect_same_at_every_cut(stream, UsageFormat::chat,
                             ScanResult{{0, 0, 0, false}, false, 2, false, 0, 0});
}

TEST(SseScan, OversizeUsageEventIsSkippedAndCounted) {
    std::string stream = "data: {\"pad\":\"";
    stream.append(sse_event_bytes_max, 'x');
    stream += "\",\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n\n";
    const ScanResult expected{{0, 0, 0, false}, true, 2, false, 0, 1};
    EXPECT_EQ(scan_whole(stream, UsageFormat::chat), expected);
    EXPECT_EQ(scan(stream, UsageFormat::chat, {100, 700000, stream.size()}), expected);
    std::vector<size_t> ends;
    for (size_t end = 4096; end < stream.size(); end += 4096) {
        ends.push_back(end);
    }
    ends.push_back(stream.size());
    EXPECT_EQ(scan(stream, UsageFormat::chat, ends), expected);
}

TEST(SseScan, ArenaRefusalLosesTheUsageButNothingElse) {
    const std::string stream = chat_stream();
    const ScanResult result = scan(stream, UsageFormat::chat, {stream.size()}, 64);
    EXPECT_EQ(result, (ScanResult{{0, 0, 0, false}, true, 20, false, 0, 1}));
    const ScanResult split =
        scan(stream, UsageFormat::chat, {stream.size() / 2, stream.size()}, 64);
    EXPECT_FALSE(split.usage.has_usage);
    EXPECT_TRUE(split.is_done);
    EXPECT_EQ(split.events_count, 20u);
}

TEST(SseScan, LaterUsageOverwritesEarlier) {
    const std::string stream =
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":5,"
        "\"completion_tokens\":1,\"total_tokens\":6}}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9,"
        "\"total_tokens\":14}}\n\n";
    EXPECT_EQ(scan_whole(stream, UsageFormat::chat),
              (ScanResult{{5, 9, 14, true}, false, 2, false, 2, 0}));
}

TEST(SseScanHelpers, FindLineEndAtEveryPositionAndLength) {
    // Lengths around every block size (16, 32, 64) and both implementations.
    for (const auto find : {&sse_find_line_end, &sse_find_line_end_baseline}) {
        for (uint32_t n = 0; n <= 200; n += 1) {
            std::string text(n, 'a');
            EXPECT_EQ(find(text.data(), n), n);
            for (uint32_t at = 0; at < n; at += 1) {
                std::string probe = text;
                probe[at] = at % 2 == 0 ? '\n' : '\r';
                if (at + 3 < n) {
                    probe[at + 3] = '\n';  // A later line end must not win.
                }
                ASSERT_EQ(find(probe.data(), n), at) << n << " " << at;
                ASSERT_EQ(find(probe.data(), at), at) << n << " " << at;  // Not found before n.
            }
        }
    }
}

TEST(SseScanHelpers, ChatPreCheck) {
    auto needs_parse = [](std::string_view data) {
        return sse_chat_data_needs_parse(data.data(), static_cast<uint32_t>(data.size()));
    };
    EXPECT_FALSE(needs_parse(R"({"id":"x","choices":[{"delta":{"content":"hi"}}],"usage":null})"));
    EXPECT_FALSE(needs_parse(R"({"id":"x","usage" : null }  )"));
    EXPECT_FALSE(needs_parse(R"({"id":"x","choices":[{"delta":{"content":"\"usage\":{"}}]})"));
    EXPECT_FALSE(needs_parse(R"({"id":"x","usage":null,"choices":[]})"));
    EXPECT_FALSE(needs_parse(R"({"id":"x","error":null,"choices":[]})"));
    EXPECT_FALSE(needs_parse(R"({"id":"usage","v":"error"})"));
    EXPECT_FALSE(needs_parse(""));
    EXPECT_TRUE(needs_parse(R"({"id":"x","choices":[],"usage":{"prompt_tokens":1}})"));
    EXPECT_TRUE(needs_parse(R"({"usage":{"prompt_tokens":1},"id":"x","choices":[]})"));
    EXPECT_TRUE(needs_parse(R"({"usage" :  {"prompt_tokens":1}})"));
    EXPECT_TRUE(needs_parse(R"({"error":{"message":"x"}})"));
    EXPECT_TRUE(needs_parse(R"({"a":1,"usage")"));  // Cut after the key: maybe.
    // Every position of the key relative to the 16-byte blocks.
    for (uint32_t pad = 0; pad < 40; pad += 1) {
        const std::string data = "{\"p\":\"" + std::string(pad, 'x') + "\",\"usage\":{\"a\":1}}";
        EXPECT_TRUE(needs_parse(data)) << pad;
        const std::string null_data = "{\"p\":\"" + std::string(pad, 'x') + "\",\"usage\":[]}";
        EXPECT_FALSE(needs_parse(null_data)) << pad;
    }
}

TEST(SseScanHelpers, EventKinds) {
    EXPECT_EQ(sse_event_kind(""), SseEventKind::none);
    EXPECT_EQ(sse_event_kind("response.completed"), SseEventKind::response_completed);
    EXPECT_EQ(sse_event_kind("response.incomplete"), SseEventKind::response_incomplete);
    EXPECT_EQ(sse_event_kind("response.failed"), SseEventKind::response_failed);
    EXPECT_EQ(sse_event_kind("message_start"), SseEventKind::message_start);
    EXPECT_EQ(sse_event_kind("message_delta"), SseEventKind::message_delta);
    EXPECT_EQ(sse_event_kind("message_stop"), SseEventKind::message_stop);
    EXPECT_EQ(sse_event_kind("error"), SseEventKind::error);
    EXPECT_EQ(sse_event_kind("response.completed "), SseEventKind::other);
    EXPECT_EQ(sse_event_kind("ping"), SseEventKind::other);
}

}  // namespace
}  // namespace rw
