// proxy/translate_stream.cc — streams, event by event (see translate.h). The upstream's
// bytes are cut into SSE lines (LF, CRLF or CR; a line may straddle pieces and is then
// gathered in the arena), a blank line dispatches the event's data, and each event becomes
// zero or more client events:
//   Anthropic → Chat: message_start → the role chunk; text_delta → delta.content;
//     thinking_delta → delta.reasoning_content; a tool_use block → a tool_calls entry with
//     its own index (the block's index mapped), input_json_delta → its arguments;
//     message_delta → finish_reason; message_stop → the usage chunk (when the client asked
//     for it) and [DONE]; error → data: {"error":…}; ping dropped.
//   Chat → Anthropic: the first chunk → message_start; content, reasoning_content and each
//     tool call open their block (the open one is stopped first) and send its deltas;
//     finish_reason and the usage chunk are held until [DONE], which sends content_block_stop,
//     message_delta (stop_reason, usage) and message_stop; {"error":…} → event: error.
#include <cstring>

#include "proxy/translate.h"
#include "proxy/translate_json.h"
#include "proxy/translate_responses.h"
#include "proxy/translate_shared.h"

namespace rw {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

void copy_field(char* target, size_t capacity, std::string_view text) {
    size_t length = text.size() < capacity - 1 ? text.size() : capacity - 1;
    while (length < text.size() && length > 0 &&
           (static_cast<unsigned char>(text[length]) & 0xC0) == 0x80) {
        length -= 1;  // Never half a character: the events must stay valid UTF-8.
    }
    if (length > 0) {  // An empty view may hold nullptr, which memcpy must not get.
        std::memcpy(target, text.data(), length);
    }
    target[length] = '\0';
}

void sse_event_open(std::string& out, std::string_view name) {
    out += "event: ";
    out += name;
    out += "\ndata: ";
}

bool arena_buffer_grow(Arena& arena, char*& buffer, uint32_t used, uint32_t& capacity,
                       uint64_t needed) {
    uint64_t grown = capacity == 0 ? 1024 : uint64_t(capacity) * 2;
    while (grown < needed) {
        grown *= 2;
    }
    auto* bytes = static_cast<char*>(arena.alloc(grown, 1));
    if (bytes == nullptr) {
        return false;
    }
    if (used > 0) {
        std::memcpy(bytes, buffer, used);
    }
    buffer = bytes;
    capacity = static_cast<uint32_t>(grown);
    return true;
}

void chat_chunk_usage(StreamTranslator& t, object chunk) {
    object usage;
    if (chunk["usage"].get_object().get(usage) == simdjson::SUCCESS) {
        const TranslatedUsage counts = usage_from_chat(usage);
        t.has_usage = true;
        t.input_tokens = counts.input;
        t.output_tokens = counts.output;
        t.cache_read_tokens = counts.cache_read;
        t.reasoning_tokens = counts.reasoning;
    }
}

void chat_choice_finish(StreamTranslator& t, object choice) {
    const std::string_view finish = json_get_string(choice, "finish_reason");
    if (!finish.empty()) {
        copy_field(t.finish_reason, sizeof(t.finish_reason), finish);
    }
}

namespace {

TranslatedUsage usage_of(const StreamTranslator& t) {
    return {t.input_tokens, t.output_tokens, t.cache_read_tokens, t.cache_write_tokens,
            t.reasoning_tokens};
}

// ---- Anthropic events → Chat chunks ------------------------------------------------------

// "data: {chunk head …,"choices":[{"index":0,"delta":" — the caller writes the delta.
void chunk_open(const StreamTranslator& t, std::string& out) {
    out += "data: {\"id\":";
    json_str(out, t.id);
    out += ",\"object\":\"chat.completion.chunk\",\"created\":";
    json_u64(out, t.created_s);
    out += ",\"model\":";
    json_str(out, t.model);
    out += ",\"choices\":[{\"index\":0,\"delta\":";
}

void chunk_close(std::string& out, std::string_view finish_reason) {
    out += ",\"logprobs\":null,\"finish_reason\":";
    if (finish_reason.empty()) {
        out += "null";
    } else {
        json_str(out, finish_reason);
    }
    out += "}]}\n\n";
}

void chunk_delta(const StreamTranslator& t, std::string& out, std::string_view key,
                 std::string_view text) {
    chunk_open(t, out);
    out += '{';
    json_key(out, key);
    json_str(out, text);
    out += '}';
    chunk_close(out, {});
}

void chunk_tool(const StreamTranslator& t, std::string& out, uint32_t tool, std::string_view id,
                std::string_view name, std::string_view arguments) {
    chunk_open(t, out);
    out += "{\"tool_calls\":[{\"index\":";
    json_u64(out, tool);
    if (!id.empty()) {
        out += ",\"id\":";
        json_str(out, id);
        out += ",\"type\":\"function\",\"function\":{\"name\":";
        json_str(out, name);
        out += ",\"arguments\":";
    } else {
        out += ",\"function\":{\"arguments\":";
    }
    json_str(out, arguments);
    out += "}}]}";
    chunk_close(out, {});
}

void anthropic_block_start(StreamTranslator& t, object event, std::string& out) {
    const uint64_t index = json_get_u64(event, "index");
    object block;
    if (event["content_block"].get_object().get(block) != simdjson::SUCCESS) {
        return;
    }
    const std::string_view type = json_get_string(block, "type");
    if (type == "tool_use" && index < translate_tool_blocks_max) {
        const uint32_t tool = t.tool_count++;
        t.block_tool[index] = static_cast<int16_t>(tool);
        chunk_tool(t, out, tool, json_get_string(block, "id"), json_get_string(block, "name"), "");
    } else if (type == "text" && !json_get_string(block, "text").empty()) {
        chunk_delta(t, out, "content", json_get_string(block, "text"));
    }
}

void anthropic_block_delta(StreamTranslator& t, object event, std::string& out) {
    const uint64_t index = json_get_u64(event, "index");
    object delta;
    if (event["delta"].get_object().get(delta) != simdjson::SUCCESS) {
        return;
    }
    const std::string_view type = json_get_string(delta, "type");
    if (type == "text_delta") {
        chunk_delta(t, out, "content", json_get_string(delta, "text"));
    } else if (type == "thinking_delta") {
        chunk_delta(t, out, "reasoning_content", json_get_string(delta, "thinking"));
    } else if (type == "input_json_delta" && index < translate_tool_blocks_max &&
               t.block_tool[index] >= 0) {
        const std::string_view partial = json_get_string(delta, "partial_json");
        if (!partial.empty()) {
            chunk_tool(t, out, static_cast<uint32_t>(t.block_tool[index]), {}, {}, partial);
        }
    }
}

void anthropic_usage(StreamTranslator& t, object usage) {
    t.has_usage = true;
    uint64_t value = 0;
    if (usage["input_tokens"].get_uint64().get(value) == simdjson::SUCCESS) {
        t.input_tokens = value;
    }
    if (usage["output_tokens"].get_uint64().get(value) == simdjson::SUCCESS) {
        t.output_tokens = value;
    }
    if (usage["cache_read_input_tokens"].get_uint64().get(value) == simdjson::SUCCESS) {
        t.cache_read_tokens = value;
    }
    if (usage["cache_creation_input_tokens"].get_uint64().get(value) == simdjson::SUCCESS) {
        t.cache_write_tokens = value;
    }
}

void anthropic_stop(StreamTranslator& t, std::string& out) {
    if (t.include_usage) {
        out += "data: {\"id\":";
        json_str(out, t.id);
        out += ",\"object\":\"chat.completion.chunk\",\"created\":";
        json_u64(out, t.created_s);
        out += ",\"model\":";
        json_str(out, t.model);
        out += ",\"choices\":[],\"usage\":";
        chat_usage_write(out, usage_of(t));
        out += "}\n\n";
    }
    out += "data: [DONE]\n\n";
    t.is_finished = true;
}

void anthropic_event(StreamTranslator& t, object event, std::string& out) {
    const std::string_view type = json_get_string(event, "type");
    object inner;
    if (type == "message_start" && event["message"].get_object().get(inner) == simdjson::SUCCESS) {
        copy_field(t.id, sizeof(t.id), json_get_string(inner, "id"));
        if (!json_get_string(inner, "model").empty()) {
            copy_field(t.model, sizeof(t.model), json_get_string(inner, "model"));
        }
        object usage;
        if (inner["usage"].get_object().get(usage) == simdjson::SUCCESS) {
            anthropic_usage(t, usage);
        }
        chunk_open(t, out);
        out += "{\"role\":\"assistant\",\"content\":\"\"}";
        chunk_close(out, {});
        t.is_started = true;
    } else if (type == "content_block_start") {
        anthropic_block_start(t, event, out);
    } else if (type == "content_block_delta") {
        anthropic_block_delta(t, event, out);
    } else if (type == "message_delta") {
        object usage;
        if (event["usage"].get_object().get(usage) == simdjson::SUCCESS) {
            anthropic_usage(t, usage);
        }
        std::string_view stop_reason;
        if (event["delta"]["stop_reason"].get_string().get(stop_reason) == simdjson::SUCCESS) {
            const std::string_view finish = finish_from_stop_reason(stop_reason);
            copy_field(t.finish_reason, sizeof(t.finish_reason), finish);
            chunk_open(t, out);
            out += "{}";
            chunk_close(out, finish);
        }
    } else if (type == "message_stop") {
        anthropic_stop(t, out);
    } else if (type == "error" && event["error"].get_object().get(inner) == simdjson::SUCCESS) {
        out += "data: {\"error\":{\"message\":";
        json_str(out, json_get_string(inner, "message"));
        out += ",\"type\":";
        json_str(out, json_get_string(inner, "type"));
        out += ",\"param\":null,\"code\":null}}\n\n";
        t.had_error = true;
    }
}

// ---- Chat chunks → Anthropic events ------------------------------------------------------

void block_stop(StreamTranslator& t, std::string& out) {
    if (t.open_block == OpenBlock::none) {
        return;
    }
    sse_event_open(out, "content_block_stop");
    out += "{\"type\":\"content_block_stop\",\"index\":";
    json_u64(out, t.next_block - 1);
    out += "}\n\n";
    t.open_block = OpenBlock::none;
}

// Opens a block of kind (stopping the open one) unless it is already open.
void block_start(StreamTranslator& t, std::string& out, OpenBlock kind, std::string_view id,
                 std::string_view name) {
    block_stop(t, out);
    sse_event_open(out, "content_block_start");
    out += "{\"type\":\"content_block_start\",\"index\":";
    json_u64(out, t.next_block);
    out += ",\"content_block\":";
    if (kind == OpenBlock::text) {
        out += "{\"type\":\"text\",\"text\":\"\"}";
    } else if (kind == OpenBlock::thinking) {
        out += "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}";
    } else {
        out += "{\"type\":\"tool_use\",\"id\":";
        json_str(out, id);
        out += ",\"name\":";
        json_str(out, name);
        out += ",\"input\":{}}";
    }
    out += "}\n\n";
    t.open_block = kind;
    t.next_block += 1;
}

void block_delta(StreamTranslator& t, std::string& out, std::string_view type, std::string_view key,
                 std::string_view text) {
    sse_event_open(out, "content_block_delta");
    out += "{\"type\":\"content_block_delta\",\"index\":";
    json_u64(out, t.next_block - 1);
    out += ",\"delta\":{\"type\":";
    json_str(out, type);
    out += ',';
    json_str(out, key);
    out += ':';
    json_str(out, text);
    out += "}}\n\n";
}

void message_start(StreamTranslator& t, object chunk, std::string& out) {
    copy_field(t.id, sizeof(t.id), json_get_string(chunk, "id"));
    if (!json_get_string(chunk, "model").empty()) {
        copy_field(t.model, sizeof(t.model), json_get_string(chunk, "model"));
    }
    sse_event_open(out, "message_start");
    out += "{\"type\":\"message_start\",\"message\":{\"id\":";
    json_str(out, t.id);
    out += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
    json_str(out, t.model);
    out += ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":";
    anthropic_usage_write(out, {});
    out += "}}\n\n";
    t.is_started = true;
}

void chat_tool_calls(StreamTranslator& t, array calls, std::string& out) {
    for (element call : calls) {
        if (!call.is_object()) {
            continue;
        }
        const auto index = static_cast<int32_t>(json_get_u64(call, "index"));
        const std::string_view id = json_get_string(call, "id");
        std::string_view name;
        std::string_view arguments;
        [[maybe_unused]] const auto ignored3 = call["function"]["name"].get_string().get(name);
        [[maybe_unused]] const auto ignored4 =
            call["function"]["arguments"].get_string().get(arguments);
        if (t.open_block != OpenBlock::tool || t.open_tool != index) {
            block_start(t, out, OpenBlock::tool, id, name);
            t.open_tool = index;
        }
        if (!arguments.empty()) {
            block_delta(t, out, "input_json_delta", "partial_json", arguments);
        }
    }
}

void chat_end(StreamTranslator& t, std::string& out) {
    block_stop(t, out);
    sse_event_open(out, "message_delta");
    out += "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":";
    json_str(out, stop_reason_from_finish(t.finish_reason));
    out += ",\"stop_sequence\":null},\"usage\":";
    anthropic_usage_write(out, usage_of(t));
    out += "}\n\n";
    sse_event_open(out, "message_stop");
    out += "{\"type\":\"message_stop\"}\n\n";
    t.is_finished = true;
}

void chat_chunk(StreamTranslator& t, object chunk, std::string& out) {
    object error;
    if (chunk["error"].get_object().get(error) == simdjson::SUCCESS) {
        sse_event_open(out, "error");
        out += "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":";
        json_str(out, json_get_string(error, "message"));
        out += "}}\n\n";
        t.had_error = true;
        return;
    }
    if (!t.is_started) {
        message_start(t, chunk, out);
    }
    chat_chunk_usage(t, chunk);
    object choice;
    if (chunk["choices"].at(0).get_object().get(choice) != simdjson::SUCCESS) {
        return;
    }
    object delta;
    if (choice["delta"].get_object().get(delta) == simdjson::SUCCESS) {
        std::string_view reasoning = json_get_string(delta, "reasoning_content");
        reasoning = reasoning.empty() ? json_get_string(delta, "reasoning") : reasoning;
        if (!reasoning.empty()) {
            if (t.open_block != OpenBlock::thinking) {
                block_start(t, out, OpenBlock::thinking, {}, {});
            }
            block_delta(t, out, "thinking_delta", "thinking", reasoning);
        }
        const std::string_view content = json_get_string(delta, "content");
        if (!content.empty()) {
            if (t.open_block != OpenBlock::text) {
                block_start(t, out, OpenBlock::text, {}, {});
            }
            block_delta(t, out, "text_delta", "text", content);
        }
        array calls;
        if (delta["tool_calls"].get_array().get(calls) == simdjson::SUCCESS) {
            chat_tool_calls(t, calls, out);
        }
    }
    chat_choice_finish(t, choice);
}

// ---- SSE framing -------------------------------------------------------------------------

// False when the stream cannot go on (a Responses answer outgrew its bounds).
bool dispatch(Arena& arena, StreamTranslator& t, std::string& out) {
    const std::string_view data(t.data, t.data_bytes);
    t.has_data = false;
    t.data_bytes = 0;
    if (t.is_finished) {
        return true;
    }
    if (data == "[DONE]" && t.translation == Translation::responses_to_chat) {
        return !t.is_started || t.had_error || responses_stream_end(t, out);
    }
    if (t.translation == Translation::messages_to_chat && data == "[DONE]") {
        chat_end(t, out);
        return true;
    }
    std::memset(t.data + data.size(), 0, simdjson::SIMDJSON_PADDING);
    element root;
    object event;
    if (!translate_parse({t.data, data.size()}, root) ||
        root.get_object().get(event) != simdjson::SUCCESS) {
        return true;  // Not JSON: nothing the client's format has for it.
    }
    if (t.translation == Translation::chat_to_messages) {
        anthropic_event(t, event, out);
    } else if (t.translation == Translation::responses_to_chat) {
        return t.had_error || responses_stream_chunk(arena, t, event, out);
    } else {
        chat_chunk(t, event, out);
    }
    return true;
}

// Grows buffer (arena) to hold needed bytes plus simdjson's padding.
bool reserve(Arena& arena, char*& buffer, uint32_t used, uint32_t& capacity, uint64_t needed) {
    if (needed > translate_line_bytes_max) {
        return false;
    }
    return needed + simdjson::SIMDJSON_PADDING <= capacity ||
           arena_buffer_grow(arena, buffer, used, capacity, needed + simdjson::SIMDJSON_PADDING);
}

bool line_process(Arena& arena, StreamTranslator& t, std::string_view line, std::string& out) {
    if (line.empty()) {
        return !t.has_data || dispatch(arena, t, out);
    }
    if (!line.starts_with("data:")) {
        return true;  // event:, id:, retry: and comments: the data's type says it all.
    }
    std::string_view value = line.substr(5);
    if (value.starts_with(' ')) {
        value.remove_prefix(1);
    }
    const uint32_t separator = t.has_data ? 1 : 0;
    if (!reserve(arena, t.data, t.data_bytes, t.data_capacity,
                 uint64_t(t.data_bytes) + separator + value.size())) {
        return false;
    }
    if (separator != 0) {
        t.data[t.data_bytes++] = '\n';
    }
    std::memcpy(t.data + t.data_bytes, value.data(), value.size());
    t.data_bytes += static_cast<uint32_t>(value.size());
    t.has_data = true;
    return true;
}

}  // namespace

StreamTranslator* stream_translator_create(Arena& arena, Translation translation,
                                           bool include_usage, std::string_view model_requested,
                                           uint64_t created_s) {
    auto* t = arena.make<StreamTranslator>();
    if (t == nullptr) {
        return nullptr;
    }
    std::memset(static_cast<void*>(t), 0, sizeof(StreamTranslator));
    t->translation = translation;
    t->arena = &arena;
    t->include_usage = include_usage;
    t->open_tool = -1;
    t->created_s = created_s;
    for (int16_t& tool : t->block_tool) {
        tool = -1;
    }
    copy_field(t->model, sizeof(t->model), model_requested);
    return t;
}

bool stream_translate_feed(Arena& arena, StreamTranslator& t, std::string_view bytes,
                           std::string& out) {
    while (!bytes.empty()) {
        if (t.saw_cr && bytes.front() == '\n') {
            bytes.remove_prefix(1);  // The LF of a CRLF split across pieces.
            t.saw_cr = false;
            continue;
        }
        t.saw_cr = false;
        size_t end = 0;
        while (end < bytes.size() && bytes[end] != '\n' && bytes[end] != '\r') {
            end++;
        }
        if (!reserve(arena, t.line, t.line_bytes, t.line_capacity, uint64_t(t.line_bytes) + end)) {
            return false;
        }
        if (end == bytes.size()) {
            std::memcpy(t.line + t.line_bytes, bytes.data(), end);
            t.line_bytes += static_cast<uint32_t>(end);
            return true;  // The line goes on in the next piece.
        }
        std::string_view line = bytes.substr(0, end);
        if (t.line_bytes > 0) {
            std::memcpy(t.line + t.line_bytes, bytes.data(), end);
            line = {t.line, t.line_bytes + end};
        }
        const bool is_cr = bytes[end] == '\r';
        bytes.remove_prefix(end + 1);
        if (is_cr && !bytes.empty() && bytes.front() == '\n') {
            bytes.remove_prefix(1);
        } else if (is_cr) {
            t.saw_cr = bytes.empty();
        }
        t.line_bytes = 0;
        if (!line_process(arena, t, line, out)) {
            return false;
        }
    }
    return true;
}

void stream_translate_finish(StreamTranslator& t, std::string& out) {
    if (t.is_finished || t.had_error || !t.is_started) {
        return;
    }
    if (t.translation == Translation::chat_to_messages) {
        anthropic_stop(t, out);
    } else if (t.translation == Translation::responses_to_chat) {
        [[maybe_unused]] const bool is_whole = responses_stream_end(t, out);
    } else {
        chat_end(t, out);
    }
}

}  // namespace rw
