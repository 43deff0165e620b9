// storage/queries.h — read-only admin queries (control plane): usage per day or grouped,
// recent usage logs (paginated by id), prices, keys (never their hash) and channels
// (upstream key masked as "sk-…abcd"). Uses its own read-only connection, so admin reads never wait
// for the writer and never hold its lock (WAL readers do not block the writer).
// Thread-safe: one mutex around the connection.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "storage/aliases.h"
#include "storage/budget.h"
#include "storage/config.h"
#include "storage/db.h"
#include "storage/result.h"

namespace rw {

// Sums over a set of usage rows: tokens by kind (cached_input and cache_write are parts of
// prompt, reasoning of completion) and money in nano-USD.
struct UsageTotals {
    int64_t requests = 0;
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
    int64_t total_tokens = 0;
    int64_t cached_input_tokens = 0;
    int64_t cache_write_tokens = 0;
    int64_t reasoning_tokens = 0;
    int64_t cost_nano = 0;
    int64_t unpriced_requests = 0;  // Rows without a price in force.
};

struct DailyUsageRow {
    int64_t key_id = 0;
    std::string day;  // 'YYYY-MM-DD' (UTC)
    UsageTotals totals;
};

// GET /admin/usage?group_by=: which dimensions a row of sums is keyed by. Without model
// or channel the daily aggregates answer; with either, the rows themselves (model is the
// model sent upstream, the one its price was looked up by).
struct UsageGrouping {
    bool by_key = false;
    bool by_model = false;
    bool by_channel = false;
    bool by_day = false;
};

struct UsageGroupRow {
    int64_t key_id = 0;      // When by_key.
    std::string model;       // When by_model.
    int64_t channel_id = 0;  // When by_channel.
    std::string day;         // When by_day.
    UsageTotals totals;
};

// One price version as stored; money in nano-USD, has_* false for a kind without its own
// rate (NULL).
struct PriceInfo {
    int64_t id = 0;
    std::string model;
    int64_t channel_id = 0;  // 0: any channel.
    int64_t input_per_mtok = 0;
    int64_t output_per_mtok = 0;
    bool has_cached_input = false;
    int64_t cached_input_per_mtok = 0;
    bool has_cache_write = false;
    int64_t cache_write_per_mtok = 0;
    bool has_reasoning = false;
    int64_t reasoning_per_mtok = 0;
    int64_t per_request = 0;
    int64_t effective_from_s = 0;
    int64_t created_at_s = 0;
    int64_t deleted_at_s = 0;  // 0: live.
};

struct UsageLogRow {
    int64_t id = 0;
    int64_t ts_ms = 0;
    int64_t key_id = 0;
    int64_t channel_id = 0;
    std::string model_requested;
    std::string model_sent;
    std::string endpoint;
    int64_t status = 0;
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
    int64_t total_tokens = 0;
    std::string usage_source;
    std::string end_reason;
    int64_t attempts = 0;
    int64_t latency_us = 0;
    int64_t ttfb_us = 0;
    int64_t bytes_in = 0;
    int64_t bytes_out = 0;
    std::string request_id;
    int64_t cached_input_tokens = 0;
    int64_t cache_write_tokens = 0;
    int64_t reasoning_tokens = 0;
    int64_t cost_nano = 0;
    int64_t price_id = 0;  // 0: unpriced.
    std::string client_request_id;
    std::string traceparent;
    std::string upstream_request_id;
};

// The key_id filter of the usage and log queries that lets every key through. Key id 0 is a
// key like any other there: the system key (migration 11), which the idle probe's rows carry.
inline constexpr int64_t key_id_all = -1;

// GET /admin/logs filters: key_id_all, status 0 and an empty end_reason let any row through.
struct LogFilter {
    int64_t key_id = key_id_all;
    int64_t status = 0;      // The HTTP status the client received.
    std::string end_reason;  // "complete", "client_gone", ...
};

// One row's timings for GET /admin/latency (percentiles per day).
struct LatencySample {
    std::string day;  // 'YYYY-MM-DD' (UTC) of the row's start.
    int64_t latency_us = 0;
    int64_t ttfb_us = 0;  // 0: no byte arrived.
    int64_t status = 0;
};

struct KeyInfo {  // No hash, no secret: only what the admin API may show.
    int64_t id = 0;
    std::string name;
    std::string key_prefix;
    std::string status;
    bool has_quota_limit = false;
    int64_t quota_limit_tokens = 0;
    int64_t quota_used_tokens = 0;
    int64_t spend_nano = 0;  // SUM(usage_logs.cost_nano) of its rows (the invariant).
    int64_t expires_at_s = 0;
    bool allows_all_models = true;
    std::string models_json;
    int64_t rpm = 0;
    int64_t concurrency_max = 0;
    int64_t tpm = 0;
    std::string limits_json;  // JSON object of model -> {rpm, tpm}; empty: none (NULL).
    int64_t created_at_s = 0;
    std::string allowed_cidrs_json;  // JSON array; empty: any address (column NULL).
    bool has_budget = false;
    int64_t budget_nano = 0;
    std::string period;  // none, daily, weekly, monthly.
    bool is_strict = false;
    // The current period (UTC): its start and the next one's (0: none, lifetime), the
    // committed use in it (daily_usage) and its top-ups.
    int64_t period_start_s = 0;
    int64_t period_end_s = 0;
    int64_t period_used_tokens = 0;
    int64_t period_used_nano = 0;
    int64_t period_topup_nano = 0;
};

struct ChannelInfo {
    int64_t id = 0;
    std::string name;
    std::string kind;
    std::string base_url;
    std::string api_key_masked;  // "sk-…abcd"
    std::string models_json;
    std::string model_map_json;
    int64_t priority = 0;
    int64_t weight = 0;
    bool is_enabled = false;
    bool allow_private_network = false;
    std::string ca_file;
    std::string stream_usage;  // "inject" or "off"
    std::string probe_model;   // Empty: none.
    int64_t created_at_s = 0;
    bool auto_disable = true;
    std::string health_state;  // "up" or "down", as last persisted.
    std::string health_reason;
    int64_t health_since_ms = 0;
    std::string health_error;
};

// "sk-…abcd": the first 3 and last 4 bytes around an ellipsis; short keys show "…"
// plus at most a quarter of their length.
[[nodiscard]] std::string api_key_mask(std::string_view api_key);

class Queries {
public:
    [[nodiscard]] bool open(const StorageConfig& config, std::string& error);

    // Daily aggregates for key_id (key_id_all: every key; 0 is the system key) with
    // since_day <= day <= until_day ('YYYY-MM-DD'; empty = unbounded), ordered by day then key.
    [[nodiscard]] Result<std::vector<DailyUsageRow>> usage_per_day(int64_t key_id,
                                                                   std::string_view since_day,
                                                                   std::string_view until_day);
    // Newest first, the rows `filter` lets through; before_id 0 = from the newest. The next
    // page passes the last row's id as before_id. limit is clamped to query_rows_max.
    [[nodiscard]] Result<std::vector<UsageLogRow>> recent_logs(const LogFilter& filter,
                                                               uint32_t limit, int64_t before_id);
    // The timings of the newest `max_rows` rows started within since_day..until_day (same
    // filters as usage_per_day), newest first.
    [[nodiscard]] Result<std::vector<LatencySample>> latency_samples(int64_t key_id,
                                                                     std::string_view since_day,
                                                                     std::string_view until_day,
                                                                     uint32_t max_rows);
    // The rows (newest first, at most query_rows_max) whose ringway, client or provider
    // request id is `request_id`.
    [[nodiscard]] Result<std::vector<UsageLogRow>> logs_by_request_id(std::string_view request_id);
    // Sums grouped by `grouping` (UsageGrouping), same filters as usage_per_day, ordered
    // by the grouped columns (day, key, channel, model). At most 100000 groups.
    [[nodiscard]] Result<std::vector<UsageGroupRow>> usage_grouped(const UsageGrouping& grouping,
                                                                   int64_t key_id,
                                                                   std::string_view since_day,
                                                                   std::string_view until_day);
    // Price versions by id; deleted ones only when include_deleted.
    [[nodiscard]] Result<std::vector<PriceInfo>> list_prices(bool include_deleted);
    // One version, deleted or not.
    [[nodiscard]] Result<PriceInfo> get_price(int64_t id);
    [[nodiscard]] Result<std::vector<KeyInfo>> list_keys();
    [[nodiscard]] Result<KeyInfo> get_key(int64_t id);
    [[nodiscard]] Result<std::vector<ChannelInfo>> list_channels();
    [[nodiscard]] Result<ChannelInfo> get_channel(int64_t id);
    // Aliases by name (id 0), or the one with that id ("no alias with id N").
    [[nodiscard]] Result<std::vector<AliasInfo>> list_aliases(int64_t id);
    // The channel's upstream key, opened (control plane: the admin API's probe).
    [[nodiscard]] Result<std::string> channel_api_key(int64_t id);

private:
    std::mutex mutex_;
    Db db_;
    std::string secret_key_;  // Opens sealed channel keys to mask them.
};

}  // namespace rw
