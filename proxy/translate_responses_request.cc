// proxy/translate_responses_request.cc — a Responses API request as a Chat Completions one
// (see translate_responses.h). `instructions` and the `input` items become messages
// (consecutive function_call items one assistant message with tool_calls, each
// function_call_output a tool message), function tools become Chat's, the sampling and
// limit members are renamed; every other member is checked to be neutral (store: false,
// previous_response_id: null, …) or refused by name.
#include "proxy/translate_responses.h"

namespace rw {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

namespace {

// The Chat messages being built; an assistant message is held open so that the
// function_call items after it join its tool_calls.
struct ChatMessages {
    std::string list;  // Finished messages, comma-separated.
    bool has_assistant = false;
    std::string assistant_text;
    std::string assistant_calls;  // tool_calls entries, comma-separated.

    void add(const std::string& message) {
        flush();
        list += list.empty() ? "" : ",";
        list += message;
    }

    void flush() {
        if (!has_assistant) {
            return;
        }
        has_assistant = false;
        chat_assistant_message_write(list, assistant_text, assistant_calls);
        assistant_text.clear();
        assistant_calls.clear();
    }
};

std::string text_message(std::string_view role, std::string_view text) {
    std::string message = "{\"role\":";
    json_str(message, role);
    message += ",\"content\":";
    json_str(message, text);
    message += '}';
    return message;
}

// An input_image part as Chat's image_url part (a file_id has no Chat equivalent).
bool image_part(element part, std::string& parts, Refusal& refuse) {
    std::string_view url;
    if (part["image_url"].get_string().get(url) != simdjson::SUCCESS) {
        return refuse("input[].content[].file_id",
                      "only images given by image_url are translated to Chat Completions");
    }
    parts += parts.empty() ? "" : ",";
    parts += "{\"type\":\"image_url\",\"image_url\":{\"url\":";
    json_str(parts, url);
    const std::string_view detail = json_get_string(part, "detail");
    if (!detail.empty()) {
        parts += ",\"detail\":";
        json_str(parts, detail);
    }
    parts += "}}";
    return true;
}

// A message's content (a string or parts): text parts joined into text; images only where
// parts is given (user messages), as Chat parts.
bool message_content(element content, std::string& text, std::string* parts, Refusal& refuse) {
    std::string_view one;
    if (content.get_string().get(one) == simdjson::SUCCESS) {
        text.assign(one);
        return true;
    }
    array list;
    if (content.get_array().get(list) != simdjson::SUCCESS) {
        return refuse("input[].content", "must be a string or an array of content parts");
    }
    bool has_image = false;
    for (element part : list) {
        const std::string_view type = part.is_object() ? json_get_string(part, "type") : "";
        if (type == "input_text" || type == "output_text" || type == "text") {
            text += json_get_string(part, "text");
            if (parts != nullptr) {
                *parts += parts->empty() ? "{" : ",{";
                *parts += "\"type\":\"text\",\"text\":";
                json_str(*parts, json_get_string(part, "text"));
                *parts += '}';
            }
        } else if (type == "refusal") {
            text += json_get_string(part, "refusal");
        } else if (type == "input_image" && parts != nullptr) {
            if (!image_part(part, *parts, refuse)) {
                return false;
            }
            has_image = true;
        } else {
            return refuse("input[].content[].type",
                          "this content part has no Chat Completions equivalent here");
        }
    }
    if (parts != nullptr && !has_image) {
        parts->clear();  // Text only: the joined string is the plainer Chat form.
    }
    return true;
}

bool input_message(object item, ChatMessages& messages, Refusal& refuse) {
    const std::string_view role = json_get_string(item, "role");
    element content;
    if (item["content"].get(content) != simdjson::SUCCESS) {
        return refuse("input[].content", "required");
    }
    std::string text;
    std::string parts;
    if (role == "user") {
        if (!message_content(content, text, &parts, refuse)) {
            return false;
        }
        if (parts.empty()) {
            messages.add(text_message("user", text));
        } else {
            std::string message = "{\"role\":\"user\",\"content\":[";
            message += parts;
            message += "]}";
            messages.add(message);
        }
        return true;
    }
    if (role == "system" || role == "developer") {
        if (!message_content(content, text, nullptr, refuse)) {
            return false;
        }
        messages.add(text_message("system", text));  // Chat-only servers know "system".
        return true;
    }
    if (role != "assistant") {
        return refuse("input[].role", "must be user, assistant, system or developer");
    }
    if (!message_content(content, text, nullptr, refuse)) {
        return false;
    }
    messages.flush();
    messages.has_assistant = true;
    messages.assistant_text = text;
    return true;
}

bool function_call_item(object item, ChatMessages& messages, Refusal& refuse) {
    std::string_view arguments;
    if (item["arguments"].get_string().get(arguments) != simdjson::SUCCESS) {
        return refuse("input[].arguments", "must be a string");
    }
    messages.has_assistant = true;  // The open assistant message's, or a new one's.
    chat_tool_call_write(messages.assistant_calls, json_get_string(item, "call_id"),
                         json_get_string(item, "name"), arguments);
    return true;
}

bool function_output_item(object item, ChatMessages& messages, Refusal& refuse) {
    element output;
    if (item["output"].get(output) != simdjson::SUCCESS) {
        return refuse("input[].output", "required");
    }
    std::string text;
    if (!message_content(output, text, nullptr, refuse)) {
        return false;
    }
    std::string message = "{\"role\":\"tool\",\"tool_call_id\":";
    json_str(message, json_get_string(item, "call_id"));
    message += ",\"content\":";
    json_str(message, text);
    message += '}';
    messages.add(message);
    return true;
}

bool input_items(element input, ChatMessages& messages, Refusal& refuse) {
    std::string_view text;
    if (input.get_string().get(text) == simdjson::SUCCESS) {
        messages.add(text_message("user", text));
        return true;
    }
    array items;
    if (input.get_array().get(items) != simdjson::SUCCESS) {
        return refuse("input", "must be a string or an array of items");
    }
    for (element value : items) {
        object item;
        if (value.get_object().get(item) != simdjson::SUCCESS) {
            return refuse("input[]", "must be an object");
        }
        const std::string_view type = json_get_string(item, "type");
        bool is_ok = true;
        if (type == "message" || (type.empty() && !json_get_string(item, "role").empty())) {
            is_ok = input_message(item, messages, refuse);
        } else if (type == "function_call") {
            is_ok = function_call_item(item, messages, refuse);
        } else if (type == "function_call_output") {
            is_ok = function_output_item(item, messages, refuse);
        } else if (type == "reasoning") {
            continue;  // Chat has no input for earlier reasoning; the model reasons anew.
        } else if (type == "item_reference") {
            return refuse("input[].type",
                          "item_reference needs stored responses, which a "
                          "Chat Completions channel does not keep");
        } else {
            return refuse("input[].type",
                          "this item has no Chat Completions equivalent (only messages, "
                          "function_call and function_call_output are translated)");
        }
        if (!is_ok) {
            return false;
        }
    }
    return true;
}

// The Responses API's function tools as Chat's; built-in and grouped tools are refused.
bool function_tools(element tools, std::string& out, Refusal& refuse) {
    const auto is_function = [&refuse](element tool) {
        const std::string_view type = tool.is_object() ? json_get_string(tool, "type") : "";
        if (type == "function") {
            return true;
        }
        std::string why = "only function tools are translated to Chat Completions, not \"";
        why += type;
        why += "\" (a built-in or grouped tool of the Responses API)";
        return refuse("tools[].type", why);
    };
    return chat_tools_write(
        tools, out, refuse, is_function, [](element tool, std::string& function) {
            for (const char* name : {"parameters", "strict"}) {
                element member;
                if (tool[name].get(member) == simdjson::SUCCESS && !is_null(member)) {
                    function += ",\"";
                    function += name;
                    function += "\":";
                    json_raw(function, member);
                }
            }
        });
}

bool tool_choice(element choice, std::string& out, Refusal& refuse) {
    std::string_view mode;
    json_key(out, "tool_choice");
    if (choice.get_string().get(mode) == simdjson::SUCCESS) {
        if (mode != "auto" && mode != "none" && mode != "required") {
            return refuse("tool_choice", "must be auto, none, required or a function");
        }
        json_str(out, mode);
        return true;
    }
    if (!choice.is_object() || json_get_string(choice, "type") != "function") {
        return refuse("tool_choice.type", "only function choices are translated");
    }
    out += "{\"type\":\"function\",\"function\":{\"name\":";
    json_str(out, json_get_string(choice, "name"));
    out += "}}";
    return true;
}

// text.format → response_format, text.verbosity → verbosity.
bool text_controls(element text, std::string& out, Refusal& refuse) {
    object format;
    if (text["format"].get_object().get(format) == simdjson::SUCCESS) {
        const std::string_view type = json_get_string(format, "type");
        if (type == "json_object") {
            json_key(out, "response_format");
            out += "{\"type\":\"json_object\"}";
        } else if (type == "json_schema") {
            json_key(out, "response_format");
            out += "{\"type\":\"json_schema\",\"json_schema\":{";
            for (auto [key, value] : format) {
                if (key != "type") {
                    json_key(out, key);
                    json_raw(out, value);
                }
            }
            out += "}}";
        } else if (type != "text") {
            return refuse("text.format.type", "must be text, json_object or json_schema");
        }
    }
    element verbosity;
    if (text["verbosity"].get(verbosity) == simdjson::SUCCESS && !is_null(verbosity)) {
        json_key(out, "verbosity");
        json_raw(out, verbosity);
    }
    return true;
}

// The members a Chat channel cannot serve unless they are null or neutral.
bool neutral_member(std::string_view key, element value) {
    bool flag = false;
    std::string_view text;
    if (is_null(value)) {
        return true;
    }
    if (key == "store" || key == "background") {
        return value.get_bool().get(flag) == simdjson::SUCCESS && !flag;
    }
    if (key == "truncation") {
        return value.get_string().get(text) == simdjson::SUCCESS && text == "disabled";
    }
    if (key == "include") {
        // reasoning.encrypted_content asks for what Chat never produces: the answer's
        // reasoning items carry none (Codex asks for it on every turn).
        array list;
        if (value.get_array().get(list) != simdjson::SUCCESS) {
            return false;
        }
        for (element entry : list) {
            if (entry.get_string().get(text) != simdjson::SUCCESS ||
                text != "reasoning.encrypted_content") {
                return false;
            }
        }
        return true;
    }
    return false;
}

bool responses_member(std::string_view key, element value, const TranslateRequestOptions& options,
                      std::string& out, ChatMessages& messages, Refusal& refuse) {
    if (key == "input") {
        return input_items(value, messages, refuse);
    }
    if (key == "model" || key == "instructions" || key == "stream_options" ||
        key == "client_metadata") {
        return true;  // instructions: read first; the others are hints Chat has no place for.
    }
    if (is_null(value) && key != "stream") {
        return true;
    }
    if (key == "stream") {
        bool stream = false;
        json_key(out, key);
        json_raw(out, value);
        if (value.get_bool().get(stream) == simdjson::SUCCESS && stream &&
            options.include_usage_upstream) {
            json_key(out, "stream_options");
            out += "{\"include_usage\":true}";
        }
    } else if (key == "max_output_tokens") {
        json_key(out, "max_tokens");
        json_raw(out, value);
    } else if (key == "temperature" || key == "top_p" || key == "parallel_tool_calls" ||
               key == "user" || key == "metadata" || key == "service_tier" ||
               key == "prompt_cache_key" || key == "safety_identifier") {
        json_key(out, key);
        json_raw(out, value);
    } else if (key == "tools") {
        return function_tools(value, out, refuse);
    } else if (key == "tool_choice") {
        return tool_choice(value, out, refuse);
    } else if (key == "text") {
        return value.is_object() ? text_controls(value, out, refuse) : refuse(key, "not an object");
    } else if (key == "reasoning") {
        element effort;
        if (value.is_object() && value["effort"].get(effort) == simdjson::SUCCESS &&
            !is_null(effort)) {
            json_key(out, "reasoning_effort");
            json_raw(out, effort);
        }
    } else if (key == "previous_response_id" || key == "conversation" || key == "prompt") {
        return refuse(key,
                      "needs state kept by the Responses API, which a Chat Completions "
                      "channel does not have");
    } else if (!neutral_member(key, value)) {
        return refuse(key,
                      "not supported when a Responses client reaches a Chat Completions "
                      "channel");
    }
    return true;
}

}  // namespace

bool responses_request_to_chat(object root, const TranslateRequestOptions& options,
                               std::string& out, Refusal& refuse) {
    ChatMessages messages;
    element instructions;
    if (root["instructions"].get(instructions) == simdjson::SUCCESS && !is_null(instructions)) {
        std::string_view text;
        if (instructions.get_string().get(text) != simdjson::SUCCESS) {
            return refuse("instructions", "must be a string");
        }
        messages.add(text_message("system", text));
    }
    out.clear();
    out += '{';
    json_key(out, "model");
    json_str(out, options.model);
    for (auto [key, value] : root) {
        if (!responses_member(key, value, options, out, messages, refuse)) {
            return false;
        }
    }
    messages.flush();
    json_key(out, "messages");
    out += '[';
    out += messages.list;
    out += "]}";
    return true;
}

}  // namespace rw
