// tests/e2e/harness_test.cc — the test harness itself (tests/support/harness.h): the
// response parser, the metrics scraper and the process helpers. A wrong harness makes
// every e2e test wrong, so its own logic is pinned here without a server.
#include <gtest/gtest.h>

#include <signal.h>

#include <string>

#include "tests/support/harness.h"

namespace rw::test {
namespace {

ParseStatus parse(std::string_view bytes, Response* response, size_t* consumed_bytes,
                  bool is_head_request = false, bool is_eof = false) {
    std::string error;
    return parse_response(bytes, is_head_request, is_eof, response, consumed_bytes, &error);
}

TEST(HarnessParse, ContentLengthFramedResponse) {
    const std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b \r\n\r\nhelloHTTP/1.1";
    Response response;
    size_t consumed_bytes = 0;
    ASSERT_EQ(parse(wire, &response, &consumed_bytes), ParseStatus::complete);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.reason, "OK");
    EXPECT_EQ(response.body, "hello");
    EXPECT_EQ(response.header("x-a"), "b");
    EXPECT_EQ(response.header("X-A"), "b");
    EXPECT_EQ(consumed_bytes, wire.size() - 8);
    EXPECT_EQ(parse(wire.substr(0, 40), &response, &consumed_bytes), ParseStatus::incomplete);
}

TEST(HarnessParse, ChunkedResponseWithTrailer) {
    const std::string wire =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
    Response response;
    size_t consumed_bytes = 0;
    ASSERT_EQ(parse(wire, &response, &consumed_bytes), ParseStatus::complete);
    EXPECT_TRUE(response.is_chunked);
    EXPECT_EQ(response.body, "hello0123456789");
    EXPECT_EQ(consumed_bytes, wire.size());
    for (size_t cut = 0; cut < wire.size(); cut++) {
        EXPECT_EQ(parse(wire.substr(0, cut), &response, &consumed_bytes), ParseStatus::incomplete)
            << cut;
    }
}

TEST(HarnessParse, NoBodyCases) {
    Response response;
    size_t consumed_bytes = 0;
    ASSERT_EQ(parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", &response, &consumed_bytes),
              ParseStatus::complete);
    EXPECT_EQ(response.status, 100);
    EXPECT_EQ(consumed_bytes, 25u);
    ASSERT_EQ(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n", &response, &consumed_bytes, true),
        ParseStatus::complete);
    EXPECT_EQ(response.body, "");
    // Framed by EOF: complete only once the peer closed.
    EXPECT_EQ(parse("HTTP/1.0 200 OK\r\n\r\nabc", &response, &consumed_bytes),
              ParseStatus::incomplete);
    ASSERT_EQ(parse("HTTP/1.0 200 OK\r\n\r\nabc", &response, &consumed_bytes, false, true),
              ParseStatus::complete);
    EXPECT_EQ(response.body, "abc");
    EXPECT_EQ(parse("SSH-2.0-x\r\n", &response, &consumed_bytes), ParseStatus::invalid);
}

TEST(HarnessParse, ConnectionTokens) {
    Response response;
    response.headers = {{"connection", "keep-alive, Close"}};
    EXPECT_TRUE(response.connection_has("close"));
    EXPECT_TRUE(response.connection_has("Keep-Alive"));
    EXPECT_FALSE(response.connection_has("upgrade"));
}

TEST(HarnessErrors, AcceptsTheContractShapeOnly) {
    Response response;
    response.status = 404;
    response.headers = {
        {"content-type", "application/json"}, {"connection", "close"}, {"content-length", "0"}};
    response.body =
        R"({"error":{"message":"m","type":"invalid_request_error","code":"unknown_url"}})";
    response.headers[2].second = std::to_string(response.body.size());
    std::string code;
    EXPECT_EQ(check_error_response(response, &code), "");
    EXPECT_EQ(code, "unknown_url");
    response.status = 500;
    EXPECT_NE(check_error_response(response, &code), "") << "5xx must be server_error";
    response.status = 404;
    response.headers[1].second = "keep-alive";
    EXPECT_NE(check_error_response(response, &code), "") << "errors must close";
}

TEST(HarnessMetrics, ParsesLabelsAndSums) {
    const std::string text =
        "# HELP x y\n# TYPE ringway_requests_total counter\n"
        "ringway_requests_total{class=\"2xx\"} 12\n"
        "ringway_requests_total{class=\"4xx\"} 3\n"
        "ringway_loop_iterations_total{shard=\"0\"} 5\n"
        "ringway_loop_iterations_total{shard=\"1\"} 7 1700000000\n"
        "ringway_connections_active 2\n"
        "odd{a=\"q\\\"x\",b=\"2\"} 1.5e3\n";
    EXPECT_EQ(metric_value(text, "ringway_requests_total", {{"class", "2xx"}}), 12.0);
    EXPECT_EQ(metric_value(text, "ringway_requests_total"), std::nullopt) << "ambiguous";
    EXPECT_EQ(metric_sum(text, "ringway_requests_total"), 15.0);
    EXPECT_EQ(metric_sum(text, "ringway_loop_iterations_total"), 12.0);
    EXPECT_EQ(metric_value(text, "ringway_connections_active"), 2.0);
    EXPECT_EQ(metric_value(text, "odd", {{"a", "q\"x"}}), 1500.0);
    EXPECT_EQ(metric_sum(text, "absent"), 0.0);
    EXPECT_EQ(parse_metrics(text).size(), 6u);
}

TEST(HarnessProcess, CapturesOutputAndExitStatus) {
    Process process;
    SpawnOptions options;
    options.program = "/bin/sh";
    options.args = {"-c", "echo out-line; echo err-line >&2; echo \"$RW_X\" >&2; exit 3"};
    options.env = {{"RW_X", "from-env"}};
    std::string error;
    ASSERT_TRUE(process.start(options, &error)) << error;
    EXPECT_EQ(process.wait_for_line(Stream::err, "from-env", Deadline::after_ms(5000)), "from-env");
    const std::optional<ExitStatus> status = process.wait_exit(Deadline::after_ms(5000));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->is_exited);
    EXPECT_EQ(status->code, 3);
    EXPECT_EQ(process.output(Stream::out), "out-line\n");
    EXPECT_EQ(process.lines_containing(Stream::err, "err-").size(), 1u);
}

TEST(HarnessProcess, SignalsAndDeadlines) {
    Process process;
    SpawnOptions options;
    options.program = "/bin/sleep";
    options.args = {"30"};
    std::string error;
    ASSERT_TRUE(process.start(options, &error)) << error;
    const Clock::time_point start = Clock::now();
    EXPECT_FALSE(process.wait_exit(Deadline::after_ms(100)).has_value());
    EXPECT_GE(elapsed_ms(start), 90);
    EXPECT_TRUE(process.is_running());
    EXPECT_TRUE(process.send_signal(SIGTERM));
    const std::optional<ExitStatus> status = process.wait_exit(Deadline::after_ms(5000));
    ASSERT_TRUE(status.has_value());
    EXPECT_FALSE(status->is_exited);
    EXPECT_EQ(status->signal, SIGTERM);
    EXPECT_FALSE(process.wait_for_line(Stream::out, "never", Deadline::after_ms(5000)))
        << "a closed stream must end the wait at once";
}

TEST(HarnessProcess, InheritedRingwayVariablesAreDropped) {
    ::setenv("RINGWAY_LEAK_TEST", "1", 1);
    Process process;
    SpawnOptions options;
    options.program = "/bin/sh";
    options.args = {"-c", "echo \"[${RINGWAY_LEAK_TEST}]\""};
    std::string error;
    ASSERT_TRUE(process.start(options, &error)) << error;
    ASSERT_TRUE(process.wait_exit(Deadline::after_ms(5000)).has_value());
    EXPECT_EQ(process.output(Stream::out), "[]\n");
    ::unsetenv("RINGWAY_LEAK_TEST");
}

TEST(HarnessMockUpstream, StartsAndAnswersHealth) {
    if (mock_upstream_path().empty()) {
        GTEST_SKIP() << "mock_upstream is not built";
    }
    MockUpstream mock;
    std::string error;
    ASSERT_TRUE(mock.start({"--listen", "127.0.0.1:0"}, {}, &error)) << error;
    ASSERT_NE(mock.port(), 0);
    const std::optional<Response> response =
        http_exchange(mock.port(), "GET /__mock/health HTTP/1.1\r\nHost: t\r\n\r\n",
                      Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_EQ(response->status, 200);
}

}  // namespace
}  // namespace rw::test
