// tests/support/pg_test.cc — see pg_test.h. libpq, blocking; test threads only.
#include "tests/support/pg_test.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace rw::test {

namespace {

std::string read_first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

}  // namespace

bool pg_test_enabled() {
    const char* info = std::getenv("RW_TEST_PG");
    return info != nullptr && info[0] != '\0';
}

std::string pg_test_server_url() {
    const std::string info = std::getenv("RW_TEST_PG") != nullptr ? std::getenv("RW_TEST_PG") : "";
    const std::string url = read_first_line(info + "/url");
    if (url.empty()) {
        std::string reason = read_first_line(info + "/unavailable");
        if (reason.empty()) {
            reason = "no server at RW_TEST_PG=" + info + " (tests/support/pg_server.sh start)";
        }
        std::fprintf(stdout, "SKIPPED: no PostgreSQL for this test: %s\n", reason.c_str());
        std::fflush(stdout);
        std::_Exit(77);
    }
    return url;
}

std::string pg_test_new_database() {
    static std::atomic<uint32_t> counter{0};
    const std::string server = pg_test_server_url();
    const std::string name =
        "rw_" + std::to_string(::getpid()) + "_" + std::to_string(counter.fetch_add(1));
    std::vector<std::map<std::string, std::string>> rows;
    std::string error;
    if (!pg_query(server + "/postgres", "CREATE DATABASE " + name + " TEMPLATE template0", rows,
                  error)) {
        std::fprintf(stderr, "pg_test: CREATE DATABASE %s failed: %s\n", name.c_str(),
                     error.c_str());
        std::abort();
    }
    return server + "/" + name;
}

bool pg_query(const std::string& url, const std::string& sql,
              std::vector<std::map<std::string, std::string>>& rows, std::string& error) {
    rows.clear();
    PGconn* connection = PQconnectdb(url.c_str());
    if (PQstatus(connection) != CONNECTION_OK) {
        error = PQerrorMessage(connection);
        PQfinish(connection);
        return false;
    }
    PGresult* result = PQexec(connection, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    const bool is_ok = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
    if (!is_ok) {
        error = PQresultErrorMessage(result);
    } else {
        for (int row = 0; row < PQntuples(result); row++) {
            std::map<std::string, std::string> values;
            for (int column = 0; column < PQnfields(result); column++) {
                values[PQfname(result, column)] = PQgetisnull(result, row, column) != 0
                                                      ? "NULL"
                                                      : PQgetvalue(result, row, column);
            }
            rows.push_back(std::move(values));
        }
    }
    PQclear(result);
    PQfinish(connection);
    return is_ok;
}

}  // namespace rw::test
