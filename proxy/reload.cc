// proxy/reload.cc — the SIGHUP reload (see reload.h): the env file, the fork+exec with
// inherited listeners, and the readiness pipe.
#include "proxy/reload.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/listen.h"

extern char** environ;

namespace rw {
namespace {

constexpr const char* fds_env = "RINGWAY_INHERITED_FDS";  // "L1,L2,...;ADMIN" (-1: none)
constexpr const char* ready_env = "RINGWAY_RELOAD_READY_FD";

std::string program_path;  // Main thread: set at startup, read on SIGHUP.

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
        text.remove_suffix(1);
    }
    return text;
}

bool fd_parse(std::string_view text, int& fd) {
    if (text.empty() || text.size() > 9) {
        return false;
    }
    fd = 0;
    for (const char digit : text) {
        if (digit < '0' || digit > '9') {
            return false;
        }
        fd = fd * 10 + (digit - '0');
    }
    return fd > 2;
}

bool cloexec_set(int fd, bool is_on) {
    const int flags = ::fcntl(fd, F_GETFD);
    return flags >= 0 &&
           ::fcntl(fd, F_SETFD, is_on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC)) == 0;
}

// The child's environment: this one, less the previous handover's variables, with the
// env file's entries over it, plus the new handover's.
bool child_environment(const std::string& env_file, const std::string& fds_text, int ready_fd,
                       std::vector<std::string>& out, std::string& error) {
    std::vector<std::pair<std::string, std::string>> entries;
    if (!env_file.empty()) {
        std::ifstream file(env_file);
        if (!file) {
            error = "cannot read RINGWAY_ENV_FILE " + env_file + ": " + std::strerror(errno);
            return false;
        }
        std::stringstream text;
        text << file.rdbuf();
        if (!env_file_parse(text.str(), entries, error)) {
            error = env_file + ": " + error;
            return false;
        }
    }
    for (char** entry = environ; *entry != nullptr; entry++) {
        const std::string_view pair = *entry;
        const std::string_view name = pair.substr(0, pair.find('='));
        bool is_replaced = name == fds_env || name == ready_env;
        for (const auto& [key, value] : entries) {
            is_replaced = is_replaced || name == key;
        }
        if (!is_replaced) {
            out.emplace_back(pair);
        }
    }
    for (const auto& [key, value] : entries) {
        out.push_back(key + "=" + value);
    }
    out.push_back(std::string(fds_env) + "=" + fds_text);
    out.push_back(std::string(ready_env) + "=" + std::to_string(ready_fd));
    return true;
}

std::string status_text(int status) {
    if (WIFEXITED(status)) {
        return "exit " + std::to_string(WEXITSTATUS(status));
    }
    return "signal " + std::to_string(WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// Forks and execs program_path with env; the inherited descriptors lose close-on-exec in
// the child only (between fork and exec only async-signal-safe calls).
pid_t child_spawn(const std::vector<std::string>& env, const std::vector<int>& keep) {
    std::vector<char*> envp;
    for (const std::string& entry : env) {
        envp.push_back(const_cast<char*>(entry.c_str()));
    }
    envp.push_back(nullptr);
    char* argv[] = {const_cast<char*>(program_path.c_str()), nullptr};
    const pid_t pid = ::fork();
    if (pid != 0) {
        return pid;
    }
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);  // The new process sets its own mask.
    for (const int fd : keep) {
        if (!cloexec_set(fd, false)) {
            ::_exit(127);
        }
    }
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
}

// Waits for the ready byte, the pipe's end (the child exited) or the timeout.
ReloadOutcome child_wait_ready(pid_t pid, int read_fd) {
    ReloadOutcome outcome;
    outcome.pid = pid;
    pollfd poll_fd{read_fd, POLLIN, 0};
    int ready = 0;
    do {
        ready = ::poll(&poll_fd, 1, int(reload_ready_timeout_ms));
    } while (ready < 0 && errno == EINTR);
    char byte = 0;
    if (ready > 0 && ::read(read_fd, &byte, 1) == 1 && byte == 'R') {
        outcome.is_ready = true;
        return outcome;
    }
    int status = 0;
    if (ready == 0) {
        ::kill(pid, SIGKILL);
        outcome.error = "the new process was not ready within " +
                        std::to_string(reload_ready_timeout_ms) + " ms";
        (void)::waitpid(pid, &status, 0);
        return outcome;
    }
    (void)::waitpid(pid, &status, 0);
    outcome.error = "the new process ended before it was ready (" + status_text(status) +
                    "; its reason is logged above)";
    return outcome;
}

}  // namespace

bool env_file_parse(std::string_view text,
                    std::vector<std::pair<std::string, std::string>>& entries, std::string& error) {
    uint32_t line_number = 0;
    while (!text.empty()) {
        const size_t end = text.find('\n');
        const std::string_view line = trim(text.substr(0, end));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        line_number += 1;
        if (line.empty() || line.front() == '#' || line.front() == ';') {
            continue;
        }
        const size_t equals = line.find('=');
        const std::string_view key = trim(line.substr(0, equals));
        if (equals == std::string_view::npos || key.empty() ||
            key.find_first_of(" \t\"'") != std::string_view::npos) {
            error = "line " + std::to_string(line_number) + " is not KEY=value";
            return false;
        }
        std::string_view value = trim(line.substr(equals + 1));
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
            value.back() == value.front()) {
            value = value.substr(1, value.size() - 2);
        }
        entries.emplace_back(std::string(key), std::string(value));
    }
    return true;
}

bool reload_inherited(Inherited& inherited, std::string& error) {
    const char* fds = std::getenv(fds_env);
    const char* ready = std::getenv(ready_env);
    if (fds == nullptr && ready == nullptr) {
        return true;
    }
    const std::string_view text = fds != nullptr ? fds : "";
    const size_t semicolon = text.find(';');
    std::string_view listeners = text.substr(0, semicolon);
    const std::string_view admin =
        semicolon == std::string_view::npos ? "" : text.substr(semicolon + 1);
    bool is_ok = ready != nullptr && fd_parse(ready, inherited.ready_fd) &&
                 semicolon != std::string_view::npos && !listeners.empty();
    while (is_ok && !listeners.empty()) {
        const size_t comma = listeners.find(',');
        int fd = -1;
        is_ok = fd_parse(listeners.substr(0, comma), fd);
        inherited.listen_fds.push_back(fd);
        listeners.remove_prefix(comma == std::string_view::npos ? listeners.size() : comma + 1);
    }
    if (is_ok && admin != "-1") {
        is_ok = fd_parse(admin, inherited.admin_fd);
    }
    if (!is_ok) {
        error = std::string("malformed ") + fds_env + " or " + ready_env;
        return false;
    }
    for (const int fd : inherited.listen_fds) {
        is_ok = is_ok && cloexec_set(fd, true);
    }
    is_ok = is_ok && cloexec_set(inherited.ready_fd, true) &&
            (inherited.admin_fd < 0 || cloexec_set(inherited.admin_fd, true));
    if (!is_ok) {
        error = std::string("an inherited descriptor is not open: ") + std::strerror(errno);
        return false;
    }
    ::unsetenv(fds_env);
    ::unsetenv(ready_env);
    inherited.is_reload = true;
    return true;
}

bool reload_listeners(Inherited& inherited, ListenAddress& listen, uint32_t shard_count,
                      std::vector<int>& fds, std::string& error) {
    for (const int fd : inherited.listen_fds) {
        if (!listener_adopt(fd, listen, error)) {
            return false;
        }
    }
    const size_t count = inherited.listen_fds.size();
    if (shard_count < count) {
        // A SO_REUSEPORT socket closed with connections in its queue resets them.
        error = "RINGWAY_SHARDS=" + std::to_string(shard_count) + " is below the " +
                std::to_string(count) +
                " listeners of the running process: fewer shards need a "
                "restart";
        return false;
    }
    for (uint32_t index = 0; index < shard_count; index++) {
        // A shard closes its listener when it stops: each needs its own descriptor.
        const int fd = index < count
                           ? inherited.listen_fds[index]
                           : ::fcntl(inherited.listen_fds[index % count], F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            error = std::string("dup: ") + std::strerror(errno);
            return false;
        }
        fds.push_back(fd);
    }
    return true;
}

void reload_signal_ready(Inherited& inherited) {
    if (inherited.ready_fd < 0) {
        return;
    }
    const char byte = 'R';
    [[maybe_unused]] const ssize_t written = ::write(inherited.ready_fd, &byte, 1);
    ::close(inherited.ready_fd);
    inherited.ready_fd = -1;
}

void reload_remember_program() {
    char path[4096];
    const ssize_t length = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
    program_path = length > 0 ? std::string(path, size_t(length)) : std::string();
}

ReloadOutcome reload_start(const std::string& env_file, const std::vector<int>& listen_fds,
                           int admin_fd) {
    ReloadOutcome outcome;
    if (program_path.empty()) {
        outcome.error = "the program's path is unknown (/proc/self/exe)";
        return outcome;
    }
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        outcome.error = std::string("pipe: ") + std::strerror(errno);
        return outcome;
    }
    std::string fds_text;
    std::vector<int> keep = listen_fds;
    for (const int fd : listen_fds) {
        if (!fds_text.empty()) {
            fds_text.push_back(',');
        }
        fds_text.append(std::to_string(fd));
    }
    fds_text.push_back(';');
    fds_text.append(std::to_string(admin_fd));
    if (admin_fd >= 0) {
        keep.push_back(admin_fd);
    }
    keep.push_back(pipe_fds[1]);
    std::vector<std::string> env;
    if (!child_environment(env_file, fds_text, pipe_fds[1], env, outcome.error)) {
        ::close(pipe_fds[0]);
        ::close(pipe_fds[1]);
        return outcome;
    }
    const pid_t pid = child_spawn(env, keep);
    ::close(pipe_fds[1]);
    if (pid < 0) {
        outcome.error = std::string("fork: ") + std::strerror(errno);
        ::close(pipe_fds[0]);
        return outcome;
    }
    outcome = child_wait_ready(pid, pipe_fds[0]);
    ::close(pipe_fds[0]);
    return outcome;
}

}  // namespace rw
