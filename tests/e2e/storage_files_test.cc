// tests/e2e/storage_files_test.cc — the database's files (issue 8, "Files"): the database,
// its WAL and SHM are owner-only after start and a readable existing file is fixed with a
// warning; with RINGWAY_SECRET_KEY_FILE the channel's upstream key is in neither the
// database file nor its WAL, yet the upstream still receives it; plain rows from before a
// key was configured are encrypted at the next start; a wrong key, or none for encrypted
// rows, refuses to start with one clear line; `ringway secrets rotate` re-encrypts under a
// new key (and refuses while a server holds the database); without a key the log says
// once that keys are stored unencrypted.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

mode_t file_mode(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 ? (info.st_mode & 0777) : 01000;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

class StorageFilesTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        db_path_ = dir_.path() + "/ringway.db";
        key_a_ = dir_.path() + "/key-a";
        key_b_ = dir_.path() + "/key-b";
        write_file(key_a_, std::string(64, 'a') + "\n");
        write_file(key_b_, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
    }

    EnvList env_with(const std::string& key_file) {
        EnvList env = {{"RINGWAY_DB", db_path_}, {"RINGWAY_SHARDS", "1"}};
        if (!key_file.empty()) {
            env.emplace_back("RINGWAY_SECRET_KEY_FILE", key_file);
        }
        return env;
    }

    // A request through the gateway until the channel is routable; the mock must have
    // seen the channel's key.
    void expect_upstream_gets_the_key(Gateway& gateway, const Key& key) {
        Response last;
        ASSERT_TRUE(poll_until(Deadline::after_ms(10000),
                               [&] {
                                   last = gateway.chat(key, chat_body("gpt-4o-mini", false));
                                   return last.status == 200;
                               }))
            << last.status << " " << last.body;
        EXPECT_EQ(Json(mock_stats_text(mock_.port())).string("/last_request/headers/authorization"),
                  "Bearer " + std::string(upstream_key));
    }

    void create_channel(Gateway& gateway) {
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        ASSERT_GT(gateway.create_channel(spec), 0);
    }

    // The upstream key's bytes anywhere in the database file or its WAL.
    bool secret_on_disk() {
        return file_bytes(db_path_).find(upstream_key) != std::string::npos ||
               file_bytes(db_path_ + "-wal").find(upstream_key) != std::string::npos;
    }

    // Runs ringway (server or CLI) to its exit; returns the exit code, stderr in *err.
    int run_to_exit(const EnvList& env, const std::vector<std::string>& args, std::string* err,
                    std::string* out = nullptr) {
        Process process;
        SpawnOptions options;
        options.program = ringway_path();
        options.args = args;
        options.env = env;
        options.env.emplace_back("RINGWAY_LISTEN", "127.0.0.1:0");
        options.working_dir = dir_.path();
        std::string error;
        EXPECT_TRUE(process.start(options, &error)) << error;
        const auto status = process.wait_exit(Deadline::after_ms(15000));
        *err = process.output(Stream::err);
        if (out != nullptr) {
            *out = process.output(Stream::out);
        }
        return status.has_value() && status->is_exited ? status->code : -1;
    }

    TempDir dir_;
    MockUpstream mock_;
    std::string db_path_;
    std::string key_a_;
    std::string key_b_;
};

TEST_F(StorageFilesTest, DatabaseWalAndShmAreOwnerOnly) {
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start(env_with("")));
    create_channel(gateway);
    for (const std::string suffix : {"", "-wal", "-shm"}) {
        EXPECT_EQ(file_mode(db_path_ + suffix), 0600u) << db_path_ + suffix;
    }
    // Without a key: said once, and the key is stored as given.
    EXPECT_EQ(gateway.ringway()
                  .process()
                  .lines_containing(Stream::err, "channel_keys_unencrypted")
                  .size(),
              1u);
    gateway.stop();
    // A database made readable by others is made owner-only again, with a warning.
    ASSERT_EQ(::chmod(db_path_.c_str(), 0644), 0);
    Gateway again;
    ASSERT_NO_FATAL_FAILURE(again.start(env_with("")));
    EXPECT_EQ(file_mode(db_path_), 0600u);
    EXPECT_EQ(again.ringway().process().lines_containing(Stream::err, "db_file_mode_fixed").size(),
              1u)
        << again.ringway().stderr_text();
}

// RINGWAY_WAL_CHECKPOINT_BYTES / RINGWAY_WAL_MAX_BYTES reach the checkpointer: with 64 KiB
// (four 16 KiB pages) a few dozen requests' commits pass the bound, which 4 MB would not,
// and the metrics show the checkpoints and the largest WAL.
TEST_F(StorageFilesTest, WalBoundsFromTheEnvironmentDriveCheckpointsAndMetrics) {
    Gateway gateway;
    EnvList env = env_with("");
    env.emplace_back("RINGWAY_WAL_CHECKPOINT_BYTES", "65536");
    env.emplace_back("RINGWAY_WAL_MAX_BYTES", "131072");
    ASSERT_NO_FATAL_FAILURE(gateway.start(env));
    create_channel(gateway);
    const Key key = gateway.create_key(R"({"name":"wal"})");
    for (int i = 0; i < 40; i++) {
        ASSERT_EQ(gateway.chat(key, chat_body("gpt-4o-mini", false)).status, 200) << i;
    }
    MetricsScraper scraper(gateway.port());
    std::string metrics;
    ASSERT_TRUE(poll_until(Deadline::after_ms(10000), [&] {
        metrics = scraper.scrape(Deadline::after_ms(2000)).value_or("");
        return metric_sum(metrics, "ringway_writer_rows_total") >= 40 &&
               metric_sum(metrics, "ringway_writer_wal_checkpoints_total") >= 1;
    })) << metrics;
    EXPECT_GE(metric_sum(metrics, "ringway_writer_wal_bytes_max"), 65536) << metrics;
    EXPECT_EQ(metric_sum(metrics, "ringway_writer_wal_checkpoint_failures_total"), 0) << metrics;
}

TEST_F(StorageFilesTest, ChannelKeysAreEncryptedAtRestAndStillReachTheUpstream) {
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start(env_with(key_a_)));
    create_channel(gateway);
    const Key key = gateway.create_key(R"({"name":"app"})");
    ASSERT_NO_FATAL_FAILURE(expect_upstream_gets_the_key(gateway, key));
    EXPECT_FALSE(secret_on_disk()) << "the channel's key is readable in the database or its WAL";
    EXPECT_TRUE(gateway.ringway().process().lines_containing(Stream::err, "unencrypted").empty());
    // The admin API still masks the real key (it is opened to be masked).
    const Response listed = gateway.admin("GET", "/admin/channels");
    EXPECT_NE(listed.body.find("wxyz"), std::string::npos) << listed.body;
    EXPECT_EQ(listed.body.find("rwenc"), std::string::npos) << listed.body;
}

TEST_F(StorageFilesTest, PlainRowsAreEncryptedWrongKeysRefusedAndKeysRotate) {
    Key key;
    {
        Gateway plain;
        ASSERT_NO_FATAL_FAILURE(plain.start(env_with("")));
        create_channel(plain);
        key = plain.create_key(R"({"name":"app"})");
        plain.stop();
    }
    ASSERT_TRUE(secret_on_disk()) << "no key configured: the row should be plain text";
    {
        Gateway sealed;  // Key A: the plain row is encrypted at start, and still works.
        ASSERT_NO_FATAL_FAILURE(sealed.start(env_with(key_a_)));
        EXPECT_EQ(sealed.ringway()
                      .process()
                      .lines_containing(Stream::err, "channel_keys_encrypted")
                      .size(),
                  1u);
        ASSERT_NO_FATAL_FAILURE(expect_upstream_gets_the_key(sealed, key));
        // Rotation refuses while the server holds the database.
        std::string err;
        EXPECT_EQ(
            run_to_exit(env_with(key_a_), {"secrets", "rotate", "--new-key-file", key_b_}, &err),
            1);
        EXPECT_NE(err.find("in use by another ringway process"), std::string::npos) << err;
        sealed.stop();
    }
    EXPECT_FALSE(secret_on_disk());
    std::string err;
    // A wrong key, and no key at all, refuse to start with one line.
    EXPECT_EQ(run_to_exit(env_with(key_b_), {}, &err), 1);
    EXPECT_NE(err.find("ringway: the channel keys do not decrypt with this "
                       "RINGWAY_SECRET_KEY_FILE (wrong key?) (channel 1)"),
              std::string::npos)
        << err;
    EXPECT_EQ(run_to_exit(env_with(""), {}, &err), 1);
    EXPECT_NE(err.find("channel keys are encrypted but no RINGWAY_SECRET_KEY_FILE"),
              std::string::npos)
        << err;
    // Rotation from A to B, offline.
    std::string out;
    ASSERT_EQ(
        run_to_exit(env_with(key_a_), {"secrets", "rotate", "--new-key-file", key_b_}, &err, &out),
        0)
        << err;
    EXPECT_NE(out.find("re-encrypted 1 channel keys"), std::string::npos) << out;
    EXPECT_FALSE(secret_on_disk());
    EXPECT_EQ(run_to_exit(env_with(key_a_), {}, &err), 1) << "the old key still opens the rows";
    Gateway rotated;
    ASSERT_NO_FATAL_FAILURE(rotated.start(env_with(key_b_)));
    ASSERT_NO_FATAL_FAILURE(expect_upstream_gets_the_key(rotated, key));
}

TEST_F(StorageFilesTest, AMalformedKeyFileRefusesToStart) {
    write_file(key_a_, "not a key\n");
    std::string err;
    EXPECT_EQ(run_to_exit(env_with(key_a_), {}, &err), 1);
    EXPECT_NE(err.find("RINGWAY_SECRET_KEY_FILE=" + key_a_ + ": must hold 64 hex digits"),
              std::string::npos)
        << err;
}

}  // namespace
}  // namespace rw::test::proxy
