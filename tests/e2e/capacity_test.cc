// tests/e2e/capacity_test.cc — many live streams on one shard (issue "Capacity"): the
// connection limits come from the descriptor limit (the soft limit raised to the hard one,
// the effective limits logged), an idle keep-alive connection makes room for a new one
// (oldest first) while busy ones are refused and counted, a full upstream table closes another
// channel's idle pooled connection instead of refusing, a client that stops reading a
// long stream holds at most RINGWAY_STREAM_BUFFER_BYTES while hundreds of others finish
// and resumes with every event in order, a plain upstream is read by multishot recvs, and a
// few hundred concurrent streams on one shard all complete. The 9,000-stream run is
// bench/load/streams.sh.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

// "Max open files  SOFT  HARD  files" of /proc/PID/limits; {0, 0} when unreadable.
std::pair<uint64_t, uint64_t> nofile_limits_of(pid_t pid) {
    std::ifstream file("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    while (std::getline(file, line)) {
        if (line.rfind("Max open files", 0) == 0) {
            unsigned long long soft = 0;
            unsigned long long hard = 0;
            if (std::sscanf(line.c_str() + 14, "%llu %llu", &soft, &hard) == 2) {
                return {soft, hard};
            }
        }
    }
    return {0, 0};
}

// The value of `name=` in a logfmt line (up to the next space), or "".
std::string logfmt_field(const std::string& line, const std::string& name) {
    const size_t at = line.find(" " + name + "=");
    if (at == std::string::npos) {
        return "";
    }
    const size_t start = at + name.size() + 2;
    return line.substr(start, line.find(' ', start) - start);
}

TEST(CapacityLimits, SoftLimitRaisedAndDerivedLimitsLogged) {
    rlimit original{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
    if (original.rlim_max < 2048 || original.rlim_max == RLIM_INFINITY) {
        GTEST_SKIP() << "the hard descriptor limit is too low (or unlimited) to tell";
    }
    // ringway inherits a low soft limit from this process and must raise it itself.
    rlimit lowered = original;
    lowered.rlim_cur = 1024;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    Ringway server;
    std::string error;
    const bool is_started = server.start({{"RINGWAY_SHARDS", "1"}}, &error);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);
    ASSERT_TRUE(is_started) << error;
    const auto [soft, hard] = nofile_limits_of(server.process().pid());
    EXPECT_EQ(hard, original.rlim_max);
    EXPECT_EQ(soft, hard) << "the soft RLIMIT_NOFILE was not raised to the hard limit";
    const auto lines = server.process().lines_containing(Stream::err, "event=limits");
    ASSERT_EQ(lines.size(), 1u) << server.stderr_text();
    const std::string& line = lines[0];
    EXPECT_EQ(logfmt_field(line, "nofile"), std::to_string(hard)) << line;
    const std::string clients = logfmt_field(line, "max_connections");
    const std::string upstreams = logfmt_field(line, "upstream_connections_max");
    ASSERT_NE(clients.find("(derived)"), std::string::npos) << line;
    ASSERT_NE(upstreams.find("(derived)"), std::string::npos) << line;
    const uint64_t client_count = std::stoull(clients);
    const uint64_t upstream_count = std::stoull(upstreams);
    // Two descriptors per proxied stream, both tables together inside the limit, and far
    // above the old fixed 1,024 when the machine allows it.
    EXPECT_LE(client_count + upstream_count, hard) << line;
    EXPECT_GT(client_count, 1024u) << line;
    EXPECT_EQ(client_count, upstream_count) << line;
}

TEST(CapacityLimits, EnvOverridesTheDerivedLimits) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"},
                              {"RINGWAY_MAX_CONNECTIONS", "7"},
                              {"RINGWAY_UPSTREAM_CONNECTIONS_MAX", "5"}},
                             &error))
        << error;
    const auto lines = server.process().lines_containing(Stream::err, "event=limits");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(logfmt_field(lines[0], "max_connections"), "7") << lines[0];
    EXPECT_EQ(logfmt_field(lines[0], "upstream_connections_max"), "5") << lines[0];
}

// The limits line names the llhttp build that parses (core/llhttp_simd.h): the SSE4.2 one
// where the CPU has it, the baseline one when RINGWAY_LLHTTP_SIMD=0 forces it.
TEST(CapacityLimits, LimitsLineNamesTheLlhttpBuild) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    const std::string chosen = __builtin_cpu_supports("sse4.2") ? "sse4.2" : "baseline";
#else
    const std::string chosen = "baseline";
#endif
    for (const auto& [simd, expected] :
         {std::pair<std::string, std::string>{"1", chosen}, {"0", "baseline"}}) {
        Ringway server;
        std::string error;
        ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"}, {"RINGWAY_LLHTTP_SIMD", simd}}, &error))
            << error;
        const auto lines = server.process().lines_containing(Stream::err, "event=limits");
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_EQ(logfmt_field(lines[0], "llhttp"), expected) << lines[0];
    }
}

// Four keep-alive connections fill a table of four; a fifth is served because the oldest
// idle one is closed for it. With every connection busy (a head under way) a new one is
// refused, counted and logged, and the busy ones are still served.
TEST(CapacityLimits, IdleKeepAliveConnectionsMakeRoomOldestFirst) {
    constexpr int slots = 4;
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start(
        {{"RINGWAY_SHARDS", "1"}, {"RINGWAY_MAX_CONNECTIONS", std::to_string(slots)}}, &error))
        << error;
    std::vector<Client> clients(slots);
    for (Client& client : clients) {
        ASSERT_TRUE(client.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
        ASSERT_TRUE(client.send(get_request("/healthz"), Deadline::after_ms(2000)));
        const auto response = client.read_response(Deadline::after_ms(5000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 200);
    }
    // Client 1 becomes the most recently idle but one: it is used again after client 0.
    ASSERT_TRUE(clients[1].send(get_request("/healthz"), Deadline::after_ms(2000)));
    ASSERT_TRUE(clients[1].read_response(Deadline::after_ms(5000)).has_value());

    Client probe;
    ASSERT_TRUE(probe.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(probe.send(get_request("/healthz"), Deadline::after_ms(2000)));
    const auto probe_response = probe.read_response(Deadline::after_ms(5000), false, &error);
    ASSERT_TRUE(probe_response.has_value())
        << "a health probe at the cap was not served: " << error;
    EXPECT_EQ(probe_response->status, 200);
    EXPECT_TRUE(clients[0].wait_closed(Deadline::after_ms(5000)))
        << "the oldest idle connection was not the one closed";
    for (int index = 1; index < slots; index++) {
        ASSERT_TRUE(clients[index].send(get_request("/readyz"), Deadline::after_ms(2000)));
        const auto response = clients[index].read_response(Deadline::after_ms(5000), false, &error);
        ASSERT_TRUE(response.has_value()) << "client " << index << ": " << error;
        EXPECT_EQ(response->status, 200);
    }

    // Every slot busy: the probe and clients 1..3 each start a head and stop.
    clients[0] = std::move(probe);
    for (Client& client : clients) {
        ASSERT_TRUE(client.send("GET /readyz HTTP/1.1\r\n", Deadline::after_ms(2000)));
    }
    Client refused;
    ASSERT_TRUE(refused.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
    (void)refused.send(get_request("/healthz"), Deadline::after_ms(2000));
    EXPECT_TRUE(refused.wait_closed(Deadline::after_ms(5000)))
        << "a connection over the cap with none idle was kept open";
    EXPECT_TRUE(refused.unread().empty()) << escape_bytes(refused.unread());
    for (Client& client : clients) {
        ASSERT_TRUE(client.send("Host: t\r\n\r\n", Deadline::after_ms(2000)));
        const auto response = client.read_response(Deadline::after_ms(5000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 200);
    }
    clients.pop_back();  // Room for the scrape without evicting the others.
    const auto text = scrape_metrics(server.port(), Deadline::after_ms(5000));
    ASSERT_TRUE(text.has_value());
    EXPECT_GE(metric_sum(*text, "ringway_connections_evicted_total"), 1.0);
    EXPECT_EQ(metric_sum(*text, "ringway_connections_refused_total"), 1.0);
    EXPECT_TRUE(
        server.process()
            .wait_for_line(Stream::err, "event=connections_refused", Deadline::after_ms(5000))
            .has_value())
        << server.stderr_text();
}

// ---------------------------------------------------------------------------------------
// Streams.

// Counts the answers that are a complete 200 stream ending with [DONE].
size_t complete_streams(const std::vector<std::string>& answers) {
    return static_cast<size_t>(std::count_if(answers.begin(), answers.end(), [](const auto& bytes) {
        const RawResponse raw = parse_raw_response(bytes);
        return raw.status == 200 && raw.has_last_chunk && raw.is_framing_ok &&
               raw.payload.find("data: [DONE]") != std::string::npos;
    }));
}

class CapacityStreamsTest : public ::testing::Test {
protected:
    void start(EnvList env) {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_, {}, {"--threads", "2"}));
        env.emplace_back("RINGWAY_SHARDS", "1");
        ASSERT_NO_FATAL_FAILURE(gateway_.start(env));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        gateway_.wait_channels_routable();
        key_ = gateway_.create_key(R"({"name":"streams"})");
    }

    std::string stream_request(std::string_view x_mock) const {
        return post_request(
            "/v1/chat/completions",
            chat_body("gpt-4o-mini", true, "\"x_mock\":{" + std::string(x_mock) + "}"),
            key_.secret);
    }

    // Sends each request on its own connection, all at once, and reads every answer to its
    // terminating chunk (or the peer's close) within the deadline, in one poll loop.
    std::vector<std::string> run_concurrently(const std::vector<std::string>& requests,
                                              Deadline deadline) {
        std::vector<Client> clients(requests.size());
        std::vector<std::string> answers(requests.size());
        std::vector<bool> is_done(requests.size(), false);
        for (size_t index = 0; index < requests.size(); index++) {
            std::string error;
            EXPECT_TRUE(clients[index].connect(gateway_.port(), deadline, &error)) << error;
            EXPECT_TRUE(clients[index].send(requests[index], deadline));
        }
        size_t done_count = 0;
        std::vector<pollfd> polled;
        std::vector<size_t> polled_index;
        while (done_count < requests.size() && !deadline.passed()) {
            polled.clear();
            polled_index.clear();
            for (size_t index = 0; index < requests.size(); index++) {
                if (!is_done[index] && clients[index].is_connected()) {
                    polled.push_back({clients[index].fd(), POLLIN, 0});
                    polled_index.push_back(index);
                }
            }
            if (polled.empty()) {
                break;
            }
            if (::poll(polled.data(), polled.size(), std::min(deadline.remaining_ms(), 200)) <= 0) {
                continue;
            }
            char buffer[16384];
            for (size_t slot = 0; slot < polled.size(); slot++) {
                if (polled[slot].revents == 0) {
                    continue;
                }
                const size_t index = polled_index[slot];
                const ssize_t got = ::recv(polled[slot].fd, buffer, sizeof(buffer), MSG_DONTWAIT);
                if (got > 0) {
                    answers[index].append(buffer, static_cast<size_t>(got));
                }
                const bool is_end =
                    answers[index].size() >= 7 &&
                    answers[index].compare(answers[index].size() - 7, 7, "\r\n0\r\n\r\n") == 0;
                if (got == 0 || (got < 0 && errno != EAGAIN) || is_end) {
                    is_done[index] = true;
                    done_count += 1;
                }
            }
        }
        return answers;
    }

    // Runs one 300-event stream (events 2 ms apart) and returns the number of complete
    // streams; last_recvs_ is the upstream recvs armed for it.
    size_t recvs_for_one_stream() {
        const auto before = scrape_metrics(gateway_.port(), Deadline::after_ms(5000));
        const auto answers = run_concurrently(
            {stream_request(R"("chunks":300,"event-delay-ms":2)")}, Deadline::after_ms(30000));
        const auto after = scrape_metrics(gateway_.port(), Deadline::after_ms(5000));
        if (!before.has_value() || !after.has_value()) {
            return 0;
        }
        last_recvs_ = metric_sum(*after, "ringway_upstream_recvs_armed_total") -
                      metric_sum(*before, "ringway_upstream_recvs_armed_total");
        return complete_streams(answers);
    }

    MockUpstream mock_;
    Gateway gateway_;
    Key key_;
    double last_recvs_ = 0;
    double paused_ = 0;
};

// Reads what the client has not read yet up to the stream's terminating chunk (or the
// peer's close, or the deadline).
std::string read_to_last_chunk(Client& client, Deadline deadline) {
    std::string bytes = client.unread();
    char buffer[65536];
    while (!deadline.passed() &&
           (bytes.size() < 7 || bytes.compare(bytes.size() - 7, 7, "\r\n0\r\n\r\n") != 0)) {
        pollfd polled{client.fd(), POLLIN, 0};
        if (::poll(&polled, 1, 200) <= 0) {
            continue;
        }
        const ssize_t got = ::recv(client.fd(), buffer, sizeof(buffer), 0);
        if (got <= 0) {
            break;
        }
        bytes.append(buffer, static_cast<size_t>(got));
    }
    return bytes;
}

// The non-empty "content" strings of a chat stream's events, in order.
std::vector<std::string> content_deltas(std::string_view payload) {
    std::vector<std::string> out;
    constexpr std::string_view key = "\"content\":\"";
    for (size_t at = payload.find(key); at != std::string_view::npos;
         at = payload.find(key, at + 1)) {
        const size_t start = at + key.size();
        const size_t end = payload.find('"', start);
        if (end == std::string_view::npos) {
            break;
        }
        if (end > start) {
            out.emplace_back(payload.substr(start, end - start));
        }
    }
    return out;
}

TEST_F(CapacityStreamsTest, ManyConcurrentStreamsOnOneShardAllComplete) {
    constexpr size_t streams = 300;
    // Fewer upstream connections than streams would refuse some: the limits must hold them.
    ASSERT_NO_FATAL_FAILURE(start({}));
    const std::vector<std::string> requests(streams,
                                            stream_request(R"("chunks":20,"event-delay-ms":25)"));
    const auto answers = run_concurrently(requests, Deadline::after_ms(60000));
    EXPECT_EQ(complete_streams(answers), streams);
    const std::string text = gateway_.metrics();
    EXPECT_EQ(metric_sum(text, "ringway_upstream_connections_exhausted_total"), 0.0);
    EXPECT_EQ(metric_sum(text, "ringway_connections_refused_total"), 0.0);
    const auto rows =
        wait_usage_rows(gateway_.db_path(), key_.id, streams, Deadline::after_ms(20000));
    EXPECT_EQ(rows.size(), streams);
}

// Every upstream connection busy: a well-framed request gets 503 overloaded with Retry-After
// and keeps its connection, which serves the next request once a slot is free; counted.
TEST_F(CapacityStreamsTest, BusyUpstreamConnectionsRefuseWith503AndKeepTheConnection) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_UPSTREAM_CONNECTIONS_MAX", "1"}}));
    Client holder;
    std::string error;
    ASSERT_TRUE(holder.connect(gateway_.port(), Deadline::after_ms(5000), &error)) << error;
    ASSERT_TRUE(holder.send(stream_request(R"("chunks":10,"event-delay-ms":300)"),
                            Deadline::after_ms(5000)));
    ASSERT_TRUE(holder.wait_readable(Deadline::after_ms(10000)));  // Its head: the slot is held.

    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000), &error)) << error;
    ASSERT_TRUE(client.send(
        post_request("/v1/chat/completions", chat_body("gpt-4o-mini", false), key_.secret),
        Deadline::after_ms(5000)));
    const auto refused = client.read_response(Deadline::after_ms(10000), false, &error);
    ASSERT_TRUE(refused.has_value()) << error;
    std::string code;
    EXPECT_EQ(check_error_response(*refused, &code, false), "");
    EXPECT_EQ(refused->status, 503);
    EXPECT_EQ(code, "overloaded");
    EXPECT_EQ(refused->header("retry-after").value_or(""), "1");
    EXPECT_FALSE(refused->connection_has("close"));

    // The stream ends; its slot returns to the pool and the same connection is served.
    const bool is_served = poll_until(Deadline::after_ms(20000), [&] {
        if (!client.send(
                post_request("/v1/chat/completions", chat_body("gpt-4o-mini", false), key_.secret),
                Deadline::after_ms(5000))) {
            return true;  // Closed: the check below fails.
        }
        const auto response = client.read_response(Deadline::after_ms(10000));
        return !response.has_value() || response->status == 200;
    });
    EXPECT_TRUE(is_served);
    EXPECT_FALSE(client.is_peer_closed()) << "the connection did not survive the refusal";
    EXPECT_GE(gateway_.metric("ringway_upstream_connections_exhausted_total"), 1.0);
    EXPECT_GE(gateway_.metric("ringway_overloaded_total"), 1.0);
}

// A full upstream table with a connection idle in another channel's keep-alive list: the
// idle one is closed (oldest first) to make room, and the request is served, not refused.
TEST_F(CapacityStreamsTest, FullUpstreamTableClosesAnotherChannelsIdleConnection) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_UPSTREAM_CONNECTIONS_MAX", "1"}}));
    ChannelSpec other;
    other.name = "other";
    other.mock_port = mock_.port();
    other.models = {"gpt-4o"};
    ASSERT_GT(gateway_.create_channel(other), 0);
    gateway_.wait_channels_routable();
    const double evicted_before = gateway_.metric("ringway_upstream_connections_evicted_total");

    // Each answer leaves its connection pooled in its channel's list, holding the one slot:
    // the next request, on the other channel, needs that slot.
    Client client;
    std::string error;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000), &error)) << error;
    const char* models[] = {"gpt-4o-mini", "gpt-4o", "gpt-4o-mini", "gpt-4o"};
    for (const char* model : models) {
        ASSERT_TRUE(
            client.send(post_request("/v1/chat/completions", chat_body(model, false), key_.secret),
                        Deadline::after_ms(5000)));
        const auto response = client.read_response(Deadline::after_ms(10000), false, &error);
        ASSERT_TRUE(response.has_value()) << error;
        EXPECT_EQ(response->status, 200) << model << ": " << response->body;
    }
    const std::string text = gateway_.metrics();
    EXPECT_GE(metric_sum(text, "ringway_upstream_connections_evicted_total") - evicted_before, 3.0);
    EXPECT_EQ(metric_sum(text, "ringway_upstream_connections_exhausted_total"), 0.0);
    EXPECT_EQ(metric_sum(text, "ringway_overloaded_total"), 0.0);
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 4, Deadline::after_ms(20000));
    EXPECT_EQ(rows.size(), 4u);
}

// One client stops reading a long stream: its stream holds at most the bound of recv
// buffers, its upstream read is paused, and a few hundred other streams on the same shard
// (with a recv ring small enough that an unbounded slow client would starve them) finish.
TEST_F(CapacityStreamsTest, SlowClientHoldsBoundedBuffersWhileOthersFinish) {
    constexpr uint64_t bound = 32768;
    constexpr size_t others = 200;
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_STREAM_BUFFER_BYTES", std::to_string(bound)},
                                   {"RINGWAY_RECV_BUFFER_BYTES", "16384"},
                                   {"RINGWAY_RECV_BUFFERS", "64"}}));
    // About 16 MB of events: far more than the sockets between the two can hold.
    Client slow;
    slow.set_receive_buffer_bytes(4096);
    std::string error;
    ASSERT_TRUE(slow.connect(gateway_.port(), Deadline::after_ms(5000), &error)) << error;
    ASSERT_TRUE(slow.send(stream_request(R"("chunks":4000,"chunk-text-bytes":4000)"),
                          Deadline::after_ms(5000)));
    ASSERT_TRUE(slow.wait_readable(Deadline::after_ms(30000)));  // The head: the stream runs.
    MetricsScraper scraper(gateway_.port());
    const bool is_paused = poll_until(Deadline::after_ms(20000), [&] {
        const auto text = scraper.scrape(Deadline::after_ms(5000));
        return text.has_value() && metric_sum(*text, "ringway_stream_reads_paused_total") > 0 &&
               metric_sum(*text, "ringway_stream_buffer_bytes") > 0;
    });
    ASSERT_TRUE(is_paused) << "the slow client's stream never filled its bound";

    const std::vector<std::string> requests(others, stream_request(R"("chunks":10)"));
    const auto answers = run_concurrently(requests, Deadline::after_ms(60000));
    EXPECT_EQ(complete_streams(answers), others) << "streams starved by one slow client";

    // Only the slow stream holds buffers now: at most the bound, sampled for a while.
    uint64_t held_max = 0;
    for (int sample = 0; sample < 10; sample++) {
        const auto text = scraper.scrape(Deadline::after_ms(5000));
        ASSERT_TRUE(text.has_value());
        held_max = std::max(
            held_max, static_cast<uint64_t>(metric_sum(*text, "ringway_stream_buffer_bytes")));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_GT(held_max, 0u) << "the slow stream was not holding anything: no stall to test";
    EXPECT_LE(held_max, bound);

    // The slow client reads on: its stream completes whole.
    const std::string bytes = read_to_last_chunk(slow, Deadline::after_ms(60000));
    EXPECT_EQ(complete_streams({bytes}), 1u) << "the paused stream did not resume to its end";
}

// The upstream read of a plain connection is one multishot recv: a 300-event stream is read
// by a handful of recvs (each ends after one buffer's worth of bytes), where one recv per
// event was armed before; RINGWAY_UPSTREAM_MULTISHOT=0 gives that back.
TEST_F(CapacityStreamsTest, PlainUpstreamStreamIsReadByAFewMultishotRecvs) {
    ASSERT_NO_FATAL_FAILURE(start({}));
    EXPECT_EQ(recvs_for_one_stream(), 1u) << "no stream ran";
    EXPECT_GE(last_recvs_, 1.0) << "no upstream recv counted";
    EXPECT_LE(last_recvs_, 12.0) << "one recv per piece: the multishot recv is not in use";
}

TEST_F(CapacityStreamsTest, SingleShotKnobArmsARecvPerPiece) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_UPSTREAM_MULTISHOT", "0"}}));
    EXPECT_EQ(recvs_for_one_stream(), 1u) << "no stream ran";
    EXPECT_GE(last_recvs_, 100.0) << "pieces 2 ms apart were read by fewer recvs than pieces";
}

// A stream paused for a slow client, whose multishot recv read on until its cancel landed:
// what it read meanwhile is held and relayed in order once the client catches up, every
// event, none twice; and the connection is pooled again for the next request.
TEST_F(CapacityStreamsTest, PausedStreamResumesWithEveryEventInOrder) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_STREAM_BUFFER_BYTES", "16384"},
                                   {"RINGWAY_RECV_BUFFER_BYTES", "16384"},
                                   {"RINGWAY_RECV_BUFFERS", "64"}}));
    constexpr int events = 3000;
    constexpr size_t text_bytes = 300;
    for (int round = 0; round < 2; round++) {
        Client slow;
        slow.set_receive_buffer_bytes(4096);
        std::string error;
        ASSERT_TRUE(slow.connect(gateway_.port(), Deadline::after_ms(5000), &error)) << error;
        ASSERT_TRUE(slow.send(stream_request(R"("chunks":3000,"chunk-text-bytes":300)"),
                              Deadline::after_ms(5000)));
        ASSERT_TRUE(slow.wait_readable(Deadline::after_ms(30000)));
        MetricsScraper scraper(gateway_.port());
        const double paused_before = round == 0 ? 0.0 : paused_;
        ASSERT_TRUE(poll_until(Deadline::after_ms(20000), [&] {
            const auto text = scraper.scrape(Deadline::after_ms(5000));
            paused_ = text.has_value() ? metric_sum(*text, "ringway_stream_reads_paused_total") : 0;
            return paused_ > paused_before;
        })) << "the stream never paused";
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // Reads under way land.
        const std::string bytes = read_to_last_chunk(slow, Deadline::after_ms(60000));
        ASSERT_EQ(complete_streams({bytes}), 1u);
        const std::vector<std::string> deltas = content_deltas(parse_raw_response(bytes).payload);
        ASSERT_EQ(deltas.size(), static_cast<size_t>(events));
        for (int index = 0; index < events; index++) {
            ASSERT_EQ(deltas[index], std::string(text_bytes, static_cast<char>('a' + index % 26)))
                << "event " << index << " out of order or cut";
        }
    }
    const auto text = scrape_metrics(gateway_.port(), Deadline::after_ms(5000));
    ASSERT_TRUE(text.has_value());
    EXPECT_EQ(metric_sum(*text, "ringway_upstream_connects_total"), 1.0)
        << "the paused stream's connection was not pooled and reused";
}

}  // namespace
}  // namespace rw::test::proxy
