// tests/unit/storage/pg_lib_test.cc — libpq loaded at run time (storage/pg_lib.h): the table
// is complete and callable, and a missing library or symbol is a clear error naming the
// library and the package, not a crash.
#include "storage/pg_lib.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace rw {
namespace {

TEST(PgLib, LoadsEveryFunctionAndCallsThem) {
    std::string error;
    const PgLib* table = pg_lib_load(error);
    ASSERT_NE(table, nullptr) << error;
    const void* const* entry = reinterpret_cast<const void* const*>(table);
    for (size_t index = 0; index < sizeof(PgLib) / sizeof(void*); index++) {
        EXPECT_NE(entry[index], nullptr) << "entry " << index;
    }
    EXPECT_EQ(&libpq(), table);
    EXPECT_EQ(pg_lib_load(error), table);  // Loaded once.
    // Port 1 on loopback refuses at once: a real call through the table, no server needed.
    PGconn* connection = table->connectdb("postgresql://127.0.0.1:1/none?connect_timeout=2");
    ASSERT_NE(connection, nullptr);
    EXPECT_EQ(table->status(connection), CONNECTION_BAD);
    EXPECT_NE(std::string(table->error_message(connection)).find("127.0.0.1"), std::string::npos)
        << table->error_message(connection);
    table->finish(connection);
}

// A missing library, and a library every ringway maps but that is not libpq (its first
// missing function is named): refused with the library and the package to install.
TEST(PgLib, AMissingLibraryOrFunctionNamesThePackage) {
    const std::pair<const char*, const char*> cases[] = {
        {"libpq-not-installed.so.5", "libpq-not-installed.so.5 cannot be loaded"},
        {"libsqlite3.so.0", "it has no PQconnectdb"},
    };
    for (const auto& [library, reason] : cases) {
        PgLib table{};
        std::string error;
        EXPECT_FALSE(pg_lib_open(library, table, error)) << library;
        EXPECT_NE(error.find(reason), std::string::npos) << error;
        EXPECT_NE(error.find("install the package libpq5"), std::string::npos) << error;
        EXPECT_EQ(table.connectdb, nullptr) << library;
    }
}

}  // namespace
}  // namespace rw
