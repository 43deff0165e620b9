// core/text.h — the program's one JSON string escaper and one decimal parser. Pure
// functions over caller memory: the data plane writes into arena buffers it sized with
// json_escaped_bytes(), the control plane appends to std::string. Any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rw {

// Bytes json_escape_write() produces for text: quotes, backslashes and control bytes
// escaped (\" \\ \b \f \n \r \t, else \u00XX); every other byte, UTF-8 included, as is.
[[nodiscard]] uint64_t json_escaped_bytes(std::string_view text);

// Writes text JSON-escaped (without the surrounding quotes) at target, which must hold
// json_escaped_bytes(text) bytes; returns the end of what it wrote.
char* json_escape_write(char* target, std::string_view text);

// Appends text as a JSON string, quotes included (control plane).
void json_escape_append(std::string& out, std::string_view text);

// A plain decimal number: one or more ASCII digits, nothing else (no sign, no spaces, no
// "0x"), at most max. False leaves out untouched.
[[nodiscard]] bool parse_decimal(std::string_view text, uint64_t max, uint64_t& out);

// The same for the signed fields of the control plane: digits only, in [min, max], where
// min is at least 0 (a sign is refused like any other non-digit).
[[nodiscard]] bool parse_decimal_i64(std::string_view text, int64_t min, int64_t max, int64_t& out);

}  // namespace rw
