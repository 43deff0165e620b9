// tests/e2e/storage_lock_test.cc — the real writer against another process holding the
// SQLite write lock longer than busy_timeout (5 s). Requests keep being served (shards
// never wait on SQLite), the writer's failing commits show in /metrics and /readyz, and
// once the lock is gone every usage row is committed exactly once, with quota_used equal
// to the log and integrity_check ok. The lock holder is python3's sqlite3 module in its
// own process; without python3 the test is skipped (77).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

// The absolute path of a program on PATH (the harness spawns by path), or empty.
std::string program_path(const char* name) {
    const std::string command = std::string("command -v ") + name + " 2>/dev/null";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return {};
    }
    char line[512] = {};
    const bool has_line = std::fgets(line, sizeof(line), pipe) != nullptr;
    ::pclose(pipe);
    std::string path = has_line ? line : "";
    while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) {
        path.pop_back();
    }
    return path;
}

TEST(StorageLock, ExternalWriteLockDelaysButLosesNothing) {
    const std::string python = program_path("python3");
    if (python.empty() || std::system("python3 -c 'import sqlite3' >/dev/null 2>&1") != 0) {
        std::fprintf(stderr, "python3 with sqlite3 is not installed: skipped\n");
        std::exit(77);
    }
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SHARDS", "1"}}));
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = mock.port();
    spec.models = {"gpt-4o-mini"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    ASSERT_EQ(gateway.wait_channels_routable().at("main").status, 200);
    const Key key = gateway.create_key(R"({"name":"locked"})");
    ASSERT_FALSE(key.secret.empty());

    // Another process takes the write lock and holds it for 7 s (> busy_timeout 5 s).
    Process holder;
    std::string error;
    ASSERT_TRUE(holder.start({python,
                              {"-c",
                               "import sqlite3,sys,time\n"
                               "c=sqlite3.connect(sys.argv[1],isolation_level=None)\n"
                               "c.execute('BEGIN IMMEDIATE')\n"
                               "print('locked',flush=True)\n"
                               "time.sleep(7)\n"
                               "c.execute('COMMIT')\n",
                               gateway.db_path()},
                              {},
                              {}},
                             &error))
        << error;
    // Generous: python3 itself may take seconds to start on a loaded machine.
    ASSERT_TRUE(holder.wait_for_line(Stream::out, "locked", Deadline::after_ms(30000)));

    constexpr int request_count = 40;
    for (int index = 0; index < request_count; index++) {
        const Response response = gateway.chat(key, chat_body("gpt-4o-mini", index % 2 == 1));
        ASSERT_EQ(response.status, 200) << response.body;  // Served while SQLite is locked.
    }
    // The writer's commit fails after busy_timeout: the stall is visible to operators.
    EXPECT_TRUE(poll_until(Deadline::after_ms(6500), [&] {
        return gateway.metric("ringway_writer_stalled") == 1;
    })) << "the failing commits never showed in ringway_writer_stalled";
    const std::optional<Response> ready = http_exchange(
        gateway.port(), "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", Deadline::after_ms(2000));
    ASSERT_TRUE(ready.has_value());
    EXPECT_EQ(ready->status, 503) << ready->body;
    EXPECT_GE(gateway.metric("ringway_writer_commit_errors_total"), 1);

    const std::optional<ExitStatus> holder_exit = holder.wait_exit(Deadline::after_ms(10000));
    ASSERT_TRUE(holder_exit.has_value());
    EXPECT_EQ(holder_exit->code, 0);
    const std::vector<Row> rows =
        wait_usage_rows(gateway.db_path(), key.id, request_count, Deadline::after_ms(10000));
    EXPECT_EQ(rows.size(), static_cast<size_t>(request_count));
    EXPECT_TRUE(poll_until(Deadline::after_ms(3000),
                           [&] { return gateway.metric("ringway_writer_stalled") == 0; }));
    gateway.stop();
    Db db(gateway.db_path());
    ASSERT_TRUE(db.ok()) << db.error();
    EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_logs WHERE key_id = " + std::to_string(key.id)),
              request_count);
    EXPECT_EQ(db.scalar("SELECT count(*) FROM (SELECT k.id FROM keys k LEFT JOIN usage_logs u "
                        "ON u.key_id = k.id GROUP BY k.id "
                        "HAVING k.quota_used != COALESCE(SUM(u.total_tokens), 0))"),
              0);
    const std::vector<Row> check = db.query("PRAGMA integrity_check");
    ASSERT_EQ(check.size(), 1u);
    EXPECT_EQ(check[0].begin()->second, "ok");
}

}  // namespace
}  // namespace rw::test::proxy
