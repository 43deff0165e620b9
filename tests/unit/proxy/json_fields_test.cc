// tests/unit/proxy/json_fields_test.cc — request body fields (model, stream, stream_options,
// include_usage) and their spans, the refusals, and the byte-exact rewrite: every
// include_usage case, model renames that need escaping, whitespace-heavy bodies. Each
// rewritten body is compared byte for byte and parsed again.
#include "proxy/json_fields.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <string>

namespace rw {
namespace {

// A body followed by json_padding_bytes zeros, as core/http_parse delivers it.
class PaddedBody {
public:
    explicit PaddedBody(std::string_view text) : storage_(text) {
        storage_.append(json_padding_bytes, '\0');
    }
    std::string_view view() const {
        return std::string_view(storage_.data(), storage_.size() - json_padding_bytes);
    }

private:
    std::string storage_;
};

class JsonFieldsTest : public ::testing::Test {
protected:
    void TearDown() override { arena_.release(); }

    RequestFieldsError parse(std::string_view text, RequestFields& fields) {
        bodies_.emplace_back(text);
        return request_fields_parse(arena_, bodies_.back().view(), fields);
    }
    std::string_view body() const { return bodies_.back().view(); }
    std::string_view span_text(const JsonSpan& span) const {
        return body().substr(span.offset, span.bytes);
    }

    // Rewrites the last parsed body and checks the result's padding and re-parse.
    std::string rewrite(const RequestFields& fields, std::string_view new_model,
                        bool ensure_include_usage) {
        const std::string_view output =
            request_rewrite(arena_, body(), fields, new_model, ensure_include_usage);
        EXPECT_FALSE(output.empty());
        for (uint32_t index = 0; index < json_padding_bytes; index += 1) {
            EXPECT_EQ(output.data()[output.size() + index], '\0');
        }
        RequestFields again{};
        EXPECT_EQ(request_fields_parse(arena_, output, again), RequestFieldsError::none);
        EXPECT_EQ(again.model, new_model.empty() ? fields.model : new_model);
        if (ensure_include_usage) {
            EXPECT_TRUE(again.has_stream_options);
            EXPECT_TRUE(again.has_include_usage);
            EXPECT_TRUE(again.include_usage);
            EXPECT_EQ(span_text_of(output, again.include_usage_span), "true");
        }
        EXPECT_EQ(again.has_stream, fields.has_stream);
        EXPECT_EQ(again.is_streaming, fields.is_streaming);
        return std::string(output);
    }
    static std::string_view span_text_of(std::string_view text, const JsonSpan& span) {
        return text.substr(span.offset, span.bytes);
    }

    ChunkPool pool_{64, 64 << 20};
    Arena arena_{&pool_, 32 << 20};
    std::deque<PaddedBody> bodies_;
};

TEST_F(JsonFieldsTest, ModelFirst) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})", fields),
              RequestFieldsError::none);
    EXPECT_TRUE(fields.has_model);
    EXPECT_EQ(fields.model, "gpt-4o");
    EXPECT_EQ(fields.model_span.offset, 9u);
    EXPECT_EQ(span_text(fields.model_span), "\"gpt-4o\"");
    EXPECT_EQ(fields.model.data(), body().data() + 10);  // No escapes: no copy.
    EXPECT_EQ(fields.member_count, 2u);
    EXPECT_EQ(fields.object_end_offset, body().size() - 1);
    EXPECT_FALSE(fields.has_stream);
    EXPECT_FALSE(fields.is_streaming);
    EXPECT_FALSE(fields.has_stream_options);
    EXPECT_FALSE(fields.has_include_usage);
}

TEST_F(JsonFieldsTest, ModelLastAfterNestedObjectsThatMentionModel) {
    RequestFields fields;
    const std::string_view text =
        R"({"messages":[{"role":"user","content":"{\"model\":\"fake\"}"}],)"
        R"("metadata":{"model":"nested","stream":"x"},"tools":[{"model":1}],"model":"gpt-4o-mini"})";
    ASSERT_EQ(parse(text, fields), RequestFieldsError::none);
    EXPECT_EQ(fields.model, "gpt-4o-mini");
    EXPECT_EQ(span_text(fields.model_span), "\"gpt-4o-mini\"");
    EXPECT_EQ(fields.member_count, 4u);
    EXPECT_FALSE(fields.has_stream);  // The nested "stream" is not ours.
}

TEST_F(JsonFieldsTest, ModelWithUnicodeEscapesIsUnescapedIntoTheArena) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"caf\u00e9-\ud83d\ude00\/x"})", fields), RequestFieldsError::none);
    EXPECT_EQ(fields.model, "caf\xC3\xA9-\xF0\x9F\x98\x80/x");
    EXPECT_EQ(span_text(fields.model_span), R"("caf\u00e9-\ud83d\ude00\/x")");
    const char* model = fields.model.data();
    EXPECT_TRUE(model < body().data() || model >= body().data() + body().size());
    // The copy must survive the parser's next document.
    RequestFields other;
    ASSERT_EQ(request_fields_parse(arena_, PaddedBody(R"({"model":"zzzzzzzzzzzz"})").view(), other),
              RequestFieldsError::none);
    EXPECT_EQ(fields.model, "caf\xC3\xA9-\xF0\x9F\x98\x80/x");
}

TEST_F(JsonFieldsTest, StreamTrueFalseNullAndAbsent) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"m","stream":true})", fields), RequestFieldsError::none);
    EXPECT_TRUE(fields.has_stream);
    EXPECT_TRUE(fields.is_streaming);
    ASSERT_EQ(parse(R"({"stream":false,"model":"m"})", fields), RequestFieldsError::none);
    EXPECT_TRUE(fields.has_stream);
    EXPECT_FALSE(fields.is_streaming);
    ASSERT_EQ(parse(R"({"stream":null,"model":"m"})", fields), RequestFieldsError::none);
    EXPECT_FALSE(fields.has_stream);
    EXPECT_FALSE(fields.is_streaming);
    ASSERT_EQ(parse(R"({"model":"m"})", fields), RequestFieldsError::none);
    EXPECT_FALSE(fields.has_stream);
}

TEST_F(JsonFieldsTest, StreamOptionsVariants) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"m","stream_options":{}})", fields), RequestFieldsError::none);
    EXPECT_TRUE(fields.has_stream_options);
    EXPECT_EQ(span_text(fields.stream_options_span), "{}");
    EXPECT_EQ(fields.stream_options_member_count, 0u);
    EXPECT_FALSE(fields.has_include_usage);

    ASSERT_EQ(parse(R"({"model":"m","stream_options":{ "include_usage" : true } ,"n":1})", fields),
              RequestFieldsError::none);
    EXPECT_EQ(span_text(fields.stream_options_span), R"({ "include_usage" : true })");
    EXPECT_TRUE(fields.has_include_usage);
    EXPECT_TRUE(fields.include_usage);
    EXPECT_EQ(span_text(fields.include_usage_span), "true");
    EXPECT_EQ(fields.stream_options_member_count, 1u);

    ASSERT_EQ(
        parse(
            R"({"stream_options":{"x":{"include_usage":true},"include_usage":false},"model":"m"})",
            fields),
        RequestFieldsError::none);
    EXPECT_EQ(span_text(fields.stream_options_span),
              R"({"x":{"include_usage":true},"include_usage":false})");
    EXPECT_TRUE(fields.has_include_usage);
    EXPECT_FALSE(fields.include_usage);
    EXPECT_EQ(span_text(fields.include_usage_span), "false");
    EXPECT_EQ(fields.stream_options_member_count, 2u);

    ASSERT_EQ(parse(R"({"model":"m","stream_options":{"include_usage":null}})", fields),
              RequestFieldsError::none);
    EXPECT_TRUE(fields.has_include_usage);
    EXPECT_FALSE(fields.include_usage);
    EXPECT_EQ(span_text(fields.include_usage_span), "null");

    ASSERT_EQ(parse(R"({"model":"m","stream_options":null})", fields), RequestFieldsError::none);
    EXPECT_FALSE(fields.has_stream_options);
    EXPECT_TRUE(fields.is_stream_options_null);
    EXPECT_EQ(span_text(fields.stream_options_span), "null");

    ASSERT_EQ(parse(R"({"model":"m","stream_options":{"a":[1,{"b":"}"}]}})", fields),
              RequestFieldsError::none);
    EXPECT_EQ(span_text(fields.stream_options_span), R"({"a":[1,{"b":"}"}]})");
    EXPECT_FALSE(fields.has_include_usage);
}

TEST_F(JsonFieldsTest, WhitespaceAroundEverything) {
    RequestFields fields;
    ASSERT_EQ(parse(" \r\n\t{ \"model\" :\t\"m\" , \"stream\" : true }\n\n ", fields),
              RequestFieldsError::none);
    EXPECT_EQ(span_text(fields.model_span), "\"m\"");
    EXPECT_EQ(body()[fields.object_end_offset], '}');
    EXPECT_EQ(fields.object_end_offset, body().size() - 4);
}

struct InvalidCase {
    const char* text;
    RequestFieldsError error;
};

TEST_F(JsonFieldsTest, InvalidBodiesAreRefusedWithTheirReason) {
    const InvalidCase cases[] = {
        {"", RequestFieldsError::not_json},
        {"   ", RequestFieldsError::not_json},
        {"{", RequestFieldsError::not_json},
        {R"({"model":"x")", RequestFieldsError::not_json},
        {R"({"model":"x"}})", RequestFieldsError::not_json},
        {R"({"model":"x"} {})", RequestFieldsError::not_json},
        {R"({"model":"x"} x)", RequestFieldsError::not_json},
        {R"({"model":"x",})", RequestFieldsError::not_json},
        {R"({"model" "x"})", RequestFieldsError::not_json},
        {R"({"model":"\x"})", RequestFieldsError::not_json},
        {"{\"model\":\"\xFF\xFE\"}", RequestFieldsError::not_json},
        {"[1,2]", RequestFieldsError::not_object},
        {"\"model\"", RequestFieldsError::not_object},
        {"42", RequestFieldsError::not_object},
        {"null", RequestFieldsError::not_object},
        {"{}", RequestFieldsError::model_missing},
        {R"({"messages":[{"model":"x"}]})", RequestFieldsError::model_missing},
        {R"({"model":1})", RequestFieldsError::model_not_string},
        {R"({"model":null})", RequestFieldsError::model_not_string},
        {R"({"model":["x"]})", RequestFieldsError::model_not_string},
        {R"({"model":"x","stream":"yes"})", RequestFieldsError::stream_not_bool},
        {R"({"model":"x","stream":1})", RequestFieldsError::stream_not_bool},
        {R"({"model":"x","stream_options":[]})", RequestFieldsError::stream_options_not_object},
        {R"({"model":"x","stream_options":true})", RequestFieldsError::stream_options_not_object},
        {R"({"model":"x","stream_options":{"include_usage":1}})",
         RequestFieldsError::include_usage_not_bool},
        {R"({"model":"x","stream_options":{"include_usage":"true"}})",
         RequestFieldsError::include_usage_not_bool},
        {R"({"model":"a","model":"b"})", RequestFieldsError::duplicate_key},
        {R"({"model":"a","mod\u0065l":"b"})", RequestFieldsError::duplicate_key},
        {R"({"model":"a","stream":true,"stream":false})", RequestFieldsError::duplicate_key},
        {R"({"model":"a","stream_options":null,"stream_options":{}})",
         RequestFieldsError::duplicate_key},
        {R"({"model":"a","stream_options":{"include_usage":true,"include_usage":false}})",
         RequestFieldsError::duplicate_key},
    };
    for (const InvalidCase& test_case : cases) {
        RequestFields fields;
        EXPECT_EQ(parse(test_case.text, fields), test_case.error) << test_case.text;
        EXPECT_FALSE(request_fields_error_message(test_case.error).empty());
        EXPECT_FALSE(request_fields_error_code(test_case.error).empty());
    }
    EXPECT_EQ(request_fields_error_param(RequestFieldsError::model_missing), "model");
    EXPECT_EQ(request_fields_error_param(RequestFieldsError::stream_not_bool), "stream");
}

TEST_F(JsonFieldsTest, EscapedModelNeedsArenaAndReportsExhaustion) {
    ChunkPool pool(4, 1 << 20);
    Arena tiny(&pool, 64);  // Below one chunk: every allocation is refused.
    RequestFields fields;
    const PaddedBody padded(R"({"model":"caf\u00e9"})");
    EXPECT_EQ(request_fields_parse(tiny, padded.view(), fields),
              RequestFieldsError::arena_exhausted);
    const PaddedBody plain(R"({"model":"cafe"})");
    ASSERT_EQ(request_fields_parse(tiny, plain.view(), fields), RequestFieldsError::none);
    EXPECT_TRUE(request_rewrite(tiny, plain.view(), fields, "other", false).empty());
    std::string_view escaped;
    EXPECT_FALSE(json_escape_to_arena(tiny, "abc", escaped));
    tiny.release();
}

TEST_F(JsonFieldsTest, RewriteInsertsStreamOptionsBeforeTheClosingBrace) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"gpt-4o","stream":true})", fields), RequestFieldsError::none);
    EXPECT_EQ(
        rewrite(fields, "gpt-4o-2024-08-06", true),
        R"({"model":"gpt-4o-2024-08-06","stream":true,"stream_options":{"include_usage":true}})");
    EXPECT_EQ(rewrite(fields, "", true),
              R"({"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}})");
}

TEST_F(JsonFieldsTest, RewriteFillsAnEmptyStreamOptionsObject) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"m","stream":true,"stream_options":{}})", fields),
              RequestFieldsError::none);
    EXPECT_EQ(rewrite(fields, "", true),
              R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})");
}

TEST_F(JsonFieldsTest, RewriteAddsIncludeUsageAsFirstMemberOfStreamOptions) {
    RequestFields fields;
    ASSERT_EQ(
        parse(R"({"stream_options":{"continuous_usage_stats":false},"model":"m","stream":true})",
              fields),
        RequestFieldsError::none);
    EXPECT_EQ(
        rewrite(fields, "n", true),
        R"({"stream_options":{"include_usage":true,"continuous_usage_stats":false},"model":"n","stream":true})");
}

TEST_F(JsonFieldsTest, RewriteTurnsIncludeUsageFalseAndNullIntoTrue) {
    RequestFields fields;
    ASSERT_EQ(
        parse(R"({"model":"m","stream_options":{"include_usage":false},"stream":true})", fields),
        RequestFieldsError::none);
    EXPECT_EQ(rewrite(fields, "", true),
              R"({"model":"m","stream_options":{"include_usage":true},"stream":true})");
    ASSERT_EQ(parse(R"({"model":"m","stream_options":{"include_usage" : null }})", fields),
              RequestFieldsError::none);
    EXPECT_EQ(rewrite(fields, "", true),
              R"({"model":"m","stream_options":{"include_usage" : true }})");
}

TEST_F(JsonFieldsTest, RewriteReplacesANullStreamOptions) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"m","stream_options":null,"stream":true})", fields),
              RequestFieldsError::none);
    EXPECT_EQ(rewrite(fields, "", true),
              R"({"model":"m","stream_options":{"include_usage":true},"stream":true})");
}

TEST_F(JsonFieldsTest, RewriteReturnsTheBodyItselfWhenNothingChanges) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"m","stream_options":{"include_usage":true}})", fields),
              RequestFieldsError::none);
    const std::string_view same = request_rewrite(arena_, body(), fields, "m", true);
    EXPECT_EQ(same.data(), body().data());
    EXPECT_EQ(same.size(), body().size());
    EXPECT_EQ(request_rewrite(arena_, body(), fields, "", false).data(), body().data());
}

TEST_F(JsonFieldsTest, RewriteEditsInEitherOrder) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"stream_options":{"include_usage":false},"model":"short"})", fields),
              RequestFieldsError::none);
    EXPECT_EQ(rewrite(fields, "a-much-longer-model-name", true),
              R"({"stream_options":{"include_usage":true},"model":"a-much-longer-model-name"})");
    ASSERT_EQ(parse(R"({"model":"a-much-longer-model-name","stream_options":{}})", fields),
              RequestFieldsError::none);
    EXPECT_EQ(rewrite(fields, "x", true),
              R"({"model":"x","stream_options":{"include_usage":true}})");
}

TEST_F(JsonFieldsTest, RewriteEscapesTheNewModel) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"m"})", fields), RequestFieldsError::none);
    const std::string renamed("a\"b\\c\nd\x01\x1f\t\xC3\xA9", 12);
    EXPECT_EQ(rewrite(fields, renamed, false),
              "{\"model\":\"a\\\"b\\\\c\\nd\\u0001\\u001f\\t\xC3\xA9\"}");
}

TEST_F(JsonFieldsTest, RewriteKeepsWhitespaceHeavyBodiesByteIdentical) {
    RequestFields fields;
    const std::string_view text =
        "{\n  \"model\" :  \"m\\u0031\" ,\n  \"messages\" : [ { \"role\" : \"user\" } ] ,\n"
        "  \"stream_options\" : {   } \n}\n";
    ASSERT_EQ(parse(text, fields), RequestFieldsError::none);
    EXPECT_EQ(fields.model, "m1");
    EXPECT_EQ(rewrite(fields, "gpt", true),
              "{\n  \"model\" :  \"gpt\" ,\n  \"messages\" : [ { \"role\" : \"user\" } ] ,\n"
              "  \"stream_options\" : {\"include_usage\":true   } \n}\n");
    ASSERT_EQ(parse("{ \"model\":\"m\"\n\n}\r\n", fields), RequestFieldsError::none);
    EXPECT_EQ(rewrite(fields, "", true),
              "{ \"model\":\"m\"\n\n,\"stream_options\":{\"include_usage\":true}}\r\n");
}

TEST_F(JsonFieldsTest, RewriteOfAnEmptyObjectNeedsNoComma) {
    RequestFields fields;
    ASSERT_EQ(parse("{ }", fields), RequestFieldsError::model_missing);
    const std::string_view output = request_rewrite(arena_, body(), fields, "", true);
    EXPECT_EQ(output, R"({ "stream_options":{"include_usage":true}})");
}

// A strict key's injected output limit: the last top-level member, beside a renamed model
// and an inserted stream_options (both at the object's end, in a stable order), and the
// result parses with that limit.
TEST_F(JsonFieldsTest, RewriteAddsAMemberAtTheEnd) {
    RequestFields fields;
    ASSERT_EQ(parse(R"({"model":"m","stream":true})", fields), RequestFieldsError::none);
    const std::string_view output =
        request_rewrite(arena_, body(), fields, "gpt", true, R"(,"max_tokens":123)");
    EXPECT_EQ(
        output,
        R"({"model":"gpt","stream":true,"max_tokens":123,"stream_options":{"include_usage":true}})");
    RequestFields again{};
    ASSERT_EQ(request_fields_parse(arena_, output, again), RequestFieldsError::none);
    EXPECT_TRUE(again.has_output_limit);
    EXPECT_EQ(again.output_tokens_max, 123u);
    ASSERT_EQ(parse(R"({"model":"m"} )", fields), RequestFieldsError::none);
    EXPECT_EQ(request_rewrite(arena_, body(), fields, "", false, R"(,"max_output_tokens":7)"),
              R"({"model":"m","max_output_tokens":7} )");
}

TEST_F(JsonFieldsTest, EscapeHelper) {
    EXPECT_EQ(json_escaped_bytes("plain"), 5u);
    EXPECT_EQ(json_escaped_bytes("\"\\"), 4u);
    EXPECT_EQ(json_escaped_bytes(std::string_view("\x00", 1)), 6u);
    std::string_view escaped;
    ASSERT_TRUE(json_escape_to_arena(arena_, std::string_view("q\"\x00\x7f/\r", 6), escaped));
    EXPECT_EQ(escaped, "q\\\"\\u0000\x7f/\\r");
    ASSERT_TRUE(json_escape_to_arena(arena_, "", escaped));
    EXPECT_TRUE(escaped.empty());
}

}  // namespace
}  // namespace rw

namespace rw {
namespace {

// simdjson 3.0.1's set_max_capacity() clamps every value above 32 bytes down to 32: a
// reserve that used it refused every real body afterwards (found on a live gateway).
TEST(JsonParserReserve, RealBodiesStillParseAfterReserving) {
    ASSERT_TRUE(json_parser_reserve(1u << 20, 64u << 20));
    ChunkPool pool(16, 1u << 24);
    Arena arena(&pool, 1u << 24);
    std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")";
    body += std::string(4000, 'x');
    body += R"("}]})";
    body.append(json_padding_bytes, '\0');
    RequestFields fields;
    EXPECT_EQ(request_fields_parse(arena, {body.data(), body.size() - json_padding_bytes}, fields),
              RequestFieldsError::none);
    EXPECT_EQ(fields.model, "gpt-4o-mini");
    arena.release();
}

}  // namespace
}  // namespace rw
