// storage/pg_lib.h — libpq, loaded at run time. Linked in, libpq brought about twenty more
// shared libraries (gnutls, ldap, krb5, p11-kit …) into every ringway, ~3.5 MB of resident
// library pages and ~1.6 MB of start-up heap from their initializers, even on SQLite. Now
// only a postgres:// RINGWAY_DB loads it (storage/db_pg.cc, at the first connection): one
// dlopen and a table of the functions db_pg.cc calls, resolved once and never unloaded.
// libpq-fe.h is still the build's header (libpq-dev); the run time needs libpq5.
#pragma once

#include <libpq-fe.h>

#include <string>

namespace rw {

// Debian's libpq5 (soname 5 since PostgreSQL 8.2).
inline constexpr const char* pg_lib_name = "libpq.so.5";

// The libpq functions ringway calls, named after them without the PQ prefix.
struct PgLib {
    decltype(&::PQconnectdb) connectdb;
    decltype(&::PQfinish) finish;
    decltype(&::PQreset) reset;
    decltype(&::PQstatus) status;
    decltype(&::PQtransactionStatus) transaction_status;
    decltype(&::PQerrorMessage) error_message;
    decltype(&::PQsocket) socket;
    decltype(&::PQsetNoticeProcessor) set_notice_processor;
    decltype(&::PQexec) exec;
    decltype(&::PQexecParams) exec_params;
    decltype(&::PQprepare) prepare;
    decltype(&::PQexecPrepared) exec_prepared;
    decltype(&::PQresultStatus) result_status;
    decltype(&::PQresultErrorMessage) result_error_message;
    decltype(&::PQresultErrorField) result_error_field;
    decltype(&::PQclear) clear;
    decltype(&::PQntuples) ntuples;
    decltype(&::PQnfields) nfields;
    decltype(&::PQgetvalue) get_value;
    decltype(&::PQgetlength) get_length;
    decltype(&::PQgetisnull) get_is_null;
    decltype(&::PQcmdTuples) cmd_tuples;
    decltype(&::PQconsumeInput) consume_input;
    decltype(&::PQnotifies) notifies;
    decltype(&::PQfreemem) freemem;
};

// The process's table, loading pg_lib_name on the first call (any thread; later calls
// return the same table or the same failure). nullptr when the library or one of its
// functions is missing; error then names the library and the package to install.
[[nodiscard]] const PgLib* pg_lib_load(std::string& error);

// Loads library_name into table (a new handle; for tests and pg_lib_load).
[[nodiscard]] bool pg_lib_open(const char* library_name, PgLib& table, std::string& error);

// The loaded table; only after pg_lib_load succeeded (a PostgreSQL Db exists).
[[nodiscard]] const PgLib& libpq();

}  // namespace rw
