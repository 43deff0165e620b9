// proxy/probe.cc — the channel probe (see probe.h): a blocking HTTP/1.1 exchange with a
// deadline on every step, TLS through the data plane's TlsSession engine over the socket.
// Admin thread only.
#include "proxy/probe.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

#include "core/log.h"
#include "proxy/channel_health.h"
#include "proxy/resolver.h"
#include "proxy/tls.h"

namespace rw {
namespace {

using Clock = std::chrono::steady_clock;

int left_ms(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : int(left);
}

// One probe connection: a socket, and a TLS session over it for https channels.
struct ProbeConn {
    int fd = -1;
    TlsSession tls;
    bool is_tls = false;
    Clock::time_point deadline;
    std::string error;

    ~ProbeConn() {
        if (fd >= 0) {
            ::close(fd);
        }
    }

    bool wait(short events) {
        pollfd pfd{fd, events, 0};
        if (::poll(&pfd, 1, left_ms(deadline)) <= 0) {
            error = "timed out";
            return false;
        }
        return true;
    }

    bool send_raw(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (sent > 0) {
                bytes.remove_prefix(size_t(sent));
            } else if (sent < 0 && errno != EAGAIN && errno != EINTR) {
                error = std::string("send: ") + std::strerror(errno);
                return false;
            } else if (!wait(POLLOUT)) {
                return false;
            }
        }
        return true;
    }

    // Sends what the TLS engine has queued.
    bool flush_tls() {
        std::byte out[16384];
        while (tls.pending_ciphertext() > 0) {
            const uint32_t bytes = tls.take_ciphertext(out, sizeof(out));
            if (!send_raw({reinterpret_cast<const char*>(out), bytes})) {
                return false;
            }
        }
        return true;
    }

    // Raw bytes from the socket (0 at EOF, -1 on error or deadline).
    ssize_t recv_raw(char* out, size_t capacity) {
        for (;;) {
            if (!wait(POLLIN)) {
                return -1;
            }
            const ssize_t got = ::recv(fd, out, capacity, 0);
            if (got >= 0) {
                return got;
            }
            if (errno != EAGAIN && errno != EINTR) {
                error = std::string("recv: ") + std::strerror(errno);
                return -1;
            }
        }
    }

    bool connect_to(const ChannelAddress& address) {
        fd = ::socket(address.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            error = std::string("socket: ") + std::strerror(errno);
            return false;
        }
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&address.address),
                      address.address_bytes) != 0 &&
            errno != EINPROGRESS) {
            error = std::string("connect: ") + std::strerror(errno);
            return false;
        }
        int connect_errno = 0;
        socklen_t bytes = sizeof(connect_errno);
        if (!wait(POLLOUT) || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &connect_errno, &bytes) != 0 ||
            connect_errno != 0) {
            error = error.empty() ? std::string("connect: ") + std::strerror(connect_errno) : error;
            return false;
        }
        return !address.url.is_tls || handshake(address);
    }

    bool handshake(const ChannelAddress& address) {
        is_tls = true;
        if (address.tls_context == nullptr ||
            !tls.start(*address.tls_context, address.url.host, error)) {
            error = error.empty() ? "no TLS context" : error;
            return false;
        }
        for (;;) {
            const HandshakeResult result = tls.handshake();
            if (!flush_tls()) {
                return false;
            }
            if (result.status == HandshakeStatus::done) {
                return true;
            }
            if (result.status == HandshakeStatus::failed) {
                error = "TLS: " + std::string(result.reason);
                return false;
            }
            char in[16384];
            const ssize_t got = recv_raw(in, sizeof(in));
            if (got <= 0) {
                error = error.empty() ? "TLS: closed during the handshake" : error;
                return false;
            }
            tls.feed_ciphertext(reinterpret_cast<const std::byte*>(in), uint32_t(got));
        }
    }

    bool send(std::string_view plaintext) {
        if (!is_tls) {
            return send_raw(plaintext);
        }
        if (tls.write_plaintext(plaintext.data(), uint32_t(plaintext.size())) < 0) {
            error = "TLS: " + std::string(tls.last_error());
            return false;
        }
        return flush_tls();
    }

    // Reads until the status line is complete; its code, or 0.
    uint16_t read_status() {
        std::string head;
        char in[16384];
        while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
            const ssize_t got = recv_raw(in, sizeof(in));
            if (got <= 0) {
                error = error.empty() ? "closed before answering" : error;
                return 0;
            }
            if (!is_tls) {
                head.append(in, size_t(got));
                continue;
            }
            tls.feed_ciphertext(reinterpret_cast<const std::byte*>(in), uint32_t(got));
            std::byte plain[16384];
            for (ReadResult read = tls.read_plaintext(plain, sizeof(plain));
                 read.status == ReadStatus::bytes;
                 read = tls.read_plaintext(plain, sizeof(plain))) {
                head.append(reinterpret_cast<const char*>(plain), read.plaintext_bytes);
            }
        }
        if (!head.starts_with("HTTP/1.") || head.size() < 12) {
            error = "not an HTTP response";
            return 0;
        }
        return uint16_t(std::atoi(head.c_str() + 9));
    }
};

std::string probe_request_text(const ChannelAddress& address, const ProbeRequest& request) {
    // "/v1" once: a base URL ending in /v1 already has it (rewrite.cc's rule).
    const std::string& prefix = address.url.path_prefix;
    const bool has_v1 = prefix.size() >= 3 && prefix.compare(prefix.size() - 3, 3, "/v1") == 0;
    std::string text = "GET " + prefix + (has_v1 ? "/models" : "/v1/models") +
                       " HTTP/1.1\r\nHost: " + address.url.host_header + "\r\n";
    if (request.kind == ChannelKind::anthropic) {
        text += "x-api-key: " + request.api_key + "\r\nanthropic-version: 2023-06-01\r\n";
    } else {
        text += "Authorization: Bearer " + request.api_key + "\r\n";
    }
    text += "User-Agent: ringway-probe\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
    return text;
}

// The outcome told to the channel health, as a live attempt's would be.
void probe_report(ChannelHealthBoard& health, const ProbeRequest& request,
                  const ProbeOutcome& outcome) {
    const uint64_t now_ms = health_clock_ms();
    if (outcome.is_ok) {
        health.reset(request.channel_id, now_ms);
        health.succeeded(request.channel_id, now_ms, false);
        return;
    }
    const FailureKind kind = outcome.status == 401 || outcome.status == 403 ? FailureKind::auth
                             : outcome.status == 429                        ? FailureKind::rate
                                                                            : FailureKind::server;
    health.failed(request.channel_id, request.auto_disable,
                  {kind, outcome.status, 0, outcome.error}, now_ms, false);
}

}  // namespace

ProbeOutcome channel_probe(void* context, const ProbeRequest& request) {
    const ProbeDeps& deps = *static_cast<const ProbeDeps*>(context);
    ProbeOutcome outcome;
    const AddressBook* book = deps.resolver != nullptr ? deps.resolver->current() : nullptr;
    const ChannelAddress* address = book != nullptr ? book->find(request.channel_id) : nullptr;
    if (address == nullptr || !address->is_usable) {
        // Nothing was asked of the provider: the channel's health is not the probe's to judge.
        outcome.error = address == nullptr ? "the channel's address is not resolved yet"
                                           : "the channel's address is unusable: " + address->error;
        return outcome;
    }
    const auto start = Clock::now();
    ProbeConn conn;
    conn.deadline = start + std::chrono::milliseconds(deps.timeout_ms);
    if (conn.connect_to(*address) && conn.send(probe_request_text(*address, request))) {
        outcome.status = conn.read_status();
    }
    outcome.latency_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    outcome.is_ok = outcome.status >= 200 && outcome.status < 300;
    if (!outcome.is_ok) {
        outcome.error = outcome.status != 0 ? "HTTP " + std::to_string(outcome.status)
                                            : "probe failed: " + conn.error;
    }
    if (deps.health != nullptr) {
        probe_report(*deps.health, request, outcome);
    }
    RW_LOG_INFO("event=channel_probe channel_id=%ld status=%u latency_ms=%ld ok=%d",
                static_cast<long>(request.channel_id), outcome.status,
                static_cast<long>(outcome.latency_ms), outcome.is_ok ? 1 : 0);
    return outcome;
}

}  // namespace rw
