// storage/migrations.h — the schema: numbered migrations applied at startup, in one
// transaction, by the writer's connection before any shard runs. The version is kept in
// PRAGMA user_version (PostgreSQL: its own list and table, storage/migrations_pg.cc). A database
// written by a newer binary is refused, never touched. Also the quota invariant check run at
// startup and by tests (RULES.md, SQLite).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/db.h"

namespace rw {

// The schema version this binary writes. Bumped by every new migration.
[[nodiscard]] uint32_t schema_version_latest();

// Brings `db` (opened read_write) to schema_version_latest(). Idempotent: a DB already
// at the latest version is left untouched. Returns false with one clear line in `error`
// when a migration fails (nothing applied: one transaction) or when the DB's version is
// newer than this binary ("database schema version 7 is newer than this ringway (3)").
[[nodiscard]] bool migrate(Db& db, std::string& error);

// Reads PRAGMA user_version (PostgreSQL: the schema_version table).
[[nodiscard]] Result<int64_t> schema_version(Db& db);
// The latest version for db's engine: PostgreSQL numbers its own list
// (storage/migrations_pg.cc).
[[nodiscard]] uint32_t schema_version_latest(const Db& db);

// PostgreSQL (storage/migrations_pg.cc); migrate() calls it for a PostgreSQL Db.
[[nodiscard]] uint32_t schema_version_latest_postgres();
[[nodiscard]] bool migrate_postgres(Db& db, std::string& error);

// The invariant "for every key, keys.quota_used == SUM(daily_usage.total_tokens) and
// keys.spend_nano == SUM(daily_usage.cost_nano) of its rows" (daily_usage is kept forever;
// usage_logs rows are pruned, and each row's tokens and cost go to its day's aggregate in the
// row's transaction). Returns false with the offending key ids (at most 100) when it does not
// hold, or with `error` set when the check itself could not run. A full scan: startup and
// tests only.
struct QuotaInvariantReport {
    bool holds = false;
    std::vector<int64_t> offending_key_ids;
    std::string error;
};
[[nodiscard]] QuotaInvariantReport check_quota_invariant(Db& db);

}  // namespace rw
