// proxy/channel_table.h — a shard's fixed table of per-channel state, keyed by channel id
// (open addressing, linear probing, channel_states_max slots). Used by routing (health)
// and the upstream pool (idle lists). Shard thread only; allocated once at shard start.
#pragma once

#include <cstdint>
#include <memory>

#include "core/assert.h"
#include "core/limits.h"

namespace rw {

template <class T>
class ChannelTable {
public:
    ChannelTable()
        : ids_(new int64_t[channel_states_max]()), entries_(new T[channel_states_max]()) {}

    // The entry of channel_id, created (value-initialised) on first sight. With more
    // channels than slots, the last probe's slot is shared: what the table holds is
    // advisory (health) or validated by its user (pool lists check the channel id).
    T& at(int64_t channel_id) {
        RW_ASSERT(channel_id > 0);
        const uint64_t start = static_cast<uint64_t>(channel_id) * 0x9E3779B97F4A7C15ull;
        for (uint32_t probe = 0; probe < channel_states_max; probe++) {
            const uint64_t index = (start + probe) & (channel_states_max - 1);
            if (ids_[index] == channel_id) {
                return entries_[index];
            }
            if (ids_[index] == 0) {
                ids_[index] = channel_id;
                return entries_[index];
            }
        }
        return entries_[start & (channel_states_max - 1)];
    }

private:
    std::unique_ptr<int64_t[]> ids_;  // 0: an empty slot.
    std::unique_ptr<T[]> entries_;
};

}  // namespace rw
