// proxy/admin/usage.cc — /admin/usage (daily totals per key, from the aggregates the
// writer keeps) and /admin/logs (usage_logs rows, newest first, paged by id cursor). Read
// only, through Queries' read-only connection; parameters from the query string.
#include "proxy/admin/handlers.h"

#include <string>
#include <vector>

#include "core/assert.h"
#include "core/limits.h"
#include "proxy/admin/json.h"
#include "proxy/admin/routes.h"
#include "storage/queries.h"

namespace rw {

namespace {

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
    out.key("request_id").string(row.request_id);
    out.key("client_request_id").string(row.client_request_id);
    out.key("traceparent").string(row.traceparent);
    out.key("upstream_request_id").string(row.upstream_request_id).end_object();
}

// ?request_id=ID: the rows carrying it as ringway's, the client's or the provider's id
// (one in practice; a client may reuse its own ids). Not paged: next_before is null.
AdminReply admin_logs_by_request_id(AdminDeps& deps, const std::string& request_id, bool is_bad) {
    if (is_bad || request_id.empty() || request_id.size() > 256) {
        return admin_reply_error(400, "invalid_parameter",
                                 "request_id must be 1..256 bytes, percent-encoded");
    }
    const auto rows = deps.queries.logs_by_request_id(request_id);
    if (!rows.ok()) {
        return admin_reply_storage_error(rows.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const UsageLogRow& row : rows.value) {
        json_out_log(out, row);
    }
    out.end_array().key("next_before").null().end_object();
    return admin_reply_json(200, out.take());
}

}  // namespace

AdminReply admin_usage_get(AdminDeps& deps, const AdminRequest& request) {
    const std::string_view query = request.query;
    AdminReply reply;
    std::string unknown;
    if (!admin_query_names_known(query, {"key_id", "since", "until"}, unknown)) {
        return admin_reply_error(400, "invalid_parameter", "unknown parameter \"" + unknown + "\"");
    }
    int64_t key_id = 0;
    std::string since_day;
    std::string until_day;
    if (!admin_query_int(query, "key_id", 0, INT64_MAX, key_id, reply) ||
        !admin_query_day(query, "since", since_day, reply) ||
        !admin_query_day(query, "until", until_day, reply)) {
        return reply;
    }
    const auto rows = deps.queries.usage_per_day(key_id, since_day, until_day);
    if (!rows.ok()) {
        return admin_reply_storage_error(rows.error);
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
    return admin_reply_json(200, out.take());
}

// Newest first. "next_before" is the cursor of the next (older) page: pass it as
// ?before=; null when this page was not full, so there is nothing older.
AdminReply admin_logs_get(AdminDeps& deps, const AdminRequest& request) {
    const std::string_view query = request.query;
    AdminReply reply;
    std::string unknown;
    if (!admin_query_names_known(query, {"key_id", "limit", "before", "request_id"}, unknown)) {
        return admin_reply_error(400, "invalid_parameter", "unknown parameter \"" + unknown + "\"");
    }
    std::string request_id;
    bool is_bad = false;
    if (admin_query_param(query, "request_id", request_id, is_bad)) {
        return admin_logs_by_request_id(deps, request_id, is_bad);
    }
    int64_t key_id = 0;
    int64_t limit = admin_logs_limit_default;
    int64_t before_id = 0;
    if (!admin_query_int(query, "key_id", 0, INT64_MAX, key_id, reply) ||
        !admin_query_int(query, "limit", 1, query_rows_max, limit, reply) ||
        !admin_query_int(query, "before", 0, INT64_MAX, before_id, reply)) {
        return reply;
    }
    const auto rows = deps.queries.recent_logs(key_id, uint32_t(limit), before_id);
    if (!rows.ok()) {
        return admin_reply_storage_error(rows.error);
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
    return admin_reply_json(200, out.take());
}

}  // namespace rw
