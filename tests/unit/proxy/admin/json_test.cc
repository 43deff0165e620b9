// tests/unit/proxy/admin/json_test.cc — the admin's JSON on its own: JsonOut's commas,
// nesting and escaping (core/text.h's escaper), the texts built from string lists, and
// the body visitor's refusals: not JSON, not an object, bytes after it, a refused member.
#include "proxy/admin/json.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace rw {
namespace {

TEST(AdminJsonOut, BuildsNestedTextWithEscapes) {
    JsonOut out;
    out.begin_object().key("id").number(-3).key("name").string("a\"b\\c\n\x01");
    out.key("list").begin_array().string("x").null().boolean(true).end_array();
    out.key("empty").begin_object().end_object().end_object();
    EXPECT_EQ(out.take(),
              R"({"id":-3,"name":"a\"b\\c\n\u0001","list":["x",null,true],"empty":{}})");
}

TEST(AdminJsonOut, StringListsAndStoredModels) {
    EXPECT_EQ(json_string_array({}), "[]");
    EXPECT_EQ(json_string_array({"gpt-4o", "o3"}), R"(["gpt-4o","o3"])");
    EXPECT_EQ(json_string_map({{"a", "b"}, {"c", "d"}}), R"({"a":"b","c":"d"})");
    JsonOut out;
    out.begin_array();
    json_out_models(out, R"(["m1","m2"])");
    json_out_models(out, "not json");  // A bad stored row shows as null, never as is.
    out.end_array();
    EXPECT_EQ(out.take(), R"([["m1","m2"],null])");
}

struct Seen {
    std::string name;
    int64_t count = 0;
    std::vector<std::string> models;
};

bool read_seen(Seen& seen, std::string_view key, simdjson::ondemand::value& value,
               std::string& error) {
    if (key == "name") {
        return json_read_string(value, key, seen.name, error);
    }
    if (key == "count") {
        return json_read_int(value, key, 0, 10, seen.count, error);
    }
    if (key == "models") {
        return json_is_null(value) || json_read_string_array(value, key, seen.models, error);
    }
    return json_unknown_field(key, error);
}

bool visit(std::string_view body, Seen& seen, std::string& code, std::string& error) {
    simdjson::ondemand::parser parser;
    const auto read = [&](std::string_view key, simdjson::ondemand::value& value, std::string& e) {
        return read_seen(seen, key, value, e);
    };
    return json_visit_object(parser, body, read, code, error);
}

TEST(AdminJsonIn, VisitsEveryMember) {
    Seen seen;
    std::string code;
    std::string error;
    ASSERT_TRUE(visit(R"({"name":"a\u00e9","count":3,"models":["x","y"]})", seen, code, error))
        << error;
    EXPECT_EQ(seen.name, "a\xc3\xa9");
    EXPECT_EQ(seen.count, 3);
    EXPECT_EQ(seen.models, (std::vector<std::string>{"x", "y"}));
    ASSERT_TRUE(visit(R"({"models":null})", seen, code, error)) << error;
}

TEST(AdminJsonIn, Refusals) {
    const auto refused = [](std::string_view body, std::string_view want_code) {
        Seen seen;
        std::string code;
        std::string error;
        EXPECT_FALSE(visit(body, seen, code, error)) << body;
        EXPECT_EQ(code, want_code) << body;
        EXPECT_FALSE(error.empty()) << body;
        return error;
    };
    EXPECT_EQ(refused("", "invalid_json"), "request body must be a JSON object");
    EXPECT_EQ(refused("[1]", "invalid_json"), "request body must be a JSON object");
    EXPECT_EQ(refused(R"({"name":"a"} {})", "invalid_json"),
              "request body is not valid JSON (bytes after the object)");
    EXPECT_EQ(refused(R"({"count":11})", "invalid_field"), "count must be in 0..10");
    EXPECT_EQ(refused(R"({"count":1.5})", "invalid_field"), "count must be an integer");
    EXPECT_EQ(refused(R"({"name":5})", "invalid_field"), "name must be a string");
    EXPECT_EQ(refused(R"({"models":["a",""]})", "invalid_field"),
              "models must be an array of non-empty strings");
    EXPECT_EQ(refused(R"({"other":1})", "invalid_field"), "unknown field \"other\"");
}

}  // namespace
}  // namespace rw
