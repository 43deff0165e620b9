// storage/db_files.h — the database's files on disk: created owner-only (0600) before
// SQLite opens them, so the -wal and -shm files SQLite creates next to it get the same
// mode (SQLite copies the database file's permissions to them); an existing database, WAL
// or SHM readable by group or others is made owner-only and reported. And the process
// lock that keeps a second writer (another server, `ringway secrets rotate`) off a
// database a server is using. Startup and CLI only.
#pragma once

#include <string>
#include <vector>

namespace rw {

// Creates db_path 0600 when missing; otherwise removes group/other permissions from it and
// its -wal/-shm. fixed: the files whose mode was changed (for a warning). False on an
// error other than a missing -wal/-shm.
[[nodiscard]] bool db_files_secure(const std::string& db_path, std::vector<std::string>& fixed,
                                   std::string& error);

// An exclusive advisory lock (flock) on the database file, held until the process exits:
// false with one line when another process holds it. The fd stays open on purpose.
[[nodiscard]] bool db_files_lock(const std::string& db_path, std::string& error,
                                 bool* is_busy = nullptr);

}  // namespace rw
