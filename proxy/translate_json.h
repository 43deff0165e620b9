// proxy/translate_json.h — what the translators share: the thread's simdjson DOM parser and
// a few writers appending JSON to a std::string. Internal to translate_*.cc.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/text.h"

namespace rw {

// The shard thread's DOM parser for translated documents (grows to the largest one seen).
[[nodiscard]] simdjson::dom::parser& translate_dom_parser();

// Parses padded (json_padding_bytes readable after it) into an element; false if not JSON.
[[nodiscard]] bool translate_parse(std::string_view padded, simdjson::dom::element& out);

// Why a request is refused: the 400's message ("`field`: why") and param (the field).
struct Refusal {
    std::string& error;
    std::string& param;

    bool operator()(std::string_view field, std::string_view why) {
        param.assign(field);
        error.assign(1, '`');
        error.append(field);
        error.append("`: ");
        error.append(why);
        return false;
    }
};

inline bool is_null(simdjson::dom::element value) {
    return value.type() == simdjson::dom::element_type::NULL_VALUE;
}

// A second parser, for documents inside strings (tool-call arguments) while the body's
// elements are still in use.
inline bool parse_nested(std::string_view text, std::string& padded, simdjson::dom::element& out) {
    thread_local simdjson::dom::parser nested;
    padded.assign(text);
    padded.append(simdjson::SIMDJSON_PADDING, '\0');
    return nested.parse(padded.data(), text.size(), false).get(out) == simdjson::SUCCESS;
}

inline void json_str(std::string& out, std::string_view text) {
    json_escape_append(out, text);
}

inline void json_u64(std::string& out, uint64_t value) {
    out += std::to_string(value);
}

// "key": with a leading comma when out's last byte opens nothing.
inline void json_key(std::string& out, std::string_view key) {
    if (!out.empty() && out.back() != '{' && out.back() != '[') {
        out += ',';
    }
    json_escape_append(out, key);
    out += ':';
}

// A value re-serialized (objects and arrays carried over as they are, minified).
inline void json_raw(std::string& out, simdjson::dom::element element) {
    out += simdjson::minify(element);
}

// The string member key of object, or empty.
template <class Node>
inline std::string_view json_get_string(Node object, std::string_view key) {
    std::string_view value;
    if (object[key].get_string().get(value) != simdjson::SUCCESS) {
        return {};
    }
    return value;
}

// The unsigned member key of object, or 0.
template <class Node>
inline uint64_t json_get_u64(Node object, std::string_view key) {
    uint64_t value = 0;
    if (object[key].get_uint64().get(value) != simdjson::SUCCESS) {
        return 0;
    }
    return value;
}

// One entry of a Chat assistant message's tool_calls, appended to `calls` (comma-separated):
// {"id":..,"type":"function","function":{"name":..,"arguments":"<arguments as a string>"}}.
inline void chat_tool_call_write(std::string& calls, std::string_view id, std::string_view name,
                                 std::string_view arguments) {
    calls += calls.empty() ? "{" : ",{";
    calls += "\"id\":";
    json_str(calls, id);
    calls += ",\"type\":\"function\",\"function\":{\"name\":";
    json_str(calls, name);
    calls += ",\"arguments\":";
    json_str(calls, arguments);
    calls += "}}";
}

// A Chat assistant message appended to `messages` (comma-separated): its text, or null
// content when it has only tool calls, and the tool_calls entries (chat_tool_call_write).
inline void chat_assistant_message_write(std::string& messages, std::string_view text,
                                         std::string_view calls) {
    messages += messages.empty() ? "{" : ",{";
    messages += "\"role\":\"assistant\",\"content\":";
    if (text.empty() && !calls.empty()) {
        messages += "null";
    } else {
        json_str(messages, text);
    }
    if (!calls.empty()) {
        messages += ",\"tool_calls\":[";
        messages += calls;
        messages += ']';
    }
    messages += '}';
}

// Chat Completions' "tools" member from a request's `tools` array: a tool that
// `is_function(tool)` lets through (false: it called `refuse`) becomes
// {"type":"function","function":{"name":..,"description":.., ...}}, where
// `members(tool, out)` appends the rest (the schema, ...) with a leading comma.
template <class IsFunction, class Members>
bool chat_tools_write(simdjson::dom::element tools, std::string& out, Refusal& refuse,
                      IsFunction is_function, Members members) {
    simdjson::dom::array list;
    if (tools.get_array().get(list) != simdjson::SUCCESS) {
        return refuse("tools", "must be an array");
    }
    json_key(out, "tools");
    out += '[';
    bool is_first = true;
    for (simdjson::dom::element tool : list) {
        if (!is_function(tool)) {
            return false;
        }
        out += is_first ? "{" : ",{";
        is_first = false;
        out += "\"type\":\"function\",\"function\":{\"name\":";
        json_str(out, json_get_string(tool, "name"));
        const std::string_view description = json_get_string(tool, "description");
        if (!description.empty()) {
            out += ",\"description\":";
            json_str(out, description);
        }
        members(tool, out);
        out += "}}";
    }
    out += ']';
    return true;
}

}  // namespace rw
