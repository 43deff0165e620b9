// tests/e2e/http_limits_test.cc — every request limit at its boundary and one byte over,
// with small limits set through the environment so the requests stay small:
//   request line  RINGWAY_MAX_REQUEST_LINE_BYTES  bytes without the CRLF          → 414
//   header bytes  RINGWAY_MAX_HEADER_BYTES        header lines with their CRLFs,
//                                                 without the final empty line      → 431
//   header count  RINGWAY_MAX_HEADERS                                               → 431
//   body          RINGWAY_MAX_BODY_BYTES          by Content-Length and de-chunked  → 413
//   chunk ext     RINGWAY_MAX_CHUNK_EXT_BYTES     per chunk: names + values + one
//                                                 per ';' or '='                    → 400
//   connections   RINGWAY_MAX_CONNECTIONS         per shard; more are closed
// (The byte definitions are core/http_parse.h ParserLimits.) POST /healthz answers 405
// only after the whole body was read (the core serves the path itself, so no head-time
// refusal cuts the body short), so "405" means "accepted".
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace rw::test {
namespace {

constexpr uint32_t request_line_max = 100;
constexpr uint32_t header_bytes_max = 300;
constexpr uint32_t headers_max = 8;
constexpr uint32_t body_max = 1000;
constexpr uint32_t chunk_ext_max = 16;

class HttpLimits : public ::testing::Test {
protected:
    void SetUp() override {
        std::string error;
        ASSERT_TRUE(
            server_.start({{"RINGWAY_SHARDS", "1"},
                           {"RINGWAY_MAX_REQUEST_LINE_BYTES", std::to_string(request_line_max)},
                           {"RINGWAY_MAX_HEADER_BYTES", std::to_string(header_bytes_max)},
                           {"RINGWAY_MAX_HEADERS", std::to_string(headers_max)},
                           {"RINGWAY_MAX_BODY_BYTES", std::to_string(body_max)},
                           {"RINGWAY_MAX_CHUNK_EXT_BYTES", std::to_string(chunk_ext_max)}},
                          &error))
            << error;
    }

    // Sends the request on a new connection and returns the response (or fails).
    std::optional<Response> exchange(const std::string& request) {
        std::string error;
        std::optional<Response> response =
            http_exchange(server_.port(), request, Deadline::after_ms(3000), false, &error);
        EXPECT_TRUE(response.has_value()) << error << "\nrequest: " << escape_bytes(request);
        return response;
    }

    Ringway server_;
};

// Expects an error response with this status and code, as every refusal must look.
void expect_refused(const std::optional<Response>& response, int status, std::string_view code) {
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->status, status) << response->body;
    std::string actual_code;
    EXPECT_EQ(check_error_response(*response, &actual_code), "");
    EXPECT_EQ(actual_code, code);
}

void expect_ok(const std::optional<Response>& response) {
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->status, 200) << response->body;
}

// A POST whose body was read completely reaches the core's route: 405.
void expect_accepted_body(const std::optional<Response>& response) {
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->status, 405) << response->body;
    std::string code;
    EXPECT_EQ(check_error_response(*response, &code), "");
    EXPECT_EQ(code, "method_not_allowed");
}

// "GET /healthz?aaa… HTTP/1.1" of exactly line_bytes bytes (without CRLF).
std::string request_with_line_bytes(uint32_t line_bytes) {
    const std::string prefix = "GET /healthz?q=";
    const std::string suffix = " HTTP/1.1";
    const std::string line =
        prefix + std::string(line_bytes - prefix.size() - suffix.size(), 'a') + suffix;
    EXPECT_EQ(line.size(), line_bytes);
    return line + "\r\nHost: t\r\n\r\n";
}

// GET /healthz whose header lines (with CRLFs, without the final one) total header_bytes.
std::string request_with_header_bytes(uint32_t header_bytes) {
    const std::string host = "Host: t\r\n";
    const std::string name = "X-Pad: ";
    const size_t pad_bytes = header_bytes - host.size() - name.size() - 2;
    const std::string headers = host + name + std::string(pad_bytes, 'p') + "\r\n";
    EXPECT_EQ(headers.size(), header_bytes);
    return "GET /healthz HTTP/1.1\r\n" + headers + "\r\n";
}

std::string request_with_header_count(uint32_t count) {
    std::string request = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
    for (uint32_t index = 1; index < count; index++) {
        request += "X-" + std::to_string(index) + ": v\r\n";
    }
    return request + "\r\n";
}

std::string post_with_body(uint32_t body_bytes) {
    return "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body_bytes) +
           "\r\n\r\n" + std::string(body_bytes, 'b');
}

std::string hex(size_t value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%zx", value);
    return text;
}

// A chunked POST whose chunks have these sizes, then the last chunk.
std::string chunked_post(const std::vector<size_t>& chunk_sizes, std::string_view extension = {}) {
    std::string request = "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t size : chunk_sizes) {
        request += hex(size) + std::string(extension) + "\r\n" + std::string(size, 'c') + "\r\n";
    }
    return request + "0\r\n\r\n";
}

TEST_F(HttpLimits, RequestLineAtLimitIsServed) {
    expect_ok(exchange(request_with_line_bytes(request_line_max)));
}

TEST_F(HttpLimits, RequestLineOneOverLimitIs414) {
    expect_refused(exchange(request_with_line_bytes(request_line_max + 1)), 414,
                   "request_line_too_long");
}

TEST_F(HttpLimits, EndlessRequestLineIsRefusedBeforeItEnds) {
    // No CRLF ever comes: the limit must trigger on the bytes alone.
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(
        client.send("GET /" + std::string(request_line_max * 3, 'a'), Deadline::after_ms(2000)));
    expect_refused(client.read_response(Deadline::after_ms(2000), false, &error), 414,
                   "request_line_too_long");
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)));
}

TEST_F(HttpLimits, HeaderBytesAtLimitAreServed) {
    expect_ok(exchange(request_with_header_bytes(header_bytes_max)));
}

TEST_F(HttpLimits, HeaderBytesOneOverLimitAre431) {
    expect_refused(exchange(request_with_header_bytes(header_bytes_max + 1)), 431,
                   "header_bytes_too_large");
}

TEST_F(HttpLimits, EndlessHeaderIsRefusedBeforeItEnds) {
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(client.send(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(header_bytes_max * 3, 'p'),
        Deadline::after_ms(2000)));
    expect_refused(client.read_response(Deadline::after_ms(2000), false, &error), 431,
                   "header_bytes_too_large");
}

TEST_F(HttpLimits, HeaderLimitsApplyPerRequestOnAKeptAliveConnection) {
    // Two requests at the header byte limit back to back: the count must restart.
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    for (int index = 0; index < 3; index++) {
        ASSERT_TRUE(
            client.send(request_with_header_bytes(header_bytes_max), Deadline::after_ms(2000)));
        const std::optional<Response> response =
            client.read_response(Deadline::after_ms(2000), false, &error);
        ASSERT_TRUE(response.has_value()) << "request " << index << ": " << error;
        EXPECT_EQ(response->status, 200) << "request " << index << ": " << response->body;
    }
}

TEST_F(HttpLimits, HeaderCountAtLimitIsServed) {
    expect_ok(exchange(request_with_header_count(headers_max)));
}

TEST_F(HttpLimits, HeaderCountOneOverLimitIs431) {
    expect_refused(exchange(request_with_header_count(headers_max + 1)), 431, "too_many_headers");
}

TEST_F(HttpLimits, BodyAtLimitByContentLengthIsAccepted) {
    expect_accepted_body(exchange(post_with_body(body_max)));
}

TEST_F(HttpLimits, BodyAtLimitKeepsTheConnection) {
    // GET /healthz with a body at the limit: answered, and the next request too.
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(client.send(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body_max) +
            "\r\n\r\n" + std::string(body_max, 'b') + get_request("/readyz"),
        Deadline::after_ms(2000)));
    const std::optional<Response> first =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(first.has_value()) << error;
    EXPECT_EQ(first->status, 200) << first->body;
    const std::optional<Response> second =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(second.has_value()) << error;
    EXPECT_EQ(second->status, 200);
    EXPECT_EQ(second->body, R"({"status":"ready"})");
}

TEST_F(HttpLimits, BodyOneOverLimitByContentLengthIs413BeforeTheBody) {
    // Only the head is sent: the refusal must not wait for body bytes.
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(client.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                                std::to_string(body_max + 1) + "\r\n\r\n",
                            Deadline::after_ms(2000)));
    expect_refused(client.read_response(Deadline::after_ms(2000), false, &error), 413,
                   "body_too_large");
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)));
}

TEST_F(HttpLimits, OversizeBodyWithExpectGets413NotContinue) {
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(
        client.send("POST /healthz HTTP/1.1\r\nHost: t\r\n"
                    "Expect: 100-continue\r\nContent-Length: " +
                        std::to_string(body_max + 1) + "\r\n\r\n",
                    Deadline::after_ms(2000)));
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(2000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    EXPECT_NE(response->status, 100) << "100 Continue for a body that will be refused";
    if (response->status == 100) {
        return;
    }
    expect_refused(response, 413, "body_too_large");
}

TEST_F(HttpLimits, ChunkedBodyAtLimitIsAccepted) {
    expect_accepted_body(exchange(chunked_post(std::vector<size_t>(10, body_max / 10))));
}

TEST_F(HttpLimits, ChunkedBodyOneOverLimitIs413) {
    std::vector<size_t> sizes(10, body_max / 10);
    sizes.push_back(1);
    expect_refused(exchange(chunked_post(sizes)), 413, "body_too_large");
}

TEST_F(HttpLimits, OneChunkDeclaredOverLimitIs413BeforeItsData) {
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(server_.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(
        client.send("POST /healthz HTTP/1.1\r\nHost: t\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n" +
                        hex(body_max + 1) + "\r\n",
                    Deadline::after_ms(2000)));
    expect_refused(client.read_response(Deadline::after_ms(2000), false, &error), 413,
                   "body_too_large");
}

TEST_F(HttpLimits, ChunkExtensionAtLimitIsAccepted) {
    // ";" + 15 name bytes = 16; ";a=" + 13 value bytes = 16.
    expect_accepted_body(exchange(chunked_post({5, 7}, ";" + std::string(chunk_ext_max - 1, 'e'))));
    expect_accepted_body(
        exchange(chunked_post({5, 7}, ";a=" + std::string(chunk_ext_max - 3, 'v'))));
}

TEST_F(HttpLimits, ChunkExtensionOneOverLimitIs400) {
    expect_refused(exchange(chunked_post({5}, ";" + std::string(chunk_ext_max, 'e'))), 400,
                   "chunk_ext_too_long");
    expect_refused(exchange(chunked_post({5}, ";a=" + std::string(chunk_ext_max - 2, 'v'))), 400,
                   "chunk_ext_too_long");
}

TEST_F(HttpLimits, ChunkExtensionOnTheLastChunkCounts) {
    std::string request = chunked_post({5});
    request.replace(request.size() - 5, 5, "0;" + std::string(chunk_ext_max, 'e') + "\r\n\r\n");
    expect_refused(exchange(request), 400, "chunk_ext_too_long");
}

// With default limits a body exactly at RINGWAY_MAX_BODY_BYTES (16 MiB) must be read in
// full: the per-request memory has to hold what the limit promises, by Content-Length and
// de-chunked alike.
TEST(HttpDefaultBodyLimit, BodyAtTheDefaultLimitIsAccepted) {
    constexpr size_t default_body_max = 16777216;
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"}}, &error)) << error;
    expect_accepted_body(http_exchange(server.port(), post_with_body(default_body_max),
                                       Deadline::after_ms(20000), false, &error));
    EXPECT_EQ(error, "");
    std::string request = "POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string chunk = hex(65536) + "\r\n" + std::string(65536, 'c') + "\r\n";
    for (size_t index = 0; index < default_body_max / 65536; index++) {
        request += chunk;
    }
    request += "0\r\n\r\n";
    expect_accepted_body(
        http_exchange(server.port(), request, Deadline::after_ms(20000), false, &error));
    EXPECT_EQ(error, "");
    expect_refused(http_exchange(server.port(), post_with_body(default_body_max + 1),
                                 Deadline::after_ms(20000), false, &error),
                   413, "body_too_large");
    EXPECT_EQ(error, "");
}

TEST(HttpConnectionLimit, ExtraConnectionsAreClosedAndSlotsComeBack) {
    constexpr int max_connections = 4;
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start(
        {{"RINGWAY_SHARDS", "1"}, {"RINGWAY_MAX_CONNECTIONS", std::to_string(max_connections)}},
        &error))
        << error;
    std::vector<Client> clients(max_connections);
    for (Client& client : clients) {
        ASSERT_TRUE(client.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
        ASSERT_TRUE(client.send(get_request("/healthz"), Deadline::after_ms(2000)));
        const std::optional<Response> response =
            client.read_response(Deadline::after_ms(2000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 200);
    }
    // Every admitted connection busy with a head under way (an idle keep-alive one would be
    // closed to make room instead: tests/e2e/capacity_test.cc).
    for (Client& client : clients) {
        ASSERT_TRUE(client.send("GET /readyz HTTP/1.1\r\n", Deadline::after_ms(2000)));
    }
    // One more: the kernel completes the handshake, ringway must close it unanswered (or
    // answer with an error and close).
    Client extra;
    ASSERT_TRUE(extra.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
    (void)extra.send(get_request("/healthz"), Deadline::after_ms(2000));
    ASSERT_TRUE(extra.wait_closed(Deadline::after_ms(3000)))
        << "connection over RINGWAY_MAX_CONNECTIONS was kept open";
    if (!extra.unread().empty()) {
        Response response;
        size_t consumed_bytes = 0;
        ASSERT_EQ(parse_response(extra.unread(), false, true, &response, &consumed_bytes, &error),
                  ParseStatus::complete)
            << error;
        EXPECT_GE(response.status, 500) << "an over-limit connection was served";
    }
    // Each admitted connection still works.
    for (Client& client : clients) {
        ASSERT_TRUE(client.send("Host: t\r\n\r\n", Deadline::after_ms(2000)));
        const std::optional<Response> response =
            client.read_response(Deadline::after_ms(2000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 200);
    }
    // Free a slot: a new connection is served once the close reaches the shard.
    clients.pop_back();
    const Deadline deadline = Deadline::after_ms(3000);
    bool is_served = false;
    while (!is_served && !deadline.passed()) {
        Client retry;
        if (retry.connect(server.port(), deadline) &&
            retry.send(get_request("/healthz"), deadline)) {
            const std::optional<Response> response =
                retry.read_response(Deadline::after_ms(1000), false, &error);
            is_served = response.has_value() && response->status == 200;
        }
    }
    EXPECT_TRUE(is_served) << "a freed connection slot was not reused";
}

}  // namespace
}  // namespace rw::test
