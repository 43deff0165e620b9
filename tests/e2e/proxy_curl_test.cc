// tests/e2e/proxy_curl_test.cc — the gateway through the real curl binary, as operators
// try it: a whole chat completion, a stream read with -N, and a stream the upstream cuts,
// which curl must report as an incomplete transfer (exit 18, CURLE_PARTIAL_FILE) after the
// upstream_error event. Skipped (77) when curl is not installed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

struct CurlResult {
    int exit_code = -1;
    std::string output;
};

// Runs curl with the body in a file (no shell quoting of JSON) and returns stdout.
CurlResult run_curl(const std::string& dir, uint16_t port, const std::string& key,
                    const std::string& body, bool is_stream) {
    const std::string body_path = dir + "/body.json";
    FILE* file = std::fopen(body_path.c_str(), "w");
    EXPECT_NE(file, nullptr);
    std::fwrite(body.data(), 1, body.size(), file);
    std::fclose(file);
    const std::string command = "curl -s --max-time 20 " + std::string(is_stream ? "-N " : "") +
                                "-H 'Authorization: Bearer " + key +
                                "' -H 'Content-Type: application/json' --data-binary @" +
                                body_path + " http://127.0.0.1:" + std::to_string(port) +
                                "/v1/chat/completions";
    CurlResult result;
    FILE* pipe = ::popen(command.c_str(), "r");
    EXPECT_NE(pipe, nullptr);
    char buffer[4096];
    size_t read_bytes = 0;
    while ((read_bytes = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
        result.output.append(buffer, read_bytes);
    }
    const int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

class ProxyCurlTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (std::system("command -v curl >/dev/null 2>&1") != 0) {
            std::fprintf(stderr, "curl is not installed: skipped\n");
            std::exit(77);
        }
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start({}));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        const auto probes = gateway_.wait_channels_routable();
        ASSERT_EQ(probes.at("main").status, 200) << probes.at("main").body;
        key_ = gateway_.create_key(R"({"name":"curl"})");
        ASSERT_FALSE(key_.secret.empty());
    }

    MockUpstream mock_;
    Gateway gateway_;
    Key key_;
    TempDir dir_;
};

TEST_F(ProxyCurlTest, WholeCompletion) {
    const CurlResult result =
        run_curl(dir_.path(), gateway_.port(), key_.secret, chat_body("gpt-4o-mini", false), false);
    EXPECT_EQ(result.exit_code, 0);
    Json json(result.output);
    ASSERT_TRUE(json.ok()) << result.output;
    EXPECT_EQ(json.string("/object"), "chat.completion");
    EXPECT_EQ(json.string("/choices/0/message/content"), "aaaabbbbcccc");
    EXPECT_GT(json.integer("/usage/total_tokens"), 0);
}

TEST_F(ProxyCurlTest, StreamEndsWithDone) {
    const CurlResult result =
        run_curl(dir_.path(), gateway_.port(), key_.secret, chat_body("gpt-4o-mini", true), true);
    EXPECT_EQ(result.exit_code, 0);
    const auto events = sse_events(result.output);
    ASSERT_GE(events.size(), 3u) << escape_bytes(result.output, 2000);
    EXPECT_EQ(events.back(), "data: [DONE]");
    // ringway asked for the usage chunk to meter the stream; curl did not, so it is cut out.
    EXPECT_EQ(result.output.find("\"usage\":{"), std::string::npos);
}

TEST_F(ProxyCurlTest, CutStreamIsAnIncompleteTransfer) {
    const CurlResult result = run_curl(
        dir_.path(), gateway_.port(), key_.secret,
        chat_body("gpt-4o-mini", true, R"("x_mock":{"fault":"reset","fault-after":2})"), true);
    EXPECT_EQ(result.exit_code, 18) << "curl must see the body as incomplete";
    const auto events = sse_events(result.output);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), upstream_lost_event);
    EXPECT_EQ(result.output.find("[DONE]"), std::string::npos);
}

}  // namespace
}  // namespace rw::test::proxy
