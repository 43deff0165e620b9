// proxy/gateway.cc — admission of a gateway request on the shard: endpoint, ringway key,
// the key's limits, the body's model/stream fields, channel candidates and the usage
// queue reservation, in that order, each refusal an OpenAI-style error. What passes is
// handed to the attempt machinery in upstream.cc. Shard thread only.
#include "proxy/gateway.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

#include "core/log.h"
#include "proxy/gateway_types.h"
#include "proxy/resolver.h"
#include "storage/keys.h"

namespace rw {
namespace {

constexpr std::string_view json_type = "application/json";

int64_t unix_ms() {
    timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    return int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

struct EndpointInfo {
    std::string_view path;
    Endpoint endpoint;
    UsageFormat format;
};

constexpr EndpointInfo endpoints[] = {
    {"/v1/chat/completions", Endpoint::chat, UsageFormat::chat},
    {"/v1/completions", Endpoint::completions, UsageFormat::chat},
    {"/v1/embeddings", Endpoint::embeddings, UsageFormat::embeddings},
    {"/v1/responses", Endpoint::responses, UsageFormat::responses},
    {"/v1/messages", Endpoint::messages, UsageFormat::anthropic_messages},
};

bool starts_with_lower(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) {
        return false;
    }
    for (size_t i = 0; i < prefix.size(); i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (c != prefix[i]) {
            return false;
        }
    }
    return true;
}

bool channel_serves(const ChannelEntry& channel, Endpoint endpoint, std::string_view model) {
    if (!channel.is_enabled) {
        return false;
    }
    const bool is_anthropic = channel.kind == ChannelKind::anthropic;
    if (is_anthropic != (endpoint == Endpoint::messages)) {
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

std::string_view mapped_model(const ChannelEntry& channel, std::string_view model) {
    for (const auto& [from, to] : channel.model_map) {
        if (from == model) {
            return to;
        }
    }
    return model;
}

}  // namespace

KeyLimits::KeyLimits(uint32_t slot_count)
    : in_flight_(new std::atomic<uint32_t>[slot_count]),
      minute_window_(new std::atomic<uint64_t>[slot_count]),
      slot_count_(slot_count) {
    for (uint32_t i = 0; i < slot_count; i++) {
        in_flight_[i].store(0, std::memory_order_relaxed);
        minute_window_[i].store(0, std::memory_order_relaxed);
    }
}

bool KeyLimits::concurrency_try_take(uint32_t slot, uint32_t max) {
    RW_ASSERT(slot < slot_count_);
    const uint32_t before = in_flight_[slot].fetch_add(1, std::memory_order_relaxed);
    if (max != 0 && before >= max) {
        in_flight_[slot].fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void KeyLimits::concurrency_release(uint32_t slot) {
    RW_ASSERT(slot < slot_count_);
    const uint32_t before = in_flight_[slot].fetch_sub(1, std::memory_order_relaxed);
    RW_ASSERT(before > 0);  // Paired with a successful take.
}

// A fixed one-minute window per key, shared by all shards through one CAS word:
// [minute since epoch : 40][requests in it : 24].
bool KeyLimits::rpm_try_take(uint32_t slot, uint32_t rpm, int64_t now_s) {
    RW_ASSERT(slot < slot_count_);
    if (rpm == 0) {
        return true;
    }
    const uint64_t minute = static_cast<uint64_t>(now_s / 60) & ((1ull << 40) - 1);
    uint64_t word = minute_window_[slot].load(std::memory_order_relaxed);
    for (;;) {
        const uint64_t word_minute = word >> 24;
        const uint64_t count = word_minute == minute ? (word & 0xFFFFFF) : 0;
        if (count >= rpm) {
            return false;
        }
        const uint64_t next = (minute << 24) | (count + 1);
        if (minute_window_[slot].compare_exchange_weak(word, next, std::memory_order_relaxed)) {
            return true;
        }
    }
}

Gateway::Gateway(GatewayShared& shared, Shard& shard)
    : shared_(shared),
      shard_(shard),
      config_(shard.config()),
      random_state_(0x9E3779B97F4A7C15ull ^ (uint64_t(shard.index()) << 32) ^ proxy_clock_us()) {
    const uint32_t count = config_.upstream_connections_max;
    upstreams_ = new UpstreamConn[count];
    upstream_free_ = new uint32_t[count];
    for (uint32_t i = 0; i < count; i++) {
        upstreams_[i].slot = i;
        upstream_free_[count - 1 - i] = i;
    }
    upstream_free_count_ = count;
    upstream_rearm_ = new uint32_t[count];
    channels_ = new ChannelState[channel_states_max];
    for (uint32_t i = 0; i < channel_states_max; i++) {
        channels_[i] = ChannelState{0, 0, 0, UINT32_MAX, 0};
    }
    shared_.metrics[shard.index()] = &metrics_;
    // The shard's simdjson parser, sized now so ordinary bodies never grow it mid-request
    // (larger documents still may, once: that growth is the parser's, capped by the body
    // and response limits).
    [[maybe_unused]] const bool is_reserved = json_parser_reserve(
        1u << 20, static_cast<uint32_t>(std::min<uint64_t>(
                      std::max(config_.max_body_bytes, config_.max_response_bytes),
                      UINT32_MAX - json_padding_bytes)));
}

Gateway::~Gateway() {
    delete[] upstreams_;
    delete[] upstream_free_;
    delete[] upstream_rearm_;
    delete[] channels_;
}

RequestHandler Gateway::handler() {
    RequestHandler handler;
    handler.context = this;
    handler.on_request = on_request_thunk;
    handler.on_cqe = on_cqe_thunk;
    handler.on_client_gone = on_client_gone_thunk;
    handler.on_client_writable = on_client_writable_thunk;
    handler.on_turn_end = on_turn_end_thunk;
    return handler;
}

void Gateway::on_request_thunk(void* context, Conn& conn) {
    static_cast<Gateway*>(context)->on_request(conn);
}

// GET /v1/models: the models of the enabled channels this key may use, in OpenAI's list
// format, each once: the first models_listed_max distinct names of at most
// model_name_bytes_max bytes. Sized by a first pass and written by a second, so the JSON
// is never cut short. Ends through request_finish like every other gateway request (no
// attempt, so no record).
void Gateway::serve_models(ProxyRequest& request) {
    Conn& conn = *request.conn;
    const Snapshot* snapshot = shared_.snapshots->acquire(shard_.index());
    const KeyEntry* key = snapshot != nullptr ? snapshot->find_key_by_id(request.key_id) : nullptr;
    char* out = nullptr;
    uint32_t used = 0;
    auto put = [&](std::string_view text) {
        if (out != nullptr) {
            std::memcpy(out + used, text.data(), text.size());
        }
        used += static_cast<uint32_t>(text.size());
    };
    auto write_list = [&] {
        used = 0;
        put("{\"object\":\"list\",\"data\":[");
        bool is_first = true;
        uint32_t listed = 0;
        std::string_view seen[models_listed_max];
        for (const ChannelEntry& channel : snapshot->channels()) {
            if (!channel.is_enabled) {
                continue;
            }
            for (const std::string& model : channel.models) {
                if (!key->allows_model(model) || model.size() > model_name_bytes_max) {
                    continue;
                }
                bool is_duplicate = false;
                for (uint32_t i = 0; i < listed; i++) {
                    is_duplicate = is_duplicate || seen[i] == model;
                }
                if (is_duplicate || listed == models_listed_max) {
                    continue;
                }
                seen[listed++] = model;
                put(is_first ? "{\"id\":\"" : ",{\"id\":\"");
                is_first = false;
                char escaped[model_name_bytes_max * 6];
                char* end = json_escape_write(escaped, model);
                put({escaped, static_cast<size_t>(end - escaped)});
                put("\",\"object\":\"model\",\"created\":0,\"owned_by\":\"");
                end = json_escape_write(escaped, channel.name.substr(0, model_name_bytes_max));
                put({escaped, static_cast<size_t>(end - escaped)});
                put("\"}");
            }
        }
        put("]}");
    };
    if (key != nullptr) {
        write_list();  // Sizing pass.
        out = static_cast<char*>(conn.arena.alloc(used, 1));
    }
    if (out == nullptr) {
        shared_.snapshots->quiesce(shard_.index());
        shard_.respond_error(conn, 503, "overloaded", "The gateway is out of memory.");
        request_finish(request, EndReason::local_error);
        return;
    }
    write_list();
    shared_.snapshots->quiesce(shard_.index());
    shard_.respond(conn, 200, json_type, {out, used}, {});
    request_finish(request, EndReason::complete);
}

// Admission. Every refusal here happens before an upstream is contacted, so it leaves
// no usage record (nothing was spent); the error goes to the client at once.
void Gateway::on_request(Conn& conn) {
    const ParsedRequest& http = conn.parser.request();
    const EndpointInfo* info = nullptr;
    for (const EndpointInfo& candidate : endpoints) {
        if (http.path == candidate.path) {
            info = &candidate;
        }
    }
    const bool is_models = http.path == "/v1/models";
    if (info == nullptr && !is_models) {
        shard_.respond_unknown_url(conn);
        return;
    }
    const Method wanted = is_models ? Method::get : Method::post;
    if (http.method != wanted) {
        shard_.respond_error(
            conn, 405, "method_not_allowed",
            is_models ? "Only GET is allowed on this path." : "Only POST is allowed on this path.");
        return;
    }
    auto* request = conn.arena.make<ProxyRequest>();
    if (request == nullptr) {
        shard_.respond_error(conn, 503, "overloaded", "The gateway is out of memory.");
        return;
    }
    request->conn = &conn;
    request->conn_gen = conn.gen;
    request->upstream_slot = UINT32_MAX;
    request->started_ms = shard_.now_ms();
    request->started_us = proxy_clock_us();
    request->started_unix_ms = unix_ms();
    request->bytes_in = http.body.size();
    request->usage_source = UsageSource::unknown;
    request->end_reason = EndReason::local_error;
    if (info != nullptr) {
        request->endpoint = info->endpoint;
        request->usage_format = info->format;
    }
    shard_.handler_take(conn, request);
    metrics_.requests_started.add();
    if (!admit(*request, http)) {
        request_finish(*request, EndReason::local_error);  // No attempt made: no record.
        return;
    }
    if (is_models) {
        serve_models(*request);
        return;
    }
    attempt_start(*request);
}

bool Gateway::admit(ProxyRequest& request, const ParsedRequest& http) {
    Conn& conn = *request.conn;
    // Credentials: Authorization: Bearer (OpenAI) or x-api-key (Anthropic clients). Both
    // present and different is refused rather than guessed (RULES security §1).
    std::string_view bearer;
    const std::string_view authorization = http.find_header("authorization");
    if (starts_with_lower(authorization, "bearer ")) {
        bearer = authorization.substr(7);
        while (!bearer.empty() && bearer.front() == ' ') {
            bearer.remove_prefix(1);
        }
    }
    const std::string_view api_key_header = http.find_header("x-api-key");
    if (!bearer.empty() && !api_key_header.empty() && bearer != api_key_header) {
        metrics_.auth_failures.add();
        shard_.respond_error(conn, 401, "invalid_api_key",
                             "Authorization and x-api-key carry different keys.");
        return false;
    }
    const std::string_view secret = !bearer.empty() ? bearer : api_key_header;
    if (secret.empty()) {
        metrics_.auth_failures.add();
        shard_.respond_error(conn, 401, "missing_api_key",
                             "You didn't provide an API key. Send it as Authorization: Bearer "
                             "<key>.");
        return false;
    }
    const KeyHash hash = key_hash(secret);
    const Snapshot* snapshot = shared_.snapshots->acquire(shard_.index());
    // Everything needed later is copied out before quiesce: the snapshot may be retired
    // while the request waits for its upstream.
    struct Quiesce {
        SnapshotPublisher* publisher;
        uint32_t index;
        ~Quiesce() { publisher->quiesce(index); }
    } quiesce{shared_.snapshots, shard_.index()};
    const KeyEntry* key = snapshot != nullptr ? snapshot->find_key(hash) : nullptr;
    const int64_t now_s = request.started_unix_ms / 1000;
    if (key == nullptr || !key->is_active ||
        (key->expires_at_s != 0 && key->expires_at_s <= now_s)) {
        metrics_.auth_failures.add();
        // The key itself is never echoed (RULES security §3).
        shard_.respond_error(conn, 401, "invalid_api_key",
                             key == nullptr ? "Incorrect API key provided."
                                            : "This API key has been revoked or has expired.");
        return false;
    }
    request.key_id = key->id;
    request.quota_slot = key->quota_slot;
    if (key->has_quota_limit &&
        shared_.quotas->used_tokens(key->quota_slot) >= key->quota_limit_tokens) {
        metrics_.limited.add();
        shard_.respond_error(conn, 429, "insufficient_quota",
                             "You exceeded the token quota of this API key.");
        return false;
    }
    if (http.path == "/v1/models") {
        return true;  // Listing models needs only a valid key.
    }
    const RequestFieldsError fields_error =
        request_fields_parse(conn.arena, http.body, request.fields);
    if (fields_error != RequestFieldsError::none) {
        shard_.respond_error(conn, fields_error == RequestFieldsError::arena_exhausted ? 503 : 400,
                             request_fields_error_code(fields_error),
                             request_fields_error_message(fields_error));
        return false;
    }
    request.body = http.body;
    request.model_requested = request.fields.model;
    request.is_streaming = request.fields.is_streaming;
    if (!key->allows_model(request.model_requested)) {
        shard_.respond_error(conn, 403, "model_not_allowed",
                             "This API key is not allowed to use the requested model.");
        return false;
    }
    if (!shared_.key_limits->rpm_try_take(key->quota_slot, key->rpm, now_s)) {
        metrics_.limited.add();
        shard_.respond_error(conn, 429, "rate_limit_exceeded",
                             "Rate limit reached for requests per minute on this API key.");
        return false;
    }
    if (!shared_.key_limits->concurrency_try_take(key->quota_slot, key->concurrency_max)) {
        metrics_.limited.add();
        shard_.respond_error(conn, 429, "concurrency_limit_exceeded",
                             "Too many requests in flight on this API key.");
        return false;
    }
    request.holds_concurrency = true;
    if (!route(request, *snapshot)) {
        return false;
    }
    // The usage record's queue slot is taken now, so the record can never be dropped
    // later: no room means the writer is behind, and the client is told to retry.
    if (!shared_.writer->queue(shard_.index()).try_reserve()) {
        metrics_.overloaded.add();
        shard_.respond(conn, 503, json_type,
                       "{\"error\":{\"message\":\"The gateway is overloaded: its usage log is "
                       "behind. Retry shortly.\",\"type\":\"server_error\",\"param\":null,"
                       "\"code\":\"overloaded\"}}",
                       "Retry-After: 1\r\n");
        return false;
    }
    request.has_queue_reservation = true;
    const std::string_view version = http.find_header("anthropic-version");
    request.anthropic_version = version.empty() ? std::string_view("2023-06-01") : version;
    return true;
}

// Candidates: enabled channels of the right kind serving the model, by priority (the
// snapshot keeps channels sorted by priority, highest first), weighted-random within
// one priority, healthy before cooling-down ones.
bool Gateway::route(ProxyRequest& request, const Snapshot& snapshot) {
    Conn& conn = *request.conn;
    const AddressBook* book = shared_.resolver != nullptr ? shared_.resolver->current() : nullptr;
    const ChannelEntry* picked[attempts_max];
    uint32_t picked_count = 0;
    const uint32_t wanted = 1 + config_.retries;
    const uint64_t now = shard_.now_ms();
    const std::span<const ChannelEntry> channels = snapshot.channels();
    // Pass 0 takes healthy channels, pass 1 the cooling-down ones as a last resort.
    for (int pass = 0; pass < 2 && picked_count < wanted; pass++) {
        size_t group_start = 0;
        while (group_start < channels.size() && picked_count < wanted) {
            size_t group_end = group_start;
            while (group_end < channels.size() &&
                   channels[group_end].priority == channels[group_start].priority) {
                group_end += 1;
            }
            // The group's eligible channels, each judged once; then weighted draws without
            // replacement give them a random order proportional to their weights.
            const ChannelEntry* eligible[route_group_channels_max];
            uint64_t weights[route_group_channels_max];
            uint32_t eligible_count = 0;
            uint64_t total = 0;
            for (size_t i = group_start; i < group_end && eligible_count < route_group_channels_max;
                 i++) {
                const ChannelEntry& channel = channels[i];
                const bool is_healthy = channel_state(channel.id).unhealthy_until_ms <= now;
                if (is_healthy == (pass == 0) &&
                    channel_serves(channel, request.endpoint, request.model_requested)) {
                    eligible[eligible_count] = &channel;
                    weights[eligible_count] = channel.weight == 0 ? 1 : channel.weight;
                    total += weights[eligible_count];
                    eligible_count += 1;
                }
            }
            while (eligible_count > 0 && picked_count < wanted) {
                random_state_ ^= random_state_ << 13;  // xorshift64: cheap, per shard.
                random_state_ ^= random_state_ >> 7;
                random_state_ ^= random_state_ << 17;
                uint64_t draw = random_state_ % total;
                uint32_t chosen = 0;
                while (draw >= weights[chosen]) {
                    draw -= weights[chosen];
                    chosen += 1;
                }
                picked[picked_count++] = eligible[chosen];
                total -= weights[chosen];
                eligible_count -= 1;
                eligible[chosen] = eligible[eligible_count];  // Remove by swapping the last in.
                weights[chosen] = weights[eligible_count];
            }
            group_start = group_end;
        }
    }
    uint32_t usable = 0;
    for (uint32_t i = 0; i < picked_count; i++) {
        const ChannelEntry& channel = *picked[i];
        const ChannelAddress* address = book != nullptr ? book->find(channel.id) : nullptr;
        if (address == nullptr || !address->is_usable) {
            continue;  // Unresolved or refused by the SSRF rules (logged by the resolver).
        }
        Candidate& candidate = request.candidates[usable];
        candidate.channel_id = channel.id;
        candidate.kind = channel.kind;
        candidate.is_tls = address->url.is_tls;
        std::memcpy(&candidate.address, &address->address, address->address_bytes);
        candidate.address_bytes = address->address_bytes;
        const char* host = conn.arena.copy(address->url.host_header);
        const char* prefix = conn.arena.copy(address->url.path_prefix);
        const char* api_key = conn.arena.copy(channel.api_key);
        const std::string_view model = mapped_model(channel, request.model_requested);
        const char* model_copy = conn.arena.copy(model);
        if (host == nullptr || prefix == nullptr || api_key == nullptr || model_copy == nullptr) {
            shard_.respond_error(conn, 503, "overloaded", "The gateway is out of memory.");
            return false;
        }
        candidate.host_header = {host, address->url.host_header.size()};
        candidate.path_prefix = {prefix, address->url.path_prefix.size()};
        candidate.api_key = {api_key, channel.api_key.size()};
        candidate.model_sent = {model_copy, model.size()};
        candidate.tls_context = address->tls_context;
        if (candidate.is_tls) {
            const char* tls_host = conn.arena.copy(address->url.host);
            if (tls_host == nullptr) {
                shard_.respond_error(conn, 503, "overloaded", "The gateway is out of memory.");
                return false;
            }
            candidate.tls_host = {tls_host, address->url.host.size()};
        }
        usable += 1;
    }
    if (usable == 0) {
        char message[256];
        const int length = std::snprintf(
            message, sizeof(message),
            picked_count == 0 ? "The model `%.*s` does not exist or you do not have access to it."
                              : "No upstream channel for model `%.*s` is reachable right now.",
            int(request.model_requested.size() > 100 ? 100 : request.model_requested.size()),
            request.model_requested.data());
        shard_.respond_error(conn, picked_count == 0 ? 404 : 503,
                             picked_count == 0 ? "model_not_found" : "no_channel_available",
                             {message, static_cast<size_t>(length)});
        return false;
    }
    request.candidate_count = static_cast<uint8_t>(usable);
    return true;
}

ChannelState& Gateway::channel_state(int64_t channel_id) {
    RW_ASSERT(channel_id > 0);
    uint64_t index = static_cast<uint64_t>(channel_id) * 0x9E3779B97F4A7C15ull;
    for (uint32_t probe = 0; probe < channel_states_max; probe++) {
        ChannelState& state = channels_[(index + probe) & (channel_states_max - 1)];
        if (state.channel_id == channel_id) {
            return state;
        }
        if (state.channel_id == 0) {
            state.channel_id = channel_id;
            return state;
        }
    }
    // More channels than slots: share the last probe's slot (health is advisory).
    return channels_[index & (channel_states_max - 1)];
}

void Gateway::channel_failed(int64_t channel_id) {
    ChannelState& state = channel_state(channel_id);
    state.failures += 1;
    if (state.failures >= 3) {  // Three in a row: cool down.
        state.unhealthy_until_ms = shard_.now_ms() + config_.channel_cooldown_ms;
        state.failures = 0;
        RW_LOG_WARN("event=channel_cooldown channel_id=%ld cooldown_ms=%u",
                    static_cast<long>(channel_id), config_.channel_cooldown_ms);
    }
}

void Gateway::channel_succeeded(int64_t channel_id) {
    ChannelState& state = channel_state(channel_id);
    state.failures = 0;
    state.unhealthy_until_ms = 0;
}

}  // namespace rw

namespace rw {

// The gateway's and the usage writer's metrics, appended to the core's /metrics text on
// whichever shard serves the scrape: relaxed loads and snprintf into the caller's arena.
uint32_t gateway_metrics_render(char* out, uint32_t capacity, const GatewayShared& shared,
                                uint32_t shard_count) {
    uint32_t used = 0;
    auto line = [&](const char* name, const char* type, const char* help, uint64_t value) {
        if (used >= capacity) {
            return;
        }
        const int written =
            std::snprintf(out + used, capacity - used, "# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name,
                          help, name, type, name, static_cast<unsigned long>(value));
        if (written > 0) {
            used += std::min(static_cast<uint32_t>(written), capacity - used);
        }
    };
    auto sum = [&](Counter GatewayMetrics::*field, bool is_acquire = false) {
        uint64_t total = 0;
        for (uint32_t i = 0; i < shard_count; i++) {
            if (shared.metrics[i] != nullptr) {
                const Counter& counter = shared.metrics[i]->*field;
                total += is_acquire ? counter.get_acquire() : counter.get();
            }
        }
        return total;
    };
    // Finished first (acquire, paired with request_finish's release): every request it
    // counts was counted as started, and its usage record and tokens, read below, are in
    // their counters. A gauge at 0 therefore means no record is still to come.
    const uint64_t finished = sum(&GatewayMetrics::requests_finished, true);
    const uint64_t started = sum(&GatewayMetrics::requests_started);
    line("ringway_requests_in_flight", "gauge",
         "Proxied requests taken and not yet finished (their usage record not yet queued).",
         started > finished ? started - finished : 0);
    line("ringway_upstream_requests_total", "counter", "Attempts sent to upstreams.",
         sum(&GatewayMetrics::upstream_requests));
    line("ringway_upstream_retries_total", "counter",
         "Attempts after the first (on another channel).", sum(&GatewayMetrics::upstream_retries));
    line("ringway_upstream_connects_total", "counter", "New upstream connections.",
         sum(&GatewayMetrics::upstream_connects));
    line("ringway_upstream_reused_total", "counter", "Attempts on a pooled upstream connection.",
         sum(&GatewayMetrics::upstream_reused));
    line("ringway_upstream_errors_total", "counter",
         "Failed attempts (connect, reset, protocol, refused).",
         sum(&GatewayMetrics::upstream_errors));
    line("ringway_upstream_timeouts_total", "counter", "Upstream deadlines hit.",
         sum(&GatewayMetrics::upstream_timeouts));
    line("ringway_streams_aborted_total", "counter", "Streams ended with the upstream_error event.",
         sum(&GatewayMetrics::streams_aborted));
    line("ringway_usage_records_total", "counter", "Usage records queued for the writer.",
         sum(&GatewayMetrics::records_pushed));
    line("ringway_auth_failures_total", "counter", "Requests refused for a missing or bad key.",
         sum(&GatewayMetrics::auth_failures));
    line("ringway_limited_total", "counter", "Requests refused by rpm, concurrency or quota.",
         sum(&GatewayMetrics::limited));
    line("ringway_overloaded_total", "counter", "Requests refused because the usage log was full.",
         sum(&GatewayMetrics::overloaded));
    line("ringway_tokens_prompt_total", "counter", "Prompt tokens charged.",
         sum(&GatewayMetrics::tokens_prompt));
    line("ringway_tokens_completion_total", "counter", "Completion tokens charged.",
         sum(&GatewayMetrics::tokens_completion));
    if (shared.writer != nullptr) {
        const WriterStats stats = shared.writer->stats();
        line("ringway_writer_rows_total", "counter", "Usage rows committed to SQLite.",
             stats.rows_written);
        line("ringway_writer_batches_total", "counter", "SQLite transactions committed.",
             stats.batches_committed);
        line("ringway_writer_commit_errors_total", "counter", "Failed commits (each retried).",
             stats.commit_errors);
        line("ringway_writer_batch_latency_us_max", "gauge", "Slowest batch commit.",
             stats.batch_latency_us_max);
        line("ringway_writer_stalled", "gauge", "1 while commits are failing.",
             stats.is_stalled ? 1 : 0);
        line("ringway_writer_batch_latency_us_last", "gauge", "Latest batch commit.",
             stats.last_batch_latency_us);
        line("ringway_writer_batch_latency_us_total", "counter",
             "Time spent committing batches (divide by batches for the mean).",
             stats.batch_latency_us_total);
        if (used < capacity) {
            const int written = std::snprintf(out + used, capacity - used,
                                              "# HELP ringway_writer_queue_depth Usage records "
                                              "waiting for the writer, per shard.\n"
                                              "# TYPE ringway_writer_queue_depth gauge\n");
            used += written > 0 ? std::min(static_cast<uint32_t>(written), capacity - used) : 0;
        }
        for (uint32_t i = 0; i < shared.writer->queue_count() && used < capacity; i++) {
            const int written = std::snprintf(
                out + used, capacity - used, "ringway_writer_queue_depth{shard=\"%u\"} %lu\n", i,
                static_cast<unsigned long>(shared.writer->queue(i).depth()));
            used += written > 0 ? std::min(static_cast<uint32_t>(written), capacity - used) : 0;
        }
    }
    return used;
}

}  // namespace rw
