// tests/unit/proxy/admin/server_test.cc — the admin listener: the token compared whole,
// no listener without a token, and requests refused before routing when the token is
// missing, wrong or of another scheme (an unauthenticated write creates nothing).
#include "proxy/admin/server.h"

#include <gtest/gtest.h>

#include <string>

#include "storage/keys.h"
#include "storage/queries.h"
#include "storage/snapshot.h"
#include "storage/writer.h"
#include "tests/unit/proxy/admin/admin_test_support.h"

namespace rw {
namespace {

using test::admin_config;
using test::AdminServerTest;
using test::error_code_of;
using test::http_call;
using test::HttpReply;
using test::Json;
using test::test_token;

TEST(AdminToken, ComparesWholeTokens) {
    EXPECT_TRUE(admin_token_matches("secret-token-123", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("secret-token-124", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("secret-token-12", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("secret-token-1234", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("", ""));  // No token configured matches nothing.
    EXPECT_FALSE(admin_token_matches("anything", ""));
}

TEST(AdminServerDisabled, NoTokenOpensNothing) {
    Writer writer;
    SnapshotStore snapshots;
    Catalog catalog(writer, snapshots);
    Queries queries;
    AdminServer server;
    std::string error;
    ASSERT_TRUE(server.start(admin_config(""), writer, catalog, queries, error)) << error;
    EXPECT_FALSE(server.is_enabled());
    EXPECT_EQ(server.port(), 0);
    EXPECT_TRUE(server.listen_text().empty());
    server.stop();
}

TEST_F(AdminServerTest, RefusesMissingAndWrongTokens) {
    const HttpReply missing = http_call(port_, "GET", "/admin/keys", {}, {}, false);
    EXPECT_EQ(missing.status, 401);
    EXPECT_EQ(error_code_of(missing), "missing_admin_token");
    EXPECT_NE(missing.head.find("WWW-Authenticate: Bearer"), std::string::npos);
    EXPECT_NE(missing.head.find("Connection: close"), std::string::npos);

    const HttpReply wrong =
        http_call(port_, "GET", "/admin/keys", {}, "Bearer admin-token-0123456789abcdeX");
    EXPECT_EQ(wrong.status, 401);
    EXPECT_EQ(error_code_of(wrong), "invalid_admin_token");
    const HttpReply shorter = http_call(port_, "GET", "/admin/keys", {}, "Bearer admin-token");
    EXPECT_EQ(shorter.status, 401);
    const HttpReply basic =
        http_call(port_, "GET", "/admin/keys", {}, "Basic " + std::string(test_token));
    EXPECT_EQ(basic.status, 401);
    // An unauthenticated write is refused before its body is read: nothing is created.
    const HttpReply write =
        http_call(port_, "POST", "/admin/keys", R"({"name":"x"})", "Bearer nope-nope-nope-nope");
    EXPECT_EQ(write.status, 401);
    EXPECT_TRUE(snapshot().keys().empty());

    const HttpReply right =
        http_call(port_, "GET", "/admin/keys", {}, "bearer " + std::string(test_token));
    EXPECT_EQ(right.status, 200) << right.body;
    EXPECT_EQ(Json(right.body).array_size("/data"), 0u);
}

}  // namespace
}  // namespace rw
