// tests/unit/proxy/admin/admin_test_support.h — what the in-process admin API tests share:
// one raw HTTP/1.1 exchange with the server (Connection: close), JSON access by pointer on
// a reply, the OpenAI error shape check, and AdminServerTest: a real AdminServer on
// 127.0.0.1:0 over a real SQLite file in a fresh temp dir, with a real Writer thread and
// the snapshot the data plane would read.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "core/config.h"
#include "proxy/admin/server.h"
#include "storage/keys.h"
#include "storage/queries.h"
#include "storage/snapshot.h"
#include "storage/writer.h"
#include "tests/unit/storage/storage_test_support.h"

namespace rw::test {

constexpr std::string_view test_token = "admin-token-0123456789abcdef";

struct HttpReply {
    int status = 0;
    std::string head;  // Status line and headers.
    std::string body;
};

// One request on a new connection; reads until the server closes (Connection: close).
inline HttpReply http_call(uint16_t port, std::string_view method, std::string_view target,
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

inline std::string error_code_of(const HttpReply& reply) {
    Json json(reply.body);
    EXPECT_FALSE(json.string("/error/message").empty());
    const std::string type = json.string("/error/type");
    EXPECT_EQ(type, reply.status >= 500 ? "server_error" : "invalid_request_error");
    return json.string("/error/code");
}

inline Config admin_config(std::string_view token) {
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

}  // namespace rw::test
