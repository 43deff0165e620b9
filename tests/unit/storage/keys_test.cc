// tests/unit/storage/keys_test.cc — key secrets, the Catalog's writes through the writer
// thread, reload after each change, and quota counters surviving reloads.
#include "storage/keys.h"

#include <gtest/gtest.h>

#include <thread>

#include "storage/queries.h"
#include "storage_test_support.h"

namespace rw {
namespace {

TEST(KeySecret, FormatAndHash) {
    std::string secret;
    std::string error;
    ASSERT_TRUE(key_secret_generate(secret, error)) << error;
    EXPECT_EQ(secret.size(), key_secret_bytes);
    EXPECT_TRUE(secret.starts_with("sk-rw-"));
    for (const char c : secret.substr(6)) {
        EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << c;
    }
    std::string other;
    ASSERT_TRUE(key_secret_generate(other, error));
    EXPECT_NE(secret, other);
    EXPECT_EQ(key_display_prefix(secret), secret.substr(0, 10));
    // SHA-256("abc") from FIPS 180-2.
    const KeyHash abc = key_hash("abc");
    EXPECT_EQ(abc[0], 0xba);
    EXPECT_EQ(abc[1], 0x78);
    EXPECT_EQ(abc[31], 0xad);
    EXPECT_EQ(key_display_prefix("0123456789abcdefghij"), "01234...");
}

class CatalogTest : public ::testing::Test {
protected:
    void SetUp() override {
        config_ = test::test_config(dir_);
        std::string error;
        ASSERT_TRUE(writer_.open(config_, 2, error)) << error;
        writer_thread_ = std::thread([this] { writer_.run(); });
        ASSERT_TRUE(snapshots_.open(config_, 2, error)) << error;
        ASSERT_TRUE(snapshots_.reload(error)) << error;
    }
    void TearDown() override {
        writer_.request_stop();
        writer_thread_.join();
    }

    test::TempDir dir_;
    StorageConfig config_;
    Writer writer_;
    std::thread writer_thread_;
    SnapshotStore snapshots_;
    Catalog catalog_{writer_, snapshots_};
};

TEST_F(CatalogTest, CreatedKeyIsFoundByHashOnly) {
    KeySpec spec;
    spec.name = "team-a";
    spec.has_quota_limit = true;
    spec.quota_limit_tokens = 1000;
    spec.allows_all_models = false;
    spec.models_json = R"(["gpt-4o"])";
    spec.rpm = 60;
    const Result<CreatedKey> created = catalog_.create_key(spec);
    ASSERT_TRUE(created.ok()) << created.error;
    const Snapshot* snapshot = snapshots_.publisher().acquire(0);
    const KeyEntry* key = snapshot->find_key(key_hash(created.value.secret));
    ASSERT_NE(key, nullptr);
    EXPECT_EQ(key->id, created.value.id);
    EXPECT_TRUE(key->is_active);
    EXPECT_TRUE(key->has_quota_limit);
    EXPECT_EQ(key->quota_limit_tokens, 1000);
    EXPECT_EQ(key->rpm, 60u);
    EXPECT_TRUE(key->allows_model("gpt-4o"));
    EXPECT_FALSE(key->allows_model("gpt-4o-mini"));
    EXPECT_EQ(key->key_prefix, created.value.secret.substr(0, 10));

    // The secret itself is stored nowhere in the database file's key rows.
    Db db;
    std::string error;
    ASSERT_TRUE(db.open(config_, DbMode::read_only, error)) << error;
    const std::string sql =
        "SELECT count(*) FROM keys WHERE instr(name || key_prefix || "
        "coalesce(models, ''), '" +
        created.value.secret + "') > 0";
    EXPECT_EQ(db.query_int64(sql.c_str()).value, 0);
}

TEST_F(CatalogTest, RevokeImportUpdateReload) {
    KeySpec spec;
    spec.name = "imported";
    const Result<int64_t> imported = catalog_.import_key(spec, "sk-legacy-0123456789abcdef");
    ASSERT_TRUE(imported.ok()) << imported.error;
    const Result<int64_t> again = catalog_.import_key(spec, "sk-legacy-0123456789abcdef");
    EXPECT_FALSE(again.ok());
    EXPECT_EQ(again.error, "key already exists");
    EXPECT_FALSE(catalog_.import_key(spec, "short").ok());

    const KeyHash hash = key_hash("sk-legacy-0123456789abcdef");
    const Snapshot* before = snapshots_.publisher().acquire(0);
    ASSERT_TRUE(before->find_key(hash)->is_active);
    std::string error;
    ASSERT_TRUE(catalog_.revoke_key(imported.value, error)) << error;
    const Snapshot* after = snapshots_.publisher().acquire(0);
    EXPECT_GT(after->epoch(), before->epoch());
    EXPECT_FALSE(after->find_key(hash)->is_active);
    EXPECT_FALSE(catalog_.revoke_key(9999, error));
    EXPECT_EQ(error, "no key with id 9999");

    spec.name = "renamed";
    spec.concurrency_max = 4;
    ASSERT_TRUE(catalog_.update_key(imported.value, spec, error)) << error;
    EXPECT_EQ(snapshots_.publisher().acquire(0)->find_key(hash)->concurrency_max, 4u);
    spec.allows_all_models = false;
    spec.models_json = "[oops";
    EXPECT_FALSE(catalog_.update_key(imported.value, spec, error));
    EXPECT_NE(error.find("models"), std::string::npos);
}

TEST_F(CatalogTest, QuotaCountersSurviveReload) {
    KeySpec spec;
    spec.name = "q";
    const Result<CreatedKey> created = catalog_.create_key(spec);
    ASSERT_TRUE(created.ok()) << created.error;
    const KeyEntry* key =
        snapshots_.publisher().acquire(0)->find_key(key_hash(created.value.secret));
    ASSERT_NE(key, nullptr);
    const uint32_t slot = key->quota_slot;
    snapshots_.quotas().add_tokens(slot, 42);  // A shard counted tokens.
    std::string error;
    spec.name = "q2";
    ASSERT_TRUE(catalog_.update_key(created.value.id, spec, error)) << error;
    const KeyEntry* reloaded =
        snapshots_.publisher().acquire(0)->find_key(key_hash(created.value.secret));
    EXPECT_EQ(reloaded->quota_slot, slot);
    EXPECT_EQ(snapshots_.quotas().used_tokens(slot), 42);
}

TEST_F(CatalogTest, ChannelCrudAndMaskedListing) {
    ChannelSpec spec;
    spec.name = "openai-main";
    spec.kind = ChannelKind::openai_compatible;
    spec.base_url = "https://api.example.com/v1";
    spec.api_key = "sk-proj-1234567890abcdWXYZ";
    spec.models_json = R"(["gpt-4o","gpt-4o-mini"])";
    spec.model_map_json = R"({"gpt-4o":"gpt-4o-2024-08-06"})";
    spec.priority = 5;
    const Result<int64_t> created = catalog_.create_channel(spec);
    ASSERT_TRUE(created.ok()) << created.error;
    const Snapshot* snapshot = snapshots_.publisher().acquire(0);
    ASSERT_EQ(snapshot->channels().size(), 1u);
    const ChannelEntry& channel = snapshot->channels()[0];
    EXPECT_EQ(channel.kind, ChannelKind::openai_compatible);
    EXPECT_EQ(channel.api_key, spec.api_key);  // The data plane needs the real key.
    ASSERT_EQ(channel.model_map.size(), 1u);
    EXPECT_EQ(channel.model_map[0].second, "gpt-4o-2024-08-06");
    EXPECT_EQ(channel.models.size(), 2u);

    Queries queries;
    std::string error;
    ASSERT_TRUE(queries.open(config_, error)) << error;
    const Result<ChannelInfo> info = queries.get_channel(created.value);
    ASSERT_TRUE(info.ok()) << info.error;
    EXPECT_EQ(info.value.api_key_masked, "sk-\u2026WXYZ");
    EXPECT_EQ(info.value.kind, "openai-compatible");

    spec.base_url = "ftp://nope";
    EXPECT_FALSE(catalog_.update_channel(created.value, spec, error));
    EXPECT_NE(error.find("base_url"), std::string::npos);
    spec.base_url = "http://127.0.0.1:8080";
    spec.is_enabled = false;
    ASSERT_TRUE(catalog_.update_channel(created.value, spec, error)) << error;
    EXPECT_FALSE(snapshots_.publisher().acquire(0)->channels()[0].is_enabled);
    ASSERT_TRUE(catalog_.delete_channel(created.value, error)) << error;
    EXPECT_TRUE(snapshots_.publisher().acquire(0)->channels().empty());
    EXPECT_FALSE(catalog_.delete_channel(created.value, error));
}

}  // namespace
}  // namespace rw
