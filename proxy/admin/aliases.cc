// proxy/admin/aliases.cc — /admin/aliases: gateway model aliases (storage/aliases.h), a name
// clients ask for that stands for an ordered list of concrete models. Writes go through
// Catalog, which reloads the snapshot before the reply, so the next request routes by the
// change. Admin thread.
#include <string>
#include <vector>

#include "core/log.h"
#include "proxy/admin/handlers.h"
#include "proxy/admin/json.h"
#include "storage/keys.h"
#include "storage/queries.h"

namespace rw {

namespace ondemand = simdjson::ondemand;

namespace {

struct AliasFields {
    bool has_name = false;
    bool has_models = false;
    std::string name;
    std::vector<std::string> models;
};

bool alias_field_read(AliasFields& fields, std::string_view key, ondemand::value& value,
                      std::string& error) {
    if (key == "name") {
        fields.has_name = true;
        return json_read_string(value, key, fields.name, error);
    }
    if (key == "models") {
        fields.has_models = true;
        return json_read_string_array(value, key, fields.models, error);
    }
    return json_unknown_field(key, error);
}

void json_out_alias(JsonOut& out, const AliasInfo& alias) {
    out.begin_object();
    out.key("id").number(alias.id).key("object").string("alias");
    out.key("name").string(alias.name).key("models");
    json_out_models(out, alias.models_json);
    out.key("created_at").number(alias.created_at_s);
    out.key("updated_at").number(alias.updated_at_s);
    out.end_object();
}

AdminReply alias_reply(AdminDeps& deps, int64_t id, uint16_t status) {
    const Result<std::vector<AliasInfo>> aliases = deps.queries.list_aliases(id);
    if (!aliases.ok()) {
        return admin_reply_storage_error(aliases.error);
    }
    JsonOut out;
    json_out_alias(out, aliases.value.front());
    return admin_reply_json(status, out.take());
}

// "alias already exists" is a 409; the rest as every storage error.
AdminReply alias_storage_error(const std::string& error) {
    if (error == "alias already exists") {
        return admin_reply_error(409, "alias_exists", error);
    }
    return admin_reply_storage_error(error);
}

}  // namespace

AdminReply admin_aliases_create(AdminDeps& deps, const AdminRequest& request) {
    AliasFields fields;
    AdminReply reply;
    if (!admin_parse_fields(deps, request.body, fields, alias_field_read, reply)) {
        return reply;
    }
    if (!fields.has_name || !fields.has_models) {
        return admin_reply_error(400, "missing_field",
                                 fields.has_name ? "models is required" : "name is required");
    }
    const AliasSpec spec{fields.name, json_string_array(fields.models)};
    if (const std::string error = alias_spec_check(spec); !error.empty()) {
        return admin_reply_error(400, "invalid_field", error);
    }
    const Result<int64_t> created = deps.catalog.create_alias(spec);
    if (!created.ok()) {
        return alias_storage_error(created.error);
    }
    RW_LOG_INFO("event=admin_alias_created id=%lld name=\"%s\"", (long long)created.value,
                spec.name.c_str());
    return alias_reply(deps, created.value, 201);
}

AdminReply admin_aliases_list(AdminDeps& deps, const AdminRequest& /*request*/) {
    const Result<std::vector<AliasInfo>> aliases = deps.queries.list_aliases(0);
    if (!aliases.ok()) {
        return admin_reply_storage_error(aliases.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const AliasInfo& alias : aliases.value) {
        json_out_alias(out, alias);
    }
    out.end_array().end_object();
    return admin_reply_json(200, out.take());
}

AdminReply admin_aliases_get(AdminDeps& deps, const AdminRequest& request) {
    return alias_reply(deps, request.id, 200);
}

// Renames the alias or replaces its model list (the members given).
AdminReply admin_aliases_patch(AdminDeps& deps, const AdminRequest& request) {
    AliasFields fields;
    AdminReply reply;
    if (!admin_parse_fields(deps, request.body, fields, alias_field_read, reply)) {
        return reply;
    }
    const Result<std::vector<AliasInfo>> current = deps.queries.list_aliases(request.id);
    if (!current.ok()) {
        return admin_reply_storage_error(current.error);
    }
    AliasSpec spec{current.value.front().name, current.value.front().models_json};
    if (fields.has_name) {
        spec.name = fields.name;
    }
    if (fields.has_models) {
        spec.models_json = json_string_array(fields.models);
    }
    if (const std::string error = alias_spec_check(spec); !error.empty()) {
        return admin_reply_error(400, "invalid_field", error);
    }
    std::string error;
    if (!deps.catalog.update_alias(request.id, spec, error)) {
        return alias_storage_error(error);
    }
    RW_LOG_INFO("event=admin_alias_updated id=%lld name=\"%s\"", (long long)request.id,
                spec.name.c_str());
    return alias_reply(deps, request.id, 200);
}

AdminReply admin_aliases_delete(AdminDeps& deps, const AdminRequest& request) {
    const Result<std::vector<AliasInfo>> current = deps.queries.list_aliases(request.id);
    if (!current.ok()) {
        return admin_reply_storage_error(current.error);
    }
    std::string error;
    if (!deps.catalog.delete_alias(request.id, error)) {
        return alias_storage_error(error);
    }
    RW_LOG_INFO("event=admin_alias_deleted id=%lld", (long long)request.id);
    JsonOut out;
    json_out_alias(out, current.value.front());
    return admin_reply_json(200, out.take());
}

}  // namespace rw
