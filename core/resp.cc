// core/resp.cc — RESP2 encoding, the incremental reply parser and the blocking client (see
// resp.h). Control plane only.
#include "core/resp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace rw {
namespace {

int64_t monotonic_ms() {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return int64_t(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

// A signed decimal line body ("-1", "42"); false if it is anything else.
bool parse_integer(std::string_view text, int64_t& out) {
    if (text.empty()) {
        return false;
    }
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

// Waits for `events` on fd until deadline_ms; false on timeout or error (errno-like text).
bool wait_fd(int fd, short events, int64_t deadline_ms, std::string& error) {
    for (;;) {
        const int64_t left = deadline_ms - monotonic_ms();
        if (left <= 0) {
            error = "timed out";
            return false;
        }
        pollfd entry{fd, events, 0};
        const int ready = ::poll(&entry, 1, int(left));
        if (ready > 0) {
            return true;
        }
        if (ready < 0 && errno != EINTR) {
            error = std::strerror(errno);
            return false;
        }
    }
}

}  // namespace

void resp_command(std::string& out, const std::vector<std::string_view>& args) {
    char number[24];
    out += '*';
    out.append(number, std::to_chars(number, number + sizeof(number), args.size()).ptr);
    out += "\r\n";
    for (const std::string_view arg : args) {
        out += '$';
        out.append(number, std::to_chars(number, number + sizeof(number), arg.size()).ptr);
        out += "\r\n";
        out.append(arg);
        out += "\r\n";
    }
}

RespReader::Result RespReader::parse(size_t& pos, RespValue& out, uint32_t depth) const {
    if (depth > depth_max) {
        return Result::bad;
    }
    const size_t eol = buffer_.find("\r\n", pos);
    if (eol == std::string::npos) {
        // A line longer than any this client asks for is not a reply in progress.
        return buffer_.size() - pos > 4096 ? Result::bad : Result::incomplete;
    }
    const char kind = buffer_[pos];
    const std::string_view line(buffer_.data() + pos + 1, eol - pos - 1);
    size_t after = eol + 2;
    out = RespValue{};
    switch (kind) {
        case '+':
        case '-':
            out.type = kind == '+' ? RespType::simple : RespType::error;
            out.text.assign(line);
            break;
        case ':':
            out.type = RespType::integer;
            if (!parse_integer(line, out.integer)) {
                return Result::bad;
            }
            break;
        case '$': {
            int64_t length = 0;
            if (!parse_integer(line, length) || length < -1 || length > bulk_bytes_max) {
                return Result::bad;
            }
            if (length == -1) {
                out.type = RespType::nil;
                break;
            }
            if (buffer_.size() < after + size_t(length) + 2) {
                return Result::incomplete;
            }
            if (buffer_.compare(after + size_t(length), 2, "\r\n") != 0) {
                return Result::bad;
            }
            out.type = RespType::bulk;
            out.text.assign(buffer_, after, size_t(length));
            after += size_t(length) + 2;
            break;
        }
        case '*': {
            int64_t count = 0;
            if (!parse_integer(line, count) || count < -1 || count > array_items_max) {
                return Result::bad;
            }
            if (count == -1) {
                out.type = RespType::nil;
                break;
            }
            out.type = RespType::array;
            out.items.resize(size_t(count));
            for (RespValue& item : out.items) {
                if (const Result result = parse(after, item, depth + 1); result != Result::value) {
                    return result;
                }
            }
            break;
        }
        default: return Result::bad;
    }
    pos = after;
    return Result::value;
}

RespReader::Result RespReader::next(RespValue& out) {
    if (start_ == buffer_.size()) {
        return Result::incomplete;
    }
    size_t pos = start_;
    const Result result = parse(pos, out, 0);
    if (result == Result::value) {
        start_ = pos;
        if (start_ == buffer_.size()) {
            clear();
        } else if (start_ > 65536) {
            buffer_.erase(0, start_);
            start_ = 0;
        }
    }
    return result;
}

bool RespClient::connect(const std::string& host, uint16_t port, uint32_t timeout_ms,
                         std::string& error) {
    close();
    sockaddr_storage address{};
    socklen_t address_bytes = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    const std::string name = host == "localhost" ? "127.0.0.1" : host;
    if (inet_pton(AF_INET, name.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        address_bytes = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, name.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        address_bytes = sizeof(sockaddr_in6);
    } else {
        error = "not an IP address: " + host;
        return false;
    }
    const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = std::strerror(errno);
        return false;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), address_bytes) != 0 &&
        errno != EINPROGRESS) {
        error = std::strerror(errno);
        ::close(fd);
        return false;
    }
    if (!wait_fd(fd, POLLOUT, monotonic_ms() + timeout_ms, error)) {
        ::close(fd);
        return false;
    }
    int status = 0;
    socklen_t status_bytes = sizeof(status);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &status, &status_bytes);
    if (status != 0) {
        error = std::strerror(status);
        ::close(fd);
        return false;
    }
    fd_ = fd;
    reader_.clear();
    return true;
}

bool RespClient::exchange(std::string_view commands, size_t count, std::vector<RespValue>& replies,
                          uint32_t timeout_ms, std::string& error) {
    replies.clear();
    if (fd_ < 0) {
        error = "not connected";
        return false;
    }
    const int64_t deadline_ms = monotonic_ms() + timeout_ms;
    size_t sent = 0;
    while (sent < commands.size()) {
        const ssize_t wrote =
            ::send(fd_, commands.data() + sent, commands.size() - sent, MSG_NOSIGNAL);
        if (wrote > 0) {
            sent += size_t(wrote);
        } else if (wrote < 0 && errno != EAGAIN && errno != EINTR) {
            error = std::strerror(errno);
            close();
            return false;
        } else if (!wait_fd(fd_, POLLOUT, deadline_ms, error)) {
            close();
            return false;
        }
    }
    char chunk[16384];
    while (replies.size() < count) {
        RespValue value;
        const RespReader::Result result = reader_.next(value);
        if (result == RespReader::Result::value) {
            replies.push_back(std::move(value));
            continue;
        }
        if (result == RespReader::Result::bad) {
            error = "the server's reply is not RESP2";
            close();
            return false;
        }
        const ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
        if (got > 0) {
            reader_.feed({chunk, size_t(got)});
        } else if (got == 0) {
            error = "connection closed by the server";
            close();
            return false;
        } else if (errno != EAGAIN && errno != EINTR) {
            error = std::strerror(errno);
            close();
            return false;
        } else if (!wait_fd(fd_, POLLIN, deadline_ms, error)) {
            close();
            return false;
        }
    }
    return true;
}

void RespClient::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    reader_.clear();
}

}  // namespace rw
