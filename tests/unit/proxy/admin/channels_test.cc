// tests/unit/proxy/admin/channels_test.cc — /admin/channels through a real server: the
// upstream key stored but only ever shown masked, PATCH keeping or rotating it, deletion
// reaching the snapshot, and the validation errors (kind, base_url policy, missing fields).
#include <gtest/gtest.h>

#include <string>

#include "storage/snapshot.h"
#include "tests/unit/proxy/admin/admin_test_support.h"

namespace rw {
namespace {

using test::AdminServerTest;
using test::error_code_of;
using test::HttpReply;
using test::Json;

TEST_F(AdminServerTest, ChannelCreateListPatchDelete) {
    const std::string upstream_key = "sk-upstream-secret-abcdefghijkl";
    const HttpReply created = call(
        "POST", "/admin/channels",
        R"({"name":"main","kind":"openai","base_url":"https://api.openai.com","api_key":")" +
            upstream_key +
            R"(","models":["gpt-4o"],"model_map":{"gpt-4o":"gpt-4o-2024-08-06"},"priority":5,"weight":3})");
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(created.body.find(upstream_key), std::string::npos);
    Json json(created.body);
    const int64_t id = json.integer("/id");
    EXPECT_EQ(json.string("/api_key"), "sk-\u2026ijkl");
    EXPECT_EQ(json.string("/kind"), "openai");
    EXPECT_EQ(json.string("/model_map/gpt-4o"), "gpt-4o-2024-08-06");
    EXPECT_EQ(json.integer("/priority"), 5);
    EXPECT_EQ(json.integer("/weight"), 3);
    EXPECT_TRUE(json.boolean("/enabled"));
    EXPECT_TRUE(json.is_null("/ca_file"));
    const ChannelEntry* entry = channel_in_snapshot(id);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->api_key, upstream_key);
    EXPECT_EQ(entry->priority, 5);

    const HttpReply list = call("GET", "/admin/channels");
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.body.find(upstream_key), std::string::npos);
    EXPECT_EQ(Json(list.body).string("/data/0/api_key"), "sk-\u2026ijkl");

    // PATCH without api_key keeps the stored secret.
    const std::string path = "/admin/channels/" + std::to_string(id);
    const HttpReply patched = call("PATCH", path, R"({"priority":9,"enabled":false})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_EQ(Json(patched.body).integer("/priority"), 9);
    entry = channel_in_snapshot(id);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->api_key, upstream_key);
    EXPECT_EQ(entry->priority, 9);
    EXPECT_FALSE(entry->is_enabled);
    EXPECT_EQ(call("PATCH", path, R"({"kind":"gemini"})").status, 400);
    EXPECT_EQ(call("PATCH", path, R"({"base_url":"ftp://x"})").status, 400);
    ASSERT_EQ(call("PATCH", path, R"({"api_key":"sk-rotated-key-000000wxyz"})").status, 200);
    EXPECT_EQ(channel_in_snapshot(id)->api_key, "sk-rotated-key-000000wxyz");

    const HttpReply deleted = call("DELETE", path);
    ASSERT_EQ(deleted.status, 200) << deleted.body;
    EXPECT_TRUE(Json(deleted.body).boolean("/deleted"));
    EXPECT_EQ(channel_in_snapshot(id), nullptr);
    EXPECT_EQ(call("GET", path).status, 404);
}

TEST_F(AdminServerTest, ChannelValidationErrors) {
    const auto create = [&](const std::string& fields) {
        return call("POST", "/admin/channels", "{" + fields + "}");
    };
    const std::string base = R"("name":"c","api_key":"sk-upstream-0000000000",)";
    const HttpReply unknown_kind =
        create(base + R"("kind":"gemini","base_url":"https://x.example")");
    EXPECT_EQ(unknown_kind.status, 400);
    EXPECT_EQ(error_code_of(unknown_kind), "invalid_field");
    const HttpReply bad_scheme = create(base + R"("kind":"openai","base_url":"ftp://x.example")");
    EXPECT_EQ(bad_scheme.status, 400);
    EXPECT_NE(bad_scheme.body.find("http"), std::string::npos);
    EXPECT_EQ(create(base + R"("kind":"openai","base_url":"https://")").status, 400);
    EXPECT_EQ(create(base + R"("kind":"openai","base_url":"https://:443/v1")").status, 400);
    const HttpReply no_name =
        create(R"("kind":"openai","api_key":"sk-abcdefghijklmnop","base_url":"https://x.example")");
    EXPECT_EQ(no_name.status, 400);
    EXPECT_EQ(error_code_of(no_name), "missing_field");
    EXPECT_EQ(create(R"("name":"c","kind":"openai","base_url":"https://x.example")").status, 400);
    const HttpReply loopback =
        create(base + R"("kind":"openai-compatible","base_url":"http://127.0.0.1:11434")");
    EXPECT_EQ(loopback.status, 400);
    EXPECT_NE(loopback.body.find("allow_private_network"), std::string::npos);
    const HttpReply metadata = create(
        base +
        R"("kind":"openai","base_url":"http://169.254.169.254","allow_private_network":true)");
    EXPECT_EQ(metadata.status, 400);
    EXPECT_EQ(call("POST", "/admin/channels", "not json").status, 400);
    EXPECT_TRUE(snapshot().channels().empty());
    const HttpReply local = create(
        base +
        R"("kind":"openai-compatible","base_url":"http://127.0.0.1:11434","allow_private_network":true)");
    EXPECT_EQ(local.status, 201) << local.body;
    EXPECT_TRUE(Json(local.body).boolean("/allow_private_network"));
    EXPECT_EQ(Json(local.body).array_size("/models"), 0u);
}

}  // namespace
}  // namespace rw
