// proxy/idle_probe.h — the half-open trial of a down channel that no live request takes:
// about once a second the admin thread looks at the enabled channels with a probe_model
// whose backoff has passed and, when it wins the channel's trial (ChannelHealthBoard::
// judge answers `trial` to one caller only: a live request that comes first keeps it),
// probes the channel with a minimal request on that model (probe.h). The probe's row is
// recorded under the system key; its outcome brings the channel up or keeps it down for
// the next, doubled backoff, as a live trial's would. Admin thread only.
#pragma once

#include <cstdint>

namespace rw {

class ChannelHealthBoard;
class SnapshotPublisher;
struct ProbeDeps;

struct IdleProbeDeps {
    ProbeDeps* probe = nullptr;  // channel_probe's context (its writer, resolver, health).
    ChannelHealthBoard* health = nullptr;
    SnapshotPublisher* snapshots = nullptr;
    uint32_t snapshot_reader = 0;  // The admin thread's reader slot.
};

// One look at every channel (AdminServer's tick, context: IdleProbeDeps). Blocks while
// probes run (each bounded by ProbeDeps::timeout_ms).
void idle_probe_tick(void* context);

}  // namespace rw
