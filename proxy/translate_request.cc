// proxy/translate_request.cc — request bodies, Chat Completions ⇄ Messages (see translate.h).
// Every top-level member and every message member is either carried over, checked to be
// neutral (n: 1, logprobs: false, …) or refused by name.
#include <cstring>
#include <utility>
#include <vector>

#include "proxy/translate.h"
#include "proxy/translate_json.h"
#include "proxy/translate_responses.h"

namespace rw {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

simdjson::dom::parser& translate_dom_parser() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

bool translate_parse(std::string_view padded, element& out) {
    return translate_dom_parser().parse(padded.data(), padded.size(), false).get(out) ==
           simdjson::SUCCESS;
}

namespace {

// ---- Chat → Messages ----------------------------------------------------------------------

struct Turn {
    bool is_user;
    std::string blocks;  // Content blocks, comma-separated.
};

void turn_add(std::vector<Turn>& turns, bool is_user, const std::string& block) {
    if (turns.empty() || turns.back().is_user != is_user) {
        turns.push_back({is_user, {}});
    }
    std::string& blocks = turns.back().blocks;
    if (!blocks.empty()) {
        blocks += ',';
    }
    blocks += block;
}

std::string text_block(std::string_view text) {
    std::string block = "{\"type\":\"text\",\"text\":";
    json_str(block, text);
    block += '}';
    return block;
}

// An image_url part as an Anthropic image block (a data: URL becomes a base64 source).
bool image_block(element part, std::string& block, Refusal& refuse) {
    std::string_view url;
    if (part["image_url"]["url"].get_string().get(url) != simdjson::SUCCESS) {
        return refuse("image_url.url", "must be a string");
    }
    if (url.starts_with("data:")) {
        const size_t marker = url.find(";base64,");
        if (marker == std::string_view::npos) {
            return refuse("image_url.url", "a data URL must be base64");
        }
        block = "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":";
        json_str(block, url.substr(5, marker - 5));
        block += ",\"data\":";
        json_str(block, url.substr(marker + 8));
        block += "}}";
        return true;
    }
    block = "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":";
    json_str(block, url);
    block += "}}";
    return true;
}

// A message's content (string, parts or null) as blocks; only text parts when !allow_images.
bool content_blocks(element content, bool allow_images, std::vector<std::string>& blocks,
                    Refusal& refuse) {
    std::string_view text;
    if (content.get_string().get(text) == simdjson::SUCCESS) {
        if (!text.empty()) {
            blocks.push_back(text_block(text));
        }
        return true;
    }
    if (is_null(content)) {
        return true;
    }
    array parts;
    if (content.get_array().get(parts) != simdjson::SUCCESS) {
        return refuse("messages[].content", "must be a string or an array of parts");
    }
    for (element part : parts) {
        const std::string_view type = part.is_object() ? json_get_string(part, "type") : "";
        if (type == "text") {
            const std::string_view part_text = json_get_string(part, "text");
            if (!part_text.empty()) {
                blocks.push_back(text_block(part_text));
            }
        } else if (type == "image_url" && allow_images) {
            std::string block;
            if (!image_block(part, block, refuse)) {
                return false;
            }
            blocks.push_back(std::move(block));
        } else {
            return refuse("messages[].content[].type",
                          "this content part has no Anthropic Messages equivalent");
        }
    }
    return true;
}

bool tool_use_blocks(element calls, std::vector<Turn>& turns, Refusal& refuse) {
    array list;
    if (calls.get_array().get(list) != simdjson::SUCCESS) {
        return refuse("messages[].tool_calls", "must be an array");
    }
    std::string padded;
    for (element call : list) {
        std::string_view id;
        std::string_view name;
        std::string_view arguments;
        if (call["id"].get_string().get(id) != simdjson::SUCCESS ||
            call["function"]["name"].get_string().get(name) != simdjson::SUCCESS) {
            return refuse("messages[].tool_calls", "each call needs an id and a function name");
        }
        if (call["function"]["arguments"].get_string().get(arguments) != simdjson::SUCCESS) {
            arguments = "{}";
        }
        element input;
        if (arguments.empty()) {
            arguments = "{}";
        }
        if (!parse_nested(arguments, padded, input) || !input.is_object()) {
            return refuse("messages[].tool_calls[].function.arguments", "must be a JSON object");
        }
        std::string block = "{\"type\":\"tool_use\",\"id\":";
        json_str(block, id);
        block += ",\"name\":";
        json_str(block, name);
        block += ",\"input\":";
        json_raw(block, input);
        block += '}';
        turn_add(turns, false, block);
    }
    return true;
}

bool chat_message(object message, std::vector<Turn>& turns, std::string& system, Refusal& refuse) {
    const std::string_view role = json_get_string(message, "role");
    for (auto [key, value] : message) {
        const bool is_known = key == "role" || key == "content" ||
                              (role == "assistant" && (key == "tool_calls" || key == "refusal")) ||
                              (role == "tool" && key == "tool_call_id");
        if (!is_known && !is_null(value)) {
            return refuse(std::string("messages[].") + std::string(key),
                          "not translated to Anthropic Messages");
        }
    }
    std::vector<std::string> blocks;
    element content;
    const bool has_content = message["content"].get(content) == simdjson::SUCCESS;
    if (role == "system" || role == "developer") {
        if (has_content && !content_blocks(content, false, blocks, refuse)) {
            return false;
        }
        for (const std::string& block : blocks) {
            system += system.empty() ? "" : ",";
            system += block;
        }
        return true;
    }
    if (role == "user" || role == "assistant") {
        if (has_content && !content_blocks(content, role == "user", blocks, refuse)) {
            return false;
        }
        for (const std::string& block : blocks) {
            turn_add(turns, role == "user", block);
        }
        element calls;
        if (role == "assistant" && message["tool_calls"].get(calls) == simdjson::SUCCESS &&
            !is_null(calls) && !tool_use_blocks(calls, turns, refuse)) {
            return false;
        }
        return true;
    }
    if (role == "tool") {
        const std::string_view call_id = json_get_string(message, "tool_call_id");
        if (call_id.empty()) {
            return refuse("messages[].tool_call_id", "required on a tool message");
        }
        if (has_content && !content_blocks(content, false, blocks, refuse)) {
            return false;
        }
        std::string block = "{\"type\":\"tool_result\",\"tool_use_id\":";
        json_str(block, call_id);
        block += ",\"content\":[";
        for (size_t i = 0; i < blocks.size(); i++) {
            block += i == 0 ? "" : ",";
            block += blocks[i];
        }
        block += "]}";
        turn_add(turns, true, block);
        return true;
    }
    return refuse("messages[].role", "must be system, developer, user, assistant or tool");
}

bool chat_tools(element tools, std::string& out, Refusal& refuse) {
    array list;
    if (tools.get_array().get(list) != simdjson::SUCCESS) {
        return refuse("tools", "must be an array");
    }
    json_key(out, "tools");
    out += '[';
    bool is_first = true;
    for (element tool : list) {
        object function;
        if (!tool.is_object() || json_get_string(tool, "type") != "function" ||
            tool["function"].get_object().get(function) != simdjson::SUCCESS) {
            return refuse("tools[].type", "only function tools are translated");
        }
        out += is_first ? "{" : ",{";
        is_first = false;
        json_key(out, "name");
        json_str(out, json_get_string(function, "name"));
        const std::string_view description = json_get_string(function, "description");
        if (!description.empty()) {
            json_key(out, "description");
            json_str(out, description);
        }
        json_key(out, "input_schema");
        element parameters;
        if (function["parameters"].get(parameters) == simdjson::SUCCESS && parameters.is_object()) {
            json_raw(out, parameters);
        } else {
            out += "{\"type\":\"object\",\"properties\":{}}";
        }
        out += '}';
    }
    out += ']';
    return true;
}

bool chat_tool_choice(element choice, bool disable_parallel, std::string& out, Refusal& refuse) {
    std::string_view text;
    std::string name;
    std::string type;
    if (choice.get_string().get(text) == simdjson::SUCCESS) {
        if (text == "auto" || text == "none") {
            type = text;
        } else if (text == "required") {
            type = "any";
        } else {
            return refuse("tool_choice", "must be auto, none, required or a function");
        }
    } else if (choice.is_object() && json_get_string(choice, "type") == "function") {
        std::string_view function_name;
        if (choice["function"]["name"].get_string().get(function_name) != simdjson::SUCCESS) {
            return refuse("tool_choice.function.name", "required");
        }
        type = "tool";
        name = function_name;
    } else {
        return refuse("tool_choice", "must be auto, none, required or a function");
    }
    json_key(out, "tool_choice");
    out += "{\"type\":";
    json_str(out, type);
    if (!name.empty()) {
        out += ",\"name\":";
        json_str(out, name);
    }
    if (disable_parallel && type != "none") {
        out += ",\"disable_parallel_tool_use\":true";
    }
    out += '}';
    return true;
}

// Members that are accepted only with their neutral value.
bool chat_neutral(std::string_view key, element value) {
    if (is_null(value)) {
        return true;
    }
    bool flag = false;
    double number = 0;
    uint64_t count = 0;
    std::string_view text;
    if (key == "n") {
        return value.get_uint64().get(count) == simdjson::SUCCESS && count == 1;
    }
    if (key == "logprobs" || key == "store") {
        return value.get_bool().get(flag) == simdjson::SUCCESS && !flag;
    }
    if (key == "presence_penalty" || key == "frequency_penalty") {
        return value.get_double().get(number) == simdjson::SUCCESS && number == 0;
    }
    if (key == "service_tier") {
        return value.get_string().get(text) == simdjson::SUCCESS && text == "auto";
    }
    return false;
}

uint64_t thinking_budget(std::string_view effort) {
    return effort == "low" ? 1024 : effort == "medium" ? 4096 : effort == "high" ? 16384 : 0;
}

// What chat_member gathers for the members written after the loop.
struct ChatState {
    std::vector<Turn> turns;
    std::string system;
    uint64_t max_tokens;
    uint64_t budget = 0;
    bool disable_parallel = false;
    bool has_tool_choice = false;
    element tool_choice;
};

bool chat_member(std::string_view key, element value, ChatState& state, std::string& out,
                 Refusal& refuse) {
    if (key == "messages") {
        array messages;
        if (value.get_array().get(messages) != simdjson::SUCCESS) {
            return refuse("messages", "must be an array");
        }
        for (element message : messages) {
            if (!message.is_object()) {
                return refuse("messages[]", "must be objects");
            }
            if (!chat_message(message.get_object().value_unsafe(), state.turns, state.system,
                              refuse)) {
                return false;
            }
        }
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
        if (value.get_uint64().get(state.max_tokens) != simdjson::SUCCESS) {
            return refuse(key, "must be a non-negative integer");
        }
    } else if (key == "stream" || key == "temperature" || key == "top_p") {
        json_key(out, key);
        json_raw(out, value);
    } else if (key == "stop") {
        std::string_view one;
        json_key(out, "stop_sequences");
        if (value.get_string().get(one) == simdjson::SUCCESS) {
            out += '[';
            json_str(out, one);
            out += ']';
        } else if (value.is_array()) {
            json_raw(out, value);
        } else {
            return refuse("stop", "must be a string or an array of strings");
        }
    } else if (key == "tools") {
        return chat_tools(value, out, refuse);
    } else if (key == "tool_choice") {
        state.tool_choice = value;
        state.has_tool_choice = true;
    } else if (key == "parallel_tool_calls") {
        bool parallel = true;
        if (value.get_bool().get(parallel) != simdjson::SUCCESS) {
            return refuse(key, "must be a boolean");
        }
        state.disable_parallel = !parallel;
    } else if (key == "user") {
        std::string_view user;
        if (value.get_string().get(user) != simdjson::SUCCESS) {
            return refuse(key, "must be a string");
        }
        json_key(out, "metadata");
        out += "{\"user_id\":";
        json_str(out, user);
        out += '}';
    } else if (key == "reasoning_effort") {
        std::string_view effort;
        if (value.get_string().get(effort) != simdjson::SUCCESS ||
            (thinking_budget(effort) == 0 && effort != "minimal")) {
            return refuse(key, "must be minimal, low, medium or high");
        }
        state.budget = thinking_budget(effort);
    } else if (!chat_neutral(key, value)) {
        return refuse(key, "not supported when an OpenAI client reaches an Anthropic model");
    }
    return true;
}

bool is_skipped_chat_member(std::string_view key, element value) {
    if (key == "model" || key == "stream_options") {
        return true;
    }
    return (key == "temperature" || key == "top_p" || key == "stop" || key == "tools" ||
            key == "tool_choice" || key == "user" || key == "max_tokens" ||
            key == "max_completion_tokens" || key == "reasoning_effort" ||
            key == "parallel_tool_calls") &&
           is_null(value);
}

bool chat_to_messages(object root, const TranslateRequestOptions& options, std::string& out,
                      Refusal& refuse) {
    ChatState state;
    state.max_tokens = options.max_tokens_default;
    out = "{";
    json_key(out, "model");
    json_str(out, options.model);
    for (auto [key, value] : root) {
        if (!is_skipped_chat_member(key, value) && !chat_member(key, value, state, out, refuse)) {
            return false;
        }
    }
    if (state.has_tool_choice) {
        if (!chat_tool_choice(state.tool_choice, state.disable_parallel, out, refuse)) {
            return false;
        }
    } else if (state.disable_parallel) {
        json_key(out, "tool_choice");
        out += "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}";
    }
    uint64_t max_tokens = state.max_tokens;
    if (state.budget > 0) {
        max_tokens = max_tokens <= state.budget ? max_tokens + state.budget : max_tokens;
        json_key(out, "thinking");
        out += "{\"type\":\"enabled\",\"budget_tokens\":";
        json_u64(out, state.budget);
        out += '}';
    }
    json_key(out, "max_tokens");
    json_u64(out, max_tokens);
    if (!state.system.empty()) {
        json_key(out, "system");
        out += '[' + state.system + ']';
    }
    json_key(out, "messages");
    out += '[';
    for (size_t i = 0; i < state.turns.size(); i++) {
        out += i == 0 ? "{\"role\":" : ",{\"role\":";
        out += state.turns[i].is_user ? "\"user\"" : "\"assistant\"";
        out += ",\"content\":[" + state.turns[i].blocks + "]}";
    }
    out += "]}";
    return true;
}

// ---- Messages → Chat ----------------------------------------------------------------------

// Text of a string or an array of text blocks (joined by blank lines); false otherwise.
bool blocks_text(element content, std::string& text, std::string_view field, Refusal& refuse) {
    std::string_view one;
    if (content.get_string().get(one) == simdjson::SUCCESS) {
        text.assign(one);
        return true;
    }
    array blocks;
    if (content.get_array().get(blocks) != simdjson::SUCCESS) {
        return refuse(field, "must be a string or an array of text blocks");
    }
    for (element block : blocks) {
        if (!block.is_object() || json_get_string(block, "type") != "text") {
            return refuse(field, "only text blocks are translated here");
        }
        text += text.empty() ? "" : "\n\n";
        text += json_get_string(block, "text");
    }
    return true;
}

void image_part(object source, std::string& parts) {
    parts += parts.empty() ? "" : ",";
    parts += "{\"type\":\"image_url\",\"image_url\":{\"url\":";
    if (json_get_string(source, "type") == "url") {
        json_str(parts, json_get_string(source, "url"));
    } else {
        std::string url = "data:";
        url += json_get_string(source, "media_type");
        url += ";base64,";
        url += json_get_string(source, "data");
        json_str(parts, url);
    }
    parts += "}}";
}

bool user_message(element content, std::string& messages, Refusal& refuse) {
    std::string_view text;
    if (content.get_string().get(text) == simdjson::SUCCESS) {
        messages += messages.empty() ? "{" : ",{";
        messages += "\"role\":\"user\",\"content\":";
        json_str(messages, text);
        messages += '}';
        return true;
    }
    array blocks;
    if (content.get_array().get(blocks) != simdjson::SUCCESS) {
        return refuse("messages[].content", "must be a string or an array of blocks");
    }
    std::string parts;
    for (element block : blocks) {
        const std::string_view type = block.is_object() ? json_get_string(block, "type") : "";
        object source;
        if (type == "tool_result") {
            std::string result;
            element result_content;
            if (block["content"].get(result_content) == simdjson::SUCCESS &&
                !blocks_text(result_content, result, "messages[].content[].content", refuse)) {
                return false;
            }
            bool is_error = false;
            if (block["is_error"].get_bool().get(is_error) == simdjson::SUCCESS && is_error) {
                result.insert(0, "[tool error] ");
            }
            messages += messages.empty() ? "{" : ",{";
            messages += "\"role\":\"tool\",\"tool_call_id\":";
            json_str(messages, json_get_string(block, "tool_use_id"));
            messages += ",\"content\":";
            json_str(messages, result);
            messages += '}';
        } else if (type == "text") {
            parts += parts.empty() ? "" : ",";
            parts += "{\"type\":\"text\",\"text\":";
            json_str(parts, json_get_string(block, "text"));
            parts += '}';
        } else if (type == "image" &&
                   block["source"].get_object().get(source) == simdjson::SUCCESS) {
            image_part(source, parts);
        } else {
            return refuse("messages[].content[].type",
                          "this block has no Chat Completions equivalent");
        }
    }
    if (!parts.empty()) {
        messages += messages.empty() ? "{" : ",{";
        messages += "\"role\":\"user\",\"content\":[" + parts + "]}";
    }
    return true;
}

bool assistant_message(element content, std::string& messages, Refusal& refuse) {
    std::string text;
    std::string calls;
    std::string_view one;
    array blocks;
    if (content.get_string().get(one) == simdjson::SUCCESS) {
        text.assign(one);
    } else if (content.get_array().get(blocks) == simdjson::SUCCESS) {
        for (element block : blocks) {
            const std::string_view type = block.is_object() ? json_get_string(block, "type") : "";
            element input;
            if (type == "text") {
                text += json_get_string(block, "text");
            } else if (type == "tool_use" && block["input"].get(input) == simdjson::SUCCESS) {
                chat_tool_call_write(calls, json_get_string(block, "id"),
                                     json_get_string(block, "name"), simdjson::minify(input));
            } else if (type != "thinking" && type != "redacted_thinking") {
                return refuse("messages[].content[].type",
                              "this block has no Chat Completions equivalent");
            }
        }
    } else {
        return refuse("messages[].content", "must be a string or an array of blocks");
    }
    chat_assistant_message_write(messages, text, calls);
    return true;
}

// A system message inside the conversation (Claude Code sends them): a Chat system message.
bool system_message(element content, std::string& messages, Refusal& refuse) {
    std::string text;
    if (!blocks_text(content, text, "messages[].content", refuse)) {
        return false;
    }
    messages += messages.empty() ? "{" : ",{";
    messages += "\"role\":\"system\",\"content\":";
    json_str(messages, text);
    messages += '}';
    return true;
}

// context_management edits that clear thinking change nothing on a Chat upstream (thinking
// is never sent to one); any other edit needs Anthropic's server-side context editing.
bool context_management_neutral(element value) {
    array edits;
    if (value["edits"].get_array().get(edits) != simdjson::SUCCESS) {
        return false;
    }
    for (element edit : edits) {
        if (!edit.is_object() || !json_get_string(edit, "type").starts_with("clear_thinking_")) {
            return false;
        }
    }
    return true;
}

// Anthropic's custom tools (type absent or "custom") as Chat functions; server tools
// are refused.
bool messages_tools(element tools, std::string& out, Refusal& refuse) {
    const auto is_function = [&refuse](element tool) {
        const std::string_view type = tool.is_object() ? json_get_string(tool, "type") : "x";
        return type.empty() || type == "custom" ||
               refuse("tools[].type", "server tools are not translated to Chat Completions");
    };
    const auto schema = [](element tool, std::string& function) {
        element input_schema;
        if (tool["input_schema"].get(input_schema) == simdjson::SUCCESS) {
            function += ",\"parameters\":";
            json_raw(function, input_schema);
        }
    };
    return chat_tools_write(tools, out, refuse, is_function, schema);
}

bool messages_tool_choice(object choice, std::string& out, Refusal& refuse) {
    const std::string_view type = json_get_string(choice, "type");
    json_key(out, "tool_choice");
    if (type == "auto" || type == "none") {
        json_str(out, type);
    } else if (type == "any") {
        out += "\"required\"";
    } else if (type == "tool") {
        out += "{\"type\":\"function\",\"function\":{\"name\":";
        json_str(out, json_get_string(choice, "name"));
        out += "}}";
    } else {
        return refuse("tool_choice.type", "must be auto, any, tool or none");
    }
    bool disable = false;
    if (choice["disable_parallel_tool_use"].get_bool().get(disable) == simdjson::SUCCESS &&
        disable) {
        json_key(out, "parallel_tool_calls");
        out += "false";
    }
    return true;
}

// thinking, output_config and context_management: the reasoning a Chat upstream gets.
bool messages_reasoning_member(std::string_view key, element value, std::string_view effort,
                               std::string& out, Refusal& refuse) {
    if (key == "thinking") {
        const std::string_view type = value.is_object() ? json_get_string(value, "type") : "";
        const uint64_t budget = value.is_object() ? json_get_u64(value, "budget_tokens") : 0;
        if (type == "enabled" && effort.empty()) {
            json_key(out, "reasoning_effort");
            out += budget < 4096 ? "\"low\"" : budget < 16384 ? "\"medium\"" : "\"high\"";
        } else if (type != "enabled" && type != "disabled" && type != "adaptive") {
            return refuse("thinking.type", "must be enabled, adaptive or disabled");
        }
    } else if (key == "output_config") {
        object config;
        if (value.get_object().get(config) == simdjson::SUCCESS) {
            for (auto [member, member_value] : config) {
                if (member != "effort" && !is_null(member_value)) {
                    return refuse("output_config", "only effort is translated to Chat Completions");
                }
            }
        }
        if (!effort.empty()) {
            json_key(out, "reasoning_effort");
            json_str(out, effort == "max" ? std::string_view("high") : effort);
        }
    } else if (key == "context_management") {
        if (!is_null(value) && !context_management_neutral(value)) {
            return refuse(key,
                          "only clear_thinking edits are accepted (thinking never reaches "
                          "a Chat Completions upstream)");
        }
    }
    return true;
}

// effort: output_config.effort (read first), which wins over a thinking budget's effort.
bool messages_member(std::string_view key, element value, const TranslateRequestOptions& options,
                     std::string_view effort, std::string& out, std::string& messages,
                     Refusal& refuse) {
    if (key == "messages") {
        array list;
        if (value.get_array().get(list) != simdjson::SUCCESS) {
            return refuse("messages", "must be an array");
        }
        for (element message : list) {
            element content;
            const std::string_view role =
                message.is_object() ? json_get_string(message, "role") : "";
            if (message["content"].get(content) != simdjson::SUCCESS) {
                return refuse("messages[].content", "required");
            }
            const bool is_ok = role == "user"        ? user_message(content, messages, refuse)
                               : role == "assistant" ? assistant_message(content, messages, refuse)
                               : role == "system"
                                   ? system_message(content, messages, refuse)
                                   : refuse("messages[].role", "must be user, assistant or system");
            if (!is_ok) {
                return false;
            }
        }
    } else if (key == "stream") {
        bool stream = false;
        json_key(out, key);
        json_raw(out, value);
        if (value.get_bool().get(stream) == simdjson::SUCCESS && stream &&
            options.include_usage_upstream) {
            json_key(out, "stream_options");
            out += "{\"include_usage\":true}";
        }
    } else if (key == "max_tokens" || key == "temperature" || key == "top_p") {
        json_key(out, key);
        json_raw(out, value);
    } else if (key == "stop_sequences") {
        json_key(out, "stop");
        json_raw(out, value);
    } else if (key == "tools") {
        return messages_tools(value, out, refuse);
    } else if (key == "tool_choice") {
        return value.is_object()
                   ? messages_tool_choice(value.get_object().value_unsafe(), out, refuse)
                   : refuse(key, "must be an object");
    } else if (key == "metadata") {
        const std::string_view user = value.is_object() ? json_get_string(value, "user_id") : "";
        if (!user.empty()) {
            json_key(out, "user");
            json_str(out, user);
        }
    } else if (key == "thinking" || key == "output_config" || key == "context_management") {
        return messages_reasoning_member(key, value, effort, out, refuse);
    } else if (key != "model" && key != "system" && !is_null(value)) {
        return refuse(key, "not supported when an Anthropic client reaches an OpenAI model");
    }
    return true;
}

bool messages_to_chat(object root, const TranslateRequestOptions& options, std::string& out,
                      Refusal& refuse) {
    std::string messages;
    element system;
    if (root["system"].get(system) == simdjson::SUCCESS && !is_null(system)) {
        std::string text;
        if (!blocks_text(system, text, "system", refuse)) {
            return false;
        }
        messages = "{\"role\":\"system\",\"content\":";
        json_str(messages, text);
        messages += '}';
    }
    out = "{";
    json_key(out, "model");
    json_str(out, options.model);
    std::string_view effort;
    object output_config;
    if (root["output_config"].get_object().get(output_config) == simdjson::SUCCESS) {
        effort = json_get_string(output_config, "effort");
        if (!effort.empty() && effort != "low" && effort != "medium" && effort != "high" &&
            effort != "max") {
            return refuse("output_config.effort", "must be low, medium, high or max");
        }
    } else if (root["output_config"].get(system) == simdjson::SUCCESS && !is_null(system)) {
        return refuse("output_config", "must be an object");
    }
    for (auto [key, value] : root) {
        if (!messages_member(key, value, options, effort, out, messages, refuse)) {
            return false;
        }
    }
    json_key(out, "messages");
    out += '[' + messages + "]}";
    return true;
}

}  // namespace

bool translate_request(Translation translation, std::string_view padded_body,
                       const TranslateRequestOptions& options, std::string& out, std::string& error,
                       std::string& param) {
    Refusal refuse{error, param};
    element root;
    object object_root;
    if (!translate_parse(padded_body, root) ||
        root.get_object().get(object_root) != simdjson::SUCCESS) {
        return refuse("body", "not a JSON object");
    }
    out.clear();
    if (translation == Translation::chat_to_messages) {
        return chat_to_messages(object_root, options, out, refuse);
    }
    if (translation == Translation::responses_to_chat) {
        return responses_request_to_chat(object_root, options, out, refuse);
    }
    return messages_to_chat(object_root, options, out, refuse);
}

bool max_tokens_defaults_parse(std::string_view text, MaxTokensDefaults& out, std::string& error) {
    out.count = 0;
    while (!text.empty()) {
        const size_t end = std::min(text.find(','), text.size());
        const std::string_view entry = text.substr(0, end);
        text.remove_prefix(std::min(end + 1, text.size()));
        const size_t equals = entry.find('=');
        uint64_t value = 0;
        if (equals == std::string_view::npos || equals == 0 ||
            !parse_decimal(entry.substr(equals + 1), UINT32_MAX, value) || value == 0) {
            error = "RINGWAY_ANTHROPIC_MAX_TOKENS: expected pattern=N[,pattern=N…], got \"" +
                    std::string(entry) + "\"";
            return false;
        }
        std::string_view pattern = entry.substr(0, equals);
        if (out.count == translate_max_tokens_rules_max ||
            pattern.size() >= sizeof(MaxTokensRule::pattern)) {
            error = "RINGWAY_ANTHROPIC_MAX_TOKENS: at most 16 rules of 63 bytes";
            return false;
        }
        MaxTokensRule& rule = out.rules[out.count++];
        rule.is_prefix = pattern.ends_with('*');
        if (rule.is_prefix) {
            pattern.remove_suffix(1);
        }
        std::memcpy(rule.pattern, pattern.data(), pattern.size());
        rule.pattern_bytes = static_cast<uint32_t>(pattern.size());
        rule.max_tokens = value;
    }
    return true;
}

uint64_t max_tokens_default(const MaxTokensDefaults& defaults, std::string_view model) {
    for (uint32_t i = 0; i < defaults.count; i++) {
        const MaxTokensRule& rule = defaults.rules[i];
        const std::string_view pattern(rule.pattern, rule.pattern_bytes);
        if (rule.is_prefix ? model.starts_with(pattern) : model == pattern) {
            return rule.max_tokens;
        }
    }
    return translate_max_tokens_fallback;
}

std::string_view translate_upstream_path(Translation translation) {
    return translation == Translation::chat_to_messages ? "/v1/messages" : "/v1/chat/completions";
}

UsageFormat translate_upstream_format(Translation translation) {
    return translation == Translation::chat_to_messages ? UsageFormat::anthropic_messages
                                                        : UsageFormat::chat;
}

}  // namespace rw
