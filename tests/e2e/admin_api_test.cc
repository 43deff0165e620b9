// tests/e2e/admin_api_test.cc — the admin API against the real binary: ringway started
// with RINGWAY_ADMIN_TOKEN and RINGWAY_ADMIN_LISTEN=127.0.0.1:0 names its admin port in
// the ready line (`admin=127.0.0.1:PORT`). Keys and channels are created and listed with
// raw HTTP; secrets must come back once and never appear in lists or in the process log.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

#include "tests/support/harness.h"

namespace rw::test {
namespace {

constexpr std::string_view admin_token = "e2e-admin-token-0123456789";

// The port in the ready line's `admin=HOST:PORT` field; 0 when absent.
uint16_t admin_port_of(const std::string& ready_line) {
    const size_t field = ready_line.find(" admin=");
    if (field == std::string::npos) {
        return 0;
    }
    const size_t end = ready_line.find(' ', field + 1);
    const std::string address = ready_line.substr(field + 7, end - field - 7);
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
        return 0;
    }
    return uint16_t(std::stoul(address.substr(colon + 1)));
}

std::string admin_request(std::string_view method, std::string_view path, std::string_view body,
                          std::string_view token = admin_token) {
    std::string request =
        std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: admin\r\n";
    if (!token.empty()) {
        request += "Authorization: Bearer " + std::string(token) + "\r\n";
    }
    if (!body.empty()) {
        request +=
            "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n";
    }
    return request + "\r\n" + std::string(body);
}

class Json {
public:
    explicit Json(const std::string& text) {
        EXPECT_EQ(parser_.parse(text).get(root_), simdjson::SUCCESS) << text;
    }
    int64_t integer(std::string_view pointer) {
        int64_t value = -1;
        EXPECT_EQ(root_.at_pointer(pointer).get_int64().get(value), simdjson::SUCCESS) << pointer;
        return value;
    }
    std::string string(std::string_view pointer) {
        std::string_view value;
        EXPECT_EQ(root_.at_pointer(pointer).get_string().get(value), simdjson::SUCCESS) << pointer;
        return std::string(value);
    }
    size_t array_size(std::string_view pointer) {
        simdjson::dom::array array;
        EXPECT_EQ(root_.at_pointer(pointer).get_array().get(array), simdjson::SUCCESS) << pointer;
        return array.size();
    }

private:
    simdjson::dom::parser parser_;
    simdjson::dom::element root_;
};

class AdminApiTest : public ::testing::Test {
protected:
    void start(EnvList env) {
        env.emplace_back("RINGWAY_ADMIN_TOKEN", std::string(admin_token));
        env.emplace_back("RINGWAY_ADMIN_LISTEN", "127.0.0.1:0");
        std::string error;
        ASSERT_TRUE(ringway_.start(env, &error)) << error;
        admin_port_ = admin_port_of(ringway_.ready_line());
        ASSERT_NE(admin_port_, 0) << "the ready line names no admin=HOST:PORT: "
                                  << ringway_.ready_line();
    }
    Response call(std::string_view method, std::string_view path, std::string_view body = {},
                  std::string_view token = admin_token) {
        std::string error;
        const auto response = http_exchange(admin_port_, admin_request(method, path, body, token),
                                            Deadline::after_ms(10000), false, &error);
        EXPECT_TRUE(response.has_value()) << error;
        return response.value_or(Response{});
    }

    Ringway ringway_;
    uint16_t admin_port_ = 0;
};

TEST_F(AdminApiTest, CreatesAndListsKeysAndChannels) {
    ASSERT_NO_FATAL_FAILURE(start({}));
    const std::string upstream_key = "sk-e2e-upstream-secret-abcdwxyz";
    const Response key =
        call("POST", "/admin/keys", R"({"name":"app","quota_tokens":1000000,"rpm":60})");
    ASSERT_EQ(key.status, 201) << key.body;
    EXPECT_EQ(key.header("content-type").value_or(""), "application/json");
    Json created(key.body);
    const std::string secret = created.string("/key");
    const int64_t key_id = created.integer("/id");
    EXPECT_TRUE(secret.starts_with("sk-rw-")) << secret;
    EXPECT_EQ(created.integer("/quota_tokens"), 1000000);

    const Response channel =
        call("POST", "/admin/channels",
             R"({"name":"openai","kind":"openai","base_url":"https://api.openai.com","api_key":")" +
                 upstream_key + R"(","models":["gpt-4o-mini"],"priority":2})");
    ASSERT_EQ(channel.status, 201) << channel.body;
    EXPECT_EQ(Json(channel.body).string("/api_key"), "sk-\u2026wxyz");

    const Response keys = call("GET", "/admin/keys");
    ASSERT_EQ(keys.status, 200) << keys.body;
    Json key_list(keys.body);
    ASSERT_EQ(key_list.array_size("/data"), 1u);
    EXPECT_EQ(key_list.integer("/data/0/id"), key_id);
    EXPECT_EQ(key_list.string("/data/0/name"), "app");
    EXPECT_EQ(key_list.integer("/data/0/rpm"), 60);
    EXPECT_EQ(keys.body.find(secret), std::string::npos);

    const Response channels = call("GET", "/admin/channels");
    ASSERT_EQ(channels.status, 200) << channels.body;
    Json channel_list(channels.body);
    ASSERT_EQ(channel_list.array_size("/data"), 1u);
    EXPECT_EQ(channel_list.string("/data/0/name"), "openai");
    EXPECT_EQ(channel_list.string("/data/0/models/0"), "gpt-4o-mini");
    EXPECT_EQ(channel_list.integer("/data/0/priority"), 2);
    EXPECT_EQ(channels.body.find(upstream_key), std::string::npos);

    const Response revoked = call("DELETE", "/admin/keys/" + std::to_string(key_id));
    ASSERT_EQ(revoked.status, 200) << revoked.body;
    EXPECT_EQ(Json(revoked.body).string("/status"), "revoked");

    // Nothing secret reached the operator log. The line was written before the reply, but
    // the harness reads the pipe on its own thread: wait for it.
    EXPECT_TRUE(ringway_.process()
                    .wait_for_line(Stream::err, "event=admin_key_created", Deadline::after_ms(5000))
                    .has_value());
    const std::string log = ringway_.stderr_text();
    EXPECT_EQ(log.find(secret), std::string::npos);
    EXPECT_EQ(log.find(upstream_key), std::string::npos);
    EXPECT_EQ(log.find(admin_token), std::string::npos);
}

TEST_F(AdminApiTest, RefusesWithoutTheToken) {
    ASSERT_NO_FATAL_FAILURE(start({}));
    const Response missing = call("GET", "/admin/keys", {}, {});
    EXPECT_EQ(missing.status, 401);
    std::string code;
    EXPECT_EQ(check_error_response(missing, &code), "");
    EXPECT_EQ(code, "missing_admin_token");
    const Response wrong = call("POST", "/admin/keys", R"({"name":"x"})", "not-the-admin-token");
    EXPECT_EQ(wrong.status, 401);
    EXPECT_EQ(check_error_response(wrong, &code), "");
    EXPECT_EQ(code, "invalid_admin_token");
    EXPECT_EQ(ringway_.stderr_text().find("not-the-admin-token"), std::string::npos);
    // Nothing was created by the refused write.
    const Response keys = call("GET", "/admin/keys");
    ASSERT_EQ(keys.status, 200);
    EXPECT_EQ(Json(keys.body).array_size("/data"), 0u);
}

TEST_F(AdminApiTest, ValidationErrorsAreOpenAiShaped) {
    ASSERT_NO_FATAL_FAILURE(start({}));
    std::string code;
    const Response scheme = call(
        "POST", "/admin/channels",
        R"({"name":"x","kind":"openai","base_url":"ftp://example.com","api_key":"sk-abcdefghijklmnop"})");
    EXPECT_EQ(scheme.status, 400);
    EXPECT_EQ(check_error_response(scheme, &code), "");
    EXPECT_EQ(code, "invalid_field");
    const Response bad_json = call("POST", "/admin/keys", "{\"name\":");
    EXPECT_EQ(bad_json.status, 400);
    EXPECT_EQ(check_error_response(bad_json, &code), "");
    EXPECT_EQ(code, "invalid_json");
}

TEST_F(AdminApiTest, FirstStartChannelFromEnvironment) {
    const std::string openai_key = "sk-e2e-bootstrap-secret-9876";
    ASSERT_NO_FATAL_FAILURE(
        start({{"OPENAI_API_KEY", openai_key}, {"OPENAI_BASE_URL", "https://api.openai.com/v1"}}));
    const Response channels = call("GET", "/admin/channels");
    ASSERT_EQ(channels.status, 200) << channels.body;
    Json list(channels.body);
    ASSERT_EQ(list.array_size("/data"), 1u);
    EXPECT_EQ(list.string("/data/0/name"), "openai");
    EXPECT_EQ(list.string("/data/0/kind"), "openai");
    EXPECT_EQ(list.string("/data/0/base_url"), "https://api.openai.com");
    EXPECT_EQ(list.array_size("/data/0/models"), 0u);
    EXPECT_EQ(channels.body.find(openai_key), std::string::npos);
    EXPECT_EQ(ringway_.stderr_text().find(openai_key), std::string::npos);
}

TEST(AdminApiDisabled, NoTokenNoListener) {
    Ringway ringway;
    std::string error;
    ASSERT_TRUE(ringway.start({{"RINGWAY_ADMIN_LISTEN", "127.0.0.1:0"}}, &error)) << error;
    EXPECT_EQ(ringway.ready_line().find("admin=127.0.0.1:"), std::string::npos)
        << ringway.ready_line();
}

}  // namespace
}  // namespace rw::test
