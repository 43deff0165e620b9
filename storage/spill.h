// storage/spill.h — the spill file: where the writer puts the usage records it could not
// commit before its shutdown deadline (disk full, a lock held forever), so that the next
// start commits them instead of losing them. It lives next to the database
// (<RINGWAY_DB>.spill) and is reserved at startup with fallocate(2), so writing it needs no
// new blocks even when the disk has filled since. Layout: one SpillHeader, then `count`
// UsageRecords as they are in memory (the header names the layout and record size, so a
// file from another build is refused rather than misread). An all-zero header is an empty
// reserve. The header is written last and synced, so a file cut short by a crash reads as
// empty or as the rows its header counts, never as garbage.
// Writer thread only (and Writer::open before it runs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/records.h"

namespace rw {

constexpr uint32_t spill_layout_version = 2;  // 2: UsageRecord::response_id.

struct SpillHeader {
    char magic[8];  // "RWSPILL\0"
    uint32_t layout_version;
    uint32_t record_bytes;  // sizeof(UsageRecord) of the build that wrote it.
    uint64_t count;
    uint64_t checksum;     // FNV-1a over the records' bytes.
    uint8_t spill_id[16];  // Random; the replay records it so it runs exactly once.
};
static_assert(sizeof(SpillHeader) == 48);

[[nodiscard]] std::string spill_path(const std::string& db_path);

// What spill_read found.
enum class SpillState : uint8_t { absent, empty, rows, invalid };

struct SpillContents {
    SpillState state = SpillState::absent;
    std::vector<UsageRecord> rows;
    uint8_t spill_id[16] = {};
    std::string error;  // Why invalid.
};

[[nodiscard]] SpillContents spill_read(const std::string& path);

// The reserved file and the one spill written into it at shutdown.
class SpillFile {
public:
    SpillFile() = default;
    SpillFile(const SpillFile&) = delete;
    SpillFile& operator=(const SpillFile&) = delete;
    ~SpillFile();

    // Creates (or reuses) the file and reserves reserve_bytes. A reservation the file
    // system refuses is not an error: the spill is then written with ordinary writes.
    // False with `error` only when the file cannot be opened at all.
    [[nodiscard]] bool open(const std::string& path, uint64_t reserve_bytes, std::string& error);
    [[nodiscard]] bool is_reserved() const { return is_reserved_; }

    // Appends rows after the header. False when the write fails (then nothing more is
    // appended; rows_appended() says how many made it).
    [[nodiscard]] bool append(const UsageRecord* rows, uint32_t count);
    // Writes the header for the rows appended, trims the reserve and syncs. False when
    // the header or the sync failed (the spill is then lost).
    [[nodiscard]] bool finish(std::string& error);
    [[nodiscard]] uint64_t rows_appended() const { return count_; }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
    bool is_reserved_ = false;
    bool has_failed_ = false;
    uint64_t count_ = 0;
    uint64_t checksum_ = 0;
};

}  // namespace rw
