// tests/e2e/proxy_faults_test.cc — upstreams and clients that misbehave (RULES §7, §8):
// a stream reset or cut mid-way ends with the upstream_error event and no terminating
// chunk; a truncated whole answer is a 502; a stalled upstream hits the idle (or first
// byte) deadline; a client leaving mid-stream closes the upstream connection promptly and
// is billed by estimate; an upstream refusing the channel's key is a generic 502 that
// leaks none of the upstream's text. Every case leaves exactly one usage row saying how
// the request ended.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class ProxyFaultsTest : public ::testing::Test {
protected:
    void start(EnvList env = {}, std::vector<std::string> mock_defaults = {}) {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_, mock_defaults));
        env.emplace_back("RINGWAY_SHARDS", "2");
        ASSERT_NO_FATAL_FAILURE(gateway_.start(env));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        spec.extra_json = channel_extra_json_;
        channel_id_ = gateway_.create_channel(spec);
        ASSERT_GT(channel_id_, 0);
        gateway_.wait_channels_routable();
        key_ = gateway_.create_key(R"({"name":"app"})");
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    // Sends a request and reads raw bytes until the gateway closes the connection.
    RawResponse send_and_read_to_close(const std::string& body, Client& client,
                                       int64_t timeout_ms = 10000) {
        EXPECT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
        EXPECT_TRUE(client.send(post_request("/v1/chat/completions", body, key_.secret),
                                Deadline::after_ms(5000)));
        EXPECT_TRUE(client.wait_closed(Deadline::after_ms(timeout_ms)))
            << "the gateway did not end the connection; got: " << escape_bytes(client.unread());
        return parse_raw_response(client.unread());
    }

    // Starts a slow stream (`chunks` events, `delay_ms` apart) and reads until `events`
    // of them arrived.
    void start_stream(Client& client, int chunks, int delay_ms, size_t events) {
        const std::string body =
            chat_body("gpt-4o-mini", true,
                      R"("x_mock":{"chunks":)" + std::to_string(chunks) + R"(,"event-delay-ms":)" +
                          std::to_string(delay_ms) + "}");
        ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
        ASSERT_TRUE(client.send(post_request("/v1/chat/completions", body, key_.secret),
                                Deadline::after_ms(5000)));
        ASSERT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
            (void)client.wait_readable(Deadline::after_ms(50));
            std::string unused;
            (void)client.read_response(Deadline::after_ms(1), false, &unused);  // Fills unread().
            return sse_events(parse_raw_response(client.unread()).payload).size() >= events;
        })) << escape_bytes(client.unread());
    }

    Row only_row() {
        const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(5000));
        EXPECT_EQ(rows.size(), 1u);
        return rows.empty() ? Row{} : rows[0];
    }

    int64_t mock_connections_open() {
        return Json(mock_stats_text(mock_.port())).integer("/connections_open");
    }

    MockUpstream mock_;
    Gateway gateway_;
    int64_t channel_id_ = 0;
    std::string channel_extra_json_;  // Raw members for the channel start() creates.
    Key key_;
};

TEST_F(ProxyFaultsTest, ResetMidStreamEndsWithTheErrorEventAndNoTerminatingChunk) {
    ASSERT_NO_FATAL_FAILURE(start());
    const std::string before = gateway_.metrics();
    const std::string body =
        chat_body("gpt-4o-mini", true, R"("x_mock":{"chunks":6,"fault":"reset","fault-after":3})");
    Client client;
    const RawResponse raw = send_and_read_to_close(body, client);
    EXPECT_EQ(raw.status, 200);
    EXPECT_TRUE(raw.is_chunked);
    EXPECT_TRUE(raw.is_framing_ok);
    EXPECT_FALSE(raw.has_last_chunk) << "a cut stream must not look complete";
    const auto events = sse_events(raw.payload);
    ASSERT_EQ(events.size(), 4u) << escape_bytes(raw.payload, 3000);
    EXPECT_TRUE(events[0].find("\"role\":\"assistant\"") != std::string::npos) << events[0];
    EXPECT_EQ(events.back(), upstream_lost_event);
    EXPECT_TRUE(raw.payload.ends_with("\n\n"));
    for (const std::string& event : events) {
        EXPECT_NE(event, "data: [DONE]");
    }

    const Row row = only_row();
    EXPECT_EQ(row.at("end_reason"), "upstream_reset") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "estimated");
    // Billing rule (proxy/request.cc): prompt = ceil(client body bytes / 4), completion =
    // the data events relayed before the cut.
    EXPECT_EQ(as_int(row, "prompt_tokens"), int64_t((body.size() + 3) / 4));
    EXPECT_EQ(as_int(row, "completion_tokens"), 3);
    EXPECT_EQ(as_int(row, "total_tokens"),
              as_int(row, "prompt_tokens") + as_int(row, "completion_tokens"));
    EXPECT_EQ(as_int(row, "status"), 200);
    const std::string after = gateway_.metrics();
    EXPECT_EQ(metric_sum(after, "ringway_streams_aborted_total") -
                  metric_sum(before, "ringway_streams_aborted_total"),
              1);
}

// One stream cut by a FIN mid-way, one by an invalid chunk-size line (then a FIN).
class ProxyStreamCutTest
    : public ProxyFaultsTest,
      public ::testing::WithParamInterface<std::pair<const char*, const char*>> {};

TEST_P(ProxyStreamCutTest, CutStreamEndsWithTheErrorEvent) {
    ASSERT_NO_FATAL_FAILURE(start());
    Client client;
    const RawResponse raw = send_and_read_to_close(
        chat_body("gpt-4o-mini", true,
                  std::string(R"("x_mock":{"fault-after":2,"fault":")") + GetParam().first + "\"}"),
        client);
    EXPECT_EQ(raw.status, 200);
    EXPECT_FALSE(raw.has_last_chunk);
    EXPECT_TRUE(raw.is_framing_ok);
    const auto events = sse_events(raw.payload);
    ASSERT_EQ(events.size(), 3u) << escape_bytes(raw.payload, 2000);
    EXPECT_EQ(events.back(), upstream_lost_event);
    EXPECT_EQ(raw.payload.find("not-a-chunk"), std::string::npos);
    const Row row = only_row();
    EXPECT_EQ(row.at("end_reason"), GetParam().second) << describe_row(row) << "\n"
                                                       << gateway_.ringway().stderr_text();
    EXPECT_EQ(row.at("usage_source"), "estimated");
    EXPECT_EQ(as_int(row, "completion_tokens"), 2);
}

INSTANTIATE_TEST_SUITE_P(Faults, ProxyStreamCutTest,
                         ::testing::Values(std::pair{"truncate", "upstream_reset"},
                                           std::pair{"bad-chunk", "upstream_protocol_error"}));

TEST_F(ProxyFaultsTest, TruncatedWholeAnswerIsA502) {
    ASSERT_NO_FATAL_FAILURE(start());
    const std::string body = chat_body("gpt-4o-mini", false, R"("x_mock":{"fault":"truncate"})");
    const Response response = gateway_.chat(key_, body);
    EXPECT_EQ(response.status, 502) << response.body;
    std::string code;
    EXPECT_EQ(check_error_response(response, &code), "");
    EXPECT_EQ(code, "upstream_error");
    EXPECT_EQ(response.body.find("chatcmpl"), std::string::npos) << "partial upstream JSON leaked";
    const Row row = only_row();
    EXPECT_EQ(as_int(row, "status"), 502) << describe_row(row);
    EXPECT_EQ(row.at("end_reason"), "upstream_reset");
    // The upstream said 200 but the client received the gateway's 502: billing follows
    // what the client got, so nothing is charged.
    EXPECT_EQ(row.at("usage_source"), "unknown");
    EXPECT_EQ(as_int(row, "total_tokens"), 0);
}

TEST_F(ProxyFaultsTest, StalledStreamHitsTheIdleTimeout) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_UPSTREAM_IDLE_TIMEOUT_MS", "400"}}));
    const std::string before = gateway_.metrics();
    const int64_t baseline_open = mock_connections_open();  // Pooled ones + the stats call.
    const auto started = Clock::now();
    Client client;
    const RawResponse raw = send_and_read_to_close(
        chat_body("gpt-4o-mini", true, R"("x_mock":{"fault":"stall","fault-after":2})"), client);
    const int64_t took_ms = elapsed_ms(started);
    EXPECT_GE(took_ms, 350);
    EXPECT_LT(took_ms, 5000);
    EXPECT_EQ(raw.status, 200);
    EXPECT_FALSE(raw.has_last_chunk);
    const auto events = sse_events(raw.payload);
    ASSERT_EQ(events.size(), 3u) << escape_bytes(raw.payload, 2000);
    EXPECT_EQ(events.back(), upstream_lost_event);
    const Row row = only_row();
    EXPECT_EQ(row.at("end_reason"), "upstream_timeout") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "estimated");
    EXPECT_TRUE(poll_until(Deadline::after_ms(3000),
                           [&] { return mock_connections_open() <= baseline_open; }))
        << "the stalled upstream connection was not closed: " << mock_connections_open()
        << " open, " << baseline_open << " before";
    EXPECT_GE(metric_sum(gateway_.metrics(), "ringway_upstream_timeouts_total") -
                  metric_sum(before, "ringway_upstream_timeouts_total"),
              1);
}

TEST_F(ProxyFaultsTest, SilentUpstreamHitsTheFirstByteTimeout) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS", "400"}}));
    const auto started = Clock::now();
    const Response response =
        gateway_.chat(key_, chat_body("gpt-4o-mini", false, R"("x_mock":{"fault":"stall-early"})"));
    EXPECT_EQ(response.status, 504) << response.body;
    EXPECT_GE(elapsed_ms(started), 350);
    std::string code;
    EXPECT_EQ(check_error_response(response, &code), "");
    EXPECT_EQ(code, "upstream_timeout");
    EXPECT_EQ(mock_requests(mock_.port()), 1);  // Sent, unanswered: not retried.
    const Row row = only_row();
    EXPECT_EQ(row.at("end_reason"), "upstream_timeout") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "unknown");
    EXPECT_EQ(as_int(row, "total_tokens"), 0);
}

TEST_F(ProxyFaultsTest, ClientGoneMidStreamClosesTheUpstreamAndBillsAnEstimate) {
    ASSERT_NO_FATAL_FAILURE(start());
    const std::string body =
        chat_body("gpt-4o-mini", true, R"("x_mock":{"chunks":200,"event-delay-ms":50})");
    const int64_t baseline_open = mock_connections_open();  // Pooled ones + the stats call.
    Client client;
    // Read until three events arrived, then leave.
    ASSERT_NO_FATAL_FAILURE(start_stream(client, 200, 50, 3));
    // The stream's connection is open (a pooled one may have been taken for it).
    EXPECT_GE(mock_connections_open(), 1);
    EXPECT_EQ(gateway_.metric("ringway_requests_in_flight"), 1);
    const int64_t streaming_open = mock_connections_open();
    const auto left_at = Clock::now();
    client.close();
    EXPECT_TRUE(poll_until(Deadline::after_ms(2000),
                           [&] { return mock_connections_open() == streaming_open - 1; }))
        << "the upstream connection outlived the client by more than 2 s: "
        << mock_connections_open() << " open, " << streaming_open << " while streaming, "
        << baseline_open << " before";
    const int64_t close_ms = elapsed_ms(left_at);
    EXPECT_LT(close_ms, 2000);
    EXPECT_TRUE(poll_until(Deadline::after_ms(2000),
                           [&] { return gateway_.metric("ringway_requests_in_flight") == 0; }));
    const Row row = only_row();
    EXPECT_EQ(row.at("end_reason"), "client_gone") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "estimated");
    EXPECT_EQ(as_int(row, "prompt_tokens"), int64_t((body.size() + 3) / 4));
    EXPECT_GE(as_int(row, "completion_tokens"), 3);
    EXPECT_LT(as_int(row, "completion_tokens"), 200);
    Db db(gateway_.db_path());
    EXPECT_TRUE(poll_until(Deadline::after_ms(3000), [&] {
        return db.scalar("SELECT quota_used FROM keys WHERE id = " + std::to_string(key_.id)) ==
               as_int(row, "total_tokens");
    }));
}

// A client that closes its side (FIN, even a half-close) while the upstream has not
// answered yet is gone, as nginx and Go's net/http judge it: the upstream request is
// cancelled at once rather than when its first byte (minutes away for a reasoning model)
// fails to reach the client. Nothing was relayed and no 2xx head came: nothing is charged.
TEST_F(ProxyFaultsTest, ClientClosingBeforeTheFirstByteCancelsTheUpstream) {
    ASSERT_NO_FATAL_FAILURE(start());
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(client.send(
        post_request("/v1/chat/completions",
                     chat_body("gpt-4o-mini", true, R"("x_mock":{"first-byte-delay-ms":30000})"),
                     key_.secret),
        Deadline::after_ms(5000)));
    ASSERT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return mock_requests(mock_.port()) == 1 &&
               gateway_.metric("ringway_requests_in_flight") == 1;
    }));
    const int64_t waiting_open = mock_connections_open();
    const auto left_at = Clock::now();
    client.shutdown_write();
    EXPECT_TRUE(poll_until(Deadline::after_ms(3000),
                           [&] { return mock_connections_open() == waiting_open - 1; }))
        << "the upstream connection outlived the client: " << mock_connections_open() << " open, "
        << waiting_open << " while waiting";
    EXPECT_LT(elapsed_ms(left_at), 3000);
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(3000)));
    EXPECT_EQ(client.unread(), "") << "nothing was there to answer";
    EXPECT_TRUE(poll_until(Deadline::after_ms(2000),
                           [&] { return gateway_.metric("ringway_requests_in_flight") == 0; }));
    const Row row = only_row();
    EXPECT_EQ(row.at("end_reason"), "client_gone") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "unknown");
    EXPECT_EQ(as_int(row, "total_tokens"), 0);
    EXPECT_EQ(mock_requests(mock_.port()), 1);  // Not retried elsewhere.
}

// SIGTERM while a stream is relayed (RULES §8): the drain lets it finish; a client that
// leaves during the drain is client_gone, not shutdown; only a stream the drain deadline
// cuts is recorded as shutdown. Each leaves one row and the process exits 0.
class ProxyDrainTest : public ProxyFaultsTest {
protected:
    void sigterm() { ASSERT_TRUE(gateway_.ringway().process().send_signal(SIGTERM)); }
    void expect_clean_exit(int64_t within_ms) {
        const auto status = gateway_.ringway().process().wait_exit(Deadline::after_ms(within_ms));
        ASSERT_TRUE(status.has_value()) << "ringway did not exit within " << within_ms << " ms";
        EXPECT_TRUE(status->is_exited && status->code == 0) << describe(*status) << "\n"
                                                            << gateway_.ringway().stderr_text();
    }
    // The process exits 0 within `within_ms`, leaving one row that ended as said.
    Row expect_exit_and_row(int64_t within_ms, const char* end_reason, const char* usage_source) {
        expect_clean_exit(within_ms);
        const Row row = only_row();
        EXPECT_EQ(row.at("end_reason"), end_reason) << describe_row(row);
        EXPECT_EQ(row.at("usage_source"), usage_source) << describe_row(row);
        return row;
    }
};

TEST_F(ProxyDrainTest, StreamInFlightAtSigtermFinishes) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_SHUTDOWN_TIMEOUT_MS", "20000"}}));
    Client client;
    ASSERT_NO_FATAL_FAILURE(start_stream(client, 20, 20, 2));
    ASSERT_NO_FATAL_FAILURE(sigterm());
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(10000))) << escape_bytes(client.unread());
    const RawResponse raw = parse_raw_response(client.unread());
    EXPECT_TRUE(raw.has_last_chunk) << escape_bytes(client.unread(), 2000);
    const auto events = sse_events(raw.payload);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "data: [DONE]");
    (void)expect_exit_and_row(10000, "complete", "reported");
}

TEST_F(ProxyDrainTest, ClientLeavingDuringTheDrainIsClientGone) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_SHUTDOWN_TIMEOUT_MS", "20000"}}));
    Client client;
    ASSERT_NO_FATAL_FAILURE(start_stream(client, 400, 50, 2));  // 20 s unless cut.
    ASSERT_NO_FATAL_FAILURE(sigterm());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    client.close();
    // The drain ends with the last request, long before the 20 s deadline.
    (void)expect_exit_and_row(5000, "client_gone", "estimated");
}

TEST_F(ProxyDrainTest, StreamCutByTheDrainDeadlineIsShutdown) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_SHUTDOWN_TIMEOUT_MS", "500"}}));
    Client client;
    ASSERT_NO_FATAL_FAILURE(start_stream(client, 400, 50, 2));
    ASSERT_NO_FATAL_FAILURE(sigterm());
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(5000)));
    const RawResponse raw = parse_raw_response(client.unread());
    EXPECT_FALSE(raw.has_last_chunk) << "a cut stream must not look complete";
    const Row row = expect_exit_and_row(5000, "shutdown", "estimated");
    EXPECT_GE(as_int(row, "completion_tokens"), 2);
    EXPECT_LT(as_int(row, "completion_tokens"), 400);
}

class ProxyUpstreamAuthTest : public ProxyFaultsTest, public ::testing::WithParamInterface<int> {};

TEST_P(ProxyUpstreamAuthTest, UpstreamRejectingTheChannelKeyIsAGeneric502) {
    // Opted out of automatic disabling, so the second request reaches the provider too (an
    // auth refusal otherwise takes the channel down at once: proxy_health_test.cc).
    channel_extra_json_ = R"("auto_disable":false)";
    ASSERT_NO_FATAL_FAILURE(start());
    const std::string before = gateway_.metrics();
    for (const bool is_stream : {false, true}) {
        const std::string body = chat_body(
            "gpt-4o-mini", is_stream, R"("x_mock":{"status":)" + std::to_string(GetParam()) + "}");
        const Response response = gateway_.chat(key_, body);
        EXPECT_EQ(response.status, 502) << response.body;
        std::string code;
        EXPECT_EQ(check_error_response(response, &code), "");
        EXPECT_EQ(code, "upstream_auth_failed");
        // Nothing of the upstream's answer: not its text, not the masked key it echoes.
        EXPECT_EQ(response.body.find("Incorrect API key"), std::string::npos) << response.body;
        EXPECT_EQ(response.body.find("wxyz"), std::string::npos) << response.body;
        EXPECT_EQ(response.body.find("mock"), std::string::npos) << response.body;
    }
    EXPECT_EQ(mock_requests(mock_.port()), 2);  // Not retried (one channel anyway).
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 2, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 2u);
    for (const Row& row : rows) {
        EXPECT_EQ(as_int(row, "status"), 502) << describe_row(row);
        EXPECT_EQ(row.at("end_reason"), "upstream_error");
        EXPECT_EQ(row.at("usage_source"), "unknown");
        EXPECT_EQ(as_int(row, "total_tokens"), 0);
    }
    EXPECT_TRUE(
        gateway_.ringway()
            .process()
            .wait_for_line(Stream::err, "event=upstream_auth_failed", Deadline::after_ms(5000))
            .has_value());
    const std::string log = gateway_.ringway().stderr_text();
    EXPECT_EQ(log.find(upstream_key), std::string::npos) << "the channel key reached the log";
    (void)before;
}

INSTANTIATE_TEST_SUITE_P(Statuses, ProxyUpstreamAuthTest, ::testing::Values(401, 403));

}  // namespace
}  // namespace rw::test::proxy
