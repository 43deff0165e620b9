// proxy/admin/json.h — the admin API's JSON, both ways. In: a request body read with
// simdjson On Demand (error codes, never exceptions) member by member into typed fields,
// every refusal one sentence naming the field. Out: JsonOut, a response built left to
// right. Escaping is core/text.h's, the program's one escaper. Control plane: these
// allocate freely. Admin thread (and tests).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/assert.h"
#include "core/text.h"

namespace rw {

// ---- Out --------------------------------------------------------------------------------

// A JSON text built left to right; commas are placed by tracking whether the current
// container already holds a member. Callers keep begin/end balanced (asserted by depth_).
class JsonOut {
public:
    JsonOut& begin_object() { return open('{'); }
    JsonOut& end_object() { return close('}'); }
    JsonOut& begin_array() { return open('['); }
    JsonOut& end_array() { return close(']'); }
    JsonOut& key(std::string_view name) {
        separate();
        json_escape_append(text_, name);
        text_.push_back(':');
        has_member_ = false;
        return *this;
    }
    JsonOut& string(std::string_view value) {
        separate();
        json_escape_append(text_, value);
        has_member_ = true;
        return *this;
    }
    JsonOut& number(int64_t value) {
        separate();
        text_.append(std::to_string(value));
        has_member_ = true;
        return *this;
    }
    JsonOut& boolean(bool value) {
        separate();
        text_.append(value ? "true" : "false");
        has_member_ = true;
        return *this;
    }
    JsonOut& null() {
        separate();
        text_.append("null");
        has_member_ = true;
        return *this;
    }
    [[nodiscard]] std::string take() {
        RW_ASSERT(depth_ == 0);
        return std::move(text_);
    }

private:
    void separate() {
        if (has_member_) {
            text_.push_back(',');
        }
    }
    JsonOut& open(char bracket) {
        separate();
        text_.push_back(bracket);
        has_member_ = false;
        depth_ += 1;
        return *this;
    }
    JsonOut& close(char bracket) {
        RW_ASSERT(depth_ > 0);
        text_.push_back(bracket);
        has_member_ = true;
        depth_ -= 1;
        return *this;
    }

    std::string text_;
    bool has_member_ = false;
    uint32_t depth_ = 0;
};

// nano-USD as an exact USD decimal string: 1500 → "0.0000015", 2000000000 → "2". Negative
// amounts (none are stored) keep their sign.
[[nodiscard]] std::string json_usd(int64_t nano);

// items → ["a","b"] and {"from":"to"} as JSON text.
[[nodiscard]] std::string json_string_array(const std::vector<std::string>& items);
[[nodiscard]] std::string json_string_map(
    const std::vector<std::pair<std::string, std::string>>& items);

// Stored JSON text (validated on write) re-serialised, so a hand-edited row can never
// inject raw text into a response. Unparseable text shows as null.
void json_out_models(JsonOut& out, const std::string& models_json);

// ---- In ---------------------------------------------------------------------------------
// Each reader takes the member's value and the member's name (for the message); false
// with `error` = "<field> must be ..." when the value has the wrong type or range.

// A field-level failure: code "invalid_field", message names the field. Always false.
bool json_field_error(std::string_view field, std::string_view what, std::string& error);
// "unknown field \"<key>\"" (the key cut at 64 bytes). Always false.
bool json_unknown_field(std::string_view key, std::string& error);

[[nodiscard]] bool json_is_null(simdjson::ondemand::value& value);
[[nodiscard]] bool json_read_string(simdjson::ondemand::value& value, std::string_view field,
                                    std::string& out, std::string& error);
// An integer (not 1.5, not "5") in [min, max].
[[nodiscard]] bool json_read_int(simdjson::ondemand::value& value, std::string_view field,
                                 int64_t min, int64_t max, int64_t& out, std::string& error);
[[nodiscard]] bool json_read_bool(simdjson::ondemand::value& value, std::string_view field,
                                  bool& out, std::string& error);
// USD as a decimal string ("0.15"), parsed exactly into nano-USD in [0, max]: no JSON
// numbers (they would be read as binary floating point), at most 9 decimal places.
[[nodiscard]] bool json_read_usd(simdjson::ondemand::value& value, std::string_view field,
                                 int64_t max, int64_t& out, std::string& error);
// Non-empty strings, at most admin_models_count_max of them.
[[nodiscard]] bool json_read_string_array(simdjson::ondemand::value& value, std::string_view field,
                                          std::vector<std::string>& out, std::string& error);
// An object of strings, at most admin_models_count_max members.
[[nodiscard]] bool json_read_string_map(simdjson::ondemand::value& value, std::string_view field,
                                        std::vector<std::pair<std::string, std::string>>& out,
                                        std::string& error);

// Parses `body` as one JSON object and calls visit(key, value, error) per member. On
// failure `code` is "invalid_json" (syntax, not an object, trailing bytes) or
// "invalid_field" (visit said no), and `error` is one sentence.
template <class Visit>
bool json_visit_object(simdjson::ondemand::parser& parser, std::string_view body, Visit visit,
                       std::string& code, std::string& error) {
    const simdjson::padded_string padded(body);  // On Demand reads past the end.
    simdjson::ondemand::document document;
    simdjson::ondemand::object object;
    code = "invalid_json";
    if (parser.iterate(padded).get(document) != simdjson::SUCCESS ||
        document.get_object().get(object) != simdjson::SUCCESS) {
        error = "request body must be a JSON object";
        return false;
    }
    for (auto item : object) {
        simdjson::ondemand::field member;
        std::string_view key;
        if (std::move(item).get(member) != simdjson::SUCCESS ||
            member.unescaped_key().get(key) != simdjson::SUCCESS) {
            error = "request body is not valid JSON";
            return false;
        }
        const std::string key_copy(key);
        if (!visit(std::string_view(key_copy), member.value(), error)) {
            if (error.empty()) {
                error = "request body is not valid JSON";
            }
            code = "invalid_field";
            return false;
        }
    }
    // simdjson 3.0 has no document::at_end(); past the last token current_location()
    // reports OUT_OF_BOUNDS, anything else means bytes follow the object.
    const char* location = nullptr;
    if (document.current_location().get(location) != simdjson::OUT_OF_BOUNDS) {
        error = "request body is not valid JSON (bytes after the object)";
        return false;
    }
    return true;
}

}  // namespace rw
