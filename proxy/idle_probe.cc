// proxy/idle_probe.cc — idle channels' trials (see idle_probe.h). Admin thread only.
#include "proxy/idle_probe.h"

#include <openssl/crypto.h>

#include <vector>

#include "proxy/channel_health.h"
#include "proxy/probe.h"
#include "storage/snapshot.h"

namespace rw {

void idle_probe_tick(void* context) {
    const IdleProbeDeps& deps = *static_cast<const IdleProbeDeps*>(context);
    if (deps.probe == nullptr || deps.health == nullptr || deps.snapshots == nullptr) {
        return;
    }
    // The trials won, copied out: the snapshot is not held across a blocking probe.
    std::vector<ProbeRequest> trials;
    const Snapshot* snapshot = deps.snapshots->acquire(deps.snapshot_reader);
    const uint64_t now_ms = health_clock_ms();
    for (const ChannelEntry& channel :
         snapshot != nullptr ? snapshot->channels() : std::span<const ChannelEntry>{}) {
        if (!channel.is_enabled || channel.probe_model.empty()) {
            continue;
        }
        const HealthView view = deps.health->view(channel.id, now_ms);
        if (!view.is_down || view.retry_in_ms > 0 ||
            deps.health->judge(channel.id, now_ms) != Verdict::trial) {
            continue;  // Up, still backing off, or a live request holds the trial.
        }
        ProbeRequest& trial = trials.emplace_back();
        trial.channel_id = channel.id;
        trial.kind = channel.kind;
        trial.api_key = channel.api_key;
        trial.auto_disable = channel.auto_disable;
        trial.probe_model = channel.probe_model;
        trial.is_trial = true;
    }
    deps.snapshots->quiesce(deps.snapshot_reader);
    for (ProbeRequest& trial : trials) {
        (void)channel_probe(deps.probe, trial);  // Settles the trial, records the row.
        OPENSSL_cleanse(trial.api_key.data(), trial.api_key.size());
    }
}

}  // namespace rw
