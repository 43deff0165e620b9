// proxy/admin/key_budget.cc — budget members of /admin/keys and the top-up endpoint (see
// key_budget.h). Top-ups are audit rows (who, when, amount, reason), never edited.
#include "proxy/admin/key_budget.h"

#include "core/log.h"
#include "proxy/admin/handlers.h"

namespace rw {

namespace ondemand = simdjson::ondemand;

bool key_budget_member(KeyBudgetFields& fields, std::string_view key, ondemand::value& value,
                       std::string& error, bool& is_ok) {
    if (key == "budget_usd") {
        fields.has_budget = true;
        fields.has_budget_limit = !json_is_null(value);
        is_ok = !fields.has_budget_limit ||
                json_read_usd(value, key, budget_amount_max, fields.budget_nano, error);
        return true;
    }
    if (key == "period") {
        fields.has_period = true;
        std::string text;
        is_ok = json_read_string(value, key, text, error);
        if (is_ok && !budget_period_parse(text, fields.period)) {
            is_ok = json_field_error(key, "must be none, daily, weekly or monthly", error);
        }
        return true;
    }
    if (key == "strict") {
        fields.has_strict = true;
        is_ok = json_read_bool(value, key, fields.is_strict, error);
        return true;
    }
    return false;
}

void key_budget_apply(const KeyBudgetFields& fields, KeySpec& spec) {
    if (fields.has_budget) {
        spec.has_budget = fields.has_budget_limit;
        spec.budget_nano = fields.has_budget_limit ? fields.budget_nano : 0;
    }
    if (fields.has_period) {
        spec.period = fields.period;
    }
    if (fields.has_strict) {
        spec.is_strict = fields.is_strict;
    }
}

void key_budget_from_info(const KeyInfo& info, KeySpec& spec) {
    spec.has_budget = info.has_budget;
    spec.budget_nano = info.budget_nano;
    (void)budget_period_parse(info.period, spec.period);
    spec.is_strict = info.is_strict;
}

void json_out_key_budget(JsonOut& out, const KeyInfo& key) {
    out.key("budget_usd");
    key.has_budget ? out.string(json_usd(key.budget_nano)) : out.null();
    out.key("period").string(key.period);
    out.key("strict").boolean(key.is_strict);
    out.key("current_period").begin_object();
    out.key("start").number(key.period_start_s);
    out.key("end");
    key.period_end_s != 0 ? out.number(key.period_end_s) : out.null();
    out.key("used_tokens").number(key.period_used_tokens);
    out.key("spend_usd").string(json_usd(key.period_used_nano));
    out.key("topups_usd").string(json_usd(key.period_topup_nano));
    out.key("budget_usd");
    key.has_budget ? out.string(json_usd(key.budget_nano + key.period_topup_nano)) : out.null();
    out.end_object();
}

namespace {

struct TopupFields {
    bool has_amount = false;
    int64_t amount_nano = 0;
    std::string reason;
    std::string actor = "admin-api";
};

bool topup_field_read(TopupFields& fields, std::string_view key, ondemand::value& value,
                      std::string& error) {
    if (key == "amount_usd") {
        fields.has_amount = true;
        return json_read_usd(value, key, budget_amount_max, fields.amount_nano, error);
    }
    if (key == "reason") {
        return json_read_string(value, key, fields.reason, error);
    }
    if (key == "actor") {
        return json_read_string(value, key, fields.actor, error);
    }
    return json_unknown_field(key, error);
}

}  // namespace

AdminReply admin_keys_topup(AdminDeps& deps, const AdminRequest& request) {
    TopupFields fields;
    AdminReply reply;
    if (!admin_parse_fields(deps, request.body, fields, topup_field_read, reply)) {
        return reply;
    }
    if (!fields.has_amount || fields.reason.empty()) {
        return admin_reply_error(400, "missing_field", "amount_usd and reason are required");
    }
    if (fields.actor.empty() || fields.actor.size() > 200) {
        return admin_reply_error(400, "invalid_field", "actor must be 1..200 bytes");
    }
    TopupSpec spec;
    spec.key_id = request.id;
    spec.amount_nano = fields.amount_nano;
    spec.reason = fields.reason;
    spec.actor = fields.actor;
    const Result<int64_t> created = deps.catalog.topup_key(spec);
    if (!created.ok()) {
        if (created.error.starts_with("no key")) {
            return admin_reply_storage_error(created.error);
        }
        return created.error.find("must") != std::string::npos
                   ? admin_reply_error(400, "invalid_field", created.error)
                   : admin_reply_storage_error(created.error);
    }
    RW_LOG_INFO("event=admin_key_topup id=%lld topup_id=%lld amount_nano=%lld",
                (long long)request.id, (long long)created.value, (long long)fields.amount_nano);
    // The key as GET shows it: current_period.topups_usd and budget_usd include it.
    AdminReply key = admin_keys_get(deps, request);
    if (key.status == 200) {
        key.status = 201;
    }
    return key;
}

}  // namespace rw
