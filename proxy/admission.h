// proxy/admission.h — what a request must pass before any upstream is contacted, in order.
// At its head: credentials (Bearer or x-api-key), the key (known, active, not expired),
// the client address in the key's allowed_cidrs, its token quota, its rpm and concurrency
// limits. Once its body is in: the body's
// model/stream fields, the model allowed to the key, channel candidates (route.h) and a
// slot in the usage queue. Every refusal is a Fault answered at once with no usage record
// (nothing was spent): at the head by request_refuse_head, after it by request_finish.
// Shard thread only, except KeyLimits, which every shard shares.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "arena/zero_pages.h"
#include "core/http_parse.h"
#include "proxy/fault.h"
#include "storage/snapshot.h"

namespace rw {

struct Gateway;
struct ProxyRequest;

// Per-key counters every shard shares: requests in flight (concurrency). Indexed by
// KeyEntry::quota_slot, like QuotaTable. Requests and tokens per minute: rate_limit.h.
class KeyLimits {
public:
    explicit KeyLimits(uint32_t slot_count);
    // True and counted when below max (0 = unlimited); undo with concurrency_release.
    [[nodiscard]] bool concurrency_try_take(uint32_t slot, uint32_t max);
    void concurrency_release(uint32_t slot);
    // Requests of the slot's key in flight now, on every shard of this host.
    [[nodiscard]] uint32_t in_flight_now(uint32_t slot) const {
        return in_flight(slot).load(std::memory_order_relaxed);
    }

private:
    [[nodiscard]] std::atomic_ref<uint32_t> in_flight(uint32_t slot) const {
        return std::atomic_ref<uint32_t>(in_flight_[slot]);
    }
    ZeroPages<uint32_t> in_flight_;  // Resident only for the pages of slots in use.
    uint32_t slot_count_;
};

// The SHA-256 of the secrets of keys this shard found lately, so a client presenting the
// same secret again (every request of a keep-alive connection) is not hashed again. A
// secret's hash never changes: the memo maps bytes to their hash, never to a key, and the
// key is looked up in the current snapshot on every request, so a revoked or expired key
// is refused at its next request as before. Direct-mapped on the secret's last 8 bytes; the
// presented bytes are compared whole in constant time. Only secrets of keys that were
// found are remembered (strangers' guesses evict nothing); a secret shorter than 8 or
// longer than secret_bytes_max bytes is hashed every time. Shard thread only.
class KeyHashMemo {
public:
    static constexpr uint32_t secret_bytes_max = 96;
    static constexpr uint32_t entries_count = 64;

    // The secret's hash: remembered, or computed (key_hash) and returned unremembered.
    [[nodiscard]] KeyHash hash(std::string_view secret, bool& is_remembered) const;
    // Remembers a secret whose key was found (replacing what shared its entry).
    void remember(std::string_view secret, const KeyHash& hash);

private:
    struct Entry {
        uint32_t secret_bytes = 0;  // 0: empty.
        char secret[secret_bytes_max];
        KeyHash hash;
    };
    [[nodiscard]] static uint32_t index_of(std::string_view secret);
    Entry entries_[entries_count] = {};
};

// The secret a request presents: Authorization: Bearer (OpenAI) or x-api-key (Anthropic
// clients). Both present and different is refused rather than guessed (RULES security
// §1). Fault::none with `secret` set, or the refusal.
[[nodiscard]] Fault admission_credentials(const ParsedRequest& http, std::string_view& secret);

// At the head (before any body byte is stored): credentials, the key (known, active, not
// expired), the client address (the TCP peer, or the X-Forwarded-For client behind a
// trusted proxy) in the key's allowed_cidrs, its token quota, then rpm and concurrency
// (held on Fault::none): a refused stranger spends none of them. For GET /v1/models only
// the key (and its address) is checked.
[[nodiscard]] Fault admission_head(Gateway& gateway, ProxyRequest& request,
                                   const ParsedRequest& http, bool is_models);

// Once the body is in: the key again (revoked or its addresses changed meanwhile?), the
// body's fields, the model allowed to the key, channel candidates and a usage queue slot.
// Fault::none when the request may go upstream (or waits for a budget lease:
// request.is_lease_waiting). rpm and concurrency are not counted again.
[[nodiscard]] Fault admission_body(Gateway& gateway, ProxyRequest& request,
                                   const ParsedRequest& http);

// A stored-response request (stored_response.h) once its body is in: the key again (and
// its address), the channel that holds the response as the one candidate (enabled, of kind
// openai: 503 no_channel_available otherwise), and a usage queue slot. No model, route,
// quota or budget check: the request costs no tokens.
[[nodiscard]] Fault admission_stored(Gateway& gateway, ProxyRequest& request,
                                     const ParsedRequest& http, int64_t channel_id);

// With budget leases (PostgreSQL): admission_body may end with request.is_lease_waiting
// (Fault::none, nothing of the budget held): the request waits in the gateway's lease wait
// list and this finishes its admission once the lease thread answered or the wait ended
// (from a strict key's output limit on when that limit was what waited).
[[nodiscard]] Fault admission_lease_retry(Gateway& gateway, ProxyRequest& request);

}  // namespace rw
