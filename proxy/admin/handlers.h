// proxy/admin/handlers.h — what the admin API's endpoint handlers share: the request they
// are given, the reply they return, the dependencies they may use, the error replies, and
// one declaration per endpoint (keys.cc, channels.cc, prices.cc, aliases.cc, usage.cc). routes.cc
// picks the handler for a method and path; server.cc sends what it returns. Admin thread only.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/http_parse.h"
#include "proxy/admin/json.h"
#include "proxy/probe.h"

namespace rw {

class Catalog;
class ChannelHealthBoard;
class Queries;
class Writer;

struct AdminReply {
    uint16_t status = 200;
    std::string body;                                    // JSON, or a dashboard file.
    std::string extra_headers;                           // Complete header lines.
    std::string_view content_type = "application/json";  // Static text only.
};

// The parts of a request the handlers read; views into the connection's arena.
struct AdminRequest {
    Method method;
    std::string_view path;
    std::string_view query;
    std::string_view body;
    int64_t id = 0;  // The path's {id} (routes.cc); 0 when the path has none.
};

// What every handler may use. Touched by the admin thread only.
struct AdminDeps {
    AdminDeps(Writer& writer_in, Catalog& catalog_in, Queries& queries_in)
        : writer(writer_in), catalog(catalog_in), queries(queries_in) {}

    Writer& writer;
    Catalog& catalog;
    Queries& queries;
    ChannelHealthBoard* health = nullptr;  // The live channel health; null in tests without it.
    ChannelProbeFn probe = nullptr;        // POST /admin/channels/{id}/test; null: 503.
    void* probe_context = nullptr;
    simdjson::ondemand::parser json;  // Reused across requests; grows to the largest body seen.
};

// A reply with a JSON body.
[[nodiscard]] AdminReply admin_reply_json(uint16_t status, std::string body);
// An OpenAI-style error body through core/http_write.h, so every ringway error has one
// shape. `message` must never contain a secret.
[[nodiscard]] AdminReply admin_reply_error(uint16_t status, std::string_view code,
                                           std::string_view message);
// Errors from Catalog/Queries: "no key with id N" / "no channel with id N" are the
// storage layer's not-found messages (storage/keys.cc, storage/queries.cc) → 404; a
// duplicate secret is "key already exists" → 409. Everything else is a storage failure
// → 500, logged.
[[nodiscard]] AdminReply admin_reply_storage_error(const std::string& error);

// Reads `body` into `fields` with read(fields, key, value, error) per member; false with
// a 400 in `reply` when the body is not one JSON object or a member is refused.
template <class Fields, class Read>
bool admin_parse_fields(AdminDeps& deps, std::string_view body, Fields& fields, Read read,
                        AdminReply& reply) {
    std::string code;
    std::string error;
    const auto visit = [&](std::string_view key, simdjson::ondemand::value& value, std::string& e) {
        return read(fields, key, value, e);
    };
    if (!json_visit_object(deps.json, body, visit, code, error)) {
        reply = admin_reply_error(400, code, error);
        return false;
    }
    return true;
}

// ---- Endpoints -----------------------------------------------------------------------------
// Every handler has the route table's shape (AdminHandler, routes.h): it reads what it
// needs of `request` (request.id is the path's {id}) and returns the whole reply.

// keys.cc: POST, GET /admin/keys; GET, PATCH, DELETE /admin/keys/{id}.
AdminReply admin_keys_create(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_keys_list(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_keys_get(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_keys_patch(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_keys_delete(AdminDeps& deps, const AdminRequest& request);
// POST /admin/keys/{id}/topup (key_budget.cc).
AdminReply admin_keys_topup(AdminDeps& deps, const AdminRequest& request);

// channels.cc: POST, GET /admin/channels; GET, PATCH, DELETE /admin/channels/{id}.
AdminReply admin_channels_create(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_channels_list(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_channels_get(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_channels_patch(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_channels_delete(AdminDeps& deps, const AdminRequest& request);
// POST /admin/channels/{id}/test: probes the channel now (proxy/probe.h).
AdminReply admin_channels_test(AdminDeps& deps, const AdminRequest& request);

// prices.cc: POST, GET /admin/prices; GET, PATCH (a new version), DELETE /admin/prices/{id}.
AdminReply admin_prices_create(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_prices_list(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_prices_get(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_prices_patch(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_prices_delete(AdminDeps& deps, const AdminRequest& request);

// aliases.cc: POST, GET /admin/aliases; GET, PATCH, DELETE /admin/aliases/{id}.
AdminReply admin_aliases_create(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_aliases_list(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_aliases_get(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_aliases_patch(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_aliases_delete(AdminDeps& deps, const AdminRequest& request);

// usage.cc: GET /admin/usage (per day, or group_by=), GET /admin/logs (rows, newest first,
// filtered by status and end_reason), GET /admin/latency (percentiles per day).
AdminReply admin_usage_get(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_logs_get(AdminDeps& deps, const AdminRequest& request);
AdminReply admin_latency_get(AdminDeps& deps, const AdminRequest& request);

}  // namespace rw
