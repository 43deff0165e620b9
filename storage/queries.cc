// storage/queries.cc — admin reads over a read-only connection. Each call prepares its
// statement (control plane; clarity over speed), steps it to the end and copies rows
// out. Never selects keys.key_hash; channels' api_key leaves only masked.
#include "storage/queries.h"

#include <algorithm>

#include "core/assert.h"
#include "core/wall_clock.h"
#include "storage/secrets.h"

namespace rw {

std::string api_key_mask(std::string_view api_key) {
    if (api_key.size() >= 12) {
        return std::string(api_key.substr(0, 3)) + "\u2026" +
               std::string(api_key.substr(api_key.size() - 4));
    }
    const size_t shown = api_key.size() / 4;
    return "\u2026" + std::string(api_key.substr(api_key.size() - shown));
}

bool Queries::open(const StorageConfig& config, std::string& error) {
    std::lock_guard<std::mutex> lock(mutex_);
    RW_ASSERT(!db_.is_open());
    secret_key_ = config.secret_key;
    return db_.open(config, DbMode::read_only, error);
}

namespace {

// Steps `stmt` to the end, calling read(stmt) per row. False with db's error on failure.
template <class ReadRow>
bool query_rows(Db& db, Stmt& stmt, ReadRow read, std::string& error) {
    return db.rows(
        stmt,
        [&read](const Stmt& row) {
            read(row);
            return true;
        },
        error);
}

constexpr const char* key_columns =
    "SELECT id, name, key_prefix, status, quota_limit, quota_used, expires_at, models, rpm,"
    " max_concurrency, created_at, spend_nano, allowed_cidrs, tpm, limits, budget_nano,"
    " budget_period, strict, system FROM keys";

KeyInfo key_info_read(const Stmt& stmt) {
    KeyInfo key;
    key.id = stmt.column_int64(0);
    key.name = stmt.column_text(1);
    key.key_prefix = stmt.column_text(2);
    key.status = stmt.column_text(3);
    key.has_quota_limit = !stmt.column_is_null(4);
    key.quota_limit_tokens = stmt.column_int64(4);
    key.quota_used_tokens = stmt.column_int64(5);
    key.expires_at_s = stmt.column_int64(6);
    key.allows_all_models = stmt.column_is_null(7);
    key.models_json = stmt.column_text(7);
    key.rpm = stmt.column_int64(8);
    key.concurrency_max = stmt.column_int64(9);
    key.created_at_s = stmt.column_int64(10);
    key.spend_nano = stmt.column_int64(11);
    key.allowed_cidrs_json = stmt.column_text(12);  // NULL reads as empty: any address.
    key.tpm = stmt.column_int64(13);
    key.limits_json = stmt.column_text(14);  // NULL reads as empty: none.
    key.has_budget = !stmt.column_is_null(15);
    key.budget_nano = stmt.column_int64(15);
    key.period = stmt.column_text(16);
    key.is_strict = stmt.column_int64(17) != 0;
    if (stmt.column_int64(18) != 0) {
        key.status = "system";  // The probes' key (migration 11): no client can use it.
    }
    return key;
}

// The key's current period: bounds, committed use (daily_usage; lifetime sums for none)
// and top-ups.
bool key_period_fill(Db& db, KeyInfo& key, std::string& error) {
    BudgetPeriod period = BudgetPeriod::none;
    (void)budget_period_parse(key.period, period);  // The column's CHECK holds the names.
    const int64_t now_s = wall_clock_unix_ms() / 1000;
    const int64_t index = budget_period_index(period, now_s);
    key.period_start_s = budget_period_start_s(period, index);
    key.period_end_s = budget_period_next_start_s(period, now_s);
    char day[10];
    budget_day_text(key.period_start_s, day);
    Stmt stmt;
    if (!db.prepare("SELECT (SELECT COALESCE(SUM(total_tokens), 0) FROM daily_usage"
                    "   WHERE key_id = ?1 AND day >= ?2),"
                    " (SELECT COALESCE(SUM(cost_nano), 0) FROM daily_usage"
                    "   WHERE key_id = ?1 AND day >= ?2),"
                    " (SELECT COALESCE(SUM(amount_nano), 0) FROM key_topups"
                    "   WHERE key_id = ?1 AND created_at >= ?3)",
                    stmt)) {
        error = db.last_error();
        return false;
    }
    stmt.bind_int64(1, key.id);
    stmt.bind_text(2, period == BudgetPeriod::none ? std::string_view("0000-00-00")
                                                   : std::string_view(day, sizeof(day)));
    stmt.bind_int64(3, key.period_start_s);
    if (stmt.step() != StepStatus::row) {
        error = db.last_error();
        return false;
    }
    key.period_used_tokens = stmt.column_int64(0);
    key.period_used_nano = stmt.column_int64(1);
    key.period_topup_nano = stmt.column_int64(2);
    stmt.reset();
    return true;
}

constexpr const char* channel_columns =
    "SELECT id, name, kind, base_url, api_key, models, model_map, priority, weight, enabled,"
    " allow_private_network, ca_file, created_at, stream_usage, auto_disable, health_state,"
    " health_reason, health_since_ms, health_error, probe_model FROM channels";

ChannelInfo channel_info_read(const Stmt& stmt, std::string_view secret_key) {
    ChannelInfo channel;
    channel.id = stmt.column_int64(0);
    channel.name = stmt.column_text(1);
    channel.kind = stmt.column_text(2);
    channel.base_url = stmt.column_text(3);
    std::string plain;
    std::string ignored;
    channel.api_key_masked = secret_open(secret_key, stmt.column_text(4), plain, ignored)
                                 ? api_key_mask(plain)  // The secret stops here.
                                 : std::string("(sealed)");
    channel.models_json = stmt.column_text(5);
    channel.model_map_json = stmt.column_text(6);
    channel.priority = stmt.column_int64(7);
    channel.weight = stmt.column_int64(8);
    channel.is_enabled = stmt.column_int64(9) != 0;
    channel.allow_private_network = stmt.column_int64(10) != 0;
    channel.ca_file = stmt.column_text(11);
    channel.created_at_s = stmt.column_int64(12);
    channel.stream_usage = stmt.column_text(13);
    channel.auto_disable = stmt.column_int64(14) != 0;
    channel.health_state = stmt.column_text(15);
    channel.health_reason = stmt.column_text(16);
    channel.health_since_ms = stmt.column_int64(17);
    channel.health_error = stmt.column_text(18);
    channel.probe_model = stmt.column_text(19);
    return channel;
}

// The sums every usage query selects, in this order, starting at column `first`.
constexpr const char* daily_sums =
    "SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),"
    " SUM(cached_input_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), SUM(cost_nano),"
    " SUM(unpriced_requests)";
constexpr const char* log_sums =
    "COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),"
    " SUM(cached_input_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), SUM(cost_nano),"
    " SUM(CASE WHEN price_id IS NULL THEN 1 ELSE 0 END)";

// A usage_logs row's UTC day, the first ms of day ?2 / the first ms after day ?3, and the
// two day parameters as a NULL test can name them, in the connection's SQL (PostgreSQL
// sessions run in UTC: Db::pg_session_setup; a bare `$2 IS NULL` has no type there).
struct DaySql {
    const char* day_of_row;
    const char* since_ms;
    const char* until_ms;
    const char* since_day;
    const char* until_day;
};
constexpr DaySql day_sql_sqlite{"strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')",
                                "strftime('%s', ?2) * 1000", "(strftime('%s', ?3) + 86400) * 1000",
                                "?2", "?3"};
constexpr DaySql day_sql_postgres{"to_char(to_timestamp(ts_ms / 1000), 'YYYY-MM-DD')",
                                  "extract(epoch FROM CAST(?2 AS date)) * 1000",
                                  "(extract(epoch FROM CAST(?3 AS date)) + 86400) * 1000",
                                  "CAST(?2 AS text)", "CAST(?3 AS text)"};

const DaySql& day_sql(const Db& db) {
    return db.is_postgres() ? day_sql_postgres : day_sql_sqlite;
}

// The daily aggregates' day window (?2..?3, inclusive; NULL: unbounded). The NULL tests
// name the parameters typed: PostgreSQL cannot type a bare `$2 IS NULL` bound to a day.
std::string daily_days_where(const DaySql& days) {
    return std::string(" AND (") + days.since_day + " IS NULL OR day >= ?2) AND (" +
           days.until_day + " IS NULL OR day <= ?3)";
}

UsageTotals usage_totals_read(const Stmt& stmt, int first) {
    UsageTotals totals;
    totals.requests = stmt.column_int64(first);
    totals.prompt_tokens = stmt.column_int64(first + 1);
    totals.completion_tokens = stmt.column_int64(first + 2);
    totals.total_tokens = stmt.column_int64(first + 3);
    totals.cached_input_tokens = stmt.column_int64(first + 4);
    totals.cache_write_tokens = stmt.column_int64(first + 5);
    totals.reasoning_tokens = stmt.column_int64(first + 6);
    totals.cost_nano = stmt.column_int64(first + 7);
    totals.unpriced_requests = stmt.column_int64(first + 8);
    return totals;
}

// SELECT ... GROUP BY for usage_grouped, from fixed fragments only (no caller text).
// Columns: key_id, model, channel_id, day (constants where not grouped), then the sums.
std::string usage_grouped_sql(const UsageGrouping& grouping, const DaySql& days) {
    const bool is_from_logs = grouping.by_model || grouping.by_channel;
    const char* day = is_from_logs ? days.day_of_row : "day";
    std::string sql = "SELECT ";
    sql += grouping.by_key ? "key_id" : "0";
    sql += grouping.by_model ? ", model_sent" : ", ''";
    sql += grouping.by_channel ? ", channel_id" : ", 0";
    sql += grouping.by_day ? std::string(", ") + day : ", ''";
    sql += ", ";
    sql += is_from_logs ? log_sums : daily_sums;
    // Days are UTC calendar days; a log row's day is its start's, as the writer files it.
    sql += is_from_logs
               ? std::string(" FROM usage_logs WHERE (?1 < 0 OR key_id = ?1)") + " AND (" +
                     days.since_day + " IS NULL OR ts_ms >= " + days.since_ms + ")" + " AND (" +
                     days.until_day + " IS NULL OR ts_ms < " + days.until_ms + ")"
               : " FROM daily_usage WHERE (?1 < 0 OR key_id = ?1)" + daily_days_where(days);
    std::string group;
    const auto add = [&group](const char* column) {
        group += group.empty() ? "" : ", ";
        group += column;
    };
    if (grouping.by_day) {
        add("4");
    }
    if (grouping.by_key) {
        add("1");
    }
    if (grouping.by_channel) {
        add("3");
    }
    if (grouping.by_model) {
        add("2");
    }
    if (!group.empty()) {
        sql += " GROUP BY " + group + " ORDER BY " + group;
    }
    return sql + " LIMIT 100000";
}

constexpr const char* price_columns =
    "SELECT id, model, channel_id, input_per_mtok, output_per_mtok, cached_input_per_mtok,"
    " cache_write_per_mtok, reasoning_per_mtok, per_request, effective_from, created_at,"
    " deleted_at FROM prices";

PriceInfo price_info_read(const Stmt& stmt) {
    PriceInfo price;
    price.id = stmt.column_int64(0);
    price.model = stmt.column_text(1);
    price.channel_id = stmt.column_int64(2);
    price.input_per_mtok = stmt.column_int64(3);
    price.output_per_mtok = stmt.column_int64(4);
    price.has_cached_input = !stmt.column_is_null(5);
    price.cached_input_per_mtok = stmt.column_int64(5);
    price.has_cache_write = !stmt.column_is_null(6);
    price.cache_write_per_mtok = stmt.column_int64(6);
    price.has_reasoning = !stmt.column_is_null(7);
    price.reasoning_per_mtok = stmt.column_int64(7);
    price.per_request = stmt.column_int64(8);
    price.effective_from_s = stmt.column_int64(9);
    price.created_at_s = stmt.column_int64(10);
    price.deleted_at_s = stmt.column_int64(11);
    return price;
}

}  // namespace

Result<std::vector<UsageGroupRow>> Queries::usage_grouped(const UsageGrouping& grouping,
                                                          int64_t key_id,
                                                          std::string_view since_day,
                                                          std::string_view until_day) {
    using R = Result<std::vector<UsageGroupRow>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare(usage_grouped_sql(grouping, day_sql(db_)), stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, key_id);
    stmt.bind_text_or_null(2, since_day, since_day.empty());
    stmt.bind_text_or_null(3, until_day, until_day.empty());
    std::vector<UsageGroupRow> rows;
    std::string error;
    const bool is_ok = query_rows(
        db_, stmt,
        [&rows](const Stmt& row_stmt) {
            UsageGroupRow row;
            row.key_id = row_stmt.column_int64(0);
            row.model = row_stmt.column_text(1);
            row.channel_id = row_stmt.column_int64(2);
            row.day = row_stmt.column_text(3);
            row.totals = usage_totals_read(row_stmt, 4);
            if (row.totals.requests > 0) {  // An ungrouped sum over no rows is one NULL row.
                rows.push_back(std::move(row));
            }
        },
        error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
}

Result<std::vector<PriceInfo>> Queries::list_prices(bool include_deleted) {
    using R = Result<std::vector<PriceInfo>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare(
            std::string(price_columns) +
                (include_deleted ? " ORDER BY id" : " WHERE deleted_at IS NULL ORDER BY id"),
            stmt)) {
        return R::failure(db_.last_error());
    }
    std::vector<PriceInfo> rows;
    std::string error;
    const bool is_ok = query_rows(
        db_, stmt, [&rows](const Stmt& row) { rows.push_back(price_info_read(row)); }, error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
}

Result<PriceInfo> Queries::get_price(int64_t id) {
    using R = Result<PriceInfo>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare(std::string(price_columns) + " WHERE id = ?1", stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, id);
    std::vector<PriceInfo> rows;
    std::string error;
    if (!query_rows(
            db_, stmt, [&rows](const Stmt& row) { rows.push_back(price_info_read(row)); }, error)) {
        return R::failure(error);
    }
    if (rows.empty()) {
        return R::failure("no price with id " + std::to_string(id));
    }
    return R::success(std::move(rows.front()));
}

Result<std::vector<DailyUsageRow>> Queries::usage_per_day(int64_t key_id,
                                                          std::string_view since_day,
                                                          std::string_view until_day) {
    using R = Result<std::vector<DailyUsageRow>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    // daily_usage holds a row per model and channel too; the admin view is per key-day.
    if (!db_.prepare(std::string("SELECT key_id, day, sum(requests), sum(prompt_tokens),"
                                 " sum(completion_tokens), sum(total_tokens),"
                                 " sum(cached_input_tokens), sum(cache_write_tokens),"
                                 " sum(reasoning_tokens), sum(cost_nano), sum(unpriced_requests)"
                                 " FROM daily_usage WHERE (?1 < 0 OR key_id = ?1)") +
                         daily_days_where(day_sql(db_)) +
                         " GROUP BY key_id, day ORDER BY day, key_id LIMIT 100000",
                     stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, key_id);
    stmt.bind_text_or_null(2, since_day, since_day.empty());
    stmt.bind_text_or_null(3, until_day, until_day.empty());
    std::vector<DailyUsageRow> rows;
    std::string error;
    const bool is_ok = query_rows(
        db_, stmt,
        [&rows](const Stmt& s) {
            rows.push_back(DailyUsageRow{s.column_int64(0), std::string(s.column_text(1)),
                                         usage_totals_read(s, 2)});
        },
        error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
}

namespace {

// "rw-SHARD-MS-SEQUENCE" (decimal shard, lower-case hex milliseconds and sequence), as
// proxy/request.cc request_id_make writes it: the only ids usage_logs.request_id holds.
bool request_id_is_ringways(std::string_view id) {
    if (!id.starts_with("rw-")) {
        return false;
    }
    int field = 0;
    size_t digits = 0;
    for (const char c : id.substr(3)) {
        if (c == '-') {
            if (digits == 0 || ++field > 2) {
                return false;
            }
            digits = 0;
        } else if ((c >= '0' && c <= '9') || (field > 0 && c >= 'a' && c <= 'f')) {
            digits++;
        } else {
            return false;
        }
    }
    return field == 2 && digits > 0;
}

constexpr std::string_view log_columns =
    "SELECT id, ts_ms, key_id, channel_id, model_requested, model_sent, endpoint, status,"
    " prompt_tokens, completion_tokens, total_tokens, usage_source, end_reason, attempts,"
    " latency_us, ttfb_us, bytes_in, bytes_out, request_id, client_request_id, traceparent,"
    " upstream_request_id, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_nano,"
    " price_id FROM usage_logs";

UsageLogRow log_row_read(const Stmt& s) {
    UsageLogRow row;
    row.id = s.column_int64(0);
    row.ts_ms = s.column_int64(1);
    row.key_id = s.column_int64(2);
    row.channel_id = s.column_int64(3);
    row.model_requested = s.column_text(4);
    row.model_sent = s.column_text(5);
    row.endpoint = s.column_text(6);
    row.status = s.column_int64(7);
    row.prompt_tokens = s.column_int64(8);
    row.completion_tokens = s.column_int64(9);
    row.total_tokens = s.column_int64(10);
    row.usage_source = s.column_text(11);
    row.end_reason = s.column_text(12);
    row.attempts = s.column_int64(13);
    row.latency_us = s.column_int64(14);
    row.ttfb_us = s.column_int64(15);
    row.bytes_in = s.column_int64(16);
    row.bytes_out = s.column_int64(17);
    row.request_id = s.column_text(18);
    row.client_request_id = s.column_text(19);
    row.traceparent = s.column_text(20);
    row.upstream_request_id = s.column_text(21);
    row.cached_input_tokens = s.column_int64(22);
    row.cache_write_tokens = s.column_int64(23);
    row.reasoning_tokens = s.column_int64(24);
    row.cost_nano = s.column_int64(25);
    row.price_id = s.column_int64(26);  // NULL reads as 0 = unpriced.
    return row;
}

}  // namespace

Result<std::vector<UsageLogRow>> Queries::recent_logs(const LogFilter& filter, uint32_t limit,
                                                      int64_t before_id) {
    using R = Result<std::vector<UsageLogRow>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare(std::string(log_columns) +
                         " WHERE (?1 < 0 OR key_id = ?1) AND (?2 = 0 OR id < ?2)"
                         " AND (?4 = 0 OR status = ?4) AND (?5 = '' OR end_reason = ?5)"
                         " ORDER BY id DESC LIMIT ?3",
                     stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, filter.key_id);
    stmt.bind_int64(2, before_id);
    stmt.bind_int64(3, std::clamp<uint32_t>(limit, 1, query_rows_max));
    stmt.bind_int64(4, filter.status);
    stmt.bind_text(5, filter.end_reason);
    std::vector<UsageLogRow> rows;
    std::string error;
    const bool is_ok = query_rows(
        db_, stmt, [&rows](const Stmt& s) { rows.push_back(log_row_read(s)); }, error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
}

Result<std::vector<LatencySample>> Queries::latency_samples(int64_t key_id,
                                                            std::string_view since_day,
                                                            std::string_view until_day,
                                                            uint32_t max_rows) {
    using R = Result<std::vector<LatencySample>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    // Days are UTC; until_day is inclusive (its rows start before the next midnight).
    const DaySql& days = day_sql(db_);
    if (!db_.prepare(std::string("SELECT ") + days.day_of_row +
                         ", latency_us, ttfb_us, status FROM usage_logs"
                         " WHERE (?1 < 0 OR key_id = ?1) AND (" +
                         days.since_day + " IS NULL OR ts_ms >= " + days.since_ms + ") AND (" +
                         days.until_day + " IS NULL OR ts_ms < " + days.until_ms +
                         ") ORDER BY id DESC LIMIT ?4",
                     stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, key_id);
    stmt.bind_text_or_null(2, since_day, since_day.empty());
    stmt.bind_text_or_null(3, until_day, until_day.empty());
    stmt.bind_int64(4, max_rows);
    std::vector<LatencySample> rows;
    std::string error;
    const bool is_ok = query_rows(
        db_, stmt,
        [&rows](const Stmt& row_stmt) {
            rows.push_back(LatencySample{std::string(row_stmt.column_text(0)),
                                         row_stmt.column_int64(1), row_stmt.column_int64(2),
                                         row_stmt.column_int64(3)});
        },
        error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
}

Result<std::vector<UsageLogRow>> Queries::logs_by_request_id(std::string_view request_id) {
    using R = Result<std::vector<UsageLogRow>>;
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<UsageLogRow> rows;
    std::string error;
    auto read_rows = [&](const std::string& sql, uint32_t limit) {
        Stmt stmt;
        if (!db_.prepare(sql.c_str(), stmt)) {
            error = db_.last_error();
            return false;
        }
        stmt.bind_text(1, request_id);
        stmt.bind_int64(2, limit);
        return query_rows(
            db_, stmt, [&rows](const Stmt& s) { rows.push_back(log_row_read(s)); }, error);
    };
    // The client's and the provider's ids: indexed (the partial indexes need the != '' terms
    // to be usable).
    if (!read_rows(std::string(log_columns) +
                       " WHERE (client_request_id = ?1 AND client_request_id != '')"
                       " OR (upstream_request_id = ?1 AND upstream_request_id != '')"
                       " ORDER BY id DESC LIMIT ?2",
                   query_rows_max)) {
        return R::failure(error);
    }
    // ringway's own id (SQLite: not indexed since migration 13): one row per id, read from the
    // newest row back until it is found. An id not of ringway's shape is no row's own.
    if (request_id_is_ringways(request_id)) {
        const size_t indexed_rows = rows.size();
        if (!read_rows(
                std::string(log_columns) + " WHERE request_id = ?1 ORDER BY id DESC LIMIT ?2", 1)) {
            return R::failure(error);
        }
        if (rows.size() > indexed_rows) {
            const int64_t found_id = rows.back().id;
            if (std::any_of(rows.begin(), rows.begin() + ptrdiff_t(indexed_rows),
                            [found_id](const UsageLogRow& row) { return row.id == found_id; })) {
                rows.pop_back();  // Its client's or provider's id is the same text.
            }
        }
        std::sort(rows.begin(), rows.end(),
                  [](const UsageLogRow& a, const UsageLogRow& b) { return a.id > b.id; });
        if (rows.size() > size_t(query_rows_max)) {
            rows.resize(size_t(query_rows_max));
        }
    }
    return R::success(std::move(rows));
}

Result<std::vector<KeyInfo>> Queries::list_keys() {
    using R = Result<std::vector<KeyInfo>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    // The system key (the probes', migration 11) is no client's: not listed.
    if (!db_.prepare(std::string(key_columns) + " WHERE system = 0 ORDER BY id", stmt)) {
        return R::failure(db_.last_error());
    }
    std::vector<KeyInfo> rows;
    std::string error;
    if (!query_rows(
            db_, stmt, [&rows](const Stmt& s) { rows.push_back(key_info_read(s)); }, error)) {
        return R::failure(error);
    }
    for (KeyInfo& key : rows) {
        if (!key_period_fill(db_, key, error)) {
            return R::failure(error);
        }
    }
    return R::success(std::move(rows));
}

Result<KeyInfo> Queries::get_key(int64_t id) {
    using R = Result<KeyInfo>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare(std::string(key_columns) + " WHERE id = ?1", stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, id);
    std::vector<KeyInfo> rows;
    std::string error;
    if (!query_rows(
            db_, stmt, [&rows](const Stmt& s) { rows.push_back(key_info_read(s)); }, error)) {
        return R::failure(error);
    }
    if (rows.empty()) {
        return R::failure("no key with id " + std::to_string(id));
    }
    if (!key_period_fill(db_, rows.front(), error)) {
        return R::failure(error);
    }
    return R::success(std::move(rows.front()));
}

Result<std::vector<ChannelInfo>> Queries::list_channels() {
    using R = Result<std::vector<ChannelInfo>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare(std::string(channel_columns) + " ORDER BY id", stmt)) {
        return R::failure(db_.last_error());
    }
    std::vector<ChannelInfo> rows;
    std::string error;
    const bool is_ok = query_rows(
        db_, stmt, [&](const Stmt& s) { rows.push_back(channel_info_read(s, secret_key_)); },
        error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
}

Result<ChannelInfo> Queries::get_channel(int64_t id) {
    using R = Result<ChannelInfo>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare(std::string(channel_columns) + " WHERE id = ?1", stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, id);
    std::vector<ChannelInfo> rows;
    std::string error;
    if (!query_rows(
            db_, stmt, [&](const Stmt& s) { rows.push_back(channel_info_read(s, secret_key_)); },
            error)) {
        return R::failure(error);
    }
    if (rows.empty()) {
        return R::failure("no channel with id " + std::to_string(id));
    }
    return R::success(std::move(rows.front()));
}

Result<std::string> Queries::channel_api_key(int64_t id) {
    using R = Result<std::string>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare("SELECT api_key FROM channels WHERE id = ?1", stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, id);
    std::vector<std::string> sealed;
    std::string error;
    if (!query_rows(
            db_, stmt, [&](const Stmt& s) { sealed.emplace_back(s.column_text(0)); }, error)) {
        return R::failure(error);
    }
    if (sealed.empty()) {
        return R::failure("no channel with id " + std::to_string(id));
    }
    std::string plain;
    if (!secret_open(secret_key_, sealed.front(), plain, error)) {
        return R::failure("channel " + std::to_string(id) + ": " + error);
    }
    return R::success(std::move(plain));
}

}  // namespace rw
