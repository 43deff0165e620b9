// tests/e2e/backup_test.cc — `ringway backup FILE` while the gateway serves: the copy is
// taken without stopping traffic, passes integrity_check and the quota invariant, holds
// the rows committed before it, refuses to overwrite a file; and restoring it (copy over
// RINGWAY_DB, start) gives a gateway that serves the same keys.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

ExitStatus run_backup(const std::string& db_path, const std::string& target, std::string* out) {
    Process backup;
    std::string error;
    EXPECT_TRUE(
        backup.start({ringway_path(), {"backup", target}, {{"RINGWAY_DB", db_path}}, {}}, &error))
        << error;
    const std::optional<ExitStatus> status = backup.wait_exit(Deadline::after_ms(30000));
    *out = backup.output(Stream::out) + backup.output(Stream::err);
    return status.value_or(ExitStatus{});
}

TEST(Backup, OnlineCopyIsConsistentAndRestores) {
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
    const Key key = gateway.create_key(R"({"name":"kept"})");
    for (int index = 0; index < 20; index++) {
        ASSERT_EQ(gateway.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    }
    ASSERT_EQ(wait_usage_rows(gateway.db_path(), key.id, 20, Deadline::after_ms(10000)).size(),
              20u);

    // Traffic keeps going while the copy is taken.
    std::atomic<bool> is_done{false};
    std::atomic<int> failed{0};
    std::thread load([&] {
        while (!is_done.load()) {
            failed += gateway.chat(key, chat_body("gpt-4o-mini", true)).status == 200 ? 0 : 1;
        }
    });
    TempDir backups;
    const std::string copy = backups.path() + "/copy.db";
    std::string output;
    const ExitStatus status = run_backup(gateway.db_path(), copy, &output);
    is_done = true;
    load.join();
    EXPECT_TRUE(status.is_exited && status.code == 0) << describe(status) << "\n" << output;
    EXPECT_NE(output.find("integrity ok"), std::string::npos) << output;
    EXPECT_EQ(failed.load(), 0);
    {
        Db db(copy);
        ASSERT_TRUE(db.ok()) << db.error();
        EXPECT_GE(
            db.scalar("SELECT count(*) FROM usage_logs WHERE key_id = " + std::to_string(key.id)),
            20);
        EXPECT_EQ(db.scalar("SELECT count(*) FROM (SELECT k.id FROM keys k LEFT JOIN daily_usage "
                            "d ON d.key_id = k.id GROUP BY k.id "
                            "HAVING k.quota_used != COALESCE(SUM(d.total_tokens), 0))"),
                  0);
    }
    // Never over an existing file.
    const ExitStatus again = run_backup(gateway.db_path(), copy, &output);
    EXPECT_TRUE(again.is_exited && again.code == 1) << describe(again);
    EXPECT_NE(output.find("refusing to overwrite"), std::string::npos) << output;
    gateway.stop();

    // Restore: the copy becomes the database of a new gateway; the key still works.
    TempDir restored;
    const std::string restored_db = restored.path() + "/ringway.db";
    std::filesystem::copy_file(copy, restored_db);
    Gateway second;
    ASSERT_NO_FATAL_FAILURE(second.start({{"RINGWAY_SHARDS", "1"}, {"RINGWAY_DB", restored_db}}));
    ASSERT_EQ(second.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    second.stop();
}

}  // namespace
}  // namespace rw::test::proxy
