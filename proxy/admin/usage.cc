// proxy/admin/usage.cc — /admin/usage (daily totals per key from the aggregates the writer
// keeps, or sums grouped by key, model, channel and day with group_by=), /admin/logs
// (usage_logs rows, newest first, paged by id cursor, filtered by status and end_reason)
// and /admin/latency (latency and time-to-first-byte percentiles per day, from the rows). Tokens by
// kind, money as exact USD strings (cost_usd) from nano-USD integers. Read only, through Queries'
// read-only connection; parameters from the query string.
#include "proxy/admin/handlers.h"

#include <algorithm>
#include <map>
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
    out.key("cached_input_tokens").number(row.cached_input_tokens);
    out.key("cache_write_tokens").number(row.cache_write_tokens);
    out.key("reasoning_tokens").number(row.reasoning_tokens);
    out.key("cost_usd").string(json_usd(row.cost_nano)).key("price_id");
    row.price_id != 0 ? out.number(row.price_id) : out.null();  // null: unpriced.
    out.key("client_request_id").string(row.client_request_id);
    out.key("traceparent").string(row.traceparent);
    out.key("upstream_request_id").string(row.upstream_request_id);
    out.end_object();
}

// The sums of a usage row (either shape), after its grouping members.
void json_out_totals(JsonOut& out, const UsageTotals& totals) {
    out.key("requests").number(totals.requests);
    out.key("prompt_tokens").number(totals.prompt_tokens);
    out.key("completion_tokens").number(totals.completion_tokens);
    out.key("total_tokens").number(totals.total_tokens);
    out.key("cached_input_tokens").number(totals.cached_input_tokens);
    out.key("cache_write_tokens").number(totals.cache_write_tokens);
    out.key("reasoning_tokens").number(totals.reasoning_tokens);
    out.key("cost_usd").string(json_usd(totals.cost_nano));
    out.key("unpriced_requests").number(totals.unpriced_requests);
}

// "key,model" → the grouping; false for an unknown or repeated name, or none.
bool usage_grouping_parse(std::string_view text, UsageGrouping& grouping) {
    uint32_t count = 0;
    while (true) {
        const size_t comma = text.find(',');
        const std::string_view name = text.substr(0, comma);
        bool* flag = name == "key"       ? &grouping.by_key
                     : name == "model"   ? &grouping.by_model
                     : name == "channel" ? &grouping.by_channel
                     : name == "day"     ? &grouping.by_day
                                         : nullptr;
        if (flag == nullptr || *flag) {
            return false;
        }
        *flag = true;
        count += 1;
        if (comma == std::string_view::npos) {
            break;
        }
        text.remove_prefix(comma + 1);
    }
    RW_ASSERT(count >= 1);
    return true;
}

AdminReply usage_grouped_reply(AdminDeps& deps, const UsageGrouping& grouping, int64_t key_id,
                               const std::string& since_day, const std::string& until_day) {
    const auto rows = deps.queries.usage_grouped(grouping, key_id, since_day, until_day);
    if (!rows.ok()) {
        return admin_reply_storage_error(rows.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const UsageGroupRow& row : rows.value) {
        out.begin_object();
        if (grouping.by_key) {
            out.key("key_id").number(row.key_id);
        }
        if (grouping.by_model) {
            out.key("model").string(row.model);
        }
        if (grouping.by_channel) {
            out.key("channel_id").number(row.channel_id);
        }
        if (grouping.by_day) {
            out.key("day").string(row.day);
        }
        json_out_totals(out, row.totals);
        out.end_object();
    }
    out.end_array().end_object();
    return admin_reply_json(200, out.take());
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

// status=NNN and end_reason=NAME of /admin/logs into `filter`; false with a 400 in `reply`.
bool logs_filter_parse(std::string_view query, LogFilter& filter, AdminReply& reply) {
    if (!admin_query_int(query, "key_id", 0, INT64_MAX, filter.key_id, reply) ||
        !admin_query_int(query, "status", 100, 599, filter.status, reply)) {
        return false;
    }
    bool is_bad = false;
    admin_query_param(query, "end_reason", filter.end_reason, is_bad);
    const bool is_name = filter.end_reason.size() <= 32 &&
                         std::all_of(filter.end_reason.begin(), filter.end_reason.end(),
                                     [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
    if (is_bad || !is_name) {
        reply =
            admin_reply_error(400, "invalid_parameter",
                              "end_reason must be an end reason such as complete or client_gone");
        return false;
    }
    return true;
}

// Nearest-rank percentile of sorted `values` (not empty).
int64_t percentile(const std::vector<int64_t>& values, uint32_t percent) {
    RW_ASSERT(!values.empty() && percent >= 1 && percent <= 100);
    const size_t rank = (values.size() * percent + 99) / 100;  // ceil(n * p / 100) >= 1
    return values[rank - 1];
}

void json_out_percentiles(JsonOut& out, std::string_view name, std::vector<int64_t>& values) {
    std::sort(values.begin(), values.end());
    out.key(name).begin_object().key("count").number(int64_t(values.size()));
    for (const auto& [label, percent] :
         {std::pair<std::string_view, uint32_t>{"p50", 50}, {"p90", 90}, {"p99", 99}}) {
        out.key(label);
        values.empty() ? out.null() : out.number(percentile(values, percent));
    }
    out.end_object();
}

}  // namespace

AdminReply admin_usage_get(AdminDeps& deps, const AdminRequest& request) {
    const std::string_view query = request.query;
    AdminReply reply;
    std::string unknown;
    if (!admin_query_names_known(query, {"key_id", "since", "until", "group_by"}, unknown)) {
        return admin_reply_error(400, "invalid_parameter", "unknown parameter \"" + unknown + "\"");
    }
    int64_t key_id = key_id_all;  // No key_id: every key; 0 is the system key.
    std::string since_day;
    std::string until_day;
    if (!admin_query_int(query, "key_id", 0, INT64_MAX, key_id, reply) ||
        !admin_query_day(query, "since", since_day, reply) ||
        !admin_query_day(query, "until", until_day, reply)) {
        return reply;
    }
    std::string group_by;
    bool is_bad = false;
    if (admin_query_param(query, "group_by", group_by, is_bad)) {
        UsageGrouping grouping;
        if (is_bad || !usage_grouping_parse(group_by, grouping)) {
            return admin_reply_error(
                400, "invalid_parameter",
                "group_by must list one or more of key, model, channel, day (comma-separated)");
        }
        return usage_grouped_reply(deps, grouping, key_id, since_day, until_day);
    }
    const auto rows = deps.queries.usage_per_day(key_id, since_day, until_day);
    if (!rows.ok()) {
        return admin_reply_storage_error(rows.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const DailyUsageRow& row : rows.value) {
        out.begin_object().key("key_id").number(row.key_id).key("day").string(row.day);
        json_out_totals(out, row.totals);
        out.end_object();
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
    if (!admin_query_names_known(
            query, {"key_id", "limit", "before", "request_id", "status", "end_reason"}, unknown)) {
        return admin_reply_error(400, "invalid_parameter", "unknown parameter \"" + unknown + "\"");
    }
    std::string request_id;
    bool is_bad = false;
    if (admin_query_param(query, "request_id", request_id, is_bad)) {
        return admin_logs_by_request_id(deps, request_id, is_bad);
    }
    LogFilter filter;
    int64_t limit = admin_logs_limit_default;
    int64_t before_id = 0;
    if (!logs_filter_parse(query, filter, reply) ||
        !admin_query_int(query, "limit", 1, query_rows_max, limit, reply) ||
        !admin_query_int(query, "before", 0, INT64_MAX, before_id, reply)) {
        return reply;
    }
    const auto rows = deps.queries.recent_logs(filter, uint32_t(limit), before_id);
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

// Per day (oldest first): requests, and nearest-rank p50/p90/p99 of the whole request's
// latency and of the time to the first upstream byte (rows where one arrived), in
// microseconds, over the newest admin_latency_rows_max rows of the window ("truncated":
// the window held more). Rows are pruned after the retention, so old days have none.
AdminReply admin_latency_get(AdminDeps& deps, const AdminRequest& request) {
    const std::string_view query = request.query;
    AdminReply reply;
    std::string unknown;
    if (!admin_query_names_known(query, {"key_id", "since", "until"}, unknown)) {
        return admin_reply_error(400, "invalid_parameter", "unknown parameter \"" + unknown + "\"");
    }
    int64_t key_id = key_id_all;  // No key_id: every key; 0 is the system key.
    std::string since_day;
    std::string until_day;
    if (!admin_query_int(query, "key_id", 0, INT64_MAX, key_id, reply) ||
        !admin_query_day(query, "since", since_day, reply) ||
        !admin_query_day(query, "until", until_day, reply)) {
        return reply;
    }
    const auto rows =
        deps.queries.latency_samples(key_id, since_day, until_day, admin_latency_rows_max);
    if (!rows.ok()) {
        return admin_reply_storage_error(rows.error);
    }
    struct Day {
        std::vector<int64_t> latency_us;
        std::vector<int64_t> ttfb_us;
    };
    std::map<std::string, Day> days;  // Ordered: oldest first.
    for (const LatencySample& sample : rows.value) {
        Day& day = days[sample.day];
        day.latency_us.push_back(sample.latency_us);
        if (sample.ttfb_us > 0) {
            day.ttfb_us.push_back(sample.ttfb_us);
        }
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (auto& [name, day] : days) {
        out.begin_object().key("day").string(name);
        out.key("requests").number(int64_t(day.latency_us.size()));
        json_out_percentiles(out, "latency_us", day.latency_us);
        json_out_percentiles(out, "ttfb_us", day.ttfb_us);
        out.end_object();
    }
    out.end_array().key("truncated").boolean(rows.value.size() >= admin_latency_rows_max);
    out.end_object();
    return admin_reply_json(200, out.take());
}

}  // namespace rw
