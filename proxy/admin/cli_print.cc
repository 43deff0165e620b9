// proxy/admin/cli_print.cc — admin_cli_print_shape: the answer parsed with simdjson DOM
// (error codes), each field turned into display text (numbers, strings, yes/no, lists
// joined by ",", null as "-", Unix times as UTC), columns padded to the widest cell
// counted in code points. Prints only what the API returned, which never holds a secret
// except a created key's, and that is printed by the caller (cli.cc), not here.
#include "proxy/admin/cli_print.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <vector>

namespace rw {

namespace {

using Row = std::vector<std::string>;

// Terminal columns of UTF-8 text: code points (UTF-8 continuation bytes do not count).
size_t display_width(std::string_view text) {
    size_t width = 0;
    for (const char c : text) {
        width += (uint8_t(c) & 0xc0) != 0x80 ? 1 : 0;
    }
    return width;
}

void print_table(const Row& header, const std::vector<Row>& rows) {
    std::vector<size_t> widths(header.size(), 0);
    for (size_t i = 0; i < header.size(); i++) {
        widths[i] = display_width(header[i]);
    }
    for (const Row& row : rows) {
        for (size_t i = 0; i < row.size() && i < widths.size(); i++) {
            widths[i] = std::max(widths[i], display_width(row[i]));
        }
    }
    const auto print_row = [&](const Row& row) {
        std::string line;
        for (size_t i = 0; i < row.size(); i++) {
            line += row[i];
            if (i + 1 < row.size()) {
                line += std::string(widths[i] - display_width(row[i]) + 2, ' ');
            }
        }
        std::printf("%s\n", line.c_str());
    };
    print_row(header);
    for (const Row& row : rows) {
        print_row(row);
    }
}

// A field as display text: numbers, strings, booleans; null → "-"; arrays joined by ",".
std::string field_text(simdjson::dom::element object, std::string_view name) {
    simdjson::dom::element value;
    if (object[name].get(value) != simdjson::SUCCESS || value.is_null()) {
        return "-";
    }
    std::string_view text;
    int64_t integer = 0;
    uint64_t unsigned_integer = 0;
    bool flag = false;
    simdjson::dom::array items;
    if (value.get_string().get(text) == simdjson::SUCCESS) {
        return std::string(text);
    }
    if (value.get_int64().get(integer) == simdjson::SUCCESS) {
        return std::to_string(integer);
    }
    if (value.get_uint64().get(unsigned_integer) == simdjson::SUCCESS) {
        return std::to_string(unsigned_integer);
    }
    if (value.get_bool().get(flag) == simdjson::SUCCESS) {
        return flag ? "yes" : "no";
    }
    if (value.is_object()) {
        return simdjson::minify(value);  // e.g. a key's per-model limits.
    }
    if (value.get_array().get(items) != simdjson::SUCCESS) {
        return "?";
    }
    std::string joined;
    for (simdjson::dom::element item : items) {
        std::string_view item_text;
        if (item.get_string().get(item_text) != simdjson::SUCCESS) {
            continue;
        }
        if (!joined.empty()) {
            joined += ",";
        }
        joined += item_text;
    }
    return joined.empty() ? "(all)" : joined;
}

std::string time_text(simdjson::dom::element object, std::string_view name, int64_t divisor) {
    int64_t value = 0;
    if (object[name].get_int64().get(value) != simdjson::SUCCESS || value == 0) {
        return "-";
    }
    const time_t seconds = time_t(value / divisor);
    tm parts{};
    gmtime_r(&seconds, &parts);
    char buffer[32];
    std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M:%SZ", &parts);
    return buffer;
}

// A member of a nested object ("health": {...}); "-" when either is missing.
std::string nested_text(simdjson::dom::element item, std::string_view object, std::string_view name,
                        bool is_time) {
    simdjson::dom::element inner;
    if (item[object].get(inner) != simdjson::SUCCESS || !inner.is_object()) {
        return "-";
    }
    return is_time ? time_text(inner, name, 1) : field_text(inner, name);
}

// A percentile of a /admin/latency day ({"latency_us":{"p50":N,...}}) in milliseconds
// with one decimal; "-" when there is none (no row of the day had a first byte).
std::string percentile_ms(simdjson::dom::element item, std::string_view object,
                          std::string_view name) {
    int64_t micros = 0;
    if (item[object][name].get_int64().get(micros) != simdjson::SUCCESS) {
        return "-";
    }
    char text[32];
    std::snprintf(text, sizeof(text), "%.1f", double(micros) / 1000.0);
    return text;
}

Row shape_header(CliShape shape) {
    switch (shape) {
        case CliShape::key:
            return {"ID",      "NAME",   "PREFIX", "STATUS",     "QUOTA",           "USED",
                    "EXPIRES", "MODELS", "RPM",    "CONC",       "SPEND_USD",       "ALLOWED_CIDRS",
                    "TPM",     "LIMITS", "PERIOD", "BUDGET_USD", "PERIOD_SPEND_USD"};
        case CliShape::channel:
            return {"ID",   "NAME",   "KIND",    "BASE_URL", "API_KEY", "MODELS",
                    "PRIO", "WEIGHT", "ENABLED", "HEALTH",   "SINCE",   "LAST_ERROR"};
        case CliShape::probe:
            return {"CHANNEL", "RESULT", "STATUS", "LATENCY_MS", "HEALTH", "ERROR"};
        case CliShape::price:
            return {"ID",          "MODEL",          "CHANNEL",     "INPUT",
                    "OUTPUT",      "CACHED_IN",      "CACHE_WRITE", "REASONING",
                    "PER_REQUEST", "EFFECTIVE_FROM", "DELETED"};
        case CliShape::alias: return {"ID", "NAME", "MODELS", "UPDATED"};
        case CliShape::usage:
            return {"DAY",    "KEY",         "MODEL",      "CHANNEL",   "REQUESTS", "PROMPT",
                    "CACHED", "CACHE_WRITE", "COMPLETION", "REASONING", "TOTAL",    "COST_USD"};
        case CliShape::log:
            return {"ID",     "TIME", "KEY",        "CHANNEL",  "MODEL",     "STATUS",
                    "TOKENS", "END",  "LATENCY_MS", "COST_USD", "REQUEST_ID"};
        case CliShape::latency:
            return {"DAY", "REQUESTS",    "LATENCY_P50_MS", "P90",
                    "P99", "TTFB_P50_MS", "TTFB_P90",       "TTFB_P99"};
    }
    return {};
}

Row key_row(simdjson::dom::element item) {
    const auto f = [&](std::string_view name) { return field_text(item, name); };
    return {f("id"),
            f("name"),
            f("key_prefix"),
            f("status"),
            f("quota_tokens"),
            f("quota_used_tokens"),
            time_text(item, "expires_at", 1),
            f("models"),
            f("rpm"),
            f("max_concurrency"),
            f("spend_usd"),
            f("allowed_cidrs"),
            f("tpm"),
            f("limits"),
            f("period"),
            nested_text(item, "current_period", "budget_usd", false),
            nested_text(item, "current_period", "spend_usd", false)};
}

Row shape_row(CliShape shape, simdjson::dom::element item) {
    const auto f = [&](std::string_view name) { return field_text(item, name); };
    switch (shape) {
        case CliShape::key: return key_row(item);
        case CliShape::channel:
            return {f("id"),
                    f("name"),
                    f("kind"),
                    f("base_url"),
                    f("api_key"),
                    f("models"),
                    f("priority"),
                    f("weight"),
                    f("enabled"),
                    nested_text(item, "health", "state", false),
                    nested_text(item, "health", "since", true),
                    nested_text(item, "health", "last_error", false)};
        case CliShape::probe:
            return {f("channel_id"), f("result"), f("status"),
                    f("latency_ms"), f("state"),  f("error")};
        case CliShape::price:
            return {f("id"),
                    f("model"),
                    f("channel_id"),
                    f("input_per_mtok"),
                    f("output_per_mtok"),
                    f("cached_input_per_mtok"),
                    f("cache_write_per_mtok"),
                    f("reasoning_per_mtok"),
                    f("per_request"),
                    time_text(item, "effective_from", 1),
                    time_text(item, "deleted_at", 1)};
        case CliShape::alias:
            return {f("id"), f("name"), f("models"), time_text(item, "updated_at", 1)};
        case CliShape::usage:  // Members a grouping left out show as "-".
            return {f("day"),
                    f("key_id"),
                    f("model"),
                    f("channel_id"),
                    f("requests"),
                    f("prompt_tokens"),
                    f("cached_input_tokens"),
                    f("cache_write_tokens"),
                    f("completion_tokens"),
                    f("reasoning_tokens"),
                    f("total_tokens"),
                    f("cost_usd")};
        case CliShape::latency:
            return {f("day"),
                    f("requests"),
                    percentile_ms(item, "latency_us", "p50"),
                    percentile_ms(item, "latency_us", "p90"),
                    percentile_ms(item, "latency_us", "p99"),
                    percentile_ms(item, "ttfb_us", "p50"),
                    percentile_ms(item, "ttfb_us", "p90"),
                    percentile_ms(item, "ttfb_us", "p99")};
        case CliShape::log: {
            int64_t latency_us = 0;
            if (item["latency_us"].get_int64().get(latency_us) != simdjson::SUCCESS) {
                latency_us = 0;
            }
            return {f("id"),
                    time_text(item, "ts_ms", 1000),
                    f("key_id"),
                    f("channel_id"),
                    f("model_requested"),
                    f("status"),
                    f("total_tokens"),
                    f("end_reason"),
                    std::to_string(latency_us / 1000),
                    f("cost_usd"),
                    f("request_id")};
        }
    }
    return {};
}

}  // namespace

bool admin_cli_print_shape(CliShape shape, const std::string& body) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (parser.parse(body).get(root) != simdjson::SUCCESS) {
        return false;
    }
    std::vector<Row> rows;
    simdjson::dom::array data;
    if (root["data"].get_array().get(data) == simdjson::SUCCESS) {
        for (simdjson::dom::element item : data) {
            rows.push_back(shape_row(shape, item));
        }
    } else {
        rows.push_back(shape_row(shape, root));
    }
    print_table(shape_header(shape), rows);
    int64_t next = 0;
    if (shape == CliShape::log && root["next_before"].get_int64().get(next) == simdjson::SUCCESS) {
        std::printf("(more: --before %lld)\n", (long long)next);
    }
    return true;
}

}  // namespace rw
