// storage/queries.cc — admin reads over a read-only connection. Each call prepares its
// statement (control plane; clarity over speed), steps it to the end and copies rows
// out. Never selects keys.key_hash; channels' api_key leaves only masked.
#include "storage/queries.h"

#include <algorithm>

#include "core/assert.h"
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
    for (;;) {
        const StepStatus status = stmt.step();
        if (status == StepStatus::error) {
            error = db.last_error();
            return false;
        }
        if (status == StepStatus::done) {
            stmt.reset();
            return true;
        }
        read(stmt);
    }
}

constexpr const char* key_columns =
    "SELECT id, name, key_prefix, status, quota_limit, quota_used, expires_at, models, rpm,"
    " max_concurrency, created_at FROM keys";

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
    return key;
}

constexpr const char* channel_columns =
    "SELECT id, name, kind, base_url, api_key, models, model_map, priority, weight, enabled,"
    " allow_private_network, ca_file, created_at, auto_disable, health_state, health_reason,"
    " health_since_ms, health_error FROM channels";

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
    channel.auto_disable = stmt.column_int64(13) != 0;
    channel.health_state = stmt.column_text(14);
    channel.health_reason = stmt.column_text(15);
    channel.health_since_ms = stmt.column_int64(16);
    channel.health_error = stmt.column_text(17);
    return channel;
}

}  // namespace

Result<std::vector<DailyUsageRow>> Queries::usage_per_day(int64_t key_id,
                                                          std::string_view since_day,
                                                          std::string_view until_day) {
    using R = Result<std::vector<DailyUsageRow>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare("SELECT key_id, day, requests, prompt_tokens, completion_tokens,"
                     " total_tokens FROM daily_usage"
                     " WHERE (?1 = 0 OR key_id = ?1) AND (?2 IS NULL OR day >= ?2)"
                     " AND (?3 IS NULL OR day <= ?3) ORDER BY day, key_id LIMIT 100000",
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
                                         s.column_int64(2), s.column_int64(3), s.column_int64(4),
                                         s.column_int64(5)});
        },
        error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
}

namespace {

constexpr std::string_view log_columns =
    "SELECT id, ts_ms, key_id, channel_id, model_requested, model_sent, endpoint, status,"
    " prompt_tokens, completion_tokens, total_tokens, usage_source, end_reason, attempts,"
    " latency_us, ttfb_us, bytes_in, bytes_out, request_id, client_request_id, traceparent,"
    " upstream_request_id FROM usage_logs";

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
    return row;
}

}  // namespace

Result<std::vector<UsageLogRow>> Queries::recent_logs(int64_t key_id, uint32_t limit,
                                                      int64_t before_id) {
    using R = Result<std::vector<UsageLogRow>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare(std::string(log_columns) +
                         " WHERE (?1 = 0 OR key_id = ?1) AND (?2 = 0 OR id < ?2)"
                         " ORDER BY id DESC LIMIT ?3",
                     stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_int64(1, key_id);
    stmt.bind_int64(2, before_id);
    stmt.bind_int64(3, std::clamp<uint32_t>(limit, 1, query_rows_max));
    std::vector<UsageLogRow> rows;
    std::string error;
    const bool is_ok = query_rows(
        db_, stmt, [&rows](const Stmt& s) { rows.push_back(log_row_read(s)); }, error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
}

Result<std::vector<UsageLogRow>> Queries::logs_by_request_id(std::string_view request_id) {
    using R = Result<std::vector<UsageLogRow>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    // Three indexed lookups (the partial indexes need the != '' terms to be usable).
    if (!db_.prepare(std::string(log_columns) +
                         " WHERE request_id = ?1"
                         " OR (client_request_id = ?1 AND client_request_id != '')"
                         " OR (upstream_request_id = ?1 AND upstream_request_id != '')"
                         " ORDER BY id DESC LIMIT ?2",
                     stmt)) {
        return R::failure(db_.last_error());
    }
    stmt.bind_text(1, request_id);
    stmt.bind_int64(2, query_rows_max);
    std::vector<UsageLogRow> rows;
    std::string error;
    const bool is_ok = query_rows(
        db_, stmt, [&rows](const Stmt& s) { rows.push_back(log_row_read(s)); }, error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
}

Result<std::vector<KeyInfo>> Queries::list_keys() {
    using R = Result<std::vector<KeyInfo>>;
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt stmt;
    if (!db_.prepare(std::string(key_columns) + " ORDER BY id", stmt)) {
        return R::failure(db_.last_error());
    }
    std::vector<KeyInfo> rows;
    std::string error;
    const bool is_ok = query_rows(
        db_, stmt, [&rows](const Stmt& s) { rows.push_back(key_info_read(s)); }, error);
    return is_ok ? R::success(std::move(rows)) : R::failure(error);
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
