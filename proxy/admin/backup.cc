// proxy/admin/backup.cc — `ringway backup FILE` (see backup.h).
#include "proxy/admin/backup.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/config.h"
#include "storage/db.h"
#include "storage/migrations.h"

namespace rw {
namespace {

const char* env_lookup(const char* name, void*) {
    return std::getenv(name);
}

// Opens the copy read-only and checks it as startup would.
bool backup_check(const std::string& path, std::string& error) {
    StorageConfig config;
    config.db_path = path;
    Db db;
    if (!db.open(config, DbMode::read_only, error)) {
        return false;
    }
    const Result<std::string> integrity = db.query_text("PRAGMA integrity_check");
    if (!integrity.ok() || integrity.value != "ok") {
        error =
            "integrity_check of the copy: " + (integrity.ok() ? integrity.value : integrity.error);
        return false;
    }
    const QuotaInvariantReport invariant = check_quota_invariant(db);
    if (!invariant.holds) {
        error = "the quota invariant does not hold in the copy " + invariant.error;
        return false;
    }
    return true;
}

}  // namespace

int admin_backup_main(int argc, char** argv) {
    if (argc != 3 || argv[2][0] == '-') {
        std::fputs("usage: ringway backup FILE   (copies RINGWAY_DB to FILE, online)\n", stderr);
        return 2;
    }
    Config config;
    std::string error;
    if (!config_from_env(config, env_lookup, nullptr, error)) {
        std::fprintf(stderr, "ringway: %s\n", error.c_str());
        return 1;
    }
    StorageConfig storage;
    storage.db_path = config.db_path;
    Db db;
    const std::string target = argv[2];
    if (!db.open(storage, DbMode::read_only, error) || !db.backup_to(target, error) ||
        !backup_check(target, error)) {
        std::fprintf(stderr, "ringway: backup: %s\n", error.c_str());
        return 1;
    }
    struct stat info {};
    (void)::stat(target.c_str(), &info);
    std::printf("backup: %s -> %s (%lld bytes, integrity ok, quota invariant holds)\n",
                config.db_path.c_str(), target.c_str(), static_cast<long long>(info.st_size));
    return 0;
}

}  // namespace rw
