// proxy/admin/cli_report.h — the operator CLI's report commands: `ringway usage`,
// `ringway logs` (every /admin/logs filter: key, status, end_reason, request id, limit,
// before) and `ringway latency` (GET /admin/latency), their options turned into the GET
// path the admin API answers and the table they print as. Pure; the CLI's process only.
#pragma once

#include <string>
#include <string_view>

#include "proxy/admin/cli_args.h"
#include "proxy/admin/cli_print.h"

namespace rw {

[[nodiscard]] bool cli_is_report_command(std::string_view command_word);

struct CliReport {
    std::string path;  // "/admin/logs?status=429&limit=20"
    CliShape shape = CliShape::usage;
    std::string key_name;  // --key NAME: the caller resolves it to key_id; empty: none.
};

// False with `error` (naming the option) on an unknown option or a bad value.
[[nodiscard]] bool cli_report_parse(std::string_view command_word, const Args& args,
                                    CliReport& report, std::string& error);

}  // namespace rw
