// proxy/admin/channels.cc — /admin/channels: upstream channels created, listed, shown,
// changed and deleted. Every write passes admin_base_url_check (base_url.h) and storage's
// channel_spec_check first. The upstream key goes in and is never shown again: replies
// carry the masked form (sk-…abcd); a PATCH that keeps the key reads the stored secret
// on the writer's connection. Writes go through Catalog (snapshot reloaded before reply).
#include "proxy/admin/handlers.h"

#include <openssl/crypto.h>

#include <string>
#include <utility>
#include <vector>

#include "core/assert.h"
#include "core/log.h"
#include "proxy/admin/base_url.h"
#include "proxy/admin/json.h"
#include "proxy/channel_health.h"
#include "storage/db.h"
#include "storage/json_lite.h"
#include "storage/keys.h"
#include "storage/queries.h"
#include "storage/secrets.h"
#include "storage/writer.h"

namespace rw {

namespace ondemand = simdjson::ondemand;

namespace {

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
    bool has_auto_disable = false;
    bool has_stream_usage = false;
    bool has_probe_model = false;
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
    bool auto_disable = true;
    std::string stream_usage;
    std::string probe_model;
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
    if (key == "auto_disable") {
        fields.has_auto_disable = true;
        return json_read_bool(value, key, fields.auto_disable, error);
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
    if (key == "probe_model") {
        fields.has_probe_model = true;
        fields.probe_model.clear();
        return json_is_null(value) || json_read_string(value, key, fields.probe_model, error);
    }
    if (key == "stream_usage") {
        fields.has_stream_usage = true;
        return json_read_string(value, key, fields.stream_usage, error);
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
        if (secret_is_sealed(fields.api_key)) {
            error = "api_key must be the upstream's key, not a sealed value";
            return false;
        }
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
    if (fields.has_auto_disable) {
        spec.auto_disable = fields.auto_disable;
    }
    if (fields.has_probe_model) {
        spec.probe_model = fields.probe_model;
    }
    if (fields.has_stream_usage && !stream_usage_parse(fields.stream_usage, spec.stream_usage)) {
        error = "stream_usage must be inject or off";
        return false;
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

// "health": the live board's view when the gateway runs beside this API, else what the
// database last recorded. since is Unix seconds; rate_limited_ms / retry_in_ms are left.
void json_out_health(JsonOut& out, const ChannelInfo& channel, const ChannelHealthBoard* board) {
    out.key("health").begin_object();
    const HealthView view =
        board != nullptr ? board->view(channel.id, health_clock_ms()) : HealthView{};
    if (view.is_known) {
        const std::string_view state = view.is_down               ? "down"
                                       : view.rate_limited_ms > 0 ? "rate_limited"
                                                                  : "up";
        out.key("state").string(state);
        out.key("reason").string(health_reason_name(view.reason));
        out.key("since").number(view.since_unix_ms / 1000);
        out.key("last_error").string(view.last_error);
        out.key("rate_limited_ms").number(int64_t(view.rate_limited_ms));
        out.key("retry_in_ms").number(int64_t(view.retry_in_ms));
    } else {
        out.key("state").string(channel.health_state.empty() ? "up" : channel.health_state);
        out.key("reason").string(channel.health_reason);
        out.key("since").number(channel.health_since_ms / 1000);
        out.key("last_error").string(channel.health_error);
        out.key("rate_limited_ms").number(0).key("retry_in_ms").number(0);
    }
    out.end_object();
}

void json_out_channel(JsonOut& out, const ChannelInfo& channel, const ChannelHealthBoard* board) {
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
    out.key("stream_usage").string(channel.stream_usage);
    out.key("created_at").number(channel.created_at_s);
    out.key("auto_disable").boolean(channel.auto_disable);
    out.key("probe_model");
    channel.probe_model.empty() ? out.null() : out.string(channel.probe_model);
    json_out_health(out, channel, board);
    out.end_object();
}

// The channel as GET /admin/channels/{id} shows it, with `status`.
AdminReply channel_reply(AdminDeps& deps, int64_t id, uint16_t status) {
    const Result<ChannelInfo> channel = deps.queries.get_channel(id);
    if (!channel.ok()) {
        return admin_reply_storage_error(channel.error);
    }
    JsonOut out;
    json_out_channel(out, channel.value, deps.health);
    return admin_reply_json(status, out.take());
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

}  // namespace

AdminReply admin_channels_create(AdminDeps& deps, const AdminRequest& request) {
    ChannelFields fields;
    AdminReply reply;
    if (!admin_parse_fields(deps, request.body, fields, channel_field_read, reply)) {
        return reply;
    }
    for (const auto& [is_present, name] :
         {std::pair{fields.has_name, "name"}, std::pair{fields.has_kind, "kind"},
          std::pair{fields.has_base_url, "base_url"}, std::pair{fields.has_api_key, "api_key"}}) {
        if (!is_present) {
            return admin_reply_error(400, "missing_field", std::string(name) + " is required");
        }
    }
    ChannelSpec spec;
    std::string error;
    if (!channel_fields_apply(fields, spec, error)) {
        return admin_reply_error(400, "invalid_field", error);
    }
    error = channel_check(spec);
    if (!error.empty()) {
        return admin_reply_error(400, "invalid_field", error);
    }
    const Result<int64_t> created = deps.catalog.create_channel(spec);
    if (!created.ok()) {
        return admin_reply_storage_error(created.error);
    }
    RW_LOG_INFO("event=admin_channel_created id=%lld kind=%s", (long long)created.value,
                std::string(channel_kind_name(spec.kind)).c_str());
    return channel_reply(deps, created.value, 201);
}

AdminReply admin_channels_list(AdminDeps& deps, const AdminRequest&) {
    const Result<std::vector<ChannelInfo>> channels = deps.queries.list_channels();
    if (!channels.ok()) {
        return admin_reply_storage_error(channels.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const ChannelInfo& channel : channels.value) {
        json_out_channel(out, channel, deps.health);
    }
    out.end_array().end_object();
    return admin_reply_json(200, out.take());
}

AdminReply admin_channels_get(AdminDeps& deps, const AdminRequest& request) {
    return channel_reply(deps, request.id, 200);
}

AdminReply admin_channels_patch(AdminDeps& deps, const AdminRequest& request) {
    const int64_t id = request.id;
    ChannelFields fields;
    AdminReply reply;
    if (!admin_parse_fields(deps, request.body, fields, channel_field_read, reply)) {
        return reply;
    }
    const Result<ChannelInfo> current = deps.queries.get_channel(id);
    if (!current.ok()) {
        return admin_reply_storage_error(current.error);
    }
    ChannelSpec spec;
    std::string error;
    const ChannelInfo& info = current.value;
    if (!channel_kind_parse(info.kind, spec.kind)) {
        return admin_reply_storage_error("stored kind is unknown");
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
    spec.auto_disable = info.auto_disable;
    spec.probe_model = info.probe_model;
    if (!stream_usage_parse(info.stream_usage, spec.stream_usage)) {
        return admin_reply_storage_error("stored stream_usage is unknown");
    }
    if (!fields.has_api_key) {
        ChannelSecretRead read{id, {}};
        if (!deps.writer.execute(channel_secret_read, &read, error, false)) {
            return admin_reply_storage_error(error);
        }
        spec.api_key = std::move(read.api_key);
    }
    if (!channel_fields_apply(fields, spec, error)) {
        return admin_reply_error(400, "invalid_field", error);
    }
    error = channel_check(spec);
    if (!error.empty()) {
        return admin_reply_error(400, "invalid_field", error);
    }
    if (!deps.catalog.update_channel(id, spec, error)) {
        return admin_reply_storage_error(error);
    }
    OPENSSL_cleanse(spec.api_key.data(), spec.api_key.size());
    RW_LOG_INFO("event=admin_channel_updated id=%lld", (long long)id);
    return channel_reply(deps, id, 200);
}

AdminReply admin_channels_delete(AdminDeps& deps, const AdminRequest& request) {
    const int64_t id = request.id;
    std::string error;
    if (!deps.catalog.delete_channel(id, error)) {
        return admin_reply_storage_error(error);
    }
    RW_LOG_INFO("event=admin_channel_deleted id=%lld", (long long)id);
    JsonOut out;
    out.begin_object().key("id").number(id).key("object").string("channel");
    out.key("deleted").boolean(true).end_object();
    return admin_reply_json(200, out.take());
}

// Probes the channel now and answers with the outcome and the health it left.
AdminReply admin_channels_test(AdminDeps& deps, const AdminRequest& request) {
    const Result<ChannelInfo> channel = deps.queries.get_channel(request.id);
    if (!channel.ok()) {
        return admin_reply_storage_error(channel.error);
    }
    if (deps.probe == nullptr) {
        return admin_reply_error(503, "probe_unavailable", "the gateway's probe is not running");
    }
    Result<std::string> api_key = deps.queries.channel_api_key(request.id);
    if (!api_key.ok()) {
        return admin_reply_storage_error(api_key.error);
    }
    ProbeRequest probe{request.id,
                       ChannelKind::openai,
                       std::move(api_key.value),
                       channel.value.auto_disable,
                       channel.value.probe_model,
                       false};
    if (!channel_kind_parse(channel.value.kind, probe.kind)) {
        return admin_reply_storage_error("stored kind is unknown");
    }
    const ProbeOutcome outcome = deps.probe(deps.probe_context, probe);
    OPENSSL_cleanse(probe.api_key.data(), probe.api_key.size());
    const HealthView view =
        deps.health != nullptr ? deps.health->view(request.id, health_clock_ms()) : HealthView{};
    JsonOut out;
    out.begin_object().key("object").string("channel.probe");
    out.key("channel_id").number(request.id);
    out.key("result").string(outcome.is_ok ? "ok" : "failed");
    out.key("status").number(outcome.status).key("latency_ms").number(outcome.latency_ms);
    out.key("error").string(outcome.error);
    out.key("recorded").boolean(outcome.is_recorded);
    out.key("state").string(view.is_down               ? "down"
                            : view.rate_limited_ms > 0 ? "rate_limited"
                                                       : "up");
    out.end_object();
    return admin_reply_json(200, out.take());
}

}  // namespace rw
