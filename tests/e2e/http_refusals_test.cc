// tests/e2e/http_refusals_test.cc — every request ringway must refuse (RULES.md 3, 4 and
// the smuggling vectors behind them), checked the same way for each: the status, the
// OpenAI-style JSON error, Connection: close, the connection closed right after, a request
// pipelined behind the bad one never answered, and ringway_parse_errors_total{kind=code}
// moved by exactly one. One ringway per test case, default limits. Deadlines are 10 s: they
// bound waits a passing case ends at once, and must not fail a run on a loaded machine.
#include <gtest/gtest.h>

#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace rw::test {
namespace {

struct Refusal {
    const char* name;     // gtest parameter name.
    std::string request;  // The bad request; a valid GET is pipelined after it.
    std::set<int> statuses;
    const char* code;  // Expected error.code (= metrics kind), or nullptr: any.
};

// gtest prints the case name instead of the struct's bytes.
void PrintTo(const Refusal& refusal, std::ostream* out) {
    *out << refusal.name;
}

std::string post_head(std::string_view extra_headers) {
    return "POST /healthz HTTP/1.1\r\nHost: t\r\n" + std::string(extra_headers) + "\r\n";
}

std::string many_headers(int count) {
    std::string headers;
    for (int index = 0; index < count; index++) {
        headers += "X-H" + std::to_string(index) + ": v\r\n";
    }
    return headers;
}

constexpr char nul_in_value[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n";

std::vector<Refusal> refusals() {
    const std::string chunked = "Transfer-Encoding: chunked\r\n";
    return {
        {"ObsFoldSpace",
         "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
         {400},
         "obs_fold"},
        {"ObsFoldTab",
         "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n",
         {400},
         "obs_fold"},
        {"FirstHeaderStartsWithSpace",
         "GET /healthz HTTP/1.1\r\n Host: t\r\n\r\n",
         {400},
         "obs_fold"},
        {"BareCrInHeader",
         "GET /healthz HTTP/1.1\r\nHost: t\rX-A: b\r\n\r\n",
         {400},
         "bare_cr_or_lf"},
        {"BareCrInRequestLine",
         "GET /healthz\r HTTP/1.1\r\nHost: t\r\n\r\n",
         {400},
         "bare_cr_or_lf"},
        {"BareLfAfterRequestLine",
         "GET /healthz HTTP/1.1\nHost: t\r\n\r\n",
         {400},
         "bare_cr_or_lf"},
        {"BareLfAfterHeader",
         "GET /healthz HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n",
         {400},
         "bare_cr_or_lf"},
        {"BareLfEndsHead", "GET /healthz HTTP/1.1\r\nHost: t\r\n\n", {400}, "bare_cr_or_lf"},
        {"AllBareLf", "GET /healthz HTTP/1.1\nHost: t\n\n", {400}, "bare_cr_or_lf"},
        {"MissingHost", "GET /healthz HTTP/1.1\r\nX-A: b\r\n\r\n", {400}, "missing_host"},
        {"DuplicateHost",
         "GET /healthz HTTP/1.1\r\nHost: t\r\nHost: t\r\n\r\n",
         {400},
         "duplicate_host"},
        {"DuplicateHostDifferentCase",
         "GET /healthz HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n",
         {400},
         "duplicate_host"},
        {"Http09RequestLine", "GET /\r\n", {400}, nullptr},
        {"Version20", "GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n", {505}, "bad_version"},
        {"Version12", "GET /healthz HTTP/1.2\r\nHost: t\r\n\r\n", {505}, "bad_version"},
        {"Version09Explicit", "GET /healthz HTTP/0.9\r\nHost: t\r\n\r\n", {505}, "bad_version"},
        {"H2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 505}, nullptr},
        {"UpgradeWebsocket",
         "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         {400},
         "upgrade_refused"},
        {"UpgradeWebsocketWithoutConnectionToken",
         "GET /healthz HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\r\n",
         {400},
         "upgrade_refused"},
        {"UpgradeH2c",
         "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
         "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
         {400},
         "upgrade_refused"},
        {"Connect",
         "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
         {405},
         "connect_refused"},
        {"ContentLengthAndChunked",
         post_head("Content-Length: 5\r\n" + chunked) + "5\r\nhello\r\n0\r\n\r\n",
         {400},
         "cl_and_te"},
        {"ChunkedAndContentLength",
         post_head(chunked + "Content-Length: 5\r\n") + "5\r\nhello\r\n0\r\n\r\n",
         {400},
         "cl_and_te"},
        {"DuplicateContentLengthEqual",
         post_head("Content-Length: 5\r\nContent-Length: 5\r\n") + "hello",
         {400},
         "duplicate_content_length"},
        {"DuplicateContentLengthDifferent",
         post_head("Content-Length: 5\r\nContent-Length: 6\r\n") + "hello!",
         {400},
         "duplicate_content_length"},
        {"ContentLengthList", post_head("Content-Length: 5, 5\r\n") + "hello", {400}, nullptr},
        {"ContentLengthNotDigits",
         post_head("Content-Length: abc\r\n"),
         {400},
         "bad_content_length"},
        {"ContentLengthNegative", post_head("Content-Length: -1\r\n"), {400}, "bad_content_length"},
        {"ContentLengthPlusSign",
         post_head("Content-Length: +5\r\n") + "hello",
         {400},
         "bad_content_length"},
        {"ContentLengthOverflow",
         post_head("Content-Length: 99999999999999999999999\r\n"),
         {400},
         "bad_content_length"},
        {"TransferEncodingGzip",
         post_head("Transfer-Encoding: gzip\r\n") + "x",
         {400, 501},
         "bad_transfer_encoding"},
        {"TransferEncodingGzipChunked",
         post_head("Transfer-Encoding: gzip, chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n",
         {400, 501},
         "bad_transfer_encoding"},
        {"TransferEncodingIdentity",
         post_head("Transfer-Encoding: identity\r\n"),
         {400, 501},
         "bad_transfer_encoding"},
        {"TransferEncodingChunkedTwice",
         post_head(chunked + chunked) + "5\r\nhello\r\n0\r\n\r\n",
         {400, 501},
         nullptr},
        {"TransferEncodingOnHttp10",
         "POST /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n0\r\n\r\n",
         {400, 501},
         nullptr},
        {"ChunkSizeNotHex", post_head(chunked) + "zz\r\nhello\r\n0\r\n\r\n", {400}, "bad_chunk"},
        {"ChunkSizeEmpty", post_head(chunked) + "\r\nhello\r\n0\r\n\r\n", {400}, "bad_chunk"},
        {"ChunkSizeOverflow",
         post_head(chunked) + "fffffffffffffffffffff\r\nhello\r\n",
         {400},
         "bad_chunk"},
        {"ChunkDataWithoutCrlf", post_head(chunked) + "5\r\nhelloXX0\r\n\r\n", {400}, "bad_chunk"},
        {"ChunkSizeNegative", post_head(chunked) + "-5\r\nhello\r\n0\r\n\r\n", {400}, "bad_chunk"},
        {"ChunkExtensionOverDefaultLimit",
         post_head(chunked) + "5;" + std::string(2000, 'a') + "\r\nhello\r\n0\r\n\r\n",
         {400},
         "chunk_ext_too_long"},
        {"RequestLineOverDefaultLimit",
         "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n",
         {414},
         "request_line_too_long"},
        {"HeaderBytesOverDefaultLimit",
         "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(62000, 'a') + "\r\n\r\n",
         {431},
         "header_bytes_too_large"},
        {"TooManyHeadersForDefaultLimit",
         "GET /healthz HTTP/1.1\r\nHost: t\r\n" + many_headers(100) + "\r\n",
         {431},
         "too_many_headers"},
        {"BodyOverDefaultLimitByContentLength",
         post_head("Content-Length: 16777217\r\n"),
         {413},
         "body_too_large"},
        {"HeaderNameWithSpace",
         "GET /healthz HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n",
         {400},
         "invalid_header"},
        {"HeaderNameEmpty", "GET /healthz HTTP/1.1\r\nHost: t\r\n: x\r\n\r\n", {400}, nullptr},
        {"HeaderSpaceBeforeColon",
         "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A : x\r\n\r\n",
         {400},
         nullptr},
        {"HeaderValueWithNul",
         std::string(nul_in_value, sizeof(nul_in_value) - 1),
         {400},
         "invalid_header"},
        {"MethodNotAToken", "G@T /healthz HTTP/1.1\r\nHost: t\r\n\r\n", {400}, nullptr},
        {"TargetNotAbsolutePath", "GET healthz HTTP/1.1\r\nHost: t\r\n\r\n", {400}, "bad_target"},
        {"TargetWithFragment", "GET /healthz#x HTTP/1.1\r\nHost: t\r\n\r\n", {400}, "bad_target"},
        {"TargetWithBarePercent",
         "GET /v1/models%zz HTTP/1.1\r\nHost: t\r\n\r\n",
         {400},
         "bad_target"},
        {"TargetEndingInPercent", "GET /healthz% HTTP/1.1\r\nHost: t\r\n\r\n", {400}, "bad_target"},
        {"HostWithSpace", "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", {400}, "bad_host"},
        {"HostWithSlash", "GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n", {400}, "bad_host"},
        {"HostWithBackslash", "GET /healthz HTTP/1.1\r\nHost: a\\b\r\n\r\n", {400}, "bad_host"},
        {"HostNonAscii",
         "GET /healthz HTTP/1.1\r\nHost: h\xc3\xa9.example\r\n\r\n",
         {400},
         "bad_host"},
        {"TrailerEndsWithBareLf",
         post_head(chunked) + "5\r\nhello\r\n0\r\nX-T: 1\r\n\n",
         {400},
         "bare_cr_or_lf"},
        {"EmptyTrailerWithBareLf", post_head(chunked) + "0\r\n\n", {400}, "bare_cr_or_lf"},
    };
}

class HttpRefusal : public ::testing::TestWithParam<Refusal> {
protected:
    void SetUp() override {
        std::string error;
        ASSERT_TRUE(server_.start({{"RINGWAY_SHARDS", "2"}}, &error)) << error;
    }

    Ringway server_;
};

TEST_P(HttpRefusal, AnsweredWithJsonErrorThenClosed) {
    const Refusal& refusal = GetParam();
    const std::optional<std::string> before =
        scrape_metrics(server_.port(), Deadline::after_ms(10000));
    ASSERT_TRUE(before.has_value());

    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(10000), &error)) << error;
    // Some refusals end the connection before every byte is read: a failed send is fine,
    // the answer must still arrive.
    (void)client.send(refusal.request + get_request("/healthz"), Deadline::after_ms(10000));
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(10000), false, &error);
    ASSERT_TRUE(response.has_value())
        << "no response to " << escape_bytes(refusal.request) << ": " << error;
    EXPECT_TRUE(refusal.statuses.count(response->status))
        << "status " << response->status << " for " << escape_bytes(refusal.request) << "; body "
        << response->body;
    std::string code;
    EXPECT_EQ(check_error_response(*response, &code), "") << response->body;
    if (refusal.code != nullptr) {
        EXPECT_EQ(code, refusal.code) << response->body;
    }
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(10000)))
        << "connection still open after the error response";
    EXPECT_EQ(client.unread(), "") << "bytes after the error response (pipelined request "
                                      "answered?)";

    // The refusal is counted once, under its code. Counters are published by the shard
    // that answered, so poll briefly instead of expecting the very next scrape.
    ASSERT_FALSE(code.empty());
    const double kind_before = metric_sum(*before, "ringway_parse_errors_total", {{"kind", code}});
    const double all_before = metric_sum(*before, "ringway_parse_errors_total");
    std::string after;
    const Deadline deadline = Deadline::after_ms(10000);
    do {
        after = scrape_metrics(server_.port(), Deadline::after_ms(10000)).value_or("");
        if (metric_sum(after, "ringway_parse_errors_total", {{"kind", code}}) >= kind_before + 1) {
            break;
        }
    } while (!deadline.passed());
    EXPECT_EQ(metric_sum(after, "ringway_parse_errors_total", {{"kind", code}}), kind_before + 1)
        << "ringway_parse_errors_total{kind=\"" << code << "\"}";
    EXPECT_EQ(metric_sum(after, "ringway_parse_errors_total"), all_before + 1)
        << "exactly one parse error must be counted";
    // The server must still serve.
    const std::optional<Response> health =
        http_exchange(server_.port(), get_request("/healthz"), Deadline::after_ms(10000));
    ASSERT_TRUE(health.has_value());
    EXPECT_EQ(health->status, 200);
}

INSTANTIATE_TEST_SUITE_P(All, HttpRefusal, ::testing::ValuesIn(refusals()),
                         [](const ::testing::TestParamInfo<Refusal>& param_info) {
                             return std::string(param_info.param.name);
                         });

// A refusal that arrives byte by byte is refused just the same: the scanner keeps its
// state across reads.
TEST(HttpRefusalSplit, ObsFoldSentOneByteAtATime) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"}}, &error)) << error;
    Client client;
    ASSERT_TRUE(client.connect(server.port(), Deadline::after_ms(10000), &error)) << error;
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n";
    for (char byte : request) {
        if (!client.send(std::string_view(&byte, 1), Deadline::after_ms(10000))) {
            break;
        }
    }
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(10000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_EQ(response->status, 400);
    std::string code;
    EXPECT_EQ(check_error_response(*response, &code), "");
    EXPECT_EQ(code, "obs_fold");
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(10000)));
}

TEST(HttpRefusalSplit, BareCrAtTheEndOfARead) {
    // The CR is the last byte of one segment; what follows decides if it is bare.
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"}}, &error)) << error;
    Client client;
    ASSERT_TRUE(client.connect(server.port(), Deadline::after_ms(10000), &error)) << error;
    ASSERT_TRUE(client.send("GET /healthz HTTP/1.1\r\nHost: t\r", Deadline::after_ms(10000)));
    EXPECT_FALSE(client.wait_readable(Deadline::after_ms(100)))
        << "answered before the byte after CR arrived: " << escape_bytes(client.unread());
    ASSERT_TRUE(client.send("X-A: b\r\n\r\n", Deadline::after_ms(10000)));
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(10000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_EQ(response->status, 400);
    std::string code;
    EXPECT_EQ(check_error_response(*response, &code), "");
    EXPECT_EQ(code, "bare_cr_or_lf");
}

}  // namespace
}  // namespace rw::test
