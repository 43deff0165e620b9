// tests/unit/storage/json_lite_test.cc — the strict JSON reader for models / model_map.
#include "storage/json_lite.h"

#include <gtest/gtest.h>

namespace rw {
namespace {

TEST(JsonLite, StringArray) {
    std::vector<std::string> out;
    std::string error;
    ASSERT_TRUE(json_parse_string_array(R"( [ "gpt-4o", "a\"b\u00e9\ud83d\ude00" ] )", out, error))
        << error;
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0], "gpt-4o");
    EXPECT_EQ(out[1], "a\"b\xc3\xa9\xf0\x9f\x98\x80");
    ASSERT_TRUE(json_parse_string_array("[]", out, error));
    EXPECT_TRUE(out.empty());
    for (const char* bad :
         {"", "[", "[1]", "[\"a\",]", "[\"a\"] x", "{}", "[\"\\ud800\"]", "[\"a\nb\"]"}) {
        EXPECT_FALSE(json_parse_string_array(bad, out, error)) << bad;
    }
}

TEST(JsonLite, StringMap) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string error;
    ASSERT_TRUE(json_parse_string_map(R"({"gpt-4o":"gpt-4o-2024", "x" : "y"})", out, error))
        << error;
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].first, "gpt-4o");
    EXPECT_EQ(out[0].second, "gpt-4o-2024");
    EXPECT_EQ(out[1].second, "y");
    for (const char* bad : {"{", "{\"a\"}", "{\"a\":1}", "[]", "{\"a\":\"b\",}"}) {
        EXPECT_FALSE(json_parse_string_map(bad, out, error)) << bad;
    }
}

TEST(JsonLite, ModelLimits) {
    std::vector<ModelLimitSpec> out;
    std::string error;
    ASSERT_TRUE(json_parse_model_limits(
        R"({"gpt-4o": {"rpm": 60, "tpm": 90000}, "o1": {"tpm": 4294967295}, "x": {}})", out, error))
        << error;
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].model, "gpt-4o");
    EXPECT_EQ(out[0].rpm, 60);
    EXPECT_EQ(out[0].tpm, 90000);
    EXPECT_EQ(out[1].rpm, 0);
    EXPECT_EQ(out[1].tpm, 4294967295);
    ASSERT_TRUE(json_parse_model_limits("{}", out, error));
    EXPECT_TRUE(out.empty());
    for (const char* bad :
         {"", "[]", R"({"a":1})", R"({"a":{"rpm":-1}})", R"({"a":{"rpm":4294967296}})",
          R"({"a":{"rps":1}})", R"({"a":{"rpm":1,"rpm":2}})", R"({"a":{},"a":{}})",
          R"({"a":{"rpm":01}})", R"({"a":{"rpm":1.5}})", R"({"a":{}} x)"}) {
        EXPECT_FALSE(json_parse_model_limits(bad, out, error)) << bad;
    }
}

}  // namespace
}  // namespace rw
