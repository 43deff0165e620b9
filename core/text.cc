// core/text.cc — JSON string escaping and decimal parsing (see text.h). No allocation
// except json_escape_append's growth of the caller's string.
#include "core/text.h"

#include <cstring>

#include "core/assert.h"

namespace rw {
namespace {

// The two-character escape of c, or 0 when c has none.
char json_short_escape(char c) {
    switch (c) {
        case '"': return '"';
        case '\\': return '\\';
        case '\b': return 'b';
        case '\f': return 'f';
        case '\n': return 'n';
        case '\r': return 'r';
        case '\t': return 't';
        default: return 0;
    }
}

}  // namespace

uint64_t json_escaped_bytes(std::string_view text) {
    uint64_t bytes = 0;
    for (const char c : text) {
        if (json_short_escape(c) != 0) {
            bytes += 2;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            bytes += 6;  // \u00XX
        } else {
            bytes += 1;
        }
    }
    return bytes;
}

char* json_escape_write(char* target, std::string_view text) {
    constexpr char hex_digits[] = "0123456789abcdef";
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        const char short_escape = json_short_escape(c);
        if (short_escape != 0) {
            *target++ = '\\';
            *target++ = short_escape;
        } else if (byte < 0x20) {
            std::memcpy(target, "\\u00", 4);
            target[4] = hex_digits[byte >> 4];
            target[5] = hex_digits[byte & 0xF];
            target += 6;
        } else {
            *target++ = c;
        }
    }
    return target;
}

void json_escape_append(std::string& out, std::string_view text) {
    const size_t start = out.size();
    const uint64_t escaped_bytes = json_escaped_bytes(text);
    out.resize(start + escaped_bytes + 2);
    out[start] = '"';
    char* end = json_escape_write(out.data() + start + 1, text);
    RW_ASSERT(end == out.data() + start + 1 + escaped_bytes);
    *end = '"';
}

bool parse_decimal(std::string_view text, uint64_t max, uint64_t& out) {
    if (text.empty()) {
        return false;
    }
    uint64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return false;
        }
        const auto digit = static_cast<uint64_t>(c - '0');
        if (digit > max || value > (max - digit) / 10) {
            return false;  // Past max (and so never past UINT64_MAX).
        }
        value = value * 10 + digit;
    }
    RW_ASSERT(value <= max);
    out = value;
    return true;
}

bool parse_decimal_i64(std::string_view text, int64_t min, int64_t max, int64_t& out) {
    RW_ASSERT(min >= 0);
    RW_ASSERT(min <= max);
    uint64_t value = 0;
    if (!parse_decimal(text, static_cast<uint64_t>(max), value) ||
        value < static_cast<uint64_t>(min)) {
        return false;
    }
    out = static_cast<int64_t>(value);
    return true;
}

bool parse_fixed_decimal(std::string_view text, uint32_t fraction_digits, uint64_t max,
                         uint64_t& out) {
    RW_ASSERT(fraction_digits <= 18);  // 10^18 still fits a uint64_t.
    const size_t point = text.find('.');
    const std::string_view whole = text.substr(0, point);
    const std::string_view fraction =
        point == std::string_view::npos ? std::string_view() : text.substr(point + 1);
    if (whole.empty() || (point != std::string_view::npos && fraction.empty()) ||
        fraction.size() > fraction_digits) {
        return false;
    }
    uint64_t scale = 1;
    for (uint32_t i = 0; i < fraction_digits; i++) {
        scale *= 10;
    }
    uint64_t whole_value = 0;
    uint64_t fraction_value = 0;
    if (!parse_decimal(whole, max / scale, whole_value) ||
        (!fraction.empty() && !parse_decimal(fraction, UINT64_MAX, fraction_value))) {
        return false;
    }
    for (size_t i = fraction.size(); i < fraction_digits; i++) {
        fraction_value *= 10;  // "15" of "0.15" is 150000000 nano.
    }
    RW_ASSERT(fraction_value < scale);
    if (whole_value * scale > max - fraction_value) {
        return false;
    }
    out = whole_value * scale + fraction_value;
    RW_ASSERT(out <= max);
    return true;
}

void fixed_decimal_append(std::string& out, uint64_t units, uint32_t fraction_digits) {
    RW_ASSERT(fraction_digits <= 18);
    uint64_t scale = 1;
    for (uint32_t i = 0; i < fraction_digits; i++) {
        scale *= 10;
    }
    out += std::to_string(units / scale);
    uint64_t fraction = units % scale;
    if (fraction == 0) {
        return;
    }
    std::string digits(fraction_digits, '0');
    for (uint32_t i = fraction_digits; i > 0; i--) {
        digits[i - 1] = char('0' + fraction % 10);
        fraction /= 10;
    }
    digits.erase(digits.find_last_not_of('0') + 1);
    out += '.';
    out += digits;
}

}  // namespace rw
