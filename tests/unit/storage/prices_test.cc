// tests/unit/storage/prices_test.cc — PriceTable (storage/prices.h): most specific match
// (channel + exact, exact, longest prefix), the version in force at the request's start,
// ties by id; and price validation and resolution of kinds without their own rate.
#include "storage/prices.h"

#include <gtest/gtest.h>

#include <vector>

namespace rw {
namespace {

PriceEntry entry(int64_t id, std::string model, int64_t channel_id, int64_t from_ms) {
    PriceEntry price;
    price.id = id;
    price.is_prefix = model.ends_with('*');
    price.model = price.is_prefix ? model.substr(0, model.size() - 1) : model;
    price.channel_id = channel_id;
    price.effective_from_ms = from_ms;
    return price;
}

int64_t found_id(const PriceTable& table, std::string_view model, int64_t channel_id,
                 int64_t at_ms) {
    const PriceEntry* price = table.find(model, channel_id, at_ms);
    return price != nullptr ? price->id : 0;
}

TEST(PriceTable, MostSpecificMatchWins) {
    const PriceTable table({entry(1, "gpt-4o*", 0, 0), entry(2, "gpt-4o-mini", 0, 0),
                            entry(3, "gpt-4o-mini", 7, 0), entry(4, "gpt-*", 0, 0),
                            entry(5, "gpt-4o*", 7, 0), entry(6, "*", 0, 0)});
    EXPECT_EQ(found_id(table, "gpt-4o-mini", 7, 10), 3);  // Channel + exact.
    EXPECT_EQ(found_id(table, "gpt-4o-mini", 8, 10), 2);  // Exact.
    EXPECT_EQ(found_id(table, "gpt-4o-mini", 0, 10), 2);  // No channel known.
    EXPECT_EQ(found_id(table, "gpt-4o-2024", 8, 10), 1);  // Longest prefix.
    EXPECT_EQ(found_id(table, "gpt-4o-2024", 7, 10), 5);  // ... the channel's own first.
    EXPECT_EQ(found_id(table, "gpt-4.1", 8, 10), 4);      // A shorter prefix.
    EXPECT_EQ(found_id(table, "claude-3", 8, 10), 6);     // "*" prices everything else.
    EXPECT_EQ(found_id(table, "gpt-4o", 8, 10), 1);       // A prefix matches itself.
}

TEST(PriceTable, VersionInForceAtTheRequestStart) {
    const PriceTable table({entry(1, "m", 0, 1000), entry(2, "m", 0, 5000), entry(3, "m", 0, 5000),
                            entry(4, "m*", 0, 0)});
    EXPECT_EQ(found_id(table, "m", 0, 999), 4);  // No exact version yet: the prefix.
    EXPECT_EQ(found_id(table, "m", 0, 1000), 1);
    EXPECT_EQ(found_id(table, "m", 0, 4999), 1);  // A later version does not reach back.
    EXPECT_EQ(found_id(table, "m", 0, 5000), 3);  // Same start: the higher id.
    EXPECT_EQ(found_id(table, "m", 0, 1 << 30), 3);
}

TEST(PriceTable, NothingInForceIsUnpriced) {
    const PriceTable empty;
    EXPECT_EQ(empty.find("gpt-4o", 1, 1), nullptr);
    const PriceTable table({entry(1, "gpt-4o", 0, 100), entry(2, "gpt-4o", 9, 0)});
    EXPECT_EQ(found_id(table, "gpt-4o", 1, 50), 0);  // Only channel 9's is in force.
    EXPECT_EQ(found_id(table, "gpt-4o", 9, 50), 2);
    EXPECT_EQ(found_id(table, "gpt-4", 1, 500), 0);  // Exact names do not match prefixes.
    EXPECT_EQ(table.size(), 2u);
}

TEST(PriceSpec, ChecksAndResolves) {
    PriceSpec spec;
    spec.model = "gpt-4o*";
    spec.input_per_mtok = 2'500'000'000;
    spec.output_per_mtok = 10'000'000'000;
    EXPECT_EQ(price_spec_check(spec), "");
    const PriceRates rates = price_rates_resolve(spec);
    EXPECT_EQ(rates.cached_input_per_mtok, 2'500'000'000);  // Unpriced kinds: parent rate.
    EXPECT_EQ(rates.cache_write_per_mtok, 2'500'000'000);
    EXPECT_EQ(rates.reasoning_per_mtok, 10'000'000'000);
    spec.has_cached_input = true;
    spec.cached_input_per_mtok = 0;  // Free cache reads are a price, not a missing one.
    EXPECT_EQ(price_rates_resolve(spec).cached_input_per_mtok, 0);

    PriceSpec bad = spec;
    bad.model = "gpt*4o";
    EXPECT_NE(price_spec_check(bad), "");
    bad.model = "";
    EXPECT_NE(price_spec_check(bad), "");
    bad = spec;
    bad.output_per_mtok = price_per_mtok_nano_max + 1;
    EXPECT_NE(price_spec_check(bad), "");
    bad = spec;
    bad.per_request = -1;
    EXPECT_NE(price_spec_check(bad), "");
    bad = spec;
    bad.model = "a\nb";
    EXPECT_NE(price_spec_check(bad), "");
}

}  // namespace
}  // namespace rw
