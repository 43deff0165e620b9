// storage/usage_rows.cc — rw_usage_rows, the eponymous virtual table over a run of the
// writer's batch (see usage_rows.h). Read-only, one full scan in batch order: xBestIndex
// uses no constraint, xNext steps to the next record, xColumn hands SQLite the record's
// value (texts SQLITE_STATIC: the batch outlives the step that reads it).
#include "storage/usage_rows.h"

#include <sqlite3.h>

#include <new>

#include "core/assert.h"
#include "storage/db.h"

namespace rw {

namespace {

struct RowsTable {
    sqlite3_vtab base;  // First: SQLite hands back a sqlite3_vtab*.
    const UsageRows* source;
};

struct RowsCursor {
    sqlite3_vtab_cursor base;  // First, as above.
    const UsageRecord* rows;
    uint32_t count;
    uint32_t index;
};

// The declared columns' names are usage_logs's, so the INSERT selects them by name.
std::string rows_table_sql() {
    return "CREATE TABLE x(" + usage_log_columns_sql() + ")";
}

int rows_connect(sqlite3* db, void* aux, int /*argc*/, const char* const* /*argv*/,
                 sqlite3_vtab** table_out, char** /*error_out*/) {
    const int rc = sqlite3_declare_vtab(db, rows_table_sql().c_str());
    if (rc != SQLITE_OK) {
        return rc;
    }
    // Only a statement of the writer's own may read it: never a trigger or a view.
    (void)sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    auto* table = new (std::nothrow) RowsTable{};
    if (table == nullptr) {
        return SQLITE_NOMEM;
    }
    table->source = static_cast<const UsageRows*>(aux);
    *table_out = &table->base;
    return SQLITE_OK;
}

int rows_disconnect(sqlite3_vtab* table) {
    delete reinterpret_cast<RowsTable*>(table);
    return SQLITE_OK;
}

int rows_best_index(sqlite3_vtab* table, sqlite3_index_info* info) {
    // A full scan whatever the query asks: no constraint is consumed, SQLite tests them all.
    info->estimatedCost = 1000;
    info->estimatedRows = reinterpret_cast<RowsTable*>(table)->source->count;
    return SQLITE_OK;
}

int rows_open(sqlite3_vtab* /*table*/, sqlite3_vtab_cursor** cursor_out) {
    auto* cursor = new (std::nothrow) RowsCursor{};
    if (cursor == nullptr) {
        return SQLITE_NOMEM;
    }
    *cursor_out = &cursor->base;
    return SQLITE_OK;
}

int rows_close(sqlite3_vtab_cursor* cursor) {
    delete reinterpret_cast<RowsCursor*>(cursor);
    return SQLITE_OK;
}

int rows_filter(sqlite3_vtab_cursor* base, int /*index_number*/, const char* /*index_string*/,
                int /*argc*/, sqlite3_value** /*argv*/) {
    auto* cursor = reinterpret_cast<RowsCursor*>(base);
    const UsageRows* source = reinterpret_cast<RowsTable*>(base->pVtab)->source;
    RW_ASSERT(source->rows != nullptr || source->count == 0);
    cursor->rows = source->rows;
    cursor->count = source->count;
    cursor->index = 0;
    return SQLITE_OK;
}

int rows_next(sqlite3_vtab_cursor* base) {
    reinterpret_cast<RowsCursor*>(base)->index += 1;
    return SQLITE_OK;
}

int rows_eof(sqlite3_vtab_cursor* base) {
    const auto* cursor = reinterpret_cast<RowsCursor*>(base);
    return cursor->index >= cursor->count ? 1 : 0;
}

struct ResultSink {
    sqlite3_context* context;
    void integer(int64_t value) { sqlite3_result_int64(context, value); }
    void text(std::string_view text) {
        sqlite3_result_text(context, text.data(), int(text.size()), SQLITE_STATIC);
    }
    // The code; usage_rows_insert_sql's CASE stores its name (an integer result costs
    // SQLite a fraction of a text one).
    void named(uint8_t code, std::string_view /*name*/) { integer(code); }
    // An absent id is NULL here, '' in the table (usage_rows_insert_sql's ifnull): a NULL
    // result costs SQLite a fraction of a text one, and most rows carry no such id.
    void optional_text(std::string_view text) {
        if (text.empty()) {
            null();
        } else {
            this->text(text);
        }
    }
    void null() { sqlite3_result_null(context); }
};

int rows_column(sqlite3_vtab_cursor* base, sqlite3_context* context, int column) {
    const auto* cursor = reinterpret_cast<RowsCursor*>(base);
    RW_ASSERT(cursor->index < cursor->count);
    ResultSink sink{context};
    usage_column_put(cursor->rows[cursor->index], column, sink);
    return SQLITE_OK;
}

int rows_rowid(sqlite3_vtab_cursor* base, sqlite3_int64* rowid) {
    *rowid = reinterpret_cast<RowsCursor*>(base)->index;
    return SQLITE_OK;
}

// Eponymous-only (no xCreate): the table exists on every schema of the connection by the
// module's name, and CREATE VIRTUAL TABLE cannot make another. Read-only: no xUpdate.
sqlite3_module rows_module_make() {
    sqlite3_module module{};
    module.iVersion = 0;
    module.xConnect = rows_connect;
    module.xBestIndex = rows_best_index;
    module.xDisconnect = rows_disconnect;
    module.xDestroy = rows_disconnect;
    module.xOpen = rows_open;
    module.xClose = rows_close;
    module.xFilter = rows_filter;
    module.xNext = rows_next;
    module.xEof = rows_eof;
    module.xColumn = rows_column;
    module.xRowid = rows_rowid;
    return module;
}

const sqlite3_module rows_module = rows_module_make();

}  // namespace

std::string usage_log_columns_sql() {
    std::string sql;
    for (const std::string_view name : usage_log_column_names) {
        sql += sql.empty() ? "" : ", ";
        sql += name;
    }
    return sql;
}

namespace {

// "CASE column WHEN 0 THEN 'reported' ... ELSE 'unknown' END": for every value a uint8_t
// code can hold, the text name_of gives it (the codes name_of's fallback covers fall to ELSE).
template <class Name>
std::string name_case_sql(const std::string& column, Name name_of) {
    const std::string_view fallback = name_of(uint8_t(255));
    std::string sql = "CASE " + column;
    for (uint32_t code = 0; code < 255; code++) {
        const std::string_view name = name_of(uint8_t(code));
        if (name != fallback) {
            sql += " WHEN " + std::to_string(code) + " THEN '" + std::string(name) + "'";
        }
    }
    return sql + " ELSE '" + std::string(fallback) + "' END";
}

// What the INSERT stores from rw_usage_rows's column: the value, an enum's name for its
// code, '' for an absent id.
std::string select_expression(int column) {
    const std::string name(usage_log_column_names[column]);
    if (name == "usage_source") {
        return name_case_sql(name,
                             [](uint8_t code) { return usage_source_name(UsageSource(code)); });
    }
    if (name == "end_reason") {
        return name_case_sql(name, [](uint8_t code) { return end_reason_name(EndReason(code)); });
    }
    return column < usage_log_first_optional_column ? name : "ifnull(" + name + ", '')";
}

}  // namespace

std::string usage_rows_insert_sql() {
    std::string select;
    for (int column = 0; column < usage_log_column_count; column++) {
        select += column == 0 ? "" : ", ";
        select += select_expression(column);
    }
    return "INSERT INTO usage_logs (" + usage_log_columns_sql() + ") SELECT " + select +
           " FROM rw_usage_rows";
}

bool usage_rows_register(Db& db, UsageRows* source, std::string& error) {
    RW_ASSERT(db.is_open() && !db.is_postgres());
    RW_ASSERT(source != nullptr);
    const int rc = sqlite3_create_module_v2(db.sqlite_connection(), "rw_usage_rows", &rows_module,
                                            source, nullptr);
    if (rc != SQLITE_OK) {
        error = std::string("registering rw_usage_rows: ") + sqlite3_errstr(rc);
        return false;
    }
    return true;
}

}  // namespace rw
