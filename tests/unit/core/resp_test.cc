// tests/unit/core/resp_test.cc — the RESP2 client of core/resp.h: command encoding, replies
// split at every byte, error replies, malformed streams, and pipelined exchanges over a
// socketpair whose far end answers in pieces.
#include "core/resp.h"

#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace rw {
namespace {

TEST(RespCommand, EncodesBulkStringArrays) {
    std::string out;
    resp_command(out, {"SET", "k", ""});
    resp_command(out, {"GET", "a\r\nb"});
    EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n");
}

// Every reply kind, nested, then one more reply behind it (pipelined in one buffer).
const std::string mixed =
    "*5\r\n+OK\r\n:-42\r\n$5\r\nhe\r\nx\r\n$-1\r\n*2\r\n:1\r\n*0\r\n-ERR wrong\r\n";

void expect_mixed(const RespValue& first, const RespValue& second) {
    ASSERT_EQ(first.type, RespType::array);
    ASSERT_EQ(first.items.size(), 5u);
    EXPECT_EQ(first.items[0].type, RespType::simple);
    EXPECT_EQ(first.items[0].text, "OK");
    EXPECT_EQ(first.items[1].type, RespType::integer);
    EXPECT_EQ(first.items[1].integer, -42);
    EXPECT_EQ(first.items[2].type, RespType::bulk);
    EXPECT_EQ(first.items[2].text, "he\r\nx");  // A bulk string may hold CRLF.
    EXPECT_EQ(first.items[3].type, RespType::nil);
    ASSERT_EQ(first.items[4].type, RespType::array);
    ASSERT_EQ(first.items[4].items.size(), 2u);
    EXPECT_EQ(first.items[4].items[1].type, RespType::array);
    EXPECT_TRUE(first.items[4].items[1].items.empty());
    EXPECT_EQ(second.type, RespType::error);
    EXPECT_EQ(second.text, "ERR wrong");
}

TEST(RespReader, ParsesPipelinedRepliesInOneBuffer) {
    RespReader reader;
    reader.feed(mixed);
    RespValue first, second, third;
    ASSERT_EQ(reader.next(first), RespReader::Result::value);
    ASSERT_EQ(reader.next(second), RespReader::Result::value);
    EXPECT_EQ(reader.next(third), RespReader::Result::incomplete);
    expect_mixed(first, second);
    EXPECT_EQ(reader.buffered(), 0u);
}

TEST(RespReader, KeepsPartialRepliesUntilWholeAtEverySplit) {
    for (size_t split = 1; split < mixed.size(); split++) {
        RespReader reader;
        std::vector<RespValue> values;
        RespValue value;
        for (const std::string_view piece :
             {std::string_view(mixed).substr(0, split), std::string_view(mixed).substr(split)}) {
            reader.feed(piece);
            while (reader.next(value) == RespReader::Result::value) {
                values.push_back(value);
            }
        }
        ASSERT_EQ(values.size(), 2u) << "split at " << split;
        expect_mixed(values[0], values[1]);
    }
    // One byte at a time: nothing is returned before its last byte.
    RespReader reader;
    RespValue value;
    size_t returned = 0;
    for (size_t i = 0; i < mixed.size(); i++) {
        reader.feed(std::string_view(mixed).substr(i, 1));
        while (reader.next(value) == RespReader::Result::value) {
            returned++;
        }
        if (i + 1 < mixed.size() - std::string_view("-ERR wrong\r\n").size()) {
            EXPECT_EQ(returned, 0u) << "at byte " << i;
        }
    }
    EXPECT_EQ(returned, 2u);
}

TEST(RespReader, RefusesWhatIsNotResp2) {
    for (const char* bad : {"?what\r\n", ":12x\r\n", "$3\r\nabcd\r\n", "$-2\r\n", "*-5\r\n",
                            "$99999999999\r\n", ":\r\n"}) {
        RespReader reader;
        reader.feed(bad);
        RespValue value;
        EXPECT_EQ(reader.next(value), RespReader::Result::bad) << bad;
    }
    RespReader deep;
    for (uint32_t i = 0; i < RespReader::depth_max + 2; i++) {
        deep.feed("*1\r\n");
    }
    deep.feed(":1\r\n");
    RespValue value;
    EXPECT_EQ(deep.next(value), RespReader::Result::bad);  // Nested deeper than depth_max.
    RespReader endless;
    endless.feed("+" + std::string(5000, 'a'));  // No line end in sight.
    EXPECT_EQ(endless.next(value), RespReader::Result::bad);
}

// The far end of a socketpair: reads one pipelined request, answers in small pieces.
struct FakeServer {
    int fd;
    std::string answer;
    std::string received;
    size_t expect_bytes;
    void run() {
        char buffer[4096];
        while (received.size() < expect_bytes) {
            const ssize_t got = ::read(fd, buffer, sizeof(buffer));
            if (got <= 0) {
                return;
            }
            received.append(buffer, size_t(got));
        }
        for (size_t i = 0; i < answer.size(); i += 3) {
            const size_t length = std::min<size_t>(3, answer.size() - i);
            if (::write(fd, answer.data() + i, length) != ssize_t(length)) {
                return;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
};

TEST(RespClient, PipelinesCommandsAndReadsRepliesArrivingInPieces) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    int flags = 0;
    ASSERT_EQ(::ioctl(fds[1], FIONBIO, &flags), 0);  // The fake server blocks.
    std::string commands;
    resp_command(commands, {"PING"});
    resp_command(commands, {"INCRBY", "k", "5"});
    resp_command(commands, {"EVAL", "return redis.error_reply('no')", "0"});
    FakeServer server{fds[1], "+PONG\r\n:5\r\n-ERR no\r\n", {}, commands.size()};
    std::thread thread([&server] { server.run(); });
    RespClient client;
    client.adopt(fds[0]);
    std::vector<RespValue> replies;
    std::string error;
    ASSERT_TRUE(client.exchange(commands, 3, replies, 10000, error)) << error;
    thread.join();
    EXPECT_EQ(server.received, commands);  // One write, all three commands.
    ASSERT_EQ(replies.size(), 3u);
    EXPECT_EQ(replies[0].text, "PONG");
    EXPECT_EQ(replies[1].integer, 5);
    EXPECT_EQ(replies[2].type, RespType::error);  // An error reply is a value, not a failure.
    EXPECT_EQ(replies[2].text, "ERR no");
    EXPECT_TRUE(client.is_connected());
    ::close(fds[1]);
}

TEST(RespClient, ClosedOrSilentServerFailsTheExchangeWithinItsTimeout) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    RespClient client;
    client.adopt(fds[0]);
    std::string commands;
    resp_command(commands, {"PING"});
    std::vector<RespValue> replies;
    std::string error;
    EXPECT_FALSE(client.exchange(commands, 1, replies, 50, error));  // Nobody answers.
    EXPECT_EQ(error, "timed out");
    EXPECT_FALSE(client.is_connected());
    ::close(fds[1]);

    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    client.adopt(fds[0]);
    ASSERT_EQ(::write(fds[1], "+PON", 4), 4);
    ASSERT_EQ(::shutdown(fds[1], SHUT_WR), 0);  // Half a reply, then the end.
    EXPECT_FALSE(client.exchange(commands, 1, replies, 5000, error));
    EXPECT_EQ(error, "connection closed by the server");
    ::close(fds[1]);
}

TEST(RespClient, RefusedConnectIsAnError) {
    RespClient client;
    std::string error;
    // Port 1 on loopback: nothing listens there in a test sandbox.
    EXPECT_FALSE(client.connect("127.0.0.1", 1, 1000, error));
    EXPECT_FALSE(error.empty());
    EXPECT_FALSE(client.connect("redis.example", 6379, 1000, error));
    EXPECT_NE(error.find("not an IP address"), std::string::npos);
}

}  // namespace
}  // namespace rw
