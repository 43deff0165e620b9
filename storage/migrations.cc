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
    // 2: the ledger's money side. Token kinds per row (parts of prompt/completion, never
    // added to them), the row's cost in nano-USD and the price version it used (NULL:
    // unpriced), the same sums per day, each key's spend, and the price table. Prices are
    // versions: a row is priced by the version in force at its start, and a deleted
    // version is only marked (deleted_at), so every row's price_id still resolves.
    R"sql(
CREATE TABLE prices (
    id                    INTEGER PRIMARY KEY,
    model                 TEXT    NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    channel_id            INTEGER CHECK (channel_id IS NULL OR channel_id > 0),
    input_per_mtok        INTEGER NOT NULL CHECK (input_per_mtok BETWEEN 0 AND 10000000000000),
    output_per_mtok       INTEGER NOT NULL CHECK (output_per_mtok BETWEEN 0 AND 10000000000000),
    cached_input_per_mtok INTEGER
                          CHECK (cached_input_per_mtok BETWEEN 0 AND 10000000000000),
    cache_write_per_mtok  INTEGER CHECK (cache_write_per_mtok BETWEEN 0 AND 10000000000000),
    reasoning_per_mtok    INTEGER CHECK (reasoning_per_mtok BETWEEN 0 AND 10000000000000),
    per_request           INTEGER NOT NULL DEFAULT 0
                          CHECK (per_request BETWEEN 0 AND 1000000000000),
    effective_from        INTEGER NOT NULL CHECK (effective_from >= 0),
    created_at            INTEGER NOT NULL,
    deleted_at            INTEGER
);
CREATE INDEX prices_model ON prices (model, effective_from);
ALTER TABLE usage_logs ADD COLUMN cached_input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN cost_nano INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_logs ADD COLUMN price_id INTEGER;
ALTER TABLE daily_usage ADD COLUMN cached_input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daily_usage ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daily_usage ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daily_usage ADD COLUMN cost_nano INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daily_usage ADD COLUMN unpriced_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN spend_nano INTEGER NOT NULL DEFAULT 0;
UPDATE daily_usage SET unpriced_requests = requests;
)sql",
    // 3: per channel, whether streamed chat requests get stream_options.include_usage
    // (inject) or go as the client sent them, for upstreams that reject it (off).
    R"sql(
ALTER TABLE channels ADD COLUMN stream_usage TEXT NOT NULL DEFAULT 'inject'
    CHECK (stream_usage IN ('inject', 'off'));
)sql",
    // 4: long run (issue 11). spill_replays: the spill files already committed, so a
    // replay interrupted before the file was removed is not committed twice. daily_usage
    // is keyed by key x day x model x channel and kept forever while usage_logs rows are
    // pruned after RINGWAY_LOG_RETENTION_DAYS, so the quota invariant is stated on it;
    // it is rebuilt from usage_logs, which nothing had pruned before this version.
    R"sql(
CREATE TABLE daily_usage_v2 (
    key_id            INTEGER NOT NULL,
    day               TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    channel_id        INTEGER NOT NULL,
    requests          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    total_tokens      INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens  INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens    INTEGER NOT NULL DEFAULT 0,
    cost_nano           INTEGER NOT NULL DEFAULT 0,
    unpriced_requests   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day, model, channel_id)
) WITHOUT ROWID;
INSERT INTO daily_usage_v2 (key_id, day, model, channel_id, requests, prompt_tokens,
                            completion_tokens, total_tokens, cached_input_tokens,
                            cache_write_tokens, reasoning_tokens, cost_nano, unpriced_requests)
    SELECT key_id, date(ts_ms / 1000, 'unixepoch'), model_requested, channel_id, count(*),
           sum(prompt_tokens), sum(completion_tokens), sum(total_tokens),
           sum(cached_input_tokens), sum(cache_write_tokens), sum(reasoning_tokens),
           sum(cost_nano), sum(price_id IS NULL)
    FROM usage_logs GROUP BY 1, 2, 3, 4;
DROP TABLE daily_usage;
ALTER TABLE daily_usage_v2 RENAME TO daily_usage;
CREATE INDEX daily_usage_day ON daily_usage (day);
CREATE TABLE spill_replays (
    spill_id    BLOB    PRIMARY KEY CHECK (length(spill_id) = 16),
    rows        INTEGER NOT NULL,
    replayed_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    // 5: who may use a key. allowed_cidrs is a JSON array of CIDR blocks in canonical form
    // (["10.0.0.0/8","2001:db8::/32"]) checked against the client address at the request's
    // head; NULL: any address.
    R"sql(
ALTER TABLE keys ADD COLUMN allowed_cidrs TEXT;
)sql",
    // 6: operator's eyes. Request ids on the usage row (the client's x-request-id and
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
    // 7: the writer's cost per row (issue "Capacity"). usage_logs_key_ts put every insert at
    // one of as many B-tree positions as there are active keys, so each commit rewrote (WAL
    // frames, then checkpoint) a leaf page per key: with it gone the writer's CPU per row
    // fell by more than half (bench/micro/writer_bench). No query seeks it: the usage and log
    // queries filter with "(?1 < 0 OR key_id = ?1)", which SQLite cannot turn into an
    // index seek, so it only served as a full scan in key order, no faster than the table's.
    R"sql(
DROP INDEX IF EXISTS usage_logs_key_ts;
)sql",
    // 8: rate limits a client can read. tpm: the key's tokens per minute (0: none);
    // limits: per-model rpm/tpm, a JSON object {"gpt-4o":{"rpm":60,"tpm":90000}}; NULL: none.
    R"sql(
ALTER TABLE keys ADD COLUMN tpm INTEGER NOT NULL DEFAULT 0 CHECK (tpm >= 0);
ALTER TABLE keys ADD COLUMN limits TEXT;
)sql",
    // 9: money budgets and budget periods. A key's budget (nano-USD; NULL: none) and its
    // token quota hold over budget_period (UTC, calendar-aligned; 'none': lifetime). The
    // use within a period is derived from daily_usage, so nothing is reset at rollover.
    // Top-ups are audit rows that raise the budget for the period they were made in.
    R"sql(
ALTER TABLE keys ADD COLUMN budget_nano INTEGER CHECK (budget_nano IS NULL OR budget_nano >= 0);
ALTER TABLE keys ADD COLUMN budget_period TEXT NOT NULL DEFAULT 'none'
    CHECK (budget_period IN ('none', 'daily', 'weekly', 'monthly'));
CREATE TABLE key_topups (
    id          INTEGER PRIMARY KEY,
    key_id      INTEGER NOT NULL,
    amount_nano INTEGER NOT NULL CHECK (amount_nano > 0),
    reason      TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX key_topups_key ON key_topups (key_id, created_at);
)sql",
    // 10: strict keys. A request of a strict key that sets no output limit gets the largest
    // one its remaining budget and token quota afford injected (proxy/budget.cc).
    R"sql(
ALTER TABLE keys ADD COLUMN strict INTEGER NOT NULL DEFAULT 0 CHECK (strict IN (0, 1));
)sql",
    // 11: idle channels' probes (issue "Operator's eyes"). A channel's probe_model ('': none)
    // is the model a down channel is probed on when no live request takes its trial. The
    // probes' usage rows belong to the system key: id 0 (record_system_key_id; client keys
    // start at 1), system = 1, revoked and left out of the snapshot (so no client can use
    // it), a random key_hash (no secret is known to hash to it).
    R"sql(
ALTER TABLE channels ADD COLUMN probe_model TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN system INTEGER NOT NULL DEFAULT 0 CHECK (system IN (0, 1));
INSERT INTO keys (id, name, key_hash, key_prefix, status, created_at, system)
    VALUES (0, 'system:probe', randomblob(32), 'system', 'revoked', unixepoch(), 1);
)sql",
    // 12: gateway model aliases. A name clients may ask for that stands for an ordered
    // list of concrete models (a JSON array), tried in order (storage/aliases.h).
    R"sql(
CREATE TABLE aliases (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    models     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
)sql",
    // 13: the writer's cost per row (issue "Capacity"). The index on ringway's own request id
    // was a fifth of the writer's instructions per row (callgrind, writer_bench/2048: 12.92k
    // with it, 10.38k without; an INTEGER form of the id indexed instead cost as much, 13.49k:
    // the price is the index's upkeep per row, not its key). Only GET /admin/logs?request_id=
    // read it; it now reads the log from the newest row back to the id's row (a unique id, so
    // the read stops there: quick for a recent request). The client's and the provider's ids
    // keep their partial indexes (rows without such an id cost them nothing).
    R"sql(
DROP INDEX IF EXISTS usage_logs_request_id;
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

// Retention prunes usage_logs; with auto_vacuum=INCREMENTAL the writer's incremental_vacuum
// steps give the freed pages back to the file system. A database created before that needs
// one VACUUM to switch (outside a transaction; it rewrites the file and needs as much free
// disk as the database). A failed VACUUM is not fatal: freed pages are still reused.
void migrate_auto_vacuum(Db& db) {
    const Result<int64_t> mode = db.query_int64("PRAGMA auto_vacuum");
    if (!mode.ok() || mode.value == 2) {
        return;
    }
    std::fprintf(stderr,
                 "ringway: storage: switching the database to auto_vacuum=INCREMENTAL"
                 " (one VACUUM)\n");
    if (!db.exec("PRAGMA auto_vacuum=INCREMENTAL") || !db.exec("VACUUM")) {
        std::fprintf(stderr,
                     "ringway: storage: VACUUM failed (%s); freed pages are reused but"
                     " not returned to the disk\n",
                     db.last_error().c_str());
    }
}

}  // namespace

uint32_t schema_version_latest() {
    return migration_count;
}

uint32_t schema_version_latest(const Db& db) {
    return db.is_postgres() ? schema_version_latest_postgres() : migration_count;
}

Result<int64_t> schema_version(Db& db) {
    if (db.is_postgres()) {
        return db.query_int64("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    }
    return db.query_int64("PRAGMA user_version");
}

bool migrate(Db& db, std::string& error) {
    RW_ASSERT(db.is_open());
    if (db.is_postgres()) {
        return migrate_postgres(db, error);
    }
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
    if (version.value != int64_t(migration_count) &&
        !migrate_apply(db, static_cast<uint32_t>(version.value), error)) {
        return false;
    }
    migrate_auto_vacuum(db);
    const Result<int64_t> after = schema_version(db);
    RW_ASSERT(after.ok());
    RW_ASSERT(after.value == int64_t(migration_count));
    return true;
}

QuotaInvariantReport check_quota_invariant(Db& db) {
    QuotaInvariantReport report;
    Stmt stmt;
    // One pass over daily_usage (kept forever; usage_logs is pruned) grouped by key; keys
    // without rows must have 0 of both.
    const char* sql =
        "SELECT k.id FROM keys AS k LEFT JOIN ("
        "  SELECT key_id, SUM(total_tokens) AS used, SUM(cost_nano) AS spent"
        "  FROM daily_usage GROUP BY key_id"
        ") AS u ON u.key_id = k.id "
        "WHERE k.quota_used != COALESCE(u.used, 0) OR k.spend_nano != COALESCE(u.spent, 0) "
        "ORDER BY k.id LIMIT 100";
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
