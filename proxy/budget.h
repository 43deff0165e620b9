// proxy/budget.h — a key's money budget and its per-period token quota on the request
// path: checked at the head (nothing left in the period: 429 insufficient_quota with
// Retry-After at the next period's start), reserved once the route is known (an upper
// bound of what the request can cost, by cost.h, over every candidate channel), and
// settled to the row's real cost and tokens on every exit (request_finish). A lifetime
// token quota is QuotaTable's (admission.cc) on SQLite and a lease's here with budget
// leases (PostgreSQL, storage/budget_lease.h); this file handles the BudgetTable words
// (storage/budget.h), which every shard shares without a lock. Shard thread only.
#pragma once

#include <cstdint>

#include "proxy/fault.h"

namespace rw {

struct Gateway;
struct ProxyRequest;
struct KeyEntry;
class Snapshot;

// The most tokens the request can be charged: its body's bytes (a token is at least one
// byte of text) plus its output limit (RINGWAY_DEFAULT_OUTPUT_RESERVE when it sets none)
// for each of its n choices; embeddings produce no output.
[[nodiscard]] int64_t budget_token_bound(const Gateway& gateway, const ProxyRequest& request);

// True when the key's tokens are counted in its BudgetTable tokens word: a key with a
// period, or any key with budget leases (there a lifetime quota is leased like the rest).
// Otherwise (a lifetime quota on SQLite) QuotaTable counts them (admission.cc).
[[nodiscard]] bool budget_tokens_in_word(const Gateway& gateway, const KeyEntry& key);

// At the head: is anything left of the key's budget and per-period quota in the current
// period? Fault::none, or 429 with request.retry_after_s set when the period ends.
[[nodiscard]] Fault budget_check_head(Gateway& gateway, ProxyRequest& request, const KeyEntry& key);

// After routing, for a strict key's request that sets no output limit (and is not an
// embeddings or locally counted one): the largest output, per choice, that the key's
// remaining token quota and money budget afford once the body's bytes are bounded, capped
// by RINGWAY_DEFAULT_OUTPUT_RESERVE, becomes the request's output limit
// (request.output_limit_injected; upstream_request_build writes it into the body). Less
// than RINGWAY_STRICT_OUTPUT_MIN: 429 insufficient_quota, as a reservation that does not
// fit. A candidate without a price is left to budget_reserve (403). Other keys and
// requests: untouched, nothing read. With budget leases what remains is what this host
// may still spend (its lease's ceiling less its own use): when that affords less than the
// key's limit would, the request first waits for a grant (request.is_lease_waiting and
// is_strict_waiting; admission_lease_retry calls this again, which replaces the limit).
[[nodiscard]] Fault budget_strict_limit(Gateway& gateway, ProxyRequest& request,
                                        const KeyEntry& key, const Snapshot& snapshot);

// After routing: reserves the request's bound in the key's per-period words. A key with a
// money budget refuses a model that any candidate channel has no price for (403
// model_price_missing). Fault::none with the reservations held.
[[nodiscard]] Fault budget_reserve(Gateway& gateway, ProxyRequest& request, const KeyEntry& key,
                                   const Snapshot& snapshot);

// On every exit: the reservations are replaced by what the row charged (0 and 0 when no
// upstream was reached); a key without a budget is charged too, so its words stay exact
// if it gets one. Charges beyond the bound are counted (ringway_budget_overshoot_*).
void budget_settle(Gateway& gateway, ProxyRequest& request, int64_t charged_tokens,
                   int64_t charged_nano);

}  // namespace rw
