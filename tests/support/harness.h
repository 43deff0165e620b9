#pragma once
// tests/support/harness.h — what end-to-end tests need to drive the real ringway binary:
// child processes with captured stdout/stderr, a fresh temp dir per test, a raw HTTP/1.1
// client with deadlines, a response parser and a Prometheus text scraper.
// Runs on the test thread; each Process owns one extra thread that drains its pipes, so a
// chatty child never blocks on a full pipe. Nothing here sleeps a fixed time: every wait
// polls for an event and gives up at a Deadline.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace rw::test {

using Clock = std::chrono::steady_clock;

// A point in time after which a wait gives up. Passed by value everywhere.
class Deadline {
public:
    static Deadline after_ms(int64_t timeout_ms);
    [[nodiscard]] bool passed() const;
    // Milliseconds left, clamped to [0, INT32_MAX] for poll(2).
    [[nodiscard]] int remaining_ms() const;
    [[nodiscard]] Clock::time_point at() const { return at_; }

private:
    Clock::time_point at_{};
};

// Milliseconds elapsed since `start`.
[[nodiscard]] int64_t elapsed_ms(Clock::time_point start);

// A directory made with mkdtemp(3) under $TMPDIR (or /tmp), removed recursively when the
// object is destroyed.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Paths of the programs under test. The environment (RINGWAY_BIN, MOCK_UPSTREAM_BIN) wins
// over the paths CMake compiled in; an empty string means "not built".
[[nodiscard]] std::string ringway_path();
// The shipped binary (build/ringway, without the test clock); empty when not built.
[[nodiscard]] std::string ringway_release_path();
[[nodiscard]] std::string mock_upstream_path();

using EnvList = std::vector<std::pair<std::string, std::string>>;

struct SpawnOptions {
    std::string program;
    std::vector<std::string> args;  // argv[1..]
    // Added to the inherited environment. Every inherited RINGWAY_* variable but
    // RINGWAY_LLHTTP_SIMD (which llhttp build parses, core/llhttp_simd.h) is dropped first
    // so a developer's shell cannot leak settings into a test.
    EnvList env;
    std::string working_dir;  // Empty: inherit.
};

struct ExitStatus {
    bool is_exited = false;  // False: killed by a signal.
    int code = -1;           // Exit code when is_exited.
    int signal = 0;          // Signal number otherwise.
};

std::string describe(const ExitStatus& status);

enum class Stream : uint8_t { out, err };

// A child process whose stdout and stderr are captured through pipes. The destructor
// sends SIGKILL if it still runs, reaps it and joins the reader thread.
class Process {
public:
    Process() = default;
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    // posix_spawn(3)s the program. On failure returns false and says why in *error.
    [[nodiscard]] bool start(const SpawnOptions& options, std::string* error);
    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] bool is_started() const { return pid_ > 0; }

    // Waits until a complete line of `stream` contains `needle`; returns that line
    // (without '\n'), or nothing at the deadline or when the stream closed first.
    [[nodiscard]] std::optional<std::string> wait_for_line(Stream stream, std::string_view needle,
                                                           Deadline deadline);
    // Everything captured from `stream` so far.
    [[nodiscard]] std::string output(Stream stream);
    // Complete lines of `stream` that contain `needle`.
    [[nodiscard]] std::vector<std::string> lines_containing(Stream stream, std::string_view needle);

    bool send_signal(int signal_number);
    // Reaps the child, waiting at most until the deadline; also waits for both pipes to
    // reach EOF so output() is complete afterwards. Nothing if it still runs.
    [[nodiscard]] std::optional<ExitStatus> wait_exit(Deadline deadline);
    // True while the child has not been reaped and has not exited.
    [[nodiscard]] bool is_running();
    // SIGKILL and reap; a no-op once reaped.
    void kill_and_reap();

private:
    void reader_loop(int out_fd, int err_fd);
    [[nodiscard]] bool try_reap(int wait_flags);

    pid_t pid_ = -1;
    std::optional<ExitStatus> exit_status_;
    std::thread reader_;
    std::mutex mutex_;  // Guards the three fields below.
    std::condition_variable changed_;
    std::string captured_[2];
    bool is_eof_[2] = {true, true};
};

// A running ringway. start() sets RINGWAY_LISTEN=127.0.0.1:0 and RINGWAY_DB to a file in
// a fresh temp dir (also the working directory; with RW_TEST_PG a fresh PostgreSQL
// database, tests/support/pg_test.h) unless the caller gives them, waits for
// the `event=ready` line and reads back the port and shard count. When ringway cannot start
// because the kernel lacks io_uring features, the test process exits 77 (CTest: skipped).
class Ringway {
public:
    [[nodiscard]] bool start(const EnvList& env, std::string* error,
                             std::vector<std::string> args = {});
    [[nodiscard]] uint16_t port() const { return port_; }
    [[nodiscard]] uint32_t shard_count() const { return shard_count_; }
    [[nodiscard]] Process& process() { return process_; }
    [[nodiscard]] std::string stderr_text() { return process_.output(Stream::err); }
    [[nodiscard]] const std::string& ready_line() const { return ready_line_; }
    [[nodiscard]] const std::string& temp_dir() const { return temp_dir_.path(); }
    // Its RINGWAY_DB: the caller's, the temp dir's ringway.db, or (RW_TEST_PG) a URL.
    [[nodiscard]] const std::string& db() const { return db_; }
    // The binary start() runs; empty (the default): ringway_path(), the test binary.
    void set_program(std::string program) { program_ = std::move(program); }

private:
    TempDir temp_dir_;  // Declared first: destroyed after the process is reaped.
    std::string db_;
    std::string program_;
    Process process_;
    uint16_t port_ = 0;
    uint32_t shard_count_ = 0;
    std::string ready_line_;
};

// The mock upstream (tests/support/mock_upstream): started with args/env, it prints
// `listening 127.0.0.1:PORT` on stdout.
class MockUpstream {
public:
    [[nodiscard]] bool start(const std::vector<std::string>& args, const EnvList& env,
                             std::string* error);
    [[nodiscard]] uint16_t port() const { return port_; }
    [[nodiscard]] Process& process() { return process_; }

private:
    Process process_;
    uint16_t port_ = 0;
};

// One parsed HTTP/1.x response. Header names are stored lower-cased.
struct Response {
    std::string version;  // "HTTP/1.1"
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;  // Decoded (de-chunked) body.
    bool is_chunked = false;

    // The first value of a header (name is matched case-insensitively).
    [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
    [[nodiscard]] size_t header_count(std::string_view name) const;
    // True when a Connection header lists `token` (case-insensitive).
    [[nodiscard]] bool connection_has(std::string_view token) const;
};

enum class ParseStatus : uint8_t { complete, incomplete, invalid };

// Parses one response from the front of `bytes`. `is_head_request` means the body is
// absent whatever the framing headers say. A response framed by EOF (no Content-Length,
// not chunked) is complete only when `is_eof`. On complete, *consumed_bytes is the length
// of the response on the wire.
[[nodiscard]] ParseStatus parse_response(std::string_view bytes, bool is_head_request, bool is_eof,
                                         Response* response, size_t* consumed_bytes,
                                         std::string* error);

// A raw TCP client to 127.0.0.1 with deadlines on every call. Bytes are kept in an input
// buffer so pipelined responses are read one at a time.
class Client {
public:
    Client() = default;
    ~Client();
    Client(Client&& other) noexcept;
    Client& operator=(Client&& other) noexcept;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Connects; on failure returns false and leaves errno-derived text in *error and the
    // errno in *error_number (ECONNREFUSED when nothing listens).
    [[nodiscard]] bool connect(uint16_t port, Deadline deadline, std::string* error = nullptr,
                               int* error_number = nullptr);
    // Sets SO_RCVBUF before connecting (call before connect()).
    void set_receive_buffer_bytes(int bytes) { receive_buffer_bytes_ = bytes; }
    // Binds the socket to this IPv4 source address before connecting (call before
    // connect()): any 127.0.0.0/8 address works on loopback, so a test can be a client
    // from 127.0.0.2. Empty: the kernel picks (127.0.0.1).
    void set_source_address(std::string ipv4) { source_address_ = std::move(ipv4); }
    [[nodiscard]] bool is_connected() const { return fd_ >= 0; }
    [[nodiscard]] int fd() const { return fd_; }

    // Sends every byte or fails (peer closed, deadline). MSG_NOSIGNAL: no SIGPIPE.
    [[nodiscard]] bool send(std::string_view bytes, Deadline deadline);
    // Reads one complete response. Nothing on deadline, EOF before a complete response,
    // or an unparseable response; *error says which.
    [[nodiscard]] std::optional<Response> read_response(Deadline deadline,
                                                        bool is_head_request = false,
                                                        std::string* error = nullptr);
    // Waits for EOF (or a reset) from the peer; bytes received meanwhile are appended to
    // the input buffer. False at the deadline.
    [[nodiscard]] bool wait_closed(Deadline deadline);
    // True when bytes or EOF are available within the deadline (the input buffer counts).
    [[nodiscard]] bool wait_readable(Deadline deadline);
    // Bytes received but not consumed by read_response().
    [[nodiscard]] const std::string& unread() const { return input_; }
    [[nodiscard]] bool is_peer_closed() const { return is_peer_closed_; }
    // True when the peer's close was a reset (ECONNRESET) rather than a FIN.
    [[nodiscard]] bool is_peer_reset() const { return is_peer_reset_; }
    // Half-close our side (shutdown SHUT_WR).
    void shutdown_write();
    void close();

private:
    // One recv(2) into input_ after poll; returns false at the deadline.
    [[nodiscard]] bool fill(Deadline deadline);

    int fd_ = -1;
    int receive_buffer_bytes_ = 0;
    std::string source_address_;
    std::string input_;
    bool is_peer_closed_ = false;
    bool is_peer_reset_ = false;
};

// Convenience: a new connection, one request, one response, then close.
[[nodiscard]] std::optional<Response> http_exchange(uint16_t port, std::string_view request,
                                                    Deadline deadline, bool is_head_request = false,
                                                    std::string* error = nullptr);
// "GET <path> HTTP/1.1\r\nHost: t\r\n<extra_headers>\r\n".
[[nodiscard]] std::string get_request(std::string_view path, std::string_view extra_headers = {});

// Prometheus text exposition. A series is addressed by name plus a subset of labels.
struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};
[[nodiscard]] std::vector<Sample> parse_metrics(std::string_view text);
// The value of the one series that matches name and every given label; nothing when none
// or more than one matches.
[[nodiscard]] std::optional<double> metric_value(
    std::string_view text, std::string_view name,
    const std::map<std::string, std::string>& labels = {});
// The sum over every series that matches name and every given label (0 when none).
[[nodiscard]] double metric_sum(std::string_view text, std::string_view name,
                                const std::map<std::string, std::string>& labels = {});

// GET /metrics over a new connection; nothing on failure.
[[nodiscard]] std::optional<std::string> scrape_metrics(uint16_t port, Deadline deadline);
// Scrapes over a kept-alive connection, reconnecting when needed, so scraping does not
// itself open a connection per call.
class MetricsScraper {
public:
    explicit MetricsScraper(uint16_t port) : port_(port) {}
    [[nodiscard]] std::optional<std::string> scrape(Deadline deadline);

private:
    uint16_t port_;
    Client client_;
};

// Checks an OpenAI-style error response: the status, Content-Type application/json,
// Connection: close (or, with is_close_expected false, no close: a policy refusal of a
// well-framed request keeps its connection), Content-Length matching, and a body of exactly
// {"error":{"message":non-empty,"type":"invalid_request_error"|"server_error","code":snake}}
// (a 429's type may also be OpenAI's insufficient_quota or requests).
// Returns an empty string when all hold, else what is wrong. *code receives error.code.
[[nodiscard]] std::string check_error_response(const Response& response, std::string* code,
                                               bool is_close_expected = true);

// Printable form of raw bytes for failure messages (\r, \n, non-printables escaped).
[[nodiscard]] std::string escape_bytes(std::string_view bytes, size_t max_bytes = 400);

// The number of CPUs in this process's affinity mask.
[[nodiscard]] uint32_t affinity_cpu_count();

}  // namespace rw::test
