// tests/unit/proxy/admin/server_test.cc — the admin API in process: a real AdminServer on
// 127.0.0.1:0, real sockets, a real SQLite file in a fresh temp dir and a real Writer
// thread. Covers auth, every endpoint's happy path and its validation errors, secrets
// shown once and never listed, revocation reaching the snapshot, masked upstream keys,
// usage/log pagination over rows the writer committed, the base_url policy and the
// first-start channel bootstrap.
#include "proxy/admin/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <string>
#include <thread>

#include "proxy/admin/base_url.h"
#include "proxy/admin/bootstrap.h"
#include "storage/keys.h"
#include "storage/queries.h"
#include "storage/snapshot.h"
#include "storage/writer.h"
#include "tests/unit/storage/storage_test_support.h"

namespace rw {
namespace {

constexpr std::string_view test_token = "admin-token-0123456789abcdef";

struct HttpReply {
    int status = 0;
    std::string head;  // Status line and headers.
    std::string body;
};

// One request on a new connection; reads until the server closes (Connection: close).
HttpReply http_call(uint16_t port, std::string_view method, std::string_view target,
                    std::string_view body = {}, std::string_view authorization = {},
                    bool is_authorized = true) {
    HttpReply reply;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
        ADD_FAILURE() << "connect: " << std::strerror(errno);
        ::close(fd);
        return reply;
    }
    std::string request =
        std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: admin\r\n";
    if (!authorization.empty()) {
        request += "Authorization: " + std::string(authorization) + "\r\n";
    } else if (is_authorized) {
        request += "Authorization: Bearer " + std::string(test_token) + "\r\n";
    }
    if (!body.empty() || method == "POST" || method == "PATCH") {
        request +=
            "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n";
    }
    request += "\r\n";
    request += body;
    EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
    std::string raw;
    char buffer[8192];
    for (;;) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 10000) <= 0) {
            ADD_FAILURE() << "timed out waiting for the admin response";
            break;
        }
        const ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
        if (got <= 0) {
            break;
        }
        raw.append(buffer, size_t(got));
    }
    ::close(fd);
    const size_t head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos || raw.size() < 12) {
        ADD_FAILURE() << "no complete response: " << raw;
        return reply;
    }
    reply.head = raw.substr(0, head_end);
    reply.body = raw.substr(head_end + 4);
    reply.status = std::stoi(raw.substr(9, 3));
    return reply;
}

// JSON access by pointer (RFC 6901) on a parsed copy of the body.
class Json {
public:
    explicit Json(const std::string& text) {
        EXPECT_EQ(parser_.parse(text).get(root_), simdjson::SUCCESS) << text;
    }
    int64_t integer(std::string_view pointer) {
        int64_t value = -999999;
        EXPECT_EQ(root_.at_pointer(pointer).get_int64().get(value), simdjson::SUCCESS) << pointer;
        return value;
    }
    std::string string(std::string_view pointer) {
        std::string_view value;
        EXPECT_EQ(root_.at_pointer(pointer).get_string().get(value), simdjson::SUCCESS) << pointer;
        return std::string(value);
    }
    bool boolean(std::string_view pointer) {
        bool value = false;
        EXPECT_EQ(root_.at_pointer(pointer).get_bool().get(value), simdjson::SUCCESS) << pointer;
        return value;
    }
    bool is_null(std::string_view pointer) {
        simdjson::dom::element element;
        return root_.at_pointer(pointer).get(element) == simdjson::SUCCESS && element.is_null();
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

std::string error_code_of(const HttpReply& reply) {
    Json json(reply.body);
    EXPECT_FALSE(json.string("/error/message").empty());
    const std::string type = json.string("/error/type");
    EXPECT_EQ(type, reply.status >= 500 ? "server_error" : "invalid_request_error");
    return json.string("/error/code");
}

Config admin_config(std::string_view token) {
    Config config{};
    auto& address = reinterpret_cast<sockaddr_in&>(config.admin_listen.address);
    address.sin_family = AF_INET;
    address.sin_port = 0;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    config.admin_listen.address_bytes = sizeof(sockaddr_in);
    std::snprintf(config.admin_listen.text, sizeof(config.admin_listen.text), "127.0.0.1:0");
    config.admin_token = std::string(token);
    return config;
}

class AdminServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        storage_config_ = test::test_config(dir_);
        std::string error;
        ASSERT_TRUE(writer_.open(storage_config_, 1, error)) << error;
        writer_thread_ = std::thread([this] { writer_.run(); });
        ASSERT_TRUE(snapshots_.open(storage_config_, 1, error)) << error;
        ASSERT_TRUE(snapshots_.reload(error)) << error;
        ASSERT_TRUE(queries_.open(storage_config_, error)) << error;
        ASSERT_TRUE(server_.start(admin_config(test_token), writer_, catalog_, queries_, error))
            << error;
        ASSERT_TRUE(server_.is_enabled());
        ASSERT_NE(server_.port(), 0);
        port_ = server_.port();
    }
    void TearDown() override {
        server_.stop();
        writer_.request_stop();
        if (writer_thread_.joinable()) {
            writer_thread_.join();
        }
    }

    const Snapshot& snapshot() {
        const Snapshot* current = snapshots_.publisher().current();
        EXPECT_NE(current, nullptr);
        return *current;
    }
    const ChannelEntry* channel_in_snapshot(int64_t id) {
        for (const ChannelEntry& channel : snapshot().channels()) {
            if (channel.id == id) {
                return &channel;
            }
        }
        return nullptr;
    }
    HttpReply call(std::string_view method, std::string_view target, std::string_view body = {}) {
        return http_call(port_, method, target, body);
    }

    test::TempDir dir_;
    StorageConfig storage_config_;
    Writer writer_;
    std::thread writer_thread_;
    SnapshotStore snapshots_;
    Catalog catalog_{writer_, snapshots_};
    Queries queries_;
    AdminServer server_;
    uint16_t port_ = 0;
};

TEST(AdminToken, ComparesWholeTokens) {
    EXPECT_TRUE(admin_token_matches("secret-token-123", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("secret-token-124", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("secret-token-12", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("secret-token-1234", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("", "secret-token-123"));
    EXPECT_FALSE(admin_token_matches("", ""));  // No token configured matches nothing.
    EXPECT_FALSE(admin_token_matches("anything", ""));
}

TEST(AdminServerDisabled, NoTokenOpensNothing) {
    Writer writer;
    SnapshotStore snapshots;
    Catalog catalog(writer, snapshots);
    Queries queries;
    AdminServer server;
    std::string error;
    ASSERT_TRUE(server.start(admin_config(""), writer, catalog, queries, error)) << error;
    EXPECT_FALSE(server.is_enabled());
    EXPECT_EQ(server.port(), 0);
    EXPECT_TRUE(server.listen_text().empty());
    server.stop();
}

TEST_F(AdminServerTest, RefusesMissingAndWrongTokens) {
    const HttpReply missing = http_call(port_, "GET", "/admin/keys", {}, {}, false);
    EXPECT_EQ(missing.status, 401);
    EXPECT_EQ(error_code_of(missing), "missing_admin_token");
    EXPECT_NE(missing.head.find("WWW-Authenticate: Bearer"), std::string::npos);
    EXPECT_NE(missing.head.find("Connection: close"), std::string::npos);

    const HttpReply wrong =
        http_call(port_, "GET", "/admin/keys", {}, "Bearer admin-token-0123456789abcdeX");
    EXPECT_EQ(wrong.status, 401);
    EXPECT_EQ(error_code_of(wrong), "invalid_admin_token");
    const HttpReply shorter = http_call(port_, "GET", "/admin/keys", {}, "Bearer admin-token");
    EXPECT_EQ(shorter.status, 401);
    const HttpReply basic =
        http_call(port_, "GET", "/admin/keys", {}, "Basic " + std::string(test_token));
    EXPECT_EQ(basic.status, 401);
    // An unauthenticated write is refused before its body is read: nothing is created.
    const HttpReply write =
        http_call(port_, "POST", "/admin/keys", R"({"name":"x"})", "Bearer nope-nope-nope-nope");
    EXPECT_EQ(write.status, 401);
    EXPECT_TRUE(snapshot().keys().empty());

    const HttpReply right =
        http_call(port_, "GET", "/admin/keys", {}, "bearer " + std::string(test_token));
    EXPECT_EQ(right.status, 200) << right.body;
    EXPECT_EQ(Json(right.body).array_size("/data"), 0u);
}

TEST_F(AdminServerTest, UnknownPathsAndMethods) {
    EXPECT_EQ(call("GET", "/admin/nothing").status, 404);
    EXPECT_EQ(call("GET", "/admin/keys/abc").status, 404);
    const HttpReply missing_key = call("GET", "/admin/keys/999");
    EXPECT_EQ(missing_key.status, 404);
    EXPECT_EQ(error_code_of(missing_key), "not_found");
    EXPECT_EQ(call("DELETE", "/admin/keys/999").status, 404);
    EXPECT_EQ(call("DELETE", "/admin/channels/999").status, 404);
    EXPECT_EQ(call("PATCH", "/admin/channels/999", R"({"priority":1})").status, 404);
    const HttpReply put = call("PUT", "/admin/keys");
    EXPECT_EQ(put.status, 405);
    EXPECT_NE(put.head.find("Allow: GET, POST"), std::string::npos);
}

TEST_F(AdminServerTest, KeyCreateShowsTheSecretOnce) {
    const HttpReply created =
        call("POST", "/admin/keys",
             R"({"name":"app","quota_tokens":1000000,"models":["gpt-4o","o3"],)"
             R"("rpm":60,"max_concurrency":4,"expires_at":4102444800})");
    ASSERT_EQ(created.status, 201) << created.body;
    Json json(created.body);
    const std::string secret = json.string("/key");
    const int64_t id = json.integer("/id");
    EXPECT_TRUE(secret.starts_with("sk-rw-"));
    EXPECT_EQ(secret.size(), key_secret_bytes);
    EXPECT_EQ(json.string("/name"), "app");
    EXPECT_EQ(json.integer("/quota_tokens"), 1000000);
    EXPECT_EQ(json.integer("/rpm"), 60);
    EXPECT_EQ(json.integer("/max_concurrency"), 4);
    EXPECT_EQ(json.integer("/expires_at"), 4102444800);
    EXPECT_EQ(json.array_size("/models"), 2u);
    EXPECT_EQ(json.string("/models/1"), "o3");
    EXPECT_EQ(json.string("/status"), "active");
    EXPECT_TRUE(secret.starts_with(json.string("/key_prefix")));

    // The data plane knows the key at once, by the hash of the secret.
    const KeyEntry* entry = snapshot().find_key(key_hash(secret));
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->id, id);
    EXPECT_TRUE(entry->is_active);
    EXPECT_EQ(entry->rpm, 60u);
    EXPECT_TRUE(entry->allows_model("o3"));
    EXPECT_FALSE(entry->allows_model("gpt-3.5-turbo"));

    // Neither the secret nor its hash ever comes back.
    const KeyHash hash = key_hash(secret);
    char hash_hex[2 * key_hash_bytes + 1];
    for (uint32_t i = 0; i < key_hash_bytes; i++) {
        std::snprintf(hash_hex + 2 * i, 3, "%02x", hash[i]);
    }
    for (const HttpReply& read :
         {call("GET", "/admin/keys"), call("GET", "/admin/keys/" + std::to_string(id))}) {
        ASSERT_EQ(read.status, 200) << read.body;
        EXPECT_EQ(read.body.find(secret), std::string::npos);
        EXPECT_EQ(read.body.find(secret.substr(12)), std::string::npos);
        EXPECT_EQ(read.body.find(hash_hex), std::string::npos);
        EXPECT_EQ(read.body.find("\"key\":"), std::string::npos);
        EXPECT_EQ(read.body.find("hash"), std::string::npos);
    }
    Json list(call("GET", "/admin/keys").body);
    EXPECT_EQ(list.array_size("/data"), 1u);
    EXPECT_EQ(list.integer("/data/0/id"), id);
    EXPECT_EQ(list.string("/data/0/name"), "app");
}

TEST_F(AdminServerTest, KeyValidationErrors) {
    const HttpReply no_name = call("POST", "/admin/keys", R"({"rpm":5})");
    EXPECT_EQ(no_name.status, 400);
    EXPECT_EQ(error_code_of(no_name), "missing_field");
    const HttpReply bad_json = call("POST", "/admin/keys", R"({"name":"app",)");
    EXPECT_EQ(bad_json.status, 400);
    EXPECT_EQ(error_code_of(bad_json), "invalid_json");
    const HttpReply not_object = call("POST", "/admin/keys", R"(["name"])");
    EXPECT_EQ(error_code_of(not_object), "invalid_json");
    const HttpReply trailing = call("POST", "/admin/keys", R"({"name":"a"} {"name":"b"})");
    EXPECT_EQ(trailing.status, 400);
    EXPECT_EQ(error_code_of(trailing), "invalid_json");
    const HttpReply unknown = call("POST", "/admin/keys", R"({"name":"app","quota":5})");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_EQ(error_code_of(unknown), "invalid_field");
    EXPECT_NE(unknown.body.find("quota"), std::string::npos);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","quota_tokens":-1})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","rpm":1.5})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","rpm":"5"})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","models":"gpt-4o"})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":""})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", R"({"name":"app","key":"short"})").status, 400);
    EXPECT_EQ(call("POST", "/admin/keys", "").status, 400);
    EXPECT_TRUE(snapshot().keys().empty());  // Nothing half-created.
}

TEST_F(AdminServerTest, KeyImportPatchAndRevoke) {
    const std::string secret = "sk-imported-0123456789abcdef";
    const HttpReply imported =
        call("POST", "/admin/keys", R"({"name":"old","key":")" + secret + R"("})");
    ASSERT_EQ(imported.status, 201) << imported.body;
    Json json(imported.body);
    EXPECT_EQ(json.string("/key"), secret);
    const int64_t id = json.integer("/id");
    EXPECT_TRUE(json.is_null("/quota_tokens"));
    EXPECT_TRUE(json.is_null("/models"));
    ASSERT_NE(snapshot().find_key(key_hash(secret)), nullptr);
    const HttpReply duplicate =
        call("POST", "/admin/keys", R"({"name":"again","key":")" + secret + R"("})");
    EXPECT_EQ(duplicate.status, 409);
    EXPECT_EQ(duplicate.body.find(secret), std::string::npos);

    const std::string path = "/admin/keys/" + std::to_string(id);
    const HttpReply patched =
        call("PATCH", path, R"({"rpm":7,"models":["gpt-4o"],"name":"renamed"})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    Json after(patched.body);
    EXPECT_EQ(after.integer("/rpm"), 7);
    EXPECT_EQ(after.string("/name"), "renamed");
    EXPECT_TRUE(after.is_null("/quota_tokens"));  // Untouched members keep their value.
    const KeyEntry* entry = snapshot().find_key(key_hash(secret));
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->rpm, 7u);
    EXPECT_FALSE(entry->allows_model("o3"));
    EXPECT_EQ(call("PATCH", path, R"({"key":"sk-another-0123456789"})").status, 400);
    EXPECT_EQ(call("PATCH", path, R"({"rpm":-1})").status, 400);

    const HttpReply revoked = call("DELETE", path);
    ASSERT_EQ(revoked.status, 200) << revoked.body;
    EXPECT_EQ(Json(revoked.body).string("/status"), "revoked");
    // The key stops working at once: the published snapshot has it inactive.
    const KeyEntry* gone = snapshot().find_key(key_hash(secret));
    ASSERT_NE(gone, nullptr);
    EXPECT_FALSE(gone->is_active);
    EXPECT_EQ(Json(call("GET", path).body).string("/status"), "revoked");  // History stays.
}

TEST_F(AdminServerTest, ChannelCreateListPatchDelete) {
    const std::string upstream_key = "sk-upstream-secret-abcdefghijkl";
    const HttpReply created = call(
        "POST", "/admin/channels",
        R"({"name":"main","kind":"openai","base_url":"https://api.openai.com","api_key":")" +
            upstream_key +
            R"(","models":["gpt-4o"],"model_map":{"gpt-4o":"gpt-4o-2024-08-06"},"priority":5,"weight":3})");
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(created.body.find(upstream_key), std::string::npos);
    Json json(created.body);
    const int64_t id = json.integer("/id");
    EXPECT_EQ(json.string("/api_key"), "sk-\u2026ijkl");
    EXPECT_EQ(json.string("/kind"), "openai");
    EXPECT_EQ(json.string("/model_map/gpt-4o"), "gpt-4o-2024-08-06");
    EXPECT_EQ(json.integer("/priority"), 5);
    EXPECT_EQ(json.integer("/weight"), 3);
    EXPECT_TRUE(json.boolean("/enabled"));
    EXPECT_TRUE(json.is_null("/ca_file"));
    const ChannelEntry* entry = channel_in_snapshot(id);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->api_key, upstream_key);
    EXPECT_EQ(entry->priority, 5);

    const HttpReply list = call("GET", "/admin/channels");
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.body.find(upstream_key), std::string::npos);
    EXPECT_EQ(Json(list.body).string("/data/0/api_key"), "sk-\u2026ijkl");

    // PATCH without api_key keeps the stored secret.
    const std::string path = "/admin/channels/" + std::to_string(id);
    const HttpReply patched = call("PATCH", path, R"({"priority":9,"enabled":false})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_EQ(Json(patched.body).integer("/priority"), 9);
    entry = channel_in_snapshot(id);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->api_key, upstream_key);
    EXPECT_EQ(entry->priority, 9);
    EXPECT_FALSE(entry->is_enabled);
    EXPECT_EQ(call("PATCH", path, R"({"kind":"gemini"})").status, 400);
    EXPECT_EQ(call("PATCH", path, R"({"base_url":"ftp://x"})").status, 400);
    ASSERT_EQ(call("PATCH", path, R"({"api_key":"sk-rotated-key-000000wxyz"})").status, 200);
    EXPECT_EQ(channel_in_snapshot(id)->api_key, "sk-rotated-key-000000wxyz");

    const HttpReply deleted = call("DELETE", path);
    ASSERT_EQ(deleted.status, 200) << deleted.body;
    EXPECT_TRUE(Json(deleted.body).boolean("/deleted"));
    EXPECT_EQ(channel_in_snapshot(id), nullptr);
    EXPECT_EQ(call("GET", path).status, 404);
}

TEST_F(AdminServerTest, ChannelValidationErrors) {
    const auto create = [&](const std::string& fields) {
        return call("POST", "/admin/channels", "{" + fields + "}");
    };
    const std::string base = R"("name":"c","api_key":"sk-upstream-0000000000",)";
    const HttpReply unknown_kind =
        create(base + R"("kind":"gemini","base_url":"https://x.example")");
    EXPECT_EQ(unknown_kind.status, 400);
    EXPECT_EQ(error_code_of(unknown_kind), "invalid_field");
    const HttpReply bad_scheme = create(base + R"("kind":"openai","base_url":"ftp://x.example")");
    EXPECT_EQ(bad_scheme.status, 400);
    EXPECT_NE(bad_scheme.body.find("http"), std::string::npos);
    EXPECT_EQ(create(base + R"("kind":"openai","base_url":"https://")").status, 400);
    EXPECT_EQ(create(base + R"("kind":"openai","base_url":"https://:443/v1")").status, 400);
    const HttpReply no_name =
        create(R"("kind":"openai","api_key":"sk-abcdefghijklmnop","base_url":"https://x.example")");
    EXPECT_EQ(no_name.status, 400);
    EXPECT_EQ(error_code_of(no_name), "missing_field");
    EXPECT_EQ(create(R"("name":"c","kind":"openai","base_url":"https://x.example")").status, 400);
    const HttpReply loopback =
        create(base + R"("kind":"openai-compatible","base_url":"http://127.0.0.1:11434")");
    EXPECT_EQ(loopback.status, 400);
    EXPECT_NE(loopback.body.find("allow_private_network"), std::string::npos);
    const HttpReply metadata = create(
        base +
        R"("kind":"openai","base_url":"http://169.254.169.254","allow_private_network":true)");
    EXPECT_EQ(metadata.status, 400);
    EXPECT_EQ(call("POST", "/admin/channels", "not json").status, 400);
    EXPECT_TRUE(snapshot().channels().empty());
    const HttpReply local = create(
        base +
        R"("kind":"openai-compatible","base_url":"http://127.0.0.1:11434","allow_private_network":true)");
    EXPECT_EQ(local.status, 201) << local.body;
    EXPECT_TRUE(Json(local.body).boolean("/allow_private_network"));
    EXPECT_EQ(Json(local.body).array_size("/models"), 0u);
}

TEST_F(AdminServerTest, UsageAndLogsPaginate) {
    const HttpReply created = call("POST", "/admin/keys", R"({"name":"metered"})");
    ASSERT_EQ(created.status, 201);
    const int64_t key_id = Json(created.body).integer("/id");
    // 25 rows for the key over 2023-11-14..16 (9, 8, 8), 5 rows for another key.
    for (uint64_t i = 0; i < 30; i++) {
        const int64_t owner = i < 25 ? key_id : key_id + 100;
        const int64_t ts_ms = 1700000000000 + int64_t(i % 3) * 86400000;
        ASSERT_TRUE(writer_.queue(0).try_reserve());
        writer_.queue(0).push(test::make_record(i, owner, 10, ts_ms));
    }
    writer_.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer_.rows_written() == 30; }));

    const std::string key_param = "key_id=" + std::to_string(key_id);
    const HttpReply usage = call("GET", "/admin/usage?" + key_param + "&since=2023-11-15");
    ASSERT_EQ(usage.status, 200) << usage.body;
    Json days(usage.body);
    ASSERT_EQ(days.array_size("/data"), 2u);
    EXPECT_EQ(days.string("/data/0/day"), "2023-11-15");
    EXPECT_EQ(days.integer("/data/0/requests"), 8);
    EXPECT_EQ(days.integer("/data/0/total_tokens"), 80);
    EXPECT_EQ(days.integer("/data/0/key_id"), key_id);
    EXPECT_EQ(days.string("/data/1/day"), "2023-11-16");
    // Unix seconds work for bounds too: until 2023-11-14 12:00 UTC is that day.
    Json first_day(call("GET", "/admin/usage?" + key_param + "&until=1699963200").body);
    ASSERT_EQ(first_day.array_size("/data"), 1u);
    EXPECT_EQ(first_day.integer("/data/0/requests"), 9);
    EXPECT_EQ(call("GET", "/admin/usage?since=yesterday").status, 400);
    EXPECT_EQ(call("GET", "/admin/usage?key=1").status, 400);

    std::vector<int64_t> seen;
    std::string cursor;
    for (int page = 0; page < 10; page++) {
        const HttpReply logs = call("GET", "/admin/logs?" + key_param + "&limit=10" + cursor);
        ASSERT_EQ(logs.status, 200) << logs.body;
        Json json(logs.body);
        const size_t count = json.array_size("/data");
        for (size_t i = 0; i < count; i++) {
            const std::string row = "/data/" + std::to_string(i);
            EXPECT_EQ(json.integer(row + "/key_id"), key_id);
            const int64_t id = json.integer(row + "/id");
            if (!seen.empty()) {
                EXPECT_LT(id, seen.back());  // Newest first, no repeats.
            }
            seen.push_back(id);
        }
        if (json.is_null("/next_before")) {
            EXPECT_EQ(count, 5u);  // 10 + 10 + 5.
            break;
        }
        EXPECT_EQ(json.integer("/next_before"), seen.back());
        cursor = "&before=" + std::to_string(seen.back());
    }
    EXPECT_EQ(seen.size(), 25u);
    Json newest(call("GET", "/admin/logs?limit=1").body);
    EXPECT_EQ(newest.string("/data/0/request_id"), "req-29");
    EXPECT_EQ(newest.string("/data/0/end_reason"), "complete");
    EXPECT_EQ(newest.integer("/data/0/total_tokens"), 10);
    EXPECT_EQ(call("GET", "/admin/logs?limit=0").status, 400);
    EXPECT_EQ(call("GET", "/admin/logs?limit=5000").status, 400);
    EXPECT_EQ(call("GET", "/admin/logs?before=-1").status, 400);
    EXPECT_EQ(call("POST", "/admin/logs", "{}").status, 405);
}

TEST(AdminBaseUrl, Policy) {
    EXPECT_EQ(admin_base_url_check("https://api.openai.com", false), "");
    EXPECT_EQ(admin_base_url_check("https://api.openai.com:8443/v1", false), "");
    EXPECT_EQ(admin_base_url_check("http://[2001:db8::1]:8080", false), "");
    EXPECT_NE(admin_base_url_check("ftp://api.openai.com", false), "");
    EXPECT_NE(admin_base_url_check("file:///etc/passwd", true), "");
    EXPECT_NE(admin_base_url_check("https://", false), "");
    EXPECT_NE(admin_base_url_check("https://user:pw@api.openai.com", false), "");
    EXPECT_NE(admin_base_url_check("https://api.openai.com:0", false), "");
    EXPECT_NE(admin_base_url_check("https://api.openai.com:65536", false), "");
    EXPECT_NE(admin_base_url_check("https://api.openai.com/?x=1", false), "");
    EXPECT_NE(admin_base_url_check("https://api openai.com", false), "");
    // Private ranges need the flag; link-local and metadata never pass.
    for (const char* url :
         {"http://127.0.0.1:8000", "http://10.1.2.3", "http://192.168.1.1", "http://172.20.0.1",
          "http://100.64.0.1", "http://localhost:11434", "http://[::1]:8000", "http://[fd12::1]",
          "http://0x7f.1", "http://2130706433", "http://0.0.0.0"}) {
        EXPECT_NE(admin_base_url_check(url, false), "") << url;
        EXPECT_EQ(admin_base_url_check(url, true), "") << url;
    }
    for (const char* url :
         {"http://169.254.169.254", "http://2852039166", "http://0xa9.0xfe.0xa9.0xfe",
          "http://[::ffff:169.254.169.254]", "http://[fe80::1]", "http://[fd00:ec2::254]",
          "http://metadata.google.internal", "http://224.0.0.1", "http://1.2.3.4.5"}) {
        EXPECT_NE(admin_base_url_check(url, true), "") << url;
    }
}

// ---- First start ----------------------------------------------------------------------

const char* map_lookup(const char* name, void* context) {
    const auto& env = *static_cast<std::map<std::string, std::string>*>(context);
    const auto found = env.find(name);
    return found == env.end() ? nullptr : found->second.c_str();
}

TEST_F(AdminServerTest, BootstrapCreatesChannelsOnce) {
    std::map<std::string, std::string> env;
    std::string error;
    ASSERT_TRUE(bootstrap_channels_from_env(catalog_, queries_, map_lookup, &env, error)) << error;
    EXPECT_TRUE(snapshot().channels().empty());  // Nothing set: nothing created.

    env["OPENAI_API_KEY"] = "sk-openai-bootstrap-secret-1234";
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9999/v1/";
    env["ANTHROPIC_API_KEY"] = "sk-ant-bootstrap-secret-5678";
    ASSERT_TRUE(bootstrap_channels_from_env(catalog_, queries_, map_lookup, &env, error)) << error;
    ASSERT_EQ(snapshot().channels().size(), 2u);
    const ChannelEntry* openai = nullptr;
    const ChannelEntry* anthropic = nullptr;
    for (const ChannelEntry& channel : snapshot().channels()) {
        (channel.kind == ChannelKind::openai ? openai : anthropic) = &channel;
    }
    ASSERT_NE(openai, nullptr);
    ASSERT_NE(anthropic, nullptr);
    EXPECT_EQ(openai->base_url, "http://127.0.0.1:9999");
    EXPECT_TRUE(openai->allow_private_network);  // The operator named a local server.
    EXPECT_EQ(openai->api_key, "sk-openai-bootstrap-secret-1234");
    EXPECT_TRUE(openai->models.empty());  // Every model.
    EXPECT_EQ(anthropic->kind, ChannelKind::anthropic);
    EXPECT_EQ(anthropic->base_url, "https://api.anthropic.com");
    EXPECT_FALSE(anthropic->allow_private_network);

    // A second start finds channels and changes nothing.
    env["OPENAI_API_KEY"] = "sk-openai-other-secret-0000";
    ASSERT_TRUE(bootstrap_channels_from_env(catalog_, queries_, map_lookup, &env, error)) << error;
    EXPECT_EQ(snapshot().channels().size(), 2u);
}

TEST_F(AdminServerTest, BootstrapRefusesABadBaseUrl) {
    std::map<std::string, std::string> env{{"OPENAI_API_KEY", "sk-openai-bootstrap-secret-1234"},
                                           {"OPENAI_BASE_URL", "http://169.254.169.254"}};
    std::string error;
    EXPECT_FALSE(bootstrap_channels_from_env(catalog_, queries_, map_lookup, &env, error));
    EXPECT_NE(error.find("OPENAI_API_KEY"), std::string::npos);
    EXPECT_EQ(error.find("sk-openai"), std::string::npos);  // Never the secret.
    EXPECT_TRUE(snapshot().channels().empty());
}

TEST(AdminBootstrapDefault, OpenAiDefaultBase) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    SnapshotStore snapshots;
    ASSERT_TRUE(snapshots.open(config, 1, error)) << error;
    Catalog catalog(writer, snapshots);
    Queries queries;
    ASSERT_TRUE(queries.open(config, error)) << error;
    std::map<std::string, std::string> env{{"OPENAI_API_KEY", "sk-openai-bootstrap-secret-1234"}};
    EXPECT_TRUE(bootstrap_channels_from_env(catalog, queries, map_lookup, &env, error)) << error;
    const auto channels = queries.list_channels();
    ASSERT_TRUE(channels.ok());
    ASSERT_EQ(channels.value.size(), 1u);
    EXPECT_EQ(channels.value[0].base_url, "https://api.openai.com");
    EXPECT_EQ(channels.value[0].name, "openai");
    EXPECT_FALSE(channels.value[0].allow_private_network);
    writer.request_stop();
    writer_thread.join();
}

}  // namespace
}  // namespace rw
