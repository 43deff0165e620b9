// proxy/admin/cli_args.cc — the operator CLI's arguments (see cli_args.h).
#include "proxy/admin/cli_args.h"

#include <ctime>

#include "core/text.h"
#include "proxy/admin/cli.h"

namespace rw {

namespace {

bool is_flag(std::string_view name) {
    return name == "allow-private-network" || name == "enabled" || name == "disabled" ||
           name == "json" || name == "help" || name == "auto-disable" || name == "all" ||
           name == "strict";
}

}  // namespace

// argv from `first` on: "--x v", "--x=v", flags without a value, positionals.
bool args_parse(int argc, char** argv, int first, Args& args, std::string& error) {
    for (int i = first; i < argc; i++) {
        const std::string_view arg = argv[i];
        if (!arg.starts_with("--")) {
            args.positional.emplace_back(arg);
            continue;
        }
        std::string name(arg.substr(2));
        std::string value;
        if (const size_t eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        } else if (!is_flag(name)) {
            if (i + 1 >= argc) {
                error = "--" + name + " needs a value";
                return false;
            }
            value = argv[++i];
        }
        if (name == "json") {
            args.is_json = true;
            continue;
        }
        args.options.emplace_back(name, value);
    }
    return true;
}

const std::string* args_option(const Args& args, std::string_view name) {
    for (const auto& [option, value] : args.options) {
        if (option == name) {
            return &value;
        }
    }
    return nullptr;
}

bool args_only(const Args& args, std::initializer_list<std::string_view> known,
               std::string& error) {
    for (const auto& [option, value] : args.options) {
        bool is_known = false;
        for (const std::string_view candidate : known) {
            is_known = is_known || candidate == option;
        }
        if (!is_known) {
            error = "unknown option --" + option;
            return false;
        }
    }
    return true;
}

// A whole number of at most 18 digits (the largest the options take).
bool parse_count(std::string_view text, int64_t& out) {
    return parse_decimal_i64(text, 0, 999'999'999'999'999'999, out);
}

// "a,b" → ["a","b"] as JSON (empty items dropped).
std::string models_json(std::string_view list) {
    std::string out = "[";
    bool is_first = true;
    while (!list.empty()) {
        const size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        while (!item.empty() && item.front() == ' ') {
            item.remove_prefix(1);
        }
        while (!item.empty() && item.back() == ' ') {
            item.remove_suffix(1);
        }
        if (item.empty()) {
            continue;
        }
        if (!is_first) {
            out += ",";
        }
        json_escape_append(out, item);
        is_first = false;
    }
    return out + "]";
}

// "a=b,c=d" → {"a":"b","c":"d"}; "none" → {} (clears the map). False on a pair without '='.
bool model_map_json(std::string_view list, std::string& out) {
    out.assign(1, '{');
    if (list == "none") {
        out.push_back('}');
        return true;
    }
    while (!list.empty()) {
        const size_t comma = list.find(',');
        const std::string_view pair = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        const size_t eq = pair.find('=');
        if (eq == std::string_view::npos || eq == 0 || eq + 1 == pair.size()) {
            return false;
        }
        if (out.size() > 1) {
            out.push_back(',');
        }
        json_escape_append(out, pair.substr(0, eq));
        out.push_back(':');
        json_escape_append(out, pair.substr(eq + 1));
    }
    out.push_back('}');
    return out.size() > 2;
}

// --expires: a duration from now ("30d"), absolute Unix seconds, or "never" (0).
bool parse_expires(std::string_view text, int64_t& expires_at_s) {
    int64_t seconds = 0;
    if (text == "never") {
        expires_at_s = 0;
        return true;
    }
    if (admin_cli_parse_duration(text, seconds)) {
        expires_at_s = int64_t(std::time(nullptr)) + seconds;
        return true;
    }
    return parse_count(text, expires_at_s);
}

}  // namespace rw

namespace rw {

bool alias_request(std::string_view verb, const Args& args, AliasRequest& out, std::string& error) {
    out = {};
    const std::string* name = args_option(args, "name");
    const std::string* models = args_option(args, "models");
    int64_t id = 0;
    if (verb == "list") {
        out.method = "GET";
        out.path = "/admin/aliases";
        if (!args.positional.empty()) {
            error = "alias list takes no argument";
            return false;
        }
        return args_only(args, {}, error);
    }
    if (verb == "add") {
        if (!args_only(args, {"models"}, error)) {
            return false;
        }
        if (args.positional.size() != 1 || models == nullptr) {
            error = "alias add needs NAME --models a,b";
            return false;
        }
        out.method = "POST";
        out.path = "/admin/aliases";
        out.body = "{\"name\":";
        json_escape_append(out.body, args.positional[0]);
        out.body += ",\"models\":" + models_json(*models) + "}";
        return true;
    }
    if (verb != "update" && verb != "rm") {
        error = "unknown alias command \"" + std::string(verb) + "\"";
        return false;
    }
    if (args.positional.size() != 1 || !parse_count(args.positional[0], id) || id < 1) {
        error = "expected one numeric ID";
        return false;
    }
    out.path = "/admin/aliases/" + args.positional[0];
    if (verb == "rm") {
        out.method = "DELETE";
        out.is_delete = true;
        return args_only(args, {}, error);
    }
    if (!args_only(args, {"name", "models"}, error)) {
        return false;
    }
    out.method = "PATCH";
    out.body = "{";
    if (name != nullptr) {
        out.body += "\"name\":";
        json_escape_append(out.body, *name);
    }
    if (models != nullptr) {
        out.body += std::string(name != nullptr ? "," : "") + "\"models\":" + models_json(*models);
    }
    out.body += "}";
    return true;
}

}  // namespace rw
