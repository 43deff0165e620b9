// proxy/route.cc — channel selection and health (see route.h). Shard thread only.
#include "proxy/route.h"

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

void ChannelHealth::failed(int64_t channel_id, uint64_t now_ms) {
    State& state = states_.at(channel_id);
    state.failures += 1;
    if (state.failures >= 3) {  // Three in a row: cool down.
        state.unhealthy_until_ms = now_ms + cooldown_ms_;
        state.failures = 0;
        RW_LOG_WARN("event=channel_cooldown channel_id=%ld cooldown_ms=%u",
                    static_cast<long>(channel_id), cooldown_ms_);
    }
}

void ChannelHealth::succeeded(int64_t channel_id) {
    State& state = states_.at(channel_id);
    state.failures = 0;
    state.unhealthy_until_ms = 0;
}

bool channel_serves(const ChannelEntry& channel, Endpoint endpoint, std::string_view model) {
    if (!channel.is_enabled) {
        return false;
    }
    const bool is_anthropic = channel.kind == ChannelKind::anthropic;
    if (is_anthropic != endpoint_info(endpoint).is_anthropic) {
        return false;  // Anthropic channels serve /v1/messages only, and only they do.
    }
    if (channel.models.empty()) {
        return true;  // No list: the channel serves every model.
    }
    for (const std::string& served : channel.models) {
        if (served == model) {
            return true;
        }
    }
    for (const auto& [from, to] : channel.model_map) {
        if (from == model) {
            return true;
        }
    }
    return false;
}

std::string_view channel_model_sent(const ChannelEntry& channel, std::string_view model) {
    for (const auto& [from, to] : channel.model_map) {
        if (from == model) {
            return to;
        }
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

uint32_t route_pick(std::span<const ChannelEntry> channels, Endpoint endpoint,
                    std::string_view model, ChannelHealth& health, uint64_t now_ms,
                    uint64_t& random_state, std::span<const ChannelEntry*> picked) {
    uint32_t picked_count = 0;
    // Pass 0 takes healthy channels, pass 1 the cooling-down ones as a last resort.
    for (int pass = 0; pass < 2 && picked_count < picked.size(); pass++) {
        size_t group_start = 0;
        while (group_start < channels.size() && picked_count < picked.size()) {
            size_t group_end = group_start;
            while (group_end < channels.size() &&
                   channels[group_end].priority == channels[group_start].priority) {
                group_end += 1;
            }
            Draw draw;
            for (size_t i = group_start; i < group_end && draw.count < route_group_channels_max;
                 i++) {
                const ChannelEntry& channel = channels[i];
                const bool is_healthy = !health.is_cooling(channel.id, now_ms);
                if (is_healthy == (pass == 0) && channel_serves(channel, endpoint, model)) {
                    draw.add(channel);
                }
            }
            while (draw.count > 0 && picked_count < picked.size()) {
                picked[picked_count++] = draw.take(random_state);
            }
            group_start = group_end;
        }
    }
    return picked_count;
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
