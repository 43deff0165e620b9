// proxy/admin/cli_print.h — the operator CLI's tables: an admin API answer (one object,
// or a list's "data" array) printed to stdout as aligned columns, one row per object,
// with the columns of its kind. Main thread of the short-lived CLI process.
#pragma once

#include <cstdint>
#include <string>

namespace rw {

// What an answer holds, which picks the table's columns.
enum class CliShape : uint8_t { key, channel, price, alias, usage, log, probe, latency };

// Prints `body` as a table of `shape`; for a full page of logs, the --before cursor for
// the next one. False, printing nothing, when `body` is not JSON.
[[nodiscard]] bool admin_cli_print_shape(CliShape shape, const std::string& body);

}  // namespace rw
