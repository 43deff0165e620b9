// proxy/translate_responses_response.cc — a whole chat.completion as a Responses API
// `response` object (see translate_responses.h): reasoning_content becomes a reasoning item,
// the message's text a message item with one output_text part, each tool call a
// function_call item; finish_reason length or content_filter makes the response
// "incomplete" with its reason; usage is renamed (input_tokens, output_tokens and details).
#include "proxy/translate_responses.h"

namespace rw {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

void responses_usage_write(std::string& out, const TranslatedUsage& usage) {
    const uint64_t input = usage.input + usage.cache_read + usage.cache_write;
    out += "{\"input_tokens\":";
    json_u64(out, input);
    out += ",\"input_tokens_details\":{\"cached_tokens\":";
    json_u64(out, usage.cache_read);
    out += "},\"output_tokens\":";
    json_u64(out, usage.output);
    out += ",\"output_tokens_details\":{\"reasoning_tokens\":";
    json_u64(out, usage.reasoning);
    out += "},\"total_tokens\":";
    json_u64(out, input + usage.output);
    out += '}';
}

namespace {

void output_items(object message, std::string_view id, std::string& items) {
    std::string_view reasoning = json_get_string(message, "reasoning_content");
    reasoning = reasoning.empty() ? json_get_string(message, "reasoning") : reasoning;
    if (!reasoning.empty()) {
        items += "{\"id\":";
        json_str(items, std::string("rs_") + std::string(id));
        items +=
            ",\"type\":\"reasoning\",\"summary\":[],\"content\":[{\"type\":"
            "\"reasoning_text\",\"text\":";
        json_str(items, reasoning);
        items += "}]}";
    }
    const std::string_view text = json_get_string(message, "content");
    const std::string_view refusal = json_get_string(message, "refusal");
    if (!text.empty() || !refusal.empty()) {
        items += items.empty() ? "{" : ",{";
        items += "\"id\":";
        json_str(items, std::string("msg_") + std::string(id));
        items +=
            ",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\","
            "\"content\":[";
        if (!text.empty()) {
            items += "{\"type\":\"output_text\",\"text\":";
            json_str(items, text);
            items += ",\"annotations\":[]}";
        }
        if (!refusal.empty()) {
            items += text.empty() ? "{" : ",{";
            items += "\"type\":\"refusal\",\"refusal\":";
            json_str(items, refusal);
            items += '}';
        }
        items += "]}";
    }
    array calls;
    if (message["tool_calls"].get_array().get(calls) != simdjson::SUCCESS) {
        return;
    }
    for (element call : calls) {
        if (!call.is_object()) {
            continue;
        }
        const std::string_view call_id = json_get_string(call, "id");
        std::string_view name;
        std::string_view arguments;
        [[maybe_unused]] const auto ignored1 = call["function"]["name"].get_string().get(name);
        [[maybe_unused]] const auto ignored2 =
            call["function"]["arguments"].get_string().get(arguments);
        items += items.empty() ? "{" : ",{";
        items += "\"id\":";
        json_str(items, std::string("fc_") + std::string(call_id));
        items += ",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":";
        json_str(items, arguments);
        items += ",\"call_id\":";
        json_str(items, call_id);
        items += ",\"name\":";
        json_str(items, name);
        items += '}';
    }
}

}  // namespace

// "completed", or "incomplete" with its reason, for a Chat finish_reason.
std::string_view responses_status(std::string_view finish_reason, std::string_view& reason) {
    if (finish_reason == "length") {
        reason = "max_output_tokens";
        return "incomplete";
    }
    if (finish_reason == "content_filter") {
        reason = "content_filter";
        return "incomplete";
    }
    reason = {};
    return "completed";
}

void responses_object_open(std::string& out, std::string_view id, uint64_t created_s,
                           std::string_view status, std::string_view reason,
                           std::string_view model) {
    out += "{\"id\":";
    json_str(out, std::string("resp_") + std::string(id));
    out += ",\"object\":\"response\",\"created_at\":";
    json_u64(out, created_s);
    out += ",\"status\":";
    json_str(out, status);
    out += ",\"error\":null,\"incomplete_details\":";
    if (reason.empty()) {
        out += "null";
    } else {
        out += "{\"reason\":";
        json_str(out, reason);
        out += '}';
    }
    out += ",\"model\":";
    json_str(out, model);
    out += ",\"output\":[";
}

bool completion_to_response(object completion, std::string_view model_requested, uint64_t created_s,
                            std::string& out) {
    object choice;
    object message;
    if (completion["choices"].at(0).get_object().get(choice) != simdjson::SUCCESS ||
        choice["message"].get_object().get(message) != simdjson::SUCCESS) {
        return false;
    }
    const std::string_view id = json_get_string(completion, "id");
    std::string_view model = json_get_string(completion, "model");
    model = model.empty() ? model_requested : model;
    std::string_view reason;
    const std::string_view status =
        responses_status(json_get_string(choice, "finish_reason"), reason);
    uint64_t created = json_get_u64(completion, "created");
    out.clear();
    responses_object_open(out, id, created == 0 ? created_s : created, status, reason, model);
    std::string items;
    output_items(message, id, items);
    out += items;
    out += "],\"usage\":";
    object usage;
    TranslatedUsage counts{};
    if (completion["usage"].get_object().get(usage) == simdjson::SUCCESS) {
        counts = usage_from_chat(usage);
    }
    responses_usage_write(out, counts);
    out += '}';
    return true;
}

}  // namespace rw
