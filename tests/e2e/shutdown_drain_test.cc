// tests/e2e/shutdown_drain_test.cc — SIGTERM/SIGINT drain: new connections are refused,
// idle kept-alive connections are closed, a request in progress finishes and its response
// carries Connection: close, and the process exits 0 within RINGWAY_SHUTDOWN_TIMEOUT_MS
// (forcing what is left at that deadline).
#include <gtest/gtest.h>

#include <signal.h>

#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace rw::test {
namespace {

// A client that made one request and now sits idle on a kept-alive connection.
Client idle_client(uint16_t port) {
    Client client;
    std::string error;
    EXPECT_TRUE(client.connect(port, Deadline::after_ms(2000), &error)) << error;
    EXPECT_TRUE(client.send(get_request("/healthz"), Deadline::after_ms(2000)));
    const std::optional<Response> response =
        client.read_response(Deadline::after_ms(2000), false, &error);
    EXPECT_TRUE(response.has_value()) << error;
    if (response.has_value()) {
        EXPECT_EQ(response->status, 200);
    }
    return client;
}

// Connects until the kernel refuses (ECONNREFUSED) or the deadline passes. Returns the
// last connect errno (0 if every attempt connected).
int wait_connect_refused(uint16_t port, Deadline deadline) {
    int error_number = 0;
    do {
        Client probe;
        if (!probe.connect(port, Deadline::after_ms(500), nullptr, &error_number)) {
            if (error_number == ECONNREFUSED) {
                return error_number;
            }
        } else {
            error_number = 0;
            // A connect that still lands in a closing listener's queue must at least not
            // be served; give the listener a moment by waiting on this socket.
            (void)probe.wait_closed(Deadline::after_ms(20));
        }
    } while (!deadline.passed());
    return error_number;
}

TEST(ShutdownDrain, SigtermClosesIdleConnectionsAndExitsZero) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(
        server.start({{"RINGWAY_SHARDS", "2"}, {"RINGWAY_SHUTDOWN_TIMEOUT_MS", "5000"}}, &error))
        << error;
    std::vector<Client> idle;
    for (int index = 0; index < 4; index++) {
        idle.push_back(idle_client(server.port()));
    }
    const Clock::time_point start = Clock::now();
    ASSERT_TRUE(server.process().send_signal(SIGTERM));
    for (Client& client : idle) {
        EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)))
            << "an idle keep-alive connection was not closed on SIGTERM";
        EXPECT_EQ(client.unread(), "") << "idle connections are closed without a response";
    }
    const std::optional<ExitStatus> status = server.process().wait_exit(Deadline::after_ms(5000));
    ASSERT_TRUE(status.has_value()) << "still running 5 s after SIGTERM; stderr:\n"
                                    << server.stderr_text();
    EXPECT_TRUE(status->is_exited) << describe(*status);
    EXPECT_EQ(status->code, 0) << server.stderr_text();
    // Nothing was in flight, so the drain must not have waited for the shutdown timeout.
    EXPECT_LT(elapsed_ms(start), 2000);
    int error_number = 0;
    Client after;
    EXPECT_FALSE(after.connect(server.port(), Deadline::after_ms(1000), nullptr, &error_number));
    EXPECT_EQ(error_number, ECONNREFUSED);
}

TEST(ShutdownDrain, SigintDrainsLikeSigterm) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"}}, &error)) << error;
    Client client = idle_client(server.port());
    ASSERT_TRUE(server.process().send_signal(SIGINT));
    EXPECT_TRUE(client.wait_closed(Deadline::after_ms(2000)));
    const std::optional<ExitStatus> status = server.process().wait_exit(Deadline::after_ms(5000));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->is_exited) << describe(*status);
    EXPECT_EQ(status->code, 0);
}

TEST(ShutdownDrain, InFlightRequestFinishesWithConnectionClose) {
    // A request whose body is half sent is in flight: SIGTERM must let it finish, refuse
    // new connections meanwhile, close idle ones, and mark the response Connection: close.
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "2"},
                              {"RINGWAY_SHUTDOWN_TIMEOUT_MS", "10000"},
                              {"RINGWAY_BODY_TIMEOUT_MS", "10000"}},
                             &error))
        << error;
    Client idle = idle_client(server.port());
    Client busy;
    ASSERT_TRUE(busy.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(busy.send("GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nabc",
                          Deadline::after_ms(2000)));
    // Make sure the head reached ringway before the signal: nothing comes back yet, and a
    // scrape over another connection sees it accepted.
    EXPECT_FALSE(busy.wait_readable(Deadline::after_ms(100)));

    ASSERT_TRUE(server.process().send_signal(SIGTERM));
    EXPECT_TRUE(idle.wait_closed(Deadline::after_ms(2000))) << "idle connection kept open";
    EXPECT_EQ(wait_connect_refused(server.port(), Deadline::after_ms(2000)), ECONNREFUSED)
        << "new connections still accepted while draining";
    EXPECT_TRUE(server.process().is_running()) << "exited with a request in flight; stderr:\n"
                                               << server.stderr_text();

    ASSERT_TRUE(busy.send("def", Deadline::after_ms(2000)));
    const std::optional<Response> response =
        busy.read_response(Deadline::after_ms(3000), false, &error);
    ASSERT_TRUE(response.has_value()) << "in-flight request not answered: " << error;
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->body, R"({"status":"ok"})");
    EXPECT_TRUE(response->connection_has("close")) << "a response during drain must close";
    EXPECT_TRUE(busy.wait_closed(Deadline::after_ms(2000)));
    busy.close();  // Ends ringway's lingering close at once.

    const std::optional<ExitStatus> status = server.process().wait_exit(Deadline::after_ms(5000));
    ASSERT_TRUE(status.has_value()) << "did not exit after the last request; stderr:\n"
                                    << server.stderr_text();
    EXPECT_TRUE(status->is_exited) << describe(*status);
    EXPECT_EQ(status->code, 0);
}

TEST(ShutdownDrain, PartialHeadIsInFlightToo) {
    // Half a head is a request in progress; it may finish during the drain.
    Ringway server;
    std::string error;
    ASSERT_TRUE(
        server.start({{"RINGWAY_SHARDS", "1"}, {"RINGWAY_SHUTDOWN_TIMEOUT_MS", "10000"}}, &error))
        << error;
    Client busy;
    ASSERT_TRUE(busy.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(busy.send("GET /readyz HTTP/1.1\r\nHo", Deadline::after_ms(2000)));
    EXPECT_FALSE(busy.wait_readable(Deadline::after_ms(100)));
    ASSERT_TRUE(server.process().send_signal(SIGTERM));
    EXPECT_FALSE(busy.wait_readable(Deadline::after_ms(200)))
        << "the partial request was cut off: " << escape_bytes(busy.unread());
    ASSERT_TRUE(busy.send("st: t\r\n\r\n", Deadline::after_ms(2000)));
    const std::optional<Response> response =
        busy.read_response(Deadline::after_ms(3000), false, &error);
    ASSERT_TRUE(response.has_value()) << error;
    // Draining: /readyz reports not ready, as an error response with Connection: close.
    EXPECT_EQ(response->status, 503) << response->body;
    std::string code;
    EXPECT_EQ(check_error_response(*response, &code), "");
    busy.close();
    const std::optional<ExitStatus> status = server.process().wait_exit(Deadline::after_ms(5000));
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code, 0);
}

TEST(ShutdownDrain, ShutdownTimeoutForcesTheExit) {
    // A request that never completes cannot hold the process past the shutdown timeout.
    constexpr int64_t shutdown_timeout_ms = 800;
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"},
                              {"RINGWAY_SHUTDOWN_TIMEOUT_MS", std::to_string(shutdown_timeout_ms)},
                              {"RINGWAY_BODY_TIMEOUT_MS", "60000"}},
                             &error))
        << error;
    Client stuck;
    ASSERT_TRUE(stuck.connect(server.port(), Deadline::after_ms(2000), &error)) << error;
    ASSERT_TRUE(
        stuck.send("POST /healthz HTTP/1.1\r\nHost: t\r\n"
                   "Content-Length: 100\r\n\r\nabc",
                   Deadline::after_ms(2000)));
    EXPECT_FALSE(stuck.wait_readable(Deadline::after_ms(100)));
    const Clock::time_point start = Clock::now();
    ASSERT_TRUE(server.process().send_signal(SIGTERM));
    const std::optional<ExitStatus> status =
        server.process().wait_exit(Deadline::after_ms(shutdown_timeout_ms + 3000));
    ASSERT_TRUE(status.has_value()) << "still running past the shutdown timeout; stderr:\n"
                                    << server.stderr_text();
    const int64_t exit_ms = elapsed_ms(start);
    EXPECT_GE(exit_ms, shutdown_timeout_ms - 50) << "did not wait for the in-flight request";
    EXPECT_LE(exit_ms, shutdown_timeout_ms + 1000);
    EXPECT_TRUE(status->is_exited) << describe(*status) << "\n" << server.stderr_text();
    EXPECT_EQ(status->code, 0);
    EXPECT_TRUE(stuck.wait_closed(Deadline::after_ms(1000)));
}

TEST(ShutdownDrain, CleanShutdownLogsNoErrors) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "2"}}, &error)) << error;
    const std::optional<Response> ready =
        http_exchange(server.port(), get_request("/readyz"), Deadline::after_ms(2000));
    ASSERT_TRUE(ready.has_value());
    EXPECT_EQ(ready->status, 200);
    EXPECT_EQ(ready->body, R"({"status":"ready"})");
    ASSERT_TRUE(server.process().send_signal(SIGTERM));
    const std::optional<ExitStatus> status = server.process().wait_exit(Deadline::after_ms(5000));
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code, 0);
    EXPECT_EQ(server.process().lines_containing(Stream::err, "level=error").size(), 0u)
        << server.stderr_text();
}

}  // namespace
}  // namespace rw::test
