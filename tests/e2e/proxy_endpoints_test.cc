// tests/e2e/proxy_endpoints_test.cc — the passthrough endpoints beyond chat (README
// "Endpoints"): /v1/images/generations, /v1/audio/speech, /v1/moderations and /v1/rerank
// through ringway to the mock, each answer relayed as the provider sent it and each
// request leaving one usage row with the provider's usage, or an estimate when the answer
// reports none. Speech is relayed as it arrives: an answer four times
// RINGWAY_MAX_RESPONSE_BYTES gets through whole and byte for byte, chunked upstream or
// with Content-Length, and a cut one reaches the client as an incomplete body. curl is the
// client of one test (skipped without curl).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr int64_t max_response_bytes = 64 * 1024;

class ProxyEndpointsTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(
            gateway_.start({{"RINGWAY_MAX_RESPONSE_BYTES", std::to_string(max_response_bytes)}}));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-image-1", "dall-e-3", "gpt-4o-mini-tts", "omni-moderation-latest",
                       "jina-reranker-v2"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        ASSERT_EQ(gateway_.wait_channels_routable().at("main").status, 200);
        key_ = gateway_.create_key(R"({"name":"endpoints"})");
        ASSERT_FALSE(key_.secret.empty());
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    Response post(std::string_view path, const std::string& body) {
        return gateway_.call(post_request(path, body, key_.secret), 30000);
    }

    // The one usage row of the key's next request (rows so far + 1).
    Row next_row() {
        rows_seen_ += 1;
        const auto rows =
            wait_usage_rows(gateway_.db_path(), key_.id, rows_seen_, Deadline::after_ms(10000));
        EXPECT_EQ(rows.size(), rows_seen_);
        return rows.empty() ? Row{} : rows.back();
    }

    MockUpstream mock_;
    Gateway gateway_;
    Key key_;
    size_t rows_seen_ = 0;
};

TEST_F(ProxyEndpointsTest, ImageGenerationRelaysTheAnswerAndBillsItsUsage) {
    const std::string body =
        R"({"model":"gpt-image-1","prompt":"a lighthouse","n":2,"size":"1024x1024",)"
        R"("x_mock":{"prompt-tokens":50,"chunks":7}})";
    const Response response = post("/v1/images/generations", body);
    ASSERT_EQ(response.status, 200) << response.body;
    Json json(response.body);
    ASSERT_TRUE(json.ok()) << response.body;
    EXPECT_EQ(json.array_size("/data"), 2u);
    EXPECT_EQ(json.string("/size"), "1024x1024");
    EXPECT_EQ(json.integer("/usage/input_tokens"), 50);
    EXPECT_EQ(json.integer("/usage/output_tokens"), 14);
    const Row row = next_row();
    EXPECT_EQ(row.at("endpoint"), "/v1/images/generations") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "reported");
    EXPECT_EQ(as_int(row, "prompt_tokens"), 50);
    EXPECT_EQ(as_int(row, "completion_tokens"), 14);
    EXPECT_EQ(as_int(row, "total_tokens"), 64);
    EXPECT_EQ(as_int(row, "status"), 200);
}

TEST_F(ProxyEndpointsTest, ImageWithoutUsageIsEstimated) {
    const std::string body =
        R"({"model":"dall-e-3","prompt":"a lighthouse","x_mock":{"usage":"none"}})";
    const Response response = post("/v1/images/generations", body);
    ASSERT_EQ(response.status, 200) << response.body;
    Json json(response.body);
    EXPECT_TRUE(json.string("/data/0/url").starts_with("https://")) << response.body;
    EXPECT_FALSE(json.has("/usage"));
    const Row row = next_row();
    EXPECT_EQ(row.at("usage_source"), "estimated") << describe_row(row);
    EXPECT_EQ(as_int(row, "prompt_tokens"), int64_t((body.size() + 3) / 4));
    EXPECT_EQ(as_int(row, "completion_tokens"), 0);
}

// A streamed image and an SSE speech answer are billed by the usage of their last event
// (image_generation.completed, speech.audio.done), relayed as sent; without it, estimated.
TEST_F(ProxyEndpointsTest, StreamedImageAndSseSpeechAreBilledByTheirLastEventsUsage) {
    struct Case {
        std::string path;
        std::string body;
        std::string last_event;
        int64_t prompt_tokens;
        int64_t completion_tokens;
    };
    const Case cases[] = {
        {"/v1/images/generations",
         R"({"model":"gpt-image-1","prompt":"a lighthouse","stream":true,"partial_images":2,)"
         R"("x_mock":{"prompt-tokens":50,"chunks":3,"split-bytes":7,"split-delay-ms":0}})",
         "image_generation.completed", 50, 3},
        {"/v1/audio/speech",
         R"({"model":"gpt-4o-mini-tts","input":"Hello there.","voice":"alloy",)"
         R"("stream_format":"sse","x_mock":{"prompt-tokens":12,"chunks":5,"split-bytes":5,)"
         R"("split-delay-ms":0}})",
         "speech.audio.done", 12, 5},
    };
    for (const Case& test_case : cases) {
        SCOPED_TRACE(test_case.path);
        const Response response = post(test_case.path, test_case.body);
        ASSERT_EQ(response.status, 200) << response.body;
        const std::vector<std::string> events = sse_events(response.body);
        ASSERT_FALSE(events.empty()) << response.body;
        EXPECT_TRUE(events.back().starts_with("event: " + test_case.last_event)) << events.back();
        Json last(sse_data(events.back()));
        const Row row = next_row();
        EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
        EXPECT_EQ(last.integer("/usage/input_tokens"), test_case.prompt_tokens);
        EXPECT_EQ(as_int(row, "prompt_tokens"), test_case.prompt_tokens) << describe_row(row);
        EXPECT_EQ(as_int(row, "completion_tokens"), test_case.completion_tokens)
            << describe_row(row);
        EXPECT_EQ(row.at("end_reason"), "complete") << describe_row(row);
        // The same stream without usage in its last event: the billing rule's estimate.
        std::string body = test_case.body;
        body.insert(body.find("\"x_mock\":{") + 10, R"("usage":"none",)");
        ASSERT_EQ(post(test_case.path, body).status, 200);
        const Row estimated = next_row();
        EXPECT_EQ(estimated.at("usage_source"), "estimated") << describe_row(estimated);
    }
}

TEST_F(ProxyEndpointsTest, ModerationIsRelayedAndEstimated) {
    const std::string body =
        R"({"model":"omni-moderation-latest","input":["one text","another text"]})";
    const Response response = post("/v1/moderations", body);
    ASSERT_EQ(response.status, 200) << response.body;
    Json json(response.body);
    EXPECT_EQ(json.array_size("/results"), 2u) << response.body;
    EXPECT_EQ(json.boolean("/results/0/flagged"), false);
    EXPECT_EQ(json.string("/model"), "omni-moderation-latest");
    const Row row = next_row();
    EXPECT_EQ(row.at("endpoint"), "/v1/moderations") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "estimated");
    EXPECT_EQ(as_int(row, "prompt_tokens"), int64_t((body.size() + 3) / 4));
    EXPECT_EQ(as_int(row, "completion_tokens"), 0);
}

TEST_F(ProxyEndpointsTest, RerankTotalOnlyUsageIsInput) {
    const std::string body =
        R"({"model":"jina-reranker-v2","query":"lighthouse","documents":["a","b","c"],)"
        R"("x_mock":{"prompt-tokens":37}})";
    const Response response = post("/v1/rerank", body);
    ASSERT_EQ(response.status, 200) << response.body;
    Json json(response.body);
    EXPECT_EQ(json.array_size("/results"), 3u) << response.body;
    EXPECT_EQ(json.integer("/usage/total_tokens"), 37);
    Row row = next_row();
    EXPECT_EQ(row.at("endpoint"), "/v1/rerank") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "reported");
    EXPECT_EQ(as_int(row, "prompt_tokens"), 37);
    EXPECT_EQ(as_int(row, "completion_tokens"), 0);
    EXPECT_EQ(as_int(row, "total_tokens"), 37);

    // Cohere's shape: no token usage, so an estimate.
    const std::string cohere =
        R"({"model":"jina-reranker-v2","query":"q","documents":["a"],"x_mock":{"usage":"none"}})";
    ASSERT_EQ(post("/v1/rerank", cohere).status, 200);
    row = next_row();
    EXPECT_EQ(row.at("usage_source"), "estimated") << describe_row(row);
}

// The mock's answer to `body`, asked directly: what the gateway must relay unchanged.
Response direct(uint16_t mock_port, const std::string& path, const std::string& body) {
    std::string error;
    auto response = http_exchange(mock_port, post_request(path, body, "sk-direct"),
                                  Deadline::after_ms(30000), false, &error);
    EXPECT_TRUE(response.has_value()) << error;
    return response.value_or(Response{});
}

std::string speech_body(std::string_view x_mock) {
    return R"({"model":"gpt-4o-mini-tts","input":"Hello there.","voice":"alloy",)"
           R"("response_format":"wav","x_mock":{)" +
           std::string(x_mock) + "}}";
}

TEST_F(ProxyEndpointsTest, SpeechLargerThanTheWholeBodyLimitIsRelayedAsItArrives) {
    // 16 pieces of 16 KiB: 256 KiB, four times RINGWAY_MAX_RESPONSE_BYTES (a whole answer that
    // large would be refused with 502), so it can only pass by being relayed as it arrives.
    // (README "Endpoints": relaying 256 MiB leaves the gateway's peak RSS where 1 MiB did.)
    for (const std::string framing : {"chunked", "length"}) {
        const std::string body =
            speech_body(R"("chunks":16,"chunk-text-bytes":16384,"framing":")" + framing + "\"");
        const Response expected = direct(mock_.port(), "/v1/audio/speech", body);
        ASSERT_EQ(expected.status, 200);
        ASSERT_EQ(expected.body.size(), size_t(16 * 16384));
        const Response response = post("/v1/audio/speech", body);
        ASSERT_EQ(response.status, 200) << framing << ": " << escape_bytes(response.body, 300);
        EXPECT_EQ(response.header("content-type").value_or(""), "audio/wav");
        EXPECT_TRUE(response.is_chunked);
        EXPECT_EQ(response.body.size(), expected.body.size()) << framing;
        EXPECT_TRUE(response.body == expected.body) << framing << ": bytes differ";
        const Row row = next_row();
        EXPECT_EQ(row.at("endpoint"), "/v1/audio/speech") << describe_row(row);
        EXPECT_EQ(row.at("end_reason"), "complete");
        EXPECT_EQ(row.at("usage_source"), "estimated");
        EXPECT_EQ(as_int(row, "completion_tokens"), 0) << "audio has no events to count";
        EXPECT_GE(as_int(row, "bytes_out"), int64_t(expected.body.size()));
    }
}

TEST_F(ProxyEndpointsTest, CutSpeechIsAnIncompleteBody) {
    const std::string body =
        speech_body(R"("chunks":8,"chunk-text-bytes":4096,"fault":"reset","fault-after":3)");
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(
        client.send(post_request("/v1/audio/speech", body, key_.secret), Deadline::after_ms(5000)));
    ASSERT_TRUE(client.wait_closed(Deadline::after_ms(20000)));
    const RawResponse raw = parse_raw_response(client.unread());
    EXPECT_EQ(raw.status, 200);
    EXPECT_TRUE(raw.is_framing_ok);
    EXPECT_FALSE(raw.has_last_chunk) << "a cut answer must not look complete";
    EXPECT_EQ(raw.payload.size(), size_t(3 * 4096));
    EXPECT_EQ(raw.payload.find("upstream connection lost"), std::string::npos)
        << "no SSE error event inside audio";
    const Row row = next_row();
    EXPECT_EQ(row.at("end_reason"), "upstream_reset") << describe_row(row);
}

TEST_F(ProxyEndpointsTest, SpeechErrorIsJson) {
    const Response response = post("/v1/audio/speech", speech_body(R"("status":400)"));
    EXPECT_EQ(response.status, 400);
    Json json(response.body);
    EXPECT_TRUE(json.has("/error/message")) << response.body;
    const Row row = next_row();
    EXPECT_EQ(row.at("usage_source"), "unknown") << describe_row(row);
    EXPECT_EQ(as_int(row, "total_tokens"), 0);
}

TEST_F(ProxyEndpointsTest, EveryEndpointNeedsAModel) {
    const Response response = post("/v1/moderations", R"({"input":"no model here"})");
    EXPECT_EQ(response.status, 400) << response.body;
    EXPECT_NE(response.body.find("model"), std::string::npos);
    EXPECT_EQ(mock_requests(mock_.port()), 0);
}

// The multipart endpoints take multipart/form-data only (tests/e2e/proxy_upload_test.cc
// covers their uploads): a JSON body is refused at its head and nothing reaches the upstream.
TEST_F(ProxyEndpointsTest, MultipartEndpointsRefuseJson) {
    for (const char* path :
         {"/v1/images/edits", "/v1/audio/transcriptions", "/v1/audio/translations"}) {
        const Response response = post(path, R"({"model":"whisper-1"})");
        EXPECT_EQ(response.status, 400) << path << ": " << response.body;
        EXPECT_NE(response.body.find("invalid_content_type"), std::string::npos) << response.body;
    }
    EXPECT_EQ(mock_requests(mock_.port()), 0);
}

// curl, as an operator tries it: the speech file it writes is the mock's audio, byte for byte.
TEST_F(ProxyEndpointsTest, CurlDownloadsSpeech) {
    if (std::system("command -v curl >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "curl is not installed";
    }
    TempDir dir;
    const std::string body = speech_body(R"("chunks":32,"chunk-text-bytes":32768)");
    const std::string body_path = dir.path() + "/speech.json";
    const std::string out_path = dir.path() + "/speech.wav";
    FILE* file = std::fopen(body_path.c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fwrite(body.data(), 1, body.size(), file);
    std::fclose(file);
    const std::string command =
        "curl -sS --fail --max-time 30 -o " + out_path + " -H 'Authorization: Bearer " +
        key_.secret + "' -H 'Content-Type: application/json' --data-binary @" + body_path +
        " http://127.0.0.1:" + std::to_string(gateway_.port()) + "/v1/audio/speech";
    const int status = std::system(command.c_str());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command;
    file = std::fopen(out_path.c_str(), "rb");
    ASSERT_NE(file, nullptr);
    std::string written;
    char buffer[65536];
    size_t read_bytes = 0;
    while ((read_bytes = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
        written.append(buffer, read_bytes);
    }
    std::fclose(file);
    const Response expected = direct(mock_.port(), "/v1/audio/speech", body);
    EXPECT_EQ(written.size(), size_t(32 * 32768));
    EXPECT_TRUE(written == expected.body) << "bytes differ";
}

}  // namespace
}  // namespace rw::test::proxy
