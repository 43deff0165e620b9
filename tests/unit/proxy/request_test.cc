// tests/unit/proxy/request_test.cc — the client ids a request keeps (request_client_ids):
// what is recorded on the usage row and passed upstream, and what is dropped.
#include "proxy/request.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rw {
namespace {

struct Ids {
    std::string_view client_request_id;
    std::string_view traceparent;
};

Ids ids_of(std::vector<HeaderField> headers) {
    ParsedRequest http{};
    http.headers = headers.data();
    http.header_count = static_cast<uint32_t>(headers.size());
    Ids ids;
    request_client_ids(http, ids.client_request_id, ids.traceparent);
    return ids;
}

constexpr std::string_view good_trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(RequestClientIds, KeepsWellFormedIds) {
    const Ids ids = ids_of({{"X-Request-Id", "abc-123"}, {"Traceparent", good_trace}});
    EXPECT_EQ(ids.client_request_id, "abc-123");
    EXPECT_EQ(ids.traceparent, good_trace);
}

TEST(RequestClientIds, DropsTooLongOrInvisibleClientIds) {
    const std::string longest(record_foreign_id_bytes_max, 'a');
    const std::string too_long(record_foreign_id_bytes_max + 1, 'a');
    EXPECT_EQ(ids_of({{"x-request-id", longest}}).client_request_id, longest);
    EXPECT_EQ(ids_of({{"x-request-id", too_long}}).client_request_id, "");
    EXPECT_EQ(ids_of({{"x-request-id", "has space"}}).client_request_id, "");
    EXPECT_EQ(ids_of({{"x-request-id", "caf\xc3\xa9"}}).client_request_id, "");
    EXPECT_EQ(ids_of({}).client_request_id, "");
}

TEST(RequestClientIds, DropsMisshapenTraceparents) {
    std::string upper(good_trace);
    upper[5] = 'B';
    std::string no_dash(good_trace);
    no_dash[35] = 'x';
    for (const std::string& bad : {upper, no_dash, std::string(good_trace.substr(0, 54)),
                                   std::string(good_trace) + "0", std::string("00-not-a-trace")}) {
        EXPECT_EQ(ids_of({{"traceparent", bad}}).traceparent, "") << bad;
    }
}

}  // namespace
}  // namespace rw
