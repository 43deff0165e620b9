// proxy/admin/cli_report.cc — the CLI's report commands (see cli_report.h).
#include "proxy/admin/cli_report.h"

#include <cctype>
#include <ctime>

#include "proxy/admin/cli.h"

namespace rw {
namespace {

// A query value the API accepts as is: digits and '-' only (ids, days, Unix seconds).
bool add_query(std::string& query, std::string_view name, std::string_view value,
               std::string& error) {
    for (const char c : value) {
        if ((c < '0' || c > '9') && c != '-') {
            const std::string_view option = name == "key_id" ? std::string_view("key") : name;
            error = "--" + std::string(option) + " has an invalid value";
            return false;
        }
    }
    query += query.empty() ? "?" : "&";
    query += std::string(name) + "=" + std::string(value);
    return true;
}

// Percent-encodes everything but unreserved characters (RFC 3986 2.3).
std::string url_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (std::isalnum(byte) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(c);
        } else {
            out += {'%', hex[byte >> 4], hex[byte & 15]};
        }
    }
    return out;
}

bool is_all_digits(std::string_view text) {
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return !text.empty();
}

// --key ID|NAME: an id goes into the query now, a name is resolved by the caller.
bool key_option(const Args& args, std::string& query, CliReport& report, std::string& error) {
    const std::string* key = args_option(args, "key");
    if (key == nullptr) {
        return true;
    }
    if (key->empty()) {
        error = "--key needs a key id or name";
        return false;
    }
    if (!is_all_digits(*key)) {
        report.key_name = *key;
        return true;
    }
    return add_query(query, "key_id", *key, error);
}

// --since / --until: "7d" means since seven days ago (the API turns Unix seconds into a
// UTC day); a day (YYYY-MM-DD) or Unix seconds go as they are.
bool day_options(const Args& args, std::string& query, std::string& error) {
    for (const char* name : {"since", "until"}) {
        const std::string* value = args_option(args, name);
        if (value == nullptr) {
            continue;
        }
        int64_t seconds = 0;
        const std::string bound = admin_cli_parse_duration(*value, seconds)
                                      ? std::to_string(int64_t(std::time(nullptr)) - seconds)
                                      : *value;
        if (!add_query(query, name, bound, error)) {
            return false;
        }
    }
    return true;
}

// logs: --request ID alone, or any of --key, --status, --end-reason, --limit, --before.
bool logs_parse(const Args& args, std::string& query, CliReport& report, std::string& error) {
    if (!args_only(args, {"key", "limit", "before", "request", "status", "end-reason"}, error)) {
        return false;
    }
    report.shape = CliShape::log;
    if (const std::string* request_id = args_option(args, "request")) {
        // Ringway's id (x-request-id of the answer), the client's or the provider's.
        if (args.options.size() != 1 || request_id->empty()) {
            error = "--request ID takes no other option";
            return false;
        }
        report.path = "/admin/logs?request_id=" + url_encode(*request_id);
        return true;
    }
    if (!key_option(args, query, report, error)) {
        return false;
    }
    for (const char* name : {"limit", "before", "status"}) {
        const std::string* value = args_option(args, name);
        if (value != nullptr && !add_query(query, name, *value, error)) {
            return false;
        }
    }
    if (const std::string* reason = args_option(args, "end-reason")) {
        // Names like client_gone; the API says which it knows.
        for (const char c : *reason) {
            if ((c < 'a' || c > 'z') && c != '_') {
                error = "--end-reason takes a name like complete or client_gone";
                return false;
            }
        }
        query += (query.empty() ? "?end_reason=" : "&end_reason=") + *reason;
    }
    report.path = "/admin/logs" + query;
    return true;
}

bool usage_parse(const Args& args, std::string& query, CliReport& report, std::string& error) {
    if (!args_only(args, {"key", "since", "until", "group-by"}, error) ||
        !key_option(args, query, report, error)) {
        return false;
    }
    if (const std::string* group_by = args_option(args, "group-by")) {
        // Names and commas only; the API says which names it knows.
        for (const char c : *group_by) {
            if ((c < 'a' || c > 'z') && c != ',') {
                error = "--group-by takes names like key,model,channel,day";
                return false;
            }
        }
        query += (query.empty() ? "?group_by=" : "&group_by=") + *group_by;
    }
    if (!day_options(args, query, error)) {
        return false;
    }
    report.shape = CliShape::usage;
    report.path = "/admin/usage" + query;
    return true;
}

bool latency_parse(const Args& args, std::string& query, CliReport& report, std::string& error) {
    if (!args_only(args, {"key", "since", "until"}, error) ||
        !key_option(args, query, report, error) || !day_options(args, query, error)) {
        return false;
    }
    report.shape = CliShape::latency;
    report.path = "/admin/latency" + query;
    return true;
}

}  // namespace

bool cli_is_report_command(std::string_view command_word) {
    return command_word == "usage" || command_word == "logs" || command_word == "latency";
}

bool cli_report_parse(std::string_view command_word, const Args& args, CliReport& report,
                      std::string& error) {
    if (!args.positional.empty()) {
        error = "unexpected argument " + args.positional[0];
        return false;
    }
    std::string query;
    if (command_word == "logs") {
        return logs_parse(args, query, report, error);
    }
    if (command_word == "latency") {
        return latency_parse(args, query, report, error);
    }
    return usage_parse(args, query, report, error);
}

}  // namespace rw
