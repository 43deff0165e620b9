// storage/spill.cc — the spill file (see spill.h): reserve, append, finish, read back.
#include "storage/spill.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/assert.h"

namespace rw {
namespace {

constexpr char spill_magic[8] = {'R', 'W', 'S', 'P', 'I', 'L', 'L', '\0'};
constexpr uint64_t fnv_offset = 1469598103934665603ull;
constexpr uint64_t fnv_prime = 1099511628211ull;

uint64_t fnv1a(uint64_t hash, const void* bytes, size_t length) {
    const auto* cursor = static_cast<const unsigned char*>(bytes);
    for (size_t index = 0; index < length; index++) {
        hash = (hash ^ cursor[index]) * fnv_prime;
    }
    return hash;
}

// pwrite(2) may write less than asked (a signal, a full disk); loop until done or failed.
bool write_all_at(int fd, const void* bytes, size_t length, uint64_t offset) {
    const auto* cursor = static_cast<const char*>(bytes);
    while (length > 0) {
        const ssize_t wrote = ::pwrite(fd, cursor, length, off_t(offset));
        if (wrote < 0 && errno == EINTR) {
            continue;
        }
        if (wrote <= 0) {
            return false;
        }
        cursor += wrote;
        length -= size_t(wrote);
        offset += uint64_t(wrote);
    }
    return true;
}

bool read_all(int fd, void* bytes, size_t length) {
    auto* cursor = static_cast<char*>(bytes);
    while (length > 0) {
        const ssize_t got = ::read(fd, cursor, length);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            return false;
        }
        cursor += got;
        length -= size_t(got);
    }
    return true;
}

bool header_is_zero(const SpillHeader& header) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(&header);
    for (size_t index = 0; index < sizeof(header); index++) {
        if (bytes[index] != 0) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string spill_path(const std::string& db_path) {
    return db_path + ".spill";
}

SpillContents spill_read(const std::string& path) {
    SpillContents contents;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        contents.state = errno == ENOENT ? SpillState::absent : SpillState::invalid;
        contents.error = std::string("open: ") + std::strerror(errno);
        return contents;
    }
    SpillHeader header{};
    const bool has_header = read_all(fd, &header, sizeof(header));
    if (!has_header || header_is_zero(header)) {
        (void)::close(fd);
        contents.state = SpillState::empty;  // A reserve never written, or cut before its header.
        return contents;
    }
    contents.state = SpillState::invalid;
    if (std::memcmp(header.magic, spill_magic, sizeof(spill_magic)) != 0 ||
        header.layout_version != spill_layout_version ||
        header.record_bytes != sizeof(UsageRecord) || header.count > (1ull << 32)) {
        contents.error = "not a spill file of this ringway build";
    } else {
        contents.rows.resize(header.count);
        if (!read_all(fd, contents.rows.data(), header.count * sizeof(UsageRecord))) {
            contents.error = "shorter than its header says";
        } else if (fnv1a(fnv_offset, contents.rows.data(), header.count * sizeof(UsageRecord)) !=
                   header.checksum) {
            contents.error = "checksum mismatch";
        } else {
            contents.state = SpillState::rows;
            std::memcpy(contents.spill_id, header.spill_id, sizeof(header.spill_id));
        }
    }
    (void)::close(fd);
    if (contents.state != SpillState::rows) {
        contents.rows.clear();
    }
    return contents;
}

SpillFile::~SpillFile() {
    if (fd_ >= 0) {
        (void)::close(fd_);
    }
}

bool SpillFile::open(const std::string& path, uint64_t reserve_bytes, std::string& error) {
    RW_ASSERT(fd_ < 0);
    path_ = path;
    // O_TRUNC: whatever was here has been replayed (or refused) by the caller already.
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) {
        error = "cannot open the spill file " + path + ": " + std::strerror(errno);
        return false;
    }
    // Allocates zeroed blocks (a header of zeros reads as an empty reserve). Fails with
    // ENOSPC on a full disk or EOPNOTSUPP on some file systems [fallocate(2)].
    is_reserved_ = ::fallocate(fd_, 0, 0, off_t(sizeof(SpillHeader) + reserve_bytes)) == 0;
    return true;
}

bool SpillFile::append(const UsageRecord* rows, uint32_t count) {
    RW_ASSERT(fd_ >= 0);
    if (has_failed_) {
        return false;
    }
    const size_t bytes = size_t(count) * sizeof(UsageRecord);
    if (!write_all_at(fd_, rows, bytes, sizeof(SpillHeader) + count_ * sizeof(UsageRecord))) {
        has_failed_ = true;  // What a partial write left past count_ is ignored on read.
        return false;
    }
    checksum_ = fnv1a(count_ == 0 ? fnv_offset : checksum_, rows, bytes);
    count_ += count;
    return true;
}

bool SpillFile::finish(std::string& error) {
    RW_ASSERT(fd_ >= 0);
    SpillHeader header{};
    std::memcpy(header.magic, spill_magic, sizeof(spill_magic));
    header.layout_version = spill_layout_version;
    header.record_bytes = sizeof(UsageRecord);
    header.count = count_;
    header.checksum = count_ == 0 ? fnv_offset : checksum_;
    if (::getrandom(header.spill_id, sizeof(header.spill_id), 0) != sizeof(header.spill_id)) {
        error = std::string("getrandom: ") + std::strerror(errno);
        return false;
    }
    // Rows first, then the header that makes them visible, each made durable in turn.
    if (::fdatasync(fd_) != 0 || !write_all_at(fd_, &header, sizeof(header), 0) ||
        ::fdatasync(fd_) != 0) {
        error = "writing " + path_ + ": " + std::strerror(errno);
        return false;
    }
    // The unused part of the reserve goes back to the disk; the rows stay.
    (void)::ftruncate(fd_, off_t(sizeof(SpillHeader) + count_ * sizeof(UsageRecord)));
    return true;
}

}  // namespace rw
