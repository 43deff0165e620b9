// proxy/admin/key_budget.h — a key's money budget and budget period in the admin API:
// the `budget_usd`, `period` and `strict` members of POST/PATCH /admin/keys, how GET shows them
// (with the current period's bounds, committed use and top-ups), and the audited top-up,
// POST /admin/keys/{id}/topup. Admin thread only.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/admin/json.h"
#include "storage/keys.h"
#include "storage/queries.h"

namespace rw {

struct KeyBudgetFields {
    bool has_budget = false;
    bool has_budget_limit = false;  // false: "budget_usd": null (no money budget).
    int64_t budget_nano = 0;
    bool has_period = false;
    BudgetPeriod period = BudgetPeriod::none;
    bool has_strict = false;
    bool is_strict = false;
};

// When `key` is one of the budget members, reads it into fields and sets is_ok (false with
// `error` on a bad value) and returns true; false for any other member.
[[nodiscard]] bool key_budget_member(KeyBudgetFields& fields, std::string_view key,
                                     simdjson::ondemand::value& value, std::string& error,
                                     bool& is_ok);
void key_budget_apply(const KeyBudgetFields& fields, KeySpec& spec);
void key_budget_from_info(const KeyInfo& info, KeySpec& spec);
// budget_usd, period, strict and the current period's object, as members of the key's
// object.
void json_out_key_budget(JsonOut& out, const KeyInfo& key);

}  // namespace rw
