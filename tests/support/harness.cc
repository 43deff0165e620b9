// tests/support/harness.cc — process spawning, pipe capture, the raw HTTP client, the
// response parser and the metrics scraper declared in harness.h. Test-only code: it may
// allocate and block, but it never sleeps a fixed time; every wait is poll(2) or a
// condition variable bounded by a Deadline.
#include "tests/support/harness.h"

#include "tests/support/pg_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace rw::test {

namespace {

std::string errno_text(int error_number) {
    return std::string(std::strerror(error_number)) + " (errno " + std::to_string(error_number) +
           ")";
}

char lower_ascii(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        c = lower_ascii(c);
    }
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); i++) {
        if (lower_ascii(a[i]) != lower_ascii(b[i])) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

// The value of `key=` in one logfmt line (unquoted values only), or nothing.
std::optional<std::string> logfmt_value(std::string_view line, std::string_view key) {
    size_t from = 0;
    while (from < line.size()) {
        const size_t at = line.find(key, from);
        if (at == std::string_view::npos) {
            return std::nullopt;
        }
        const bool is_token_start = at == 0 || line[at - 1] == ' ';
        const size_t value_at = at + key.size();
        if (is_token_start && value_at < line.size() && line[value_at] == '=') {
            size_t end = line.find(' ', value_at + 1);
            if (end == std::string_view::npos) {
                end = line.size();
            }
            std::string value(line.substr(value_at + 1, end - value_at - 1));
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
                value = value.substr(1, value.size() - 2);
            }
            return value;
        }
        from = at + 1;
    }
    return std::nullopt;
}

// "127.0.0.1:PORT" → PORT.
std::optional<uint16_t> port_of(std::string_view address) {
    const size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string digits(address.substr(colon + 1));
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
        return std::nullopt;
    }
    const long value = std::strtol(digits.c_str(), nullptr, 10);
    if (value <= 0 || value > 65535) {
        return std::nullopt;
    }
    return static_cast<uint16_t>(value);
}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
    return ::remove(path);
}

}  // namespace

Deadline Deadline::after_ms(int64_t timeout_ms) {
    Deadline deadline;
    deadline.at_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
    return deadline;
}

bool Deadline::passed() const {
    return Clock::now() >= at_;
}

int Deadline::remaining_ms() const {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(at_ - Clock::now()).count();
    if (left <= 0) {
        return 0;
    }
    return left > INT32_MAX ? INT32_MAX : static_cast<int>(left);
}

int64_t elapsed_ms(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") + "/ringway-test-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) != nullptr) {
        path_ = buffer.data();
    }
}

TempDir::~TempDir() {
    if (!path_.empty()) {
        ::nftw(path_.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

std::string ringway_path() {
    if (const char* from_env = std::getenv("RINGWAY_BIN"); from_env != nullptr) {
        return from_env;
    }
#ifdef RW_RINGWAY_BIN
    return RW_RINGWAY_BIN;
#else
    return {};
#endif
}

std::string ringway_release_path() {
#ifdef RW_RINGWAY_RELEASE_BIN
    return RW_RINGWAY_RELEASE_BIN;
#else
    return {};
#endif
}

std::string mock_upstream_path() {
    if (const char* from_env = std::getenv("MOCK_UPSTREAM_BIN"); from_env != nullptr) {
        return from_env;
    }
#ifdef RW_MOCK_UPSTREAM_BIN
    return RW_MOCK_UPSTREAM_BIN;
#else
    return {};
#endif
}

std::string describe(const ExitStatus& status) {
    if (status.is_exited) {
        return "exit code " + std::to_string(status.code);
    }
    return "killed by signal " + std::to_string(status.signal) + " (" + ::strsignal(status.signal) +
           ")";
}

// ---------------------------------------------------------------------------------------
// Process

Process::~Process() {
    kill_and_reap();
    if (reader_.joinable()) {
        reader_.join();
    }
}

bool Process::start(const SpawnOptions& options, std::string* error) {
    if (pid_ > 0) {
        *error = "process already started";
        return false;
    }
    if (options.program.empty()) {
        *error = "program path is empty (target not built or not passed to the test)";
        return false;
    }
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        *error = "pipe2: " + errno_text(errno);
        return false;
    }
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        *error = "pipe2: " + errno_text(errno);
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        return false;
    }

    std::vector<std::string> env_strings;
    for (char** entry = environ; *entry != nullptr; entry++) {
        // RINGWAY_LLHTTP_SIMD passes: CTest runs the parsing tests under both llhttp builds.
        if (std::strncmp(*entry, "RINGWAY_", 8) != 0 ||
            std::strncmp(*entry, "RINGWAY_LLHTTP_SIMD=", 20) == 0) {
            env_strings.emplace_back(*entry);
        }
    }
    for (const auto& [name, value] : options.env) {
        const std::string prefix = name + "=";
        std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
        env_strings.push_back(prefix + value);
    }
    std::vector<char*> envp;
    for (std::string& s : env_strings) {
        envp.push_back(s.data());
    }
    envp.push_back(nullptr);
    std::vector<std::string> arg_strings;
    arg_strings.push_back(options.program);
    arg_strings.insert(arg_strings.end(), options.args.begin(), options.args.end());
    std::vector<char*> argv;
    for (std::string& s : arg_strings) {
        argv.push_back(s.data());
    }
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);  // dup2 clears CLOEXEC.
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    if (!options.working_dir.empty()) {
        posix_spawn_file_actions_addchdir_np(&actions, options.working_dir.c_str());
    }
    // The child starts with an empty signal mask and default dispositions, whatever the
    // test process set up (ignored dispositions survive exec).
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t empty_mask;
    sigemptyset(&empty_mask);
    sigset_t default_signals;
    sigemptyset(&default_signals);
    for (int signal_number : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2}) {
        sigaddset(&default_signals, signal_number);
    }
    posix_spawnattr_setsigmask(&attributes, &empty_mask);
    posix_spawnattr_setsigdefault(&attributes, &default_signals);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t child = -1;
    const int rc = ::posix_spawn(&child, options.program.c_str(), &actions, &attributes,
                                 argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    if (rc != 0) {
        ::close(out_pipe[0]);
        ::close(err_pipe[0]);
        *error = "posix_spawn " + options.program + ": " + errno_text(rc);
        return false;
    }
    pid_ = child;
    {
        std::lock_guard lock(mutex_);
        is_eof_[0] = false;
        is_eof_[1] = false;
    }
    reader_ = std::thread(
        [this, out_fd = out_pipe[0], err_fd = err_pipe[0]] { reader_loop(out_fd, err_fd); });
    return true;
}

// Drains both pipes until both reach EOF. Runs on the reader thread.
void Process::reader_loop(int out_fd, int err_fd) {
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    char buffer[16384];
    int open_count = 2;
    while (open_count > 0) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (size_t index = 0; index < 2; index++) {
            if (fds[index].fd < 0 || fds[index].revents == 0) {
                continue;
            }
            const ssize_t n = ::read(fds[index].fd, buffer, sizeof(buffer));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            std::lock_guard lock(mutex_);
            if (n > 0) {
                captured_[index].append(buffer, static_cast<size_t>(n));
            } else {
                ::close(fds[index].fd);
                fds[index].fd = -1;
                is_eof_[index] = true;
                open_count--;
            }
            changed_.notify_all();
        }
    }
    for (pollfd& entry : fds) {
        if (entry.fd >= 0) {
            ::close(entry.fd);
        }
    }
    std::lock_guard lock(mutex_);
    is_eof_[0] = true;
    is_eof_[1] = true;
    changed_.notify_all();
}

std::optional<std::string> Process::wait_for_line(Stream stream, std::string_view needle,
                                                  Deadline deadline) {
    const size_t index = static_cast<size_t>(stream);
    std::unique_lock lock(mutex_);
    size_t scanned_bytes = 0;  // Complete lines before this offset were checked.
    for (;;) {
        const std::string& text = captured_[index];
        for (;;) {
            const size_t newline = text.find('\n', scanned_bytes);
            if (newline == std::string::npos) {
                break;
            }
            std::string_view line(text.data() + scanned_bytes, newline - scanned_bytes);
            scanned_bytes = newline + 1;
            if (line.find(needle) != std::string_view::npos) {
                return std::string(line);
            }
        }
        if (is_eof_[index]) {
            return std::nullopt;
        }
        if (changed_.wait_until(lock, deadline.at()) == std::cv_status::timeout &&
            deadline.passed()) {
            return std::nullopt;
        }
    }
}

std::string Process::output(Stream stream) {
    std::lock_guard lock(mutex_);
    return captured_[static_cast<size_t>(stream)];
}

std::vector<std::string> Process::lines_containing(Stream stream, std::string_view needle) {
    const std::string text = output(stream);
    std::vector<std::string> lines;
    size_t from = 0;
    for (;;) {
        const size_t newline = text.find('\n', from);
        if (newline == std::string::npos) {
            break;
        }
        std::string_view line(text.data() + from, newline - from);
        if (line.find(needle) != std::string_view::npos) {
            lines.emplace_back(line);
        }
        from = newline + 1;
    }
    return lines;
}

bool Process::send_signal(int signal_number) {
    if (pid_ <= 0 || exit_status_.has_value()) {
        return false;
    }
    return ::kill(pid_, signal_number) == 0;
}

bool Process::try_reap(int wait_flags) {
    if (exit_status_.has_value()) {
        return true;
    }
    if (pid_ <= 0) {
        return false;
    }
    int status = 0;
    pid_t rc;
    do {
        rc = ::waitpid(pid_, &status, wait_flags);
    } while (rc < 0 && errno == EINTR);
    if (rc != pid_) {
        return false;
    }
    ExitStatus result;
    if (WIFEXITED(status)) {
        result.is_exited = true;
        result.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
    }
    exit_status_ = result;
    return true;
}

std::optional<ExitStatus> Process::wait_exit(Deadline deadline) {
    if (pid_ <= 0) {
        return std::nullopt;
    }
    // pidfd_open(2) becomes readable when the child exits, so poll() waits for the event
    // itself; without it (old kernels) fall back to polling waitpid every 2 ms.
    int pid_fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    while (!try_reap(WNOHANG)) {
        if (deadline.passed()) {
            if (pid_fd >= 0) {
                ::close(pid_fd);
            }
            return std::nullopt;
        }
        if (pid_fd >= 0) {
            pollfd entry{pid_fd, POLLIN, 0};
            (void)::poll(&entry, 1, std::min(deadline.remaining_ms(), 1000));
        } else {
            (void)::poll(nullptr, 0, std::min(deadline.remaining_ms(), 2));
        }
    }
    if (pid_fd >= 0) {
        ::close(pid_fd);
    }
    // The output is complete only when both pipes reached EOF.
    std::unique_lock lock(mutex_);
    changed_.wait_until(lock, deadline.at() + std::chrono::seconds(1),
                        [this] { return is_eof_[0] && is_eof_[1]; });
    return exit_status_;
}

bool Process::is_running() {
    if (pid_ <= 0) {
        return false;
    }
    return !try_reap(WNOHANG);
}

void Process::kill_and_reap() {
    if (pid_ <= 0 || exit_status_.has_value()) {
        return;
    }
    ::kill(pid_, SIGKILL);
    (void)try_reap(0);
}

// ---------------------------------------------------------------------------------------
// Ringway and MockUpstream

namespace {

// STYLE.md 9: a kernel without the io_uring features ringway needs (or a sandbox that
// denies io_uring_setup) is a skip, not a failure. Each CTest test runs one test case in
// its own process, so exiting with 77 marks exactly that case skipped. The phrases are
// ringway's startup messages for those causes (core/shard.cc Shard::setup).
void skip_if_kernel_lacks_io_uring(const std::string& stderr_text) {
    for (const char* phrase :
         {"io_uring is disabled", "has no io_uring", "io_uring lacks", "Linux 5.19+ required"}) {
        if (stderr_text.find(phrase) != std::string::npos) {
            std::fprintf(stdout, "SKIPPED: the kernel cannot run ringway: %s\n",
                         stderr_text.c_str());
            std::fflush(stdout);
            std::_Exit(77);
        }
    }
}

}  // namespace

bool Ringway::start(const EnvList& env, std::string* error, std::vector<std::string> args) {
    SpawnOptions options;
    options.program = program_.empty() ? ringway_path() : program_;
    options.args = std::move(args);
    options.env = env;
    const bool has_listen = std::any_of(
        env.begin(), env.end(), [](const auto& entry) { return entry.first == "RINGWAY_LISTEN"; });
    if (!has_listen) {
        options.env.emplace_back("RINGWAY_LISTEN", "127.0.0.1:0");
    }
    const bool has_db = std::any_of(env.begin(), env.end(),
                                    [](const auto& entry) { return entry.first == "RINGWAY_DB"; });
    if (temp_dir_.path().empty()) {
        *error = "mkdtemp failed";
        return false;
    }
    if (!has_db) {
        // RW_TEST_PG: a fresh PostgreSQL database per gateway (tests/support/pg_test.h).
        options.env.emplace_back("RINGWAY_DB", pg_test_enabled()
                                                   ? pg_test_new_database()
                                                   : temp_dir_.path() + "/ringway.db");
    }
    for (const auto& entry : options.env) {
        if (entry.first == "RINGWAY_DB") {
            db_ = entry.second;
        }
    }
    options.working_dir = temp_dir_.path();
    if (!process_.start(options, error)) {
        return false;
    }
    const std::optional<std::string> line =
        process_.wait_for_line(Stream::err, "event=ready", Deadline::after_ms(10000));
    if (!line.has_value()) {
        std::string status = "still running";
        if (std::optional<ExitStatus> exit = process_.wait_exit(Deadline::after_ms(0))) {
            status = describe(*exit);
        }
        const std::string text = process_.output(Stream::err);
        skip_if_kernel_lacks_io_uring(text);
        *error = "no event=ready line within 10 s (" + status + "); stderr:\n" + text;
        return false;
    }
    ready_line_ = *line;
    const std::optional<std::string> listen = logfmt_value(*line, "listen");
    const std::optional<std::string> shards = logfmt_value(*line, "shards");
    const std::optional<uint16_t> port = listen ? port_of(*listen) : std::nullopt;
    if (!port.has_value() || !shards.has_value()) {
        *error = "ready line lacks listen=HOST:PORT or shards=N: " + *line;
        return false;
    }
    port_ = *port;
    shard_count_ = static_cast<uint32_t>(std::strtoul(shards->c_str(), nullptr, 10));
    return true;
}

bool MockUpstream::start(const std::vector<std::string>& args, const EnvList& env,
                         std::string* error) {
    SpawnOptions options;
    options.program = mock_upstream_path();
    options.args = args;
    options.env = env;
    if (!process_.start(options, error)) {
        return false;
    }
    const std::optional<std::string> line =
        process_.wait_for_line(Stream::out, "listening ", Deadline::after_ms(10000));
    if (!line.has_value()) {
        *error =
            "mock_upstream printed no 'listening' line; stderr:\n" + process_.output(Stream::err);
        return false;
    }
    const size_t at = line->find("listening ");
    std::string address = line->substr(at + 10);
    while (!address.empty() && (address.back() == '\r' || address.back() == ' ')) {
        address.pop_back();
    }
    const std::optional<uint16_t> port = port_of(address);
    if (!port.has_value()) {
        *error = "cannot read a port from: " + *line;
        return false;
    }
    port_ = *port;
    return true;
}

// ---------------------------------------------------------------------------------------
// Response parsing

std::optional<std::string> Response::header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (iequals(key, name)) {
            return value;
        }
    }
    return std::nullopt;
}

size_t Response::header_count(std::string_view name) const {
    size_t count = 0;
    for (const auto& entry : headers) {
        if (iequals(entry.first, name)) {
            count++;
        }
    }
    return count;
}

bool Response::connection_has(std::string_view token) const {
    for (const auto& [key, value] : headers) {
        if (!iequals(key, "connection")) {
            continue;
        }
        std::string_view rest = value;
        while (!rest.empty()) {
            const size_t comma = rest.find(',');
            if (iequals(trim(rest.substr(0, comma)), token)) {
                return true;
            }
            if (comma == std::string_view::npos) {
                break;
            }
            rest.remove_prefix(comma + 1);
        }
    }
    return false;
}

namespace {

// Decodes a chunked body starting at `bytes`; on complete sets *body and *used.
ParseStatus parse_chunked(std::string_view bytes, std::string* body, size_t* used,
                          std::string* error) {
    size_t at = 0;
    body->clear();
    for (;;) {
        const size_t line_end = bytes.find("\r\n", at);
        if (line_end == std::string_view::npos) {
            return ParseStatus::incomplete;
        }
        std::string_view size_text = bytes.substr(at, line_end - at);
        size_text = trim(size_text.substr(0, size_text.find(';')));
        if (size_text.empty() || size_text.size() > 15 ||
            size_text.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
            *error = "bad chunk size line: " + escape_bytes(bytes.substr(at, line_end - at));
            return ParseStatus::invalid;
        }
        const size_t chunk_bytes =
            static_cast<size_t>(std::strtoull(std::string(size_text).c_str(), nullptr, 16));
        at = line_end + 2;
        if (chunk_bytes == 0) {
            // Trailer section: header lines until an empty line.
            for (;;) {
                const size_t trailer_end = bytes.find("\r\n", at);
                if (trailer_end == std::string_view::npos) {
                    return ParseStatus::incomplete;
                }
                const bool is_last = trailer_end == at;
                at = trailer_end + 2;
                if (is_last) {
                    *used = at;
                    return ParseStatus::complete;
                }
            }
        }
        if (bytes.size() < at + chunk_bytes + 2) {
            return ParseStatus::incomplete;
        }
        body->append(bytes.substr(at, chunk_bytes));
        if (bytes.substr(at + chunk_bytes, 2) != "\r\n") {
            *error = "chunk data not followed by CRLF";
            return ParseStatus::invalid;
        }
        at += chunk_bytes + 2;
    }
}

}  // namespace

ParseStatus parse_response(std::string_view bytes, bool is_head_request, bool is_eof,
                           Response* response, size_t* consumed_bytes, std::string* error) {
    std::string scratch;
    std::string* why = error != nullptr ? error : &scratch;
    const size_t head_end = bytes.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
        if (bytes.size() >= 5 && bytes.substr(0, 5) != "HTTP/") {
            *why = "response does not start with HTTP/: " + escape_bytes(bytes);
            return ParseStatus::invalid;
        }
        return ParseStatus::incomplete;
    }
    Response parsed;
    const std::string_view head = bytes.substr(0, head_end);
    size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    // "HTTP/1.1 200 OK": version, a space, three digits, then an optional reason.
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line[8] != ' ' ||
        status_line.substr(9, 3).find_first_not_of("0123456789") != std::string_view::npos) {
        *why = "bad status line: " + escape_bytes(status_line);
        return ParseStatus::invalid;
    }
    parsed.version = std::string(status_line.substr(0, 8));
    parsed.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
    parsed.reason = status_line.size() > 13 ? std::string(status_line.substr(13)) : "";
    while (line_end != std::string_view::npos) {
        const size_t start = line_end + 2;
        line_end = head.find("\r\n", start);
        const std::string_view line = head.substr(
            start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            *why = "bad header line: " + escape_bytes(line);
            return ParseStatus::invalid;
        }
        parsed.headers.emplace_back(lower(line.substr(0, colon)),
                                    std::string(trim(line.substr(colon + 1))));
    }
    const size_t body_at = head_end + 4;
    const bool has_no_body = is_head_request || (parsed.status >= 100 && parsed.status < 200) ||
                             parsed.status == 204 || parsed.status == 304;
    if (has_no_body) {
        *consumed_bytes = body_at;
        *response = std::move(parsed);
        return ParseStatus::complete;
    }
    const std::optional<std::string> transfer_encoding = parsed.header("transfer-encoding");
    const std::optional<std::string> content_length = parsed.header("content-length");
    if (transfer_encoding.has_value() &&
        lower(*transfer_encoding).find("chunked") != std::string::npos) {
        size_t used = 0;
        const ParseStatus status = parse_chunked(bytes.substr(body_at), &parsed.body, &used, why);
        if (status != ParseStatus::complete) {
            return status;
        }
        parsed.is_chunked = true;
        *consumed_bytes = body_at + used;
    } else if (content_length.has_value()) {
        if (content_length->empty() ||
            content_length->find_first_not_of("0123456789") != std::string::npos) {
            *why = "bad Content-Length: " + *content_length;
            return ParseStatus::invalid;
        }
        const size_t body_bytes =
            static_cast<size_t>(std::strtoull(content_length->c_str(), nullptr, 10));
        if (bytes.size() < body_at + body_bytes) {
            return ParseStatus::incomplete;
        }
        parsed.body = std::string(bytes.substr(body_at, body_bytes));
        *consumed_bytes = body_at + body_bytes;
    } else {
        if (!is_eof) {
            return ParseStatus::incomplete;
        }
        parsed.body = std::string(bytes.substr(body_at));
        *consumed_bytes = bytes.size();
    }
    *response = std::move(parsed);
    return ParseStatus::complete;
}

// ---------------------------------------------------------------------------------------
// Client

Client::~Client() {
    close();
}

Client::Client(Client&& other) noexcept {
    *this = std::move(other);
}

Client& Client::operator=(Client&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        receive_buffer_bytes_ = other.receive_buffer_bytes_;
        source_address_ = std::move(other.source_address_);
        input_ = std::move(other.input_);
        is_peer_closed_ = other.is_peer_closed_;
        is_peer_reset_ = other.is_peer_reset_;
    }
    return *this;
}

bool Client::connect(uint16_t port, Deadline deadline, std::string* error, int* error_number) {
    close();
    input_.clear();
    is_peer_closed_ = false;
    is_peer_reset_ = false;
    auto fail = [&](std::string what, int number) {
        if (error != nullptr) {
            *error = what + ": " + errno_text(number);
        }
        if (error_number != nullptr) {
            *error_number = number;
        }
        close();
        return false;
    };
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        return fail("socket", errno);
    }
    if (receive_buffer_bytes_ > 0) {
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes_,
                     sizeof(receive_buffer_bytes_));
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!source_address_.empty()) {
        sockaddr_in source{};
        source.sin_family = AF_INET;
        if (::inet_pton(AF_INET, source_address_.c_str(), &source.sin_addr) != 1) {
            return fail("source address " + source_address_, EINVAL);
        }
        if (::bind(fd_, reinterpret_cast<const sockaddr*>(&source), sizeof(source)) != 0) {
            return fail("bind to " + source_address_, errno);
        }
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
        return true;
    }
    if (errno != EINPROGRESS) {
        return fail("connect", errno);
    }
    pollfd entry{fd_, POLLOUT, 0};
    const int ready = ::poll(&entry, 1, deadline.remaining_ms());
    if (ready <= 0) {
        return fail("connect did not finish before the deadline", ETIMEDOUT);
    }
    int socket_error = 0;
    socklen_t length = sizeof(socket_error);
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &socket_error, &length);
    if (socket_error != 0) {
        return fail("connect", socket_error);
    }
    return true;
}

bool Client::send(std::string_view bytes, Deadline deadline) {
    if (fd_ < 0) {
        return false;
    }
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            bytes.remove_prefix(static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd entry{fd_, POLLOUT, 0};
            if (::poll(&entry, 1, deadline.remaining_ms()) <= 0) {
                return false;
            }
            continue;
        }
        return false;
    }
    return true;
}

bool Client::fill(Deadline deadline) {
    if (fd_ < 0 || is_peer_closed_) {
        return false;
    }
    for (;;) {
        pollfd entry{fd_, POLLIN, 0};
        const int ready = ::poll(&entry, 1, deadline.remaining_ms());
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            return false;
        }
        char buffer[65536];
        const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
        if (n > 0) {
            input_.append(buffer, static_cast<size_t>(n));
            return true;
        }
        if (n == 0) {
            is_peer_closed_ = true;
            return true;
        }
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
            continue;
        }
        is_peer_closed_ = true;
        is_peer_reset_ = errno == ECONNRESET;
        return true;
    }
}

std::optional<Response> Client::read_response(Deadline deadline, bool is_head_request,
                                              std::string* error) {
    std::string scratch;
    std::string* why = error != nullptr ? error : &scratch;
    for (;;) {
        Response response;
        size_t consumed_bytes = 0;
        const ParseStatus status = parse_response(input_, is_head_request, is_peer_closed_,
                                                  &response, &consumed_bytes, why);
        if (status == ParseStatus::complete) {
            input_.erase(0, consumed_bytes);
            return response;
        }
        if (status == ParseStatus::invalid) {
            return std::nullopt;
        }
        if (is_peer_closed_) {
            *why = std::string(is_peer_reset_ ? "connection reset" : "EOF") +
                   " before a complete response; received: " + escape_bytes(input_);
            return std::nullopt;
        }
        if (!fill(deadline)) {
            *why = "no complete response before the deadline; received: " + escape_bytes(input_);
            return std::nullopt;
        }
    }
}

bool Client::wait_closed(Deadline deadline) {
    while (!is_peer_closed_) {
        if (!fill(deadline)) {
            return false;
        }
    }
    return true;
}

bool Client::wait_readable(Deadline deadline) {
    if (!input_.empty() || is_peer_closed_) {
        return true;
    }
    return fill(deadline);
}

void Client::shutdown_write() {
    if (fd_ >= 0) {
        ::shutdown(fd_, SHUT_WR);
    }
}

void Client::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

std::optional<Response> http_exchange(uint16_t port, std::string_view request, Deadline deadline,
                                      bool is_head_request, std::string* error) {
    Client client;
    if (!client.connect(port, deadline, error)) {
        return std::nullopt;
    }
    // A server may answer and close before taking every byte (a refusal at head time):
    // the answer is read even when the send fails.
    const bool is_sent = client.send(request, deadline);
    std::optional<Response> response = client.read_response(deadline, is_head_request, error);
    if (!response.has_value() && !is_sent && error != nullptr) {
        *error = "send failed, then " + *error;
    }
    return response;
}

std::string get_request(std::string_view path, std::string_view extra_headers) {
    std::string request = "GET ";
    request += path;
    request += " HTTP/1.1\r\nHost: t\r\n";
    request += extra_headers;
    request += "\r\n";
    return request;
}

// ---------------------------------------------------------------------------------------
// Metrics

std::vector<Sample> parse_metrics(std::string_view text) {
    std::vector<Sample> samples;
    while (!text.empty()) {
        const size_t newline = text.find('\n');
        std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        line = trim(line);
        if (line.empty() || line.front() == '#') {
            continue;
        }
        Sample sample;
        const size_t name_end = line.find_first_of("{ ");
        if (name_end == std::string_view::npos) {
            continue;
        }
        sample.name = std::string(line.substr(0, name_end));
        size_t at = name_end;
        if (line[at] == '{') {
            at++;
            while (at < line.size() && line[at] != '}') {
                const size_t equals = line.find('=', at);
                if (equals == std::string_view::npos || equals + 1 >= line.size() ||
                    line[equals + 1] != '"') {
                    break;
                }
                std::string key(trim(line.substr(at, equals - at)));
                std::string value;
                size_t cursor = equals + 2;
                while (cursor < line.size() && line[cursor] != '"') {
                    if (line[cursor] == '\\' && cursor + 1 < line.size()) {
                        cursor++;
                        value.push_back(line[cursor] == 'n' ? '\n' : line[cursor]);
                    } else {
                        value.push_back(line[cursor]);
                    }
                    cursor++;
                }
                sample.labels[key] = value;
                at = cursor + 1;
                if (at < line.size() && line[at] == ',') {
                    at++;
                }
            }
            at++;  // The '}'.
        }
        if (at >= line.size()) {
            continue;
        }
        std::string_view value_text = trim(line.substr(at));
        value_text = value_text.substr(0, value_text.find(' '));  // Drop a timestamp.
        const std::string value_string(value_text);
        char* end = nullptr;
        sample.value = std::strtod(value_string.c_str(), &end);
        if (end == value_string.c_str()) {
            continue;
        }
        samples.push_back(std::move(sample));
    }
    return samples;
}

namespace {

bool labels_match(const Sample& sample, const std::map<std::string, std::string>& labels) {
    for (const auto& [key, value] : labels) {
        const auto found = sample.labels.find(key);
        if (found == sample.labels.end() || found->second != value) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::optional<double> metric_value(std::string_view text, std::string_view name,
                                   const std::map<std::string, std::string>& labels) {
    std::optional<double> found;
    for (const Sample& sample : parse_metrics(text)) {
        if (sample.name == name && labels_match(sample, labels)) {
            if (found.has_value()) {
                return std::nullopt;  // Ambiguous: the caller must name more labels.
            }
            found = sample.value;
        }
    }
    return found;
}

double metric_sum(std::string_view text, std::string_view name,
                  const std::map<std::string, std::string>& labels) {
    double sum = 0;
    for (const Sample& sample : parse_metrics(text)) {
        if (sample.name == name && labels_match(sample, labels)) {
            sum += sample.value;
        }
    }
    return sum;
}

std::optional<std::string> scrape_metrics(uint16_t port, Deadline deadline) {
    std::optional<Response> response = http_exchange(
        port, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", deadline);
    if (!response.has_value() || response->status != 200) {
        return std::nullopt;
    }
    return std::move(response->body);
}

std::optional<std::string> MetricsScraper::scrape(Deadline deadline) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!client_.is_connected() || client_.is_peer_closed()) {
            if (!client_.connect(port_, deadline)) {
                return std::nullopt;
            }
        }
        if (client_.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", deadline)) {
            std::optional<Response> response = client_.read_response(deadline);
            if (response.has_value() && response->status == 200) {
                if (response->connection_has("close")) {
                    client_.close();
                }
                return std::move(response->body);
            }
        }
        client_.close();
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Error responses

std::string check_error_response(const Response& response, std::string* code,
                                 bool is_close_expected) {
    std::string problems;
    auto add = [&](const std::string& problem) {
        problems += problems.empty() ? "" : "; ";
        problems += problem;
    };
    const std::optional<std::string> content_type = response.header("content-type");
    if (!content_type.has_value() || lower(*content_type).rfind("application/json", 0) != 0) {
        add("Content-Type is not application/json: " + content_type.value_or("<absent>"));
    }
    if (response.connection_has("close") != is_close_expected) {
        add(std::string(is_close_expected ? "no Connection: close" : "Connection: close") +
            " (Connection: " + response.header("connection").value_or("<absent>") + ")");
    }
    if (!response.is_chunked) {
        const std::optional<std::string> length = response.header("content-length");
        if (!length.has_value() || *length != std::to_string(response.body.size())) {
            add("Content-Length " + length.value_or("<absent>") + " but body has " +
                std::to_string(response.body.size()) + " bytes");
        }
    }
    simdjson::dom::parser parser;
    simdjson::dom::element document;
    if (parser.parse(response.body).get(document) != simdjson::SUCCESS) {
        add("body is not JSON: " + escape_bytes(response.body));
        return problems;
    }
    simdjson::dom::object top;
    simdjson::dom::object error;
    if (document.get_object().get(top) != simdjson::SUCCESS || top.size() != 1 ||
        top["error"].get_object().get(error) != simdjson::SUCCESS) {
        add("body is not {\"error\":{...}}: " + escape_bytes(response.body));
        return problems;
    }
    std::string_view message;
    std::string_view type;
    std::string_view code_text;
    if (error["message"].get_string().get(message) != simdjson::SUCCESS || message.empty()) {
        add("error.message missing or empty");
    }
    if (error["type"].get_string().get(type) != simdjson::SUCCESS) {
        add("error.type missing");
    } else {
        // OpenAI's types: by status, except on its 429s, which name the limit hit
        // (insufficient_quota for a spent quota, requests for a request-rate limit).
        const std::string_view expected_type =
            response.status >= 500 ? "server_error" : "invalid_request_error";
        const bool is_limit_type =
            response.status == 429 && (type == "insufficient_quota" || type == "requests");
        if (type != expected_type && !is_limit_type) {
            add("error.type is " + std::string(type) + ", expected " + std::string(expected_type));
        }
    }
    if (error["code"].get_string().get(code_text) != simdjson::SUCCESS) {
        add("error.code missing or not a string");
    } else {
        const bool is_snake =
            !code_text.empty() && code_text.front() >= 'a' && code_text.front() <= 'z' &&
            code_text.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") ==
                std::string_view::npos;
        if (!is_snake) {
            add("error.code is not snake_case: " + std::string(code_text));
        }
        if (code != nullptr) {
            *code = std::string(code_text);
        }
    }
    for (auto field : error) {
        if (field.key != "message" && field.key != "type" && field.key != "code" &&
            field.key != "param") {
            add("unexpected field error." + std::string(field.key));
        }
    }
    if (response.status < 400) {
        add("status " + std::to_string(response.status) + " is not an error status");
    }
    return problems;
}

std::string escape_bytes(std::string_view bytes, size_t max_bytes) {
    std::string out;
    const size_t shown = std::min(bytes.size(), max_bytes);
    for (size_t i = 0; i < shown; i++) {
        const unsigned char c = static_cast<unsigned char>(bytes[i]);
        if (c == '\r') {
            out += "\\r";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c >= 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "\\x%02x", c);
            out += hex;
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    if (shown < bytes.size()) {
        out += "...(" + std::to_string(bytes.size()) + " bytes)";
    }
    return out;
}

uint32_t affinity_cpu_count() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof(set), &set) != 0) {
        return 0;
    }
    return static_cast<uint32_t>(CPU_COUNT(&set));
}

}  // namespace rw::test
