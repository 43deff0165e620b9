// storage/migrations.cc — schema text and the migration runner. Each migration is a
// block of SQL applied in order inside one BEGIN IMMEDIATE with the user_version bump;
// append new ones, never edit a released one. Run on the writer's connection at startup.
#include "storage/migrations.h"

#include <cstdio>
#include <iterator>

#include "core/assert.h"

namespace rw {

namespace {

// Why no FOREIGN KEY on usage_logs/daily_usage: a log row must always be insertable —
// a key or channel deleted while its records sit in a queue would otherwise wedge the
// writer on a constraint error forever, and a record is never dropped. Keys are revoked,
// not deleted, so the join still works for reporting.
constexpr const char* migration_sql[] = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE keys (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL,
    key_hash        BLOB    NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix      TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    quota_limit     INTEGER CHECK (quota_limit IS NULL OR quota_limit >= 0),
    quota_used      INTEGER NOT NULL DEFAULT 0,
    expires_at      INTEGER,
    models          TEXT,
    rpm             INTEGER NOT NULL DEFAULT 0 CHECK (rpm >= 0),
    max_concurrency INTEGER NOT NULL DEFAULT 0 CHECK (max_concurrency >= 0),
    created_at      INTEGER NOT NULL
);
CREATE TABLE channels (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT    NOT NULL,
    kind                  TEXT    NOT NULL
                          CHECK (kind IN ('openai', 'anthropic', 'openai-compatible')),
    base_url              TEXT    NOT NULL,
    api_key               TEXT    NOT NULL,
    models                TEXT    NOT NULL DEFAULT '[]',
    model_map             TEXT    NOT NULL DEFAULT '{}',
    priority              INTEGER NOT NULL DEFAULT 0,
    weight                INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 0),
    enabled               INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    allow_private_network INTEGER NOT NULL DEFAULT 0 CHECK (allow_private_network IN (0, 1)),
    ca_file               TEXT,
    created_at            INTEGER NOT NULL
);
CREATE TABLE usage_logs (
    id                INTEGER PRIMARY KEY,
    ts_ms             INTEGER NOT NULL,
    key_id            INTEGER NOT NULL,
    channel_id        INTEGER NOT NULL,
    model_requested   TEXT    NOT NULL,
    model_sent        TEXT    NOT NULL,
    endpoint          TEXT    NOT NULL,
    status            INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    total_tokens      INTEGER NOT NULL,
    usage_source      TEXT    NOT NULL,
    end_reason        TEXT    NOT NULL,
    attempts          INTEGER NOT NULL,
    latency_us        INTEGER NOT NULL,
    ttfb_us           INTEGER NOT NULL,
    bytes_in          INTEGER NOT NULL,
    bytes_out         INTEGER NOT NULL,
    request_id        TEXT    NOT NULL
);
CREATE INDEX usage_logs_key_ts ON usage_logs (key_id, ts_ms);
CREATE TABLE daily_usage (
    key_id            INTEGER NOT NULL,
    day               TEXT    NOT NULL,
    requests          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    total_tokens      INTEGER NOT NULL,
    PRIMARY KEY (key_id, day)
) WITHOUT ROWID;
CREATE INDEX daily_usage_day ON daily_usage (day);
)sql",
    // 2: operator's eyes. Request ids on the usage row (the client's x-request-id and
    // traceparent, the provider's request id), found by any of them; indexes only where
    // ids are present so rows without one cost nothing. Channel health as the gateway last
    // judged it (a channel disabled by failures stays so across a restart) and the
    // channel's opt-out of automatic disabling.
    R"sql(
ALTER TABLE usage_logs ADD COLUMN client_request_id   TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_logs ADD COLUMN traceparent         TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_logs ADD COLUMN upstream_request_id TEXT NOT NULL DEFAULT '';
CREATE INDEX usage_logs_request_id ON usage_logs (request_id);
CREATE INDEX usage_logs_client_request_id ON usage_logs (client_request_id)
    WHERE client_request_id != '';
CREATE INDEX usage_logs_upstream_request_id ON usage_logs (upstream_request_id)
    WHERE upstream_request_id != '';
ALTER TABLE channels ADD COLUMN auto_disable INTEGER NOT NULL DEFAULT 1
    CHECK (auto_disable IN (0, 1));
ALTER TABLE channels ADD COLUMN health_state TEXT NOT NULL DEFAULT 'up'
    CHECK (health_state IN ('up', 'down'));
ALTER TABLE channels ADD COLUMN health_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN health_since_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN health_error TEXT NOT NULL DEFAULT '';
)sql",
};

constexpr uint32_t migration_count = static_cast<uint32_t>(std::size(migration_sql));

// Runs migrations (from, migration_count] and sets user_version, all in one transaction.
bool migrate_apply(Db& db, uint32_t version_from, std::string& error) {
    RW_ASSERT(version_from < migration_count);
    if (!db.exec("BEGIN IMMEDIATE")) {
        error = "schema migration could not start: " + db.last_error();
        return false;
    }
    for (uint32_t index = version_from; index < migration_count; index++) {
        if (!db.exec(migration_sql[index])) {
            error = "schema migration " + std::to_string(index + 1) + " failed: " + db.last_error();
            if (db.in_transaction()) {
                (void)db.exec("ROLLBACK");
            }
            return false;
        }
    }
    char sql[64];
    std::snprintf(sql, sizeof(sql), "PRAGMA user_version=%u", migration_count);
    // user_version is written to the database header inside the transaction, so it
    // commits or rolls back together with the schema [pragma.html#pragma_user_version].
    if (!db.exec(sql) || !db.exec("COMMIT")) {
        error = "schema migration commit failed: " + db.last_error();
        if (db.in_transaction()) {
            (void)db.exec("ROLLBACK");
        }
        return false;
    }
    return true;
}

}  // namespace

uint32_t schema_version_latest() {
    return migration_count;
}

Result<int64_t> schema_version(Db& db) {
    return db.query_int64("PRAGMA user_version");
}

bool migrate(Db& db, std::string& error) {
    RW_ASSERT(db.is_open());
    const Result<int64_t> version = schema_version(db);
    if (!version.ok()) {
        error = "cannot read schema version: " + version.error;
        return false;
    }
    if (version.value < 0 || version.value > int64_t(migration_count)) {
        error = "database schema version " + std::to_string(version.value) +
                " is newer than this ringway (" + std::to_string(migration_count) +
                "); refusing to open it";
        return false;
    }
    if (version.value == int64_t(migration_count)) {
        return true;
    }
    if (!migrate_apply(db, static_cast<uint32_t>(version.value), error)) {
        return false;
    }
    const Result<int64_t> after = schema_version(db);
    RW_ASSERT(after.ok());
    RW_ASSERT(after.value == int64_t(migration_count));
    return true;
}

QuotaInvariantReport check_quota_invariant(Db& db) {
    QuotaInvariantReport report;
    Stmt stmt;
    // One pass over usage_logs grouped by key; keys without rows must have quota_used 0.
    const char* sql =
        "SELECT k.id FROM keys AS k LEFT JOIN ("
        "  SELECT key_id, SUM(total_tokens) AS used FROM usage_logs GROUP BY key_id"
        ") AS u ON u.key_id = k.id "
        "WHERE k.quota_used != COALESCE(u.used, 0) ORDER BY k.id LIMIT 100";
    if (!db.prepare(sql, stmt)) {
        report.error = db.last_error();
        return report;
    }
    for (;;) {
        const StepStatus status = stmt.step();
        if (status == StepStatus::error) {
            report.error = db.last_error();
            return report;
        }
        if (status == StepStatus::done) {
            break;
        }
        report.offending_key_ids.push_back(stmt.column_int64(0));
    }
    stmt.reset();
    report.holds = report.offending_key_ids.empty();
    return report;
}

}  // namespace rw
