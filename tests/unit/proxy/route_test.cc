// tests/unit/proxy/route_test.cc — channel selection (proxy/route.h) as a pure function:
// priority tiers in order, weights honoured (by drawing 100,000 times), down channels
// never tried and a half-open one's trial first, rate-limited ones last, protocol and model
// filters, the model map.
#include "proxy/route.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace rw {
namespace {

ChannelEntry channel(int64_t id, int32_t priority, uint32_t weight,
                     ChannelKind kind = ChannelKind::openai) {
    ChannelEntry entry;
    entry.id = id;
    entry.name = "c" + std::to_string(id);
    entry.kind = kind;
    entry.priority = priority;
    entry.weight = weight;
    return entry;
}

struct Picked {
    std::vector<int64_t> ids;
    int64_t trial = 0;
};

Picked pick(const std::vector<ChannelEntry>& channels, ChannelHealthBoard& health, uint64_t& random,
            uint32_t wanted = attempts_max, std::string_view model = "gpt-4o",
            Endpoint endpoint = Endpoint::chat, uint64_t now_ms = 1000);

// The channels compiled as a snapshot load compiles them (tests edit `models` in place).
std::vector<ChannelEntry> compiled(std::vector<ChannelEntry> channels) {
    for (ChannelEntry& channel : channels) {
        channel_models_compile(channel);
    }
    return channels;
}

Picked pick(const std::vector<ChannelEntry>& channels, ChannelHealthBoard& health, uint64_t& random,
            uint32_t wanted, std::string_view model, Endpoint endpoint, uint64_t now_ms) {
    const ChannelEntry* out[attempts_max];
    const std::vector<ChannelEntry> loaded = compiled(channels);
    const RoutePicks picks =
        route_pick(loaded, endpoint, model, health, now_ms, random, {out, wanted});
    Picked picked;
    for (uint32_t i = 0; i < picks.count; i++) {
        picked.ids.push_back(out[i]->id);
    }
    picked.trial = picks.trial_channel_id;
    return picked;
}

struct Health {
    ChannelHealthBoard board{HealthSettings{}};
    operator ChannelHealthBoard&() { return board; }
};

TEST(RoutePick, HigherPriorityTiersComeFirst) {
    // The snapshot keeps channels sorted by priority, highest first.
    const std::vector<ChannelEntry> channels = {channel(1, 10, 1), channel(2, 10, 1),
                                                channel(3, 5, 1), channel(4, 0, 1)};
    Health health;
    uint64_t random = 12345;
    for (int round = 0; round < 200; round++) {
        const Picked picked = pick(channels, health, random);
        ASSERT_EQ(picked.ids.size(), 4u);
        EXPECT_TRUE((picked.ids[0] == 1 && picked.ids[1] == 2) ||
                    (picked.ids[0] == 2 && picked.ids[1] == 1));
        EXPECT_EQ(picked.ids[2], 3);
        EXPECT_EQ(picked.ids[3], 4);
    }
}

TEST(RoutePick, WeightsDecideTheFirstChoiceProportionally) {
    const std::vector<ChannelEntry> channels = {channel(1, 0, 1), channel(2, 0, 3),
                                                channel(3, 0, 6)};
    Health health;
    uint64_t random = 0x9E3779B97F4A7C15ull;
    std::map<int64_t, int> first;
    constexpr int draws = 100000;
    for (int i = 0; i < draws; i++) {
        const Picked picked = pick(channels, health, random);
        ASSERT_EQ(picked.ids.size(), 3u);  // Without replacement: each channel once.
        first[picked.ids[0]] += 1;
    }
    // Expected shares 10%, 30%, 60%; a binomial's standard deviation here is under 0.16%,
    // so 1% is more than six of them.
    EXPECT_NEAR(first[1] / double(draws), 0.10, 0.01);
    EXPECT_NEAR(first[2] / double(draws), 0.30, 0.01);
    EXPECT_NEAR(first[3] / double(draws), 0.60, 0.01);
}

TEST(RoutePick, ZeroWeightCountsAsOne) {
    const std::vector<ChannelEntry> channels = {channel(1, 0, 0), channel(2, 0, 1)};
    Health health;
    uint64_t random = 99;
    int first_one = 0;
    for (int i = 0; i < 20000; i++) {
        first_one += pick(channels, health, random).ids[0] == 1 ? 1 : 0;
    }
    EXPECT_NEAR(first_one / 20000.0, 0.5, 0.03);
}

TEST(RoutePick, DownChannelsWaitTheirBackoffThenOneTrialLeads) {
    const std::vector<ChannelEntry> channels = {channel(1, 10, 1), channel(2, 0, 1)};
    HealthSettings settings;
    settings.backoff_ms = 1000;
    settings.backoff_max_ms = 4000;
    ChannelHealthBoard health(settings);
    uint64_t random = 7;
    health.failed(1, true, {FailureKind::auth, 401, 0, {}}, 1000, false);  // Down at once.
    EXPECT_EQ(pick(channels, health, random).ids, (std::vector<int64_t>{2}));
    EXPECT_EQ(pick(channels, health, random, attempts_max, "gpt-4o", Endpoint::chat, 1999).ids,
              (std::vector<int64_t>{2}));
    // Past the backoff: exactly one request holds the trial, first; the next does not.
    const Picked trial =
        pick(channels, health, random, attempts_max, "gpt-4o", Endpoint::chat, 2000);
    EXPECT_EQ(trial.ids, (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(trial.trial, 1);
    const Picked other =
        pick(channels, health, random, attempts_max, "gpt-4o", Endpoint::chat, 2000);
    EXPECT_EQ(other.ids, (std::vector<int64_t>{2}));
    EXPECT_EQ(other.trial, 0);
    // The trial fails: down again for twice the backoff.
    health.failed(1, true, {FailureKind::auth, 401, 0, {}}, 2000, true);
    EXPECT_EQ(pick(channels, health, random, attempts_max, "gpt-4o", Endpoint::chat, 3999).ids,
              (std::vector<int64_t>{2}));
    const Picked second =
        pick(channels, health, random, attempts_max, "gpt-4o", Endpoint::chat, 4000);
    EXPECT_EQ(second.trial, 1);
    health.succeeded(1, 4000, true);  // Up: it leads by priority again.
    EXPECT_EQ(pick(channels, health, random).ids, (std::vector<int64_t>{1, 2}));
    EXPECT_FALSE(health.view(1, 4000).is_down);
}

TEST(RoutePick, RateLimitedChannelsComeLastAndStayUp) {
    const std::vector<ChannelEntry> channels = {channel(1, 10, 1), channel(2, 0, 1)};
    Health health;
    uint64_t random = 3;
    health.board.failed(1, true, {FailureKind::rate, 429, 2, {}}, 1000, false);
    EXPECT_EQ(pick(channels, health, random, attempts_max, "gpt-4o", Endpoint::chat, 2999).ids,
              (std::vector<int64_t>{2, 1}));
    EXPECT_EQ(pick(channels, health, random, attempts_max, "gpt-4o", Endpoint::chat, 3000).ids,
              (std::vector<int64_t>{1, 2}));
    EXPECT_FALSE(health.board.view(1, 1000).is_down);
}

TEST(RoutePick, AllDownLeavesNoPickButCountsServingChannels) {
    const std::vector<ChannelEntry> channels = {channel(1, 0, 1)};
    Health health;
    health.board.failed(1, true, {FailureKind::auth, 403, 0, {}}, 1000, false);
    const ChannelEntry* out[attempts_max];
    uint64_t random = 1;
    const RoutePicks picks =
        route_pick(channels, Endpoint::chat, "gpt-4o", health, 1000, random, {out, 3});
    EXPECT_EQ(picks.count, 0u);
    EXPECT_EQ(picks.serving_count, 1u);
}

TEST(RoutePick, StopsAtTheWantedCount) {
    const std::vector<ChannelEntry> channels = {channel(1, 0, 1), channel(2, 0, 1),
                                                channel(3, 0, 1)};
    Health health;
    uint64_t random = 5;
    EXPECT_EQ(pick(channels, health, random, 2).ids.size(), 2u);
    EXPECT_EQ(pick(channels, health, random, 1).ids.size(), 1u);
}

TEST(RoutePick, FiltersByProtocolModelAndEnabled) {
    std::vector<ChannelEntry> channels = {channel(1, 0, 1),
                                          channel(2, 0, 1, ChannelKind::anthropic),
                                          channel(3, 0, 1), channel(4, 0, 1)};
    channels[2].models = {"gpt-4o-mini"};
    channels[3].is_enabled = false;
    Health health;
    uint64_t random = 11;
    // A channel of the client's own protocol wins: the other kind is not tried then.
    EXPECT_EQ(pick(channels, health, random).ids, (std::vector<int64_t>{1}));
    EXPECT_EQ(pick(channels, health, random, attempts_max, "claude", Endpoint::messages).ids,
              (std::vector<int64_t>{2}));
    const Picked mini = pick(channels, health, random, attempts_max, "gpt-4o-mini");
    EXPECT_EQ(mini.ids.size(), 2u);
    // Without one, Chat and Messages reach the other kind through translation.
    channels[0].models = {"gpt-4o-mini"};
    channels[1].models = {"claude"};
    EXPECT_EQ(pick(channels, health, random, attempts_max, "claude").ids,
              (std::vector<int64_t>{2}));
    EXPECT_EQ(
        pick(channels, health, random, attempts_max, "gpt-4o-mini", Endpoint::messages).ids.size(),
        2u);
    channels[0].models = {};
    channels[1].models = {};
    // The endpoints without a translation keep to their protocol.
    EXPECT_TRUE(pick(channels, health, random, attempts_max, "x", Endpoint::embeddings).ids ==
                (std::vector<int64_t>{1}));
    EXPECT_TRUE(pick(channels, health, random, attempts_max, "x", Endpoint::count_tokens).ids ==
                (std::vector<int64_t>{2}));
    EXPECT_TRUE(pick(channels, health, random, attempts_max, "x", Endpoint::responses).ids ==
                (std::vector<int64_t>{1}));
}

TEST(RoutePick, ModelMapMakesAChannelServeAndRenames) {
    ChannelEntry mapped = channel(1, 0, 1);
    mapped.models = {"gpt-4o-2024-08-06"};
    mapped.model_map = {{"gpt-4o", "gpt-4o-2024-08-06"}};
    channel_models_compile(mapped);
    EXPECT_TRUE(channel_serves(mapped, Endpoint::chat, "gpt-4o"));
    EXPECT_EQ(channel_model_sent(mapped, "gpt-4o"), "gpt-4o-2024-08-06");
    EXPECT_EQ(channel_model_sent(mapped, "other"), "other");
    EXPECT_FALSE(channel_serves(mapped, Endpoint::chat, "other"));
}

// storage/model_pattern.h's rule: an exact name beats the longest prefix beats "*", in
// `models` and model_map keys alike, whatever order the operator wrote them in.
TEST(RoutePick, PatternsMatchExactThenLongestPrefixThenStar) {
    ChannelEntry patterns = channel(1, 0, 1);
    patterns.models = {"gpt-*", "o1"};
    patterns.model_map = {
        {"*", "catch-all"}, {"gpt-4*", "four"}, {"gpt-4o", "exact"}, {"gpt-4o-*", "four-o"}};
    channel_models_compile(patterns);
    EXPECT_EQ(channel_model_sent(patterns, "gpt-4o"), "exact");
    EXPECT_EQ(channel_model_sent(patterns, "gpt-4o-mini"), "four-o");
    EXPECT_EQ(channel_model_sent(patterns, "gpt-4-turbo"), "four");
    EXPECT_EQ(channel_model_sent(patterns, "gpt-3.5"), "gpt-3.5");  // `models` "gpt-*".
    EXPECT_EQ(channel_model_sent(patterns, "o1"), "o1");            // Exact beats "*".
    EXPECT_EQ(channel_model_sent(patterns, "claude"), "catch-all");
    EXPECT_TRUE(channel_serves(patterns, Endpoint::chat, "claude"));  // "*" serves all.

    ChannelEntry prefixed = channel(2, 0, 1);
    prefixed.models = {"claude-3*"};
    channel_models_compile(prefixed);
    EXPECT_TRUE(channel_serves(prefixed, Endpoint::chat, "claude-3-haiku"));
    EXPECT_TRUE(channel_serves(prefixed, Endpoint::chat, "claude-3"));
    EXPECT_FALSE(channel_serves(prefixed, Endpoint::chat, "claude-2"));
    EXPECT_FALSE(channel_serves(prefixed, Endpoint::chat, "claude-"));

    KeyEntry key;
    key.allows_all_models = false;
    key.models = {"gpt-4o*", "o1"};
    key_models_compile(key);
    EXPECT_TRUE(key.allows_model("gpt-4o-mini"));
    EXPECT_TRUE(key.allows_model("o1"));
    EXPECT_FALSE(key.allows_model("o1-mini"));
    EXPECT_FALSE(key.allows_model("gpt-4"));
}

TEST(RouteCandidates, NoChannelIsModelNotFoundAndUnresolvedIsNoChannel) {
    Candidate out[attempts_max];
    ChunkPool pool(64, 1 << 20);
    Arena arena;
    arena.bind(&pool, 1 << 20);
    const ChannelEntry* none[attempts_max];
    EXPECT_EQ(route_candidates(arena, none, 0, nullptr, "m", out).fault,
              Fault::client_model_not_found);
    const ChannelEntry one = channel(1, 0, 1);
    const ChannelEntry* picked[attempts_max] = {&one};
    EXPECT_EQ(route_candidates(arena, picked, 1, nullptr, "m", out).fault, Fault::local_no_channel);
    arena.release();
}

}  // namespace
}  // namespace rw
