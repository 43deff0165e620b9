// proxy/usage_record.cc — the billing rule and the record (see usage_record.h).
#include "proxy/usage_record.h"

#include "core/assert.h"
#include "proxy/cost.h"

namespace rw {
namespace {

uint32_t clamp32(uint64_t value) {
    return value > UINT32_MAX ? UINT32_MAX : uint32_t(value);
}

}  // namespace

BilledUsage usage_bill(const UsageCounts& known, uint16_t status_received,
                       uint64_t request_body_bytes, uint64_t events_relayed,
                       bool has_stream_error) {
    BilledUsage billed{known, UsageSource::reported};
    if (known.has_usage) {
        if (billed.counts.total_tokens == 0) {
            billed.counts.total_tokens = known.prompt_tokens + known.completion_tokens;
        }
        return billed;
    }
    const bool has_content = status_received != 204 && status_received != 205;
    if (status_received >= 200 && status_received < 300 && has_content && !has_stream_error) {
        billed.source = UsageSource::estimated;
        billed.counts = UsageCounts{};  // An estimate knows no cache or reasoning kinds.
        billed.counts.prompt_tokens = (request_body_bytes + 3) / 4;
        billed.counts.completion_tokens = events_relayed;
        billed.counts.total_tokens = billed.counts.prompt_tokens + billed.counts.completion_tokens;
        return billed;
    }
    billed.source = UsageSource::unknown;
    billed.counts = UsageCounts{};
    return billed;
}

UsageRecord usage_record_build(const UsageRecordInput& input) {
    // What the client received: the gateway's status when it sent one, else (the client
    // left first) the upstream's head status.
    const uint16_t status_received =
        input.status_sent != 0 ? input.status_sent : input.upstream_status;
    const BilledUsage billed =
        usage_bill(input.usage, status_received, input.request_body_bytes, input.events_relayed,
                   input.end_reason == EndReason::upstream_stream_error);
    UsageRecord record{};
    record.ts_ms = input.started_unix_ms;
    record.key_id = input.key_id;
    record.channel_id = input.channel_id;
    record.latency_us = input.latency_us;
    record.ttfb_us = input.ttfb_us;
    record.bytes_in = input.bytes_in;
    record.bytes_out = input.bytes_out;
    record.prompt_tokens = clamp32(billed.counts.prompt_tokens);
    record.completion_tokens = clamp32(billed.counts.completion_tokens);
    record.total_tokens = clamp32(billed.counts.total_tokens);
    // Clamping keeps the kinds parts of their totals (min is monotonic).
    record.cached_input_tokens = clamp32(billed.counts.cached_input_tokens);
    record.cache_write_tokens = clamp32(billed.counts.cache_write_tokens);
    record.reasoning_tokens = clamp32(billed.counts.reasoning_tokens);
    record.status = input.status_sent != 0 ? input.status_sent : input.upstream_status;
    record.attempts = input.attempts;
    record.usage_source = billed.source;
    record.end_reason = input.end_reason;
    record_set_text(record.model_requested, input.model_requested);
    record_set_text(record.model_sent, input.model_sent);
    record_set_text(record.endpoint, input.endpoint);
    record_set_text(record.request_id, input.request_id);
    record_set_text(record.client_request_id, input.client_request_id);
    record_set_text(record.traceparent, input.traceparent);
    record_set_text(record.upstream_request_id, input.upstream_request_id);
    record_set_text(record.response_id, input.response_id);
    if (input.price != nullptr) {
        // An error without usage charges nothing: no tokens, and no per-request fee either.
        const bool is_charged = record.usage_source != UsageSource::unknown;
        record.cost_nano = cost_of_record(input.price->rates, record, is_charged);
        record.price_id = input.price->id;
        RW_ASSERT(record.price_id > 0);
    }
    if (record.usage_source == UsageSource::unknown) {
        RW_ASSERT(record.total_tokens == 0);  // An error without usage charges nothing.
        RW_ASSERT(record.cost_nano == 0);
    }
    RW_ASSERT(record.cached_input_tokens + uint64_t(record.cache_write_tokens) <=
              record.prompt_tokens);
    RW_ASSERT(record.reasoning_tokens <= record.completion_tokens);
    return record;
}

}  // namespace rw
