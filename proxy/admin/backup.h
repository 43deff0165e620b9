// proxy/admin/backup.h — `ringway backup FILE`: an online, consistent copy of the database
// (RINGWAY_DB) taken through a read-only connection with SQLite's backup API while the
// gateway serves, then checked (integrity_check and the quota invariant) before it is
// reported good. Restore: stop ringway, remove <RINGWAY_DB>, -wal, -shm and .spill, copy
// FILE to <RINGWAY_DB>, start ringway (README "Backup and restore").
#pragma once

namespace rw {

// argv[1] is "backup". Exit status: 0 done, 1 failed, 2 usage.
[[nodiscard]] int admin_backup_main(int argc, char** argv);

}  // namespace rw
