// tests/unit/proxy/admin/keys_test.cc — /admin/keys through a real server: the secret
// shown once and never listed (nor its hash), the snapshot knowing a key at once, every
// validation error, import, PATCH merging into the stored key, revocation reaching the
// snapshot while history stays.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "storage/keys.h"
#include "storage/snapshot.h"
#include "tests/unit/proxy/admin/admin_test_support.h"

namespace rw {
namespace {

using test::AdminServerTest;
using test::error_code_of;
using test::HttpReply;
using test::Json;

TEST_F(AdminServerTest, KeyCreateShowsTheSecretOnce) {
    const HttpReply created =
        call("POST", "/admin/keys",
             R"({"name":"app","quota_tokens":1000000,"models":["gpt-4o","o3"],)"
             R"("rpm":60,"max_concurrency":4,"expires_at":4102444800})");
    ASSERT_EQ(created.status, 201) << created.body;
    Json json(created.body);
    const std::string secret = json.string("/key");
    const int64_t id = json.integer("/id");
    EXPECT_TRUE(secret.starts_with("sk-rw-"));
    EXPECT_EQ(secret.size(), key_secret_bytes);
    EXPECT_EQ(json.string("/name"), "app");
    EXPECT_EQ(json.integer("/quota_tokens"), 1000000);
    EXPECT_EQ(json.integer("/rpm"), 60);
    EXPECT_EQ(json.integer("/max_concurrency"), 4);
    EXPECT_EQ(json.integer("/expires_at"), 4102444800);
    EXPECT_EQ(json.array_size("/models"), 2u);
    EXPECT_EQ(json.string("/models/1"), "o3");
    EXPECT_EQ(json.string("/status"), "active");
    EXPECT_TRUE(secret.starts_with(json.string("/key_prefix")));

    // The data plane knows the key at once, by the hash of the secret.
    const KeyEntry* entry = snapshot().find_key(key_hash(secret));
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->id, id);
    EXPECT_TRUE(entry->is_active);
    EXPECT_EQ(entry->rpm, 60u);
    EXPECT_TRUE(entry->allows_model("o3"));
    EXPECT_FALSE(entry->allows_model("gpt-3.5-turbo"));

    // Neither the secret nor its hash ever comes back.
    const KeyHash hash = key_hash(secret);
    char hash_hex[2 * key_hash_bytes + 1];
    for (uint32_t i = 0; i < key_hash_bytes; i++) {
        std::snprintf(hash_hex + 2 * i, 3, "%02x", hash[i]);
    }
    for (const HttpReply& read :
         {call("GET", "/admin/keys"), call("GET", "/admin/keys/" + std::to_string(id))}) {
        ASSERT_EQ(read.status, 200) << read.body;
        EXPECT_EQ(read.body.find(secret), std::string::npos);
        EXPECT_EQ(read.body.find(secret.substr(12)), std::string::npos);
        EXPECT_EQ(read.body.find(hash_hex), std::string::npos);
        EXPECT_EQ(read.body.find("\"key\":"), std::string::npos);
        EXPECT_EQ(read.body.find("hash"), std::string::npos);
    }
    Json list(call("GET", "/admin/keys").body);
    EXPECT_EQ(list.array_size("/data"), 1u);
    EXPECT_EQ(list.integer("/data/0/id"), id);
    EXPECT_EQ(list.string("/data/0/name"), "app");
}

TEST_F(AdminServerTest, KeyValidationErrors) {
    const HttpReply no_name = call("POST", "/admin/keys", R"({"rpm":5})");
    EXPECT_EQ(no_name.status, 400);
    EXPECT_EQ(error_code_of(no_name), "missing_field");
    const HttpReply bad_json = call("POST", "/admin/keys", R"({"name":"app",)");
    EXPECT_EQ(bad_json.status, 400);
    EXPECT_EQ(error_code_of(bad_json), "invalid_json");
    const HttpReply not_object = call("POST", "/admin/keys", R"(["name"])");
    EXPECT_EQ(error_code_of(not_object), "invalid_json");
    const HttpReply trailing = call("POST", "/admin/keys", R"({"name":"a"} {"name":"b"})");
    EXPECT_EQ(trailing.status, 400);
    EXPECT_EQ(error_code_of(trailing), "invalid_json");
    const HttpReply unknown = call("POST", "/admin/keys", R"({"name":"app","quota":5})");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_EQ(error_code_of(unknown), "invalid_field");
    EXPECT_NE(unknown.body.find("quota"), std::string::npos);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","quota_tokens":-1})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","rpm":1.5})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","rpm":"5"})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","models":"gpt-4o"})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":""})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","key":"short"})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", "").status, 400);
    EXPECT_TRUE(snapshot().keys().empty());  // Nothing half-created.
}

TEST_F(AdminServerTest, KeyImportPatchAndRevoke) {
    const std::string secret = "sk-imported-0123456789abcdef";
    const HttpReply imported =
        call("POST", "/admin/keys", R"({"name":"old","key":")" + secret + R"("})");
    ASSERT_EQ(imported.status, 201) << imported.body;
    Json json(imported.body);
    EXPECT_EQ(json.string("/key"), secret);
    const int64_t id = json.integer("/id");
    EXPECT_TRUE(json.is_null("/quota_tokens"));
    EXPECT_TRUE(json.is_null("/models"));
    ASSERT_NE(snapshot().find_key(key_hash(secret)), nullptr);
    const HttpReply duplicate =
        call("POST", "/admin/keys", R"({"name":"again","key":")" + secret + R"("})");
    EXPECT_EQ(duplicate.status, 409);
    EXPECT_EQ(duplicate.body.find(secret), std::string::npos);

    const std::string path = "/admin/keys/" + std::to_string(id);
    const HttpReply patched =
        call("PATCH", path, R"({"rpm":7,"models":["gpt-4o"],"name":"renamed"})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    Json after(patched.body);
    EXPECT_EQ(after.integer("/rpm"), 7);
    EXPECT_EQ(after.string("/name"), "renamed");
    EXPECT_TRUE(after.is_null("/quota_tokens"));  // Untouched members keep their value.
    const KeyEntry* entry = snapshot().find_key(key_hash(secret));
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->rpm, 7u);
    EXPECT_FALSE(entry->allows_model("o3"));
    EXPECT_EQ(call("PATCH", path, R"({"key":"sk-another-0123456789"})").status, 400);
    EXPECT_EQ(call("PATCH", path, R"({"rpm":-1})").status, 400);

    const HttpReply revoked = call("DELETE", path);
    ASSERT_EQ(revoked.status, 200) << revoked.body;
    EXPECT_EQ(Json(revoked.body).string("/status"), "revoked");
    // The key stops working at once: the published snapshot has it inactive.
    const KeyEntry* gone = snapshot().find_key(key_hash(secret));
    ASSERT_NE(gone, nullptr);
    EXPECT_FALSE(gone->is_active);
    EXPECT_EQ(Json(call("GET", path).body).string("/status"), "revoked");  // History stays.
}

// allowed_cidrs: checked entry by entry (the bad one named), stored canonical, parsed into
// the snapshot's key, merged by PATCH and cleared by null.
TEST_F(AdminServerTest, KeyAllowedCidrs) {
    const HttpReply bad = call("POST", "/admin/keys",
                               R"({"name":"app","allowed_cidrs":["10.0.0.0/8","fe80::1%eth0"]})");
    EXPECT_EQ(bad.status, 400) << bad.body;
    EXPECT_EQ(error_code_of(bad), "invalid_field");
    EXPECT_EQ(Json(bad.body).string("/error/message"),
              "allowed_cidrs entry \"fe80::1%eth0\" is not a CIDR block: not an IPv4 or IPv6 "
              "address");
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","allowed_cidrs":"10.0.0.0/8"})").status,
              400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","allowed_cidrs":[""]})").status, 400);

    const HttpReply created =
        call("POST", "/admin/keys", R"({"name":"app","allowed_cidrs":["10.0.0.0/8","::1"]})");
    ASSERT_EQ(created.status, 201) << created.body;
    Json json(created.body);
    EXPECT_EQ(json.string("/allowed_cidrs/1"), "::1/128");
    const int64_t id = json.integer("/id");
    const KeyEntry* entry = snapshot().find_key(key_hash(json.string("/key")));
    ASSERT_NE(entry, nullptr);
    ASSERT_EQ(entry->allowed_cidrs.size(), 2u);
    IpAddress address;
    ASSERT_TRUE(ip_parse("::ffff:10.9.8.7", address));
    EXPECT_TRUE(entry->allows_address(address));
    ASSERT_TRUE(ip_parse("11.0.0.1", address));
    EXPECT_FALSE(entry->allows_address(address));

    const std::string path = "/admin/keys/" + std::to_string(id);
    const HttpReply renamed = call("PATCH", path, R"({"name":"renamed"})");
    ASSERT_EQ(renamed.status, 200) << renamed.body;
    EXPECT_EQ(Json(renamed.body).array_size("/allowed_cidrs"), 2u) << "PATCH kept the list";
    const HttpReply cleared = call("PATCH", path, R"({"allowed_cidrs":[]})");
    ASSERT_EQ(cleared.status, 200) << cleared.body;
    EXPECT_NE(cleared.body.find(R"("allowed_cidrs":null)"), std::string::npos) << cleared.body;
    EXPECT_TRUE(snapshot().find_key_by_id(id)->allowed_cidrs.empty());
    EXPECT_TRUE(snapshot().find_key_by_id(id)->allows_address(address));
}

}  // namespace
}  // namespace rw
