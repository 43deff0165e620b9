// proxy/upstream_tls.cc — the TLS glue between the upstream pool, OpenSSL and the relay
// (see upstream_tls.h). A TLS failure's reason (OpenSSL's: certificates and hosts, never
// secrets) goes to the operator log; the client sees a generic error. Failures during the
// handshake are retry-safe: the request has not left the gateway. Shard thread only.
#include "proxy/upstream_tls.h"

#include <cerrno>
#include <string>

#include "core/log.h"
#include "proxy/attempt.h"
#include "proxy/gateway.h"
#include "proxy/relay.h"
#include "proxy/request.h"

namespace rw {
namespace {

void tls_failed(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request,
                std::string_view reason, Fault fault) {
    RW_LOG_WARN("event=upstream_tls_failed channel_id=%ld reason=\"%.*s\"",
                static_cast<long>(upstream.channel_id), int(reason.size()), reason.data());
    attempt_failed(gateway, request, upstream, fault);
}

// Moves the ciphertext OpenSSL produced into the request's arena and sends it. One send
// at a time per connection: while one is in flight the ciphertext waits in OpenSSL's BIO
// and tls_on_sent flushes it when that send completes. False: out of memory.
bool tls_flush(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    const uint32_t pending = upstream.tls.pending_ciphertext();
    if (pending == 0 || upstream.is_send_inflight) {
        return true;
    }
    auto* out = static_cast<char*>(client_arena(*request.conn).alloc(pending, 1));
    if (out == nullptr) {
        return false;
    }
    const uint32_t taken = upstream.tls.take_ciphertext(reinterpret_cast<std::byte*>(out), pending);
    upstream.iov[0] = {out, taken};
    upstream.iov[1] = {nullptr, 0};
    upstream.send_remaining_bytes = taken;
    gateway.pool.submit_send(upstream);
    return true;
}

// Late TLS 1.3 tickets on an idle pooled connection are fine; application bytes or a
// close are not.
void tls_on_idle_recv(Gateway& gateway, UpstreamConn& upstream, uint16_t bid) {
    BufRing& buffers = gateway.shard.buf_ring();
    const ReadResult result = upstream.tls.read_plaintext(buffers.data(bid), buffers.buf_bytes());
    buffers.give_back(bid);
    if (result.status == ReadStatus::want_more) {
        gateway.pool.submit_recv(upstream);
    } else {
        gateway.pool.close(upstream);
    }
}

void tls_on_handshake_recv(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    const HandshakeResult result = upstream.tls.handshake();
    if (result.status == HandshakeStatus::failed) {
        tls_failed(gateway, upstream, request, result.reason, Fault::upstream_tls_handshake_failed);
        return;
    }
    if (!tls_flush(gateway, upstream, request)) {
        tls_failed(gateway, upstream, request, "out of memory for ciphertext",
                   Fault::upstream_tls_handshake_failed);
        return;
    }
    if (result.status == HandshakeStatus::done) {
        upstream.is_handshake_done = true;
        upstream.state = UpstreamState::sending;
        upstream.deadline_ms =
            gateway.shard.now_ms() + gateway.config.upstream_first_byte_timeout_ms;
        if (!tls_send_request(gateway, upstream, request)) {
            return;  // Failed and closed.
        }
    }
    gateway.pool.submit_recv(upstream);
}

// What a read that produced no more plaintext means: wait for ciphertext, or the end.
void tls_settle(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request,
                const ReadResult& result) {
    switch (result.status) {
        case ReadStatus::bytes: RW_UNREACHABLE();
        case ReadStatus::want_more:
            if (!upstream.is_recv_inflight && !request.is_recv_wanted) {
                gateway.pool.submit_recv(upstream);
            }
            return;
        case ReadStatus::closed_cleanly:
        case ReadStatus::truncated: relay_on_eof(gateway, upstream, request, 0); return;
        case ReadStatus::failed:
            RW_LOG_WARN("event=upstream_tls_failed channel_id=%ld reason=\"%.*s\"",
                        static_cast<long>(upstream.channel_id), int(result.reason.size()),
                        result.reason.data());
            relay_on_eof(gateway, upstream, request, EPROTO);
            return;
    }
}

}  // namespace

void tls_handshake_start(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    const Candidate& candidate = request.candidates[request.attempt_index];
    std::string error;
    if (candidate.tls_context == nullptr ||
        !upstream.tls.start(*candidate.tls_context, candidate.tls_host, error)) {
        tls_failed(gateway, upstream, request, error, Fault::upstream_tls_handshake_failed);
        return;
    }
    const HandshakeResult handshake = upstream.tls.handshake();
    if (handshake.status == HandshakeStatus::failed) {
        tls_failed(gateway, upstream, request, handshake.reason,
                   Fault::upstream_tls_handshake_failed);
        return;
    }
    if (!tls_flush(gateway, upstream, request)) {
        tls_failed(gateway, upstream, request, "out of memory for ciphertext",
                   Fault::upstream_tls_handshake_failed);
        return;
    }
    gateway.pool.submit_recv(upstream);
}

bool tls_send_request(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    const int head = upstream.tls.write_plaintext(
        request.upstream_head.data(), static_cast<uint32_t>(request.upstream_head.size()));
    const int body = upstream.tls.write_plaintext(
        request.upstream_body.data(), static_cast<uint32_t>(request.upstream_body.size()));
    upstream.state = UpstreamState::sending;
    if (head < 0 || body < 0 || !tls_flush(gateway, upstream, request)) {
        tls_failed(gateway, upstream, request, upstream.tls.last_error(),
                   upstream.has_response_bytes ? Fault::upstream_tls_failed
                                               : Fault::upstream_tls_handshake_failed);
        return false;
    }
    return true;
}

void tls_on_sent(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    if (upstream.tls.pending_ciphertext() > 0) {
        if (!tls_flush(gateway, upstream, request)) {
            request_finish(gateway, request, Fault::local_out_of_memory);
        }
        return;
    }
    if (upstream.state == UpstreamState::sending) {
        upstream.state = UpstreamState::receiving;
    }
}

void tls_on_recv(Gateway& gateway, UpstreamConn& upstream, uint16_t bid, uint32_t length_bytes) {
    BufRing& buffers = gateway.shard.buf_ring();
    std::byte* data = buffers.data(bid);
    upstream.tls.feed_ciphertext(data, length_bytes);
    if (upstream.state == UpstreamState::idle) {
        tls_on_idle_recv(gateway, upstream, bid);
        return;
    }
    ProxyRequest& request = *upstream.request;
    if (!upstream.is_handshake_done) {
        buffers.give_back(bid);
        tls_on_handshake_recv(gateway, upstream, request);
        return;
    }
    // The ciphertext was copied into OpenSSL's BIO, so the buffer is free for plaintext.
    const uint32_t capacity = buffers.buf_bytes();
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
        buffers.give_back(bid);
    } else if (!relay_bytes(gateway, upstream, request, reinterpret_cast<char*>(data), used, bid)) {
        return;
    }
    if (used == capacity) {
        tls_drain(gateway, upstream, request);  // The buffer filled: OpenSSL may hold more.
        return;
    }
    tls_settle(gateway, upstream, request, result);
}

void tls_drain(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    BufRing& buffers = gateway.shard.buf_ring();
    const uint32_t capacity = buffers.buf_bytes();
    for (;;) {
        if (request.is_relaying_stream && relay_is_client_behind(gateway, request)) {
            request.is_recv_wanted = true;
            return;
        }
        // Plaintext goes into a spare recv buffer: relayed like a received one, it counts
        // against the stream's RINGWAY_STREAM_BUFFER_BYTES and comes back when sent. The
        // request's arena (kept until the request ends) only when the shard has no buffer
        // spare, every one published or held.
        const uint16_t bid = buffers.take_spare();
        auto* piece = bid != no_bid
                          ? reinterpret_cast<char*>(buffers.data(bid))
                          : static_cast<char*>(client_arena(*request.conn).alloc(capacity, 16));
        if (piece == nullptr) {
            request_finish(gateway, request, Fault::local_out_of_memory);
            return;
        }
        const ReadResult result =
            upstream.tls.read_plaintext(reinterpret_cast<std::byte*>(piece), capacity);
        if (result.status != ReadStatus::bytes) {
            if (bid != no_bid) {
                buffers.give_back(bid);
            }
            tls_settle(gateway, upstream, request, result);
            return;
        }
        if (!relay_bytes(gateway, upstream, request, piece, result.plaintext_bytes, bid)) {
            return;
        }
    }
}

}  // namespace rw
