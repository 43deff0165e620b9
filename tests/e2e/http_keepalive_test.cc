// tests/e2e/http_keepalive_test.cc — connection reuse as a client sees it: keep-alive,
// pipelining (responses in request order, split anywhere), HEAD, HTTP/1.0 defaults,
// Connection: close, Expect: 100-continue and chunked request bodies. Each test runs its
// own ringway (two shards at most) and speaks raw HTTP/1.1 through rw_test_harness.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace rw::test {
namespace {

constexpr std::string_view healthz_body = R"({"status":"ok"})";
constexpr std::string_view readyz_body = R"({"status":"ready"})";

class HttpKeepAlive : public ::testing::Test {
protected:
    void SetUp() override {
        std::string error;
        ASSERT_TRUE(server_.start({{"RINGWAY_SHARDS", "2"}}, &error)) << error;
    }

    // A connected client, or a test failure.
    Client connect() {
        Client client;
        std::string error;
        EXPECT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
        return client;
    }

    Ringway server_;
};

// The response to GET /healthz or /readyz on a connection that stays open.
void expect_kept_alive_ok(const std::optional<Response>& response, std::string_view body,
                          const std::string& error) {
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->version, "HTTP/1.1");
    EXPECT_EQ(response->body, body);
    EXPECT_FALSE(response->connection_has("close"));
    EXPECT_EQ(response->header_count("content-length") + (response->is_chunked ? 1u : 0u), 1u)
        << "a response on a kept-alive connection must be framed";
}

TEST_F(HttpKeepAlive, SequentialRequestsShareOneConnection) {
    Client client = connect();
    for (int index = 0; index < 20; index++) {
        const bool is_health = index % 2 == 0;
        ASSERT_TRUE(
            client.send(get_request(is_health ? "/healthz" : "/readyz"), Deadline::after_ms(2000)));
        std::string error;
        const std::optional<Response> response =
            client.read_response(Deadline::after_ms(2000), false, &error);
        expect_kept_alive_ok(response, is_health ? healthz_body : readyz_body, error);
        ASSERT_FALSE(client.is_peer_closed()) << "closed after request " << index;
    }
    EXPECT_TRUE(client.unread().empty()) << escape_bytes(client.unread());
}

TEST_F(HttpKeepAlive, PipelinedResponsesComeInRequestOrder) {
    // 60 requests in one write: far more than one recv buffer's worth of requests is not
    // needed; what matters is that answers never overtake each other.
    std::string batch;
    std::vector<std::string_view> expected;
    for (int index = 0; index < 60; index++) {
        const bool is_health = index % 3 != 1;
        batch += get_request(is_health ? "/healthz" : "/readyz",
                             "X-Index: " + std::to_string(index) + "\r\n");
        expected.push_back(is_health ? healthz_body : readyz_body);
    }
    Client client = connect();
    ASSERT_TRUE(client.send(batch, Deadline::after_ms(2000)));
    for (size_t index = 0; index < expected.size(); index++) {
        std::string error;
        const std::optional<Response> response =
            client.read_response(Deadline::after_ms(3000), false, &error);
        SCOPED_TRACE("response " + std::to_string(index));
        expect_kept_alive_ok(response, expected[index], error);
        if (!response.has_value()) {
            return;
        }
    }
    EXPECT_FALSE(client.wait_readable(Deadline::after_ms(100)))
        << "extra bytes after the last pipelined response: " << escape_bytes(client.unread());
}

TEST_F(HttpKeepAlive, PipelinedRequestsSplitAtEveryByte) {
    // One byte per send (TCP_NODELAY): request boundaries never line up with segment
    // boundaries, and many tiny segments arrive while earlier answers are being sent.
    // Whether they pile up depends on timing, so the scenario runs on ten connections.
    std::string batch;
    std::vector<std::string_view> expected;
    for (int index = 0; index < 6; index++) {
        batch += get_request(index % 2 ? "/readyz" : "/healthz");
        expected.push_back(index % 2 ? readyz_body : healthz_body);
    }
    for (int attempt = 0; attempt < 10; attempt++) {
        SCOPED_TRACE("connection " + std::to_string(attempt));
        Client client = connect();
        size_t sent_bytes = 0;
        for (char byte : batch) {
            if (!client.send(std::string_view(&byte, 1), Deadline::after_ms(2000))) {
                break;
            }
            sent_bytes++;
        }
        EXPECT_EQ(sent_bytes, batch.size()) << "ringway closed the connection mid-pipeline";
        for (size_t index = 0; index < expected.size(); index++) {
            std::string error;
            SCOPED_TRACE("response " + std::to_string(index));
            const std::optional<Response> response =
                client.read_response(Deadline::after_ms(2000), false, &error);
            expect_kept_alive_ok(response, expected[index], error);
            if (!response.has_value()) {
                return;
            }
        }
    }
}

TEST_F(HttpKeepAlive, PipelineContinuesAfterA404) {
    // A well-framed request for an unknown path is refused and the connection kept (nginx
    // does the same): the request after it is answered in order.
    const std::string batch =
        get_request("/healthz") + get_request("/no-such-path") + get_request("/readyz");
    Client client = connect();
    ASSERT_TRUE(client.send(batch, Deadline::after_ms(2000)));
    std::string error;
    expect_kept_alive_ok(client.read_response(Deadline::after_ms(2000), false, &error),
                         healthz_body, error);
    const std::optional<Response> not_found =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(not_found.has_value()) << error;
    EXPECT_EQ(not_found->status, 404);
    std::string code;
    EXPECT_EQ(check_error_response(*not_found, &code, false), "");
    expect_kept_alive_ok(client.read_response(Deadline::after_ms(2000), false, &error), readyz_body,
                         error);
}

TEST_F(HttpKeepAlive, PipelineStopsAtAMalformedRequest) {
    // A request without Host is malformed: answered 400, and the connection ends there,
    // so the request after it is never answered.
    const std::string batch =
        get_request("/healthz") + "GET /healthz HTTP/1.1\r\n\r\n" + get_request("/readyz");
    Client client = connect();
    ASSERT_TRUE(client.send(batch, Deadline::after_ms(2000)));
    std::string error;
    expect_kept_alive_ok(client.read_response(Deadline::after_ms(2000), false, &error),
                         healthz_body, error);
    const std::optional<Response> refused =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(refused.has_value()) << error;
    EXPECT_EQ(refused->status, 400);
    std::string code;
    EXPECT_EQ(check_error_response(*refused, &code), "");
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(3000))) << "connection left open after 400";
    EXPECT_EQ(client.unread(), "") << "a request pipelined after an error was answered";
}

TEST_F(HttpKeepAlive, HeadHasHeadersButNoBody) {
    // If HEAD leaked body bytes, the GET behind it would not parse.
    Client client = connect();
    ASSERT_TRUE(client.send("HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + get_request("/readyz"),
                            Deadline::after_ms(2000)));
    std::string error;
    const std::optional<Response> head =
        client.read_response(Deadline::after_ms(2000), true, &error);
    ASSERT_TRUE(head.has_value()) << error;
    EXPECT_EQ(head->status, 200);
    EXPECT_FALSE(head->connection_has("close"));
    if (const std::optional<std::string> length = head->header("content-length")) {
        EXPECT_EQ(*length, std::to_string(healthz_body.size()))
            << "HEAD must announce the length GET would send";
    }
    expect_kept_alive_ok(client.read_response(Deadline::after_ms(2000), false, &error), readyz_body,
                         error);
}

TEST_F(HttpKeepAlive, HeadWorksOnEveryEndpoint) {
    for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
        SCOPED_TRACE(path);
        Client client = connect();
        ASSERT_TRUE(client.send(std::string("HEAD ") + path + " HTTP/1.1\r\nHost: t\r\n\r\n",
                                Deadline::after_ms(2000)));
        std::string error;
        const std::optional<Response> head =
            client.read_response(Deadline::after_ms(2000), true, &error);
        ASSERT_TRUE(head.has_value()) << error;
        EXPECT_EQ(head->status, 200);
        EXPECT_FALSE(client.wait_readable(Deadline::after_ms(150)))
            << "bytes after a HEAD response: " << escape_bytes(client.unread());
    }
}

TEST_F(HttpKeepAlive, HeadErrorResponseHasNoBody) {
    // RFC 9110 9.3.2: no content in a response to HEAD, errors included.
    Client client = connect();
    ASSERT_TRUE(
        client.send("HEAD /no-such-path HTTP/1.1\r\nHost: t\r\n\r\n", Deadline::after_ms(2000)));
    std::string error;
    const std::optional<Response> head =
        client.read_response(Deadline::after_ms(2000), true, &error);
    ASSERT_TRUE(head.has_value()) << error;
    EXPECT_EQ(head->status, 404);
    EXPECT_FALSE(head->connection_has("close"));  // A well-framed request keeps it.
    EXPECT_FALSE(client.wait_readable(Deadline::after_ms(150)))
        << "body bytes after a HEAD response: " << escape_bytes(client.unread());
}

TEST_F(HttpKeepAlive, PipelineFollowedByHalfCloseIsAnsweredInFull) {
    // The client sends two complete requests and shuts down its sending side: both were
    // received whole, so both are answered before the close.
    Client client = connect();
    ASSERT_TRUE(
        client.send(get_request("/healthz") + get_request("/readyz"), Deadline::after_ms(2000)));
    client.shutdown_write();
    std::string error;
    const std::optional<Response> first =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(first.has_value()) << error;
    EXPECT_EQ(first->body, healthz_body);
    const std::optional<Response> second =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(second.has_value()) << "second pipelined request dropped: " << error;
    EXPECT_EQ(second->body, readyz_body);
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)));
}

TEST_F(HttpKeepAlive, Http10ClosesAfterTheResponse) {
    Client client = connect();
    ASSERT_TRUE(client.send("GET /healthz HTTP/1.0\r\n\r\nGET /readyz HTTP/1.0\r\n\r\n",
                            Deadline::after_ms(2000)));
    std::string error;
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, healthz_body);
    EXPECT_FALSE(response->connection_has("keep-alive"));
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)))
        << "an HTTP/1.0 connection without keep-alive stayed open";
    EXPECT_EQ(client.unread(), "") << "the second HTTP/1.0 request was answered";
}

TEST_F(HttpKeepAlive, Http10KeepAliveKeepsTheConnection) {
    Client client = connect();
    for (int index = 0; index < 3; index++) {
        ASSERT_TRUE(client.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                                Deadline::after_ms(2000)));
        std::string error;
        const std::optional<Response> response =
            client.read_response(Deadline::after_ms(2000), false, &error);
        ASSERT_TRUE(response.has_value()) << "request " << index << ": " << error;
        EXPECT_EQ(response->status, 200);
        EXPECT_EQ(response->body, healthz_body);
        // An HTTP/1.0 client assumes close unless the response says keep-alive.
        EXPECT_TRUE(response->connection_has("keep-alive"))
            << "Connection: " << response->header("connection").value_or("<absent>");
        EXPECT_TRUE(response->header("content-length").has_value());
    }
    EXPECT_FALSE(client.is_peer_closed());
}

TEST_F(HttpKeepAlive, ConnectionCloseIsHonoured) {
    Client client = connect();
    ASSERT_TRUE(
        client.send(get_request("/healthz", "Connection: close\r\n") + get_request("/readyz"),
                    Deadline::after_ms(2000)));
    std::string error;
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, healthz_body);
    EXPECT_TRUE(response->connection_has("close"));
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)));
    EXPECT_EQ(client.unread(), "") << "a request after Connection: close was answered";
}

TEST_F(HttpKeepAlive, ConnectionCloseTokenAmongOthers) {
    Client client = connect();
    ASSERT_TRUE(client.send(get_request("/healthz", "Connection: TE, Close\r\n"),
                            Deadline::after_ms(2000)));
    std::string error;
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_EQ(response->status, 200);
    EXPECT_TRUE(response->connection_has("close"));
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)));
}

TEST_F(HttpKeepAlive, Expect100ContinueComesBeforeTheBody) {
    // The client holds the body back until it sees 100 Continue.
    // /healthz: the core serves it, so no head-time refusal stands in the way.
    const std::string body = R"({"model":"m","messages":[]})";
    Client client = connect();
    ASSERT_TRUE(
        client.send("POST /healthz HTTP/1.1\r\nHost: t\r\n"
                    "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                    "Content-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n",
                    Deadline::after_ms(2000)));
    std::string error;
    const std::optional<Response> interim =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(interim.has_value()) << "no 100 Continue before the body: " << error;
    EXPECT_EQ(interim->status, 100) << "got " << interim->status << " before sending the body";
    if (interim->status != 100) {
        return;
    }
    EXPECT_EQ(interim->version, "HTTP/1.1");
    ASSERT_TRUE(client.send(body, Deadline::after_ms(2000)));
    const std::optional<Response> final_response =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(final_response.has_value()) << error;
    EXPECT_NE(final_response->status, 100);
    // The body was fine: whatever the route answers, it is not a framing or size refusal.
    for (int refused : {400, 408, 413, 417}) {
        EXPECT_NE(final_response->status, refused) << final_response->body;
    }
}

TEST_F(HttpKeepAlive, NoContinueWithoutExpect) {
    // A request without Expect must not get an unsolicited 100.
    const std::string body = "{}";
    Client client = connect();
    ASSERT_TRUE(
        client.send("POST /v1/sink HTTP/1.1\r\nHost: t\r\n"
                    "Content-Length: 2\r\n\r\n" +
                        body,
                    Deadline::after_ms(2000)));
    std::string error;
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_NE(response->status, 100);
}

TEST_F(HttpKeepAlive, ChunkedBodyIsFramedExactly) {
    // The chunk data spells a complete request. A server that misframes the body would
    // answer it (404); a correct one answers /healthz, then /readyz, and nothing else.
    const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    char size_hex[16];
    std::snprintf(size_hex, sizeof(size_hex), "%zx", smuggled.size());
    const std::string request = std::string(
                                    "GET /healthz HTTP/1.1\r\nHost: t\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n") +
                                size_hex + "\r\n" + smuggled + "\r\n0\r\n\r\n";
    Client client = connect();
    ASSERT_TRUE(client.send(request + get_request("/readyz"), Deadline::after_ms(2000)));
    std::string error;
    const std::optional<Response> first =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(first.has_value()) << error;
    if (first->status != 200) {
        // Refusing a body on GET is allowed, but then the connection must end here.
        std::string code;
        EXPECT_EQ(check_error_response(*first, &code), "");
        EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)));
        EXPECT_EQ(client.unread(), "");
        return;
    }
    EXPECT_EQ(first->body, healthz_body);
    const std::optional<Response> second =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(second.has_value()) << error;
    EXPECT_EQ(second->status, 200) << "the smuggled request was answered: " << second->body;
    EXPECT_EQ(second->body, readyz_body);
    EXPECT_FALSE(client.wait_readable(Deadline::after_ms(150))) << escape_bytes(client.unread());
}

TEST_F(HttpKeepAlive, ContentLengthBodyIsFramedExactly) {
    const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    const std::string request =
        "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(smuggled.size()) +
        "\r\n\r\n" + smuggled;
    Client client = connect();
    ASSERT_TRUE(client.send(request + get_request("/readyz"), Deadline::after_ms(2000)));
    std::string error;
    const std::optional<Response> first =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(first.has_value()) << error;
    if (first->status != 200) {
        std::string code;
        EXPECT_EQ(check_error_response(*first, &code), "");
        EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)));
        EXPECT_EQ(client.unread(), "");
        return;
    }
    const std::optional<Response> second =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(second.has_value()) << error;
    EXPECT_EQ(second->status, 200) << "the smuggled request was answered: " << second->body;
    EXPECT_EQ(second->body, readyz_body);
}

TEST_F(HttpKeepAlive, ChunkedBodyInPiecesWithExtensionAndTrailer) {
    // Chunk sizes in mixed case, a short extension, a trailer field, every piece sent
    // separately: all valid, so the answer is the route's (405 after the whole body on
    // the core's own /healthz), never 400.
    const std::vector<std::string> pieces = {
        "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: application/json\r\n\r\n",
        "1",
        "0;ext=1\r\n01234567",
        "89abcdef\r\n",
        "A\r\n0123456789\r\n",
        "0\r\n",
        "X-Trailer: 1\r\n",
        "\r\n"};
    Client client = connect();
    for (const std::string& piece : pieces) {
        ASSERT_TRUE(client.send(piece, Deadline::after_ms(2000)));
        // Let each piece travel alone; stop early if the server already answered.
        if (client.wait_readable(Deadline::after_ms(20))) {
            break;
        }
    }
    std::string error;
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_NE(response->status, 400) << response->body;
    EXPECT_NE(response->status, 413) << response->body;
    EXPECT_NE(response->status, 408) << response->body;
    EXPECT_EQ(response->status, 405) << response->body;
}

TEST_F(HttpKeepAlive, UnknownPathIsJson404) {
    for (const char* request : {"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n",
                                "POST /v1/sink HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}",
                                "GET /healthz/extra HTTP/1.1\r\nHost: t\r\n\r\n"}) {
        SCOPED_TRACE(escape_bytes(request));
        std::string error;
        const std::optional<Response> response =
            http_exchange(server_.port(), request, Deadline::after_ms(2000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 404);
        std::string code;
        EXPECT_EQ(check_error_response(*response, &code, false), "");
    }
}

TEST_F(HttpKeepAlive, WrongMethodIsJson405) {
    for (const char* request : {"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
                                "DELETE /readyz HTTP/1.1\r\nHost: t\r\n\r\n",
                                "PUT /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"}) {
        SCOPED_TRACE(escape_bytes(request));
        Client client = connect();
        ASSERT_TRUE(
            client.send(std::string(request) + get_request("/healthz"), Deadline::after_ms(2000)));
        std::string error;
        const std::optional<Response> response =
            client.read_response(Deadline::after_ms(2000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 405);
        std::string code;
        EXPECT_EQ(check_error_response(*response, &code), "");
        EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)));
        EXPECT_EQ(client.unread(), "");
    }
}

// Back-pressure: a tiny recv ring (8 x 1 KiB) and a client that pipelines 400 /metrics
// requests but reads nothing for a while. Its parked input holds the ring's buffers, so
// recvs end with -ENOBUFS (counted) and must be re-armed when buffers come back: other
// clients are still served, and the slow client finally gets every answer, in order.
TEST(HttpBackPressure, RecvBufferExhaustionIsCountedAndRecovered) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"},
                              {"RINGWAY_RECV_BUFFERS", "8"},
                              {"RINGWAY_RECV_BUFFER_BYTES", "1024"}},
                             &error))
        << error;
    constexpr int request_count = 400;
    Client slow;
    slow.set_receive_buffer_bytes(4096);
    ASSERT_TRUE(slow.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
    std::string batch;
    for (int index = 0; index < request_count; index++) {
        batch += get_request("/metrics", "X-Index: " + std::to_string(index) + "\r\n");
    }
    ASSERT_TRUE(slow.send(batch, Deadline::after_ms(5000)));
    // Meanwhile other clients come and go.
    for (int index = 0; index < 5; index++) {
        const std::optional<Response> response =
            http_exchange(server.port(), get_request("/healthz", "Connection: close\r\n"),
                          Deadline::after_ms(3000), false, &error);
        ASSERT_TRUE(response.has_value()) << "client " << index << " starved: " << error;
        EXPECT_EQ(response->status, 200);
    }
    int answered_count = 0;
    for (; answered_count < request_count; answered_count++) {
        const std::optional<Response> response =
            slow.read_response(Deadline::after_ms(3000), false, &error);
        if (!response.has_value()) {
            break;
        }
        EXPECT_EQ(response->status, 200);
    }
    EXPECT_EQ(answered_count, request_count) << error;
    const std::optional<std::string> text = scrape_metrics(server.port(), Deadline::after_ms(2000));
    ASSERT_TRUE(text.has_value());
    EXPECT_GT(metric_sum(*text, "ringway_recv_buffer_exhausted_total"), 0)
        << "the ring never ran dry: the test did not exercise back-pressure";
}

}  // namespace
}  // namespace rw::test
