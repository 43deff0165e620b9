// storage/pg_lib.cc — see pg_lib.h. dlopen(3) with RTLD_NOW (every symbol of libpq bound at
// load, so a broken library fails here, at startup, not at the first query) and
// RTLD_LOCAL (its symbols stay out of the global namespace). The handle is never closed:
// libpq's connections and the threads using them live until exit.
#include "storage/pg_lib.h"

#include <dlfcn.h>

#include <mutex>

#include "core/assert.h"

namespace rw {

namespace {

struct PgLibLoad {
    PgLib table{};
    bool is_loaded = false;
    std::string error;
};

PgLibLoad& pg_lib_state() {
    static PgLibLoad state;
    return state;
}

std::string pg_lib_missing(const char* library_name, const char* reason) {
    return std::string("RINGWAY_DB is a PostgreSQL URL but ") + library_name +
           " cannot be loaded (" + (reason != nullptr ? reason : "unknown reason") +
           "): install the package libpq5";
}

template <class Function>
bool pg_lib_resolve(void* handle, const char* symbol, Function& target, std::string& error) {
    void* address = ::dlsym(handle, symbol);
    if (address == nullptr) {
        error = symbol;
        return false;
    }
    target = reinterpret_cast<Function>(address);
    return true;
}

bool pg_lib_resolve_all(void* handle, PgLib& table, std::string& missing) {
    return pg_lib_resolve(handle, "PQconnectdb", table.connectdb, missing) &&
           pg_lib_resolve(handle, "PQfinish", table.finish, missing) &&
           pg_lib_resolve(handle, "PQreset", table.reset, missing) &&
           pg_lib_resolve(handle, "PQstatus", table.status, missing) &&
           pg_lib_resolve(handle, "PQtransactionStatus", table.transaction_status, missing) &&
           pg_lib_resolve(handle, "PQerrorMessage", table.error_message, missing) &&
           pg_lib_resolve(handle, "PQsocket", table.socket, missing) &&
           pg_lib_resolve(handle, "PQsetNoticeProcessor", table.set_notice_processor, missing) &&
           pg_lib_resolve(handle, "PQexec", table.exec, missing) &&
           pg_lib_resolve(handle, "PQexecParams", table.exec_params, missing) &&
           pg_lib_resolve(handle, "PQprepare", table.prepare, missing) &&
           pg_lib_resolve(handle, "PQexecPrepared", table.exec_prepared, missing) &&
           pg_lib_resolve(handle, "PQresultStatus", table.result_status, missing) &&
           pg_lib_resolve(handle, "PQresultErrorMessage", table.result_error_message, missing) &&
           pg_lib_resolve(handle, "PQresultErrorField", table.result_error_field, missing) &&
           pg_lib_resolve(handle, "PQclear", table.clear, missing) &&
           pg_lib_resolve(handle, "PQntuples", table.ntuples, missing) &&
           pg_lib_resolve(handle, "PQnfields", table.nfields, missing) &&
           pg_lib_resolve(handle, "PQgetvalue", table.get_value, missing) &&
           pg_lib_resolve(handle, "PQgetlength", table.get_length, missing) &&
           pg_lib_resolve(handle, "PQgetisnull", table.get_is_null, missing) &&
           pg_lib_resolve(handle, "PQcmdTuples", table.cmd_tuples, missing) &&
           pg_lib_resolve(handle, "PQconsumeInput", table.consume_input, missing) &&
           pg_lib_resolve(handle, "PQnotifies", table.notifies, missing) &&
           pg_lib_resolve(handle, "PQfreemem", table.freemem, missing);
}

}  // namespace

bool pg_lib_open(const char* library_name, PgLib& table, std::string& error) {
    void* handle = ::dlopen(library_name, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        error = pg_lib_missing(library_name, ::dlerror());
        return false;
    }
    std::string missing;
    if (!pg_lib_resolve_all(handle, table, missing)) {
        error = pg_lib_missing(library_name, ("it has no " + missing).c_str());
        ::dlclose(handle);
        table = PgLib{};
        return false;
    }
    return true;
}

const PgLib* pg_lib_load(std::string& error) {
    static std::once_flag once;
    PgLibLoad& state = pg_lib_state();
    std::call_once(
        once, [&state] { state.is_loaded = pg_lib_open(pg_lib_name, state.table, state.error); });
    if (!state.is_loaded) {
        error = state.error;
        return nullptr;
    }
    return &state.table;
}

const PgLib& libpq() {
    const PgLibLoad& state = pg_lib_state();
    RW_ASSERT(state.is_loaded);  // Only a PostgreSQL Db calls here, and it loaded the table.
    return state.table;
}

}  // namespace rw
