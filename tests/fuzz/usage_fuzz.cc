// tests/fuzz/usage_fuzz.cc — fuzz target for proxy/usage (usage_from_json,
// usage_and_response_id_from_json against the two reads it replaces, and
// usage_read_document) and, on the same JSON input, proxy/json_fields: any body that
// request_fields_parse() accepts must come out of request_rewrite() (new model, forced
// include_usage) as a body that parses again with exactly the expected fields. The first
// input byte picks the usage format and the new model's length; the rest is the document.
// Built as a libFuzzer binary under clang and as a corpus replay test everywhere.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/json_fields.h"
#include "proxy/usage.h"

namespace rw {
namespace {

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

// One walk for usage and the stored response id gives what the two reads give, for every
// well-formed document (On Demand does not validate: on broken JSON a walk that reads a
// value and one that skips it may stop at different faults).
void fuzz_usage_and_id(std::string_view json, UsageFormat format, bool is_ok,
                       const UsageCounts& counts) {
    static simdjson::dom::parser validator;
    if (validator.parse(json.data(), json.size()).error() != simdjson::SUCCESS) {
        return;
    }
    UsageCounts with_id;
    std::string_view id;
    check(usage_and_response_id_from_json(json, format, with_id, id) == is_ok);
    check(with_id.total_tokens == counts.total_tokens && with_id.has_usage == counts.has_usage &&
          with_id.prompt_tokens == counts.prompt_tokens &&
          with_id.cached_input_tokens == counts.cached_input_tokens);
    const std::string kept(id);  // The id may point into the parser, which the next read reuses.
    check(kept == stored_response_id_read(json, false));
}

void fuzz_usage(std::string_view json, UsageFormat format) {
    UsageCounts counts;
    const bool is_ok = usage_from_json(json, format, counts);
    if (!is_ok || !counts.has_usage) {
        check(!counts.has_usage);
        check(counts.prompt_tokens == 0 && counts.completion_tokens == 0 &&
              counts.total_tokens == 0);
    }
    // The kinds are parts of their totals, whatever the upstream wrote.
    check(counts.cached_input_tokens + counts.cache_write_tokens <= counts.prompt_tokens);
    check(counts.reasoning_tokens <= counts.completion_tokens);
    UsageCounts again;
    check(usage_from_json(json, format, again) == is_ok);  // Deterministic, no state kept.
    check(again.total_tokens == counts.total_tokens && again.has_usage == counts.has_usage);
    fuzz_usage_and_id(json, format, is_ok, counts);
    for (const UsageAt at : {UsageAt::root, UsageAt::in_response, UsageAt::in_message}) {
        UsageParts parts;
        parts.input_tokens = 7;
        const UsageDocument document = usage_read_document(json, format, at, parts);
        if (!document.is_json || !document.has_usage) {
            check(parts.input_tokens == 7 && !parts.has_usage);  // Untouched.
        }
        if (at == UsageAt::root) {
            check(document.is_json == is_ok);
            check(document.has_usage == counts.has_usage);
        }
    }
}

void fuzz_rewrite(std::string_view json, uint8_t seed) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 32 << 20);
    RequestFields fields;
    if (request_fields_parse(arena, json, fields) == RequestFieldsError::none) {
        check(fields.has_model);
        check(json[fields.object_end_offset] == '}');
        check(json[fields.model_span.offset] == '"');
        // A model name with characters that need escaping, of a seed-chosen length.
        const std::string new_model = std::string("m\"\\\n\x01/") + std::string(seed % 17, 'x');
        const std::string_view output = request_rewrite(arena, json, fields, new_model, true);
        check(!output.empty());
        RequestFields again;
        check(request_fields_parse(arena, output, again) == RequestFieldsError::none);
        check(again.model == new_model);
        check(again.has_include_usage && again.include_usage);
        check(again.has_stream == fields.has_stream && again.is_streaming == fields.is_streaming);
        // Everything after the last edit is byte-identical.
        const size_t tail_bytes = json.size() - fields.object_end_offset;
        check(output.substr(output.size() - tail_bytes) == json.substr(fields.object_end_offset));
    }
    arena.release();
}

}  // namespace
}  // namespace rw

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const uint8_t seed = data[0];
    constexpr rw::UsageFormat formats[] = {rw::UsageFormat::chat, rw::UsageFormat::responses,
                                           rw::UsageFormat::embeddings,
                                           rw::UsageFormat::anthropic_messages};
    // simdjson reads up to json_padding_bytes past the end: give it a padded copy.
    std::string padded(reinterpret_cast<const char*>(data + 1), size - 1);
    padded.append(rw::json_padding_bytes, '\0');
    const std::string_view json(padded.data(), size - 1);
    rw::fuzz_usage(json, formats[seed & 3]);
    rw::fuzz_rewrite(json, seed);
    return 0;
}
