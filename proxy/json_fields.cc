// proxy/json_fields.cc — request body fields with simdjson On Demand and the byte-exact
// rewrite of model and stream_options.include_usage. On Demand reads only the top-level
// members ringway needs (plus stream_options); everything else is skipped through the
// structural index and copied through untouched by the rewrite. Shard thread only; the
// only memory is the arena given by the caller and the thread's parser.
#include "proxy/json_fields.h"

#include <algorithm>
#include <cstring>

#include "core/assert.h"
#include "proxy/usage.h"

namespace rw {
namespace {

namespace ondemand = simdjson::ondemand;

constexpr std::string_view include_usage_member = "\"include_usage\":true";
constexpr std::string_view stream_options_member = "\"stream_options\":{\"include_usage\":true}";
constexpr std::string_view stream_options_object = "{\"include_usage\":true}";

bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// raw_json_token() includes the whitespace up to the next token [simdjson ondemand
// value::raw_json_token]; a span is the token alone.
JsonSpan span_of_token(std::string_view body, std::string_view token) {
    while (!token.empty() && is_json_space(token.back())) {
        token.remove_suffix(1);
    }
    RW_ASSERT(token.data() >= body.data());
    RW_ASSERT(token.data() + token.size() <= body.data() + body.size());
    return JsonSpan{static_cast<uint32_t>(token.data() - body.data()),
                    static_cast<uint32_t>(token.size())};
}

// Offset just past the last non-space byte before location (a pointer into body).
uint32_t offset_before(std::string_view body, const char* location) {
    uint32_t end = static_cast<uint32_t>(location - body.data());
    while (end > 0 && is_json_space(body[end - 1])) {
        end -= 1;
    }
    return end;
}

RequestFieldsError read_model(Arena& arena, std::string_view body, ondemand::value& value,
                              RequestFields& fields) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    if (type != ondemand::json_type::string) {
        return RequestFieldsError::model_not_string;
    }
    fields.model_span = span_of_token(body, value.raw_json_token());
    std::string_view unescaped;
    // get_string() unescapes into the parser's string buffer, which the next document
    // overwrites: the model must not keep pointing there.
    if (value.get_string().get(unescaped) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    RW_ASSERT(fields.model_span.bytes >= 2);
    const std::string_view raw =
        body.substr(fields.model_span.offset + 1, fields.model_span.bytes - 2);
    if (std::memchr(raw.data(), '\\', raw.size()) == nullptr) {
        fields.model = raw;  // No escapes: the body holds the value itself.
    } else {
        char* copy = static_cast<char*>(arena.alloc(unescaped.size(), 1));
        if (copy == nullptr) {
            return RequestFieldsError::arena_exhausted;
        }
        std::memcpy(copy, unescaped.data(), unescaped.size());
        fields.model = std::string_view(copy, unescaped.size());
    }
    fields.has_model = true;
    return RequestFieldsError::none;
}

RequestFieldsError read_stream(ondemand::value& value, RequestFields& fields) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    if (type == ondemand::json_type::null) {
        bool is_null = false;
        if (value.is_null().get(is_null) != simdjson::SUCCESS || !is_null) {
            return RequestFieldsError::not_json;
        }
        return RequestFieldsError::none;
    }
    if (type != ondemand::json_type::boolean) {
        return RequestFieldsError::stream_not_bool;
    }
    if (value.get_bool().get(fields.is_streaming) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    fields.has_stream = true;
    return RequestFieldsError::none;
}

RequestFieldsError read_include_usage(std::string_view body, ondemand::value& value,
                                      RequestFields& fields) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    if (type != ondemand::json_type::boolean && type != ondemand::json_type::null) {
        return RequestFieldsError::include_usage_not_bool;
    }
    fields.include_usage_span = span_of_token(body, value.raw_json_token());
    fields.has_include_usage = true;
    if (type == ondemand::json_type::null) {
        bool is_null = false;
        if (value.is_null().get(is_null) != simdjson::SUCCESS || !is_null) {
            return RequestFieldsError::not_json;
        }
        fields.include_usage = false;
        return RequestFieldsError::none;
    }
    if (value.get_bool().get(fields.include_usage) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    return RequestFieldsError::none;
}

// stream_options: an object (members counted, include_usage read) or null. The object's
// closing '}' is found from where the document iterator stands once the object has been
// walked: the next structural character of the enclosing object.
RequestFieldsError read_stream_options(std::string_view body, ondemand::document& document,
                                       ondemand::value& value, RequestFields& fields) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    const JsonSpan token = span_of_token(body, value.raw_json_token());
    if (type == ondemand::json_type::null) {
        bool is_null = false;
        if (value.is_null().get(is_null) != simdjson::SUCCESS || !is_null) {
            return RequestFieldsError::not_json;
        }
        fields.is_stream_options_null = true;
        fields.stream_options_span = token;
        return RequestFieldsError::none;
    }
    if (type != ondemand::json_type::object) {
        return RequestFieldsError::stream_options_not_object;
    }
    ondemand::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    for (auto member : object) {
        std::string_view key;
        ondemand::value member_value;
        if (member.unescaped_key().get(key) != simdjson::SUCCESS ||
            member.value().get(member_value) != simdjson::SUCCESS) {
            return RequestFieldsError::not_json;
        }
        fields.stream_options_member_count += 1;
        if (key == "include_usage") {
            if (fields.has_include_usage) {
                return RequestFieldsError::duplicate_key;
            }
            const RequestFieldsError error = read_include_usage(body, member_value, fields);
            if (error != RequestFieldsError::none) {
                return error;
            }
        }
    }
    const char* next = nullptr;  // The ',' or '}' after stream_options in the top object.
    if (document.current_location().get(next) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    const uint32_t end = offset_before(body, next);
    if (end <= token.offset || body[end - 1] != '}') {
        return RequestFieldsError::not_json;
    }
    fields.stream_options_span = JsonSpan{token.offset, end - token.offset};
    fields.has_stream_options = true;
    return RequestFieldsError::none;
}

// A non-negative integer member (max_tokens & co., n): out set and true, or absent (null
// counts as absent, out untouched, true), or false for any other type or a negative,
// fractional or too large number.
bool read_count(ondemand::value& value, bool& is_present, uint64_t& out) {
    ondemand::json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        return false;
    }
    if (type == ondemand::json_type::null) {
        bool is_null = false;
        return value.is_null().get(is_null) == simdjson::SUCCESS && is_null;
    }
    if (type != ondemand::json_type::number) {
        return false;
    }
    uint64_t count = 0;
    if (value.get_uint64().get(count) != simdjson::SUCCESS) {
        return false;  // Negative, fractional (1.5, 1e5) or past 2^64.
    }
    is_present = true;
    out = count;
    return true;
}

struct SeenKeys {
    bool model = false;
    bool stream = false;
    bool stream_options = false;
    bool max_tokens = false;
    bool max_completion_tokens = false;
    bool max_output_tokens = false;
    bool choices = false;
    bool previous_response_id = false;
};

// max_tokens, max_completion_tokens, max_output_tokens: the largest present counts.
RequestFieldsError read_output_limit(ondemand::value& value, bool& seen, RequestFields& fields) {
    if (seen) {
        return RequestFieldsError::duplicate_key;
    }
    seen = true;
    bool is_present = false;
    uint64_t limit = 0;
    if (!read_count(value, is_present, limit)) {
        return RequestFieldsError::output_limit_not_integer;
    }
    if (is_present) {
        fields.has_output_limit = true;
        fields.output_tokens_max =
            limit > fields.output_tokens_max ? limit : fields.output_tokens_max;
    }
    return RequestFieldsError::none;
}

RequestFieldsError read_choices(ondemand::value& value, bool& seen, RequestFields& fields) {
    if (seen) {
        return RequestFieldsError::duplicate_key;
    }
    seen = true;
    bool is_present = false;
    uint64_t count = 1;
    if (!read_count(value, is_present, count) || count == 0 || count > 1024) {
        return RequestFieldsError::choices_not_integer;
    }
    fields.choices_count = count;
    return RequestFieldsError::none;
}

// One top-level member: dispatches the keys ringway reads, refuses their duplicates.
RequestFieldsError read_member(Arena& arena, std::string_view body, ondemand::document& document,
                               std::string_view key, ondemand::value& value, SeenKeys& seen,
                               RequestFields& fields) {
    if (key == "model") {
        if (seen.model) {
            return RequestFieldsError::duplicate_key;
        }
        seen.model = true;
        return read_model(arena, body, value, fields);
    }
    if (key == "stream") {
        if (seen.stream) {
            return RequestFieldsError::duplicate_key;
        }
        seen.stream = true;
        return read_stream(value, fields);
    }
    if (key == "stream_options") {
        if (seen.stream_options) {
            return RequestFieldsError::duplicate_key;
        }
        seen.stream_options = true;
        return read_stream_options(body, document, value, fields);
    }
    if (key == "max_tokens") {
        return read_output_limit(value, seen.max_tokens, fields);
    }
    if (key == "max_completion_tokens") {
        return read_output_limit(value, seen.max_completion_tokens, fields);
    }
    if (key == "max_output_tokens") {
        return read_output_limit(value, seen.max_output_tokens, fields);
    }
    if (key == "n") {
        return read_choices(value, seen.choices, fields);
    }
    if (key == "previous_response_id") {
        if (seen.previous_response_id) {
            return RequestFieldsError::duplicate_key;
        }
        seen.previous_response_id = true;
        std::string_view id;  // In the parser's string buffer: copied to outlive the parse.
        if (value.get_string().get(id) == simdjson::SUCCESS && stored_response_id_valid(id)) {
            const char* copy = arena.copy(id);
            if (copy == nullptr) {
                return RequestFieldsError::arena_exhausted;
            }
            fields.previous_response_id = {copy, id.size()};
        }
        return RequestFieldsError::none;  // Anything else is the provider's to judge.
    }
    return RequestFieldsError::none;  // Not ours: On Demand skips it when we move on.
}

struct RewriteEdit {
    uint32_t offset;
    uint32_t remove_bytes;
    std::string_view text;  // Inserted as is, unless is_model.
    bool is_model;          // Insert '"' + escaped new model + '"'.
};

// The stream_options edit that makes include_usage true, or none (returns false).
bool include_usage_edit(const RequestFields& fields, RewriteEdit& edit) {
    if (fields.has_include_usage) {
        if (fields.include_usage) {
            return false;
        }
        edit = {fields.include_usage_span.offset, fields.include_usage_span.bytes, "true", false};
        return true;
    }
    if (fields.has_stream_options) {
        // First member, so the comma goes after it; none when the object is empty.
        const std::string_view text = fields.stream_options_member_count == 0
                                          ? include_usage_member
                                          : std::string_view("\"include_usage\":true,");
        edit = {fields.stream_options_span.offset + 1, 0, text, false};
        return true;
    }
    if (fields.is_stream_options_null) {
        edit = {fields.stream_options_span.offset, fields.stream_options_span.bytes,
                stream_options_object, false};
        return true;
    }
    // Last member of the top object, so the comma goes before it; none for "{}".
    const std::string_view text =
        fields.member_count == 0 ? stream_options_member
                                 : std::string_view(",\"stream_options\":{\"include_usage\":true}");
    edit = {fields.object_end_offset, 0, text, false};
    return true;
}

}  // namespace

simdjson::ondemand::parser& json_thread_parser() {
    thread_local simdjson::ondemand::parser parser(json_document_bytes_max);
    return parser;
}

bool json_parser_reserve(uint32_t capacity_bytes, uint32_t document_bytes_max) {
    RW_ASSERT(capacity_bytes <= document_bytes_max);
    // ondemand::parser::set_max_capacity() in simdjson 3.0.1 (bookworm) stores the minimum
    // document capacity (32 bytes) for any larger value, refusing every real body after
    // it. It is not called: the parser keeps its constructor's maximum, and documents are
    // bounded by RINGWAY_MAX_BODY_BYTES / RINGWAY_MAX_RESPONSE_BYTES before they get here.
    simdjson::ondemand::parser& parser = json_thread_parser();
    return parser.allocate(capacity_bytes) == simdjson::SUCCESS;
}

RequestFieldsError request_fields_parse(Arena& arena, std::string_view padded_body,
                                        RequestFields& fields) {
    fields = RequestFields{};
    fields.choices_count = 1;
    if (padded_body.size() >= UINT32_MAX) {
        return RequestFieldsError::too_large;  // Spans are 32-bit.
    }
    ondemand::document document;
    // The caller promises json_padding_bytes readable bytes after the body.
    const simdjson::padded_string_view input(padded_body.data(), padded_body.size(),
                                             padded_body.size() + json_padding_bytes);
    const simdjson::error_code iterate_error = json_thread_parser().iterate(input).get(document);
    if (iterate_error == simdjson::CAPACITY) {
        return RequestFieldsError::too_large;
    }
    if (iterate_error != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    ondemand::json_type type;
    if (document.type().get(type) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    if (type != ondemand::json_type::object) {
        return RequestFieldsError::not_object;
    }
    ondemand::object object;
    if (document.get_object().get(object) != simdjson::SUCCESS) {
        return RequestFieldsError::not_json;
    }
    SeenKeys seen;
    for (auto member : object) {
        std::string_view key;  // In the parser's string buffer: compared, never kept.
        ondemand::value member_value;
        if (member.unescaped_key().get(key) != simdjson::SUCCESS ||
            member.value().get(member_value) != simdjson::SUCCESS) {
            return RequestFieldsError::not_json;
        }
        fields.member_count += 1;
        const RequestFieldsError error =
            read_member(arena, padded_body, document, key, member_value, seen, fields);
        if (error != RequestFieldsError::none) {
            return error;
        }
    }
    // Nothing but whitespace may follow the object: current_location() is OUT_OF_BOUNDS
    // exactly when the iterator has consumed every structural character.
    const char* trailing = nullptr;
    if (document.current_location().get(trailing) != simdjson::OUT_OF_BOUNDS) {
        return RequestFieldsError::not_json;
    }
    const uint32_t end = offset_before(padded_body, padded_body.data() + padded_body.size());
    if (end == 0 || padded_body[end - 1] != '}') {
        return RequestFieldsError::not_json;
    }
    fields.object_end_offset = end - 1;
    if (fields.has_model) {
        RW_ASSERT(fields.model_span.offset + fields.model_span.bytes <= fields.object_end_offset);
    }
    return fields.has_model ? RequestFieldsError::none : RequestFieldsError::model_missing;
}

std::string_view request_rewrite(Arena& arena, std::string_view body, const RequestFields& fields,
                                 std::string_view new_model, bool ensure_include_usage,
                                 std::string_view added_member) {
    RW_ASSERT(fields.object_end_offset < body.size());
    RewriteEdit edits[3];
    uint32_t edit_count = 0;
    if (!added_member.empty()) {
        // Last member of the top object (a parsed body has its model, so never alone).
        RW_ASSERT(fields.member_count > 0 && added_member.front() == ',');
        edits[edit_count] = {fields.object_end_offset, 0, added_member, false};
        edit_count += 1;
    }
    if (!new_model.empty() && new_model != fields.model) {
        RW_ASSERT(fields.has_model);
        edits[edit_count] = {fields.model_span.offset, fields.model_span.bytes, {}, true};
        edit_count += 1;
    }
    if (ensure_include_usage && include_usage_edit(fields, edits[edit_count])) {
        edit_count += 1;
    }
    if (edit_count == 0) {
        return body;  // Already what the upstream should see: no copy.
    }
    // At most three edits: ordered by hand (std::sort here trips GCC 12's -Warray-bounds).
    // Two inserts at the object's end keep their order (stable).
    for (uint32_t index = 1; index < edit_count; index += 1) {
        for (uint32_t at = index; at > 0 && edits[at].offset < edits[at - 1].offset; at -= 1) {
            std::swap(edits[at], edits[at - 1]);
        }
    }
    uint64_t output_bytes = body.size();
    for (uint32_t index = 0; index < edit_count; index += 1) {
        const RewriteEdit& edit = edits[index];
        RW_ASSERT(edit.offset + edit.remove_bytes <= body.size());
        if (index > 0) {
            RW_ASSERT(edits[index - 1].offset + edits[index - 1].remove_bytes <= edit.offset);
        }
        const uint64_t insert_bytes =
            edit.is_model ? json_escaped_bytes(new_model) + 2 : edit.text.size();
        output_bytes = output_bytes - edit.remove_bytes + insert_bytes;
    }
    char* output = static_cast<char*>(arena.alloc(output_bytes + json_padding_bytes, 1));
    if (output == nullptr) {
        return {};
    }
    char* cursor = output;
    uint32_t copied_until = 0;  // Body bytes before this offset are in the output.
    for (uint32_t index = 0; index < edit_count; index += 1) {
        const RewriteEdit& edit = edits[index];
        std::memcpy(cursor, body.data() + copied_until, edit.offset - copied_until);
        cursor += edit.offset - copied_until;
        if (edit.is_model) {
            *cursor++ = '"';
            cursor = json_escape_write(cursor, new_model);
            *cursor++ = '"';
        } else {
            std::memcpy(cursor, edit.text.data(), edit.text.size());
            cursor += edit.text.size();
        }
        copied_until = edit.offset + edit.remove_bytes;
    }
    std::memcpy(cursor, body.data() + copied_until, body.size() - copied_until);
    cursor += body.size() - copied_until;
    RW_ASSERT(static_cast<uint64_t>(cursor - output) == output_bytes);
    std::memset(cursor, 0, json_padding_bytes);
    return std::string_view(output, output_bytes);
}

bool json_escape_to_arena(Arena& arena, std::string_view text, std::string_view& escaped) {
    const uint64_t escaped_bytes = json_escaped_bytes(text);
    char* target = static_cast<char*>(arena.alloc(escaped_bytes, 1));
    if (target == nullptr) {
        return false;
    }
    char* end = json_escape_write(target, text);
    RW_ASSERT(static_cast<uint64_t>(end - target) == escaped_bytes);
    escaped = std::string_view(target, escaped_bytes);
    return true;
}

std::string_view request_fields_error_code(RequestFieldsError error) {
    switch (error) {
        case RequestFieldsError::none: return "none";
        case RequestFieldsError::not_json: return "invalid_json";
        case RequestFieldsError::not_object: return "invalid_json";
        case RequestFieldsError::too_large: return "request_too_large";
        case RequestFieldsError::model_missing: return "missing_required_parameter";
        case RequestFieldsError::model_not_string: return "invalid_type";
        case RequestFieldsError::stream_not_bool: return "invalid_type";
        case RequestFieldsError::stream_options_not_object: return "invalid_type";
        case RequestFieldsError::include_usage_not_bool: return "invalid_type";
        case RequestFieldsError::duplicate_key: return "duplicate_parameter";
        case RequestFieldsError::output_limit_not_integer: return "invalid_type";
        case RequestFieldsError::choices_not_integer: return "invalid_type";
        case RequestFieldsError::arena_exhausted: return "overloaded";
    }
    RW_UNREACHABLE();
}

std::string_view request_fields_error_message(RequestFieldsError error) {
    switch (error) {
        case RequestFieldsError::none: return "";
        case RequestFieldsError::not_json:
            return "We could not parse the JSON body of your request. The body must be one "
                   "valid JSON document.";
        case RequestFieldsError::not_object: return "The request body must be a JSON object.";
        case RequestFieldsError::too_large: return "The JSON body of your request is too large.";
        case RequestFieldsError::model_missing: return "You must provide a model parameter.";
        case RequestFieldsError::model_not_string:
            return "Invalid type for 'model': expected a string.";
        case RequestFieldsError::stream_not_bool:
            return "Invalid type for 'stream': expected a boolean.";
        case RequestFieldsError::stream_options_not_object:
            return "Invalid type for 'stream_options': expected an object.";
        case RequestFieldsError::include_usage_not_bool:
            return "Invalid type for 'stream_options.include_usage': expected a boolean.";
        case RequestFieldsError::duplicate_key:
            return "The request body repeats a parameter (model, stream, stream_options, "
                   "stream_options.include_usage, max_tokens, max_completion_tokens, "
                   "max_output_tokens or n).";
        case RequestFieldsError::output_limit_not_integer:
            return "Invalid type for the output token limit (max_tokens, max_completion_tokens "
                   "or max_output_tokens): expected a non-negative integer.";
        case RequestFieldsError::choices_not_integer:
            return "Invalid value for 'n': expected an integer from 1 to 1024.";
        case RequestFieldsError::arena_exhausted: return "The gateway is overloaded. Please retry.";
    }
    RW_UNREACHABLE();
}

std::string_view request_fields_error_param(RequestFieldsError error) {
    switch (error) {
        case RequestFieldsError::model_missing:
        case RequestFieldsError::model_not_string: return "model";
        case RequestFieldsError::stream_not_bool: return "stream";
        case RequestFieldsError::stream_options_not_object: return "stream_options";
        case RequestFieldsError::include_usage_not_bool: return "stream_options.include_usage";
        case RequestFieldsError::output_limit_not_integer: return "max_tokens";
        case RequestFieldsError::choices_not_integer: return "n";
        case RequestFieldsError::none:
        case RequestFieldsError::not_json:
        case RequestFieldsError::not_object:
        case RequestFieldsError::too_large:
        case RequestFieldsError::duplicate_key:
        case RequestFieldsError::arena_exhausted: return "";
    }
    RW_UNREACHABLE();
}

}  // namespace rw
