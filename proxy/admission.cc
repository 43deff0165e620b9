// proxy/admission.cc — a request's checks before any upstream is contacted (see
// admission.h). Shard thread only; KeyLimits' atomics are shared by every shard.
#include "proxy/admission.h"

#include <cstdio>
#include <cstring>
#include <span>

#include "core/cidr.h"
#include "core/client.h"
#include "proxy/budget.h"
#include "proxy/gateway.h"
#include "proxy/request.h"
#include "proxy/resolver.h"
#include "proxy/stored_response.h"
#include "storage/keys.h"

namespace rw {
namespace {

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

// Holds a snapshot for the duration of admission: everything needed later is copied out
// before quiesce, since the snapshot may be retired while the request waits upstream.
class SnapshotHold {
public:
    SnapshotHold(SnapshotPublisher& publisher, uint32_t index)
        : publisher_(publisher), index_(index), snapshot_(publisher.acquire(index)) {}
    ~SnapshotHold() { publisher_.quiesce(index_); }
    SnapshotHold(const SnapshotHold&) = delete;
    SnapshotHold& operator=(const SnapshotHold&) = delete;
    const Snapshot* get() const { return snapshot_; }

private:
    SnapshotPublisher& publisher_;
    uint32_t index_;
    const Snapshot* snapshot_;
};

// X-Forwarded-For headers one request may carry; more is treated as garbage (the peer).
constexpr uint32_t forwarded_headers_max = 8;

// Whether the key may be used from the request's client address: any address when its
// allowed_cidrs is empty (no syscall, no header scan), else the TCP peer, or behind a
// trusted proxy (RINGWAY_TRUSTED_PROXIES) the X-Forwarded-For client, must lie in one of
// its blocks. A peer the kernel cannot name is refused. The peer is read once per
// connection (client_peer_address); nothing here allocates.
bool admission_address_allowed(const Gateway& gateway, ProxyRequest& request,
                               const ParsedRequest& http, const KeyEntry& key) {
    if (key.allowed_cidrs.empty()) {
        return true;
    }
    IpAddress peer;
    if (!client_peer_address(*request.conn, peer)) {
        return false;
    }
    const std::span<const Cidr> trusted = gateway.config.trusted_proxies;
    if (trusted.empty()) {
        return key.allows_address(peer);
    }
    std::string_view forwarded[forwarded_headers_max];
    uint32_t forwarded_count = 0;
    for (uint32_t index = 0; index < http.header_count; index++) {
        const std::string_view name = http.headers[index].name;
        if (name.size() != 15 || !starts_with_lower(name, "x-forwarded-for")) {
            continue;
        }
        if (forwarded_count == forwarded_headers_max) {
            return key.allows_address(peer);  // Too many to be a real chain.
        }
        forwarded[forwarded_count++] = http.headers[index].value;
    }
    RW_ASSERT(forwarded_count <= forwarded_headers_max);
    return key.allows_address(forwarded_client(peer, {forwarded, forwarded_count}, trusted));
}

Fault admission_key(Gateway& gateway, ProxyRequest& request, const ParsedRequest& http,
                    const Snapshot* snapshot, std::string_view secret, const KeyEntry*& key) {
    key = nullptr;
    if (snapshot != nullptr) {
        bool is_remembered = false;
        const KeyHash hash = gateway.key_hash_memo.hash(secret, is_remembered);
        key = snapshot->find_key(hash);
        if (key != nullptr && !is_remembered) {
            gateway.key_hash_memo.remember(secret, hash);
        }
    }
    const int64_t now_s = request.started_unix_ms / 1000;
    if (key == nullptr) {
        gateway.metrics.auth_failures.add();
        return Fault::client_invalid_api_key;  // The key itself is never echoed.
    }
    if (!key->is_active || (key->expires_at_s != 0 && key->expires_at_s <= now_s)) {
        gateway.metrics.auth_failures.add();
        return Fault::client_expired_api_key;
    }
    // Before the quota: a stranger elsewhere learns nothing of the key's state.
    if (!admission_address_allowed(gateway, request, http, *key)) {
        gateway.metrics.auth_failures.add();
        return Fault::client_ip_not_allowed;
    }
    request.key_id = key->id;
    request.quota_slot = key->quota_slot;
    if (key->has_quota_limit && key->period == BudgetPeriod::none &&
        gateway.shared.quotas->used_tokens(key->quota_slot) >= key->quota_limit_tokens) {
        gateway.metrics.limited.add();
        return Fault::client_quota_exceeded;
    }
    return budget_check_head(gateway, request, *key);
}

Fault admission_fields(ProxyRequest& request, const ParsedRequest& http) {
    if (request.upload != nullptr) {
        return Fault::none;  // The model came from its multipart part (upload.h); no JSON.
    }
    Arena& arena = client_arena(*request.conn);
    const RequestFieldsError error = request_fields_parse(arena, http.body, request.fields);
    if (error == RequestFieldsError::arena_exhausted) {
        return Fault::local_out_of_memory;
    }
    if (error != RequestFieldsError::none) {
        request.fault_code = request_fields_error_code(error);
        request.fault_message = request_fields_error_message(error);
        return Fault::client_invalid_body;
    }
    request.body = http.body;
    request.model_requested = request.fields.model;
    request.is_streaming = request.fields.is_streaming;
    return Fault::none;
}

// The key's rpm and concurrency, taken once at the head: the body's checks never count
// them again, and every exit gives them back when nothing was sent upstream (request_finish
// before an upstream is tried, request_abandon for a body that never completes), so a
// request refused for concurrency spends no rpm.
Fault admission_limits(Gateway& gateway, ProxyRequest& request, const KeyEntry& key) {
    RW_ASSERT(!request.holds_concurrency);
    if (const Fault fault = rate_limit_head(gateway, request, key); fault != Fault::none) {
        return fault;
    }
    if (!gateway.shared.key_limits->concurrency_try_take(key.quota_slot, key.concurrency_max)) {
        gateway.metrics.limited.add();
        rate_limit_release(gateway, request, false, 0);
        return Fault::client_concurrency_limited;
    }
    // Sharing with other hosts: their last-seen count counts too. Without Redis (any
    // RINGWAY_REDIS_FAILURE) each host keeps to its own count, which alone never exceeds max.
    RateShare* share = gateway.shared.rate_share;
    if (share != nullptr && key.concurrency_max != 0 && share->mode() == ShareMode::shared) {
        char name[rate_share_name_bytes];
        const uint32_t name_bytes = rate_share_name(key.hash, {}, name);
        if (!share->concurrency_allows(key.quota_slot,
                                       gateway.shared.key_limits->in_flight_now(key.quota_slot),
                                       key.concurrency_max, {name, name_bytes})) {
            gateway.shared.key_limits->concurrency_release(key.quota_slot);
            gateway.metrics.limited.add();
            rate_limit_release(gateway, request, false, 0);
            return Fault::client_concurrency_limited;
        }
    }
    request.holds_concurrency = true;
    return Fault::none;
}

// A key with a lifetime token quota reserves the request's bound now, shared by every shard
// through one atomic word (QuotaTable::try_reserve), so concurrent requests can never
// together spend more than the quota leaves; request_finish settles it to the real usage.
Fault admission_quota(Gateway& gateway, ProxyRequest& request, const KeyEntry& key) {
    if (!key.has_quota_limit || budget_tokens_in_word(gateway, key)) {
        return Fault::none;  // A quota over a period, or any with budget leases: budget.cc's.
    }
    const int64_t bound = budget_token_bound(gateway, request);
    if (!gateway.shared.quotas->try_reserve(key.quota_slot, bound, key.quota_limit_tokens)) {
        gateway.metrics.limited.add();
        return Fault::client_quota_too_small;
    }
    request.holds_quota = true;
    request.quota_reserved_tokens = bound;
    quota_reservation_open(gateway, bound);
    return Fault::none;
}

// A message naming the model (at most 100 bytes of it), in the request's arena.
std::string_view model_message(Arena& arena, const char* format, std::string_view model) {
    char message[256];
    const int length = std::snprintf(message, sizeof(message), format,
                                     int(model.size() > 100 ? 100 : model.size()), model.data());
    const char* copy = arena.copy({message, static_cast<size_t>(length > 0 ? length : 0)});
    return copy != nullptr ? std::string_view(copy, static_cast<size_t>(length)) : "";
}

// Routes one concrete model: its channels picked and resolved into request.candidates after
// those already there, within the attempts left (1 + RINGWAY_RETRIES in all). A half-open
// channel's trial is held only by the request's first candidate; a later one is given back.
// serving_count adds the channels serving the model, down ones included.
RouteResult admission_route_model(Gateway& gateway, ProxyRequest& request, std::string_view model,
                                  const Snapshot& snapshot, uint32_t& serving_count) {
    const uint32_t used = request.candidate_count;
    const uint32_t wanted = 1 + gateway.config.retries;
    RW_ASSERT(used < wanted && wanted <= attempts_max);
    const ChannelEntry* picked[attempts_max];
    RoutePicks picks =
        route_pick(snapshot.channels(), request.endpoint, model, *gateway.shared.health,
                   gateway.shard.now_ms(), gateway.random_state, {picked, wanted - used});
    serving_count += picks.serving_count;
    uint32_t skipped = 0;
    if (picks.trial_channel_id != 0 && used != 0) {
        gateway.shared.health->trial_abandoned(picks.trial_channel_id);  // picked[0].
        picks.trial_channel_id = 0;
        skipped = 1;
    }
    const AddressBook* book =
        gateway.shared.resolver != nullptr ? gateway.shared.resolver->current() : nullptr;
    const RouteResult route = route_candidates(
        client_arena(*request.conn), {picked + skipped, picks.count - skipped},
        picks.count - skipped, book, model, {request.candidates + used, wanted - used});
    if (used == 0) {
        request.trial_channel_id = picks.trial_channel_id;  // request_finish settles it if unused.
        if (picks.trial_channel_id != 0 &&
            (route.candidate_count == 0 ||
             request.candidates[0].channel_id != picks.trial_channel_id)) {
            gateway.shared.health->trial_abandoned(picks.trial_channel_id);  // Not resolved yet.
            request.trial_channel_id = 0;
        }
    }
    request.candidate_count = static_cast<uint8_t>(used + route.candidate_count);
    return route;
}

// The request's candidates: the asked model's channels, or for an alias each of its models'
// channels in the alias's order (the models the key may use), so the attempt loop falls back
// across models as it does across channels, within the same retry budget.
Fault admission_route(Gateway& gateway, ProxyRequest& request, const Snapshot& snapshot,
                      const KeyEntry& key) {
    request.candidate_count = 0;
    request.trial_channel_id = 0;
    uint32_t serving_count = 0;
    Fault fault = Fault::client_model_not_found;
    const AliasEntry* alias = snapshot.find_alias(request.model_requested);
    if (alias == nullptr) {
        fault = admission_route_model(gateway, request, request.model_requested, snapshot,
                                      serving_count)
                    .fault;
    } else {
        for (const std::string& model : alias->models) {
            if (request.candidate_count == 1 + gateway.config.retries) {
                break;  // The retry budget is spent on the models before.
            }
            if (!key.allows_model(model)) {
                continue;
            }
            const RouteResult route =
                admission_route_model(gateway, request, model, snapshot, serving_count);
            if (route.fault == Fault::local_out_of_memory) {
                return route.fault;
            }
        }
        fault = request.candidate_count > 0 ? Fault::none
                : serving_count > 0         ? Fault::local_no_channel
                                            : Fault::client_model_not_found;
    }
    if (request.candidate_count == 0 && serving_count > 0 && fault != Fault::local_out_of_memory) {
        fault = Fault::local_no_channel;  // Served, but every channel is down or unresolved.
    }
    Arena& arena = client_arena(*request.conn);
    if (fault == Fault::client_model_not_found) {
        request.fault_message =
            model_message(arena, "The model `%.*s` does not exist or you do not have access to it.",
                          request.model_requested);
    } else if (fault == Fault::local_no_channel) {
        request.fault_message =
            model_message(arena, "No upstream channel for model `%.*s` is reachable right now.",
                          request.model_requested);
    }
    if (fault == Fault::client_model_not_found && request.endpoint == Endpoint::count_tokens) {
        // No anthropic channel has the model; if another serves it, count locally.
        for (const ChannelEntry& channel : snapshot.channels()) {
            if (channel_serves(channel, Endpoint::chat, request.model_requested)) {
                request.is_counted_locally = true;
                request.fault_message = {};
                return Fault::none;
            }
        }
    }
    return fault;
}

// Whether the key may use the asked model: a concrete name by its allow-list, an alias when
// the list allows at least one of its models (only those are routed). An alias's own name
// in an allow-list allows nothing by itself.
bool admission_model_allowed(const KeyEntry& key, const Snapshot& snapshot,
                             std::string_view model) {
    const AliasEntry* alias = snapshot.find_alias(model);
    if (alias == nullptr) {
        return key.allows_model(model);
    }
    for (const std::string& member : alias->models) {
        if (key.allows_model(member)) {
            return true;
        }
    }
    return false;
}

}  // namespace

namespace {

// Equality of two byte strings of one length in time that depends on the length only: every
// word is compared, with no branch on the bytes (CRYPTO_memcmp's byte loop, out of line,
// cost about 350 instructions for a 51-byte secret).
bool equal_in_constant_time(const char* a, const char* b, size_t length) {
    uint64_t difference = 0;
    size_t index = 0;
    for (; index + 8 <= length; index += 8) {
        uint64_t word_a = 0;
        uint64_t word_b = 0;
        std::memcpy(&word_a, a + index, 8);
        std::memcpy(&word_b, b + index, 8);
        difference |= word_a ^ word_b;
    }
    for (; index < length; index++) {
        difference |= uint8_t(a[index] ^ b[index]);
    }
    return difference == 0;
}

}  // namespace

uint32_t KeyHashMemo::index_of(std::string_view secret) {
    RW_ASSERT(secret.size() >= 8);
    uint64_t tail = 0;
    std::memcpy(&tail, secret.data() + secret.size() - 8, 8);
    // Fibonacci hashing of the tail (a generated secret's last bytes are random).
    return uint32_t(((tail ^ secret.size()) * 0x9E3779B97F4A7C15ull) >> 58);
}
static_assert(KeyHashMemo::entries_count == 64);  // index_of keeps the top 6 bits.

KeyHash KeyHashMemo::hash(std::string_view secret, bool& is_remembered) const {
    is_remembered = false;
    if (secret.size() >= 8 && secret.size() <= secret_bytes_max) {
        const Entry& entry = entries_[index_of(secret)];
        if (entry.secret_bytes == secret.size() &&
            equal_in_constant_time(entry.secret, secret.data(), secret.size())) {
            is_remembered = true;
            return entry.hash;
        }
    }
    return key_hash(secret);
}

void KeyHashMemo::remember(std::string_view secret, const KeyHash& hash) {
    if (secret.size() < 8 || secret.size() > secret_bytes_max) {
        return;
    }
    Entry& entry = entries_[index_of(secret)];
    std::memcpy(entry.secret, secret.data(), secret.size());
    entry.secret_bytes = uint32_t(secret.size());
    entry.hash = hash;
}

KeyLimits::KeyLimits(uint32_t slot_count) : in_flight_(slot_count), slot_count_(slot_count) {}

bool KeyLimits::concurrency_try_take(uint32_t slot, uint32_t max) {
    RW_ASSERT(slot < slot_count_);
    const uint32_t before = in_flight(slot).fetch_add(1, std::memory_order_relaxed);
    if (max != 0 && before >= max) {
        in_flight(slot).fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void KeyLimits::concurrency_release(uint32_t slot) {
    RW_ASSERT(slot < slot_count_);
    const uint32_t before = in_flight(slot).fetch_sub(1, std::memory_order_relaxed);
    RW_ASSERT(before > 0);  // Paired with a successful take.
}

Fault admission_credentials(const ParsedRequest& http, std::string_view& secret) {
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
        return Fault::client_conflicting_api_keys;
    }
    secret = !bearer.empty() ? bearer : api_key_header;
    return secret.empty() ? Fault::client_missing_api_key : Fault::none;
}

namespace {

// A request that may never be recorded is not served: commits failing for longer than
// RINGWAY_WRITER_STALL_MS would otherwise let the queue (and what a SIGKILL loses) grow to
// its full size. The usage record's queue slot is taken now, so the record can never be
// dropped later: no room means the writer is behind.
Fault admission_queue_slot(Gateway& gateway, ProxyRequest& request) {
    if (gateway.shared.writer->is_refusing(gateway.shard.now_ms())) {
        gateway.metrics.overloaded.add();
        return Fault::local_log_stalled;
    }
    if (!gateway.shared.writer->queue(gateway.shard.index()).try_reserve()) {
        gateway.metrics.overloaded.add();
        return Fault::local_log_full;
    }
    request.has_queue_reservation = true;
    return Fault::none;
}

// After routing: the budget's reservation, then a usage queue slot. A request waiting for a
// budget lease (request.is_lease_waiting) stops before the slot.
Fault admission_reserve(Gateway& gateway, ProxyRequest& request, const KeyEntry& key,
                        const Snapshot& snapshot, const ParsedRequest& http) {
    Fault fault = budget_reserve(gateway, request, key, snapshot);
    if (fault != Fault::none) {
        if (fault == Fault::client_model_price_missing) {
            request.fault_message =
                model_message(client_arena(*request.conn),
                              "The model `%.*s` has no price, and this API key has a money budget.",
                              request.model_requested);
        }
        return fault;
    }
    if (request.is_lease_waiting) {
        return Fault::none;
    }
    if ((fault = admission_queue_slot(gateway, request)) != Fault::none) {
        return fault;
    }
    const std::string_view version = http.find_header("anthropic-version");
    request.anthropic_version = version.empty() ? std::string_view("2023-06-01") : version;
    return Fault::none;
}

// From a strict key's output limit on: that limit, the lifetime token quota, tpm and the
// budget's reservation. With budget leases the strict limit may wait for a lease first
// (request.is_strict_waiting): admission_lease_retry starts here again then.
Fault admission_limited(Gateway& gateway, ProxyRequest& request, const KeyEntry& key,
                        const Snapshot& snapshot, const ParsedRequest& http) {
    Fault fault = budget_strict_limit(gateway, request, key, snapshot);
    if (fault != Fault::none || request.is_lease_waiting) {
        return fault;
    }
    if ((fault = admission_quota(gateway, request, key)) != Fault::none ||
        (fault = rate_limit_body(gateway, request, key, budget_token_bound(gateway, request))) !=
            Fault::none) {
        return fault;  // request_finish gives back what was taken (nothing was sent).
    }
    return admission_reserve(gateway, request, key, snapshot, http);
}

}  // namespace

Fault admission_head(Gateway& gateway, ProxyRequest& request, const ParsedRequest& http,
                     bool is_models) {
    std::string_view secret;
    if (const Fault fault = admission_credentials(http, secret); fault != Fault::none) {
        gateway.metrics.auth_failures.add();
        return fault;
    }
    const SnapshotHold hold(*gateway.shared.snapshots, gateway.shard.index());
    const KeyEntry* key = nullptr;
    const Fault fault = admission_key(gateway, request, http, hold.get(), secret, key);
    if (fault != Fault::none || is_models) {
        return fault;  // Listing models needs only a valid key.
    }
    return admission_limits(gateway, request, *key);
}

namespace {

// The key again once the body is in: the head's snapshot may have been retired meanwhile,
// so the key is found again by id, and a key revoked (or its allowed_cidrs changed) while
// its body was uploading is refused now.
Fault admission_key_again(Gateway& gateway, ProxyRequest& request, const ParsedRequest& http,
                          const Snapshot* snapshot, const KeyEntry*& key) {
    key = snapshot != nullptr ? snapshot->find_key_by_id(request.key_id) : nullptr;
    if (key == nullptr || !key->is_active ||
        (key->expires_at_s != 0 && key->expires_at_s <= request.started_unix_ms / 1000)) {
        gateway.metrics.auth_failures.add();
        return Fault::client_expired_api_key;
    }
    if (!admission_address_allowed(gateway, request, http, *key)) {
        gateway.metrics.auth_failures.add();
        return Fault::client_ip_not_allowed;
    }
    return Fault::none;
}

}  // namespace

Fault admission_body(Gateway& gateway, ProxyRequest& request, const ParsedRequest& http) {
    RW_ASSERT(request.key_id != 0);  // admission_head found the key.
    const SnapshotHold hold(*gateway.shared.snapshots, gateway.shard.index());
    const KeyEntry* key = nullptr;
    Fault fault = admission_key_again(gateway, request, http, hold.get(), key);
    if (fault != Fault::none) {
        return fault;
    }
    fault = admission_fields(request, http);
    if (fault != Fault::none) {
        return fault;
    }
    if (!admission_model_allowed(*key, *hold.get(), request.model_requested)) {
        return Fault::client_model_not_allowed;
    }
    if ((fault = admission_route(gateway, request, *hold.get(), *key)) != Fault::none) {
        return fault;
    }
    stored_response_pin(gateway, request);
    return admission_limited(gateway, request, *key, *hold.get(), http);
}

Fault admission_lease_retry(Gateway& gateway, ProxyRequest& request) {
    const SnapshotHold hold(*gateway.shared.snapshots, gateway.shard.index());
    const KeyEntry* key =
        hold.get() != nullptr ? hold.get()->find_key_by_id(request.key_id) : nullptr;
    if (key == nullptr || !key->is_active) {
        gateway.metrics.auth_failures.add();
        return Fault::client_expired_api_key;
    }
    const ParsedRequest& http = client_request(*request.conn);
    return request.is_strict_waiting ? admission_limited(gateway, request, *key, *hold.get(), http)
                                     : admission_reserve(gateway, request, *key, *hold.get(), http);
}

Fault admission_stored(Gateway& gateway, ProxyRequest& request, const ParsedRequest& http,
                       int64_t channel_id) {
    RW_ASSERT(request.key_id != 0);  // admission_head found the key.
    const SnapshotHold hold(*gateway.shared.snapshots, gateway.shard.index());
    const KeyEntry* key = nullptr;
    Fault fault = admission_key_again(gateway, request, http, hold.get(), key);
    if (fault != Fault::none) {
        return fault;
    }
    // The one channel that holds the response, whatever its health: no other has it.
    const ChannelEntry* picked[1] = {nullptr};
    for (const ChannelEntry& channel : hold.get()->channels()) {
        if (channel.id == channel_id && channel.is_enabled && channel.kind == ChannelKind::openai) {
            picked[0] = &channel;
        }
    }
    request.candidate_count = 0;
    request.trial_channel_id = 0;
    if (picked[0] == nullptr) {
        request.fault_message = "The channel that holds this response is not available.";
        return Fault::local_no_channel;
    }
    const AddressBook* book =
        gateway.shared.resolver != nullptr ? gateway.shared.resolver->current() : nullptr;
    const RouteResult route = route_candidates(client_arena(*request.conn), {picked, 1}, 1, book,
                                               {}, {request.candidates, 1});
    if (route.fault != Fault::none) {
        return route.fault;
    }
    request.candidate_count = 1;
    return admission_queue_slot(gateway, request);
}

}  // namespace rw
