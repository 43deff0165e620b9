// tests/unit/proxy/translate_test.cc — Chat Completions ⇄ Messages translation (translate.h)
// against golden fixtures: each translate_golden/NAME.DIR.EXT (DIR c2m: Chat client,
// Messages upstream; m2c: the reverse) is translated as its prefix says (req_: a request
// body, resp_: a whole answer, error_: an error body, stream_: an SSE stream) and compared
// with NAME.DIR.expected, byte for byte. Streams are also fed byte by byte and in uneven
// pieces, which must not change a byte. RW_UPDATE_GOLDEN=1 rewrites the expected files
// (review the diff). Then the refusals: every field that cannot be carried over is named.
#include "proxy/translate.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "proxy/json_fields.h"

namespace rw {
namespace {

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string padded(std::string_view text) {
    std::string out(text);
    out.append(json_padding_bytes, '\0');
    return out;
}

std::string_view view_of(const std::string& padded_text) {
    return {padded_text.data(), padded_text.size() - json_padding_bytes};
}

// The stream translated with pieces of `piece` bytes (0: whole).
std::string stream_run(Translation translation, std::string_view input, size_t piece) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 32 << 20);
    StreamTranslator* translator =
        stream_translator_create(arena, translation, true, "model-asked", 1700000000);
    EXPECT_NE(translator, nullptr);
    std::string out;
    size_t at = 0;
    while (at < input.size()) {
        const size_t length = piece == 0 ? input.size() : std::min(piece, input.size() - at);
        std::string copy(input.substr(at, length));  // No view may outlive its piece.
        EXPECT_TRUE(stream_translate_feed(arena, *translator, copy, out));
        copy.assign(copy.size(), '#');
        at += length;
    }
    stream_translate_finish(*translator, out);
    arena.release();
    return out;
}

std::string golden_run(const std::string& name, const std::string& input) {
    const Translation translation =
        name.find(".c2m.") != std::string::npos   ? Translation::chat_to_messages
        : name.find(".r2c.") != std::string::npos ? Translation::responses_to_chat
                                                  : Translation::messages_to_chat;
    const std::string body = padded(input);
    std::string out;
    if (name.starts_with("req_")) {
        std::string error;
        std::string param;
        const TranslateRequestOptions options{"upstream-model", 2048, true};
        EXPECT_TRUE(translate_request(translation, view_of(body), options, out, error, param))
            << name << ": " << error;
    } else if (name.starts_with("resp_")) {
        EXPECT_TRUE(translate_response(translation, view_of(body), "model-asked", 1700000000, out))
            << name;
    } else if (name.starts_with("error_")) {
        translate_error(translation, view_of(body), 429, out);
    } else {
        out = stream_run(translation, input, 0);
        EXPECT_EQ(stream_run(translation, input, 1), out) << name << " fed byte by byte";
        EXPECT_EQ(stream_run(translation, input, 7), out) << name << " fed in 7-byte pieces";
        EXPECT_EQ(stream_run(translation, input, 100), out) << name << " fed in 100-byte pieces";
    }
    return out;
}

TEST(TranslateGolden, EveryFixtureTranslatesToItsExpectedBytes) {
    const bool is_update = std::getenv("RW_UPDATE_GOLDEN") != nullptr;
    uint32_t cases = 0;
    for (const auto& entry : std::filesystem::directory_iterator(RW_GOLDEN_DIR)) {
        const std::filesystem::path path = entry.path();
        if (path.extension() == ".expected") {
            continue;
        }
        const std::string name = path.filename().string();
        const std::string out = golden_run(name, read_file(path));
        std::filesystem::path expected_path = path;
        expected_path.replace_extension(".expected");
        if (is_update) {
            std::ofstream(expected_path, std::ios::binary) << out;
        }
        ASSERT_TRUE(std::filesystem::exists(expected_path)) << name;
        EXPECT_EQ(out, read_file(expected_path)) << name;
        cases += 1;
    }
    EXPECT_GE(cases, 20u);
}

struct Refused {
    Translation translation;
    const char* body;
    const char* param;
};

TEST(TranslateRequest, FieldsWithoutAnEquivalentAreRefusedByName) {
    const Refused cases[] = {
        {Translation::chat_to_messages,
         R"({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true})", "logprobs"},
        {Translation::chat_to_messages, R"({"model":"m","messages":[],"n":2})", "n"},
        {Translation::chat_to_messages, R"({"model":"m","messages":[],"response_format":{}})",
         "response_format"},
        {Translation::chat_to_messages, R"({"model":"m","messages":[],"seed":1})", "seed"},
        {Translation::chat_to_messages,
         R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]})",
         "messages[].content[].type"},
        {Translation::chat_to_messages,
         R"({"model":"m","messages":[{"role":"user","name":"bob","content":"x"}]})",
         "messages[].name"},
        {Translation::chat_to_messages,
         R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"[1]"}}]}]})",
         "messages[].tool_calls[].function.arguments"},
        {Translation::chat_to_messages,
         R"({"model":"m","messages":[],"tools":[{"type":"custom","custom":{}}]})", "tools[].type"},
        {Translation::messages_to_chat, R"({"model":"m","max_tokens":5,"messages":[],"top_k":3})",
         "top_k"},
        {Translation::messages_to_chat,
         R"({"model":"m","max_tokens":5,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]})",
         "tools[].type"},
        {Translation::messages_to_chat,
         R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]})",
         "messages[].content[].type"},
        {Translation::messages_to_chat,
         R"({"model":"m","max_tokens":5,"messages":[],"mcp_servers":[]})", "mcp_servers"},
        {Translation::messages_to_chat,
         R"({"model":"m","max_tokens":5,"messages":[],"context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]}})",
         "context_management"},
        {Translation::messages_to_chat,
         R"({"model":"m","max_tokens":5,"messages":[],"output_config":{"format":{"type":"json_schema"}}})",
         "output_config"},
        {Translation::responses_to_chat,
         R"({"model":"m","input":"x","tools":[{"type":"web_search"}]})", "tools[].type"},
        {Translation::responses_to_chat, R"({"model":"m","input":"x","store":true})", "store"},
        {Translation::responses_to_chat,
         R"({"model":"m","input":"x","previous_response_id":"resp_1"})", "previous_response_id"},
        {Translation::responses_to_chat, R"({"model":"m","input":"x","background":true})",
         "background"},
        {Translation::responses_to_chat, R"({"model":"m","input":"x","conversation":"c"})",
         "conversation"},
        {Translation::responses_to_chat,
         R"({"model":"m","input":"x","include":["message.output_text.logprobs"]})", "include"},
        {Translation::responses_to_chat, R"({"model":"m","input":"x","truncation":"auto"})",
         "truncation"},
        {Translation::responses_to_chat, R"({"model":"m","input":"x","max_tool_calls":3})",
         "max_tool_calls"},
        {Translation::responses_to_chat,
         R"({"model":"m","input":[{"type":"item_reference","id":"msg_1"}]})", "input[].type"},
        {Translation::responses_to_chat,
         R"({"model":"m","input":[{"type":"local_shell_call","call_id":"c"}]})", "input[].type"},
        {Translation::responses_to_chat,
         R"({"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})",
         "input[].content[].type"},
        {Translation::responses_to_chat,
         R"({"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]})",
         "input[].content[].file_id"},
        {Translation::responses_to_chat,
         R"({"model":"m","input":"x","tool_choice":{"type":"web_search_preview"}})",
         "tool_choice.type"},
    };
    for (const Refused& refused : cases) {
        const std::string body = padded(refused.body);
        std::string out;
        std::string error;
        std::string param;
        EXPECT_FALSE(translate_request(refused.translation, view_of(body), {"m", 100, true}, out,
                                       error, param))
            << refused.body;
        EXPECT_EQ(param, refused.param) << refused.body;
        EXPECT_NE(error.find(refused.param), std::string::npos) << error;
    }
}

TEST(TranslateRequest, NeutralValuesAndNullsAreAccepted) {
    const std::string body = padded(
        R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":1,"logprobs":false,)"
        R"("presence_penalty":0,"frequency_penalty":0,"store":false,"tools":null,"seed":null})");
    std::string out;
    std::string error;
    std::string param;
    ASSERT_TRUE(translate_request(Translation::chat_to_messages, view_of(body),
                                  {"claude", 77, false}, out, error, param))
        << error;
    EXPECT_EQ(out, R"({"model":"claude","max_tokens":77,"messages":[{"role":"user","content":)"
                   R"([{"type":"text","text":"x"}]}]})");
}

TEST(TranslateMaxTokens, RulesMatchExactNamesThenPrefixesInOrder) {
    MaxTokensDefaults defaults;
    std::string error;
    ASSERT_TRUE(max_tokens_defaults_parse("claude-opus-4=32000,claude-*=8192", defaults, error));
    EXPECT_EQ(max_tokens_default(defaults, "claude-opus-4"), 32000u);
    EXPECT_EQ(max_tokens_default(defaults, "claude-haiku"), 8192u);
    EXPECT_EQ(max_tokens_default(defaults, "other"), translate_max_tokens_fallback);
    EXPECT_FALSE(max_tokens_defaults_parse("claude=abc", defaults, error));
    EXPECT_FALSE(max_tokens_defaults_parse("=5", defaults, error));
    EXPECT_FALSE(max_tokens_defaults_parse("x=0", defaults, error));
}

TEST(TranslateStream, LinesLongerThanTheLimitFailTheStream) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 32 << 20);
    StreamTranslator* translator =
        stream_translator_create(arena, Translation::messages_to_chat, false, "m", 0);
    ASSERT_NE(translator, nullptr);
    std::string out;
    const std::string long_line = "data: " + std::string(translate_line_bytes_max, 'x');
    EXPECT_FALSE(stream_translate_feed(arena, *translator, long_line, out));
    arena.release();
}

}  // namespace
}  // namespace rw
