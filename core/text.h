// core/text.h — the program's one JSON string escaper, one decimal parser, and the exact
// fixed-point decimals money is written in (USD as text, nano-USD as integers). Pure
// functions over caller memory: the data plane writes into arena buffers it sized with
// json_escaped_bytes(), the control plane appends to std::string. Any thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace rw {

// Bytes decimal_write() needs at most (UINT64_MAX has 20 digits).
constexpr uint32_t decimal_bytes_max = 20;

// Writes value in decimal (no sign, no leading zeros; "0" for 0) at target, which must
// hold decimal_bytes_max bytes; returns the end. Two digits per step from a pair table,
// inline: the request path writes a few numbers into every head and x-ratelimit line, and
// std::to_chars' generic path costs more than the digits.
inline char* decimal_write(char* target, uint64_t value) {
    static constexpr char pairs[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    static constexpr uint64_t powers[20] = {1ull,
                                            10ull,
                                            100ull,
                                            1000ull,
                                            10000ull,
                                            100000ull,
                                            1000000ull,
                                            10000000ull,
                                            100000000ull,
                                            1000000000ull,
                                            10000000000ull,
                                            100000000000ull,
                                            1000000000000ull,
                                            10000000000000ull,
                                            100000000000000ull,
                                            1000000000000000ull,
                                            10000000000000000ull,
                                            100000000000000000ull,
                                            1000000000000000000ull,
                                            10000000000000000000ull};
    // Digits from the bit length (log10(2) ~ 1233/4096), corrected by one compare.
    const auto bits = uint32_t(64 - __builtin_clzll(value | 1));
    const uint32_t estimate = (bits * 1233) >> 12;  // At most 19.
    const uint32_t digits = value == 0 ? 1 : estimate + (value >= powers[estimate] ? 1 : 0);
    char* cursor = target + digits;
    while (value >= 100) {
        cursor -= 2;
        std::memcpy(cursor, pairs + (value % 100) * 2, 2);
        value /= 100;
    }
    if (value >= 10) {
        std::memcpy(cursor - 2, pairs + value * 2, 2);
    } else {
        cursor[-1] = char('0' + value);
    }
    return target + digits;
}

// One step of ascii_lower_copy: eight bytes (SWAR: a byte is upper case when adding 0x3f
// to its low 7 bits sets the top bit and adding 0x25 does not; bytes from 0x80 never are).
inline void ascii_lower_copy_word(char* target, const char* source) {
    constexpr uint64_t ones = 0x0101010101010101ull;
    uint64_t word = 0;
    std::memcpy(&word, source, 8);
    const uint64_t low7 = word & (0x7f * ones);
    const uint64_t at_least_a = low7 + 0x3f * ones;  // Top bit set: low7 >= 'A'.
    const uint64_t above_z = low7 + 0x25 * ones;     // Top bit set: low7 > 'Z'.
    const uint64_t is_upper = (at_least_a ^ above_z) & ~word & (0x80 * ones);
    word |= is_upper >> 2;  // 0x80 >> 2 = 0x20, the case bit.
    std::memcpy(target, &word, 8);
}

// Copies length bytes from source to target (not overlapping) with ASCII 'A'-'Z'
// lower-cased and every other byte (UTF-8 included) as is: eight bytes per step, the last
// step overlapping the one before (lower-casing is idempotent), byte by byte below eight.
// Header names are lower-cased on the request path, where the byte loop cost about 5
// instructions a byte.
inline void ascii_lower_copy(char* target, const char* source, size_t length) {
    if (length < 8) {
        for (size_t index = 0; index < length; index++) {
            const char c = source[index];
            target[index] = c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
        }
        return;
    }
    size_t index = 0;
    for (; index + 8 <= length; index += 8) {
        ascii_lower_copy_word(target + index, source + index);
    }
    if (index < length) {
        ascii_lower_copy_word(target + length - 8, source + length - 8);
    }
}

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

// A non-negative decimal with at most fraction_digits digits after the point, as the
// integer count of its smallest unit: with 9 digits "0.15" is 150000000 and "2" is
// 2000000000. Exact (no floating point): digits, optionally one '.' followed by 1 to
// fraction_digits digits; no sign, exponent, spaces or bare "." / "1." / ".5". More
// fraction digits than allowed is refused, never rounded. At most max units. False
// leaves out untouched.
[[nodiscard]] bool parse_fixed_decimal(std::string_view text, uint32_t fraction_digits,
                                       uint64_t max, uint64_t& out);

// The inverse: units as a decimal with trailing fraction zeros dropped ("0.15", "2",
// "0.000000001"), appended to out.
void fixed_decimal_append(std::string& out, uint64_t units, uint32_t fraction_digits);

}  // namespace rw
