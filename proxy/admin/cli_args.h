// proxy/admin/cli_args.h — what the operator CLI's commands (cli.cc) are built from: the
// command line split into options and positionals, the option readers, and the JSON body
// of an admin API call assembled member by member. Short-lived process, main thread;
// allocation is fine. Secrets named by --*-env options are read from the environment only.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/text.h"

namespace rw::cli {

struct Args {
    std::vector<std::string> positional;                       // After the command words.
    std::vector<std::pair<std::string, std::string>> options;  // --name value; flags: "".
    bool is_json = false;
};

// argv from `first` on: "--x v", "--x=v", flags without a value, positionals.
[[nodiscard]] bool args_parse(int argc, char** argv, int first, Args& args, std::string& error);
// The value of --name (empty for a flag), or nullptr when absent.
[[nodiscard]] const std::string* args_option(const Args& args, std::string_view name);
// False with "unknown option --x" when an option is not among `known`.
[[nodiscard]] bool args_only(const Args& args, std::initializer_list<std::string_view> known,
                             std::string& error);

// A whole number of at most 18 digits (the largest the options take).
[[nodiscard]] bool parse_count(std::string_view text, int64_t& out);
// "a,b" → ["a","b"] as JSON (items trimmed of spaces, empty items dropped).
[[nodiscard]] std::string list_json(std::string_view list);
// --expires: a duration from now ("30d"), absolute Unix seconds, or "never" (0).
[[nodiscard]] bool parse_expires(std::string_view text, int64_t& expires_at_s);

// A JSON object built from (name, raw JSON value) members.
struct BodyBuilder {
    std::string text;
    void add(std::string_view name, std::string_view raw_json) {
        text += text.empty() ? "{" : ",";
        json_escape_append(text, name);
        text += ":";
        text += raw_json;
    }
    void add_string(std::string_view name, std::string_view value) {
        std::string quoted;
        json_escape_append(quoted, value);
        add(name, quoted);
    }
    [[nodiscard]] std::string finish() const { return text.empty() ? "{}" : text + "}"; }
};

// An integer option → a member; "none"/"all"/"never" map to null where null_word says.
[[nodiscard]] bool add_int_option(const Args& args, std::string_view option, std::string_view field,
                                  bool allows_negative, std::string_view null_word,
                                  BodyBuilder& body, std::string& error);
// The secret named by --<option> VAR, read from the environment. Never printed.
[[nodiscard]] bool add_secret_from_env(const Args& args, std::string_view option,
                                       std::string_view field, BodyBuilder& body,
                                       std::string& error);

}  // namespace rw::cli
