// tests/e2e/startup_test.cc — the command line and startup contract: --help lists every
// RINGWAY_* variable, --version, the ready line, shard count resolution, and startup
// failures (bad env values, a port already in use) that must end with one clear stderr
// line and a non-zero exit before anything is served.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "tests/support/harness.h"

namespace rw::test {
namespace {

struct RunResult {
    ExitStatus status;
    std::string out;
    std::string err;
};

// Runs ringway to completion (it must exit within 5 s), directly or as the program of
// `wrapper` (which then gets ringway's path as its first argument).
std::optional<RunResult> run_to_exit(const std::vector<std::string>& args, const EnvList& env,
                                     const std::string& wrapper = "") {
    Process process;
    SpawnOptions options;
    options.program = wrapper.empty() ? ringway_path() : wrapper;
    options.args = args;
    if (!wrapper.empty()) {
        options.args.insert(options.args.begin(), ringway_path());
    }
    options.env = env;
    TempDir temp_dir;
    options.working_dir = temp_dir.path();
    std::string error;
    EXPECT_TRUE(process.start(options, &error)) << error;
    const std::optional<ExitStatus> status = process.wait_exit(Deadline::after_ms(5000));
    if (!status.has_value()) {
        ADD_FAILURE() << "ringway did not exit within 5 s; stderr:\n"
                      << process.output(Stream::err);
        return std::nullopt;
    }
    return RunResult{*status, process.output(Stream::out), process.output(Stream::err)};
}

std::vector<std::string> non_empty_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t from = 0;
    while (from < text.size()) {
        size_t newline = text.find('\n', from);
        if (newline == std::string::npos) {
            newline = text.size();
        }
        if (newline > from) {
            lines.push_back(text.substr(from, newline - from));
        }
        from = newline + 1;
    }
    return lines;
}

// A listening TCP socket on 127.0.0.1 without SO_REUSEPORT: another program holding the
// port. Closed by the destructor.
class PortHolder {
public:
    PortHolder() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
            ::listen(fd_, 16) != 0) {
            return;
        }
        socklen_t length = sizeof(address);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
    }
    ~PortHolder() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    PortHolder(const PortHolder&) = delete;
    PortHolder& operator=(const PortHolder&) = delete;
    [[nodiscard]] uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    uint16_t port_ = 0;
};

const char* const contract_variables[] = {
    "RINGWAY_LISTEN",
    "RINGWAY_SHARDS",
    "RINGWAY_MAX_CONNECTIONS",
    "RINGWAY_MAX_REQUEST_LINE_BYTES",
    "RINGWAY_MAX_HEADER_BYTES",
    "RINGWAY_MAX_HEADERS",
    "RINGWAY_MAX_BODY_BYTES",
    "RINGWAY_MAX_CHUNK_EXT_BYTES",
    "RINGWAY_HEADER_TIMEOUT_MS",
    "RINGWAY_BODY_TIMEOUT_MS",
    "RINGWAY_KEEPALIVE_TIMEOUT_MS",
    "RINGWAY_SEND_TIMEOUT_MS",
    "RINGWAY_SHUTDOWN_TIMEOUT_MS",
    "RINGWAY_LOG_LEVEL",
};

TEST(Startup, HelpListsEveryVariableAndExitsZero) {
    const std::optional<RunResult> result = run_to_exit({"--help"}, {});
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->status.is_exited) << describe(result->status);
    EXPECT_EQ(result->status.code, 0);
    EXPECT_NE(result->out.find("usage"), std::string::npos) << result->out;
    for (const char* name : contract_variables) {
        EXPECT_NE(result->out.find(name), std::string::npos) << name << " missing from --help";
    }
    EXPECT_EQ(result->err.find("event=ready"), std::string::npos) << "--help started the server";
}

TEST(Startup, HelpListsEveryVariableTheBinaryKnows) {
    // Every RINGWAY_* name compiled into the binary is a variable it reads; --help must
    // not fall behind the code.
    std::ifstream binary(ringway_path(), std::ios::binary);
    ASSERT_TRUE(binary.good()) << ringway_path();
    const std::string bytes((std::istreambuf_iterator<char>(binary)),
                            std::istreambuf_iterator<char>());
    std::set<std::string> names;
    for (size_t at = bytes.find("RINGWAY_"); at != std::string::npos;
         at = bytes.find("RINGWAY_", at + 1)) {
        size_t end = at + 8;
        while (end < bytes.size() &&
               ((bytes[end] >= 'A' && bytes[end] <= 'Z') ||
                (bytes[end] >= '0' && bytes[end] <= '9') || bytes[end] == '_')) {
            end++;
        }
        while (end > at + 8 && bytes[end - 1] == '_') {
            end--;
        }
        // A name the code reads is a string literal: NUL-terminated, or followed by '=' or
        // a space in a message. Other matches are bytes of machine code that happen to
        // follow an inlined "RINGWAY_" prefix (seen: "RINGWAY_I37H").
        const char after = end < bytes.size() ? bytes[end] : '\0';
        const bool is_literal = after == '\0' || after == '=' || after == ' ' || after == '\n' ||
                                after == ':' || after == ',' || after == ')' || after == '.';
        if (end > at + 8 && is_literal) {
            names.insert(bytes.substr(at, end - at));
        }
    }
    EXPECT_GE(names.size(), std::size(contract_variables));
    const std::optional<RunResult> result = run_to_exit({"--help"}, {});
    ASSERT_TRUE(result.has_value());
    for (const std::string& name : names) {
        EXPECT_NE(result->out.find(name), std::string::npos) << name << " missing from --help";
    }
}

TEST(Startup, VersionPrintsTheVersion) {
    const std::optional<RunResult> result = run_to_exit({"--version"}, {});
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->status.is_exited) << describe(result->status);
    EXPECT_EQ(result->status.code, 0);
    EXPECT_EQ(result->out, "ringway 0.1.0\n");
}

struct BadEnv {
    const char* name;  // gtest parameter name.
    const char* variable;
    const char* value;
};

void PrintTo(const BadEnv& bad, std::ostream* out) {
    *out << bad.variable << "=" << bad.value;
}

class StartupBadEnv : public ::testing::TestWithParam<BadEnv> {};

TEST_P(StartupBadEnv, ExitsNonZeroWithOneLineNamingTheVariable) {
    const BadEnv& bad = GetParam();
    TempDir temp_dir;
    const std::optional<RunResult> result =
        run_to_exit({}, {{"RINGWAY_LISTEN", "127.0.0.1:0"},
                         {"RINGWAY_DB", temp_dir.path() + "/ringway.db"},
                         {bad.variable, bad.value}});
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->status.is_exited) << describe(result->status) << " (a crash?)";
    EXPECT_NE(result->status.code, 0) << bad.variable << "=" << bad.value << " was accepted";
    EXPECT_EQ(result->err.find("event=ready"), std::string::npos);
    const std::vector<std::string> lines = non_empty_lines(result->err);
    EXPECT_EQ(lines.size(), 1u) << "expected one clear line; stderr:\n" << result->err;
    EXPECT_NE(result->err.find(bad.variable), std::string::npos)
        << "the message does not name the variable:\n"
        << result->err;
}

INSTANTIATE_TEST_SUITE_P(
    All, StartupBadEnv,
    ::testing::Values(BadEnv{"ShardsNotANumber", "RINGWAY_SHARDS", "abc"},
                      BadEnv{"ShardsNegative", "RINGWAY_SHARDS", "-1"},
                      BadEnv{"ShardsTrailingGarbage", "RINGWAY_SHARDS", "2x"},
                      BadEnv{"MaxBodyExponent", "RINGWAY_MAX_BODY_BYTES", "1e6"},
                      BadEnv{"MaxHeadersZero", "RINGWAY_MAX_HEADERS", "0"},
                      BadEnv{"MaxConnectionsZero", "RINGWAY_MAX_CONNECTIONS", "0"},
                      BadEnv{"HeaderTimeoutWithUnit", "RINGWAY_HEADER_TIMEOUT_MS", "10s"},
                      BadEnv{"KeepaliveTimeoutHuge", "RINGWAY_KEEPALIVE_TIMEOUT_MS",
                             "99999999999999999999999"},
                      BadEnv{"ListenNoPort", "RINGWAY_LISTEN", "127.0.0.1"},
                      BadEnv{"ListenPortTooBig", "RINGWAY_LISTEN", "127.0.0.1:99999"},
                      BadEnv{"ListenNotAnAddress", "RINGWAY_LISTEN", "not-an-address:80"},
                      BadEnv{"LogLevelUnknown", "RINGWAY_LOG_LEVEL", "loud"}),
    [](const ::testing::TestParamInfo<BadEnv>& param_info) {
        return std::string(param_info.param.name);
    });

TEST(Startup, ReadyLineIsOneLogfmtLine) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"}}, &error)) << error;
    EXPECT_EQ(server.process().lines_containing(Stream::err, "event=ready").size(), 1u);
    EXPECT_NE(server.ready_line().find("level=info"), std::string::npos) << server.ready_line();
    EXPECT_NE(server.ready_line().find("listen=127.0.0.1:" + std::to_string(server.port())),
              std::string::npos)
        << server.ready_line();
    EXPECT_EQ(server.shard_count(), 1u);
    for (const std::string& line : non_empty_lines(server.stderr_text())) {
        EXPECT_EQ(line.rfind("level=", 0), 0u) << "not a logfmt log line: " << line;
        EXPECT_NE(line.find(" event="), std::string::npos) << "log line without event: " << line;
    }
    const std::optional<Response> response =
        http_exchange(server.port(), get_request("/healthz"), Deadline::after_ms(2000));
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->status, 200);
}

TEST(Startup, DebugLogLevelKeepsEveryLineLogfmt) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "1"}, {"RINGWAY_LOG_LEVEL", "debug"}}, &error))
        << error;
    for (const char* request :
         {"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n",
          "GET /healthz HTTP/1.1\r\n\r\n"}) {
        const std::optional<Response> response =
            http_exchange(server.port(), request, Deadline::after_ms(2000));
        ASSERT_TRUE(response.has_value());
    }
    ASSERT_TRUE(server.process().send_signal(SIGTERM));
    const std::optional<ExitStatus> status = server.process().wait_exit(Deadline::after_ms(5000));
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code, 0);
    for (const std::string& line : non_empty_lines(server.stderr_text())) {
        EXPECT_EQ(line.rfind("level=", 0), 0u) << "not a logfmt log line: " << line;
        EXPECT_NE(line.find(" event="), std::string::npos) << "log line without event: " << line;
    }
}

TEST(Startup, DefaultShardCountIsTheAffinityMask) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({}, &error)) << error;
    EXPECT_EQ(server.shard_count(), affinity_cpu_count()) << server.ready_line();
}

TEST(Startup, ShardCountIsClampedToTheAffinityMask) {
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "64"}}, &error)) << error;
    EXPECT_EQ(server.shard_count(), std::min<uint32_t>(64, affinity_cpu_count()))
        << server.ready_line();
}

TEST(Startup, EveryShardServesTheEphemeralPort) {
    // With port 0 every shard must listen on the one port that was picked; each shard
    // must show up in the per-shard metrics.
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start({{"RINGWAY_SHARDS", "2"}}, &error)) << error;
    const uint32_t shards = server.shard_count();
    for (int index = 0; index < 20; index++) {
        const std::optional<Response> response =
            http_exchange(server.port(), get_request("/healthz"), Deadline::after_ms(2000));
        ASSERT_TRUE(response.has_value());
        EXPECT_EQ(response->status, 200);
    }
    const std::optional<std::string> text = scrape_metrics(server.port(), Deadline::after_ms(2000));
    ASSERT_TRUE(text.has_value());
    for (uint32_t shard = 0; shard < shards; shard++) {
        EXPECT_TRUE(
            metric_value(*text, "ringway_loop_iterations_total", {{"shard", std::to_string(shard)}})
                .has_value())
            << "no loop counter for shard " << shard;
    }
}

TEST(Startup, PortHeldByAnotherProgramFails) {
    PortHolder holder;
    ASSERT_NE(holder.port(), 0);
    TempDir temp_dir;
    const std::optional<RunResult> result =
        run_to_exit({}, {{"RINGWAY_LISTEN", "127.0.0.1:" + std::to_string(holder.port())},
                         {"RINGWAY_DB", temp_dir.path() + "/ringway.db"}});
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->status.is_exited) << describe(result->status);
    EXPECT_NE(result->status.code, 0);
    EXPECT_EQ(result->err.find("event=ready"), std::string::npos);
    EXPECT_EQ(non_empty_lines(result->err).size(), 1u) << result->err;
    EXPECT_NE(result->err.find(std::to_string(holder.port())), std::string::npos)
        << "the message should name the address:\n"
        << result->err;
}

// io_uring refused (a seccomp profile, kernel.io_uring_disabled): one line naming the
// cause and a non-zero exit, before anything is served.
TEST(Startup, IoUringRefusedFailsWithOneLineNamingIt) {
    TempDir temp_dir;
    const std::optional<RunResult> result = run_to_exit(
        {}, {{"RINGWAY_LISTEN", "127.0.0.1:0"}, {"RINGWAY_DB", temp_dir.path() + "/ringway.db"}},
        RW_DENY_IO_URING_BIN);
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->status.is_exited) << describe(result->status);
    ASSERT_NE(result->status.code, 2) << "the seccomp wrapper failed:\n" << result->err;
    EXPECT_NE(result->status.code, 0);
    EXPECT_EQ(result->err.find("event=ready"), std::string::npos);
    EXPECT_EQ(non_empty_lines(result->err).size(), 1u) << result->err;
    EXPECT_NE(result->err.find("io_uring is disabled"), std::string::npos) << result->err;
}

TEST(Startup, PortHeldByAnotherRingwayFails) {
    // SO_REUSEPORT lets a second process of the same user bind the same port and split
    // the traffic silently; a second ringway on a busy port must refuse to start.
    Ringway first;
    std::string error;
    ASSERT_TRUE(first.start({{"RINGWAY_SHARDS", "1"}}, &error)) << error;
    TempDir temp_dir;
    Process second;
    SpawnOptions options;
    options.program = ringway_path();
    options.env = {{"RINGWAY_SHARDS", "1"},
                   {"RINGWAY_LISTEN", "127.0.0.1:" + std::to_string(first.port())},
                   {"RINGWAY_DB", temp_dir.path() + "/ringway.db"}};
    options.working_dir = temp_dir.path();
    ASSERT_TRUE(second.start(options, &error)) << error;
    // Either it exits (stderr reaches EOF) or it reports ready, which is the bug.
    const std::optional<std::string> ready =
        second.wait_for_line(Stream::err, "event=ready", Deadline::after_ms(5000));
    if (ready.has_value()) {
        ADD_FAILURE() << "a second ringway started on a port in use: " << *ready;
        return;
    }
    const std::optional<ExitStatus> status = second.wait_exit(Deadline::after_ms(2000));
    ASSERT_TRUE(status.has_value()) << "the second ringway is still running";
    EXPECT_TRUE(status->is_exited) << describe(*status);
    EXPECT_NE(status->code, 0);
    EXPECT_EQ(non_empty_lines(second.output(Stream::err)).size(), 1u) << second.output(Stream::err);
}

TEST(Startup, FixedPortIsHonoured) {
    uint16_t port = 0;
    {
        PortHolder probe;  // Pick a free port, then release it.
        port = probe.port();
    }
    ASSERT_NE(port, 0);
    Ringway server;
    std::string error;
    ASSERT_TRUE(server.start(
        {{"RINGWAY_SHARDS", "1"}, {"RINGWAY_LISTEN", "127.0.0.1:" + std::to_string(port)}}, &error))
        << error;
    EXPECT_EQ(server.port(), port);
}

}  // namespace
}  // namespace rw::test
