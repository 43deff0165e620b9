// proxy/admin/keys.cc — /admin/keys: gateway keys created (or imported), listed, shown,
// changed and revoked. A new secret is returned once, in the create reply, and wiped from
// memory after; lists and reads never carry it or its hash. Writes go through Catalog, so
// the data plane's snapshot has the change before the reply is sent.
#include "proxy/admin/handlers.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/assert.h"
#include "core/cidr.h"
#include "core/limits.h"
#include "core/log.h"
#include "proxy/admin/json.h"
#include "proxy/admin/key_budget.h"
#include "storage/json_lite.h"
#include "storage/keys.h"
#include "storage/queries.h"

namespace rw {

namespace ondemand = simdjson::ondemand;

namespace {

// The members of a key create/patch body. has_* says the member was present.
struct KeyFields {
    bool has_name = false;
    std::string name;
    bool has_quota = false;
    bool has_quota_limit = false;  // false: "quota_tokens": null (unlimited).
    int64_t quota_tokens = 0;
    bool has_expires = false;
    int64_t expires_at_s = 0;  // 0 or null: never.
    bool has_models = false;
    std::vector<std::string> models;  // Empty (or null): every model.
    bool has_rpm = false;
    int64_t rpm = 0;
    bool has_concurrency = false;
    int64_t concurrency_max = 0;
    bool has_tpm = false;
    int64_t tpm = 0;
    bool has_limits = false;
    std::string limits_json;  // Canonical JSON object; empty (null or {}): none.
    bool has_secret = false;
    std::string secret;  // "key": an imported secret; never logged or echoed.
    bool has_allowed_cidrs = false;
    std::vector<std::string> allowed_cidrs;  // Canonical blocks; empty (or null): any address.
    KeyBudgetFields budget;                  // budget_usd, period (key_budget.h).
};

// "allowed_cidrs": null, or an array of CIDR blocks (a bare address is one host), each
// checked and rewritten in canonical form; a bad one is refused naming it.
bool key_cidrs_read(KeyFields& fields, std::string_view key, ondemand::value& value,
                    std::string& error) {
    fields.has_allowed_cidrs = true;
    fields.allowed_cidrs.clear();
    if (json_is_null(value)) {
        return true;
    }
    if (!json_read_string_array(value, key, fields.allowed_cidrs, error)) {
        return false;
    }
    if (fields.allowed_cidrs.size() > cidr_list_entries_max) {
        return json_field_error(key, "has more than 64 entries", error);
    }
    for (std::string& text : fields.allowed_cidrs) {
        Cidr cidr;
        std::string_view why;
        if (!cidr_parse(text, cidr, &why)) {
            // Appended piece by piece (GCC 12 -Wrestrict false positive, PR 105651).
            std::string what("entry \"");
            what.append(std::string_view(text).substr(0, 64)).append("\" is not a CIDR block: ");
            return json_field_error(key, what.append(why), error);
        }
        text = cidr_text(cidr);
    }
    return true;
}

// The limits as JSON text, canonical: {"gpt-4o":{"rpm":60,"tpm":90000}}; empty for none.
std::string key_limits_json(const std::vector<ModelLimitSpec>& limits) {
    if (limits.empty()) {
        return {};
    }
    JsonOut out;
    out.begin_object();
    for (const ModelLimitSpec& limit : limits) {
        out.key(limit.model).begin_object();
        out.key("rpm").number(limit.rpm).key("tpm").number(limit.tpm);
        out.end_object();
    }
    out.end_object();
    return out.take();
}

// One model's {"rpm": N, "tpm": N} (both optional, nothing else).
bool key_model_limit_read(ondemand::value& value, std::string_view key, ModelLimitSpec& limit,
                          std::string& error) {
    ondemand::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
        return json_field_error(key, "must map each model to {\"rpm\": N, \"tpm\": N}", error);
    }
    for (auto item : object) {
        ondemand::field member;
        std::string_view name;
        if (std::move(item).get(member) != simdjson::SUCCESS ||
            member.unescaped_key().get(name) != simdjson::SUCCESS) {
            return json_field_error(key, "is not valid JSON", error);
        }
        if (name != "rpm" && name != "tpm") {
            return json_field_error(key, "may set only \"rpm\" and \"tpm\" per model", error);
        }
        int64_t& out = name == "rpm" ? limit.rpm : limit.tpm;  // Before the key view dies.
        if (!json_read_int(member.value(), key, 0, UINT32_MAX, out, error)) {
            return false;
        }
    }
    return true;
}

// "limits": null, or an object of model name -> {"rpm": N, "tpm": N} (both optional).
bool key_limits_read(KeyFields& fields, std::string_view key, ondemand::value& value,
                     std::string& error) {
    fields.has_limits = true;
    fields.limits_json.clear();
    if (json_is_null(value)) {
        return true;
    }
    ondemand::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
        return json_field_error(key, "must be an object of model -> {\"rpm\": N, \"tpm\": N}",
                                error);
    }
    std::vector<ModelLimitSpec> limits;
    for (auto item : object) {
        ondemand::field member;
        std::string_view model;
        if (std::move(item).get(member) != simdjson::SUCCESS ||
            member.unescaped_key().get(model) != simdjson::SUCCESS) {
            return json_field_error(key, "is not valid JSON", error);
        }
        ModelLimitSpec limit;
        limit.model = std::string(model);  // The key view dies when the value is read.
        for (const ModelLimitSpec& other : limits) {
            if (other.model == limit.model) {
                return json_field_error(key, "names a model twice", error);
            }
        }
        if (!key_model_limit_read(member.value(), key, limit, error)) {
            return false;
        }
        limits.push_back(std::move(limit));
    }
    if (limits.size() > admin_models_count_max) {
        return json_field_error(key, "has too many entries", error);
    }
    fields.limits_json = key_limits_json(limits);
    return true;
}

// The stored limits as the admin API shows them (null: none).
void json_out_limits(JsonOut& out, const std::string& limits_json) {
    std::vector<ModelLimitSpec> limits;
    std::string error;
    if (limits_json.empty() || !json_parse_model_limits(limits_json, limits, error)) {
        out.null();
        return;
    }
    out.begin_object();
    for (const ModelLimitSpec& limit : limits) {
        out.key(limit.model).begin_object();
        out.key("rpm").number(limit.rpm).key("tpm").number(limit.tpm);
        out.end_object();
    }
    out.end_object();
}

bool key_field_read(KeyFields& fields, std::string_view key, ondemand::value& value,
                    std::string& error) {
    constexpr int64_t u32_max = UINT32_MAX;
    if (key == "name") {
        fields.has_name = true;
        return json_read_string(value, key, fields.name, error);
    }
    if (key == "quota_tokens") {
        fields.has_quota = true;
        fields.has_quota_limit = !json_is_null(value);
        return !fields.has_quota_limit ||
               json_read_int(value, key, 0, INT64_MAX, fields.quota_tokens, error);
    }
    if (key == "expires_at") {
        fields.has_expires = true;
        fields.expires_at_s = 0;
        return json_is_null(value) ||
               json_read_int(value, key, 0, 253402300799, fields.expires_at_s, error);
    }
    if (key == "models") {
        fields.has_models = true;
        fields.models.clear();
        return json_is_null(value) || json_read_string_array(value, key, fields.models, error);
    }
    if (key == "rpm") {
        fields.has_rpm = true;
        return json_read_int(value, key, 0, u32_max, fields.rpm, error);
    }
    if (key == "max_concurrency") {
        fields.has_concurrency = true;
        return json_read_int(value, key, 0, u32_max, fields.concurrency_max, error);
    }
    if (key == "tpm") {
        fields.has_tpm = true;
        return json_read_int(value, key, 0, u32_max, fields.tpm, error);
    }
    if (key == "limits") {
        return key_limits_read(fields, key, value, error);
    }
    if (key == "key") {
        fields.has_secret = true;
        return json_read_string(value, key, fields.secret, error);
    }
    if (key == "allowed_cidrs") {
        return key_cidrs_read(fields, key, value, error);
    }
    if (bool is_ok = false; key_budget_member(fields.budget, key, value, error, is_ok)) {
        return is_ok;
    }
    return json_unknown_field(key, error);
}

void key_fields_apply(const KeyFields& fields, KeySpec& spec) {
    if (fields.has_name) {
        spec.name = fields.name;
    }
    if (fields.has_quota) {
        spec.has_quota_limit = fields.has_quota_limit;
        spec.quota_limit_tokens = fields.has_quota_limit ? fields.quota_tokens : 0;
    }
    if (fields.has_expires) {
        spec.expires_at_s = fields.expires_at_s;
    }
    if (fields.has_models) {
        spec.allows_all_models = fields.models.empty();
        spec.models_json = fields.models.empty() ? std::string() : json_string_array(fields.models);
    }
    if (fields.has_rpm) {
        spec.rpm = uint32_t(fields.rpm);
    }
    if (fields.has_concurrency) {
        spec.concurrency_max = uint32_t(fields.concurrency_max);
    }
    if (fields.has_tpm) {
        spec.tpm = uint32_t(fields.tpm);
    }
    if (fields.has_limits) {
        spec.limits_json = fields.limits_json;
    }
    if (fields.has_allowed_cidrs) {
        spec.allowed_cidrs_json =
            fields.allowed_cidrs.empty() ? std::string() : json_string_array(fields.allowed_cidrs);
    }
    key_budget_apply(fields.budget, spec);
}

KeySpec key_spec_from_info(const KeyInfo& info) {
    KeySpec spec;
    spec.name = info.name;
    spec.has_quota_limit = info.has_quota_limit;
    spec.quota_limit_tokens = info.quota_limit_tokens;
    spec.expires_at_s = info.expires_at_s;
    spec.allows_all_models = info.allows_all_models;
    spec.models_json = info.models_json;
    spec.rpm = uint32_t(info.rpm);
    spec.concurrency_max = uint32_t(info.concurrency_max);
    spec.tpm = uint32_t(info.tpm);
    spec.limits_json = info.limits_json;
    spec.allowed_cidrs_json = info.allowed_cidrs_json;
    key_budget_from_info(info, spec);
    return spec;
}

// `secret` is added as "key" only in the create response (shown once).
void json_out_key(JsonOut& out, const KeyInfo& key, std::string_view secret = {}) {
    out.begin_object();
    out.key("id").number(key.id).key("object").string("key");
    out.key("name").string(key.name).key("key_prefix").string(key.key_prefix);
    out.key("status").string(key.status);
    out.key("quota_tokens");
    key.has_quota_limit ? out.number(key.quota_limit_tokens) : out.null();
    out.key("quota_used_tokens").number(key.quota_used_tokens);
    out.key("spend_usd").string(json_usd(key.spend_nano));  // Exact: from nano-USD.
    out.key("expires_at");
    key.expires_at_s != 0 ? out.number(key.expires_at_s) : out.null();
    out.key("models");
    key.allows_all_models ? out.null() : (json_out_models(out, key.models_json), out);
    out.key("rpm").number(key.rpm).key("max_concurrency").number(key.concurrency_max);
    out.key("tpm").number(key.tpm).key("limits");
    json_out_limits(out, key.limits_json);
    out.key("allowed_cidrs");
    key.allowed_cidrs_json.empty() ? out.null()
                                   : (json_out_models(out, key.allowed_cidrs_json), out);
    json_out_key_budget(out, key);
    out.key("created_at").number(key.created_at_s);
    if (!secret.empty()) {
        out.key("key").string(secret);
    }
    out.end_object();
}

// The key as GET /admin/keys/{id} shows it.
AdminReply key_reply(AdminDeps& deps, int64_t id) {
    const Result<KeyInfo> key = deps.queries.get_key(id);
    if (!key.ok()) {
        return admin_reply_storage_error(key.error);
    }
    JsonOut out;
    json_out_key(out, key.value);
    return admin_reply_json(200, out.take());
}

}  // namespace

AdminReply admin_keys_create(AdminDeps& deps, const AdminRequest& request) {
    KeyFields fields;
    AdminReply reply;
    if (!admin_parse_fields(deps, request.body, fields, key_field_read, reply)) {
        return reply;
    }
    if (!fields.has_name) {
        return admin_reply_error(400, "missing_field", "name is required");
    }
    KeySpec spec;
    key_fields_apply(fields, spec);
    const std::string check = key_spec_check(spec);
    if (!check.empty()) {
        return admin_reply_error(400, "invalid_field", check);
    }
    std::string secret;
    int64_t id = 0;
    if (fields.has_secret) {
        const bool is_visible = std::all_of(fields.secret.begin(), fields.secret.end(),
                                            [](char c) { return c > 0x20 && c < 0x7f; });
        if (fields.secret.size() < imported_secret_bytes_min ||
            fields.secret.size() > imported_secret_bytes_max || !is_visible) {
            return admin_reply_error(400, "invalid_field",
                                     "key must be 16..256 visible ASCII bytes");
        }
        const Result<int64_t> imported = deps.catalog.import_key(spec, fields.secret);
        if (!imported.ok()) {
            return admin_reply_storage_error(imported.error);
        }
        id = imported.value;
        secret = std::move(fields.secret);
    } else {
        Result<CreatedKey> created = deps.catalog.create_key(spec);
        if (!created.ok()) {
            return admin_reply_storage_error(created.error);
        }
        id = created.value.id;
        secret = std::move(created.value.secret);
    }
    RW_ASSERT(id > 0);
    const Result<KeyInfo> info = deps.queries.get_key(id);
    JsonOut out;
    if (info.ok()) {
        json_out_key(out, info.value, secret);
    } else {  // Committed: the secret must still reach the operator, or it is lost.
        RW_LOG_WARN("event=admin_key_readback_failed id=%lld", (long long)id);
        out.begin_object().key("id").number(id).key("object").string("key");
        out.key("name").string(spec.name).key("key").string(secret).end_object();
    }
    OPENSSL_cleanse(secret.data(), secret.size());
    RW_LOG_INFO("event=admin_key_created id=%lld imported=%d", (long long)id, fields.has_secret);
    return admin_reply_json(201, out.take());
}

AdminReply admin_keys_list(AdminDeps& deps, const AdminRequest&) {
    const Result<std::vector<KeyInfo>> keys = deps.queries.list_keys();
    if (!keys.ok()) {
        return admin_reply_storage_error(keys.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const KeyInfo& key : keys.value) {
        json_out_key(out, key);
    }
    out.end_array().end_object();
    return admin_reply_json(200, out.take());
}

AdminReply admin_keys_get(AdminDeps& deps, const AdminRequest& request) {
    return key_reply(deps, request.id);
}

// PATCH merges the present members into the stored key. Read-modify-write is not one
// transaction, but the admin thread is the only writer of keys and serves one request at
// a time, so nothing can interleave.
AdminReply admin_keys_patch(AdminDeps& deps, const AdminRequest& request) {
    const int64_t id = request.id;
    KeyFields fields;
    AdminReply reply;
    if (!admin_parse_fields(deps, request.body, fields, key_field_read, reply)) {
        return reply;
    }
    if (fields.has_secret) {
        return admin_reply_error(400, "invalid_field",
                                 "a key's secret cannot change; create a new key");
    }
    const Result<KeyInfo> current = deps.queries.get_key(id);
    if (!current.ok()) {
        return admin_reply_storage_error(current.error);
    }
    KeySpec spec = key_spec_from_info(current.value);
    key_fields_apply(fields, spec);
    const std::string check = key_spec_check(spec);
    if (!check.empty()) {
        return admin_reply_error(400, "invalid_field", check);
    }
    std::string error;
    if (!deps.catalog.update_key(id, spec, error)) {
        return admin_reply_storage_error(error);
    }
    RW_LOG_INFO("event=admin_key_updated id=%lld", (long long)id);
    return key_reply(deps, id);
}

AdminReply admin_keys_delete(AdminDeps& deps, const AdminRequest& request) {
    const int64_t id = request.id;
    std::string error;
    // Revocation, not deletion: usage history keeps its key, the snapshot drops it now.
    if (!deps.catalog.revoke_key(id, error)) {
        return admin_reply_storage_error(error);
    }
    RW_LOG_INFO("event=admin_key_revoked id=%lld", (long long)id);
    return key_reply(deps, id);
}

}  // namespace rw
