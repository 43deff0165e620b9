// proxy/admin/json.cc — the admin API's JSON field readers and the JSON texts built from
// string lists (see json.h). simdjson results are checked by error code at every step.
#include "proxy/admin/json.h"

#include "core/limits.h"
#include "storage/json_lite.h"

namespace rw {

namespace ondemand = simdjson::ondemand;

std::string json_usd(int64_t nano) {
    std::string text = nano < 0 ? "-" : "";
    const uint64_t magnitude = nano < 0 ? uint64_t(0) - uint64_t(nano) : uint64_t(nano);
    fixed_decimal_append(text, magnitude, usd_fraction_digits);
    return text;
}

std::string json_string_array(const std::vector<std::string>& items) {
    JsonOut out;
    out.begin_array();
    for (const std::string& item : items) {
        out.string(item);
    }
    out.end_array();
    return out.take();
}

std::string json_string_map(const std::vector<std::pair<std::string, std::string>>& items) {
    JsonOut out;
    out.begin_object();
    for (const auto& [from, to] : items) {
        out.key(from).string(to);
    }
    out.end_object();
    return out.take();
}

// Stored JSON text (validated on write) re-serialised, so a hand-edited row can never
// inject raw text into a response. Unparseable text shows as null.
void json_out_models(JsonOut& out, const std::string& models_json) {
    std::vector<std::string> models;
    std::string error;
    if (!json_parse_string_array(models_json, models, error)) {
        out.null();
        return;
    }
    out.begin_array();
    for (const std::string& model : models) {
        out.string(model);
    }
    out.end_array();
}

// A field-level failure: code "invalid_field", message names the field.
bool json_field_error(std::string_view field, std::string_view what, std::string& error) {
    error.assign(field);
    error.append(" ");
    error.append(what);
    return false;
}

bool json_is_null(ondemand::value& value) {
    ondemand::json_type type;
    return value.type().get(type) == simdjson::SUCCESS && type == ondemand::json_type::null;
}

bool json_read_string(ondemand::value& value, std::string_view field, std::string& out,
                      std::string& error) {
    std::string_view text;
    if (value.get_string().get(text) != simdjson::SUCCESS) {
        return json_field_error(field, "must be a string", error);
    }
    out.assign(text);
    return true;
}

bool json_read_int(ondemand::value& value, std::string_view field, int64_t min, int64_t max,
                   int64_t& out, std::string& error) {
    ondemand::json_type type;
    int64_t number = 0;
    if (value.type().get(type) != simdjson::SUCCESS || type != ondemand::json_type::number ||
        value.get_int64().get(number) != simdjson::SUCCESS) {
        return json_field_error(field, "must be an integer", error);
    }
    if (number < min || number > max) {
        return json_field_error(
            field, "must be in " + std::to_string(min) + ".." + std::to_string(max), error);
    }
    out = number;
    return true;
}

bool json_read_bool(ondemand::value& value, std::string_view field, bool& out, std::string& error) {
    if (value.get_bool().get(out) != simdjson::SUCCESS) {
        return json_field_error(field, "must be true or false", error);
    }
    return true;
}

bool json_read_usd(ondemand::value& value, std::string_view field, int64_t max, int64_t& out,
                   std::string& error) {
    RW_ASSERT(max >= 0);
    std::string_view text;
    uint64_t nano = 0;
    if (value.get_string().get(text) != simdjson::SUCCESS) {
        return json_field_error(field, "must be a decimal string of USD, e.g. \"0.15\"", error);
    }
    if (!parse_fixed_decimal(text, usd_fraction_digits, uint64_t(max), nano)) {
        std::string limit;
        fixed_decimal_append(limit, uint64_t(max), usd_fraction_digits);
        return json_field_error(field,
                                "must be a USD amount from 0 to " + limit +
                                    " with at most 9 decimal places (nano-USD), e.g. \"0.15\"",
                                error);
    }
    out = int64_t(nano);
    return true;
}

bool json_read_string_array(ondemand::value& value, std::string_view field,
                            std::vector<std::string>& out, std::string& error) {
    ondemand::array array;
    if (value.get_array().get(array) != simdjson::SUCCESS) {
        return json_field_error(field, "must be an array of strings", error);
    }
    out.clear();
    for (auto element : array) {
        std::string_view text;
        if (element.get_string().get(text) != simdjson::SUCCESS || text.empty()) {
            return json_field_error(field, "must be an array of non-empty strings", error);
        }
        if (out.size() >= admin_models_count_max) {
            return json_field_error(field, "has too many entries", error);
        }
        out.emplace_back(text);
    }
    return true;
}

bool json_read_string_map(ondemand::value& value, std::string_view field,
                          std::vector<std::pair<std::string, std::string>>& out,
                          std::string& error) {
    ondemand::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
        return json_field_error(field, "must be an object of strings", error);
    }
    out.clear();
    for (auto item : object) {
        ondemand::field member;
        std::string_view from;
        std::string_view to;
        if (std::move(item).get(member) != simdjson::SUCCESS ||
            member.unescaped_key().get(from) != simdjson::SUCCESS) {
            return json_field_error(field, "is not valid JSON", error);
        }
        std::string from_copy(from);  // The key view dies when the value is read.
        if (member.value().get_string().get(to) != simdjson::SUCCESS) {
            return json_field_error(field, "must be an object of strings", error);
        }
        if (out.size() >= admin_models_count_max) {
            return json_field_error(field, "has too many entries", error);
        }
        out.emplace_back(std::move(from_copy), std::string(to));
    }
    return true;
}

bool json_unknown_field(std::string_view key, std::string& error) {
    error = "unknown field \"" + std::string(key.substr(0, 64)) + "\"";
    return false;
}

}  // namespace rw
