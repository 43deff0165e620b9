// proxy/admin/cli_usage.h — the operator CLI's usage text: every command and verb with its
// options, so `ringway channel add --help` shows that command's usage and nothing is sent.
#pragma once

#include <string>
#include <string_view>

namespace rw {

// The usage of `command` (every command when empty) and `verb` (every verb when empty),
// followed by the notes every command shares.
[[nodiscard]] std::string admin_cli_usage(std::string_view command, std::string_view verb);

// True when `verb` is one of `command`'s verbs ("" for usage and logs, which have none).
[[nodiscard]] bool admin_cli_is_verb(std::string_view command, std::string_view verb);

}  // namespace rw
