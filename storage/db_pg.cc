// storage/db_pg.cc — the PostgreSQL side of storage/db.h over libpq: connect (and
// reconnect once a connection broke), statements with `?N` rewritten to `$N`, text
// parameters and results, SQLSTATE classes mapped to the same DbErrorKind as SQLite's
// codes so the writer's retry policy is one. Blocking calls; one thread per Db. libpq is
// loaded at the first connection (storage/pg_lib.h): every call goes through libpq().
#include "storage/db_pg.h"

#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/assert.h"
#include "storage/pg_lib.h"

namespace rw {

// OIDs of the built-in types parameters are sent as (pg_type.dat; stable across versions).
namespace {
constexpr Oid pg_oid_bytea = 17;
constexpr Oid pg_oid_int8 = 20;
constexpr Oid pg_oid_text = 25;
}  // namespace

struct PgStmt {
    Db* db = nullptr;
    std::string sql;  // Rewritten: $N placeholders.
    int param_count = 0;
    std::vector<uint8_t> is_referenced;  // [i]: $(i+1) appears in the text.
    std::vector<std::string> values;
    std::vector<uint8_t> is_null;
    std::vector<Oid> types;  // 0: the server infers it from the statement.
    std::vector<int> formats;
    int bind_error_index = 0;  // A bind past param_count (reported by the next step).
    std::string name;          // Server-side prepared statement; empty: not prepared.
    uint64_t generation = 0;   // The connection generation `name` belongs to.
    uint32_t executions = 0;
    PGresult* result = nullptr;
    int row = -1;
    int rows = 0;
    mutable std::vector<std::vector<uint8_t>> blobs;  // Decoded bytea per column.

    // Members (PgStmt is Db's friend): they touch the connection's generation and counters.
    static PGresult* execute(PgStmt& stmt);
    static void deallocate(PgStmt& stmt);
    static void note_changes(PgStmt& stmt, const PGresult* result);
};

bool db_is_postgres(std::string_view db) {
    return db.starts_with("postgres://") || db.starts_with("postgresql://");
}

std::string db_display_name(std::string_view db) {
    if (!db_is_postgres(db)) {
        return std::string(db);
    }
    std::string out(db);
    const size_t authority = out.find("://") + 3;
    const size_t authority_end = std::min(out.find_first_of("/?", authority), out.size());
    const size_t at = out.rfind('@', authority_end);
    if (at != std::string::npos && at > authority) {
        const size_t colon = out.find(':', authority);
        if (colon != std::string::npos && colon < at) {
            out.replace(colon + 1, at - colon - 1, "***");
        }
    }
    for (size_t key = out.find("password="); key != std::string::npos;
         key = out.find("password=", key + 1)) {
        const size_t value = key + 9;
        const size_t value_end = std::min(out.find('&', value), out.size());
        out.replace(value, value_end - value, "***");
    }
    return out;
}

std::string pg_sql_rewrite(std::string_view sql, int& param_count) {
    if (sql == "BEGIN IMMEDIATE") {
        param_count = 0;
        return "BEGIN";
    }
    std::string out;
    out.reserve(sql.size() + 16);
    int highest = 0;
    char quote = 0;
    for (size_t index = 0; index < sql.size(); index++) {
        const char c = sql[index];
        if (quote != 0) {
            quote = c == quote ? 0 : quote;  // '' inside a literal toggles twice: fine.
            out.push_back(c);
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
            out.push_back(c);
            continue;
        }
        if (c != '?') {
            out.push_back(c);
            continue;
        }
        size_t end = index + 1;
        int number = 0;
        while (end < sql.size() && sql[end] >= '0' && sql[end] <= '9') {
            number = number * 10 + (sql[end] - '0');
            end++;
        }
        if (end == index + 1) {
            number = highest + 1;  // A bare ?: one past the highest so far, as SQLite does.
        }
        highest = std::max(highest, number);
        out += '$';
        out += std::to_string(number);
        index = end - 1;
    }
    param_count = highest;
    return out;
}

namespace {

DbErrorKind pg_kind_of_sqlstate(const char* state) {
    if (state == nullptr || std::strlen(state) != 5) {
        return DbErrorKind::io;  // No SQLSTATE: the connection failed.
    }
    const std::string_view code(state, 5);
    if (code.starts_with("23")) {
        return DbErrorKind::constraint;
    }
    if (code == "40001" || code == "40P01" || code == "55P03") {
        return DbErrorKind::busy;  // Serialization failure, deadlock, lock not available.
    }
    if (code.starts_with("53")) {
        return DbErrorKind::full;  // Insufficient resources (disk full, out of memory).
    }
    if (code.starts_with("08") || code.starts_with("57P")) {
        return DbErrorKind::io;  // Connection exceptions, server shutting down.
    }
    return DbErrorKind::other;
}

void pg_notice_ignore(void*, const char*) {}

std::string pg_first_line(const char* message) {
    std::string text = message != nullptr ? message : "";
    const size_t newline = text.find('\n');
    return newline == std::string::npos ? text : text.substr(0, newline);
}

void pg_stmt_clear_binds(PgStmt& stmt) {
    for (int index = 0; index < stmt.param_count; index++) {
        stmt.is_null[index] = 1;
        stmt.types[index] = 0;
        stmt.formats[index] = 0;
    }
    stmt.bind_error_index = 0;
}

bool pg_stmt_bind_slot(PgStmt& stmt, int index) {
    if (index < 1 || index > stmt.param_count) {
        stmt.bind_error_index = index;
        return false;
    }
    stmt.is_null[index - 1] = 0;
    return true;
}

}  // namespace

bool Db::pg_fail(std::string_view context, const void* result) {
    const PGresult* pg_result = static_cast<const PGresult*>(result);
    const char* message = pg_result != nullptr ? libpq().result_error_message(pg_result) : nullptr;
    if (message == nullptr || message[0] == '\0') {
        message = libpq().error_message(pg_);
    }
    const bool is_broken = libpq().status(pg_) != CONNECTION_OK;
    pg_error_kind_ =
        pg_result != nullptr && !is_broken
            ? pg_kind_of_sqlstate(libpq().result_error_field(pg_result, PG_DIAG_SQLSTATE))
            : (is_broken ? DbErrorKind::io : DbErrorKind::other);
    last_rc_ = 1;  // Non-zero: a failure is recorded (SQLite's codes mean nothing here).
    last_error_.assign("postgres: ");
    last_error_.append(context.substr(0, 120));
    last_error_.append(": ");
    last_error_.append(pg_first_line(message));
    return false;
}

bool Db::pg_session_setup() {
    // UTC: day boundaries (to_char of a timestamp) match the writer's UTC days. Read-only
    // connections (snapshot, admin queries) refuse writes even if misused.
    const char* setup = pg_is_read_only_ ? "SET TIME ZONE 'UTC'; SET client_min_messages = warning;"
                                           " SET default_transaction_read_only = on"
                                         : "SET TIME ZONE 'UTC'; SET client_min_messages = warning";
    return pg_exec(setup);
}

bool Db::pg_open(const StorageConfig& config, DbMode mode, std::string& error) {
    path_ = db_display_name(config.db_path);
    if (pg_lib_load(error) == nullptr) {
        return false;  // libpq5 is not installed: the startup error names it.
    }
    pg_ = libpq().connectdb(config.db_path.c_str());
    if (pg_ == nullptr || libpq().status(pg_) != CONNECTION_OK) {
        error = "cannot connect to PostgreSQL " + path_ + ": " +
                pg_first_line(pg_ != nullptr ? libpq().error_message(pg_) : "out of memory");
        libpq().finish(pg_);
        pg_ = nullptr;
        return false;
    }
    libpq().set_notice_processor(pg_, pg_notice_ignore, nullptr);
    pg_is_read_only_ = mode == DbMode::read_only;
    if (!pg_session_setup()) {
        error = last_error_ + " on " + path_;
        pg_close();
        return false;
    }
    clear_error();
    return true;
}

void Db::pg_close() {
    libpq().finish(pg_);
    pg_ = nullptr;
}

bool Db::pg_ensure_connected() {
    if (libpq().status(pg_) == CONNECTION_OK) {
        return true;
    }
    libpq().reset(pg_);
    if (libpq().status(pg_) != CONNECTION_OK) {
        return pg_fail("reconnect");
    }
    pg_generation_ += 1;  // Server-side prepared statements died with the old session.
    return pg_session_setup();
}

bool Db::pg_prepare(std::string_view sql, Stmt& out) {
    RW_ASSERT(!out.is_prepared());
    auto* stmt = new PgStmt;
    stmt->db = this;
    stmt->sql = pg_sql_rewrite(sql, stmt->param_count);
    const auto count = size_t(stmt->param_count);
    stmt->is_referenced.assign(count, 0);
    for (size_t at = stmt->sql.find('$'); at != std::string::npos;
         at = stmt->sql.find('$', at + 1)) {
        const int number = std::atoi(stmt->sql.c_str() + at + 1);
        if (number >= 1 && number <= stmt->param_count) {
            stmt->is_referenced[size_t(number - 1)] = 1;
        }
    }
    stmt->values.assign(count, {});
    stmt->is_null.assign(count, 1);
    stmt->types.assign(count, 0);
    stmt->formats.assign(count, 0);
    out.pg_ = stmt;
    out.db_ = this;
    live_stmt_count_ += 1;
    return true;
}

bool Db::pg_exec(const char* sql) {
    int ignored = 0;
    const std::string text = pg_sql_rewrite(sql, ignored);
    if (!pg_ensure_connected()) {
        return false;
    }
    PGresult* result = libpq().exec(pg_, text.c_str());
    const ExecStatusType status = libpq().result_status(result);
    const bool is_ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (!is_ok) {
        pg_fail(sql, result);
    }
    libpq().clear(result);
    return is_ok;
}

bool Db::pg_listen(const char* channel) {
    return pg_exec((std::string("LISTEN ") + channel).c_str());
}

int Db::pg_wait_notifications(int timeout_ms) {
    int count = 0;
    const auto drain = [this, &count] {
        while (PGnotify* notify = libpq().notifies(pg_)) {
            libpq().freemem(notify);
            count += 1;
        }
    };
    if (libpq().consume_input(pg_) == 0) {
        return -1;
    }
    drain();
    if (count > 0) {
        return count;
    }
    pollfd poll_fd{libpq().socket(pg_), POLLIN, 0};
    if (poll_fd.fd < 0) {
        return -1;
    }
    const int ready = ::poll(&poll_fd, 1, timeout_ms);
    if (ready > 0 && libpq().consume_input(pg_) == 0) {
        return -1;
    }
    drain();
    return libpq().status(pg_) == CONNECTION_OK ? count : -1;
}

bool pg_in_transaction(pg_conn* connection) {
    const PGTransactionStatusType status = libpq().transaction_status(connection);
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

void pg_stmt_free(PgStmt* stmt) {
    if (stmt->result != nullptr) {
        libpq().clear(stmt->result);
    }
    PgStmt::deallocate(*stmt);
    delete stmt;
}

void PgStmt::deallocate(PgStmt& stmt) {
    Db& db = *stmt.db;
    // Not left on the server for the session's life (a reload prepares afresh). Inside a
    // failed transaction DEALLOCATE fails too; the name then lives until the session ends.
    if (!stmt.name.empty() && stmt.generation == db.pg_generation_ &&
        libpq().status(db.pg_) == CONNECTION_OK) {
        libpq().clear(libpq().exec(db.pg_, ("DEALLOCATE " + stmt.name).c_str()));
    }
}

void PgStmt::note_changes(PgStmt& stmt, const PGresult* result) {
    stmt.db->pg_changes_ = std::atoll(libpq().cmd_tuples(const_cast<PGresult*>(result)));
}

void pg_stmt_bind_int64(PgStmt& stmt, int index, int64_t value) {
    if (!pg_stmt_bind_slot(stmt, index)) {
        return;
    }
    char digits[24];
    const auto converted = std::to_chars(digits, digits + sizeof(digits), value);
    stmt.values[size_t(index - 1)].assign(digits, converted.ptr);
    stmt.types[size_t(index - 1)] = pg_oid_int8;
}

void pg_stmt_bind_null(PgStmt& stmt, int index, char kind) {
    if (index < 1 || index > stmt.param_count) {
        stmt.bind_error_index = index;
        return;
    }
    stmt.is_null[size_t(index - 1)] = 1;
    // A typed NULL: "?2 IS NULL OR day >= ?2" leaves an untyped one undeterminable.
    stmt.types[size_t(index - 1)] = kind == 'i' ? pg_oid_int8 : kind == 't' ? pg_oid_text : 0;
}

void pg_stmt_bind_text(PgStmt& stmt, int index, std::string_view text) {
    if (!pg_stmt_bind_slot(stmt, index)) {
        return;
    }
    stmt.values[size_t(index - 1)].assign(text);
    stmt.types[size_t(index - 1)] = 0;  // Unknown: typed by its use, as a literal would be.
}

void pg_stmt_bind_blob(PgStmt& stmt, int index, std::span<const uint8_t> bytes) {
    if (!pg_stmt_bind_slot(stmt, index)) {
        return;
    }
    stmt.values[size_t(index - 1)].assign(reinterpret_cast<const char*>(bytes.data()),
                                          bytes.size());
    stmt.types[size_t(index - 1)] = pg_oid_bytea;
    stmt.formats[size_t(index - 1)] = 1;  // Binary: the bytes as they are.
}

// Runs the statement with its current parameters; prepared by name from its second run.
PGresult* PgStmt::execute(PgStmt& stmt) {
    Db& db = *stmt.db;
    pg_conn* connection = db.pg_connection();
    const auto count = size_t(stmt.param_count);
    std::vector<const char*> values(count);
    std::vector<int> lengths(count);
    std::vector<Oid> types(stmt.types);
    for (size_t index = 0; index < count; index++) {
        values[index] = stmt.is_null[index] != 0 ? nullptr : stmt.values[index].c_str();
        lengths[index] = int(stmt.values[index].size());
        if (types[index] == 0 && stmt.is_referenced[index] == 0) {
            types[index] = pg_oid_text;  // Unused ($11 of 14): nothing to infer it from.
        }
    }
    if (stmt.executions >= 1 && (stmt.name.empty() || stmt.generation != db.pg_generation_)) {
        std::string name = "rw" + std::to_string(++db.pg_statement_counter_);
        PGresult* prepared =
            libpq().prepare(connection, name.c_str(), stmt.sql.c_str(), int(count), types.data());
        const bool is_prepared = libpq().result_status(prepared) == PGRES_COMMAND_OK;
        if (!is_prepared) {
            return prepared;  // The caller reports its error.
        }
        libpq().clear(prepared);
        stmt.name = std::move(name);
        stmt.generation = db.pg_generation_;
    }
    stmt.executions += 1;
    if (!stmt.name.empty() && stmt.generation == db.pg_generation_) {
        return libpq().exec_prepared(connection, stmt.name.c_str(), int(count), values.data(),
                                     lengths.data(), stmt.formats.data(), 0);
    }
    return libpq().exec_params(connection, stmt.sql.c_str(), int(count), types.data(),
                               values.data(), lengths.data(), stmt.formats.data(), 0);
}

StepStatus pg_stmt_step(PgStmt& stmt) {
    Db& db = *stmt.db;
    if (stmt.result == nullptr) {
        if (stmt.bind_error_index != 0) {
            db.pg_fail("bind of parameter " + std::to_string(stmt.bind_error_index) +
                       " beyond the statement's " + std::to_string(stmt.param_count));
            pg_stmt_reset(stmt);
            return StepStatus::error;
        }
        if (!db.pg_ensure_connected()) {
            pg_stmt_reset(stmt);
            return StepStatus::error;
        }
        PGresult* result = PgStmt::execute(stmt);
        const ExecStatusType status = libpq().result_status(result);
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
            db.pg_fail(stmt.sql, result);
            libpq().clear(result);
            pg_stmt_reset(stmt);
            return StepStatus::error;
        }
        stmt.result = result;
        stmt.rows = libpq().ntuples(result);
        stmt.row = -1;
        PgStmt::note_changes(stmt, result);
        stmt.blobs.assign(size_t(libpq().nfields(result)), {});
    }
    if (stmt.row + 1 < stmt.rows) {
        stmt.row += 1;
        return StepStatus::row;
    }
    stmt.row = stmt.rows;
    return StepStatus::done;
}

void pg_stmt_reset(PgStmt& stmt) {
    if (stmt.result != nullptr) {
        libpq().clear(stmt.result);
        stmt.result = nullptr;
    }
    stmt.row = -1;
    stmt.rows = 0;
    pg_stmt_clear_binds(stmt);
}

bool pg_stmt_column_is_null(const PgStmt& stmt, int index) {
    RW_ASSERT(stmt.result != nullptr && stmt.row >= 0 && stmt.row < stmt.rows);
    return libpq().get_is_null(stmt.result, stmt.row, index) != 0;
}

std::string_view pg_stmt_column_text(const PgStmt& stmt, int index) {
    RW_ASSERT(stmt.result != nullptr && stmt.row >= 0 && stmt.row < stmt.rows);
    return {libpq().get_value(stmt.result, stmt.row, index),
            size_t(libpq().get_length(stmt.result, stmt.row, index))};
}

int64_t pg_stmt_column_int64(const PgStmt& stmt, int index) {
    const std::string_view text = pg_stmt_column_text(stmt, index);
    if (text == "t" || text == "f") {
        return text == "t" ? 1 : 0;  // A boolean expression (x IS NULL).
    }
    int64_t value = 0;
    (void)std::from_chars(text.data(), text.data() + text.size(), value);  // NULL: "" -> 0.
    return value;
}

std::span<const uint8_t> pg_stmt_column_blob(const PgStmt& stmt, int index) {
    const std::string_view text = pg_stmt_column_text(stmt, index);
    std::vector<uint8_t>& bytes = stmt.blobs[size_t(index)];
    bytes.clear();
    // bytea's text output is hex: \x then two digits per byte (bytea_output=hex, the default).
    if (!text.starts_with("\\x")) {
        return {};
    }
    const auto nibble = [](char c) -> uint8_t {
        return uint8_t(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    };
    for (size_t at = 2; at + 1 < text.size(); at += 2) {
        bytes.push_back(uint8_t(nibble(text[at]) << 4 | nibble(text[at + 1])));
    }
    return {bytes.data(), bytes.size()};
}

}  // namespace rw
