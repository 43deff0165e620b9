// proxy/translate_response.cc — whole answers and error bodies, Messages ⇄ Chat Completions
// (see translate.h). The stop reasons and usage are mapped by the helpers shared with the
// stream translator.
#include "proxy/translate.h"
#include "proxy/translate_json.h"
#include "proxy/translate_responses.h"
#include "proxy/translate_shared.h"

namespace rw {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

std::string_view finish_from_stop_reason(std::string_view stop_reason) {
    if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
        return "length";
    }
    if (stop_reason == "tool_use") {
        return "tool_calls";
    }
    if (stop_reason == "refusal") {
        return "content_filter";
    }
    return "stop";  // end_turn, stop_sequence, pause_turn.
}

std::string_view stop_reason_from_finish(std::string_view finish_reason) {
    if (finish_reason == "length") {
        return "max_tokens";
    }
    if (finish_reason == "tool_calls" || finish_reason == "function_call") {
        return "tool_use";
    }
    if (finish_reason == "content_filter") {
        return "refusal";
    }
    return "end_turn";
}

void chat_usage_write(std::string& out, const TranslatedUsage& usage) {
    const uint64_t prompt = usage.input + usage.cache_read + usage.cache_write;
    out += "{\"prompt_tokens\":";
    json_u64(out, prompt);
    out += ",\"completion_tokens\":";
    json_u64(out, usage.output);
    out += ",\"total_tokens\":";
    json_u64(out, prompt + usage.output);
    out += ",\"prompt_tokens_details\":{\"cached_tokens\":";
    json_u64(out, usage.cache_read);
    out += "},\"completion_tokens_details\":{\"reasoning_tokens\":";
    json_u64(out, usage.reasoning);
    out += "}}";
}

void anthropic_usage_write(std::string& out, const TranslatedUsage& usage) {
    out += "{\"input_tokens\":";
    json_u64(out, usage.input);
    out += ",\"cache_creation_input_tokens\":";
    json_u64(out, usage.cache_write);
    out += ",\"cache_read_input_tokens\":";
    json_u64(out, usage.cache_read);
    out += ",\"output_tokens\":";
    json_u64(out, usage.output);
    out += '}';
}

TranslatedUsage usage_from_anthropic(object usage) {
    return {json_get_u64(usage, "input_tokens"), json_get_u64(usage, "output_tokens"),
            json_get_u64(usage, "cache_read_input_tokens"),
            json_get_u64(usage, "cache_creation_input_tokens"), 0};
}

TranslatedUsage usage_from_chat(object usage) {
    const uint64_t prompt = json_get_u64(usage, "prompt_tokens");
    uint64_t cached = 0;
    uint64_t reasoning = 0;
    object details;
    if (usage["prompt_tokens_details"].get_object().get(details) == simdjson::SUCCESS) {
        cached = json_get_u64(details, "cached_tokens");
    }
    if (usage["completion_tokens_details"].get_object().get(details) == simdjson::SUCCESS) {
        reasoning = json_get_u64(details, "reasoning_tokens");
    }
    cached = cached > prompt ? prompt : cached;
    return {prompt - cached, json_get_u64(usage, "completion_tokens"), cached, 0, reasoning};
}

namespace {

bool message_to_chat(object message, std::string_view model_requested, uint64_t created_s,
                     std::string& out) {
    std::string text;
    std::string reasoning;
    std::string calls;
    bool has_text = false;
    array content;
    if (message["content"].get_array().get(content) != simdjson::SUCCESS) {
        return false;
    }
    for (element block : content) {
        const std::string_view type = block.is_object() ? json_get_string(block, "type") : "";
        element input;
        if (type == "text") {
            text += json_get_string(block, "text");
            has_text = true;
        } else if (type == "thinking") {
            reasoning += json_get_string(block, "thinking");
        } else if (type == "tool_use" && block["input"].get(input) == simdjson::SUCCESS) {
            calls += calls.empty() ? "{" : ",{";
            calls += "\"id\":";
            json_str(calls, json_get_string(block, "id"));
            calls += ",\"type\":\"function\",\"function\":{\"name\":";
            json_str(calls, json_get_string(block, "name"));
            calls += ",\"arguments\":";
            json_str(calls, simdjson::minify(input));
            calls += "}}";
        }
    }
    const std::string_view model = json_get_string(message, "model");
    out = "{\"id\":";
    json_str(out, json_get_string(message, "id"));
    out += ",\"object\":\"chat.completion\",\"created\":";
    json_u64(out, created_s);
    out += ",\"model\":";
    json_str(out, model.empty() ? model_requested : model);
    out += ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":";
    if (has_text) {
        json_str(out, text);
    } else {
        out += "null";
    }
    if (!reasoning.empty()) {
        out += ",\"reasoning_content\":";
        json_str(out, reasoning);
    }
    if (!calls.empty()) {
        out += ",\"tool_calls\":[" + calls + "]";
    }
    out += ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":";
    json_str(out, finish_from_stop_reason(json_get_string(message, "stop_reason")));
    out += "}]";
    object usage;
    if (message["usage"].get_object().get(usage) == simdjson::SUCCESS) {
        out += ",\"usage\":";
        chat_usage_write(out, usage_from_anthropic(usage));
    }
    out += '}';
    return true;
}

bool completion_to_message(object completion, std::string_view model_requested, std::string& out) {
    object choice;
    object message;
    if (completion["choices"].at(0).get_object().get(choice) != simdjson::SUCCESS ||
        choice["message"].get_object().get(message) != simdjson::SUCCESS) {
        return false;
    }
    std::string blocks;
    const std::string_view reasoning = json_get_string(message, "reasoning_content");
    if (!reasoning.empty()) {
        blocks += "{\"type\":\"thinking\",\"thinking\":";
        json_str(blocks, reasoning);
        blocks += ",\"signature\":\"\"}";
    }
    const std::string_view text = json_get_string(message, "content");
    if (!text.empty()) {
        blocks += blocks.empty() ? "{" : ",{";
        blocks += "\"type\":\"text\",\"text\":";
        json_str(blocks, text);
        blocks += '}';
    }
    array calls;
    if (message["tool_calls"].get_array().get(calls) == simdjson::SUCCESS) {
        std::string padded;
        for (element call : calls) {
            std::string_view arguments = "{}";
            [[maybe_unused]] const auto ignored1 =
                call["function"]["arguments"].get_string().get(arguments);
            padded.assign(arguments.empty() ? std::string_view("{}") : arguments);
            padded.append(simdjson::SIMDJSON_PADDING, '\0');
            thread_local simdjson::dom::parser nested;
            element input;
            if (nested.parse(padded.data(), padded.size() - simdjson::SIMDJSON_PADDING, false)
                        .get(input) != simdjson::SUCCESS ||
                !input.is_object()) {
                return false;  // Not an object: Anthropic's tool_use input must be one.
            }
            blocks += blocks.empty() ? "{" : ",{";
            blocks += "\"type\":\"tool_use\",\"id\":";
            json_str(blocks, json_get_string(call, "id"));
            blocks += ",\"name\":";
            std::string_view name;
            [[maybe_unused]] const auto ignored2 = call["function"]["name"].get_string().get(name);
            json_str(blocks, name);
            blocks += ",\"input\":";
            json_raw(blocks, input);
            blocks += '}';
        }
    }
    const std::string_view model = json_get_string(completion, "model");
    out = "{\"id\":";
    json_str(out, json_get_string(completion, "id"));
    out += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
    json_str(out, model.empty() ? model_requested : model);
    out += ",\"content\":[" + blocks + "],\"stop_reason\":";
    json_str(out, stop_reason_from_finish(json_get_string(choice, "finish_reason")));
    out += ",\"stop_sequence\":null,\"usage\":";
    object usage;
    TranslatedUsage counts{};
    if (completion["usage"].get_object().get(usage) == simdjson::SUCCESS) {
        counts = usage_from_chat(usage);
    }
    anthropic_usage_write(out, counts);
    out += '}';
    return true;
}

std::string_view anthropic_error_type(uint16_t status) {
    switch (status) {
        case 400: return "invalid_request_error";
        case 401: return "authentication_error";
        case 403: return "permission_error";
        case 404: return "not_found_error";
        case 413: return "request_too_large";
        case 429: return "rate_limit_error";
        case 503:
        case 529: return "overloaded_error";
        default: return "api_error";
    }
}

}  // namespace

bool translate_response(Translation translation, std::string_view padded_body,
                        std::string_view model_requested, uint64_t created_s, std::string& out) {
    element root;
    object object_root;
    if (!translate_parse(padded_body, root) ||
        root.get_object().get(object_root) != simdjson::SUCCESS) {
        return false;
    }
    if (translation == Translation::responses_to_chat) {
        return completion_to_response(object_root, model_requested, created_s, out);
    }
    return translation == Translation::chat_to_messages
               ? message_to_chat(object_root, model_requested, created_s, out)
               : completion_to_message(object_root, model_requested, out);
}

void translate_error(Translation translation, std::string_view padded_body, uint16_t status,
                     std::string& out) {
    element root;
    object error;
    const bool has_error = translate_parse(padded_body, root) && root.is_object() &&
                           root["error"].get_object().get(error) == simdjson::SUCCESS;
    std::string_view message = has_error ? json_get_string(error, "message") : "";
    std::string generic;
    if (message.empty()) {
        generic = "upstream answered HTTP " + std::to_string(status);
        message = generic;
    }
    if (translation == Translation::chat_to_messages ||
        translation == Translation::responses_to_chat) {
        // Anthropic's error, or a Chat upstream's, in OpenAI's shape (Anthropic's type kept:
        // the names are close; a Chat error's param and code kept as well).
        const std::string_view type = has_error ? json_get_string(error, "type") : "";
        const std::string_view param = has_error ? json_get_string(error, "param") : "";
        const std::string_view code = has_error ? json_get_string(error, "code") : "";
        out = "{\"error\":{\"message\":";
        json_str(out, message);
        out += ",\"type\":";
        json_str(out, type.empty() ? std::string_view("api_error") : type);
        out += ",\"param\":";
        param.empty() ? void(out += "null") : json_str(out, param);
        out += ",\"code\":";
        code.empty() ? void(out += "null") : json_str(out, code);
        out += "}}";
        return;
    }
    out = "{\"type\":\"error\",\"error\":{\"type\":";
    json_str(out, anthropic_error_type(status));
    out += ",\"message\":";
    json_str(out, message);
    out += "}}";
}

}  // namespace rw
