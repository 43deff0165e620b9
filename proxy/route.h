// proxy/route.h — which channels a request may go to, in what order. route_pick is a pure
// function of the snapshot's channels (sorted by priority, highest first), the request's
// endpoint and model, the shard's channel health and a random state: healthy channels
// before cooling ones, priority groups in order, a weighted random order inside a group.
// route_candidates then copies what the attempts need (checked address, credentials,
// model after the channel's map) into the request's arena: no pointer into a snapshot or
// address book outlives admission. Shard thread only.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "arena/arena.h"
#include "proxy/channel_health.h"
#include "proxy/channel_table.h"
#include "proxy/endpoint.h"
#include "proxy/fault.h"
#include "proxy/translate.h"
#include "storage/snapshot.h"

namespace rw {

class AddressBook;
class TlsContext;

// An IPv4 or IPv6 address, without sockaddr_storage's 100 spare bytes.
union SocketAddress {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
};

// One channel the request may go to, resolved and copied at admission.
struct Candidate {
    int64_t channel_id;
    ChannelKind kind;
    StreamUsage stream_usage;
    bool is_tls;
    bool auto_disable;      // Failures may take the channel down (channel_health.h).
    SocketAddress address;  // Checked against the SSRF rules by the resolver.
    socklen_t address_bytes;
    std::string_view host_header;  // "host[:port]" (arena).
    std::string_view path_prefix;  // Base URL path without a trailing slash (arena).
    std::string_view api_key;      // The channel's secret (arena); never logged.
    std::string_view model_sent;   // After the channel's model map (arena).
    TlsContext* tls_context;       // https: lives as long as the process.
    std::string_view tls_host;     // Name checked against the certificate (arena).
};

// The translation a request of endpoint needs on a channel of kind: Chat on an anthropic
// channel, Messages on an openai or openai-compatible one, Responses on an openai-compatible
// (chat-only) one; none otherwise (passthrough, or an endpoint the kind cannot serve).
[[nodiscard]] Translation translation_for(Endpoint endpoint, ChannelKind kind);

// Whether a channel takes this endpoint and model (enabled, of the endpoint's protocol or
// one translated to it, listing the model, a pattern matching it, or every model) and the
// model it is sent under: its model_map's best match for the name (an exact key beats the
// longest "prefix*" key beats "*", storage/model_pattern.h), else the name itself.
[[nodiscard]] bool channel_serves(const ChannelEntry& channel, Endpoint endpoint,
                                  std::string_view model);
[[nodiscard]] std::string_view channel_model_sent(const ChannelEntry& channel,
                                                  std::string_view model);
// A rule of the channel's (model_map key or `models` entry) matching `model`, or nullptr.
[[nodiscard]] const ChannelModelRule* channel_model_rule(const ChannelEntry& channel,
                                                         std::string_view model);

// xorshift64: a cheap per-shard random state for weighted draws (never zero).
[[nodiscard]] uint64_t route_random_next(uint64_t& state);

// Up to picked.size() channels for the request, best first, into picked. A trial it won is
// picked[0] and named in trial_channel_id (0: none): the caller owes the board its outcome
// (or trial_abandoned). Pure apart from the health verdicts and the random state.
struct RoutePicks {
    uint32_t count;
    int64_t trial_channel_id;
    uint32_t serving_count;  // Channels serving the endpoint and model, down ones included.
};
[[nodiscard]] RoutePicks route_pick(std::span<const ChannelEntry> channels, Endpoint endpoint,
                                    std::string_view model, ChannelHealthBoard& health,
                                    uint64_t now_ms, uint64_t& random_state,
                                    std::span<const ChannelEntry*> picked);

// The request's candidates (channels picked and resolved) copied into `arena`. Returns
// Fault::none, client_model_not_found (no channel serves the model), local_no_channel
// (none resolved and usable) or local_out_of_memory.
struct RouteResult {
    Fault fault;
    uint32_t candidate_count;
};
[[nodiscard]] RouteResult route_candidates(Arena& arena, std::span<const ChannelEntry*> picked,
                                           uint32_t picked_count, const AddressBook* book,
                                           std::string_view model, std::span<Candidate> out);

}  // namespace rw
