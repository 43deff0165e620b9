// proxy/admin/server.cc — the admin API. One thread polls the listener and a stop
// eventfd, serves one connection at a time (request → response → close) under a total
// deadline, and routes to the handlers below. Bodies are parsed with simdjson On Demand
// (error codes, no exceptions); responses are built as std::string (control plane: it may
// allocate). Writes go through Catalog; reads through Queries' read-only connection.
// Invariant: no token, key secret or upstream key is ever logged or echoed in an error.
#include "proxy/admin/server.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <simdjson.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "arena/arena.h"
#include "arena/chunk_pool.h"
#include "core/assert.h"
#include "core/http_parse.h"
#include "core/http_write.h"
#include "core/log.h"
#include "core/text.h"
#include "proxy/admin/base_url.h"
#include "proxy/admin/json.h"
#include "storage/json_lite.h"
#include "storage/keys.h"
#include "storage/queries.h"
#include "storage/writer.h"

namespace rw {

namespace ondemand = simdjson::ondemand;

// ---- Token check ---------------------------------------------------------------------------

bool admin_token_matches(std::string_view presented, std::string_view expected) {
    if (expected.empty()) {
        return false;
    }
    // Hashing both sides gives equal-length inputs to CRYPTO_memcmp, which takes the same
    // time whatever the contents [CRYPTO_memcmp(3)]; the length test comes after, so a
    // wrong length costs the same work as a wrong token.
    const KeyHash presented_hash = key_hash(presented);
    const KeyHash expected_hash = key_hash(expected);
    const bool is_equal_digest =
        CRYPTO_memcmp(presented_hash.data(), expected_hash.data(), key_hash_bytes) == 0;
    return is_equal_digest && presented.size() == expected.size();
}

// ---- Requests and replies -----------------------------------------------------------------

namespace {

struct AdminReply {
    uint16_t status = 200;
    std::string body;           // JSON.
    std::string extra_headers;  // Complete header lines.
};

AdminReply reply_json(uint16_t status, std::string body) {
    AdminReply reply;
    reply.status = status;
    reply.body = std::move(body);
    return reply;
}

// An OpenAI-style error body through core/http_write.h, so every ringway error has one
// shape. `message` must never contain a secret.
AdminReply reply_error(uint16_t status, std::string_view code, std::string_view message) {
    RW_ASSERT(status >= 400);
    std::string body(error_body_bytes_max(code, message), '\0');
    const uint32_t written =
        write_error_body(body.data(), uint32_t(body.size()), status, code, message);
    RW_ASSERT(written > 0);
    body.resize(written);
    return reply_json(status, std::move(body));
}

// Errors from Catalog/Queries: "no key with id N" / "no channel with id N" are the
// storage layer's not-found messages (storage/keys.cc, storage/queries.cc); a duplicate
// secret is "key already exists". Everything else is a storage failure.
AdminReply reply_storage_error(const std::string& error) {
    if (error.starts_with("no key with id ") || error.starts_with("no channel with id ")) {
        return reply_error(404, "not_found", error);
    }
    if (error == "key already exists") {
        return reply_error(409, "key_exists", error);
    }
    RW_LOG_ERROR("event=admin_storage_error error=\"%s\"", error.c_str());
    return reply_error(500, "storage_error", "storage error: " + error);
}

// The parts of a request the handlers read; views into the connection's arena.
struct AdminRequest {
    Method method;
    std::string_view path;
    std::string_view query;
    std::string_view body;
};

// "a=1&b=x" → the value of `name` (percent-decoded; '+' is a space). False when the
// parameter is absent; `is_bad` when it is malformed.
bool query_param(std::string_view query, std::string_view name, std::string& value, bool& is_bad) {
    while (!query.empty()) {
        const size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        const size_t eq = pair.find('=');
        if (pair.substr(0, eq) != name) {
            continue;
        }
        const std::string_view raw =
            eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        value.clear();
        for (size_t i = 0; i < raw.size(); i++) {
            if (raw[i] == '+') {
                value.push_back(' ');
            } else if (raw[i] == '%') {
                if (i + 2 >= raw.size()) {  // "%" needs two hex digits after it.
                    is_bad = true;
                    return true;
                }
                const std::string hex(raw.substr(i + 1, 2));
                char* end = nullptr;
                const long byte = std::strtol(hex.c_str(), &end, 16);
                if (hex.size() != 2 || end != hex.c_str() + 2) {
                    is_bad = true;
                    return true;
                }
                value.push_back(char(byte));
                i += 2;
            } else {
                value.push_back(raw[i]);
            }
        }
        return true;
    }
    return false;
}

// True when every parameter name of `query` is in `known`.
bool query_names_known(std::string_view query, std::initializer_list<std::string_view> known,
                       std::string& unknown) {
    while (!query.empty()) {
        const size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        const std::string_view name = pair.substr(0, pair.find('='));
        if (name.empty()) {
            continue;
        }
        bool is_known = false;
        for (const std::string_view candidate : known) {
            is_known = is_known || candidate == name;
        }
        if (!is_known) {
            unknown.assign(name.substr(0, 64));
            return false;
        }
    }
    return true;
}

// "YYYY-MM-DD" as is, or Unix seconds → the UTC day. Empty stays empty (unbounded).
bool parse_day(std::string_view text, std::string& day) {
    if (text.empty()) {
        day.clear();
        return true;
    }
    if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
        int64_t year = 0;
        int64_t month = 0;
        int64_t mday = 0;
        if (!parse_decimal_i64(text.substr(0, 4), 1970, 9999, year) ||
            !parse_decimal_i64(text.substr(5, 2), 1, 12, month) ||
            !parse_decimal_i64(text.substr(8, 2), 1, 31, mday)) {
            return false;
        }
        day.assign(text);
        return true;
    }
    int64_t seconds = 0;
    if (!parse_decimal_i64(text, 0, 253402300799, seconds)) {
        return false;  // Up to 9999-12-31.
    }
    const time_t when = time_t(seconds);
    tm parts{};
    gmtime_r(&when, &parts);
    char buffer[16];
    std::strftime(buffer, sizeof(buffer), "%Y-%m-%d", &parts);
    day.assign(buffer);
    return true;
}

}  // namespace

// ---- Keys and channels as JSON ---------------------------------------------------------------

namespace {

// `secret` is added as "key" only in the create response (shown once).
void json_out_key(JsonOut& out, const KeyInfo& key, std::string_view secret = {}) {
    out.begin_object();
    out.key("id").number(key.id).key("object").string("key");
    out.key("name").string(key.name).key("key_prefix").string(key.key_prefix);
    out.key("status").string(key.status);
    out.key("quota_tokens");
    key.has_quota_limit ? out.number(key.quota_limit_tokens) : out.null();
    out.key("quota_used_tokens").number(key.quota_used_tokens);
    out.key("expires_at");
    key.expires_at_s != 0 ? out.number(key.expires_at_s) : out.null();
    out.key("models");
    key.allows_all_models ? out.null() : (json_out_models(out, key.models_json), out);
    out.key("rpm").number(key.rpm).key("max_concurrency").number(key.concurrency_max);
    out.key("created_at").number(key.created_at_s);
    if (!secret.empty()) {
        out.key("key").string(secret);
    }
    out.end_object();
}

void json_out_channel(JsonOut& out, const ChannelInfo& channel) {
    out.begin_object();
    out.key("id").number(channel.id).key("object").string("channel");
    out.key("name").string(channel.name).key("kind").string(channel.kind);
    out.key("base_url").string(channel.base_url);
    out.key("api_key").string(channel.api_key_masked);  // Never the secret (RULES Security 2).
    out.key("models");
    json_out_models(out, channel.models_json);
    out.key("model_map");
    std::vector<std::pair<std::string, std::string>> model_map;
    std::string error;
    if (json_parse_string_map(channel.model_map_json, model_map, error)) {
        out.begin_object();
        for (const auto& [from, to] : model_map) {
            out.key(from).string(to);
        }
        out.end_object();
    } else {
        out.null();
    }
    out.key("priority").number(channel.priority).key("weight").number(channel.weight);
    out.key("enabled").boolean(channel.is_enabled);
    out.key("allow_private_network").boolean(channel.allow_private_network);
    out.key("ca_file");
    channel.ca_file.empty() ? out.null() : out.string(channel.ca_file);
    out.key("created_at").number(channel.created_at_s);
    out.end_object();
}

// ---- Key and channel bodies --------------------------------------------------------------

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
    bool has_secret = false;
    std::string secret;  // "key": an imported secret; never logged or echoed.
};

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
    if (key == "key") {
        fields.has_secret = true;
        return json_read_string(value, key, fields.secret, error);
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
    return spec;
}

struct ChannelFields {
    bool has_name = false;
    bool has_kind = false;
    bool has_base_url = false;
    bool has_api_key = false;
    bool has_models = false;
    bool has_model_map = false;
    bool has_priority = false;
    bool has_weight = false;
    bool has_enabled = false;
    bool has_allow_private_network = false;
    bool has_ca_file = false;
    std::string name;
    std::string kind;
    std::string base_url;
    std::string api_key;  // The upstream secret; never logged or echoed.
    std::vector<std::string> models;
    std::vector<std::pair<std::string, std::string>> model_map;
    int64_t priority = 0;
    int64_t weight = 1;
    bool is_enabled = true;
    bool allow_private_network = false;
    std::string ca_file;
};

bool channel_field_read(ChannelFields& fields, std::string_view key, ondemand::value& value,
                        std::string& error) {
    if (key == "name") {
        fields.has_name = true;
        return json_read_string(value, key, fields.name, error);
    }
    if (key == "kind") {
        fields.has_kind = true;
        return json_read_string(value, key, fields.kind, error);
    }
    if (key == "base_url") {
        fields.has_base_url = true;
        return json_read_string(value, key, fields.base_url, error);
    }
    if (key == "api_key") {
        fields.has_api_key = true;
        return json_read_string(value, key, fields.api_key, error);
    }
    if (key == "models") {
        fields.has_models = true;
        return json_read_string_array(value, key, fields.models, error);
    }
    if (key == "model_map") {
        fields.has_model_map = true;
        return json_read_string_map(value, key, fields.model_map, error);
    }
    if (key == "priority") {
        fields.has_priority = true;
        return json_read_int(value, key, INT32_MIN, INT32_MAX, fields.priority, error);
    }
    if (key == "weight") {
        fields.has_weight = true;
        return json_read_int(value, key, 0, 1000000, fields.weight, error);
    }
    if (key == "enabled") {
        fields.has_enabled = true;
        return json_read_bool(value, key, fields.is_enabled, error);
    }
    if (key == "allow_private_network") {
        fields.has_allow_private_network = true;
        return json_read_bool(value, key, fields.allow_private_network, error);
    }
    if (key == "ca_file") {
        fields.has_ca_file = true;
        fields.ca_file.clear();
        return json_is_null(value) || json_read_string(value, key, fields.ca_file, error);
    }
    return json_unknown_field(key, error);
}

// Applies the present members; false with `error` for an unknown kind.
bool channel_fields_apply(const ChannelFields& fields, ChannelSpec& spec, std::string& error) {
    if (fields.has_kind && !channel_kind_parse(fields.kind, spec.kind)) {
        error = "kind must be one of openai, anthropic, openai-compatible";
        return false;
    }
    if (fields.has_name) {
        spec.name = fields.name;
    }
    if (fields.has_base_url) {
        spec.base_url = fields.base_url;
    }
    if (fields.has_api_key) {
        spec.api_key = fields.api_key;
    }
    if (fields.has_models) {
        spec.models_json = json_string_array(fields.models);
    }
    if (fields.has_model_map) {
        spec.model_map_json = json_string_map(fields.model_map);
    }
    if (fields.has_priority) {
        spec.priority = int32_t(fields.priority);
    }
    if (fields.has_weight) {
        spec.weight = uint32_t(fields.weight);
    }
    if (fields.has_enabled) {
        spec.is_enabled = fields.is_enabled;
    }
    if (fields.has_allow_private_network) {
        spec.allow_private_network = fields.allow_private_network;
    }
    if (fields.has_ca_file) {
        spec.ca_file = fields.ca_file;
    }
    return true;
}

// The full check of a channel about to be written: the admin API's URL policy first
// (clearer messages), then storage's own.
std::string channel_check(const ChannelSpec& spec) {
    if (spec.name.empty()) {
        return "name must not be empty";
    }
    std::string error = admin_base_url_check(spec.base_url, spec.allow_private_network);
    if (!error.empty()) {
        return error;
    }
    return channel_spec_check(spec);
}

}  // namespace

// ---- Handlers -----------------------------------------------------------------------------

namespace {

// What every handler may use. Touched by the admin thread only.
struct AdminDeps {
    AdminDeps(Writer& writer_in, Catalog& catalog_in, Queries& queries_in)
        : writer(writer_in), catalog(catalog_in), queries(queries_in) {}

    Writer& writer;
    Catalog& catalog;
    Queries& queries;
    ondemand::parser json;  // Reused across requests; grows to the largest body seen.
};

template <class Fields, class Read>
bool parse_fields(AdminDeps& deps, std::string_view body, Fields& fields, Read read,
                  AdminReply& reply) {
    std::string code;
    std::string error;
    const auto visit = [&](std::string_view key, ondemand::value& value, std::string& e) {
        return read(fields, key, value, e);
    };
    if (!json_visit_object(deps.json, body, visit, code, error)) {
        reply = reply_error(400, code, error);
        return false;
    }
    return true;
}

AdminReply keys_create(AdminDeps& deps, std::string_view body) {
    KeyFields fields;
    AdminReply reply;
    if (!parse_fields(deps, body, fields, key_field_read, reply)) {
        return reply;
    }
    if (!fields.has_name) {
        return reply_error(400, "missing_field", "name is required");
    }
    KeySpec spec;
    key_fields_apply(fields, spec);
    const std::string check = key_spec_check(spec);
    if (!check.empty()) {
        return reply_error(400, "invalid_field", check);
    }
    std::string secret;
    int64_t id = 0;
    if (fields.has_secret) {
        const bool is_visible = std::all_of(fields.secret.begin(), fields.secret.end(),
                                            [](char c) { return c > 0x20 && c < 0x7f; });
        if (fields.secret.size() < imported_secret_bytes_min ||
            fields.secret.size() > imported_secret_bytes_max || !is_visible) {
            return reply_error(400, "invalid_field", "key must be 16..256 visible ASCII bytes");
        }
        const Result<int64_t> imported = deps.catalog.import_key(spec, fields.secret);
        if (!imported.ok()) {
            return reply_storage_error(imported.error);
        }
        id = imported.value;
        secret = std::move(fields.secret);
    } else {
        Result<CreatedKey> created = deps.catalog.create_key(spec);
        if (!created.ok()) {
            return reply_storage_error(created.error);
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
    return reply_json(201, out.take());
}

AdminReply keys_list(AdminDeps& deps) {
    const Result<std::vector<KeyInfo>> keys = deps.queries.list_keys();
    if (!keys.ok()) {
        return reply_storage_error(keys.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const KeyInfo& key : keys.value) {
        json_out_key(out, key);
    }
    out.end_array().end_object();
    return reply_json(200, out.take());
}

AdminReply keys_get(AdminDeps& deps, int64_t id) {
    const Result<KeyInfo> key = deps.queries.get_key(id);
    if (!key.ok()) {
        return reply_storage_error(key.error);
    }
    JsonOut out;
    json_out_key(out, key.value);
    return reply_json(200, out.take());
}

// PATCH merges the present members into the stored key. Read-modify-write is not one
// transaction, but the admin thread is the only writer of keys and serves one request at
// a time, so nothing can interleave.
AdminReply keys_patch(AdminDeps& deps, int64_t id, std::string_view body) {
    KeyFields fields;
    AdminReply reply;
    if (!parse_fields(deps, body, fields, key_field_read, reply)) {
        return reply;
    }
    if (fields.has_secret) {
        return reply_error(400, "invalid_field", "a key's secret cannot change; create a new key");
    }
    const Result<KeyInfo> current = deps.queries.get_key(id);
    if (!current.ok()) {
        return reply_storage_error(current.error);
    }
    KeySpec spec = key_spec_from_info(current.value);
    key_fields_apply(fields, spec);
    const std::string check = key_spec_check(spec);
    if (!check.empty()) {
        return reply_error(400, "invalid_field", check);
    }
    std::string error;
    if (!deps.catalog.update_key(id, spec, error)) {
        return reply_storage_error(error);
    }
    RW_LOG_INFO("event=admin_key_updated id=%lld", (long long)id);
    return keys_get(deps, id);
}

AdminReply keys_delete(AdminDeps& deps, int64_t id) {
    std::string error;
    // Revocation, not deletion: usage history keeps its key, the snapshot drops it now.
    if (!deps.catalog.revoke_key(id, error)) {
        return reply_storage_error(error);
    }
    RW_LOG_INFO("event=admin_key_revoked id=%lld", (long long)id);
    return keys_get(deps, id);
}

AdminReply channel_reply(AdminDeps& deps, int64_t id, uint16_t status) {
    const Result<ChannelInfo> channel = deps.queries.get_channel(id);
    if (!channel.ok()) {
        return reply_storage_error(channel.error);
    }
    JsonOut out;
    json_out_channel(out, channel.value);
    return reply_json(status, out.take());
}

AdminReply channels_create(AdminDeps& deps, std::string_view body) {
    ChannelFields fields;
    AdminReply reply;
    if (!parse_fields(deps, body, fields, channel_field_read, reply)) {
        return reply;
    }
    for (const auto& [is_present, name] :
         {std::pair{fields.has_name, "name"}, std::pair{fields.has_kind, "kind"},
          std::pair{fields.has_base_url, "base_url"}, std::pair{fields.has_api_key, "api_key"}}) {
        if (!is_present) {
            return reply_error(400, "missing_field", std::string(name) + " is required");
        }
    }
    ChannelSpec spec;
    std::string error;
    if (!channel_fields_apply(fields, spec, error)) {
        return reply_error(400, "invalid_field", error);
    }
    error = channel_check(spec);
    if (!error.empty()) {
        return reply_error(400, "invalid_field", error);
    }
    const Result<int64_t> created = deps.catalog.create_channel(spec);
    if (!created.ok()) {
        return reply_storage_error(created.error);
    }
    RW_LOG_INFO("event=admin_channel_created id=%lld kind=%s", (long long)created.value,
                std::string(channel_kind_name(spec.kind)).c_str());
    return channel_reply(deps, created.value, 201);
}

AdminReply channels_list(AdminDeps& deps) {
    const Result<std::vector<ChannelInfo>> channels = deps.queries.list_channels();
    if (!channels.ok()) {
        return reply_storage_error(channels.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const ChannelInfo& channel : channels.value) {
        json_out_channel(out, channel);
    }
    out.end_array().end_object();
    return reply_json(200, out.take());
}

// Queries shows only the masked upstream key; a PATCH that keeps the key needs the real
// one, read on the writer's connection (no transaction: one SELECT).
struct ChannelSecretRead {
    int64_t id;
    std::string api_key;
};

bool channel_secret_read(Db& db, void* context, std::string& error) {
    ChannelSecretRead& read = *static_cast<ChannelSecretRead*>(context);
    Stmt stmt;
    if (!db.prepare("SELECT api_key FROM channels WHERE id = ?1", stmt)) {
        return false;
    }
    stmt.bind_int64(1, read.id);
    switch (stmt.step()) {
        case StepStatus::row: read.api_key.assign(stmt.column_text(0)); return true;
        case StepStatus::done:
            error = "no channel with id " + std::to_string(read.id);
            return false;
        case StepStatus::error: return false;
    }
    RW_UNREACHABLE();
}

AdminReply channels_patch(AdminDeps& deps, int64_t id, std::string_view body) {
    ChannelFields fields;
    AdminReply reply;
    if (!parse_fields(deps, body, fields, channel_field_read, reply)) {
        return reply;
    }
    const Result<ChannelInfo> current = deps.queries.get_channel(id);
    if (!current.ok()) {
        return reply_storage_error(current.error);
    }
    ChannelSpec spec;
    std::string error;
    const ChannelInfo& info = current.value;
    if (!channel_kind_parse(info.kind, spec.kind)) {
        return reply_storage_error("stored kind is unknown");
    }
    spec.name = info.name;
    spec.base_url = info.base_url;
    spec.models_json = info.models_json;
    spec.model_map_json = info.model_map_json;
    spec.priority = int32_t(info.priority);
    spec.weight = uint32_t(info.weight);
    spec.is_enabled = info.is_enabled;
    spec.allow_private_network = info.allow_private_network;
    spec.ca_file = info.ca_file;
    if (!fields.has_api_key) {
        ChannelSecretRead read{id, {}};
        if (!deps.writer.execute(channel_secret_read, &read, error, false)) {
            return reply_storage_error(error);
        }
        spec.api_key = std::move(read.api_key);
    }
    if (!channel_fields_apply(fields, spec, error)) {
        return reply_error(400, "invalid_field", error);
    }
    error = channel_check(spec);
    if (!error.empty()) {
        return reply_error(400, "invalid_field", error);
    }
    if (!deps.catalog.update_channel(id, spec, error)) {
        return reply_storage_error(error);
    }
    OPENSSL_cleanse(spec.api_key.data(), spec.api_key.size());
    RW_LOG_INFO("event=admin_channel_updated id=%lld", (long long)id);
    return channel_reply(deps, id, 200);
}

AdminReply channels_delete(AdminDeps& deps, int64_t id) {
    std::string error;
    if (!deps.catalog.delete_channel(id, error)) {
        return reply_storage_error(error);
    }
    RW_LOG_INFO("event=admin_channel_deleted id=%lld", (long long)id);
    JsonOut out;
    out.begin_object().key("id").number(id).key("object").string("channel");
    out.key("deleted").boolean(true).end_object();
    return reply_json(200, out.take());
}

// Reads an optional integer query parameter; false with `reply` set when malformed.
bool query_int(std::string_view query, std::string_view name, int64_t min, int64_t max,
               int64_t& out, AdminReply& reply) {
    std::string text;
    bool is_bad = false;
    if (!query_param(query, name, text, is_bad)) {
        return true;
    }
    if (is_bad || !parse_decimal_i64(text, min, max, out)) {
        reply = reply_error(400, "invalid_parameter",
                            std::string(name) + " must be an integer in " + std::to_string(min) +
                                ".." + std::to_string(max));
        return false;
    }
    return true;
}

bool query_day(std::string_view query, std::string_view name, std::string& day, AdminReply& reply) {
    std::string text;
    bool is_bad = false;
    query_param(query, name, text, is_bad);
    if (is_bad || !parse_day(text, day)) {
        reply = reply_error(400, "invalid_parameter",
                            std::string(name) + " must be YYYY-MM-DD or Unix seconds");
        return false;
    }
    return true;
}

AdminReply usage_get(AdminDeps& deps, std::string_view query) {
    AdminReply reply;
    std::string unknown;
    if (!query_names_known(query, {"key_id", "since", "until"}, unknown)) {
        return reply_error(400, "invalid_parameter", "unknown parameter \"" + unknown + "\"");
    }
    int64_t key_id = 0;
    std::string since_day;
    std::string until_day;
    if (!query_int(query, "key_id", 0, INT64_MAX, key_id, reply) ||
        !query_day(query, "since", since_day, reply) ||
        !query_day(query, "until", until_day, reply)) {
        return reply;
    }
    const auto rows = deps.queries.usage_per_day(key_id, since_day, until_day);
    if (!rows.ok()) {
        return reply_storage_error(rows.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const DailyUsageRow& row : rows.value) {
        out.begin_object().key("key_id").number(row.key_id).key("day").string(row.day);
        out.key("requests").number(row.requests);
        out.key("prompt_tokens").number(row.prompt_tokens);
        out.key("completion_tokens").number(row.completion_tokens);
        out.key("total_tokens").number(row.total_tokens).end_object();
    }
    out.end_array().end_object();
    return reply_json(200, out.take());
}

void json_out_log(JsonOut& out, const UsageLogRow& row) {
    out.begin_object().key("id").number(row.id).key("ts_ms").number(row.ts_ms);
    out.key("key_id").number(row.key_id).key("channel_id").number(row.channel_id);
    out.key("model_requested").string(row.model_requested);
    out.key("model_sent").string(row.model_sent);
    out.key("endpoint").string(row.endpoint).key("status").number(row.status);
    out.key("prompt_tokens").number(row.prompt_tokens);
    out.key("completion_tokens").number(row.completion_tokens);
    out.key("total_tokens").number(row.total_tokens);
    out.key("usage_source").string(row.usage_source);
    out.key("end_reason").string(row.end_reason).key("attempts").number(row.attempts);
    out.key("latency_us").number(row.latency_us).key("ttfb_us").number(row.ttfb_us);
    out.key("bytes_in").number(row.bytes_in).key("bytes_out").number(row.bytes_out);
    out.key("request_id").string(row.request_id).end_object();
}

// Newest first. "next_before" is the cursor of the next (older) page: pass it as
// ?before=; null when this page was not full, so there is nothing older.
AdminReply logs_get(AdminDeps& deps, std::string_view query) {
    AdminReply reply;
    std::string unknown;
    if (!query_names_known(query, {"key_id", "limit", "before"}, unknown)) {
        return reply_error(400, "invalid_parameter", "unknown parameter \"" + unknown + "\"");
    }
    int64_t key_id = 0;
    int64_t limit = admin_logs_limit_default;
    int64_t before_id = 0;
    if (!query_int(query, "key_id", 0, INT64_MAX, key_id, reply) ||
        !query_int(query, "limit", 1, query_rows_max, limit, reply) ||
        !query_int(query, "before", 0, INT64_MAX, before_id, reply)) {
        return reply;
    }
    const auto rows = deps.queries.recent_logs(key_id, uint32_t(limit), before_id);
    if (!rows.ok()) {
        return reply_storage_error(rows.error);
    }
    RW_ASSERT(rows.value.size() <= uint64_t(limit));
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const UsageLogRow& row : rows.value) {
        json_out_log(out, row);
    }
    out.end_array().key("next_before");
    const bool is_full = !rows.value.empty() && rows.value.size() == uint64_t(limit);
    is_full ? out.number(rows.value.back().id) : out.null();
    out.end_object();
    return reply_json(200, out.take());
}

// "/admin/keys/12" with prefix "/admin/keys/" → 12. False when not a positive id.
bool path_id(std::string_view path, std::string_view prefix, int64_t& id) {
    if (!path.starts_with(prefix)) {
        return false;
    }
    return parse_decimal_i64(path.substr(prefix.size()), 1, INT64_MAX, id);
}

AdminReply method_not_allowed(std::string_view allow) {
    AdminReply reply = reply_error(405, "method_not_allowed", "method not allowed here");
    reply.extra_headers = "Allow: " + std::string(allow) + "\r\n";
    return reply;
}

AdminReply admin_route(AdminDeps& deps, const AdminRequest& request) {
    const Method method = request.method;
    int64_t id = 0;
    if (request.path == "/admin/keys") {
        if (method == Method::get) {
            return keys_list(deps);
        }
        if (method == Method::post) {
            return keys_create(deps, request.body);
        }
        return method_not_allowed("GET, POST");
    }
    if (path_id(request.path, "/admin/keys/", id)) {
        if (method == Method::get) {
            return keys_get(deps, id);
        }
        if (method == Method::patch) {
            return keys_patch(deps, id, request.body);
        }
        if (method == Method::delete_) {
            return keys_delete(deps, id);
        }
        return method_not_allowed("GET, PATCH, DELETE");
    }
    if (request.path == "/admin/channels") {
        if (method == Method::get) {
            return channels_list(deps);
        }
        if (method == Method::post) {
            return channels_create(deps, request.body);
        }
        return method_not_allowed("GET, POST");
    }
    if (path_id(request.path, "/admin/channels/", id)) {
        if (method == Method::get) {
            return channel_reply(deps, id, 200);
        }
        if (method == Method::patch) {
            return channels_patch(deps, id, request.body);
        }
        if (method == Method::delete_) {
            return channels_delete(deps, id);
        }
        return method_not_allowed("GET, PATCH, DELETE");
    }
    if (request.path == "/admin/usage" || request.path == "/admin/logs") {
        if (method != Method::get) {
            return method_not_allowed("GET");
        }
        return request.path == "/admin/usage" ? usage_get(deps, request.query)
                                              : logs_get(deps, request.query);
    }
    return reply_error(404, "not_found", "no such admin endpoint");
}

}  // namespace

// ---- Connections --------------------------------------------------------------------------

namespace {

using SteadyClock = std::chrono::steady_clock;

int remaining_ms(SteadyClock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    return left.count() <= 0 ? 0 : int(std::min<int64_t>(left.count(), INT32_MAX));
}

// Sends every byte before the deadline; false when the peer is gone or too slow.
bool send_all(int fd, std::string_view bytes, SteadyClock::time_point deadline) {
    while (!bytes.empty()) {
        // MSG_NOSIGNAL: a client that went away is EPIPE here, not SIGPIPE [send(2)].
        const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent > 0) {
            bytes.remove_prefix(size_t(sent));
            continue;
        }
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return false;
        }
        pollfd pfd{fd, POLLOUT, 0};
        const int wait_ms = remaining_ms(deadline);
        if (wait_ms == 0 || ::poll(&pfd, 1, wait_ms) == 0) {
            return false;
        }
    }
    return true;
}

// The header's credentials: "Bearer <token>" (scheme case-insensitive). Empty if absent.
std::string_view bearer_token(const ParsedRequest& request, bool& has_header) {
    const std::string_view value = request.find_header("authorization");
    has_header = !value.empty();
    if (value.size() < 7) {
        return {};
    }
    std::string scheme(value.substr(0, 7));
    for (char& c : scheme) {
        c = char(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (scheme != "bearer ") {
        return {};
    }
    std::string_view token = value.substr(7);
    while (!token.empty() && token.front() == ' ') {
        token.remove_prefix(1);
    }
    return token;
}

AdminReply reply_unauthorized(std::string_view code, std::string_view message) {
    AdminReply reply = reply_error(401, code, message);
    reply.extra_headers = "WWW-Authenticate: Bearer realm=\"ringway-admin\"\r\n";
    return reply;
}

// Everything one connection needs; owned by AdminServer::Impl.
struct AdminConnContext {
    const std::string& token;
    AdminDeps& deps;
    ChunkPool& pool;
    RequestParser& parser;
    int stop_fd;
};

// Checked at head time so an unauthenticated body is never read or parsed.
bool admin_authorize(const AdminConnContext& context, const ParsedRequest& request,
                     AdminReply& reply) {
    bool has_header = false;
    const std::string_view token = bearer_token(request, has_header);
    if (!has_header) {
        reply = reply_unauthorized("missing_admin_token",
                                   "missing Authorization: Bearer <RINGWAY_ADMIN_TOKEN>");
        return false;
    }
    if (!admin_token_matches(token, context.token)) {
        // The presented value is never logged, not even in part (RULES Security 3).
        RW_LOG_WARN("event=admin_auth_failed path_bytes=%zu", request.path.size());
        reply = reply_unauthorized("invalid_admin_token", "invalid admin token");
        return false;
    }
    return true;
}

// Reads and parses one request into `reply`. False when there is nothing to answer
// (peer gone, stop requested, socket error).
bool admin_read_request(AdminConnContext& context, int fd, SteadyClock::time_point deadline,
                        AdminReply& reply) {
    char buffer[admin_recv_bytes];
    for (;;) {
        const int wait_ms = remaining_ms(deadline);
        if (wait_ms == 0) {
            reply = reply_error(408, "request_timeout", "the admin request took too long");
            return true;
        }
        pollfd fds[2] = {{fd, POLLIN, 0}, {context.stop_fd, POLLIN, 0}};
        const int ready = ::poll(fds, 2, wait_ms);
        if (ready < 0 && errno != EINTR) {
            return false;
        }
        if (ready <= 0) {
            continue;
        }
        if (fds[1].revents != 0) {
            return false;
        }
        const ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            continue;
        }
        if (got <= 0) {
            return false;
        }
        // The parser copies what it keeps into the arena; `buffer` is reused next turn.
        std::string_view input(buffer, size_t(got));
        for (;;) {
            const ParseResult result = context.parser.feed(input);
            if (result.event == ParseEvent::need_more) {
                break;
            }
            if (result.event == ParseEvent::error) {
                reply =
                    reply_error(parse_error_status(result.error), parse_error_code(result.error),
                                parse_error_message(result.error));
                return true;
            }
            const ParsedRequest& request = context.parser.request();
            if (result.event == ParseEvent::head_complete) {
                input.remove_prefix(result.consumed_bytes);
                if (!admin_authorize(context, request, reply)) {
                    return true;
                }
                if (request.expects_continue &&
                    !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", deadline)) {
                    return false;
                }
                continue;
            }
            RW_ASSERT(result.event == ParseEvent::message_complete);
            reply = admin_route(context.deps,
                                {request.method, request.path, request.query, request.body});
            return true;
        }
    }
}

// Sends the reply with Connection: close, then drains what the client still sends for
// a moment: closing with unread input makes the kernel send RST, which can destroy the
// response before the client read it (nginx's lingering close).
void admin_send_reply(int fd, const AdminReply& reply, SteadyClock::time_point deadline) {
    char date_line[date_line_bytes + 1];
    format_date_line(date_line, int64_t(std::time(nullptr)));
    std::string out(reply.body.size() + reply.extra_headers.size() + 256, '\0');
    ResponseSpec spec{};
    spec.status = reply.status;
    spec.content_type = "application/json";
    spec.body = reply.body;
    spec.is_close = true;
    spec.extra_headers = reply.extra_headers;
    spec.date_line = std::string_view(date_line, date_line_bytes);
    const uint32_t written = write_response(out.data(), uint32_t(out.size()), spec);
    RW_ASSERT(written > 0);  // Sized from the body and headers above.
    out.resize(written);
    if (!send_all(fd, out, deadline)) {
        return;
    }
    ::shutdown(fd, SHUT_WR);
    const auto linger_deadline = SteadyClock::now() + std::chrono::milliseconds(admin_linger_ms);
    char sink[4096];
    uint32_t drained_bytes = 0;
    while (drained_bytes < admin_linger_bytes_max) {
        pollfd pfd{fd, POLLIN, 0};
        const int wait_ms = remaining_ms(linger_deadline);
        if (wait_ms == 0 || ::poll(&pfd, 1, wait_ms) <= 0) {
            return;
        }
        const ssize_t got = ::recv(fd, sink, sizeof(sink), 0);
        if (got <= 0) {
            return;
        }
        drained_bytes += uint32_t(got);
    }
}

std::string_view method_name(Method method) {
    switch (method) {
        case Method::get: return "GET";
        case Method::head: return "HEAD";
        case Method::post: return "POST";
        case Method::put: return "PUT";
        case Method::delete_: return "DELETE";
        case Method::options: return "OPTIONS";
        case Method::patch: return "PATCH";
        case Method::other: return "OTHER";
    }
    return "OTHER";
}

void admin_serve_connection(AdminConnContext& context, int fd) {
    const auto start = SteadyClock::now();
    const auto deadline = start + std::chrono::milliseconds(admin_connection_timeout_ms);
    Arena arena(&context.pool, admin_arena_bytes_max);
    context.parser.start(arena);
    AdminReply reply;
    if (admin_read_request(context, fd, deadline, reply)) {
        admin_send_reply(fd, reply, deadline);
        const ParsedRequest& request = context.parser.request();
        // Path only (bounded), never the query, headers or body.
        const int path_bytes = int(std::min<size_t>(request.path.size(), 80));
        RW_LOG_INFO("event=admin_request method=%s path=%.*s status=%u duration_ms=%lld",
                    std::string(method_name(request.method)).c_str(), path_bytes,
                    request.path.data(), reply.status,
                    (long long)std::chrono::duration_cast<std::chrono::milliseconds>(
                        SteadyClock::now() - start)
                        .count());
    }
    // Views into the arena (the parsed request) die here.
    arena.release();
}

}  // namespace

// ---- The server ---------------------------------------------------------------------------

struct AdminServer::Impl {
    Impl(const std::string& token_in, Writer& writer, Catalog& catalog, Queries& queries)
        : token(token_in),
          deps(writer, catalog, queries),
          pool(admin_chunk_count_max, admin_large_bytes_max),
          parser(ParserLimits{admin_request_line_bytes_max, admin_header_bytes_max,
                              admin_header_count_max, admin_body_bytes_max,
                              admin_chunk_ext_bytes_max}) {}

    std::string token;
    AdminDeps deps;
    ChunkPool pool;
    RequestParser parser;
};

AdminServer::AdminServer() = default;
AdminServer::~AdminServer() {
    stop();
}

namespace {

std::string address_text(const sockaddr_storage& address) {
    char host[INET6_ADDRSTRLEN] = {};
    char text[INET6_ADDRSTRLEN + 16];
    if (address.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        ::inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof(host));
        std::snprintf(text, sizeof(text), "[%s]:%u", host, ntohs(v6.sin6_port));
    } else {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        ::inet_ntop(AF_INET, &v4.sin_addr, host, sizeof(host));
        std::snprintf(text, sizeof(text), "%s:%u", host, ntohs(v4.sin_port));
    }
    return text;
}

// A listening socket on `listen`; the bound address (real port) in `bound`. -1 on error.
int admin_listen(const ListenAddress& listen, sockaddr_storage& bound, std::string& error) {
    const int fd =
        ::socket(listen.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int one = 1;
    socklen_t bound_bytes = sizeof(bound);
    if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        ::bind(fd, reinterpret_cast<const sockaddr*>(&listen.address), listen.address_bytes) != 0 ||
        ::listen(fd, int(admin_listen_backlog)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_bytes) != 0) {
        error = std::string("cannot listen on RINGWAY_ADMIN_LISTEN=") + listen.text + ": " +
                std::strerror(errno);
        if (fd >= 0) {
            ::close(fd);
        }
        return -1;
    }
    return fd;
}

}  // namespace

bool AdminServer::start(const Config& config, Writer& writer, Catalog& catalog, Queries& queries,
                        std::string& error) {
    RW_ASSERT(!thread_.joinable());
    RW_ASSERT(listen_fd_ < 0);
    if (config.admin_token.empty()) {
        RW_LOG_INFO("event=admin_disabled reason=\"RINGWAY_ADMIN_TOKEN is not set\"");
        return true;
    }
    sockaddr_storage bound{};
    const int fd = admin_listen(config.admin_listen, bound, error);
    if (fd < 0) {
        return false;
    }
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) {
        error = std::string("eventfd: ") + std::strerror(errno);
        ::close(fd);
        return false;
    }
    listen_fd_ = fd;
    listen_text_ = address_text(bound);
    port_ = bound.ss_family == AF_INET6
                ? ntohs(reinterpret_cast<const sockaddr_in6&>(bound).sin6_port)
                : ntohs(reinterpret_cast<const sockaddr_in&>(bound).sin_port);
    impl_ = std::make_unique<Impl>(config.admin_token, writer, catalog, queries);
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "rw-admin");
        run();
    });
    RW_LOG_INFO("event=admin_listening admin=%s", listen_text_.c_str());
    RW_ASSERT(port_ != 0);
    return true;
}

void AdminServer::stop() {
    if (thread_.joinable()) {
        const uint64_t one = 1;
        // An eventfd write of 8 bytes cannot be short; it fails only on counter overflow.
        [[maybe_unused]] const ssize_t written = ::write(stop_fd_, &one, sizeof(one));
        thread_.join();
    }
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
    }
    if (stop_fd_ >= 0) {
        ::close(stop_fd_);
    }
    listen_fd_ = -1;
    stop_fd_ = -1;
    impl_.reset();
}

// The admin thread: one connection at a time. A slow client delays other admin calls by
// at most admin_connection_timeout_ms; the data plane is never affected.
void AdminServer::run() {
    RW_ASSERT(impl_ != nullptr);
    AdminConnContext context{impl_->token, impl_->deps, impl_->pool, impl_->parser, stop_fd_};
    for (;;) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            RW_ASSERT(errno == EINTR);  // EFAULT/EINVAL cannot happen with these arguments.
            continue;
        }
        if (fds[1].revents != 0) {
            return;
        }
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            // EAGAIN (raced), ECONNABORTED: nothing to do. EMFILE/ENFILE: the connection
            // stays queued; poll would spin, so wait a moment.
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                RW_LOG_WARN("event=admin_accept_failed error=\"%s\"", std::strerror(errno));
                ::poll(nullptr, 0, 100);
            }
            continue;
        }
        admin_serve_connection(context, fd);
        ::close(fd);
    }
}

}  // namespace rw
