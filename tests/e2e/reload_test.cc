// tests/e2e/reload_test.cc — SIGHUP, the zero-downtime reload (proxy/reload.h), on the real
// binary: a bad RINGWAY_ENV_FILE leaves the old process serving; a good one starts the new
// process on the inherited listeners (its settings re-read: RINGWAY_SHARDS 1 -> 2) while
// 1,000 back-to-back requests, each on a new connection, run across the reload and a
// stream stays open through it. None may be refused or fail, the stream must complete,
// the old process must exit 0, and the database must hold one row per request with the
// quota invariant and integrity_check holding. Prints the longest wait (the reload gap).
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr int request_count = 1000;
constexpr int reload_at = 500;

void write_file(const std::string& path, const std::string& text) {
    std::ofstream file(path, std::ios::trunc);
    file << text;
}

// The new process is a grandchild: as a subreaper this test becomes its parent when the
// old process exits, so it can be stopped and reaped. SIGKILLed if the test ends early.
struct NewProcess {
    pid_t pid = -1;
    ~NewProcess() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            (void)::waitpid(pid, nullptr, 0);
        }
    }
    // SIGTERM, then its exit status within the deadline (-1: none).
    int stop(Deadline deadline) {
        ::kill(pid, SIGTERM);
        int status = 0;
        while (!deadline.passed()) {
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return -1;
    }
};

TEST(Reload, SighupServesEveryRequestAcrossTheHandover) {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock));
    TempDir env_dir;
    const std::string env_file = env_dir.path() + "/ringway.env";
    write_file(env_file, "# the unit's EnvironmentFile=\n");
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(
        gateway.start({{"RINGWAY_SHARDS", "1"}, {"RINGWAY_ENV_FILE", env_file}}));
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = mock.port();
    spec.models = {"gpt-4o-mini"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    ASSERT_EQ(gateway.wait_channels_routable().at("main").status, 200);
    const Key key = gateway.create_key(R"({"name":"reload"})");
    ASSERT_FALSE(key.secret.empty());
    Process& old_process = gateway.ringway().process();

    // A bad value: the new process exits before it is ready, the old one keeps serving.
    write_file(env_file, "RINGWAY_SHARDS=many\n");
    ASSERT_TRUE(old_process.send_signal(SIGHUP));
    ASSERT_TRUE(
        old_process.wait_for_line(Stream::err, "event=reload_failed", Deadline::after_ms(60000)))
        << gateway.ringway().stderr_text();
    ASSERT_EQ(gateway.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    int expected_rows = 1;

    write_file(env_file, "# two shards now\nRINGWAY_SHARDS = \"2\"\n");
    std::optional<Response> stream;
    std::thread streamer;
    int failures = 0;
    int64_t slowest_us = 0;
    for (int index = 0; index < request_count; index++) {
        if (index == reload_at - 10) {
            // ~3 s of events: open before the SIGHUP, still open when the old one drains.
            streamer = std::thread([&] {
                stream = http_exchange(
                    gateway.port(),
                    post_request("/v1/chat/completions", chat_body("gpt-4o-mini", true), key.secret,
                                 "x-mock-chunks: 20\r\nx-mock-event-delay-ms: 150\r\n"),
                    Deadline::after_ms(60000));
            });
        }
        if (index == reload_at) {
            ASSERT_TRUE(old_process.send_signal(SIGHUP));
        }
        const auto start = std::chrono::steady_clock::now();
        const std::optional<Response> response =
            http_exchange(gateway.port(),
                          post_request("/v1/chat/completions",
                                       chat_body("gpt-4o-mini", index % 4 == 0), key.secret),
                          Deadline::after_ms(30000));
        const int64_t waited_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now() - start)
                                      .count();
        slowest_us = std::max(slowest_us, waited_us);
        if (!response.has_value() || response->status != 200) {
            failures += 1;
            ADD_FAILURE() << "request " << index << " after " << waited_us / 1000 << " ms: "
                          << (response ? std::to_string(response->status) + " " + response->body
                                       : std::string("no answer (refused or cut)"));
        }
    }
    expected_rows += request_count;
    if (failures > 0) {
        std::printf("%s\n", gateway.ringway().stderr_text().c_str());
    }
    std::printf("reload: %d requests, 0 expected failures, %d failed; longest wait %.1f ms\n",
                request_count, failures, double(slowest_us) / 1000.0);

    const std::optional<std::string> handover =
        old_process.wait_for_line(Stream::err, "event=reload_handover", Deadline::after_ms(60000));
    ASSERT_TRUE(handover.has_value()) << gateway.ringway().stderr_text();
    NewProcess fresh;
    const size_t at = handover->find("new_pid=");
    ASSERT_NE(at, std::string::npos) << *handover;
    fresh.pid = pid_t(std::strtol(handover->c_str() + at + 8, nullptr, 10));
    ASSERT_GT(fresh.pid, 0) << *handover;
    const std::optional<std::string> ready =
        old_process.wait_for_line(Stream::err, "reload=1", Deadline::after_ms(1000));
    ASSERT_TRUE(ready.has_value());
    EXPECT_NE(ready->find("shards=2"), std::string::npos) << "the env file was not re-read";

    streamer.join();
    ASSERT_TRUE(stream.has_value()) << "the stream open across the reload got no answer";
    EXPECT_EQ(stream->status, 200);
    EXPECT_NE(stream->body.find("data: [DONE]"), std::string::npos) << stream->body;
    expected_rows += 1;

    // The old process drained (the stream included) and exited 0.
    EXPECT_TRUE(poll_until(Deadline::after_ms(60000), [&] { return !old_process.is_running(); }));
    const std::optional<ExitStatus> old_exit = old_process.wait_exit(Deadline::after_ms(0));
    ASSERT_TRUE(old_exit.has_value());
    EXPECT_TRUE(old_exit->is_exited && old_exit->code == 0) << describe(*old_exit);

    // The new process serves and writes: every row, once.
    EXPECT_EQ(gateway.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    expected_rows += 1;
    const std::vector<Row> rows = wait_usage_rows(gateway.db_path(), key.id, size_t(expected_rows),
                                                  Deadline::after_ms(20000));
    EXPECT_EQ(rows.size(), size_t(expected_rows));
    EXPECT_EQ(fresh.stop(Deadline::after_ms(30000)), 0) << gateway.ringway().stderr_text();
    EXPECT_EQ(gateway.ringway().stderr_text().find("event=writer_handover_failed"),
              std::string::npos);

    Db db(gateway.db_path());
    ASSERT_TRUE(db.ok()) << db.error();
    EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_logs WHERE key_id = " + std::to_string(key.id)),
              expected_rows);
    EXPECT_EQ(db.scalar("SELECT count(*) FROM (SELECT k.id FROM keys k LEFT JOIN usage_logs u "
                        "ON u.key_id = k.id GROUP BY k.id "
                        "HAVING k.quota_used != COALESCE(SUM(u.total_tokens), 0))"),
              0);
    EXPECT_EQ(db.scalar("SELECT count(*) FROM (SELECT k.id FROM keys k LEFT JOIN daily_usage d "
                        "ON d.key_id = k.id GROUP BY k.id "
                        "HAVING k.quota_used != COALESCE(SUM(d.total_tokens), 0))"),
              0);
    const std::vector<Row> check = db.query("PRAGMA integrity_check");
    ASSERT_EQ(check.size(), 1u);
    EXPECT_EQ(check[0].begin()->second, "ok");
}

}  // namespace
}  // namespace rw::test::proxy
