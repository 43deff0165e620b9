// proxy/admin/cli_args.cc — the operator CLI's argument parsing and request-body building
// (see cli_args.h). Short-lived process, main thread; allocation is fine.
#include "proxy/admin/cli_args.h"

#include <cstdlib>
#include <ctime>

#include "core/text.h"
#include "proxy/admin/cli.h"

namespace rw::cli {

namespace {

bool is_flag(std::string_view name) {
    return name == "allow-private-network" || name == "enabled" || name == "disabled" ||
           name == "json" || name == "all";
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
std::string list_json(std::string_view list) {
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

// An integer option → a member; "none"/"all"/"never" map to null where null_word says.
bool add_int_option(const Args& args, std::string_view option, std::string_view field,
                    bool allows_negative, std::string_view null_word, BodyBuilder& body,
                    std::string& error) {
    const std::string* value = args_option(args, option);
    if (value == nullptr) {
        return true;
    }
    if (!null_word.empty() && *value == null_word) {
        body.add(field, "null");
        return true;
    }
    const bool is_negative = allows_negative && value->starts_with('-');
    int64_t number = 0;
    if (!parse_count(is_negative ? value->substr(1) : *value, number)) {
        error = "--" + std::string(option) + " must be a whole number";
        return false;
    }
    body.add(field, std::to_string(is_negative ? -number : number));
    return true;
}

// The secret named by --<option> VAR, read from the environment. Never printed.
bool add_secret_from_env(const Args& args, std::string_view option, std::string_view field,
                         BodyBuilder& body, std::string& error) {
    const std::string* variable = args_option(args, option);
    if (variable == nullptr) {
        return true;
    }
    const char* secret = std::getenv(variable->c_str());
    if (secret == nullptr || *secret == '\0') {
        error = "environment variable " + *variable + " (from --" + std::string(option) +
                ") is not set or empty";
        return false;
    }
    body.add_string(field, secret);
    return true;
}

}  // namespace rw::cli
