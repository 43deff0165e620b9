#pragma once
// tests/support/pg_test.h — tests against PostgreSQL. With RW_TEST_PG=INFO_DIR (a server
// started by tests/support/pg_server.sh, a CTest fixture) every Ringway the harness starts
// without an explicit RINGWAY_DB gets a fresh database on that server; tests read it back
// through pg_query. When the server could not be provided (INFO_DIR/unavailable), the test
// process prints why and exits 77 (CTest: skipped).
#include <map>
#include <string>
#include <vector>

namespace rw::test {

// True when RW_TEST_PG names a server for this run.
[[nodiscard]] bool pg_test_enabled();
// The server's base URL (postgres://postgres@127.0.0.1:PORT), or a skip (exit 77).
[[nodiscard]] std::string pg_test_server_url();
// CREATE DATABASE rw_<pid>_<n> on the server; its URL. Exits 77 when there is no server,
// aborts the test on a failure.
[[nodiscard]] std::string pg_test_new_database();
// Every row of `sql` on the database at `url`, columns by name (NULL reads as "NULL");
// false with `error` on failure.
bool pg_query(const std::string& url, const std::string& sql,
              std::vector<std::map<std::string, std::string>>& rows, std::string& error);

}  // namespace rw::test
