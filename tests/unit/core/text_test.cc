// tests/unit/core/text_test.cc — the exact fixed-point decimals of core/text.h that money
// is written in: USD strings to nano-USD integers and back, refusing what is not exact; and
// the request path's decimal writer.
#include "core/text.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cstring>
#include <string>
#include <vector>

namespace rw {
namespace {

uint64_t nano(std::string_view text, bool* is_ok = nullptr) {
    uint64_t out = 12345;  // Untouched on failure.
    const bool parsed = parse_fixed_decimal(text, 9, UINT64_MAX, out);
    if (is_ok != nullptr) {
        *is_ok = parsed;
    }
    return out;
}

TEST(FixedDecimal, ParsesUsdToNanoExactly) {
    EXPECT_EQ(nano("0.15"), 150'000'000u);
    EXPECT_EQ(nano("0.60"), 600'000'000u);
    EXPECT_EQ(nano("2"), 2'000'000'000u);
    EXPECT_EQ(nano("0"), 0u);
    EXPECT_EQ(nano("0.000000001"), 1u);
    EXPECT_EQ(nano("10000.123456789"), 10'000'123'456'789u);
    EXPECT_EQ(nano("007.5"), 7'500'000'000u);  // Leading zeros are plain digits.
}

TEST(FixedDecimal, RefusesMorePrecisionAndNonDecimals) {
    for (const char* text : {"0.0000000001", "1.1234567890", "", ".", ".5", "1.", "-1", "+1", "1e3",
                             "0x10", " 1", "1 ", "1.2.3", "1,5", "NaN", "inf"}) {
        bool is_ok = true;
        EXPECT_EQ(nano(text, &is_ok), 12345u) << text;
        EXPECT_FALSE(is_ok) << text;
    }
}

TEST(FixedDecimal, RespectsTheMaximum) {
    uint64_t out = 0;
    EXPECT_TRUE(parse_fixed_decimal("10000", 9, 10'000'000'000'000, out));
    EXPECT_EQ(out, 10'000'000'000'000u);
    EXPECT_FALSE(parse_fixed_decimal("10000.000000001", 9, 10'000'000'000'000, out));
    EXPECT_FALSE(parse_fixed_decimal("10001", 9, 10'000'000'000'000, out));
    EXPECT_FALSE(parse_fixed_decimal("99999999999999999999", 9, UINT64_MAX, out));
    EXPECT_TRUE(parse_fixed_decimal("18446744073.709551615", 9, UINT64_MAX, out));
    EXPECT_EQ(out, UINT64_MAX);
    EXPECT_FALSE(parse_fixed_decimal("18446744073.709551616", 9, UINT64_MAX, out));
}

TEST(FixedDecimal, WritesTheShortestExactText) {
    const auto text = [](uint64_t units) {
        std::string out;
        fixed_decimal_append(out, units, 9);
        return out;
    };
    EXPECT_EQ(text(0), "0");
    EXPECT_EQ(text(1), "0.000000001");
    EXPECT_EQ(text(150'000'000), "0.15");
    EXPECT_EQ(text(2'000'000'000), "2");
    EXPECT_EQ(text(1'234'567'890'123), "1234.567890123");
    EXPECT_EQ(text(UINT64_MAX), "18446744073.709551615");
    // Round trip.
    for (const uint64_t units : {uint64_t{0}, uint64_t{7}, uint64_t{100'000'000},
                                 uint64_t{999'999'999}, uint64_t{123'456'789'012}}) {
        EXPECT_EQ(nano(text(units)), units);
    }
}

// decimal_write against std::to_chars at every digit count and its edges.
TEST(DecimalWrite, MatchesToChars) {
    std::vector<uint64_t> values = {0, 1, 9, 10, 99, 100, 101, UINT64_MAX, UINT64_MAX - 1};
    for (uint64_t power = 1; power <= UINT64_MAX / 10; power *= 10) {
        values.insert(values.end(), {power - 1, power, power + 1, power * 10 - 1, power * 7 + 3});
    }
    for (const uint64_t value : values) {
        char expected[32];
        const std::string_view want(
            expected, size_t(std::to_chars(expected, expected + 32, value).ptr - expected));
        char out[decimal_bytes_max + 4];
        std::memset(out, '#', sizeof(out));
        const char* end = decimal_write(out, value);
        EXPECT_EQ(std::string_view(out, size_t(end - out)), want) << value;
        EXPECT_EQ(*end, '#') << value;  // Nothing written past the end.
    }
}

// ascii_lower_copy against a byte-by-byte tolower of ASCII, for every byte value at every
// position of a word and in the tail, for lengths 0 to 40.
TEST(AsciiLowerCopy, MatchesTheByteLoopForEveryByte) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    for (size_t length = 0; length <= 40; length++) {
        for (int value = 0; value < 256; value++) {
            for (size_t at = 0; at < length; at++) {
                std::string source(length, 'Q');
                for (size_t i = 0; i < length; i++) {
                    source[i] = char("AZaz@[`{Mm09-_\x80\xff"[(i * 7 + length) % 16]);
                }
                source[at] = char(value);
                std::string expected = source;
                for (char& c : expected) {
                    c = lower(c);
                }
                std::string out(length + 1, '#');
                ascii_lower_copy(out.data(), source.data(), length);
                ASSERT_EQ(out.substr(0, length), expected) << length << " " << value << " " << at;
                ASSERT_EQ(out[length], '#');  // Nothing written past the end.
            }
        }
    }
}

}  // namespace
}  // namespace rw
