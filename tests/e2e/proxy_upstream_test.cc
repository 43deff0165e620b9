// tests/e2e/proxy_upstream_test.cc — upstreams that answer in ways a gateway must not trust
// (issue 8, "Upstreams"): interim 1xx heads before the real one, a 101, a 204 or 304 that
// carries a body, a Content-Encoding, transfer codings other than one chunked, a
// close-delimited stream cut before its end; and answers too large for a careless buffer:
// a 60 MiB JSON answer delivered intact, eight concurrent 24 MiB answers on one shard all
// delivered or refused with 503 and Retry-After (never a bare close, never a false 502).
// Each case checks what the client received and the usage row it left.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr uint32_t mib = 1024 * 1024;

class ProxyUpstreamTest : public ::testing::Test {
protected:
    void start(EnvList env = {}) {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_, {}, {"--threads", "4"}));
        if (std::none_of(env.begin(), env.end(),
                         [](const auto& pair) { return pair.first == "RINGWAY_SHARDS"; })) {
            env.emplace_back("RINGWAY_SHARDS", "1");
        }
        ASSERT_NO_FATAL_FAILURE(gateway_.start(env));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        gateway_.wait_channels_routable();
        key_ = gateway_.create_key(R"({"name":"app"})");
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    std::vector<Row> rows(size_t count) {
        return wait_usage_rows(gateway_.db_path(), key_.id, count, Deadline::after_ms(10000));
    }

    Json mock_stats() { return Json(mock_stats_text(mock_.port())); }

    MockUpstream mock_;
    Gateway gateway_;
    Key key_;
};

// The content of the mock's whole chat answer for `chunks` deltas of `bytes` each.
std::string mock_content(uint32_t chunks, uint32_t bytes) {
    std::string text;
    text.reserve(size_t(chunks) * bytes);
    for (uint32_t i = 0; i < chunks; i++) {
        text.append(bytes, char('a' + i % 26));
    }
    return text;
}

// One request on its own connection, read raw to the end of its Content-Length body (or
// to EOF): large answers are read without the harness's re-parsing on every recv.
struct BigAnswer {
    int status = 0;
    std::string head;
    std::string body;
    bool is_complete = false;  // Head and the whole Content-Length body arrived.
};

BigAnswer big_exchange(uint16_t port, const std::string& request, int64_t timeout_ms) {
    BigAnswer answer;
    Client client;
    if (!client.connect(port, Deadline::after_ms(5000)) ||
        !client.send(request, Deadline::after_ms(5000))) {
        return answer;
    }
    const Deadline deadline = Deadline::after_ms(timeout_ms);
    std::string input;
    size_t body_bytes = SIZE_MAX;
    size_t head_end = std::string::npos;
    std::vector<char> buffer(1 << 20);
    for (;;) {
        if (head_end == std::string::npos &&
            (head_end = input.find("\r\n\r\n")) != std::string::npos) {
            answer.head = input.substr(0, head_end);
            answer.status = std::atoi(answer.head.c_str() + 9);
            const size_t at = answer.head.find("Content-Length: ");
            if (at != std::string::npos) {
                body_bytes = std::strtoull(answer.head.c_str() + at + 16, nullptr, 10);
                input.reserve(head_end + 4 + body_bytes);
            }
        }
        if (head_end != std::string::npos && input.size() >= head_end + 4 + body_bytes) {
            answer.body = input.substr(head_end + 4, body_bytes);
            answer.is_complete = true;
            return answer;
        }
        pollfd entry{client.fd(), POLLIN, 0};
        if (::poll(&entry, 1, int(std::max<int64_t>(deadline.remaining_ms(), 0))) <= 0) {
            return answer;
        }
        const ssize_t n = ::recv(client.fd(), buffer.data(), buffer.size(), 0);
        if (n <= 0) {
            if (head_end != std::string::npos) {
                answer.body = input.substr(head_end + 4);
            }
            return answer;
        }
        input.append(buffer.data(), size_t(n));
    }
}

std::string header_of(const std::string& head, const std::string& name) {
    const size_t at = head.find("\r\n" + name + ": ");
    if (at == std::string::npos) {
        return {};
    }
    const size_t start = at + 4 + name.size();
    return head.substr(start, head.find("\r\n", start) - start);
}

// --------------------------------------------------------------------------------------
// Interim heads, 101, 204/304 with a body
// --------------------------------------------------------------------------------------

TEST_F(ProxyUpstreamTest, InterimHeadsAreSkippedAndTheFinalAnswerRelayed) {
    ASSERT_NO_FATAL_FAILURE(start());
    // Whole answer: 100 and 103 before the 200, in one write and byte by byte.
    for (const std::string split : {"", R"(,"split-bytes":7)"}) {
        const Response response = gateway_.chat(
            key_,
            chat_body("gpt-4o-mini", false, R"("x_mock":{"interim":"100,103")" + split + "}"));
        EXPECT_EQ(response.status, 200) << response.body;
        Json json(response.body);
        EXPECT_EQ(json.string("/choices/0/message/content"), "aaaabbbbcccc") << response.body;
    }
    // A stream after an interim head.
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(client.send(
        post_request("/v1/chat/completions",
                     chat_body("gpt-4o-mini", true, R"("x_mock":{"interim":"103"})"), key_.secret),
        Deadline::after_ms(5000)));
    std::string error;
    const auto stream = client.read_response(Deadline::after_ms(10000), false, &error);
    ASSERT_TRUE(stream.has_value()) << error;
    EXPECT_EQ(stream->status, 200);
    EXPECT_NE(stream->body.find("data: [DONE]"), std::string::npos) << stream->body;
    const auto logged = rows(3);
    ASSERT_EQ(logged.size(), 3u);
    for (const Row& row : logged) {
        EXPECT_EQ(as_int(row, "status"), 200) << describe_row(row);
        EXPECT_EQ(row.at("end_reason"), "complete") << describe_row(row);
        EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
        EXPECT_GT(as_int(row, "total_tokens"), 0) << describe_row(row);
    }
}

TEST_F(ProxyUpstreamTest, SwitchingProtocolsIsAProtocolError) {
    ASSERT_NO_FATAL_FAILURE(start());
    const Response response =
        gateway_.chat(key_, chat_body("gpt-4o-mini", false, R"("x_mock":{"interim":"101"})"));
    EXPECT_EQ(response.status, 502) << response.body;
    std::string code;
    EXPECT_EQ(check_error_response(response, &code), "");
    EXPECT_EQ(code, "upstream_protocol_error");
    const auto logged = rows(1);
    ASSERT_EQ(logged.size(), 1u);
    EXPECT_EQ(logged[0].at("end_reason"), "upstream_protocol_error");
    EXPECT_EQ(as_int(logged[0], "total_tokens"), 0);
}

TEST_F(ProxyUpstreamTest, NoContentAndNotModifiedGoOutWithoutTheirBody) {
    ASSERT_NO_FATAL_FAILURE(start());
    int64_t connections_before = mock_stats().integer("/connections_accepted");
    for (const int status : {204, 304}) {
        // Two requests on one client connection: a body after the 204/304 head would be
        // read as the start of the second answer.
        Client client;
        ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
        const std::string first =
            post_request("/v1/chat/completions",
                         chat_body("gpt-4o-mini", false,
                                   R"("x_mock":{"status":)" + std::to_string(status) + "}"),
                         key_.secret);
        const std::string second =
            post_request("/v1/chat/completions", chat_body("gpt-4o-mini", false), key_.secret);
        ASSERT_TRUE(client.send(first, Deadline::after_ms(5000)));
        std::string error;
        const auto no_content = client.read_response(Deadline::after_ms(10000), false, &error);
        ASSERT_TRUE(no_content.has_value()) << error;
        EXPECT_EQ(no_content->status, status);
        EXPECT_EQ(no_content->body, "");
        EXPECT_FALSE(no_content->header("content-length").has_value()) << status;
        ASSERT_TRUE(client.send(second, Deadline::after_ms(5000)));
        const auto next = client.read_response(Deadline::after_ms(10000), false, &error);
        ASSERT_TRUE(next.has_value()) << error;
        EXPECT_EQ(next->status, 200) << next->body;
        EXPECT_EQ(Json(next->body).string("/choices/0/message/content"), "aaaabbbbcccc");
        EXPECT_EQ(client.unread(), "") << escape_bytes(client.unread());
        // The upstream connection that carried the stray body was closed, not pooled:
        // the second request needed a new one.
        const int64_t connections_after = mock_stats().integer("/connections_accepted");
        EXPECT_GE(connections_after, connections_before + 1) << status;
        connections_before = connections_after;
    }
    const auto logged = rows(4);
    ASSERT_EQ(logged.size(), 4u);
    for (const size_t i : {size_t{0}, size_t{2}}) {
        // Nothing to charge for an answer without content.
        EXPECT_EQ(as_int(logged[i], "total_tokens"), 0) << describe_row(logged[i]);
        EXPECT_EQ(logged[i].at("usage_source"), "unknown") << describe_row(logged[i]);
    }
}

// --------------------------------------------------------------------------------------
// Codings
// --------------------------------------------------------------------------------------

TEST_F(ProxyUpstreamTest, ContentEncodingIsRelayedWithTheBodyItDescribes) {
    ASSERT_NO_FATAL_FAILURE(start());
    const Response whole = gateway_.chat(
        key_, chat_body("gpt-4o-mini", false, R"("x_mock":{"content-encoding":"x-test"})"));
    EXPECT_EQ(whole.status, 200);
    EXPECT_EQ(whole.header("content-encoding").value_or("<none>"), "x-test");
    EXPECT_EQ(Json(whole.body).string("/choices/0/message/content"), "aaaabbbbcccc");
    // The upstream was asked for the body as is.
    EXPECT_EQ(mock_stats().string("/last_request/headers/accept-encoding"), "identity");
    const Response stream = gateway_.chat(
        key_, chat_body("gpt-4o-mini", true, R"("x_mock":{"content-encoding":"x-test"})"));
    EXPECT_EQ(stream.status, 200);
    EXPECT_EQ(stream.header("content-encoding").value_or("<none>"), "x-test");
    EXPECT_TRUE(stream.is_chunked);
    // Without one, none is invented.
    const Response plain = gateway_.chat(key_, chat_body("gpt-4o-mini", false));
    EXPECT_FALSE(plain.header("content-encoding").has_value());
}

TEST_F(ProxyUpstreamTest, TransferCodingsOtherThanOneChunkedAreRefused) {
    ASSERT_NO_FATAL_FAILURE(start());
    const std::vector<std::string> codings = {"chunked, chunked", "gzip", "chunked, gzip"};
    for (const std::string& coding : codings) {
        const Response response =
            gateway_.chat(key_, chat_body("gpt-4o-mini", false,
                                          R"("x_mock":{"transfer-encoding":")" + coding + R"("})"));
        EXPECT_EQ(response.status, 502) << coding << ": " << response.body;
        std::string code;
        EXPECT_EQ(check_error_response(response, &code), "") << coding;
        EXPECT_EQ(code, "upstream_protocol_error") << coding;
    }
    const auto logged = rows(codings.size());
    ASSERT_EQ(logged.size(), codings.size());
    for (const Row& row : logged) {
        EXPECT_EQ(row.at("end_reason"), "upstream_protocol_error") << describe_row(row);
        EXPECT_EQ(as_int(row, "status"), 502) << describe_row(row);
        EXPECT_EQ(as_int(row, "total_tokens"), 0) << describe_row(row);
    }
    // A plain chunked whole answer still works.
    const Response chunked =
        gateway_.chat(key_, chat_body("gpt-4o-mini", false, R"("x_mock":{"framing":"chunked"})"));
    EXPECT_EQ(chunked.status, 200) << chunked.body;
}

// --------------------------------------------------------------------------------------
// Close-delimited streams
// --------------------------------------------------------------------------------------

TEST_F(ProxyUpstreamTest, CloseDelimitedStreamCutBeforeItsEndIsACutStream) {
    ASSERT_NO_FATAL_FAILURE(start());
    for (const std::string framing : {R"("framing":"close")", R"("http10":1)"}) {
        Client client;
        ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
        ASSERT_TRUE(client.send(
            post_request(
                "/v1/chat/completions",
                chat_body("gpt-4o-mini", true,
                          R"("x_mock":{)" + framing + R"(,"fault":"truncate","fault-after":3})"),
                key_.secret),
            Deadline::after_ms(5000)));
        ASSERT_TRUE(client.wait_closed(Deadline::after_ms(10000))) << escape_bytes(client.unread());
        const RawResponse raw = parse_raw_response(client.unread());
        EXPECT_EQ(raw.status, 200) << framing;
        EXPECT_FALSE(raw.has_last_chunk) << framing << ": presented as finished";
        const auto events = sse_events(raw.payload);
        ASSERT_FALSE(events.empty()) << framing;
        EXPECT_EQ(events.back(), upstream_lost_event) << framing;
    }
    // Close-delimited and whole: [DONE] arrived, so the close ends it cleanly.
    const Response complete =
        gateway_.chat(key_, chat_body("gpt-4o-mini", true, R"("x_mock":{"framing":"close"})"));
    EXPECT_EQ(complete.status, 200);
    EXPECT_NE(complete.body.find("data: [DONE]"), std::string::npos);
    const auto logged = rows(3);
    ASSERT_EQ(logged.size(), 3u);
    EXPECT_EQ(logged[0].at("end_reason"), "upstream_reset") << describe_row(logged[0]);
    EXPECT_EQ(logged[1].at("end_reason"), "upstream_reset") << describe_row(logged[1]);
    EXPECT_EQ(logged[2].at("end_reason"), "complete") << describe_row(logged[2]);
}

// --------------------------------------------------------------------------------------
// Large whole answers
// --------------------------------------------------------------------------------------

std::string big_request(const Key& key, uint32_t chunks, std::string_view extra = {}) {
    return post_request("/v1/chat/completions",
                        chat_body("gpt-4o-mini", false,
                                  R"("x_mock":{"chunks":)" + std::to_string(chunks) +
                                      R"(,"chunk-text-bytes":1048576)" + std::string(extra) + "}"),
                        key.secret);
}

void expect_intact(const BigAnswer& answer, uint32_t chunks, const std::string& what) {
    ASSERT_TRUE(answer.is_complete)
        << what << ": status " << answer.status << ", " << answer.body.size() << " body bytes";
    ASSERT_EQ(answer.status, 200) << what << ": " << answer.body.substr(0, 300);
    Json json(answer.body);
    ASSERT_TRUE(json.ok()) << what;
    EXPECT_TRUE(json.string("/choices/0/message/content") == mock_content(chunks, mib))
        << what << ": the content differs";
    EXPECT_EQ(json.integer("/usage/completion_tokens"), chunks) << what;
}

TEST_F(ProxyUpstreamTest, SixtyMebibyteAnswerIsDeliveredIntact) {
    ASSERT_NO_FATAL_FAILURE(start());
    // Content-Length (one buffer of that size) and chunked (grown as it arrives).
    for (const std::string framing : {"", R"(,"framing":"chunked")"}) {
        const BigAnswer answer =
            big_exchange(gateway_.port(), big_request(key_, 60, framing), 50000);
        ASSERT_NO_FATAL_FAILURE(expect_intact(answer, 60, "60 MiB" + framing));
        EXPECT_GT(answer.body.size(), size_t(60) * mib);
    }
    const auto logged = rows(2);
    ASSERT_EQ(logged.size(), 2u);
    for (const Row& row : logged) {
        EXPECT_EQ(row.at("end_reason"), "complete") << describe_row(row);
        EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
        EXPECT_EQ(as_int(row, "completion_tokens"), 60) << describe_row(row);
    }
}

// Eight answers of 24 MiB at once on one shard, their bodies paced so all are in flight
// together. Each is delivered intact or refused with 503 + Retry-After.
void run_eight_concurrent(uint16_t port, const Key& key, int& delivered, int& refused) {
    std::vector<BigAnswer> answers(8);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < answers.size(); i++) {
        threads.emplace_back([&, i] {
            answers[i] = big_exchange(
                port, big_request(key, 24, R"(,"split-bytes":4194304,"split-delay-ms":40)"), 50000);
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    delivered = 0;
    refused = 0;
    for (size_t i = 0; i < answers.size(); i++) {
        const BigAnswer& answer = answers[i];
        const std::string what = "answer " + std::to_string(i);
        ASSERT_TRUE(answer.is_complete) << what << ": a bare close (status " << answer.status
                                        << ", " << answer.body.size() << " body bytes)";
        if (answer.status == 503) {
            EXPECT_EQ(header_of(answer.head, "Retry-After"), "1") << what;
            EXPECT_NE(answer.body.find("\"code\":\"overloaded\""), std::string::npos) << what;
            refused += 1;
            continue;
        }
        ASSERT_NO_FATAL_FAILURE(expect_intact(answer, 24, what));
        delivered += 1;
    }
}

TEST_F(ProxyUpstreamTest, EightConcurrentLargeAnswersOnOneShardAreAllDelivered) {
    ASSERT_NO_FATAL_FAILURE(start());
    int delivered = 0;
    int refused = 0;
    ASSERT_NO_FATAL_FAILURE(run_eight_concurrent(gateway_.port(), key_, delivered, refused));
    // The default limits leave room for eight (two 64 MiB answers' worth of blocks and more).
    EXPECT_EQ(delivered, 8);
    EXPECT_EQ(refused, 0);
    const auto logged = rows(8);
    ASSERT_EQ(logged.size(), 8u);
    for (const Row& row : logged) {
        EXPECT_EQ(row.at("end_reason"), "complete") << describe_row(row);
    }
}

TEST_F(ProxyUpstreamTest, LargeAnswersPastTheShardsMemoryAreRefusedWith503) {
    // Small limits: the shard's block pool holds about two 24 MiB answers at once.
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_MAX_BODY_BYTES", "1048576"},
                                   {"RINGWAY_MAX_RESPONSE_BYTES", std::to_string(25 * mib)}}));
    int delivered = 0;
    int refused = 0;
    ASSERT_NO_FATAL_FAILURE(run_eight_concurrent(gateway_.port(), key_, delivered, refused));
    EXPECT_GE(delivered, 1);
    EXPECT_GE(refused, 1) << "the pool never ran out: the test does not test the refusal";
    const auto logged = rows(8);
    ASSERT_EQ(logged.size(), 8u);
    int logged_refused = 0;
    for (const Row& row : logged) {
        if (as_int(row, "status") == 503) {
            logged_refused += 1;
            EXPECT_EQ(row.at("end_reason"), "local_error") << describe_row(row);
            EXPECT_EQ(as_int(row, "total_tokens"), 0) << describe_row(row);  // Got nothing.
        } else {
            EXPECT_EQ(row.at("end_reason"), "complete") << describe_row(row);
        }
    }
    EXPECT_EQ(logged_refused, refused);
}

}  // namespace
}  // namespace rw::test::proxy
