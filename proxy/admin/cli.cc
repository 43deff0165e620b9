// proxy/admin/cli.cc — the operator CLI over the admin API: argument parsing, one blocking
// HTTP/1.1 exchange per command (Connection: close, deadline on every step), and the
// answer shown: raw JSON with --json, else a table (cli_print.h). Short-lived process,
// main thread; allocation is fine. Secrets: the admin token goes only into the
// Authorization header, an upstream key read from --api-key-env only into the request body.
#include "proxy/admin/cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <simdjson.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "core/text.h"
#include "proxy/admin/cli_args.h"
#include "proxy/admin/cli_print.h"
#include "proxy/admin/cli_report.h"
#include "proxy/admin/cli_usage.h"

namespace rw {

bool admin_cli_is_command(std::string_view arg) {
    return arg == "key" || arg == "channel" || arg == "price" || arg == "alias" ||
           cli_is_report_command(arg);
}

bool admin_cli_parse_duration(std::string_view text, int64_t& seconds) {
    if (text.size() < 2 || text.size() > 12) {
        return false;
    }
    uint64_t count = 0;  // At most 11 digits: count * unit stays far below INT64_MAX.
    if (!parse_decimal(text.substr(0, text.size() - 1), 99'999'999'999, count)) {
        return false;
    }
    int64_t unit = 0;
    switch (text.back()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return false;
    }
    seconds = int64_t(count) * unit;
    return true;
}

std::string admin_cli_error_text(std::string_view body) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    std::string_view message;
    std::string_view code;
    if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS ||
        root.at_pointer("/error/message").get_string().get(message) != simdjson::SUCCESS) {
        return {};
    }
    std::string text(message);
    if (root.at_pointer("/error/code").get_string().get(code) == simdjson::SUCCESS) {
        text += " (" + std::string(code) + ")";
    }
    return text;
}

namespace {

// ---- HTTP -----------------------------------------------------------------------------------

struct AdminTarget {
    sockaddr_storage address{};
    socklen_t address_bytes = 0;
    std::string text;   // As shown in errors.
    std::string token;  // Never printed.
};

bool target_from_env(AdminTarget& target, std::string& error) {
    const char* listen = std::getenv("RINGWAY_ADMIN_LISTEN");
    target.text = listen != nullptr && *listen != '\0' ? listen : "127.0.0.1:8081";
    const char* token = std::getenv("RINGWAY_ADMIN_TOKEN");
    if (token == nullptr || *token == '\0') {
        error = "RINGWAY_ADMIN_TOKEN is not set: the CLI needs the running server's admin token";
        return false;
    }
    target.token = token;
    const size_t colon = target.text.rfind(':');
    int64_t port = 0;
    if (colon == std::string::npos || !parse_count(target.text.substr(colon + 1), port) ||
        port < 1 || port > 65535) {
        error = "RINGWAY_ADMIN_LISTEN=" + target.text + " is not HOST:PORT";
        return false;
    }
    std::string host = target.text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    // A wildcard listener is reached over loopback.
    if (host == "0.0.0.0" || host.empty()) {
        host = "127.0.0.1";
    }
    if (host == "::") {
        host = "::1";
    }
    auto& v4 = reinterpret_cast<sockaddr_in&>(target.address);
    auto& v6 = reinterpret_cast<sockaddr_in6&>(target.address);
    if (::inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(uint16_t(port));
        target.address_bytes = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(uint16_t(port));
        target.address_bytes = sizeof(sockaddr_in6);
    } else {
        error = "RINGWAY_ADMIN_LISTEN=" + target.text + " needs an IP address";
        return false;
    }
    return true;
}

struct HttpResult {
    int status = 0;
    std::string body;
};

using Clock = std::chrono::steady_clock;

int left_ms(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : int(left);
}

// Non-blocking connect with a deadline [connect(2): EINPROGRESS, then SO_ERROR].
int connect_with_deadline(const AdminTarget& target, Clock::time_point deadline,
                          std::string& error) {
    const int fd =
        ::socket(target.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    int rc =
        ::connect(fd, reinterpret_cast<const sockaddr*>(&target.address), target.address_bytes);
    int connect_errno = rc == 0 ? 0 : errno;
    if (rc != 0 && connect_errno == EINPROGRESS) {
        pollfd pfd{fd, POLLOUT, 0};
        socklen_t bytes = sizeof(connect_errno);
        if (::poll(&pfd, 1, left_ms(deadline)) <= 0) {
            connect_errno = ETIMEDOUT;
        } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &connect_errno, &bytes) != 0) {
            connect_errno = errno;
        }
    }
    if (connect_errno != 0) {
        error = "cannot reach the admin API at " + target.text + ": " +
                std::strerror(connect_errno) +
                " \u2014 is ringway running with RINGWAY_ADMIN_TOKEN set?";
        ::close(fd);
        return -1;
    }
    return fd;
}

bool exchange_io(int fd, const std::string& request, Clock::time_point deadline, std::string& raw,
                 std::string& error) {
    std::string_view pending = request;
    while (!pending.empty()) {
        const ssize_t sent = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
        if (sent > 0) {
            pending.remove_prefix(size_t(sent));
            continue;
        }
        if (sent < 0 && errno != EAGAIN && errno != EINTR) {
            error = std::string("sending to the admin API: ") + std::strerror(errno);
            return false;
        }
        pollfd pfd{fd, POLLOUT, 0};
        if (::poll(&pfd, 1, left_ms(deadline)) <= 0) {
            error = "timed out sending to the admin API";
            return false;
        }
    }
    char buffer[16384];
    for (;;) {  // Connection: close: the response ends at EOF.
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, left_ms(deadline)) <= 0) {
            error = "timed out waiting for the admin API";
            return false;
        }
        const ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
        if (got == 0) {
            return true;
        }
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (got < 0) {
            error = std::string("reading from the admin API: ") + std::strerror(errno);
            return false;
        }
        raw.append(buffer, size_t(got));
        if (raw.size() > admin_cli_response_bytes_max) {
            error = "the admin API's response is too large";
            return false;
        }
    }
}

bool http_call(const AdminTarget& target, std::string_view method, std::string_view path,
               std::string_view body, HttpResult& result, std::string& error) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(admin_cli_timeout_ms);
    const int fd = connect_with_deadline(target, deadline, error);
    if (fd < 0) {
        return false;
    }
    std::string request = std::string(method) + " " + std::string(path) +
                          " HTTP/1.1\r\nHost: " + target.text + "\r\nAuthorization: Bearer " +
                          target.token + "\r\nConnection: close\r\nUser-Agent: ringway-cli\r\n";
    if (!body.empty()) {
        request +=
            "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n";
    }
    request += "\r\n";
    request += body;
    std::string raw;
    const bool is_ok = exchange_io(fd, request, deadline, raw, error);
    ::close(fd);
    if (!is_ok) {
        return false;
    }
    const size_t head_end = raw.find("\r\n\r\n");
    if (!raw.starts_with("HTTP/1.") || raw.size() < 12 || head_end == std::string::npos) {
        error = "the admin API at " + target.text + " sent no valid HTTP response";
        return false;
    }
    result.status = std::atoi(raw.c_str() + 9);
    result.body = raw.substr(head_end + 4);
    return true;
}

// ---- Commands -------------------------------------------------------------------------------

// One API call: what to send and how to show the answer.
struct Command {
    std::string method;
    std::string path;
    std::string body;
    CliShape shape = CliShape::key;
    bool is_key_create = false;
    bool is_delete = false;
};

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

bool key_body(const Args& args, bool is_create, std::string& out, std::string& error) {
    BodyBuilder body;
    if (const std::string* name = args_option(args, "name")) {
        body.add_string("name", *name);
    }
    if (!add_int_option(args, "quota", "quota_tokens", false, "none", body, error) ||
        !add_int_option(args, "rpm", "rpm", false, {}, body, error) ||
        !add_int_option(args, "concurrency", "max_concurrency", false, {}, body, error) ||
        !add_int_option(args, "tpm", "tpm", false, {}, body, error)) {
        return false;
    }
    // Per-model limits as JSON ({"gpt-4o":{"rpm":60,"tpm":90000}}), checked by the server;
    // "none" clears them.
    if (const std::string* limits = args_option(args, "limits")) {
        body.add("limits", *limits == "none" ? std::string("null") : *limits);
    }
    if (const std::string* models = args_option(args, "models")) {
        body.add("models", *models == "all" ? std::string("null") : models_json(*models));
    }
    // The addresses the key may be used from; "any" clears the list. The server checks
    // each block and names a bad one.
    if (const std::string* cidrs = args_option(args, "allowed-cidrs")) {
        body.add("allowed_cidrs", *cidrs == "any" ? std::string("null") : models_json(*cidrs));
    }
    // A money budget as a decimal string (exact on the server), "none" to clear it.
    if (const std::string* budget = args_option(args, "budget-usd")) {
        *budget == "none" ? body.add("budget_usd", "null") : body.add_string("budget_usd", *budget);
    }
    if (const std::string* period = args_option(args, "period")) {
        body.add_string("period", *period);
    }
    if (const std::string* strict = args_option(args, "strict")) {
        if (!strict->empty() && *strict != "true" && *strict != "false") {
            error = "--strict takes =true or =false";
            return false;
        }
        body.add("strict", *strict == "false" ? "false" : "true");
    }
    if (const std::string* expires = args_option(args, "expires")) {
        int64_t expires_at_s = 0;
        if (!parse_expires(*expires, expires_at_s)) {
            error = "--expires must be a duration (30d, 12h), Unix seconds or never";
            return false;
        }
        body.add("expires_at",
                 expires_at_s == 0 ? std::string("null") : std::to_string(expires_at_s));
    }
    if (is_create && !add_secret_from_env(args, "key-env", "key", body, error)) {
        return false;
    }
    out = body.finish();
    return true;
}

bool channel_body(const Args& args, std::string& out, std::string& error) {
    BodyBuilder body;
    for (const auto& [option, field] :
         {std::pair{"name", "name"}, std::pair{"kind", "kind"}, std::pair{"base-url", "base_url"},
          std::pair{"ca-file", "ca_file"}, std::pair{"stream-usage", "stream_usage"},
          std::pair{"probe-model", "probe_model"}}) {
        if (const std::string* value = args_option(args, option)) {
            body.add_string(field, *value);
        }
    }
    if (const std::string* models = args_option(args, "models")) {
        body.add("models", models_json(*models));
    }
    if (const std::string* map = args_option(args, "model-map")) {
        std::string map_json;
        if (!model_map_json(*map, map_json)) {
            error = "--model-map takes asked=sent pairs separated by commas (or none)";
            return false;
        }
        body.add("model_map", map_json);
    }
    for (const auto& [option, field] : {std::pair{"allow-private-network", "allow_private_network"},
                                        std::pair{"auto-disable", "auto_disable"}}) {
        const std::string* value = args_option(args, option);
        if (value == nullptr) {
            continue;
        }
        if (!value->empty() && *value != "true" && *value != "false") {
            error = "--" + std::string(option) + " takes =true or =false";
            return false;
        }
        body.add(field, *value == "false" ? "false" : "true");
    }
    if (!add_int_option(args, "priority", "priority", true, {}, body, error) ||
        !add_int_option(args, "weight", "weight", false, {}, body, error) ||
        !add_secret_from_env(args, "api-key-env", "api_key", body, error)) {
        return false;
    }
    if (args_option(args, "enabled") != nullptr) {
        body.add("enabled", "true");
    }
    if (args_option(args, "disabled") != nullptr) {
        body.add("enabled", "false");
    }
    out = body.finish();
    return true;
}

bool id_argument(const Args& args, std::string& id, std::string& error) {
    int64_t number = 0;
    if (args.positional.size() != 1 || !parse_count(args.positional[0], number) || number < 1) {
        error = "expected one numeric ID";
        return false;
    }
    id = args.positional[0];
    return true;
}

// key topup ID AMOUNT_USD [--reason TEXT]: an audited raise of the key's budget for its
// current period; the actor is $USER (or "cli").
bool key_topup_command(const Args& args, Command& command, std::string& error) {
    int64_t number = 0;
    if (!args_only(args, {"reason"}, error)) {
        return false;
    }
    if (args.positional.size() != 2 || !parse_count(args.positional[0], number) || number < 1) {
        error = "key topup needs ID AMOUNT_USD";
        return false;
    }
    BodyBuilder body;
    body.add_string("amount_usd", args.positional[1]);
    const std::string* reason = args_option(args, "reason");
    body.add_string("reason", reason != nullptr ? *reason : std::string("ringway key topup"));
    const char* user = std::getenv("USER");
    body.add_string("actor", user != nullptr && *user != '\0' ? user : "cli");
    command = {"POST",        "/admin/keys/" + args.positional[0] + "/topup",
               body.finish(), CliShape::key,
               false,         false};
    return true;
}

bool key_command(const std::string& verb, const Args& args, Command& command, std::string& error) {
    command.shape = CliShape::key;
    std::string id;
    if (verb == "create") {
        if (!args_only(args,
                       {"name", "quota", "models", "rpm", "concurrency", "tpm", "limits", "expires",
                        "key-env", "allowed-cidrs", "budget-usd", "period", "strict"},
                       error)) {
            return false;
        }
        if (args_option(args, "name") == nullptr || !args.positional.empty()) {
            error = "key create needs --name NAME";
            return false;
        }
        command = {"POST", "/admin/keys", {}, CliShape::key, true, false};
        return key_body(args, true, command.body, error);
    }
    if (verb == "list") {
        command = {"GET", "/admin/keys", {}, CliShape::key, false, false};
        return args_only(args, {}, error);
    }
    if (verb == "topup") {
        return key_topup_command(args, command, error);
    }
    if (verb != "show" && verb != "revoke" && verb != "update") {
        error = "unknown key command \"" + verb + "\"";
        return false;
    }
    if (!id_argument(args, id, error)) {
        return false;
    }
    if (verb == "show") {
        command = {"GET", "/admin/keys/" + id, {}, CliShape::key, false, false};
        return args_only(args, {}, error);
    }
    if (verb == "revoke") {
        command = {"DELETE", "/admin/keys/" + id, {}, CliShape::key, false, false};
        return args_only(args, {}, error);
    }
    if (!args_only(args,
                   {"name", "quota", "models", "rpm", "concurrency", "tpm", "limits", "expires",
                    "allowed-cidrs", "budget-usd", "period", "strict"},
                   error)) {
        return false;
    }
    command = {"PATCH", "/admin/keys/" + id, {}, CliShape::key, false, false};
    return key_body(args, false, command.body, error);
}

bool channel_command(const std::string& verb, const Args& args, Command& command,
                     std::string& error) {
    std::string id;
    const std::initializer_list<std::string_view> fields = {
        "name",      "kind",     "base-url",     "api-key-env",  "models",
        "model-map", "priority", "weight",       "ca-file",      "allow-private-network",
        "enabled",   "disabled", "auto-disable", "stream-usage", "probe-model"};
    if (verb == "add") {
        if (!args_only(args, fields, error)) {
            return false;
        }
        for (const char* required : {"name", "kind", "base-url", "api-key-env"}) {
            if (args_option(args, required) == nullptr) {
                error = std::string("channel add needs --") + required;
                return false;
            }
        }
        command = {"POST", "/admin/channels", {}, CliShape::channel, false, false};
        return channel_body(args, command.body, error);
    }
    if (verb == "list") {
        command = {"GET", "/admin/channels", {}, CliShape::channel, false, false};
        return args_only(args, {}, error);
    }
    if (verb != "show" && verb != "remove" && verb != "update" && verb != "test") {
        error = "unknown channel command \"" + verb + "\"";
        return false;
    }
    if (!id_argument(args, id, error)) {
        return false;
    }
    if (verb == "show") {
        command = {"GET", "/admin/channels/" + id, {}, CliShape::channel, false, false};
        return args_only(args, {}, error);
    }
    if (verb == "test") {
        command = {"POST", "/admin/channels/" + id + "/test", {}, CliShape::probe, false, false};
        return args_only(args, {}, error);
    }
    if (verb == "remove") {
        command = {"DELETE", "/admin/channels/" + id, {}, CliShape::channel, false, true};
        return args_only(args, {}, error);
    }
    if (!args_only(args, fields, error)) {
        return false;
    }
    command = {"PATCH", "/admin/channels/" + id, {}, CliShape::channel, false, false};
    return channel_body(args, command.body, error);
}

// price set: a new price version (POST /admin/prices; the API checks the amounts, which
// go as the strings given). price list [--all]: live versions, or deleted ones too.
bool price_command(const std::string& verb, const Args& args, Command& command,
                   std::string& error) {
    if (verb == "list") {
        const bool is_all = args_option(args, "all") != nullptr;
        command = {"GET", is_all ? "/admin/prices?all=1" : "/admin/prices",
                   {},    CliShape::price,
                   false, false};
        return args_only(args, {"all"}, error);
    }
    std::string id;
    if (verb == "rm") {
        command = {"DELETE", "", {}, CliShape::price, false, true};
        const bool is_ok = id_argument(args, id, error) && args_only(args, {}, error);
        command.path = "/admin/prices/" + id;
        return is_ok;
    }
    if (verb != "set") {
        error = "unknown price command \"" + verb + "\"";
        return false;
    }
    constexpr std::pair<const char*, const char*> amounts[] = {
        {"input", "input_per_mtok"},
        {"output", "output_per_mtok"},
        {"cached-input", "cached_input_per_mtok"},
        {"cache-write", "cache_write_per_mtok"},
        {"reasoning", "reasoning_per_mtok"},
        {"per-request", "per_request"}};
    if (!args_only(args,
                   {"model", "channel", "input", "output", "cached-input", "cache-write",
                    "reasoning", "per-request", "effective-from"},
                   error)) {
        return false;
    }
    for (const char* required : {"model", "input", "output"}) {
        if (args_option(args, required) == nullptr) {
            error = std::string("price set needs --") + required;
            return false;
        }
    }
    BodyBuilder body;
    body.add_string("model", *args_option(args, "model"));
    for (const auto& [option, field] : amounts) {
        if (const std::string* value = args_option(args, option)) {
            body.add_string(field, *value);
        }
    }
    if (!add_int_option(args, "channel", "channel_id", false, {}, body, error) ||
        !add_int_option(args, "effective-from", "effective_from", false, {}, body, error)) {
        return false;
    }
    if (!args.positional.empty()) {
        error = "unexpected argument " + args.positional[0];
        return false;
    }
    command = {"POST", "/admin/prices", body.finish(), CliShape::price, false, false};
    return true;
}

bool alias_command(const std::string& verb, const Args& args, Command& command,
                   std::string& error) {
    AliasRequest request;
    if (!alias_request(verb, args, request, error)) {
        return false;
    }
    command = {request.method,  request.path, request.body,
               CliShape::alias, false,        request.is_delete};
    return true;
}

// usage, logs, latency: a GET of the admin API (cli_report.h). key_name: --key NAME, for
// resolve_key_name() to add as key_id; empty without one.
bool report_command(const std::string& command_word, const Args& args, Command& command,
                    std::string& key_name, std::string& error) {
    CliReport report;
    if (!cli_report_parse(command_word, args, report, error)) {
        return false;
    }
    command = {"GET", report.path, {}, report.shape, false, false};
    key_name = report.key_name;
    return true;
}

// The error line for an answer that is not a 2xx; empty for a success.
std::string api_error(const HttpResult& result, const AdminTarget& target) {
    if (result.status == 401) {
        return "the admin API at " + target.text + " refused RINGWAY_ADMIN_TOKEN (401)";
    }
    if (result.status < 200 || result.status > 299) {
        const std::string message = admin_cli_error_text(result.body);
        return "admin API error " + std::to_string(result.status) + ": " +
               (message.empty() ? std::string("(no error message)") : message);
    }
    return {};
}

// --key NAME → "key_id=ID" appended to the command's query, from GET /admin/keys (which
// lists revoked keys too: their history stays). Exactly one key may carry the name.
bool resolve_key_name(const AdminTarget& target, const std::string& key_name, Command& command,
                      std::string& error) {
    HttpResult result;
    if (!http_call(target, "GET", "/admin/keys", {}, result, error)) {
        return false;
    }
    error = api_error(result, target);
    if (!error.empty()) {
        return false;
    }
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    simdjson::dom::array data;
    if (parser.parse(result.body).get(root) != simdjson::SUCCESS ||
        root["data"].get_array().get(data) != simdjson::SUCCESS) {
        error = "the admin API sent invalid JSON";
        return false;
    }
    std::vector<int64_t> ids;
    for (simdjson::dom::element item : data) {
        std::string_view name;
        int64_t id = 0;
        if (item["name"].get_string().get(name) == simdjson::SUCCESS && name == key_name &&
            item["id"].get_int64().get(id) == simdjson::SUCCESS) {
            ids.push_back(id);
        }
    }
    if (ids.empty()) {
        error = "no key named \"" + key_name + "\"";
        return false;
    }
    if (ids.size() > 1) {
        error = std::to_string(ids.size()) + " keys are named \"" + key_name + "\" (ids ";
        for (size_t i = 0; i < ids.size(); i++) {
            error += (i == 0 ? "" : ", ") + std::to_string(ids[i]);
        }
        error += "); pass --key ID";
        return false;
    }
    command.path += command.path.find('?') == std::string::npos ? "?" : "&";
    command.path += "key_id=" + std::to_string(ids[0]);
    return true;
}

int show_result(const Command& command, const HttpResult& result, bool is_json,
                const AdminTarget& target) {
    if (const std::string error = api_error(result, target); !error.empty()) {
        std::fprintf(stderr, "ringway: %s\n", error.c_str());
        return 1;
    }
    if (is_json) {
        std::printf("%s\n", result.body.c_str());
        return 0;
    }
    if (command.is_delete) {
        std::printf("Removed.\n");
        return 0;
    }
    if (command.is_key_create) {
        simdjson::dom::parser parser;
        simdjson::dom::element root;
        std::string_view secret;
        if (parser.parse(result.body).get(root) == simdjson::SUCCESS &&
            root["key"].get_string().get(secret) == simdjson::SUCCESS) {
            // The one place a gateway key is shown: the operator asked for it.
            std::printf("Key secret (shown once; store it now):\n  %.*s\n\n", int(secret.size()),
                        secret.data());
        }
    }
    if (!admin_cli_print_shape(command.shape, result.body)) {
        std::fprintf(stderr, "ringway: the admin API sent invalid JSON\n");
        return 1;
    }
    return 0;
}

}  // namespace

int admin_cli_main(int argc, char** argv) {
    if (argc < 2 || !admin_cli_is_command(argv[1])) {
        const bool is_help = argc >= 2 && (std::string_view(argv[1]) == "--help" ||
                                           std::string_view(argv[1]) == "help");
        std::fputs(admin_cli_usage({}, {}).c_str(), is_help ? stdout : stderr);
        return is_help ? 0 : 2;
    }
    const std::string command_word = argv[1];
    const bool has_verb = command_word == "key" || command_word == "channel" ||
                          command_word == "price" || command_word == "alias";
    if (has_verb && (argc < 3 || std::string_view(argv[2]).starts_with("--"))) {
        // "ringway channel" alone, or "ringway channel --help": the command's verbs.
        const bool is_help = argc >= 3 && std::string_view(argv[2]) == "--help";
        std::fputs(admin_cli_usage(command_word, {}).c_str(), is_help ? stdout : stderr);
        return is_help ? 0 : 2;
    }
    const std::string verb = has_verb ? argv[2] : "";
    for (int i = has_verb ? 3 : 2; i < argc; i++) {
        if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
            // Anywhere on the line: the usage of what was typed so far, nothing is sent.
            std::fputs(
                admin_cli_usage(command_word, admin_cli_is_verb(command_word, verb) ? verb : "")
                    .c_str(),
                stdout);
            return 0;
        }
    }
    Args args;
    std::string error;
    Command command;
    std::string key_name;
    bool is_ok = args_parse(argc, argv, has_verb ? 3 : 2, args, error);
    if (is_ok) {
        is_ok = command_word == "key"       ? key_command(verb, args, command, error)
                : command_word == "channel" ? channel_command(verb, args, command, error)
                : command_word == "price"   ? price_command(verb, args, command, error)
                : command_word == "alias"
                    ? alias_command(verb, args, command, error)
                    : report_command(command_word, args, command, key_name, error);
    }
    if (!is_ok) {
        std::fprintf(
            stderr, "ringway %s: %s\n\n%s", command_word.c_str(), error.c_str(),
            admin_cli_usage(command_word, admin_cli_is_verb(command_word, verb) ? verb : "")
                .c_str());
        return 2;
    }
    AdminTarget target;
    HttpResult result;
    if (!target_from_env(target, error) ||
        (!key_name.empty() && !resolve_key_name(target, key_name, command, error)) ||
        !http_call(target, command.method, command.path, command.body, result, error)) {
        std::fprintf(stderr, "ringway: %s\n", error.c_str());
        return 1;
    }
    return show_result(command, result, args.is_json, target);
}

}  // namespace rw
