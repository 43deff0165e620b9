// tests/unit/proxy/admin/routes_test.cc — the route table through a real server (404 for
// unknown paths and bad ids, 405 with Allow listing the path's methods) and the
// query-string helpers and method names on their own.
#include "proxy/admin/routes.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/proxy/admin/admin_test_support.h"

namespace rw {
namespace {

using test::AdminServerTest;
using test::error_code_of;
using test::HttpReply;

TEST_F(AdminServerTest, UnknownPathsAndMethods) {
    EXPECT_EQ(call("GET", "/admin/nothing").status, 404);
    EXPECT_EQ(call("GET", "/admin/keys/abc").status, 404);
    const HttpReply missing_key = call("GET", "/admin/keys/999");
    EXPECT_EQ(missing_key.status, 404);
    EXPECT_EQ(error_code_of(missing_key), "not_found");
    EXPECT_EQ(call("DELETE", "/admin/keys/999").status, 404);
    EXPECT_EQ(call("DELETE", "/admin/channels/999").status, 404);
    EXPECT_EQ(call("PATCH", "/admin/channels/999", R"({"priority":1})").status, 404);
    const HttpReply put = call("PUT", "/admin/keys");
    EXPECT_EQ(put.status, 405);
    EXPECT_NE(put.head.find("Allow: GET, POST"), std::string::npos);
}

// The Allow header comes from the route table: the methods of the path, in table order.
TEST_F(AdminServerTest, MethodNotAllowedListsThePathsMethods) {
    const auto has_line = [](const HttpReply& reply, const std::string& line) {
        return (reply.head + "\r\n").find("\r\n" + line + "\r\n") != std::string::npos;
    };
    const HttpReply key_put = call("PUT", "/admin/keys/1");
    EXPECT_EQ(key_put.status, 405);
    EXPECT_EQ(error_code_of(key_put), "method_not_allowed");
    EXPECT_TRUE(has_line(key_put, "Allow: GET, PATCH, DELETE")) << key_put.head;
    const HttpReply channels_delete = call("DELETE", "/admin/channels");
    EXPECT_EQ(channels_delete.status, 405);
    EXPECT_TRUE(has_line(channels_delete, "Allow: GET, POST")) << channels_delete.head;
    const HttpReply usage_post = call("POST", "/admin/usage", "{}");
    EXPECT_EQ(usage_post.status, 405);
    EXPECT_TRUE(has_line(usage_post, "Allow: GET")) << usage_post.head;
    // An id is a positive decimal number; anything else is not a path the table has.
    EXPECT_EQ(call("PUT", "/admin/keys/0").status, 404);
    EXPECT_EQ(call("GET", "/admin/keys/-1").status, 404);
    EXPECT_EQ(call("GET", "/admin/keys/1/x").status, 404);
    EXPECT_EQ(call("GET", "/admin/keys/").status, 404);
}

TEST(AdminQuery, Param) {
    std::string value;
    bool is_bad = false;
    ASSERT_TRUE(admin_query_param("a=1&name=x%41y+z&b=2", "name", value, is_bad));
    EXPECT_FALSE(is_bad);
    EXPECT_EQ(value, "xAy z");
    ASSERT_TRUE(admin_query_param("flag&b=2", "flag", value, is_bad));
    EXPECT_EQ(value, "");
    EXPECT_FALSE(admin_query_param("a=1&b=2", "c", value, is_bad));
    EXPECT_FALSE(admin_query_param("", "c", value, is_bad));
    ASSERT_TRUE(admin_query_param("a=%4", "a", value, is_bad));
    EXPECT_TRUE(is_bad);
    is_bad = false;
    ASSERT_TRUE(admin_query_param("a=%zz", "a", value, is_bad));
    EXPECT_TRUE(is_bad);
}

TEST(AdminQuery, NamesKnown) {
    std::string unknown;
    EXPECT_TRUE(admin_query_names_known("key_id=1&limit=2", {"key_id", "limit"}, unknown));
    EXPECT_TRUE(admin_query_names_known("&&limit=2", {"limit"}, unknown));
    EXPECT_FALSE(admin_query_names_known("limit=2&key=1", {"key_id", "limit"}, unknown));
    EXPECT_EQ(unknown, "key");
}

TEST(AdminQuery, Days) {
    std::string day;
    ASSERT_TRUE(admin_parse_day("2023-11-15", day));
    EXPECT_EQ(day, "2023-11-15");
    ASSERT_TRUE(admin_parse_day("1699963200", day));  // 2023-11-14 12:00:00 UTC.
    EXPECT_EQ(day, "2023-11-14");
    ASSERT_TRUE(admin_parse_day("", day));
    EXPECT_EQ(day, "");
    EXPECT_FALSE(admin_parse_day("2023-13-01", day));
    EXPECT_FALSE(admin_parse_day("1969-12-31", day));
    EXPECT_FALSE(admin_parse_day("yesterday", day));
    EXPECT_FALSE(admin_parse_day("-1", day));
    EXPECT_FALSE(admin_parse_day("253402300800", day));  // After 9999-12-31.
}

TEST(AdminQuery, IntegersAndTheirError) {
    AdminReply reply;
    int64_t value = 7;
    ASSERT_TRUE(admin_query_int("x=1", "limit", 1, 1000, value, reply));
    EXPECT_EQ(value, 7);  // Absent: untouched.
    ASSERT_TRUE(admin_query_int("limit=1000", "limit", 1, 1000, value, reply));
    EXPECT_EQ(value, 1000);
    EXPECT_FALSE(admin_query_int("limit=1001", "limit", 1, 1000, value, reply));
    EXPECT_EQ(reply.status, 400);
    EXPECT_NE(reply.body.find("limit must be an integer in 1..1000"), std::string::npos);
    EXPECT_FALSE(admin_query_int("limit=%zz", "limit", 1, 1000, value, reply));
    EXPECT_EQ(value, 1000);
}

TEST(AdminMethodName, NamesEveryMethod) {
    EXPECT_EQ(admin_method_name(Method::get), "GET");
    EXPECT_EQ(admin_method_name(Method::patch), "PATCH");
    EXPECT_EQ(admin_method_name(Method::delete_), "DELETE");
    EXPECT_EQ(admin_method_name(Method::other), "OTHER");
}

}  // namespace
}  // namespace rw
