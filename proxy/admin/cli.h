// proxy/admin/cli.h — `ringway key|channel|usage ...`: the operator CLI. It talks to the
// running server's admin API over loopback HTTP (address from RINGWAY_ADMIN_LISTEN, token
// from RINGWAY_ADMIN_TOKEN) with plain blocking sockets and prints tables, or the raw JSON
// with --json. main.cc calls admin_cli_main() when admin_cli_is_command(argv[1]). Runs on
// the main thread of a short-lived process; never prints a token or an upstream key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/limits.h"

namespace rw {

// True for the first arguments the CLI handles: "key", "channel", "usage", "logs".
[[nodiscard]] bool admin_cli_is_command(std::string_view arg);

// argv[1] is the command. Returns the process exit code: 0 success, 1 the API or the
// connection failed, 2 usage error.
int admin_cli_main(int argc, char** argv);

// A relative duration: digits followed by s, m, h, d or w ("30d", "12h") → seconds.
// False on anything else (a bare number is not a duration: flags read it as Unix seconds).
[[nodiscard]] bool admin_cli_parse_duration(std::string_view text, int64_t& seconds);

// A response body with the admin API's error shape → "message (code)"; empty if the body
// is not such an error.
[[nodiscard]] std::string admin_cli_error_text(std::string_view body);

}  // namespace rw
