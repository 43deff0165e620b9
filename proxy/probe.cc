// proxy/probe.cc — the channel probe (see probe.h): a blocking HTTP/1.1 exchange with a
// deadline on every step, TLS through the data plane's TlsSession engine over the socket;
// a probe_model request's answer is read whole (Connection: close) for its usage, and its
// row goes to the writer's control queue. Admin thread only.
#include "proxy/probe.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

#include "core/log.h"
#include "core/wall_clock.h"
#include "proxy/channel_health.h"
#include "proxy/json_fields.h"
#include "proxy/resolver.h"
#include "proxy/tls.h"
#include "proxy/usage_record.h"
#include "storage/writer.h"

namespace rw {
namespace {

using Clock = std::chrono::steady_clock;

// The most of a probe_model answer read (a max_tokens 1 answer is a few hundred bytes).
constexpr size_t probe_answer_bytes_max = 1 << 20;

int left_ms(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : int(left);
}

// The answer's head, lower-cased; empty while it is incomplete.
std::string answer_head(const std::string& answer) {
    const size_t head_end = answer.find("\r\n\r\n");
    std::string head =
        head_end == std::string::npos ? std::string() : answer.substr(0, head_end + 2);
    for (char& c : head) {
        c = c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
    }
    return head;
}

// A whole answer is in: its Content-Length of body, or a chunked body's last chunk (a
// close-delimited one ends with the connection).
bool answer_is_complete(const std::string& answer) {
    const std::string head = answer_head(answer);
    if (head.empty()) {
        return false;
    }
    const size_t body_bytes = answer.size() - head.size() - 2;
    const size_t length_at = head.find("\r\ncontent-length:");
    if (length_at != std::string::npos) {
        return body_bytes >= std::strtoul(head.c_str() + length_at + 17, nullptr, 10);
    }
    return head.find("transfer-encoding: chunked") != std::string::npos &&
           answer.ends_with("0\r\n\r\n");
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

    // Appends what arrives next (plaintext); false at EOF, on an error or the deadline.
    bool read_some(std::string& out) {
        char in[16384];
        const ssize_t got = recv_raw(in, sizeof(in));
        if (got <= 0) {
            return false;
        }
        if (!is_tls) {
            out.append(in, size_t(got));
            return true;
        }
        tls.feed_ciphertext(reinterpret_cast<const std::byte*>(in), uint32_t(got));
        std::byte plain[16384];
        for (ReadResult read = tls.read_plaintext(plain, sizeof(plain));
             read.status == ReadStatus::bytes; read = tls.read_plaintext(plain, sizeof(plain))) {
            out.append(reinterpret_cast<const char*>(plain), read.plaintext_bytes);
        }
        return true;
    }

    // Reads until the status line is complete (or, with is_whole, until the peer closes,
    // at most probe_answer_bytes_max); the status code, or 0. The bytes go to `answer`.
    uint16_t read_status(std::string& answer, bool is_whole) {
        while (
            answer.size() < probe_answer_bytes_max &&
            (is_whole ? !answer_is_complete(answer) : answer.find("\r\n") == std::string::npos)) {
            if (!read_some(answer)) {
                break;  // EOF: the Connection: close answer is complete.
            }
        }
        if (answer.find("\r\n") == std::string::npos) {
            error = error.empty() ? "closed before answering" : error;
            return 0;
        }
        if (!answer.starts_with("HTTP/1.") || answer.size() < 12) {
            error = "not an HTTP response";
            return 0;
        }
        return uint16_t(std::atoi(answer.c_str() + 9));
    }
};

// The body of a whole answer (Content-Length or close-delimited, or chunked: de-chunked).
std::string answer_body(const std::string& answer) {
    const std::string head = answer_head(answer);
    if (head.empty()) {
        return {};
    }
    std::string_view rest = std::string_view(answer).substr(head.size() + 2);
    if (head.find("transfer-encoding: chunked") == std::string::npos) {
        return std::string(rest);
    }
    std::string body;
    for (;;) {
        const size_t line_end = rest.find("\r\n");
        const size_t size =
            line_end == std::string_view::npos
                ? 0
                : std::strtoul(std::string(rest.substr(0, line_end)).c_str(), nullptr, 16);
        if (size == 0 || line_end + 2 + size > rest.size()) {
            return body;
        }
        body.append(rest.substr(line_end + 2, size));
        rest.remove_prefix(std::min(rest.size(), line_end + 2 + size + 2));
    }
}

// The minimal request on the probe model: one token of output, in the channel's protocol.
std::string probe_body(const ProbeRequest& request) {
    std::string body = "{\"model\":";
    json_escape_append(body, request.probe_model);  // With its quotes.
    return body + ",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]}";
}

std::string_view probe_path(const ProbeRequest& request) {
    if (request.probe_model.empty()) {
        return "/v1/models";
    }
    return request.kind == ChannelKind::anthropic ? "/v1/messages" : "/v1/chat/completions";
}

std::string probe_request_text(const ChannelAddress& address, const ProbeRequest& request,
                               const std::string& body) {
    // "/v1" once: a base URL ending in /v1 already has it (rewrite.cc's rule).
    const std::string& prefix = address.url.path_prefix;
    const bool has_v1 = prefix.size() >= 3 && prefix.compare(prefix.size() - 3, 3, "/v1") == 0;
    const std::string_view path = probe_path(request).substr(has_v1 ? 3 : 0);
    std::string text = (body.empty() ? "GET " : "POST ") + prefix + std::string(path) +
                       " HTTP/1.1\r\nHost: " + address.url.host_header + "\r\n";
    if (request.kind == ChannelKind::anthropic) {
        text += "x-api-key: " + request.api_key + "\r\nanthropic-version: 2023-06-01\r\n";
    } else {
        text += "Authorization: Bearer " + request.api_key + "\r\n";
    }
    if (!body.empty()) {
        text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\nAccept-Encoding: identity\r\n";
    }
    text += "User-Agent: ringway-probe\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
    return text + body;
}

// The outcome told to the channel health, as a live attempt's would be; a trial's settles it.
void probe_report(ChannelHealthBoard& health, const ProbeRequest& request,
                  const ProbeOutcome& outcome) {
    const uint64_t now_ms = health_clock_ms();
    if (outcome.is_ok) {
        if (!request.is_trial) {
            health.reset(request.channel_id, now_ms);
        }
        health.succeeded(request.channel_id, now_ms, request.is_trial);
        return;
    }
    const FailureKind kind = outcome.status == 401 || outcome.status == 403 ? FailureKind::auth
                             : outcome.status == 429                        ? FailureKind::rate
                                                                            : FailureKind::server;
    health.failed(request.channel_id, request.auto_disable,
                  {kind, outcome.status, 0, outcome.error}, now_ms, request.is_trial);
}

// What a probe_model request's row needs besides the answer.
struct ProbeRecordInput {
    int64_t started_unix_ms;
    uint64_t latency_us;
    uint64_t bytes_in;
    uint16_t status;
    std::string_view answer;  // Head and body as received.
};

// The probe's usage row under the system key, priced as request.cc prices a row, pushed
// into the writer's control queue (reserved by the caller). The snapshot is held for the
// call only.
void probe_record(const ProbeDeps& deps, const ProbeRequest& request,
                  const ProbeRecordInput& input) {
    std::string body = answer_body(std::string(input.answer));
    const size_t body_bytes = body.size();
    body.append(json_padding_bytes, '\0');
    UsageCounts usage;
    const UsageFormat format = request.kind == ChannelKind::anthropic
                                   ? UsageFormat::anthropic_messages
                                   : UsageFormat::chat;
    if (input.status < 200 || input.status >= 300 ||
        !usage_from_json(std::string_view(body.data(), body_bytes), format, usage)) {
        usage = UsageCounts{};
    }
    const Snapshot* snapshot = deps.snapshots->acquire(deps.snapshot_reader);
    const PriceEntry* price = snapshot != nullptr
                                  ? snapshot->prices().find(request.probe_model, request.channel_id,
                                                            input.started_unix_ms)
                                  : nullptr;
    const UsageRecordInput record_input{input.started_unix_ms,
                                        record_system_key_id,
                                        request.channel_id,
                                        input.latency_us,
                                        0,
                                        input.bytes_in,
                                        input.answer.size(),
                                        usage,
                                        input.status,
                                        0,
                                        input.bytes_in,
                                        0,
                                        1,
                                        input.status == 0 ? EndReason::upstream_reset
                                        : input.status >= 200 && input.status < 300
                                            ? EndReason::complete
                                            : EndReason::upstream_error,
                                        request.probe_model,
                                        request.probe_model,
                                        probe_path(request),
                                        "probe",
                                        {},
                                        {},
                                        {},
                                        price};
    const UsageRecord record = usage_record_build(record_input);
    deps.snapshots->quiesce(deps.snapshot_reader);
    LogQueue& queue = deps.writer->control_queue();
    queue.push(record);
    deps.writer->notify_control();
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
        if (request.is_trial && deps.health != nullptr) {
            deps.health->trial_abandoned(request.channel_id);
        }
        return outcome;
    }
    ProbeRequest sent = request;
    if (deps.writer == nullptr || deps.snapshots == nullptr) {
        sent.probe_model.clear();  // Nowhere to record it: the free probe.
    }
    // A row is promised before anything is sent: no room in the queue, no probe.
    if (!sent.probe_model.empty() && !deps.writer->control_queue().try_reserve()) {
        outcome.error = "usage log full: probe not sent";
        if (request.is_trial && deps.health != nullptr) {
            deps.health->trial_abandoned(request.channel_id);  // Nothing was asked.
        }
        return outcome;
    }
    const std::string body = sent.probe_model.empty() ? std::string() : probe_body(sent);
    const std::string text = probe_request_text(*address, sent, body);
    const int64_t started_unix_ms = wall_clock_unix_ms();
    const auto start = Clock::now();
    ProbeConn conn;
    conn.deadline = start + std::chrono::milliseconds(deps.timeout_ms);
    std::string answer;
    if (conn.connect_to(*address) && conn.send(text)) {
        outcome.status = conn.read_status(answer, !sent.probe_model.empty());
    }
    const auto elapsed = Clock::now() - start;
    outcome.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    outcome.is_ok = outcome.status >= 200 && outcome.status < 300;
    if (!outcome.is_ok) {
        outcome.error = outcome.status != 0 ? "HTTP " + std::to_string(outcome.status)
                                            : "probe failed: " + conn.error;
    }
    if (!sent.probe_model.empty()) {
        const auto latency_us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed);
        probe_record(
            deps, sent,
            {started_unix_ms, uint64_t(latency_us.count()), text.size(), outcome.status, answer});
        outcome.is_recorded = true;
    }
    if (deps.health != nullptr) {
        probe_report(*deps.health, sent, outcome);
    }
    RW_LOG_INFO(
        "event=channel_probe channel_id=%ld status=%u latency_ms=%ld ok=%d trial=%d "
        "recorded=%d",
        static_cast<long>(request.channel_id), outcome.status,
        static_cast<long>(outcome.latency_ms), outcome.is_ok ? 1 : 0, request.is_trial ? 1 : 0,
        outcome.is_recorded ? 1 : 0);
    return outcome;
}

}  // namespace rw
