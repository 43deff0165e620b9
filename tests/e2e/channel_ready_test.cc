// tests/e2e/channel_ready_test.cc — a channel is usable when the admin API says it exists:
// POST /admin/channels (an IP literal, and a host name that needs a lookup) followed at
// once by a request is served, and so is a request right after PATCH moves the channel to
// another upstream. No wait_channels_routable() here: that is the point.
#include <gtest/gtest.h>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

std::string channel_body(const std::string& name, const std::string& base_url) {
    return R"({"name":")" + name + R"(","kind":"openai","base_url":")" + base_url +
           R"(","api_key":")" + std::string(upstream_key) +
           R"(","models":["gpt-4o-mini"],"allow_private_network":true})";
}

TEST(ChannelReady, CreatedChannelServesTheVeryNextRequest) {
    for (const char* host : {"127.0.0.1", "localhost"}) {
        MockUpstream mock;
        ASSERT_NO_FATAL_FAILURE(start_mock(mock));
        Gateway gateway;
        ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SHARDS", "2"}}));
        const Key key = gateway.create_key(R"({"name":"app"})");
        const std::string base_url =
            "http://" + std::string(host) + ":" + std::to_string(mock.port());
        const Response created =
            gateway.admin("POST", "/admin/channels", channel_body("fresh", base_url));
        ASSERT_EQ(created.status, 201) << created.body;
        // Both shards, right away: each connection may land on either.
        for (int index = 0; index < 4; index++) {
            const Response response = gateway.chat(key, chat_body("gpt-4o-mini", false));
            EXPECT_EQ(response.status, 200) << host << ": " << response.body;
        }
        EXPECT_EQ(mock_requests(mock.port()), 4) << host;
    }
}

TEST(ChannelReady, UpdatedChannelUsesItsNewUpstreamAtOnce) {
    MockUpstream first;
    MockUpstream second;
    ASSERT_NO_FATAL_FAILURE(start_mock(first));
    ASSERT_NO_FATAL_FAILURE(start_mock(second));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SHARDS", "1"}}));
    const Key key = gateway.create_key(R"({"name":"app"})");
    const Response created =
        gateway.admin("POST", "/admin/channels",
                      channel_body("moving", "http://127.0.0.1:" + std::to_string(first.port())));
    ASSERT_EQ(created.status, 201) << created.body;
    ASSERT_EQ(gateway.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    const int64_t id = Json(created.body).integer("/id");
    const Response patched = gateway.admin(
        "PATCH", "/admin/channels/" + std::to_string(id),
        R"({"base_url":"http://127.0.0.1:)" + std::to_string(second.port()) + R"("})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    ASSERT_EQ(gateway.chat(key, chat_body("gpt-4o-mini", false)).status, 200);
    EXPECT_EQ(mock_requests(first.port()), 1);
    EXPECT_EQ(mock_requests(second.port()), 1);
}

}  // namespace
}  // namespace rw::test::proxy
