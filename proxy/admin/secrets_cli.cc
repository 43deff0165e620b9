// proxy/admin/secrets_cli.cc — the offline key rotation (see secrets_cli.h). Every failure
// is one line on stderr and exit status 1; nothing is changed unless all rows re-encrypt.
#include "proxy/admin/secrets_cli.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "storage/db.h"
#include "storage/db_files.h"
#include "storage/secrets.h"

namespace rw {
namespace {

constexpr const char* usage_text =
    "usage: ringway secrets rotate --new-key-file FILE\n"
    "  Re-encrypts every channel key in RINGWAY_DB under the key in FILE (64 hex digits,\n"
    "  e.g. from `openssl rand -hex 32`). Run it with the server stopped; the current key\n"
    "  is RINGWAY_SECRET_KEY_FILE (unset: channel keys in plain text are encrypted).\n"
    "  Then start ringway with RINGWAY_SECRET_KEY_FILE=FILE.\n";

const char* env_lookup(const char* name, void*) {
    return std::getenv(name);
}

int fail(const std::string& message) {
    std::fprintf(stderr, "ringway secrets: %s\n", message.c_str());
    return 1;
}

}  // namespace

bool secrets_cli_is_command(const char* arg) {
    return std::strcmp(arg, "secrets") == 0;
}

int secrets_cli_main(int argc, char** argv) {
    std::string new_key_file;
    if (argc == 5 && std::string_view(argv[2]) == "rotate" &&
        std::string_view(argv[3]) == "--new-key-file") {
        new_key_file = argv[4];
    } else {
        std::fputs(usage_text, stderr);
        return 2;
    }
    Config config;
    std::string error;
    std::string old_key;
    std::string new_key;
    if (!config_from_env(config, env_lookup, nullptr, error) ||
        (!config.secret_key_file.empty() &&
         !secret_key_load(config.secret_key_file, old_key, error)) ||
        !secret_key_load(new_key_file, new_key, error)) {
        return fail(error);
    }
    struct stat info {};
    if (::stat(config.db_path.c_str(), &info) != 0) {
        return fail("RINGWAY_DB=" + config.db_path + ": no such database");
    }
    std::vector<std::string> fixed;
    if (!db_files_secure(config.db_path, fixed, error) || !db_files_lock(config.db_path, error)) {
        return fail(error + " (stop the server first)");
    }
    StorageConfig storage;
    storage.db_path = config.db_path;
    Db db;
    uint32_t rows = 0;
    if (!db.open(storage, DbMode::read_write, error) ||
        !secrets_rotate(db, old_key, new_key, rows, error)) {
        return fail(error);
    }
    std::printf("re-encrypted %u channel keys; start ringway with RINGWAY_SECRET_KEY_FILE=%s\n",
                rows, new_key_file.c_str());
    return 0;
}

}  // namespace rw
