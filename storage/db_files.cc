// storage/db_files.cc — the database files' modes and the process lock (see db_files.h).
#include "storage/db_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rw {
namespace {

// Removes group/other bits from path. Missing is fine when is_optional.
bool file_make_private(const std::string& path, bool is_optional, std::vector<std::string>& fixed,
                       std::string& error) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        if (errno == ENOENT && is_optional) {
            return true;
        }
        error = "cannot stat " + path + ": " + std::strerror(errno);
        return false;
    }
    if ((info.st_mode & 077) == 0) {
        return true;
    }
    if (::chmod(path.c_str(), info.st_mode & 0700) != 0) {
        error = "cannot make " + path + " owner-only: " + std::strerror(errno);
        return false;
    }
    fixed.push_back(path);
    return true;
}

}  // namespace

bool db_files_secure(const std::string& db_path, std::vector<std::string>& fixed,
                     std::string& error) {
    // O_EXCL: a file created here is created 0600 (under any umask that keeps owner bits);
    // an existing one is left to the mode check below.
    const int fd = ::open(db_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        (void)::close(fd);
    } else if (errno != EEXIST) {
        error = "cannot create database " + db_path + ": " + std::strerror(errno);
        return false;
    }
    return file_make_private(db_path, false, fixed, error) &&
           file_make_private(db_path + "-wal", true, fixed, error) &&
           file_make_private(db_path + "-shm", true, fixed, error);
}

bool db_files_lock(const std::string& db_path, std::string& error, bool* is_busy) {
    const int fd = ::open(db_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = "cannot open database " + db_path + ": " + std::strerror(errno);
        return false;
    }
    // flock locks belong to the open file description; SQLite's own locks are fcntl
    // byte-range locks on other descriptions, so the two never interfere [flock(2)].
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int flock_errno = errno;
        (void)::close(fd);
        if (is_busy != nullptr) {
            *is_busy = flock_errno == EWOULDBLOCK;
        }
        error = flock_errno == EWOULDBLOCK
                    ? "database " + db_path + " is in use by another ringway process"
                    : "cannot lock database " + db_path + ": " + std::strerror(flock_errno);
        return false;
    }
    return true;  // fd is deliberately kept open: the lock lives as long as the process.
}

}  // namespace rw
