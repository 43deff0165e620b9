// proxy/budget.cc — money budgets and token quotas (per period; lifetime ones too with budget
// leases) on the request path (see budget.h). The words are BudgetTable's (storage/budget.h): one
// compare-and-swap to reserve, one to settle, shared by every shard; the period's tag rides in the
// same word.
#include "proxy/budget.h"

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "proxy/cost.h"
#include "proxy/gateway.h"
#include "proxy/request.h"
#include "storage/budget_lease.h"
#include "storage/snapshot.h"

namespace rw {
namespace {

// Seconds from the request's start to its key's next period (0 for a lifetime budget).
uint32_t seconds_to_next_period(const KeyEntry& key, int64_t now_s) {
    const int64_t next_s = budget_period_next_start_s(key.period, now_s);
    return next_s > now_s ? static_cast<uint32_t>(std::min<int64_t>(next_s - now_s, UINT32_MAX))
                          : 0;
}

Fault budget_refuse(Gateway& gateway, ProxyRequest& request, const KeyEntry& key, Fault fault) {
    gateway.metrics.limited.add();
    request.retry_after_s = seconds_to_next_period(key, request.started_unix_ms / 1000);
    return fault;
}

// The most the request can cost with `output_max` output tokens in all (over its choices)
// under any candidate's price; false when one of them has none.
bool money_bound(const ProxyRequest& request, const Snapshot& snapshot, uint64_t output_max,
                 int64_t& bound_nano) {
    bound_nano = 0;
    for (uint32_t index = 0; index < request.candidate_count; index++) {
        const Candidate& candidate = request.candidates[index];
        int64_t bound = 0;
        int64_t price_id = 0;
        if (!cost_reservation_bound(snapshot, candidate.model_sent, candidate.channel_id,
                                    request.started_unix_ms, request.body.size(), output_max, bound,
                                    price_id)) {
            return false;
        }
        bound_nano = std::max(bound_nano, bound);
    }
    return true;
}

// The request's reservation: its money bound with its output limit (budget_token_bound).
bool budget_money_bound(const Gateway& gateway, const ProxyRequest& request,
                        const Snapshot& snapshot, int64_t& bound_nano) {
    const uint64_t output_max =
        static_cast<uint64_t>(budget_token_bound(gateway, request)) - request.body.size();
    return money_bound(request, snapshot, output_max, bound_nano);
}

// The money bound with `per_choice` output tokens for each choice.
bool strict_money_bound(const ProxyRequest& request, const Snapshot& snapshot, uint64_t per_choice,
                        int64_t& bound_nano) {
    return money_bound(request, snapshot, per_choice * request.fields.choices_count, bound_nano);
}

// The largest output per choice, at most `most`, whose money bound (over every
// candidate's price) fits in `left_nano`; false when a candidate has no price. The bound
// grows with the output, so a binary search finds it exactly (rounding included).
bool strict_money_output(const ProxyRequest& request, const Snapshot& snapshot, int64_t left_nano,
                         uint64_t most, uint64_t& output) {
    output = 0;
    int64_t bound = 0;
    if (!strict_money_bound(request, snapshot, 0, bound)) {
        return false;
    }
    if (bound > left_nano) {
        return true;
    }
    uint64_t low = 0;          // Fits.
    uint64_t high = most + 1;  // Does not fit (or is past the cap).
    while (high - low > 1) {
        const uint64_t middle = low + (high - low) / 2;
        if (!strict_money_bound(request, snapshot, middle, bound)) {
            return false;
        }
        (bound <= left_nano ? low : high) = middle;
    }
    output = low;
    return true;
}

// What a strict limit may still spend in the key's period: its limits less its use, or
// with budget leases (`leases` set) the lease's ceilings when lower: what this host may
// still spend (0 without a live lease).
struct StrictRoom {
    int64_t tokens;
    int64_t nano;
};

StrictRoom strict_room(const Gateway& gateway, const KeyEntry& key, int64_t index,
                       const BudgetLeases* leases, uint64_t now_ms) {
    const BudgetTable& budgets = *gateway.shared.budgets;
    const uint32_t slot = key.quota_slot;
    const uint32_t tag = BudgetTable::tag_of(index);
    int64_t limit_tokens = key.quota_limit_tokens;
    int64_t limit_nano = key.budget_limit_nano(index);
    if (leases != nullptr) {
        limit_tokens =
            std::min(limit_tokens, leases->ceiling(slot, BudgetTable::tokens, index, now_ms));
        limit_nano = std::min(limit_nano, leases->ceiling(slot, BudgetTable::nano, index, now_ms));
    }
    const int64_t used_tokens = budget_tokens_in_word(gateway, key)
                                    ? budgets.used(slot, BudgetTable::tokens, tag)
                                    : gateway.shared.quotas->used_tokens(slot);
    return {limit_tokens - used_tokens, limit_nano - budgets.used(slot, BudgetTable::nano, tag)};
}

// The largest output per choice, at most RINGWAY_DEFAULT_OUTPUT_RESERVE, that `room`
// affords once the body's bytes are bounded; `refusal` names the limit that cut it (none:
// uncut). False when a candidate has no price (budget_reserve answers 403).
bool strict_output(const Gateway& gateway, const ProxyRequest& request, const KeyEntry& key,
                   const Snapshot& snapshot, StrictRoom room, uint64_t& output, Fault& refusal) {
    const auto prompt_max = static_cast<int64_t>(request.body.size());
    const uint64_t choices = std::max<uint64_t>(request.fields.choices_count, 1);
    output = gateway.config.default_output_reserve;
    refusal = Fault::none;
    if (key.has_quota_limit) {
        const int64_t left = room.tokens - prompt_max;
        const uint64_t afford = left > 0 ? static_cast<uint64_t>(left) / choices : 0;
        if (afford < output) {
            output = afford;
            refusal = Fault::client_quota_too_small;
        }
    }
    if (key.has_budget) {
        uint64_t afford = 0;
        if (!strict_money_output(request, snapshot, room.nano, output, afford)) {
            return false;
        }
        if (afford < output) {
            output = afford;
            refusal = Fault::client_budget_too_small;
        }
    }
    return true;
}

// With budget leases (PostgreSQL): adds `amount` to the word only within what this host's
// lease holds. After the compare-and-swap the ceiling is read again (both sides fenced): an
// idle key's lease given back meanwhile (budget_lease.cc return_one) takes it back here.
bool lease_try_add(BudgetLeases& leases, BudgetTable& budgets, uint32_t slot,
                   BudgetTable::Word word, int64_t index, int64_t amount, int64_t limit,
                   uint64_t now_ms, uint32_t& counted) {
    const uint32_t tag = BudgetTable::tag_of(index);
    const int64_t ceiling = std::min(limit, leases.ceiling(slot, word, index, now_ms));
    if (!budgets.try_add(slot, word, tag, amount, ceiling, counted)) {
        return false;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (counted == tag &&
        budgets.used(slot, word, tag) <= leases.ceiling(slot, word, index, now_ms)) {
        return true;
    }
    budgets.settle(slot, word, counted, amount, 0);
    return false;
}

// A reservation that did not fit this host's lease: the lease thread is asked for more and
// the request waits for its answer (request.is_lease_waiting: the gateway's lease wait
// list), at most RINGWAY_BUDGET_LEASE_WAIT_MS from its first wait. False: refuse as today
// (waited long enough, a grant just found nothing free, or an upload, which cannot wait:
// its grant serves the next request).
bool lease_wait(Gateway& gateway, ProxyRequest& request, const KeyEntry& key, int64_t index,
                int64_t need_nano, int64_t need_tokens) {
    BudgetLeases& leases = *gateway.shared.leases;
    const uint64_t now_ms = gateway.shard.now_ms();
    // In use: a slot never touched counts as idle, and its grant would go straight back.
    leases.touch(key.quota_slot, now_ms);
    if (leases.is_exhausted(key.quota_slot, now_ms) ||
        (request.lease_deadline_ms != 0 && now_ms >= request.lease_deadline_ms)) {
        return false;
    }
    if (request.upload != nullptr) {
        // A multipart upload's body is still streaming and cannot wait here: it is refused,
        // and the grant it asks for serves the next request.
        leases.want(key.quota_slot, key.id, static_cast<uint8_t>(key.period), index, need_nano,
                    need_tokens);
        return false;
    }
    if (request.lease_deadline_ms == 0) {
        request.lease_deadline_ms = now_ms + leases.settings().wait_ms;
    }
    request.lease_generation = leases.generation();
    leases.want(key.quota_slot, key.id, static_cast<uint8_t>(key.period), index, need_nano,
                need_tokens);
    request.is_lease_waiting = true;
    gateway.metrics.budget_lease_waits.add();
    return true;
}

// With budget leases: a strict limit that this host's lease (`output_host`) cuts below what
// the key's own limits would afford first asks for a grant of that uncut request's bound
// and waits for it, as budget_reserve does. False: no wait (SQLite, nothing a grant could
// add, a grant just found nothing free, or the wait is over): the limit is what the host
// may spend.
bool strict_lease_wait(Gateway& gateway, ProxyRequest& request, const KeyEntry& key,
                       const Snapshot& snapshot, int64_t index, uint64_t output_host) {
    if (gateway.shared.leases == nullptr || output_host >= gateway.config.default_output_reserve) {
        return false;
    }
    uint64_t output_key = 0;
    Fault refusal = Fault::none;
    if (!strict_output(gateway, request, key, snapshot,
                       strict_room(gateway, key, index, nullptr, 0), output_key, refusal) ||
        output_key <= output_host) {
        return false;
    }
    const uint64_t choices = std::max<uint64_t>(request.fields.choices_count, 1);
    const int64_t need_tokens =
        key.has_quota_limit && budget_tokens_in_word(gateway, key)
            ? static_cast<int64_t>(request.body.size() + output_key * choices)
            : 0;
    int64_t need_nano = 0;
    if (key.has_budget && !strict_money_bound(request, snapshot, output_key, need_nano)) {
        return false;
    }
    request.is_strict_waiting = lease_wait(gateway, request, key, index, need_nano, need_tokens);
    return request.is_strict_waiting;
}

}  // namespace

bool budget_tokens_in_word(const Gateway& gateway, const KeyEntry& key) {
    return key.period != BudgetPeriod::none || gateway.shared.leases != nullptr;
}

Fault budget_strict_limit(Gateway& gateway, ProxyRequest& request, const KeyEntry& key,
                          const Snapshot& snapshot) {
    RequestFields& fields = request.fields;
    request.is_lease_waiting = false;
    request.is_strict_waiting = false;
    if (!key.is_strict || fields.has_output_limit || request.endpoint == Endpoint::embeddings ||
        request.endpoint == Endpoint::count_tokens || request.is_counted_locally ||
        request.candidate_count == 0) {
        return Fault::none;
    }
    RW_ASSERT(request.output_limit_injected == 0);
    const int64_t index = budget_period_index(key.period, request.started_unix_ms / 1000);
    const StrictRoom room =
        strict_room(gateway, key, index, gateway.shared.leases, gateway.shard.now_ms());
    uint64_t output = 0;
    Fault refusal = Fault::none;
    if (!strict_output(gateway, request, key, snapshot, room, output, refusal)) {
        return Fault::none;  // Unpriced: budget_reserve answers 403 model_price_missing.
    }
    if (strict_lease_wait(gateway, request, key, snapshot, index, output)) {
        return Fault::none;  // admission_lease_retry comes back here.
    }
    if (output < gateway.config.strict_output_min) {
        return budget_refuse(gateway, request, key,
                             refusal != Fault::none ? refusal : Fault::client_budget_too_small);
    }
    fields.has_output_limit = true;
    fields.output_tokens_max = output;
    request.output_limit_injected = static_cast<uint32_t>(output);
    return Fault::none;
}

int64_t budget_token_bound(const Gateway& gateway, const ProxyRequest& request) {
    const RequestFields& fields = request.fields;
    const uint64_t output_max = !endpoint_info(request.endpoint).has_output ? 0
                                : fields.has_output_limit ? fields.output_tokens_max
                                                          : gateway.config.default_output_reserve;
    const uint64_t bound = request.body.size() + output_max * fields.choices_count;
    return bound > uint64_t(INT64_MAX / 2) ? INT64_MAX / 2 : static_cast<int64_t>(bound);
}

Fault budget_check_head(Gateway& gateway, ProxyRequest& request, const KeyEntry& key) {
    const int64_t index = budget_period_index(key.period, request.started_unix_ms / 1000);
    const uint32_t tag = BudgetTable::tag_of(index);
    request.budget_period_tag = static_cast<uint16_t>(tag);
    request.has_tokens_word = budget_tokens_in_word(gateway, key);
    const BudgetTable& budgets = *gateway.shared.budgets;
    if (key.has_budget &&
        budgets.used(key.quota_slot, BudgetTable::nano, tag) >= key.budget_limit_nano(index)) {
        return budget_refuse(gateway, request, key, Fault::client_budget_exceeded);
    }
    if (key.has_quota_limit && request.has_tokens_word &&
        budgets.used(key.quota_slot, BudgetTable::tokens, tag) >= key.quota_limit_tokens) {
        return budget_refuse(gateway, request, key, Fault::client_quota_exceeded);
    }
    return Fault::none;
}

Fault budget_reserve(Gateway& gateway, ProxyRequest& request, const KeyEntry& key,
                     const Snapshot& snapshot) {
    RW_ASSERT(!request.holds_budget_nano && !request.holds_budget_tokens);
    request.is_lease_waiting = false;
    if (request.is_counted_locally || request.candidate_count == 0) {
        return Fault::none;  // No upstream will be reached: nothing can be spent.
    }
    BudgetTable& budgets = *gateway.shared.budgets;
    BudgetLeases* leases = gateway.shared.leases;
    const uint64_t now_ms = gateway.shard.now_ms();
    const int64_t index = budget_period_index(key.period, request.started_unix_ms / 1000);
    const uint32_t tag = BudgetTable::tag_of(index);
    const bool has_word_quota = key.has_quota_limit && budget_tokens_in_word(gateway, key);
    if (leases != nullptr && (key.has_budget || has_word_quota)) {
        leases->touch(key.quota_slot, now_ms);
    }
    if (key.has_budget) {
        int64_t bound = 0;
        if (!budget_money_bound(gateway, request, snapshot, bound)) {
            return Fault::client_model_price_missing;
        }
        uint32_t counted = 0;
        const bool fits =
            leases == nullptr
                ? budgets.try_add(key.quota_slot, BudgetTable::nano, tag, bound,
                                  key.budget_limit_nano(index), counted)
                : lease_try_add(*leases, budgets, key.quota_slot, BudgetTable::nano, index, bound,
                                key.budget_limit_nano(index), now_ms, counted);
        if (!fits) {
            if (leases != nullptr &&
                lease_wait(gateway, request, key, index, bound,
                           has_word_quota ? budget_token_bound(gateway, request) : 0)) {
                return Fault::none;
            }
            return budget_refuse(gateway, request, key, Fault::client_budget_too_small);
        }
        request.holds_budget_nano = true;
        request.budget_nano_tag = static_cast<uint16_t>(counted);
        request.budget_reserved_nano = bound;
        gateway.budget_reserved_nano += static_cast<uint64_t>(bound);
        gateway.metrics.budget_reserved_nano.set(gateway.budget_reserved_nano);
    }
    if (has_word_quota) {
        const int64_t bound = budget_token_bound(gateway, request);
        uint32_t counted = 0;
        const bool fits =
            leases == nullptr
                ? budgets.try_add(key.quota_slot, BudgetTable::tokens, tag, bound,
                                  key.quota_limit_tokens, counted)
                : lease_try_add(*leases, budgets, key.quota_slot, BudgetTable::tokens, index, bound,
                                key.quota_limit_tokens, now_ms, counted);
        if (!fits) {
            const int64_t need_nano = request.budget_reserved_nano;
            budget_settle(gateway, request, 0, 0);  // Gives the money reservation back.
            if (leases != nullptr && lease_wait(gateway, request, key, index, need_nano, bound)) {
                return Fault::none;
            }
            return budget_refuse(gateway, request, key, Fault::client_quota_too_small);
        }
        request.holds_budget_tokens = true;
        request.budget_tokens_tag = static_cast<uint16_t>(counted);
        request.budget_reserved_tokens = bound;
        quota_reservation_open(gateway, bound);
    }
    return Fault::none;
}

void budget_settle(Gateway& gateway, ProxyRequest& request, int64_t charged_tokens,
                   int64_t charged_nano) {
    BudgetTable& budgets = *gateway.shared.budgets;
    const uint32_t slot = request.quota_slot;
    uint32_t counted = 0;
    if (request.holds_budget_nano) {
        const int64_t reserved = request.budget_reserved_nano;
        budgets.settle(slot, BudgetTable::nano, request.budget_nano_tag, reserved, charged_nano);
        if (charged_nano > reserved) {
            gateway.metrics.budget_overshoot_requests.add();
            gateway.metrics.budget_overshoot_nano.add(
                static_cast<uint64_t>(charged_nano - reserved));
        }
        RW_ASSERT(gateway.budget_reserved_nano >= static_cast<uint64_t>(reserved));
        gateway.budget_reserved_nano -= static_cast<uint64_t>(reserved);
        gateway.metrics.budget_reserved_nano.set(gateway.budget_reserved_nano);
        request.holds_budget_nano = false;
    } else if (charged_nano > 0) {
        (void)budgets.try_add(slot, BudgetTable::nano, request.budget_period_tag, charged_nano, -1,
                              counted);
    }
    if (request.holds_budget_tokens) {
        const int64_t reserved = request.budget_reserved_tokens;
        budgets.settle(slot, BudgetTable::tokens, request.budget_tokens_tag, reserved,
                       charged_tokens);
        quota_reservation_close(gateway, reserved, charged_tokens);
        request.holds_budget_tokens = false;
    } else if (charged_tokens > 0 && request.has_tokens_word) {
        (void)budgets.try_add(slot, BudgetTable::tokens, request.budget_period_tag, charged_tokens,
                              -1, counted);
    }
}

}  // namespace rw
