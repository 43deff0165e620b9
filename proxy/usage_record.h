// proxy/usage_record.h — the billing rule and the usage record of a finished request, as
// pure functions of what the request knew when it ended (no clock, no I/O): unit-tested
// case by case in tests/unit/proxy/usage_record_test.cc.
//
// Billing rule (explicit, tested): tokens reported by the upstream are charged as
// reported. Without usage, billing follows the status the client received: the gateway's
// when it answered (a relayed answer, the head of a stream, or its own error), else the
// upstream's head status (a client that left before any answer). A 2xx with content (not
// 204 or 205) is charged an estimate, marked usage_source=estimated: prompt =
// ceil(request body bytes / 4), completion = content events relayed (about one token each
// for chat deltas). Everything else charges nothing (usage_source=unknown): an upstream
// error, a gateway-made 502/504 after an upstream 2xx head (truncated body, bad framing,
// too large), a 204. The one exception is a stream already started: the client received
// its 200 head and part of the answer, so a stream cut later is still estimated — unless
// the provider itself ended it with its error event (end_reason=upstream_stream_error):
// that is an upstream error, charged nothing beyond the usage it reported.
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

// status_received: the status the client received (see the rule above); 0 for none.
// has_stream_error: the provider ended the stream with its own error event.
[[nodiscard]] BilledUsage usage_bill(const UsageCounts& known, uint16_t status_received,
                                     uint64_t request_body_bytes, uint64_t events_relayed,
                                     bool has_stream_error = false);

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
    std::string_view client_request_id;    // Already checked (request_client_ids).
    std::string_view traceparent;          // Already checked.
    std::string_view upstream_request_id;  // The provider's, as its head carried it.
    // The price in force for the model sent on the last attempt's channel at the request's
    // start (Snapshot::prices().find), or nullptr: the row is then unpriced. Read during
    // usage_record_build only (the caller holds the snapshot).
    const PriceEntry* price;
    // A stored Responses object the answer created (stored_response.h); empty: none.
    std::string_view response_id = {};
};

// The record for the writer: usage by the billing rule, counters clamped to 32 bits,
// text truncated to the record's fixed fields, and its cost from `price` by cost.h's rule
// computed from the record's own (clamped) token counts, so SQL over the row and the
// price reproduces it. A row billed nothing (usage_source unknown) costs 0.
[[nodiscard]] UsageRecord usage_record_build(const UsageRecordInput& input);

}  // namespace rw
