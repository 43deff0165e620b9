// tests/e2e/proxy_key_cidrs_test.cc — who may use a key (the Ledger issue): a key's
// allowed_cidrs are checked against the client address at the request's head, before rpm
// and concurrency are taken, so a refused stranger spends nothing: 403 ip_not_allowed in
// the client's protocol, no upstream reached, no usage row. The client address is the TCP
// peer (a client socket bound to 127.0.0.2 is another address on loopback), or, from a
// peer in RINGWAY_TRUSTED_PROXIES, the first untrusted X-Forwarded-For entry from the
// right; without that knob X-Forwarded-For is ignored. The admin API checks, shows and
// clears the list.
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

class ProxyKeyCidrsTest : public ::testing::Test {
protected:
    void start(EnvList env) {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        env.emplace_back("RINGWAY_SHARDS", "2");
        ASSERT_NO_FATAL_FAILURE(gateway_.start(env));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini"};
        ASSERT_GT(gateway_.create_channel(spec), 0);
        ASSERT_EQ(gateway_.wait_channels_routable().at("main").status, 200);
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }

    // One request on a new connection from `source` (an address of 127.0.0.0/8).
    Response call_from(const std::string& source, const std::string& request) {
        Client client;
        client.set_source_address(source);
        std::string error;
        EXPECT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000), &error)) << error;
        EXPECT_TRUE(client.send(request, Deadline::after_ms(5000)));
        auto response = client.read_response(Deadline::after_ms(10000), false, &error);
        EXPECT_TRUE(response.has_value()) << error << "\nrequest: " << escape_bytes(request);
        return response.value_or(Response{});
    }

    Response chat_from(const std::string& source, const Key& key,
                       std::string_view extra_headers = {}) {
        return call_from(source,
                         post_request("/v1/chat/completions", chat_body("gpt-4o-mini", false),
                                      key.secret, extra_headers));
    }

    // The OpenAI-shaped refusal: 403 ip_not_allowed that keeps the connection and says no
    // retry can help.
    void expect_ip_refused(const Response& response) {
        EXPECT_EQ(response.status, 403) << response.body;
        std::string code;
        EXPECT_EQ(check_error_response(response, &code, false), "");
        EXPECT_EQ(code, "ip_not_allowed") << response.body;
        EXPECT_EQ(response.header("x-should-retry").value_or(""), "false");
    }

    // A chat request from 127.0.0.1 carrying X-Forwarded-For: `forwarded`: its status.
    int status_forwarded(const Key& key, const std::string& forwarded) {
        return chat_from("127.0.0.1", key, "X-Forwarded-For: " + forwarded + "\r\n").status;
    }

    MockUpstream mock_;
    Gateway gateway_;
};

TEST_F(ProxyKeyCidrsTest, AKeyIsRefusedAtItsHeadFromAnAddressOutsideItsCidrs) {
    ASSERT_NO_FATAL_FAILURE(start({}));
    // rpm 1: if a refused request took the minute's one request, the allowed one would get
    // 429, so its 200 also proves the refusal came before rpm was taken.
    const Key key =
        gateway_.create_key(R"({"name":"pinned","allowed_cidrs":["127.0.0.2/32"],"rpm":1})");
    const Response shown = gateway_.admin("GET", "/admin/keys/" + std::to_string(key.id));
    EXPECT_EQ(Json(shown.body).string("/allowed_cidrs/0"), "127.0.0.2/32") << shown.body;

    // From 127.0.0.1: refused on every endpoint, in the client's protocol.
    expect_ip_refused(chat_from("127.0.0.1", key));
    expect_ip_refused(chat_from("127.0.0.1", key));
    const Response anthropic = call_from(
        "127.0.0.1",
        post_request("/v1/messages", R"({"model":"claude-sonnet-4","max_tokens":8,"messages":[]})",
                     key.secret, "anthropic-version: 2023-06-01\r\n"));
    EXPECT_EQ(anthropic.status, 403) << anthropic.body;
    Json anthropic_body(anthropic.body);
    EXPECT_EQ(anthropic_body.string("/type"), "error") << anthropic.body;
    EXPECT_EQ(anthropic_body.string("/error/type"), "permission_error") << anthropic.body;
    EXPECT_FALSE(anthropic_body.has("/error/code"));
    EXPECT_EQ(anthropic.header("x-should-retry").value_or(""), "false");
    EXPECT_FALSE(anthropic.connection_has("close"));
    expect_ip_refused(call_from("127.0.0.1", get_with_key("/v1/models", key.secret)));
    EXPECT_EQ(mock_requests(mock_.port()), 0) << "a refused request reached the upstream";

    // From 127.0.0.2: served, billed once.
    const Response served = chat_from("127.0.0.2", key);
    EXPECT_EQ(served.status, 200) << served.body;
    const auto rows = wait_usage_rows(gateway_.db_path(), key.id, 1, Deadline::after_ms(5000));
    EXPECT_EQ(rows.size(), 1u);
    EXPECT_EQ(mock_requests(mock_.port()), 1);
    Db db(gateway_.db_path());
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + std::to_string(key.id)),
              1);

    // A key without allowed_cidrs is usable from anywhere.
    const Key open = gateway_.create_key(R"({"name":"open"})");
    EXPECT_EQ(chat_from("127.0.0.1", open).status, 200);
    EXPECT_EQ(chat_from("127.0.0.3", open).status, 200);
}

TEST_F(ProxyKeyCidrsTest, TheAdminApiChecksShowsAndClearsTheList) {
    ASSERT_NO_FATAL_FAILURE(start({}));
    const Response bad = gateway_.admin(
        "POST", "/admin/keys", R"({"name":"bad","allowed_cidrs":["10.0.0.0/8","10.0.0.300/8"]})");
    EXPECT_EQ(bad.status, 400) << bad.body;
    EXPECT_EQ(Json(bad.body).string("/error/code"), "invalid_field") << bad.body;
    EXPECT_NE(Json(bad.body).string("/error/message").find("\"10.0.0.300/8\""), std::string::npos)
        << bad.body;
    const Response host_bits =
        gateway_.admin("POST", "/admin/keys", R"({"name":"bad","allowed_cidrs":["10.1.2.3/8"]})");
    EXPECT_EQ(host_bits.status, 400) << host_bits.body;
    EXPECT_NE(host_bits.body.find("10.1.2.3/8"), std::string::npos) << host_bits.body;

    // Stored in canonical form: a bare address is one host, IPv6 in lower case.
    const Key key = gateway_.create_key(
        R"({"name":"lan","allowed_cidrs":["10.0.0.0/8","2001:DB8::/32","127.0.0.2"]})");
    const std::string path = "/admin/keys/" + std::to_string(key.id);
    Json shown(gateway_.admin("GET", path).body);
    ASSERT_EQ(shown.array_size("/allowed_cidrs"), 3u) << shown.text();
    EXPECT_EQ(shown.string("/allowed_cidrs/1"), "2001:db8::/32");
    EXPECT_EQ(shown.string("/allowed_cidrs/2"), "127.0.0.2/32");
    expect_ip_refused(chat_from("127.0.0.1", key));
    EXPECT_EQ(chat_from("127.0.0.2", key).status, 200);

    // A bad PATCH changes nothing; a good one applies at the next request; null clears.
    EXPECT_EQ(gateway_.admin("PATCH", path, R"({"allowed_cidrs":["::1/129"]})").status, 400);
    EXPECT_EQ(Json(gateway_.admin("GET", path).body).array_size("/allowed_cidrs"), 3u);
    const Response narrowed = gateway_.admin("PATCH", path, R"({"allowed_cidrs":["127.0.0.3"]})");
    ASSERT_EQ(narrowed.status, 200) << narrowed.body;
    expect_ip_refused(chat_from("127.0.0.2", key));
    EXPECT_EQ(chat_from("127.0.0.3", key).status, 200);
    const Response cleared = gateway_.admin("PATCH", path, R"({"allowed_cidrs":null})");
    ASSERT_EQ(cleared.status, 200) << cleared.body;
    EXPECT_TRUE(cleared.body.find("\"allowed_cidrs\":null") != std::string::npos) << cleared.body;
    EXPECT_EQ(chat_from("127.0.0.1", key).status, 200);
}

TEST_F(ProxyKeyCidrsTest, ForwardedForIsIgnoredWithoutTrustedProxies) {
    ASSERT_NO_FATAL_FAILURE(start({}));
    const Key ten = gateway_.create_key(R"({"name":"ten","allowed_cidrs":["10.0.0.0/8"]})");
    const Key local = gateway_.create_key(R"({"name":"local","allowed_cidrs":["127.0.0.1/32"]})");
    EXPECT_EQ(status_forwarded(ten, "10.1.2.3"), 403);
    EXPECT_EQ(status_forwarded(local, "10.1.2.3"), 200);
    EXPECT_EQ(mock_requests(mock_.port()), 1);
}

TEST_F(ProxyKeyCidrsTest, ForwardedForIsBelievedFromATrustedProxy) {
    ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_TRUSTED_PROXIES", "127.0.0.1/32"}}));
    const Key ten = gateway_.create_key(R"({"name":"ten","allowed_cidrs":["10.0.0.0/8"]})");
    const Key local = gateway_.create_key(R"({"name":"local","allowed_cidrs":["127.0.0.1/32"]})");
    const Key doc = gateway_.create_key(R"({"name":"doc","allowed_cidrs":["192.0.2.7/32"]})");

    // From the trusted 127.0.0.1 the forwarded client counts, not the peer.
    EXPECT_EQ(status_forwarded(ten, "10.1.2.3"), 200);
    EXPECT_EQ(status_forwarded(local, "10.1.2.3"), 403);
    // A spoofed left entry is never reached: the first untrusted from the right wins.
    EXPECT_EQ(status_forwarded(doc, "10.9.9.9, 192.0.2.7"), 200);
    EXPECT_EQ(status_forwarded(ten, "10.9.9.9, 192.0.2.7"), 403);
    // Trusted hops are skipped; every hop trusted: the leftmost.
    EXPECT_EQ(status_forwarded(doc, "192.0.2.7, 127.0.0.1"), 200);
    EXPECT_EQ(status_forwarded(local, "127.0.0.1, 127.0.0.1"), 200);
    // Garbage is not believed: the request comes from the peer.
    EXPECT_EQ(status_forwarded(ten, "not-an-address"), 403);
    EXPECT_EQ(status_forwarded(local, "not-an-address"), 200);
    EXPECT_EQ(status_forwarded(local, "10.1.2.3:4711"), 200);
    // No header: the peer.
    EXPECT_EQ(chat_from("127.0.0.1", local).status, 200);

    // From an untrusted peer (127.0.0.2) X-Forwarded-For is ignored.
    EXPECT_EQ(chat_from("127.0.0.2", ten, "X-Forwarded-For: 10.1.2.3\r\n").status, 403);
    EXPECT_EQ(mock_requests(mock_.port()), 7);
}

}  // namespace
}  // namespace rw::test::proxy
