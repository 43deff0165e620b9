// tests/unit/proxy/fault_test.cc — the Fault table (proxy/fault.h): every enumerator has a
// row, the sides answer as they should, and retries are allowed only where the upstream
// cannot have acted on the request (RULES §6).
#include "proxy/fault.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace rw {
namespace {

TEST(FaultTable, EveryEnumeratorHasANamedRow) {
    std::set<std::string> names;
    for (uint32_t i = 0; i < static_cast<uint32_t>(Fault::count_); i++) {
        const Fault fault = static_cast<Fault>(i);
        const std::string name(fault_name(fault));
        EXPECT_FALSE(name.empty()) << i;
        EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    }
}

TEST(FaultTable, ClientRefusalsAnswer4xxAndEndNoAttempt) {
    for (const Fault fault : {Fault::client_method_not_allowed, Fault::client_missing_api_key,
                              Fault::client_conflicting_api_keys, Fault::client_invalid_api_key,
                              Fault::client_expired_api_key, Fault::client_quota_exceeded,
                              Fault::client_quota_too_small, Fault::client_invalid_body,
                              Fault::client_model_not_allowed, Fault::client_rate_limited,
                              Fault::client_concurrency_limited, Fault::client_model_not_found,
                              Fault::client_ip_not_allowed}) {
        const FaultInfo& info = fault_info(fault);
        EXPECT_GE(info.status, 400) << fault_name(fault);
        EXPECT_LT(info.status, 500) << fault_name(fault);
        EXPECT_FALSE(info.is_retry_safe) << fault_name(fault);
        EXPECT_FALSE(info.message.empty()) << fault_name(fault);
    }
}

TEST(FaultTable, TheOpenAIShapesOfTheCommonRefusals) {
    EXPECT_EQ(fault_info(Fault::client_invalid_api_key).status, 401);
    EXPECT_EQ(fault_info(Fault::client_invalid_api_key).code, "invalid_api_key");
    EXPECT_EQ(fault_info(Fault::client_quota_exceeded).status, 429);
    EXPECT_EQ(fault_info(Fault::client_quota_exceeded).code, "insufficient_quota");
    EXPECT_EQ(fault_info(Fault::client_rate_limited).code, "rate_limit_exceeded");
    EXPECT_EQ(fault_info(Fault::client_model_not_found).status, 404);
    EXPECT_EQ(fault_openai_type(401), "invalid_request_error");
    EXPECT_EQ(fault_openai_type(503), "server_error");
    EXPECT_EQ(fault_info(Fault::client_invalid_api_key).anthropic_type, "authentication_error");
}

TEST(FaultTable, OnlyFaultsBeforeTheUpstreamCouldActAreRetrySafe) {
    std::set<Fault> safe;
    for (uint32_t i = 0; i < static_cast<uint32_t>(Fault::count_); i++) {
        if (fault_info(static_cast<Fault>(i)).is_retry_safe) {
            safe.insert(static_cast<Fault>(i));
        }
    }
    const std::set<Fault> expected = {
        Fault::local_no_upstream_slot,
        Fault::upstream_unreachable,
        Fault::upstream_tls_handshake_failed,
        Fault::upstream_connect_timeout,
        Fault::upstream_refused,
        Fault::upstream_send_failed,
        Fault::upstream_closed_unsent,
        Fault::upstream_auth_failed,  // The provider refused the key: it did not act.
    };
    EXPECT_EQ(safe, expected);
    // Sent and then timed out, or answered in part: never retried (could bill twice).
    EXPECT_FALSE(fault_info(Fault::upstream_timeout).is_retry_safe);
    EXPECT_FALSE(fault_info(Fault::upstream_closed_unanswered).is_retry_safe);
    EXPECT_FALSE(fault_info(Fault::upstream_send_failed_answered).is_retry_safe);
}

TEST(FaultTable, EndReasonsFollowTheSide) {
    EXPECT_EQ(fault_info(Fault::none).end_reason, EndReason::complete);
    EXPECT_EQ(fault_info(Fault::client_gone).end_reason, EndReason::client_gone);
    EXPECT_EQ(fault_info(Fault::local_shutdown).end_reason, EndReason::shutdown);
    EXPECT_EQ(fault_info(Fault::upstream_timeout).end_reason, EndReason::upstream_timeout);
    EXPECT_EQ(fault_info(Fault::upstream_connect_timeout).end_reason, EndReason::upstream_timeout);
    EXPECT_EQ(fault_info(Fault::upstream_reset).end_reason, EndReason::upstream_reset);
    EXPECT_EQ(fault_info(Fault::upstream_protocol_error).end_reason,
              EndReason::upstream_protocol_error);
    EXPECT_EQ(fault_info(Fault::upstream_answered_error).end_reason, EndReason::upstream_error);
    EXPECT_EQ(fault_info(Fault::local_out_of_memory).end_reason, EndReason::local_error);
}

TEST(FaultTable, SilentFaultsAnswerNothing) {
    for (const Fault fault : {Fault::none, Fault::client_gone, Fault::local_shutdown,
                              Fault::upstream_answered_error, Fault::upstream_stream_error}) {
        EXPECT_EQ(fault_info(fault).status, 0) << fault_name(fault);
    }
}

TEST(FaultTable, RefusalsSayWhetherARetryCanHelp) {
    for (const Fault fault : {Fault::client_missing_api_key, Fault::client_invalid_api_key,
                              Fault::client_expired_api_key, Fault::client_quota_exceeded,
                              Fault::client_model_not_allowed, Fault::client_model_not_found,
                              Fault::client_ip_not_allowed}) {
        EXPECT_TRUE(fault_info(fault).is_retry_futile) << fault_name(fault);
        EXPECT_EQ(fault_info(fault).retry_after_s, 0u) << fault_name(fault);
    }
    for (const Fault fault : {Fault::client_rate_limited, Fault::client_concurrency_limited}) {
        EXPECT_FALSE(fault_info(fault).is_retry_futile) << fault_name(fault);
        EXPECT_GT(fault_info(fault).retry_after_s, 0u) << fault_name(fault);
        EXPECT_EQ(fault_info(fault).openai_type, "requests") << fault_name(fault);
    }
    EXPECT_EQ(fault_info(Fault::client_quota_exceeded).openai_type, "insufficient_quota");
    EXPECT_EQ(fault_info(Fault::upstream_stream_error).end_reason,
              EndReason::upstream_stream_error);
    EXPECT_EQ(fault_info(Fault::upstream_stream_error).status, 0);
}

TEST(FaultTable, BodiesInBothShapes) {
    char out[512];
    const uint32_t openai = fault_body_write(out, sizeof(out), Fault::client_quota_exceeded,
                                             ErrorShape::openai, {}, {});
    EXPECT_EQ(std::string_view(out, openai),
              R"({"error":{"message":"You exceeded the token quota of this API key.",)"
              R"("type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
    const uint32_t anthropic = fault_body_write(out, sizeof(out), Fault::client_invalid_api_key,
                                                ErrorShape::anthropic, {}, "Bad \"key\".");
    EXPECT_EQ(std::string_view(out, anthropic),
              R"({"type":"error","error":{"type":"authentication_error",)"
              R"("message":"Bad \"key\"."}})");
    EXPECT_EQ(fault_body_write(out, 16, Fault::client_invalid_api_key, ErrorShape::openai, {}, {}),
              0u);
}

// A key used from an address its allowed_cidrs do not hold: 403 ip_not_allowed, Anthropic's
// permission_error, no retry can help.
TEST(FaultTable, TheAddressRefusal) {
    const FaultInfo& info = fault_info(Fault::client_ip_not_allowed);
    EXPECT_EQ(info.status, 403);
    EXPECT_EQ(info.code, "ip_not_allowed");
    EXPECT_EQ(info.anthropic_type, "permission_error");
    EXPECT_EQ(fault_openai_type(info.status), "invalid_request_error");
    EXPECT_TRUE(info.openai_type.empty());
}

TEST(FaultTable, TheLogFullRefusalKeepsTheConnectionAndAsksForARetry) {
    const FaultInfo& info = fault_info(Fault::local_log_full);
    EXPECT_EQ(info.status, 503);
    EXPECT_EQ(info.retry_after_s, 1u);
    EXPECT_FALSE(info.is_close);
}

// A well-framed request refused by policy keeps its connection (the core closes anyway
// when it could not read the body); the gateway's and the upstream's failures close.
TEST(FaultTable, ClientRefusalsKeepTheConnection) {
    for (const Fault fault :
         {Fault::client_method_not_allowed, Fault::client_missing_api_key,
          Fault::client_conflicting_api_keys, Fault::client_invalid_api_key,
          Fault::client_expired_api_key, Fault::client_quota_exceeded, Fault::client_invalid_body,
          Fault::client_model_not_allowed, Fault::client_rate_limited,
          Fault::client_concurrency_limited, Fault::client_model_not_found,
          Fault::client_ip_not_allowed, Fault::client_tokens_limited,
          Fault::client_tokens_too_large, Fault::client_model_price_missing}) {
        EXPECT_FALSE(fault_info(fault).is_close) << fault_name(fault);
        EXPECT_GE(fault_info(fault).status, 400) << fault_name(fault);
        EXPECT_LT(fault_info(fault).status, 500) << fault_name(fault);
    }
    for (const Fault fault : {Fault::local_out_of_memory, Fault::upstream_unreachable,
                              Fault::upstream_protocol_error}) {
        EXPECT_TRUE(fault_info(fault).is_close) << fault_name(fault);
    }
    // Overload on a well-framed request keeps the connection too (the capacity issue): a
    // closed one would come back as a reconnect, adding a handshake to the overload.
    EXPECT_FALSE(fault_info(Fault::local_no_upstream_slot).is_close);
    EXPECT_EQ(fault_info(Fault::local_no_upstream_slot).status, 503);
}

TEST(FaultTable, TheStalledLogRefusalAsksForALaterRetry) {
    const FaultInfo& info = fault_info(Fault::local_log_stalled);
    EXPECT_EQ(info.status, 503);
    EXPECT_EQ(info.code, "usage_log_unavailable");
    EXPECT_GT(info.retry_after_s, 0u);
    EXPECT_FALSE(info.is_retry_safe);
}

}  // namespace
}  // namespace rw
