// proxy/admin/cli_args.h — the operator CLI's arguments (cli.cc): argv into positionals and
// --options, the option values that become JSON (model lists and maps, expiry), and the
// alias commands' requests. Pure;
// the CLI's process only.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rw {

struct Args {
    std::vector<std::string> positional;                       // After the command words.
    std::vector<std::pair<std::string, std::string>> options;  // --name value; flags: "".
    bool is_json = false;
};

// argv from `first` on: "--x v", "--x=v", flags without a value, positionals.
[[nodiscard]] bool args_parse(int argc, char** argv, int first, Args& args, std::string& error);
// The value of --name, or nullptr when absent.
[[nodiscard]] const std::string* args_option(const Args& args, std::string_view name);
// False, naming it, when an option is not in `known`.
[[nodiscard]] bool args_only(const Args& args, std::initializer_list<std::string_view> known,
                             std::string& error);
// A whole number of at most 18 digits (the largest the options take).
[[nodiscard]] bool parse_count(std::string_view text, int64_t& out);
// "a,b" → ["a","b"] as JSON (empty items dropped).
[[nodiscard]] std::string models_json(std::string_view list);
// "a=b,c=d" → {"a":"b","c":"d"}; "none" → {} (clears the map). False on a pair without '='.
[[nodiscard]] bool model_map_json(std::string_view list, std::string& out);
// --expires: a duration from now ("30d"), absolute Unix seconds, or "never" (0).
[[nodiscard]] bool parse_expires(std::string_view text, int64_t& expires_at_s);

// The admin request of `ringway alias VERB ...`: add NAME --models a,b (POST), list (GET),
// update ID [--name N] [--models a,b] (PATCH), rm ID (DELETE). False with error on bad
// arguments.
struct AliasRequest {
    std::string method;
    std::string path;
    std::string body;
    bool is_delete = false;
};
[[nodiscard]] bool alias_request(std::string_view verb, const Args& args, AliasRequest& out,
                                 std::string& error);

}  // namespace rw
