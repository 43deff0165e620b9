// proxy/usage_record.h — the billing rule and the usage record of a finished request, as
// pure functions of what the request knew when it ended (no clock, no I/O): unit-tested
// case by case in tests/unit/proxy/usage_record_test.cc.
//
// Billing rule (explicit, tested): tokens reported by the upstream are charged as
// reported. When a request reached an upstream that answered 2xx but no usage arrived
// (client gone before the usage event, upstream cut off, stream without usage), tokens are
// estimated and marked usage_source=estimated: prompt = ceil(request body bytes / 4),
// completion = content events relayed (about one token each for chat deltas). An upstream
// error answer (4xx/5xx) without usage charges nothing (usage_source=unknown).
#pragma once

#include <cstdint>
#include <string_view>

#include "proxy/usage.h"
#include "storage/prices.h"
#include "storage/records.h"

namespace rw {

struct BilledUsage {
    UsageCounts counts;  // What is charged; total filled when the upstream gave none.
    UsageSource source;
};

[[nodiscard]] BilledUsage usage_bill(const UsageCounts& known, uint16_t upstream_status,
                                     uint64_t request_body_bytes, uint64_t events_relayed);

// Everything the record is made of, as plain values copied out of the request.
struct UsageRecordInput {
    int64_t started_unix_ms;
    int64_t key_id;
    int64_t channel_id;
    uint64_t latency_us;
    uint64_t ttfb_us;
    uint64_t bytes_in;
    uint64_t bytes_out;
    UsageCounts usage;         // What the upstream reported (has_usage) or nothing.
    uint16_t upstream_status;  // The upstream's head status; 0 when none arrived.
    uint16_t status_sent;      // The status the gateway itself sent; 0 when it sent none.
    uint64_t request_body_bytes;
    uint64_t events_relayed;
    uint16_t attempts;
    EndReason end_reason;
    std::string_view model_requested;
    std::string_view model_sent;
    std::string_view endpoint;
    std::string_view request_id;
    // The price in force for the model sent on the last attempt's channel at the request's
    // start (Snapshot::prices().find), or nullptr: the row is then unpriced. Read during
    // usage_record_build only (the caller holds the snapshot).
    const PriceEntry* price;
};

// The record for the writer: usage by the billing rule, counters clamped to 32 bits,
// text truncated to the record's fixed fields, and its cost from `price` by cost.h's rule
// computed from the record's own (clamped) token counts, so SQL over the row and the
// price reproduces it. A row billed nothing (usage_source unknown) costs 0.
[[nodiscard]] UsageRecord usage_record_build(const UsageRecordInput& input);

}  // namespace rw
