// tests/unit/proxy/usage_record_test.cc — the billing rule (proxy/usage_record.h), case by
// case: reported usage is charged as reported, a 2xx with content without usage is
// estimated from the body and the events relayed, an error (the upstream's or the
// gateway's) or a 204 without usage charges nothing, billing follows the status the
// client received; and the record's fields (status, clamping, truncation).
#include "proxy/usage_record.h"

#include <gtest/gtest.h>

#include <string>

namespace rw {
namespace {

UsageCounts reported(uint64_t prompt, uint64_t completion, uint64_t total) {
    UsageCounts counts;
    counts.prompt_tokens = prompt;
    counts.completion_tokens = completion;
    counts.total_tokens = total;
    counts.has_usage = true;
    return counts;
}

UsageRecordInput input_with(UsageCounts usage, uint16_t upstream_status, uint16_t status_sent) {
    UsageRecordInput input{};
    input.started_unix_ms = 1'700'000'000'000;
    input.key_id = 7;
    input.channel_id = 3;
    input.usage = usage;
    input.upstream_status = upstream_status;
    input.status_sent = status_sent;
    input.request_body_bytes = 401;
    input.events_relayed = 12;
    input.attempts = 1;
    input.end_reason = EndReason::complete;
    input.model_requested = "gpt-4o";
    input.model_sent = "gpt-4o-2024-08-06";
    input.endpoint = "/v1/chat/completions";
    input.request_id = "rw-0-1-1";
    input.client_request_id = "client-7";
    input.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    input.upstream_request_id = "req_abc";
    return input;
}

TEST(UsageBill, ReportedUsageIsChargedAsReported) {
    const BilledUsage billed = usage_bill(reported(10, 5, 15), 200, 4000, 99);
    EXPECT_EQ(billed.source, UsageSource::reported);
    EXPECT_EQ(billed.counts.prompt_tokens, 10u);
    EXPECT_EQ(billed.counts.completion_tokens, 5u);
    EXPECT_EQ(billed.counts.total_tokens, 15u);
}

TEST(UsageBill, ReportedWithoutTotalGetsPromptPlusCompletion) {
    const BilledUsage billed = usage_bill(reported(10, 5, 0), 200, 0, 0);
    EXPECT_EQ(billed.counts.total_tokens, 15u);
}

TEST(UsageBill, ReportedOnAnErrorAnswerIsStillCharged) {
    // A provider that bills a failed request says so in its usage: charged as reported.
    const BilledUsage billed = usage_bill(reported(3, 0, 3), 400, 1000, 0);
    EXPECT_EQ(billed.source, UsageSource::reported);
    EXPECT_EQ(billed.counts.total_tokens, 3u);
}

TEST(UsageBill, SuccessWithoutUsageIsEstimated) {
    // ceil(401 / 4) = 101 prompt tokens, one completion token per relayed event.
    const BilledUsage billed = usage_bill(UsageCounts{}, 200, 401, 12);
    EXPECT_EQ(billed.source, UsageSource::estimated);
    EXPECT_EQ(billed.counts.prompt_tokens, 101u);
    EXPECT_EQ(billed.counts.completion_tokens, 12u);
    EXPECT_EQ(billed.counts.total_tokens, 113u);
}

TEST(UsageBill, EstimateRoundsPromptBytesUp) {
    EXPECT_EQ(usage_bill(UsageCounts{}, 201, 4, 0).counts.prompt_tokens, 1u);
    EXPECT_EQ(usage_bill(UsageCounts{}, 299, 5, 0).counts.prompt_tokens, 2u);
    EXPECT_EQ(usage_bill(UsageCounts{}, 200, 0, 0).counts.total_tokens, 0u);
}

TEST(UsageBill, AStreamTheProviderEndedWithAnErrorIsBilledAsAnUpstreamError) {
    const BilledUsage unreported = usage_bill(UsageCounts{}, 200, 4000, 7, true);
    EXPECT_EQ(unreported.source, UsageSource::unknown);
    EXPECT_EQ(unreported.counts.total_tokens, 0u);
    // Usage the provider reported before its error (Anthropic's message_start) is charged.
    const BilledUsage reported_input = usage_bill(reported(25, 1, 0), 200, 4000, 7, true);
    EXPECT_EQ(reported_input.source, UsageSource::reported);
    EXPECT_EQ(reported_input.counts.total_tokens, 26u);
}

TEST(UsageBill, ErrorWithoutUsageChargesNothing) {
    for (const uint16_t status : {uint16_t{400}, uint16_t{401}, uint16_t{429}, uint16_t{500},
                                  uint16_t{502}, uint16_t{503}}) {
        const BilledUsage billed = usage_bill(UsageCounts{}, status, 4000, 50);
        EXPECT_EQ(billed.source, UsageSource::unknown) << status;
        EXPECT_EQ(billed.counts.total_tokens, 0u) << status;
        EXPECT_EQ(billed.counts.prompt_tokens, 0u) << status;
    }
}

TEST(UsageBill, NoHeadAtAllChargesNothing) {
    // The upstream never answered (reset, timeout before the head): status 0.
    const BilledUsage billed = usage_bill(UsageCounts{}, 0, 4000, 0);
    EXPECT_EQ(billed.source, UsageSource::unknown);
    EXPECT_EQ(billed.counts.total_tokens, 0u);
}

TEST(UsageBill, NoContentWithoutUsageChargesNothing) {
    for (const uint16_t status : {uint16_t{204}, uint16_t{205}}) {
        const BilledUsage billed = usage_bill(UsageCounts{}, status, 4000, 0);
        EXPECT_EQ(billed.source, UsageSource::unknown) << status;
        EXPECT_EQ(billed.counts.total_tokens, 0u) << status;
    }
}

TEST(UsageRecord, BillingFollowsTheStatusTheClientReceived) {
    // The upstream's 200 head, then the gateway answered 502 or 504 (truncated JSON, bad
    // framing, too large, idle timeout) or 503 (no memory for the answer): nothing.
    for (const uint16_t sent : {uint16_t{502}, uint16_t{503}, uint16_t{504}}) {
        const UsageRecord record = usage_record_build(input_with(UsageCounts{}, 200, sent));
        EXPECT_EQ(record.usage_source, UsageSource::unknown) << sent;
        EXPECT_EQ(record.total_tokens, 0u) << sent;
    }
    // A 204 relayed as it came: no content, nothing charged.
    EXPECT_EQ(usage_record_build(input_with(UsageCounts{}, 204, 204)).total_tokens, 0u);
    // A stream already started (its 200 head went out), then cut: the one exception, the
    // client got part of the answer and it is estimated.
    UsageRecordInput cut = input_with(UsageCounts{}, 200, 200);
    cut.end_reason = EndReason::upstream_reset;
    const UsageRecord cut_record = usage_record_build(cut);
    EXPECT_EQ(cut_record.usage_source, UsageSource::estimated);
    EXPECT_EQ(cut_record.total_tokens, 101u + 12u);
    // The client left before any answer of ours: the upstream's 2xx head decides (the
    // upstream worked for it), so leaving early is not a way around billing.
    EXPECT_EQ(usage_record_build(input_with(UsageCounts{}, 200, 0)).usage_source,
              UsageSource::estimated);
    // Reported usage stays charged whatever the status.
    EXPECT_EQ(usage_record_build(input_with(reported(10, 5, 15), 200, 502)).total_tokens, 15u);
}

TEST(UsageRecord, CarriesTheFieldsAndTheBilledUsage) {
    const UsageRecord record = usage_record_build(input_with(reported(10, 5, 15), 200, 200));
    EXPECT_EQ(record.ts_ms, 1'700'000'000'000);
    EXPECT_EQ(record.key_id, 7);
    EXPECT_EQ(record.channel_id, 3);
    EXPECT_EQ(record.status, 200);
    EXPECT_EQ(record.total_tokens, 15u);
    EXPECT_EQ(record.usage_source, UsageSource::reported);
    EXPECT_EQ(record_text(record.model_requested), "gpt-4o");
    EXPECT_EQ(record_text(record.model_sent), "gpt-4o-2024-08-06");
    EXPECT_EQ(record_text(record.endpoint), "/v1/chat/completions");
    EXPECT_EQ(record_text(record.request_id), "rw-0-1-1");
    EXPECT_EQ(record_text(record.client_request_id), "client-7");
    EXPECT_EQ(record_text(record.traceparent),
              "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    EXPECT_EQ(record_text(record.upstream_request_id), "req_abc");
}

TEST(UsageRecord, StatusIsTheGatewaysWhenItAnsweredElseTheUpstreams) {
    // The gateway answered 502 after the upstream's 200 head (a cut whole body).
    EXPECT_EQ(usage_record_build(input_with(UsageCounts{}, 200, 502)).status, 502);
    // The client left before any answer of ours: the upstream's head status.
    EXPECT_EQ(usage_record_build(input_with(UsageCounts{}, 200, 0)).status, 200);
    EXPECT_EQ(usage_record_build(input_with(UsageCounts{}, 0, 0)).status, 0);
}

TEST(UsageRecord, CountersAreClampedAndTextTruncated) {
    UsageRecordInput input = input_with(reported(5'000'000'000, 1, 0), 200, 200);
    const std::string long_model(300, 'm');
    input.model_requested = long_model;
    const UsageRecord record = usage_record_build(input);
    EXPECT_EQ(record.prompt_tokens, UINT32_MAX);
    EXPECT_EQ(record.total_tokens, UINT32_MAX);
    EXPECT_EQ(record_text(record.model_requested).size(), record_model_bytes_max);
}

}  // namespace
}  // namespace rw
