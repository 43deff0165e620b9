// proxy/route.cc — channel selection and health (see route.h). Shard thread only.
#include "proxy/route.h"

#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "proxy/resolver.h"

namespace rw {
namespace {

// One priority group's eligible channels, each judged once, then drawn without
// replacement with probability proportional to their weights.
struct Draw {
    const ChannelEntry* eligible[route_group_channels_max];
    uint64_t weights[route_group_channels_max];
    uint32_t count = 0;
    uint64_t total = 0;

    void add(const ChannelEntry& channel) {
        RW_ASSERT(count < route_group_channels_max);
        eligible[count] = &channel;
        weights[count] = channel.weight == 0 ? 1 : channel.weight;
        total += weights[count];
        count += 1;
    }

    const ChannelEntry* take(uint64_t& random_state) {
        RW_ASSERT(count > 0);
        uint64_t draw = route_random_next(random_state) % total;
        uint32_t chosen = 0;
        while (draw >= weights[chosen]) {
            draw -= weights[chosen];
            chosen += 1;
        }
        const ChannelEntry* taken = eligible[chosen];
        total -= weights[chosen];
        count -= 1;
        eligible[chosen] = eligible[count];  // Remove by swapping the last in.
        weights[chosen] = weights[count];
        return taken;
    }
};

// Copies text into the arena; false when it refuses memory.
bool arena_copy(Arena& arena, std::string_view text, std::string_view& out) {
    const char* copy = arena.copy(text);
    if (copy == nullptr) {
        return false;
    }
    out = {copy, text.size()};
    return true;
}

bool candidate_fill(Arena& arena, const ChannelEntry& channel, const ChannelAddress& address,
                    std::string_view model, Candidate& candidate) {
    candidate.channel_id = channel.id;
    candidate.kind = channel.kind;
    candidate.stream_usage = channel.stream_usage;
    candidate.is_tls = address.url.is_tls;
    candidate.auto_disable = channel.auto_disable;
    std::memcpy(&candidate.address, &address.address, address.address_bytes);
    candidate.address_bytes = address.address_bytes;
    candidate.tls_context = address.tls_context;
    candidate.tls_host = {};
    return arena_copy(arena, address.url.host_header, candidate.host_header) &&
           arena_copy(arena, address.url.path_prefix, candidate.path_prefix) &&
           arena_copy(arena, channel.api_key, candidate.api_key) &&
           arena_copy(arena, channel_model_sent(channel, model), candidate.model_sent) &&
           (!candidate.is_tls || arena_copy(arena, address.url.host, candidate.tls_host));
}

}  // namespace

Translation translation_for(Endpoint endpoint, ChannelKind kind) {
    const bool is_anthropic = kind == ChannelKind::anthropic;
    if (endpoint == Endpoint::chat && is_anthropic) {
        return Translation::chat_to_messages;
    }
    if (endpoint == Endpoint::messages && !is_anthropic) {
        return Translation::messages_to_chat;
    }
    if (endpoint == Endpoint::responses && kind == ChannelKind::openai_compatible) {
        return Translation::responses_to_chat;  // Chat-only: openai channels speak Responses.
    }
    return Translation::none;
}

bool channel_serves(const ChannelEntry& channel, Endpoint endpoint, std::string_view model) {
    if (!channel.is_enabled) {
        return false;
    }
    const bool is_anthropic = channel.kind == ChannelKind::anthropic;
    if (is_anthropic != endpoint_info(endpoint).is_anthropic &&
        translation_for(endpoint, channel.kind) == Translation::none) {
        return false;  // Neither the channel's protocol nor one translated to it.
    }
    if (endpoint == Endpoint::responses_input_tokens && channel.kind != ChannelKind::openai) {
        return false;  // Only the Responses API has it; a chat-only channel does not.
    }
    if (channel.serves_all) {
        return true;  // No list: the channel serves every model.
    }
    return channel_model_rule(channel, model) != nullptr;
}

const ChannelModelRule* channel_model_rule(const ChannelEntry& channel, std::string_view model) {
    for (const ChannelModelRule& rule : channel.model_rules) {
        if (model_pattern_rank(rule.pattern, model) != 0) {
            return &rule;
        }
    }
    return nullptr;
}

std::string_view channel_model_sent(const ChannelEntry& channel, std::string_view model) {
    for (const ChannelModelRule& rule : channel.model_rules) {  // The map's block, best first.
        if (rule.map_index < 0) {
            break;  // Past the map: no key matches.
        }
        const uint32_t rank = model_pattern_rank(rule.pattern, model);
        if (rank == 0) {
            continue;
        }
        if (rank != model_rank_exact) {
            // A `models` entry matching better (a longer prefix, or the exact name) sends
            // the name as asked; at equal rank the map wins.
            for (const ChannelModelRule& other : channel.model_rules) {
                if (other.map_index < 0 && model_pattern_rank(other.pattern, model) > rank) {
                    return model;
                }
            }
        }
        return channel.model_map[size_t(rule.map_index)].second;
    }
    return model;
}

uint64_t route_random_next(uint64_t& state) {
    RW_ASSERT(state != 0);  // xorshift64 stays at zero forever.
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

RoutePicks route_pick(std::span<const ChannelEntry> channels, Endpoint endpoint,
                      std::string_view model, ChannelHealthBoard& health, uint64_t now_ms,
                      uint64_t& random_state, std::span<const ChannelEntry*> picked) {
    const ChannelEntry* trial = nullptr;
    const ChannelEntry* healthy[attempts_max];
    const ChannelEntry* rate_limited[attempts_max];
    uint32_t healthy_count = 0;
    uint32_t rate_limited_count = 0;
    uint32_t serving_count = 0;
    const auto wanted = static_cast<uint32_t>(std::min<size_t>(picked.size(), attempts_max));
    // Translation only when no channel of the client's own protocol serves the model: a
    // catch-all channel of the other kind never takes a request its own kind can serve.
    bool has_native = false;
    if (endpoint == Endpoint::chat || endpoint == Endpoint::messages) {
        for (const ChannelEntry& channel : channels) {
            if (translation_for(endpoint, channel.kind) == Translation::none &&
                channel_serves(channel, endpoint, model)) {
                has_native = true;
                break;
            }
        }
    }
    size_t group_start = 0;
    while (group_start < channels.size()) {
        size_t group_end = group_start;
        while (group_end < channels.size() &&
               channels[group_end].priority == channels[group_start].priority) {
            group_end += 1;
        }
        Draw draw;
        for (size_t i = group_start; i < group_end && draw.count < route_group_channels_max; i++) {
            const ChannelEntry& channel = channels[i];
            if (!channel_serves(channel, endpoint, model) ||
                (has_native && translation_for(endpoint, channel.kind) != Translation::none)) {
                continue;
            }
            serving_count += 1;
            // Every serving channel is judged once, even past `wanted`: a half-open one
            // must be able to win its trial whatever its priority.
            switch (health.judge(channel.id, now_ms)) {
                case Verdict::use: draw.add(channel); break;
                case Verdict::rate_limited:
                    if (rate_limited_count < wanted) {
                        rate_limited[rate_limited_count++] = &channel;
                    }
                    break;
                case Verdict::trial:
                    if (trial == nullptr) {
                        trial = &channel;
                    } else {
                        health.trial_abandoned(channel.id);  // One trial per request.
                    }
                    break;
                case Verdict::down: break;
            }
        }
        while (draw.count > 0 && healthy_count < wanted) {
            healthy[healthy_count++] = draw.take(random_state);
        }
        group_start = group_end;
    }
    uint32_t count = 0;
    if (trial != nullptr && count < wanted) {
        picked[count++] = trial;
    }
    for (uint32_t i = 0; i < healthy_count && count < wanted; i++) {
        picked[count++] = healthy[i];
    }
    for (uint32_t i = 0; i < rate_limited_count && count < wanted; i++) {
        picked[count++] = rate_limited[i];
    }
    if (trial != nullptr && (count == 0 || picked[0] != trial)) {
        health.trial_abandoned(trial->id);  // Nothing wanted: no trial either.
        trial = nullptr;
    }
    return {count, trial != nullptr ? trial->id : 0, serving_count};
}

RouteResult route_candidates(Arena& arena, std::span<const ChannelEntry*> picked,
                             uint32_t picked_count, const AddressBook* book, std::string_view model,
                             std::span<Candidate> out) {
    RW_ASSERT(picked_count <= picked.size());
    RW_ASSERT(picked_count <= out.size());
    uint32_t usable = 0;
    for (uint32_t i = 0; i < picked_count; i++) {
        const ChannelEntry& channel = *picked[i];
        const ChannelAddress* address = book != nullptr ? book->find(channel.id) : nullptr;
        if (address == nullptr || !address->is_usable) {
            continue;  // Unresolved or refused by the SSRF rules (logged by the resolver).
        }
        if (!candidate_fill(arena, channel, *address, model, out[usable])) {
            return {Fault::local_out_of_memory, 0};
        }
        usable += 1;
    }
    if (usable == 0) {
        return {picked_count == 0 ? Fault::client_model_not_found : Fault::local_no_channel, 0};
    }
    return {Fault::none, usable};
}

}  // namespace rw
