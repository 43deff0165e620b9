// storage/db_pg.h — the PostgreSQL half of storage/db.h, for db.cc only: a Stmt on a
// PostgreSQL connection holds a PgStmt and forwards each call here. Statements run through
// libpq's extended protocol: text parameters (bytea binary), text results; a statement
// run a second time is prepared on the server once and executed by name after that.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "storage/db.h"

namespace rw {

void pg_stmt_free(PgStmt* stmt);
void pg_stmt_bind_int64(PgStmt& stmt, int index, int64_t value);
// kind: 'i' an int8 NULL, 't' a text NULL, 0 one typed by its use.
void pg_stmt_bind_null(PgStmt& stmt, int index, char kind = 0);
void pg_stmt_bind_text(PgStmt& stmt, int index, std::string_view text);
void pg_stmt_bind_blob(PgStmt& stmt, int index, std::span<const uint8_t> bytes);
[[nodiscard]] StepStatus pg_stmt_step(PgStmt& stmt);
void pg_stmt_reset(PgStmt& stmt);
[[nodiscard]] int64_t pg_stmt_column_int64(const PgStmt& stmt, int index);
[[nodiscard]] bool pg_stmt_column_is_null(const PgStmt& stmt, int index);
[[nodiscard]] std::string_view pg_stmt_column_text(const PgStmt& stmt, int index);
[[nodiscard]] std::span<const uint8_t> pg_stmt_column_blob(const PgStmt& stmt, int index);
[[nodiscard]] bool pg_in_transaction(pg_conn* connection);

// SQLite-style SQL for PostgreSQL: `?N` and `?` become `$N` (outside quotes), and
// "BEGIN IMMEDIATE" becomes "BEGIN". param_count: the highest parameter number.
[[nodiscard]] std::string pg_sql_rewrite(std::string_view sql, int& param_count);

}  // namespace rw
