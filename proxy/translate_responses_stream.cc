// proxy/translate_responses_stream.cc — Chat Completions chunks as Responses API events (see
// translate_responses.h), in the Responses SSE form `event: TYPE\ndata: {"type":TYPE,
// "sequence_number":N,…}`. The first chunk sends response.created and response.in_progress;
// content, reasoning_content and each tool call open an output item (the open one is closed
// first): response.output_item.added (+ content_part.added for text), then its deltas
// (output_text.delta, reasoning_text.delta, function_call_arguments.delta); closing sends the
// .done events with the whole text or arguments and output_item.done with the whole item.
// [DONE] closes the open item and sends response.completed (or response.incomplete) with
// every item and the usage of the usage chunk; {"error":…} sends error and response.failed.
// The open item's text and the finished items are kept in the request's arena.
#include <cstring>

#include "proxy/translate_responses.h"

namespace rw {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

namespace {

// Appends text to an arena buffer, doubling it as needed, up to translate_output_bytes_max.
bool buffer_append(Arena& arena, char*& buffer, uint32_t& used, uint32_t& capacity,
                   std::string_view text) {
    const uint64_t needed = uint64_t(used) + text.size();
    if (needed > translate_output_bytes_max) {
        return false;
    }
    if (needed > capacity && !arena_buffer_grow(arena, buffer, used, capacity, needed)) {
        return false;
    }
    if (!text.empty()) {
        std::memcpy(buffer + used, text.data(), text.size());
        used += static_cast<uint32_t>(text.size());
    }
    return true;
}

std::string_view item_text(const StreamTranslator& t) {
    return {t.item_text, t.item_text_bytes};
}

// `event: name\ndata: {"type":name,"sequence_number":N` — the caller adds members and "}\n\n".
void event_open(StreamTranslator& t, std::string& out, std::string_view name) {
    sse_event_open(out, name);
    out += "{\"type\":\"";
    out += name;
    out += "\",\"sequence_number\":";
    json_u64(out, t.sequence++);
}

void item_id_write(const StreamTranslator& t, std::string& out) {
    std::string id;
    if (t.open_block == OpenBlock::tool) {
        id = "fc_";
        id += t.call_id;
    } else {
        id = t.open_block == OpenBlock::thinking ? "rs_" : "msg_";
        id += t.id;
        id += '_';
        id += std::to_string(t.output_index);
    }
    json_str(out, id);
}

// ,"item_id":…,"output_index":N
void item_ref(const StreamTranslator& t, std::string& out) {
    out += ",\"item_id\":";
    item_id_write(t, out);
    out += ",\"output_index\":";
    json_u64(out, t.output_index);
}

// The open item as a whole (in_progress when is_added, else with its text and completed).
void item_write(const StreamTranslator& t, std::string& out, bool is_added) {
    out += "{\"id\":";
    item_id_write(t, out);
    const std::string_view text = is_added ? std::string_view{} : item_text(t);
    const std::string_view status = is_added ? "\"in_progress\"" : "\"completed\"";
    if (t.open_block == OpenBlock::tool) {
        out += ",\"type\":\"function_call\",\"status\":";
        out += status;
        out += ",\"arguments\":";
        json_str(out, text);
        out += ",\"call_id\":";
        json_str(out, t.call_id);
        out += ",\"name\":";
        json_str(out, t.tool_name);
    } else if (t.open_block == OpenBlock::thinking) {
        out += ",\"type\":\"reasoning\",\"summary\":[],\"content\":[";
        if (!is_added) {
            out += "{\"type\":\"reasoning_text\",\"text\":";
            json_str(out, text);
            out += '}';
        }
        out += ']';
    } else {
        out += ",\"type\":\"message\",\"status\":";
        out += status;
        out += ",\"role\":\"assistant\",\"content\":[";
        if (!is_added) {
            out += "{\"type\":\"output_text\",\"text\":";
            json_str(out, text);
            out += ",\"annotations\":[]}";
        }
        out += ']';
    }
    out += '}';
}

void text_part_event(StreamTranslator& t, std::string& out, std::string_view name,
                     std::string_view text) {
    event_open(t, out, name);
    item_ref(t, out);
    out += ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":";
    json_str(out, text);
    out += ",\"annotations\":[]}}\n\n";
}

bool item_close(Arena& arena, StreamTranslator& t, std::string& out) {
    if (t.open_block == OpenBlock::none) {
        return true;
    }
    const std::string_view text = item_text(t);
    if (t.open_block == OpenBlock::tool) {
        event_open(t, out, "response.function_call_arguments.done");
        item_ref(t, out);
        out += ",\"name\":";
        json_str(out, t.tool_name);
        out += ",\"arguments\":";
        json_str(out, text);
        out += "}\n\n";
    } else if (t.open_block == OpenBlock::thinking) {
        event_open(t, out, "response.reasoning_text.done");
        item_ref(t, out);
        out += ",\"content_index\":0,\"text\":";
        json_str(out, text);
        out += "}\n\n";
    } else {
        event_open(t, out, "response.output_text.done");
        item_ref(t, out);
        out += ",\"content_index\":0,\"text\":";
        json_str(out, text);
        out += ",\"logprobs\":[]}\n\n";
        text_part_event(t, out, "response.content_part.done", text);
    }
    event_open(t, out, "response.output_item.done");
    out += ",\"output_index\":";
    json_u64(out, t.output_index);
    out += ",\"item\":";
    const size_t item_start = out.size();
    item_write(t, out, false);
    const std::string_view item{out.data() + item_start, out.size() - item_start};
    const bool is_kept = (t.output_bytes == 0 ||
                          buffer_append(arena, t.output, t.output_bytes, t.output_capacity, ",")) &&
                         buffer_append(arena, t.output, t.output_bytes, t.output_capacity, item);
    out += "}\n\n";
    t.open_block = OpenBlock::none;
    t.item_text_bytes = 0;
    t.output_index += 1;
    return is_kept;
}

bool item_open(Arena& arena, StreamTranslator& t, std::string& out, OpenBlock kind) {
    if (!item_close(arena, t, out)) {
        return false;
    }
    t.open_block = kind;
    event_open(t, out, "response.output_item.added");
    out += ",\"output_index\":";
    json_u64(out, t.output_index);
    out += ",\"item\":";
    item_write(t, out, true);
    out += "}\n\n";
    if (kind == OpenBlock::text) {
        text_part_event(t, out, "response.content_part.added", {});
    }
    return true;
}

// A delta of the open item: its event, and the text kept for the .done events.
bool item_delta(Arena& arena, StreamTranslator& t, std::string& out, std::string_view delta) {
    const std::string_view name =
        t.open_block == OpenBlock::tool       ? "response.function_call_arguments.delta"
        : t.open_block == OpenBlock::thinking ? "response.reasoning_text.delta"
                                              : "response.output_text.delta";
    event_open(t, out, name);
    item_ref(t, out);
    if (t.open_block != OpenBlock::tool) {
        out += ",\"content_index\":0";
    }
    out += ",\"delta\":";
    json_str(out, delta);
    out += t.open_block == OpenBlock::text ? ",\"logprobs\":[]}\n\n" : "}\n\n";
    return buffer_append(arena, t.item_text, t.item_text_bytes, t.item_text_capacity, delta);
}

void response_event(StreamTranslator& t, std::string& out, std::string_view name,
                    std::string_view status) {
    event_open(t, out, name);
    out += ",\"response\":";
    responses_object_open(out, t.id, t.created_s, status, {}, t.model);
    out += "],\"usage\":null}}\n\n";
}

void stream_start(StreamTranslator& t, object chunk, std::string& out) {
    copy_field(t.id, sizeof(t.id), json_get_string(chunk, "id"));
    if (!json_get_string(chunk, "model").empty()) {
        copy_field(t.model, sizeof(t.model), json_get_string(chunk, "model"));
    }
    response_event(t, out, "response.created", "in_progress");
    response_event(t, out, "response.in_progress", "in_progress");
    t.is_started = true;
}

void stream_error(StreamTranslator& t, object error, std::string& out) {
    const std::string_view message = json_get_string(error, "message");
    std::string_view code = json_get_string(error, "code");
    code = code.empty() ? json_get_string(error, "type") : code;
    code = code.empty() ? std::string_view("server_error") : code;
    event_open(t, out, "error");
    out += ",\"code\":";
    json_str(out, code);
    out += ",\"message\":";
    json_str(out, message);
    out += ",\"param\":null}\n\n";
    event_open(t, out, "response.failed");
    out += ",\"response\":{\"id\":";
    json_str(out, std::string("resp_") + t.id);
    out += ",\"object\":\"response\",\"created_at\":";
    json_u64(out, t.created_s);
    out += ",\"status\":\"failed\",\"error\":{\"code\":";
    json_str(out, code);
    out += ",\"message\":";
    json_str(out, message);
    out += "},\"incomplete_details\":null,\"model\":";
    json_str(out, t.model);
    out += ",\"output\":[],\"usage\":null}}\n\n";
    t.had_error = true;
}

bool tool_call_deltas(Arena& arena, StreamTranslator& t, array calls, std::string& out) {
    for (element call : calls) {
        if (!call.is_object()) {
            continue;
        }
        const auto index = static_cast<int32_t>(json_get_u64(call, "index"));
        std::string_view name;
        std::string_view arguments;
        [[maybe_unused]] const auto ignored1 = call["function"]["name"].get_string().get(name);
        [[maybe_unused]] const auto ignored2 =
            call["function"]["arguments"].get_string().get(arguments);
        if (t.open_block != OpenBlock::tool || t.open_tool != index) {
            if (!item_close(arena, t, out)) {
                return false;
            }
            copy_field(t.call_id, sizeof(t.call_id), json_get_string(call, "id"));
            copy_field(t.tool_name, sizeof(t.tool_name), name);
            t.open_tool = index;
            if (!item_open(arena, t, out, OpenBlock::tool)) {
                return false;
            }
        }
        if (!arguments.empty() && !item_delta(arena, t, out, arguments)) {
            return false;
        }
    }
    return true;
}

bool chunk_delta(Arena& arena, StreamTranslator& t, object delta, std::string& out) {
    std::string_view reasoning = json_get_string(delta, "reasoning_content");
    reasoning = reasoning.empty() ? json_get_string(delta, "reasoning") : reasoning;
    if (!reasoning.empty()) {
        if (t.open_block != OpenBlock::thinking && !item_open(arena, t, out, OpenBlock::thinking)) {
            return false;
        }
        if (!item_delta(arena, t, out, reasoning)) {
            return false;
        }
    }
    const std::string_view content = json_get_string(delta, "content");
    if (!content.empty()) {
        if (t.open_block != OpenBlock::text && !item_open(arena, t, out, OpenBlock::text)) {
            return false;
        }
        if (!item_delta(arena, t, out, content)) {
            return false;
        }
    }
    array calls;
    if (delta["tool_calls"].get_array().get(calls) == simdjson::SUCCESS) {
        return tool_call_deltas(arena, t, calls, out);
    }
    return true;
}

}  // namespace

bool responses_stream_chunk(Arena& arena, StreamTranslator& t, object chunk, std::string& out) {
    object error;
    if (chunk["error"].get_object().get(error) == simdjson::SUCCESS) {
        stream_error(t, error, out);
        return true;
    }
    if (!t.is_started) {
        stream_start(t, chunk, out);
    }
    chat_chunk_usage(t, chunk);
    object choice;
    if (chunk["choices"].at(0).get_object().get(choice) != simdjson::SUCCESS) {
        return true;
    }
    object delta;
    if (choice["delta"].get_object().get(delta) == simdjson::SUCCESS &&
        !chunk_delta(arena, t, delta, out)) {
        return false;
    }
    chat_choice_finish(t, choice);
    return true;
}

bool responses_stream_end(StreamTranslator& t, std::string& out) {
    const bool is_kept = item_close(*t.arena, t, out);
    std::string_view reason;
    const std::string_view status = responses_status(t.finish_reason, reason);
    event_open(t, out, status == "completed" ? "response.completed" : "response.incomplete");
    out += ",\"response\":";
    responses_object_open(out, t.id, t.created_s, status, reason, t.model);
    if (t.output_bytes > 0) {
        out.append(t.output, t.output_bytes);
    }
    out += "],\"usage\":";
    responses_usage_write(out, {t.input_tokens, t.output_tokens, t.cache_read_tokens,
                                t.cache_write_tokens, t.reasoning_tokens});
    out += "}}\n\n";
    t.is_finished = true;
    return is_kept;
}

}  // namespace rw
