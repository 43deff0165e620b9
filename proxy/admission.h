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

// With budget leases (PostgreSQL): admission_body may end with request.is_lease_waiting
// (Fault::none, nothing of the budget held): the request waits in the gateway's lease wait
// list and this finishes its admission once the lease thread answered or the wait ended.
[[nodiscard]] Fault admission_lease_retry(Gateway& gateway, ProxyRequest& request);

}  // namespace rw
