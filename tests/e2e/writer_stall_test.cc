// tests/e2e/writer_stall_test.cc — the real binary when usage commits cannot succeed:
// (a) after RINGWAY_WRITER_STALL_MS of failing commits new requests get 503
// usage_log_unavailable with Retry-After, and are served again once a commit succeeds;
// (b) SIGTERM while commits fail exits within RINGWAY_WRITER_DRAIN_MS with status 1 and one
// line counting the rows put in the spill file; the next start commits them exactly once.
// Commits fail because another process holds the SQLite write lock (python3's sqlite3,
// skipped without it), or because the database's file system is full (a 4 MiB tmpfs;
// skipped when mount(2) is not permitted).
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

std::string python_path() {
    FILE* pipe = ::popen("command -v python3 2>/dev/null", "r");
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
    if (!path.empty() && std::system("python3 -c 'import sqlite3' >/dev/null 2>&1") != 0) {
        path.clear();
    }
    return path;
}

// Another process holding the write lock until `release_path` exists (30 s at most).
class LockHolder {
public:
    void start(const std::string& db_path, const std::string& release_path) {
        const std::string python = python_path();
        if (python.empty()) {
            std::fprintf(stderr, "python3 with sqlite3 is not installed: skipped\n");
            std::exit(77);
        }
        release_path_ = release_path;
        std::string error;
        ASSERT_TRUE(process_.start({python,
                                    {"-c",
                                     "import os,sqlite3,sys,time\n"
                                     "c=sqlite3.connect(sys.argv[1],isolation_level=None)\n"
                                     "c.execute('BEGIN IMMEDIATE')\n"
                                     "print('locked',flush=True)\n"
                                     "end=time.time()+30\n"
                                     "while not os.path.exists(sys.argv[2]) and time.time()<end:\n"
                                     "    time.sleep(0.01)\n"
                                     "c.execute('ROLLBACK')\n",
                                     db_path, release_path},
                                    {},
                                    {}},
                                   &error))
            << error;
        // Python and its sqlite3 import take seconds on a loaded machine under ASan.
        ASSERT_TRUE(process_.wait_for_line(Stream::out, "locked", Deadline::after_ms(30000)));
    }
    void release() {
        std::ofstream(release_path_) << "go\n";
        const std::optional<ExitStatus> status = process_.wait_exit(Deadline::after_ms(5000));
        ASSERT_TRUE(status.has_value());
        EXPECT_EQ(status->code, 0);
    }

private:
    Process process_;
    std::string release_path_;
};

// An 8 MiB tmpfs filled to the last page by a filler file; unmounted on destruction. Room
// for the spill file's reserve (~3.9 MB: two queues of 1,024 rows and a 4,096-row batch) and
// a new database with 16 KiB pages (288 KB empty; 4 MiB held them only with 4 KiB pages).
// Fills only after the reserve is made: the reserve is what the test relies on.
class FullDisk {
public:
    explicit FullDisk(const std::string& dir) : dir_(dir) {
        std::filesystem::create_directories(dir_);
        if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=8m,mode=0700") != 0) {
            std::fprintf(stderr, "mount tmpfs not permitted (%s): skipped\n", std::strerror(errno));
            std::exit(77);
        }
        is_mounted_ = true;
    }
    ~FullDisk() {
        if (is_mounted_) {
            (void)::umount2(dir_.c_str(), MNT_DETACH);
        }
    }
    void fill() {
        FILE* file = std::fopen((dir_ + "/filler").c_str(), "wb");
        ASSERT_NE(file, nullptr);
        std::setvbuf(file, nullptr, _IONBF, 0);
        const std::string block(4096, 'x');
        while (std::fwrite(block.data(), 1, block.size(), file) == block.size()) {
        }
        std::fclose(file);
    }
    void free_space() { std::filesystem::remove(dir_ + "/filler"); }

private:
    std::string dir_;
    bool is_mounted_ = false;
};

struct Stage {
    MockUpstream mock;
    Gateway gateway;
    Key key;
};

void start_gateway(Stage& setup, EnvList env) {
    ASSERT_NO_FATAL_FAILURE(start_mock(setup.mock));
    env.emplace_back("RINGWAY_SHARDS", "1");
    ASSERT_NO_FATAL_FAILURE(setup.gateway.start(env));
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = setup.mock.port();
    spec.models = {"gpt-4o-mini"};
    ASSERT_GT(setup.gateway.create_channel(spec), 0);
    ASSERT_EQ(setup.gateway.wait_channels_routable().at("main").status, 200);
    setup.key = setup.gateway.create_key(R"({"name":"stall"})");
    ASSERT_FALSE(setup.key.secret.empty());
}

TEST(WriterStall, FailingCommitsRefuseNewRequestsWithRetryAfter) {
    Stage setup;
    ASSERT_NO_FATAL_FAILURE(start_gateway(setup, {{"RINGWAY_WRITER_STALL_MS", "300"}}));
    Gateway& gateway = setup.gateway;
    LockHolder holder;
    ASSERT_NO_FATAL_FAILURE(
        holder.start(gateway.db_path(), gateway.ringway().temp_dir() + "/release"));
    int served = 0;
    ASSERT_EQ(gateway.chat(setup.key, chat_body("gpt-4o-mini", false)).status, 200);
    served += 1;
    // The writer's BEGIN fails after busy_timeout (5 s); 300 ms later admission refuses.
    Response refused;
    ASSERT_TRUE(poll_until(Deadline::after_ms(15000), [&] {
        refused = gateway.chat(setup.key, chat_body("gpt-4o-mini", false));
        served += refused.status == 200 ? 1 : 0;
        return refused.status == 503;
    })) << "never refused while commits failed";
    // The connection stays open (the refusal comes before the body is needed).
    Json error_body(refused.body);
    EXPECT_EQ(error_body.string("/error/code"), "usage_log_unavailable") << refused.body;
    EXPECT_EQ(error_body.string("/error/type"), "server_error") << refused.body;
    EXPECT_EQ(refused.header("retry-after").value_or(""), "5");
    EXPECT_GE(gateway.metric("ringway_overloaded_total"), 1);

    ASSERT_NO_FATAL_FAILURE(holder.release());
    EXPECT_TRUE(poll_until(Deadline::after_ms(10000), [&] {
        const bool is_ok = gateway.chat(setup.key, chat_body("gpt-4o-mini", false)).status == 200;
        served += is_ok ? 1 : 0;
        return is_ok;
    })) << "still refusing after commits recovered";
    gateway.stop();
    Db db(gateway.db_path());
    ASSERT_TRUE(db.ok()) << db.error();
    // Every answered request has its row; the refused ones none.
    EXPECT_EQ(
        db.scalar("SELECT count(*) FROM usage_logs WHERE key_id = " + std::to_string(setup.key.id)),
        served);
}

enum class StallCause { locked, disk_full };

// SIGTERM while commits fail: exit status 1 before the deadline, the rows in the spill
// file; once the cause is gone, the next start commits every row once, and a third start
// does not commit them again.
void spill_and_replay(StallCause fault) {
    TempDir dir;
    const std::string db_dir = dir.path() + "/db";
    std::optional<FullDisk> disk;
    if (fault == StallCause::disk_full) {
        disk.emplace(db_dir);
    } else {
        std::filesystem::create_directories(db_dir);
    }
    const std::string db_path = db_dir + "/ringway.db";
    const EnvList env = {{"RINGWAY_DB", db_path},
                         {"RINGWAY_SHUTDOWN_TIMEOUT_MS", "1000"},
                         {"RINGWAY_WRITER_DRAIN_MS", "1500"},
                         {"RINGWAY_LOG_QUEUE_SLOTS", "1024"},
                         {"RINGWAY_WRITER_STALL_MS", "60000"}};
    Stage setup;
    ASSERT_NO_FATAL_FAILURE(start_gateway(setup, env));
    Gateway& gateway = setup.gateway;
    LockHolder holder;
    if (fault == StallCause::locked) {
        ASSERT_NO_FATAL_FAILURE(holder.start(db_path, dir.path() + "/release"));
    } else {
        ASSERT_NO_FATAL_FAILURE(disk->fill());
    }
    constexpr int request_count = 60;
    for (int index = 0; index < request_count; index++) {
        ASSERT_EQ(gateway.chat(setup.key, chat_body("gpt-4o-mini", index % 2 == 1)).status, 200);
    }
    ASSERT_TRUE(poll_until(Deadline::after_ms(8000),
                           [&] { return gateway.metric("ringway_writer_stalled") == 1; }));
    const Clock::time_point start = Clock::now();
    Process& process = gateway.ringway().process();
    ASSERT_TRUE(process.send_signal(SIGTERM));
    const std::optional<ExitStatus> status = process.wait_exit(Deadline::after_ms(10000));
    ASSERT_TRUE(status.has_value()) << "still running 10 s after SIGTERM";
    // Shutdown drain (idle: at once) + the writer's 1.5 s, with room for a loaded machine.
    EXPECT_LT(elapsed_ms(start), 4000) << process.output(Stream::err);
    EXPECT_TRUE(status->is_exited && status->code == 1) << describe(*status);
    const std::vector<std::string> lines =
        process.lines_containing(Stream::err, "event=usage_not_committed");
    ASSERT_EQ(lines.size(), 1u) << process.output(Stream::err);
    EXPECT_NE(lines[0].find("lost_rows=0"), std::string::npos) << lines[0];
    EXPECT_EQ(lines[0].find("spilled_rows=0 "), std::string::npos) << lines[0];

    if (fault == StallCause::locked) {
        ASSERT_NO_FATAL_FAILURE(holder.release());
    } else {
        disk->free_space();
    }
    for (int start_index = 0; start_index < 2; start_index++) {
        Gateway again;
        ASSERT_NO_FATAL_FAILURE(again.start(env));
        const size_t replays =
            again.ringway().process().lines_containing(Stream::err, "event=spill_replayed").size();
        EXPECT_EQ(replays, start_index == 0 ? 1u : 0u) << again.ringway().stderr_text();
        again.stop();
        Db db(db_path);
        ASSERT_TRUE(db.ok()) << db.error();
        const std::string of_key =
            " FROM usage_logs WHERE key_id = " + std::to_string(setup.key.id);
        EXPECT_EQ(db.scalar("SELECT count(*)" + of_key), request_count);
        EXPECT_EQ(db.scalar("SELECT count(DISTINCT request_id)" + of_key), request_count);
        EXPECT_EQ(db.scalar("SELECT count(*) FROM (SELECT k.id FROM keys k LEFT JOIN usage_logs u "
                            "ON u.key_id = k.id GROUP BY k.id "
                            "HAVING k.quota_used != COALESCE(SUM(u.total_tokens), 0))"),
                  0);
        const std::vector<Row> check = db.query("PRAGMA integrity_check");
        ASSERT_EQ(check.size(), 1u);
        EXPECT_EQ(check[0].begin()->second, "ok");
    }
}

TEST(WriterStall, SigtermWhileLockedSpillsAndTheNextStartReplaysOnce) {
    spill_and_replay(StallCause::locked);
}

TEST(WriterStall, SigtermOnAFullDiskSpillsAndTheNextStartReplaysOnce) {
    spill_and_replay(StallCause::disk_full);
}

}  // namespace
}  // namespace rw::test::proxy
