// proxy/upstream.cc — attempts of a proxied request on the shard's ring: a pooled or new
// upstream connection, the request head and body in one sendmsg, the response read with
// one buffer-select recv at a time (which is the relay's back-pressure: the next recv
// is armed only when the client's send queue has room), and the decision at the head:
// relay, retry on the next channel, or refuse. Retries happen only when the upstream
// cannot have acted on the request (RULES §6). Shard thread only.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/log.h"
#include "core/op.h"
#include "proxy/gateway.h"
#include "proxy/gateway_types.h"

namespace rw {
namespace {

constexpr std::string_view user_agent = "ringway/0.1.0";

// "[prefix]/v1/x": a base URL that already ends in /v1 (https://host/v1, as many
// OpenAI-compatible servers document it) does not get a second /v1.
void upstream_path(const Candidate& candidate, std::string_view path, std::string_view& first,
                   std::string_view& second) {
    first = candidate.path_prefix;
    second = path;
    if (first.size() >= 3 && first.substr(first.size() - 3) == "/v1" &&
        path.substr(0, 4) == "/v1/") {
        second = path.substr(3);
    }
}

std::string_view endpoint_path(Endpoint endpoint) {
    switch (endpoint) {
        case Endpoint::chat: return "/v1/chat/completions";
        case Endpoint::completions: return "/v1/completions";
        case Endpoint::embeddings: return "/v1/embeddings";
        case Endpoint::responses: return "/v1/responses";
        case Endpoint::messages: return "/v1/messages";
    }
    return "/";
}

}  // namespace

// The request as the upstream will see it: only the channel's credentials, the rewritten
// body, and the few headers that change the upstream's behaviour. Client credentials,
// cookies and hop-by-hop headers never leave the gateway (RULES security §4).
bool Gateway::attempt_build(ProxyRequest& request) {
    Conn& conn = *request.conn;
    const Candidate& candidate = request.candidates[request.attempt_index];
    const bool is_chat_like =
        request.endpoint == Endpoint::chat || request.endpoint == Endpoint::completions;
    const std::string_view new_model =
        candidate.model_sent == request.model_requested ? std::string_view{} : candidate.model_sent;
    request.upstream_body = request_rewrite(conn.arena, request.body, request.fields, new_model,
                                            request.is_streaming && is_chat_like);
    if (request.upstream_body.empty()) {
        return false;
    }
    const ParsedRequest& http = conn.parser.request();
    std::string_view prefix;
    std::string_view path;
    upstream_path(candidate, endpoint_path(request.endpoint), prefix, path);
    const std::string_view accept = http.find_header("accept");
    const std::string_view openai_beta = http.find_header("openai-beta");
    const std::string_view anthropic_beta = http.find_header("anthropic-beta");
    const uint32_t capacity =
        static_cast<uint32_t>(512 + prefix.size() + path.size() + candidate.host_header.size() +
                              candidate.api_key.size() + accept.size() + openai_beta.size() +
                              anthropic_beta.size() + request.anthropic_version.size());
    auto* head = static_cast<char*>(conn.arena.alloc(capacity, 1));
    if (head == nullptr) {
        return false;
    }
    const bool is_anthropic = candidate.kind == ChannelKind::anthropic;
    // Appended piece by piece: snprintf's format parsing was 4% of a proxied request's
    // CPU (bench/load/proxy.sh perf profile).
    uint32_t length = 0;
    auto put = [&](std::string_view text) {
        RW_ASSERT(length + text.size() <= capacity);
        std::memcpy(head + length, text.data(), text.size());
        length += static_cast<uint32_t>(text.size());
    };
    auto put_header = [&](std::string_view name, std::string_view value) {
        if (!value.empty()) {
            put(name);
            put(": ");
            put(value);
            put("\r\n");
        }
    };
    char content_length[24];
    const auto [content_length_end, content_length_error] = std::to_chars(
        content_length, content_length + sizeof(content_length), request.upstream_body.size());
    RW_ASSERT(content_length_error == std::errc());
    put("POST ");
    put(prefix);
    put(path);
    put(" HTTP/1.1\r\nHost: ");
    put(candidate.host_header);
    put(is_anthropic ? "\r\nx-api-key: " : "\r\nAuthorization: Bearer ");
    put(candidate.api_key);
    put("\r\nContent-Type: application/json\r\nContent-Length: ");
    put({content_length, static_cast<size_t>(content_length_end - content_length)});
    put("\r\n");
    put_header("Accept", accept.empty() ? std::string_view("application/json") : accept);
    put_header("User-Agent", user_agent);
    put_header("OpenAI-Beta", openai_beta);
    if (is_anthropic) {
        put_header("anthropic-version", request.anthropic_version);
        put_header("anthropic-beta", anthropic_beta);
    }
    put("\r\n");
    request.upstream_head = {head, length};
    return true;
}

void Gateway::attempt_start(ProxyRequest& request) {
    RW_ASSERT(request.upstream_slot == UINT32_MAX);
    RW_ASSERT(request.attempt_index < request.candidate_count);
    if (!attempt_build(request)) {
        shard_.respond_error(*request.conn, 503, "overloaded", "The gateway is out of memory.");
        request_finish(request, EndReason::local_error);
        return;
    }
    const Candidate& candidate = request.candidates[request.attempt_index];
    UpstreamConn* upstream = upstream_take_pooled(candidate.channel_id);
    const bool is_pooled = upstream != nullptr;
    if (upstream == nullptr) {
        upstream = upstream_open(request);
        if (upstream == nullptr) {
            // No slot or no socket: the upstream never saw the request, retrying is safe.
            metrics_.upstream_errors.add();
            if (request.attempt_index + 1 < request.candidate_count) {
                request.attempt_index += 1;
                attempt_start(request);
                return;
            }
            shard_.respond_error(*request.conn, 503, "overloaded",
                                 "The gateway has no free upstream connection.");
            request_finish(request, EndReason::local_error);
            return;
        }
    }
    upstream->request = &request;
    upstream->has_response_bytes = false;
    request.upstream_slot = upstream->slot;
    request.upstream_gen = upstream->gen;
    request.attempts_made += 1;
    request.parser.start();
    metrics_.upstream_requests.add();
    if (request.attempts_made > 1) {
        metrics_.upstream_retries.add();
    }
    upstream->iov[0] = {const_cast<char*>(request.upstream_head.data()),
                        request.upstream_head.size()};
    upstream->iov[1] = {const_cast<char*>(request.upstream_body.data()),
                        request.upstream_body.size()};
    upstream->send_remaining_bytes =
        static_cast<uint32_t>(request.upstream_head.size() + request.upstream_body.size());
    if (is_pooled) {
        metrics_.upstream_reused.add();
        upstream->state = UpstreamState::sending;
        upstream->deadline_ms = shard_.now_ms() + config_.upstream_first_byte_timeout_ms;
        if (upstream->is_tls) {
            tls_send_request(*upstream, request);  // Same session; recv already armed.
            return;
        }
        upstream_submit_send(*upstream);  // Its recv is already armed (idle watch).
    } else {
        metrics_.upstream_connects.add();
        upstream->state = UpstreamState::connecting;
        upstream->deadline_ms = shard_.now_ms() + config_.upstream_connect_timeout_ms;
        upstream_submit_connect(*upstream);
    }
}

// Pooled connections are kept per channel, most recently used first (warm in the
// upstream's and the kernel's caches).
UpstreamConn* Gateway::upstream_take_pooled(int64_t channel_id) {
    ChannelState& state = channel_state(channel_id);
    if (state.idle_head == UINT32_MAX) {
        return nullptr;
    }
    UpstreamConn& upstream = upstreams_[state.idle_head];
    RW_ASSERT(upstream.state == UpstreamState::idle);
    RW_ASSERT(upstream.channel_id == channel_id);
    state.idle_head = upstream.next_idle;
    state.idle_count -= 1;
    upstream.next_idle = UINT32_MAX;
    upstream.is_reused = true;
    return &upstream;
}

UpstreamConn* Gateway::upstream_open(ProxyRequest& request) {
    if (upstream_free_count_ == 0) {
        return nullptr;
    }
    const Candidate& candidate = request.candidates[request.attempt_index];
    const int fd = ::socket(candidate.address.any.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        RW_LOG_WARN("event=upstream_socket_failed error=\"%s\"", std::strerror(errno));
        return nullptr;
    }
    const int one = 1;
    // Small request heads and SSE reads: no Nagle delay on either side.
    [[maybe_unused]] const int rc = ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const uint32_t slot = upstream_free_[--upstream_free_count_];
    if (slot >= upstream_high_water_) {
        upstream_high_water_ = slot + 1;
    }
    UpstreamConn& upstream = upstreams_[slot];
    RW_ASSERT(upstream.state == UpstreamState::free);
    RW_ASSERT(upstream.inflight_sqes == 0);
    upstream.fd = fd;
    upstream.channel_id = candidate.channel_id;
    upstream.is_reused = false;
    upstream.is_recv_inflight = false;
    upstream.is_send_inflight = false;
    upstream.is_close_submitted = false;
    upstream.is_rearm_listed = false;
    upstream.next_idle = UINT32_MAX;
    upstream.request = nullptr;
    upstream.closing_for = nullptr;
    upstream.is_tls = candidate.is_tls;
    upstream.is_handshake_done = false;
    return &upstream;
}

void Gateway::upstream_submit_connect(UpstreamConn& upstream) {
    const Candidate& candidate = upstream.request->candidates[upstream.request->attempt_index];
    io_uring_sqe* sqe = shard_.sqe_get();
    // The address lives in the request's arena, which outlives the connect.
    io_uring_prep_connect(sqe, upstream.fd, &candidate.address.any, candidate.address_bytes);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_connect, upstream.gen, upstream.slot}));
    upstream.inflight_sqes += 1;
}

void Gateway::upstream_submit_send(UpstreamConn& upstream) {
    RW_ASSERT(!upstream.is_send_inflight);
    std::memset(&upstream.message, 0, sizeof(upstream.message));
    upstream.message.msg_iov = upstream.iov;
    upstream.message.msg_iovlen = upstream.iov[0].iov_len > 0 ? 2 : 1;
    if (upstream.iov[0].iov_len == 0) {
        upstream.message.msg_iov = &upstream.iov[1];
    }
    io_uring_sqe* sqe = shard_.sqe_get();
    io_uring_prep_sendmsg(sqe, upstream.fd, &upstream.message, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_send, upstream.gen, upstream.slot}));
    upstream.is_send_inflight = true;
    upstream.inflight_sqes += 1;
}

// `is_socket_empty`: nothing can be waiting to be read (a request just sent, an answer
// read to its last byte), so the kernel arms its poll at once instead of first trying a
// recv that can only fail (IORING_RECVSEND_POLL_FIRST).
void Gateway::upstream_submit_recv(UpstreamConn& upstream, bool is_socket_empty) {
    RW_ASSERT(!upstream.is_recv_inflight);
    io_uring_sqe* sqe = shard_.sqe_get();
    io_uring_prep_recv(sqe, upstream.fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    if (is_socket_empty) {
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    }
    sqe->buf_group = shard_.buf_ring().group_id();
    io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_recv, upstream.gen, upstream.slot}));
    upstream.is_recv_inflight = true;
    upstream.inflight_sqes += 1;
}

// Closes an upstream connection: its pending operations are cancelled and the fd closed
// once none is left. A request it served is detached at once but kept alive (through
// upstreams_closing) until no SQE of this connection can still read its arena.
void Gateway::upstream_close(UpstreamConn& upstream) {
    if (upstream.state == UpstreamState::closing || upstream.state == UpstreamState::free) {
        return;
    }
    if (upstream.state == UpstreamState::idle) {
        // Unlink from the channel's pool list.
        ChannelState& state = channel_state(upstream.channel_id);
        uint32_t* link = &state.idle_head;
        while (*link != UINT32_MAX && *link != upstream.slot) {
            link = &upstreams_[*link].next_idle;
        }
        if (*link == upstream.slot) {
            *link = upstream.next_idle;
            state.idle_count -= 1;
        }
        upstream.next_idle = UINT32_MAX;
    }
    if (upstream.request != nullptr) {
        ProxyRequest& request = *upstream.request;
        RW_ASSERT(request.upstream_slot == upstream.slot);
        request.upstream_slot = UINT32_MAX;
        if (upstream.inflight_sqes > 0) {
            request.upstreams_closing += 1;
            upstream.closing_for = &request;
        }
        upstream.request = nullptr;
    }
    upstream.state = UpstreamState::closing;
    upstream.deadline_ms = 0;
    if (upstream.inflight_sqes > 0) {
        io_uring_sqe* sqe = shard_.sqe_get();
        io_uring_prep_cancel_fd(sqe, upstream.fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_cancel, upstream.gen, upstream.slot}));
        upstream.inflight_sqes += 1;
    }
    upstream_maybe_finish(upstream);
}

void Gateway::upstream_maybe_finish(UpstreamConn& upstream) {
    if (upstream.state != UpstreamState::closing || upstream.inflight_sqes > 0) {
        return;
    }
    if (upstream.closing_for != nullptr) {
        ProxyRequest& request = *upstream.closing_for;
        upstream.closing_for = nullptr;
        RW_ASSERT(request.upstreams_closing > 0);
        request.upstreams_closing -= 1;
        request_maybe_release(request);
    }
    if (!upstream.is_close_submitted) {
        io_uring_sqe* sqe = shard_.sqe_get();
        io_uring_prep_close(sqe, upstream.fd);
        io_uring_sqe_set_data64(sqe, tag_pack({Op::handler_close, upstream.gen, upstream.slot}));
        upstream.is_close_submitted = true;
        upstream.inflight_sqes += 1;
    }
}

// A response framed completely (length or chunked), HTTP/1.1, no Connection: close and
// no extra bytes: the connection may serve another request (RULES §2). Its recv stays
// armed while idle so an upstream that closes or talks out of turn is noticed at once.
void Gateway::upstream_release_to_pool(UpstreamConn& upstream) {
    RW_ASSERT(upstream.request != nullptr);
    if (upstream.is_send_inflight || shard_.is_draining() || config_.upstream_keepalive_ms == 0) {
        // A send still in flight means the upstream answered before reading everything.
        upstream_close(upstream);  // Detaches the request, kept alive while SQEs remain.
        return;
    }
    upstream.request->upstream_slot = UINT32_MAX;
    upstream.request = nullptr;
    ChannelState& state = channel_state(upstream.channel_id);
    upstream.state = UpstreamState::idle;
    upstream.idle_since_ms = shard_.now_ms();
    upstream.deadline_ms = shard_.now_ms() + config_.upstream_keepalive_ms;
    upstream.next_idle = state.idle_head;
    state.idle_head = upstream.slot;
    state.idle_count += 1;
    if (!upstream.is_recv_inflight) {
        upstream_submit_recv(upstream, true);  // The answer was read to its last byte.
    }
}

void Gateway::on_cqe_thunk(void* context, const io_uring_cqe& cqe) {
    static_cast<Gateway*>(context)->on_cqe(cqe);
}

void Gateway::on_cqe(const io_uring_cqe& cqe) {
    const OpTag tag = tag_unpack(cqe.user_data);
    RW_ASSERT(tag.slot < config_.upstream_connections_max);
    UpstreamConn& upstream = upstreams_[tag.slot];
    RW_ASSERT((upstream.gen & 0xFFFFFFu) == tag.gen);
    RW_ASSERT(upstream.state != UpstreamState::free);
    RW_ASSERT(upstream.inflight_sqes > 0);
    upstream.inflight_sqes -= 1;
    switch (tag.op) {
        case Op::handler_connect: on_upstream_connect(upstream, cqe.res); break;
        case Op::handler_send: on_upstream_send(upstream, cqe.res); break;
        case Op::handler_recv: on_upstream_recv(upstream, cqe); break;
        case Op::handler_cancel: break;
        case Op::handler_close:
            RW_ASSERT(upstream.inflight_sqes == 0);
            upstream.state = UpstreamState::free;
            upstream.tls.reset();
            upstream.fd = -1;
            upstream.gen = (upstream.gen + 1) & 0xFFFFFFu;
            upstream_free_[upstream_free_count_++] = upstream.slot;
            return;
        default: RW_UNREACHABLE();
    }
    upstream_maybe_finish(upstream);
}

void Gateway::on_upstream_connect(UpstreamConn& upstream, int result) {
    if (upstream.state == UpstreamState::closing) {
        return;
    }
    RW_ASSERT(upstream.request != nullptr);
    if (result < 0) {
        attempt_failed(*upstream.request, upstream, true, EndReason::upstream_error, 502,
                       "upstream_unreachable", "The upstream could not be reached.");
        return;
    }
    if (upstream.is_tls) {
        // TLS: the handshake runs under the connect deadline (it is part of reaching the
        // upstream); the request goes out once it is done.
        ProxyRequest& request = *upstream.request;
        const Candidate& candidate = request.candidates[request.attempt_index];
        std::string error;
        if (candidate.tls_context == nullptr ||
            !upstream.tls.start(*candidate.tls_context, candidate.tls_host, error)) {
            tls_failed(upstream, request, error, true);
            return;
        }
        const HandshakeResult handshake = upstream.tls.handshake();
        if (handshake.status == HandshakeStatus::failed) {
            tls_failed(upstream, request, handshake.reason, true);
            return;
        }
        if (!tls_flush(upstream, request)) {
            tls_failed(upstream, request, "out of memory for ciphertext", true);
            return;
        }
        upstream_submit_recv(upstream);
        return;
    }
    upstream.state = UpstreamState::sending;
    upstream.deadline_ms = shard_.now_ms() + config_.upstream_first_byte_timeout_ms;
    upstream_submit_send(upstream);
    // Armed now: the answer may come before the send CQE.
    upstream_submit_recv(upstream, true);
}

// Moves the ciphertext OpenSSL produced into the request's arena and sends it. One send
// at a time per connection: while one is in flight the ciphertext waits in OpenSSL's
// BIO and on_upstream_send flushes it when that send completes. False: out of memory.
bool Gateway::tls_flush(UpstreamConn& upstream, ProxyRequest& request) {
    const uint32_t pending = upstream.tls.pending_ciphertext();
    if (pending == 0 || upstream.is_send_inflight) {
        return true;
    }
    auto* out = static_cast<char*>(request.conn->arena.alloc(pending, 1));
    if (out == nullptr) {
        return false;
    }
    const uint32_t taken = upstream.tls.take_ciphertext(reinterpret_cast<std::byte*>(out), pending);
    upstream.iov[0] = {out, taken};
    upstream.iov[1] = {nullptr, 0};
    upstream.send_remaining_bytes = taken;
    upstream_submit_send(upstream);
    return true;
}

// A TLS failure before the upstream answered: OpenSSL's reason goes to the operator log
// (it names certificates and hosts, never secrets) and the client sees a generic error.
// Failures during the handshake are retry-safe: the request has not left the gateway.
void Gateway::tls_failed(UpstreamConn& upstream, ProxyRequest& request, std::string_view reason,
                         bool is_retry_safe) {
    RW_LOG_WARN("event=upstream_tls_failed channel_id=%ld reason=\"%.*s\"",
                static_cast<long>(upstream.channel_id), int(reason.size()), reason.data());
    attempt_failed(request, upstream, is_retry_safe, EndReason::upstream_error, 502,
                   "upstream_tls_failed", "The TLS connection to the upstream failed.");
}

void Gateway::tls_send_request(UpstreamConn& upstream, ProxyRequest& request) {
    const int head = upstream.tls.write_plaintext(
        request.upstream_head.data(), static_cast<uint32_t>(request.upstream_head.size()));
    const int body = upstream.tls.write_plaintext(
        request.upstream_body.data(), static_cast<uint32_t>(request.upstream_body.size()));
    upstream.state = UpstreamState::sending;
    if (head < 0 || body < 0 || !tls_flush(upstream, request)) {
        tls_failed(upstream, request, upstream.tls.last_error(), !upstream.has_response_bytes);
    }
}

// Ciphertext arrived on a TLS upstream: drive the handshake, or decrypt into the very
// buffer the ciphertext came in (its bytes were copied into OpenSSL's BIO, so the
// buffer is free): the decrypt is the relay's only copy. Plaintext beyond one buffer
// (records straddling reads) goes to arena memory, relayed without a lent buffer.
void Gateway::tls_on_recv(UpstreamConn& upstream, uint16_t bid, uint32_t length_bytes) {
    std::byte* data = shard_.buf_ring().data(bid);
    upstream.tls.feed_ciphertext(data, length_bytes);
    if (upstream.state == UpstreamState::idle) {
        // Late TLS 1.3 tickets are fine; application bytes on an idle connection are not.
        const ReadResult result = upstream.tls.read_plaintext(data, shard_.buf_ring().buf_bytes());
        shard_.buf_ring().give_back(bid);
        if (result.status == ReadStatus::want_more) {
            upstream_submit_recv(upstream);
        } else {
            upstream_close(upstream);
        }
        return;
    }
    ProxyRequest& request = *upstream.request;
    if (!upstream.is_handshake_done) {
        shard_.buf_ring().give_back(bid);
        const HandshakeResult result = upstream.tls.handshake();
        if (result.status == HandshakeStatus::failed) {
            tls_failed(upstream, request, result.reason, true);
            return;
        }
        if (!tls_flush(upstream, request)) {
            tls_failed(upstream, request, "out of memory for ciphertext", true);
            return;
        }
        if (result.status == HandshakeStatus::done) {
            upstream.is_handshake_done = true;
            upstream.deadline_ms = shard_.now_ms() + config_.upstream_first_byte_timeout_ms;
            tls_send_request(upstream, request);
            if (upstream.request != &request) {
                return;  // Failed and retried elsewhere.
            }
        }
        upstream_submit_recv(upstream);
        return;
    }
    const uint32_t capacity = shard_.buf_ring().buf_bytes();
    uint32_t used = 0;
    ReadResult result{ReadStatus::want_more, 0, {}};
    while (used < capacity) {
        result = upstream.tls.read_plaintext(data + used, capacity - used);
        if (result.status != ReadStatus::bytes) {
            break;
        }
        used += result.plaintext_bytes;
    }
    if (used == 0) {
        shard_.buf_ring().give_back(bid);
    } else {
        on_upstream_bytes(upstream, request, reinterpret_cast<char*>(data), used, bid);
        if (upstream.request != &request || request.is_finished) {
            return;
        }
    }
    if (used == capacity) {
        tls_drain(upstream, request);  // The buffer filled: OpenSSL may hold more.
        return;
    }
    tls_settle(upstream, request, result);
}

// Plaintext OpenSSL decrypted beyond one recv buffer (records straddling reads) goes to
// arena memory and is relayed without a lent buffer, one piece while the client's send
// queue has room; a full queue pauses here and on_client_writable resumes the drain.
void Gateway::tls_drain(UpstreamConn& upstream, ProxyRequest& request) {
    const uint32_t capacity = shard_.buf_ring().buf_bytes();
    for (;;) {
        if (request.is_relaying_stream && shard_.send_segments_free(*request.conn) < 3) {
            request.is_recv_wanted = true;
            return;
        }
        auto* piece = static_cast<char*>(request.conn->arena.alloc(capacity, 16));
        if (piece == nullptr) {
            upstream_close(upstream);
            if (request.is_relaying_stream) {
                stream_abort(request, EndReason::local_error);
            } else {
                shard_.respond_error(*request.conn, 503, "overloaded",
                                     "The gateway is out of memory.");
                request_finish(request, EndReason::local_error);
            }
            return;
        }
        const ReadResult result =
            upstream.tls.read_plaintext(reinterpret_cast<std::byte*>(piece), capacity);
        if (result.status != ReadStatus::bytes) {
            tls_settle(upstream, request, result);
            return;
        }
        on_upstream_bytes(upstream, request, piece, result.plaintext_bytes, no_bid);
        if (upstream.request != &request || request.is_finished) {
            return;
        }
    }
}

// What a read that produced no more plaintext means: wait for ciphertext, or the end.
void Gateway::tls_settle(UpstreamConn& upstream, ProxyRequest& request, const ReadResult& result) {
    switch (result.status) {
        case ReadStatus::bytes: RW_UNREACHABLE();
        case ReadStatus::want_more:
            if (!upstream.is_recv_inflight && !request.is_recv_wanted) {
                upstream_submit_recv(upstream);
            }
            return;
        case ReadStatus::closed_cleanly:
        case ReadStatus::truncated: on_upstream_eof(upstream, request, 0); return;
        case ReadStatus::failed:
            RW_LOG_WARN("event=upstream_tls_failed channel_id=%ld reason=\"%.*s\"",
                        static_cast<long>(upstream.channel_id), int(result.reason.size()),
                        result.reason.data());
            on_upstream_eof(upstream, request, EPROTO);
            return;
    }
}

void Gateway::on_upstream_send(UpstreamConn& upstream, int result) {
    upstream.is_send_inflight = false;
    if (upstream.state == UpstreamState::closing || upstream.request == nullptr) {
        return;
    }
    ProxyRequest& request = *upstream.request;
    if (result <= 0) {
        // The request did not get out whole, so the upstream cannot have acted on it:
        // safe to retry (the keep-alive race on a pooled connection lands here too).
        attempt_failed(request, upstream, !upstream.has_response_bytes, EndReason::upstream_reset,
                       502, "upstream_error", "The upstream connection failed while sending.");
        return;
    }
    auto sent = static_cast<uint32_t>(result);
    RW_ASSERT(sent <= upstream.send_remaining_bytes);
    upstream.send_remaining_bytes -= sent;
    if (upstream.send_remaining_bytes == 0) {
        if (upstream.is_tls && upstream.tls.pending_ciphertext() > 0) {
            if (!tls_flush(upstream, request)) {  // Produced while this send was out.
                attempt_failed(request, upstream, !upstream.has_response_bytes,
                               EndReason::local_error, 503, "overloaded",
                               "The gateway is out of memory.");
            }
            return;
        }
        if (upstream.state == UpstreamState::sending) {
            upstream.state = UpstreamState::receiving;
        }
        return;
    }
    for (iovec& piece : upstream.iov) {  // Skip what went out; resend the rest.
        const size_t take = sent < piece.iov_len ? sent : piece.iov_len;
        piece.iov_base = static_cast<char*>(piece.iov_base) + take;
        piece.iov_len -= take;
        sent -= static_cast<uint32_t>(take);
    }
    upstream_submit_send(upstream);
}

void Gateway::on_upstream_recv(UpstreamConn& upstream, const io_uring_cqe& cqe) {
    upstream.is_recv_inflight = false;
    uint16_t bid = no_bid;
    if (cqe.res > 0) {
        RW_ASSERT((cqe.flags & IORING_CQE_F_BUFFER) != 0);
        bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
        shard_.buf_ring().take(bid, static_cast<uint32_t>(cqe.res));
    }
    if (upstream.state == UpstreamState::closing) {
        if (bid != no_bid) {
            shard_.buf_ring().give_back(bid);
        }
        return;
    }
    if (upstream.state == UpstreamState::idle) {
        if (bid != no_bid && upstream.is_tls) {
            tls_on_recv(upstream, bid, static_cast<uint32_t>(cqe.res));
            return;
        }
        // Bytes or EOF on an idle pooled connection: it cannot serve another request.
        if (bid != no_bid) {
            shard_.buf_ring().give_back(bid);
        }
        if (cqe.res == -ENOBUFS) {
            upstream_submit_recv(upstream);
            return;
        }
        upstream_close(upstream);
        return;
    }
    RW_ASSERT(upstream.request != nullptr);
    ProxyRequest& request = *upstream.request;
    if (cqe.res == -ENOBUFS) {
        if (!upstream.is_rearm_listed) {  // Back-pressure: re-armed when buffers return.
            upstream.is_rearm_listed = true;
            upstream_rearm_[upstream_rearm_count_++] = upstream.slot;
        }
        return;
    }
    if (cqe.res <= 0) {
        if (upstream.is_tls && upstream.is_handshake_done && cqe.res == 0) {
            upstream.tls.feed_end_of_stream();  // close_notify or truncation decides.
        }
        on_upstream_eof(upstream, request, -cqe.res);
        return;
    }
    if (upstream.is_tls) {
        tls_on_recv(upstream, bid, static_cast<uint32_t>(cqe.res));
        return;
    }
    on_upstream_bytes(upstream, request, reinterpret_cast<char*>(shard_.buf_ring().data(bid)),
                      static_cast<uint32_t>(cqe.res), bid);
}

// Parses one recv buffer of the response. Body spans are either accumulated (whole
// responses) or compacted in place into one run at the start of the first span and lent
// to the client send as a single chunk: zero-copy when the buffer holds one upstream
// chunk, an in-buffer memmove (no new memory) when it holds several.
void Gateway::on_upstream_bytes(UpstreamConn& upstream, ProxyRequest& request, char* base,
                                uint32_t length_bytes, uint16_t bid) {
    upstream.has_response_bytes = true;
    upstream.deadline_ms = shard_.now_ms() + config_.upstream_idle_timeout_ms;
    auto give_back = [&] {
        if (bid != no_bid) {
            shard_.buf_ring().give_back(bid);
        }
    };
    char* run_start = nullptr;
    char* run_end = nullptr;
    uint32_t offset = 0;
    for (;;) {
        const UpstreamFeed feed = request.parser.feed({base + offset, length_bytes - offset});
        offset += feed.consumed_bytes;
        for (uint32_t i = 0; i < request.parser.span_count(); i++) {
            const std::string_view span = request.parser.spans()[i];
            if (request.is_relaying_stream) {
                if (run_start == nullptr) {
                    run_start = const_cast<char*>(span.data());
                    run_end = run_start + span.size();
                } else {
                    std::memmove(run_end, span.data(), span.size());
                    run_end += span.size();
                }
            } else if (!accumulate(request, span)) {
                request.parser.spans_clear();
                give_back();
                attempt_failed(request, upstream, false, EndReason::upstream_protocol_error, 502,
                               "upstream_response_too_large",
                               "The upstream response exceeds RINGWAY_MAX_RESPONSE_BYTES.");
                return;
            }
        }
        request.parser.spans_clear();
        if (feed.event == UpstreamEvent::head_complete) {
            on_upstream_head(upstream, request);
            if (upstream.request != &request || request.is_finished) {
                give_back();  // Retried, refused or finished.
                return;
            }
            continue;
        }
        if (feed.event == UpstreamEvent::spans_full) {
            continue;
        }
        if (run_start != nullptr) {
            relay_piece(request, run_start, static_cast<uint32_t>(run_end - run_start), bid);
        } else {
            give_back();
        }
        if (feed.event == UpstreamEvent::message_complete) {
            on_upstream_complete(upstream, request, offset < length_bytes);
            return;
        }
        if (feed.event == UpstreamEvent::error) {
            RW_LOG_WARN("event=upstream_protocol_error channel_id=%ld reason=\"%s\"",
                        static_cast<long>(upstream.channel_id), request.parser.error_reason());
            if (request.is_relaying_stream) {
                upstream_close(upstream);
                stream_abort(request, EndReason::upstream_protocol_error);
            } else {
                attempt_failed(request, upstream, false, EndReason::upstream_protocol_error, 502,
                               "upstream_protocol_error",
                               "The upstream sent a malformed response.");
            }
            return;
        }
        break;  // need_more: the buffer is used up.
    }
    // Back-pressure: read the next piece only when the client can take it.
    if (request.is_relaying_stream && shard_.send_segments_free(*request.conn) < 3) {
        request.is_recv_wanted = true;
        return;
    }
    if (!upstream.is_recv_inflight) {
        upstream_submit_recv(upstream);
    }
}

bool Gateway::accumulate(ProxyRequest& request, std::string_view span) {
    const uint64_t needed = request.response_bytes + span.size();
    if (needed > config_.max_response_bytes) {
        return false;
    }
    if (needed + json_padding_bytes > request.response_capacity) {
        uint64_t capacity =
            request.response_capacity == 0 ? 16 * 1024 : request.response_capacity * 2;
        while (capacity < needed + json_padding_bytes) {
            capacity *= 2;
        }
        auto* grown = static_cast<char*>(request.conn->arena.alloc(capacity, 16));
        if (grown == nullptr) {
            return false;
        }
        if (request.response_bytes > 0) {
            std::memcpy(grown, request.response_body, request.response_bytes);
        }
        request.response_body = grown;
        request.response_capacity = capacity;
    }
    std::memcpy(request.response_body + request.response_bytes, span.data(), span.size());
    request.response_bytes += span.size();
    std::memset(request.response_body + request.response_bytes, 0, json_padding_bytes);
    return true;
}

void Gateway::relay_piece(ProxyRequest& request, char* start, uint32_t length_bytes, uint16_t bid) {
    request.scanner.feed({start, length_bytes});
    request.stream_payload_bytes += length_bytes;
    if (request.is_client_gone || !shard_.stream_piece(*request.conn, {start, length_bytes}, bid)) {
        // Cannot happen while recv is armed only with room (checked before each recv);
        // the buffer is not lost either way.
        if (bid != no_bid) {
            shard_.buf_ring().give_back(bid);
        }
    }
}

// The head decides the attempt: a 429 or 5xx is retried on the next channel while one is
// left (the upstream refused it; RULES §6); an SSE answer starts the chunked relay;
// everything else is read whole and answered with its status.
void Gateway::on_upstream_head(UpstreamConn& upstream, ProxyRequest& request) {
    const UpstreamHead& head = request.parser.head();
    const bool is_refusal = head.status == 429 || head.status >= 500;
    if (is_refusal && request.attempt_index + 1 < request.candidate_count) {
        attempt_failed(request, upstream, true, EndReason::upstream_error, head.status,
                       "upstream_error", "The upstream refused the request.");
        return;
    }
    request.first_byte_us = proxy_clock_us();
    if (head.status >= 200 && head.status < 300 && head.is_event_stream) {
        const std::string_view content_type = head.content_type;
        if (!shard_.stream_begin(*request.conn, head.status, content_type,
                                 "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n")) {
            upstream_close(upstream);
            shard_.respond_error(*request.conn, 503, "overloaded", "The gateway is out of memory.");
            request_finish(request, EndReason::local_error);
            return;
        }
        request.is_relaying_stream = true;
        request.status_sent = head.status;
        request.scanner.start(request.usage_format, request.conn->arena);
        return;
    }
    if (head.has_content_length && head.content_length > config_.max_response_bytes) {
        attempt_failed(request, upstream, false, EndReason::upstream_protocol_error, 502,
                       "upstream_response_too_large",
                       "The upstream response exceeds RINGWAY_MAX_RESPONSE_BYTES.");
        return;
    }
    if (head.has_content_length && head.content_length > 0) {
        // The whole body's size is known: one buffer of exactly that size (plus simdjson's
        // padding), instead of growing by doubling and copying what arrived so far.
        const uint64_t capacity = head.content_length + json_padding_bytes;
        auto* body = static_cast<char*>(request.conn->arena.alloc(capacity, 16));
        if (body != nullptr) {  // Otherwise accumulate() grows and reports the failure.
            request.response_body = body;
            request.response_capacity = capacity;
        }
    }
}

void Gateway::on_upstream_complete(UpstreamConn& upstream, ProxyRequest& request,
                                   bool has_extra_bytes) {
    const UpstreamHead& head = request.parser.head();
    if (head.status == 429 || head.status >= 500) {
        channel_failed(upstream.channel_id);  // Relayed (last candidate), still a failure.
    } else {
        channel_succeeded(upstream.channel_id);
    }
    const bool is_reusable = request.parser.is_reusable() && !has_extra_bytes;
    if (is_reusable) {
        upstream_release_to_pool(upstream);
    } else {
        upstream_close(upstream);
    }
    if (request.is_relaying_stream) {
        request.usage = request.scanner.usage();
        shard_.stream_end(*request.conn, true);
        request_finish(request, EndReason::complete);
        return;
    }
    Conn& conn = *request.conn;
    if (head.status == 401 || head.status == 403) {
        // The upstream refused the channel's own key. Its body names that key ("Incorrect
        // API key provided: sk-…"), so the client gets a generic error instead.
        RW_LOG_ERROR("event=upstream_auth_failed channel_id=%ld status=%u",
                     static_cast<long>(upstream.channel_id), head.status);
        shard_.respond_error(conn, 502, "upstream_auth_failed",
                             "The upstream rejected the gateway's credentials for this channel.");
        request.status_sent = 502;
        request_finish(request, EndReason::upstream_error);
        return;
    }
    if (head.status >= 200 && head.status < 300 && request.response_bytes > 0) {
        UsageCounts counts{};
        if (usage_from_json({request.response_body, request.response_bytes}, request.usage_format,
                            counts)) {
            request.usage = counts;
        }
    }
    const std::string_view content_type =
        head.content_type[0] != '\0' ? std::string_view(head.content_type) : "application/json";
    const char* retry_after = head.status == 429 || head.status == 503 ? "Retry-After: 1\r\n" : "";
    request.status_sent = head.status;
    shard_.respond(conn, head.status, content_type, {request.response_body, request.response_bytes},
                   retry_after);
    request_finish(request, head.status < 400 ? EndReason::complete : EndReason::upstream_error);
}

void Gateway::on_upstream_eof(UpstreamConn& upstream, ProxyRequest& request, int error) {
    if (!upstream.has_response_bytes) {
        // Nothing came back. Retried only when the request cannot have reached the
        // upstream whole: a reused connection whose send had not completed (the keep-alive
        // race; RULES §6). Once the request was sent, the upstream may have executed it,
        // and a retry could bill twice at the provider. The idle watch on pooled
        // connections drops most closed ones before they are reused.
        const bool is_safe =
            upstream.is_reused && (upstream.is_send_inflight || upstream.send_remaining_bytes > 0);
        attempt_failed(request, upstream, is_safe, EndReason::upstream_reset, 502, "upstream_error",
                       "The upstream closed the connection without answering.");
        return;
    }
    if (request.parser.finish_on_eof()) {
        on_upstream_complete(upstream, request, false);  // A close-delimited body.
        return;
    }
    const EndReason reason =
        error == 0 || error == ECONNRESET ? EndReason::upstream_reset : EndReason::upstream_error;
    upstream_close(upstream);
    if (request.is_relaying_stream) {
        stream_abort(request, reason);
        return;
    }
    shard_.respond_error(*request.conn, 502, "upstream_error", "The upstream connection was lost.");
    request.status_sent = 502;
    request_finish(request, reason);
}

void Gateway::attempt_failed(ProxyRequest& request, UpstreamConn& upstream, bool is_retry_safe,
                             EndReason reason, uint16_t status, std::string_view code,
                             std::string_view message) {
    metrics_.upstream_errors.add();
    channel_failed(upstream.channel_id);
    upstream_close(upstream);
    if (request.is_relaying_stream) {
        stream_abort(request, reason);  // Bytes already reached the client (rare: the
        return;                         // upstream answered before our send completed).
    }
    const bool can_retry = is_retry_safe && !request.is_relaying_stream &&
                           !request.is_client_gone &&
                           request.attempt_index + 1 < request.candidate_count;
    if (can_retry) {
        request.attempt_index += 1;
        attempt_start(request);
        return;
    }
    if (!request.is_client_gone) {
        shard_.respond_error(*request.conn, status >= 400 ? status : 502, code, message);
        request.status_sent = status;
    }
    request_finish(request, reason);
}

void Gateway::stream_abort(ProxyRequest& request, EndReason reason) {
    metrics_.streams_aborted.add();
    if (!request.is_client_gone) {
        // RULES §7: an SSE error event the SDKs raise, then no terminating chunk.
        static constexpr std::string_view error_event =
            "data: {\"error\":{\"message\":\"upstream connection lost\",\"type\":"
            "\"upstream_error\"}}\n\n";
        [[maybe_unused]] const bool is_queued =
            shard_.stream_piece(*request.conn, error_event, no_bid);
        shard_.stream_end(*request.conn, false);
    }
    request.usage = request.scanner.usage();
    request_finish(request, reason);
}

void Gateway::on_client_writable_thunk(void* context, Conn& conn) {
    static_cast<Gateway*>(context)->on_client_writable(conn);
}

void Gateway::on_client_writable(Conn& conn) {
    auto* request = static_cast<ProxyRequest*>(conn.handler_request);
    if (request == nullptr || !request->is_recv_wanted || shard_.send_segments_free(conn) < 3) {
        return;
    }
    request->is_recv_wanted = false;
    if (request->upstream_slot != UINT32_MAX) {
        UpstreamConn& upstream = upstreams_[request->upstream_slot];
        if (upstream.is_tls && upstream.is_handshake_done) {
            tls_drain(upstream, *request);  // Plaintext may wait in OpenSSL, not the socket.
        } else if (!upstream.is_recv_inflight) {
            upstream_submit_recv(upstream);
        }
    }
}

void Gateway::on_turn_end_thunk(void* context) {
    static_cast<Gateway*>(context)->on_turn_end();
}

void Gateway::on_turn_end() {
    if (upstream_rearm_count_ > 0) {
        const uint32_t count = upstream_rearm_count_;
        upstream_rearm_count_ = 0;
        for (uint32_t i = 0; i < count; i++) {
            UpstreamConn& upstream = upstreams_[upstream_rearm_[i]];
            upstream.is_rearm_listed = false;
            if (upstream.state != UpstreamState::closing && upstream.state != UpstreamState::free &&
                !upstream.is_recv_inflight) {
                upstream_submit_recv(upstream);
            }
        }
    }
    if (has_records_pushed_) {
        has_records_pushed_ = false;
        shared_.writer->notify(shard_.index());  // At most once per loop turn.
    }
    if (shard_.now_ms() >= next_sweep_ms_) {
        next_sweep_ms_ = shard_.now_ms() + timer_sweep_ms;
        sweep();
    }
}

// Upstream deadlines, checked like the client ones: a sweep over used slots.
void Gateway::sweep() {
    const uint64_t now = shard_.now_ms();
    for (uint32_t i = 0; i < upstream_high_water_; i++) {
        UpstreamConn& upstream = upstreams_[i];
        if (upstream.deadline_ms == 0 || now < upstream.deadline_ms ||
            upstream.state == UpstreamState::free || upstream.state == UpstreamState::closing) {
            continue;
        }
        metrics_.upstream_timeouts.add();
        if (upstream.state == UpstreamState::idle || upstream.request == nullptr) {
            upstream_close(upstream);
            continue;
        }
        ProxyRequest& request = *upstream.request;
        if (upstream.state == UpstreamState::connecting) {
            attempt_failed(request, upstream, true, EndReason::upstream_timeout, 504,
                           "upstream_timeout", "Connecting to the upstream timed out.");
        } else if (request.is_relaying_stream) {
            upstream_close(upstream);
            stream_abort(request, EndReason::upstream_timeout);
        } else {
            // Sent but unanswered: the upstream may be working on it, so no retry.
            attempt_failed(request, upstream, false, EndReason::upstream_timeout, 504,
                           "upstream_timeout", "The upstream did not answer in time.");
        }
    }
}

}  // namespace rw
