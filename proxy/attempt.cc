// proxy/attempt.cc — attempts of a proxied request on the shard's ring (see attempt.h).
// Shard thread only.
#include "proxy/attempt.h"

#include "core/log.h"
#include "proxy/gateway.h"
#include "proxy/rate_limit.h"
#include "proxy/relay.h"
#include "proxy/request.h"
#include "proxy/rewrite.h"
#include "proxy/upload.h"
#include "proxy/upstream_tls.h"

namespace rw {
namespace {

// Every upstream slot of the shard busy (or socket() refused): counted, and logged at most
// once a second with the count since the last line.
void attempt_note_no_slot(Gateway& gateway) {
    gateway.metrics.upstream_slots_exhausted.add();
    gateway.slots_exhausted_unlogged += 1;
    const uint64_t now_ms = gateway.shard.now_ms();
    if (gateway.slots_exhausted_logged_ms == 0 ||
        now_ms >= gateway.slots_exhausted_logged_ms + 1000) {
        RW_LOG_WARN("event=upstream_connections_exhausted shard=%u count=%lu max=%u",
                    gateway.shard.index(),
                    static_cast<unsigned long>(gateway.slots_exhausted_unlogged),
                    gateway.config.upstream_connections_max);
        gateway.slots_exhausted_unlogged = 0;
        gateway.slots_exhausted_logged_ms = now_ms;
    }
}

// Sends the request on a connection that is ready for it (connected, or pooled).
void attempt_send(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    upstream.state = UpstreamState::sending;
    upstream.deadline_ms = gateway.shard.now_ms() + gateway.config.upstream_first_byte_timeout_ms;
    if (upstream.is_tls) {
        [[maybe_unused]] const bool is_sent = tls_send_request(gateway, upstream, request);
        return;
    }
    gateway.pool.submit_send(upstream);
}

void attempt_attach(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    upstream.request = &request;
    upstream.has_response_bytes = false;
    request.upstream_slot = upstream.slot;
    request.attempts_made += 1;
    request.attempt_started_us = proxy_clock_us();
    if (request.relayed_headers == nullptr) {  // Once per request; a failure relays none.
        request.relayed_headers = static_cast<char*>(
            client_arena(*request.conn).alloc(upstream_relayed_headers_bytes_max, 1));
    }
    request.parser.start(request.relayed_headers, upstream_relayed_headers_bytes_max,
                         rate_replaced_headers(request.rate));
    gateway.metrics.upstream_requests.add();
    if (request.attempts_made > 1) {
        gateway.metrics.upstream_retries.add();
    }
    upstream.iov[0] = {const_cast<char*>(request.upstream_head.data()),
                       request.upstream_head.size()};
    upstream.iov[1] = {const_cast<char*>(request.upstream_body.data()),
                       request.upstream_body.size()};
    upstream.send_remaining_bytes =
        static_cast<uint32_t>(request.upstream_head.size() + request.upstream_body.size());
}

// Appends the request to a list linked through retry_next (the retry list or the slot wait
// list; a request is in at most one: is_retry_queued).
void attempt_list_push(ProxyRequest*& head, ProxyRequest*& tail, ProxyRequest& request) {
    RW_ASSERT(!request.is_retry_queued);
    request.is_retry_queued = true;
    request.retry_next = nullptr;
    if (tail == nullptr) {
        head = &request;
    } else {
        tail->retry_next = &request;
    }
    tail = &request;
}

void attempt_retry_queue(Gateway& gateway, ProxyRequest& request) {
    RW_ASSERT(request.attempt_index + 1 < request.candidate_count);
    request.attempt_index += 1;
    attempt_list_push(gateway.retry_head, gateway.retry_tail, request);
}

// Turn end: a waiter goes back to the retry list (same candidate) for each free slot, and
// all of them when no close is in flight any more (a slot was taken by a newer request:
// their next try evicts again or is refused, never waits on nothing).
void attempt_slot_waiters_wake(Gateway& gateway) {
    uint32_t free_count = gateway.pool.free_count();
    const bool is_any_closing = gateway.pool.closing_count() > 0;
    while (gateway.slot_wait_head != nullptr && (free_count > 0 || !is_any_closing)) {
        ProxyRequest& request = *gateway.slot_wait_head;
        gateway.slot_wait_head = request.retry_next;
        if (gateway.slot_wait_head == nullptr) {
            gateway.slot_wait_tail = nullptr;
        }
        request.is_retry_queued = false;
        attempt_list_push(gateway.retry_head, gateway.retry_tail, request);
        free_count -= free_count > 0 ? 1 : 0;
    }
}

bool attempt_can_retry(const ProxyRequest& request, Fault fault) {
    return fault_info(fault).is_retry_safe && !request.is_response_started &&
           upload_can_retry(request) && !request.is_client_gone && !request.is_finished &&
           request.attempt_index + 1 < request.candidate_count;
}

}  // namespace

void attempt_relayed_headers_trim(ProxyRequest& request) {
    if (request.relayed_headers == nullptr) {
        return;
    }
    request.parser.relayed_seal();
    client_arena(*request.conn)
        .shrink_last(request.relayed_headers, request.parser.relayed_headers().size());
    request.relayed_headers = nullptr;  // Another attach (none comes) would take a new one.
}

void attempt_start(Gateway& gateway, ProxyRequest& request) {
    RW_ASSERT(request.upstream_slot == UINT32_MAX);
    RW_ASSERT(request.attempt_index < request.candidate_count);
    Arena& arena = client_arena(*request.conn);
    const Fault built = upstream_request_build(arena, request, client_request(*request.conn),
                                               gateway.shared.max_tokens_defaults);
    if (built != Fault::none) {
        request_finish(gateway, request, built);
        return;
    }
    const Candidate& candidate = request.candidates[request.attempt_index];
    UpstreamConn* upstream = gateway.pool.take_idle(candidate);
    if (upstream != nullptr) {
        attempt_attach(gateway, *upstream, request);
        gateway.metrics.upstream_reused.add();
        attempt_send(gateway, *upstream, request);  // Its recv is already armed (idle watch).
        return;
    }
    upstream = gateway.pool.open(candidate);
    if (upstream == nullptr && gateway.pool.free_count() == 0 && gateway.pool.evict_oldest_idle()) {
        // The table is full but a connection sat idle: it is closed, and this attempt
        // waits (not refused) for the slot its close gives back.
        gateway.metrics.upstream_evicted.add();
        attempt_list_push(gateway.slot_wait_head, gateway.slot_wait_tail, request);
        return;
    }
    if (upstream == nullptr) {
        // No slot or no socket: the upstream never saw the request, retrying is safe.
        gateway.metrics.upstream_errors.add();
        attempt_note_no_slot(gateway);
        if (attempt_can_retry(request, Fault::local_no_upstream_slot)) {
            attempt_retry_queue(gateway, request);
            return;
        }
        gateway.metrics.overloaded.add();
        request_finish(gateway, request, Fault::local_no_upstream_slot);
        return;
    }
    attempt_attach(gateway, *upstream, request);
    gateway.metrics.upstream_connects.add();
    upstream->state = UpstreamState::connecting;
    upstream->deadline_ms = gateway.shard.now_ms() + gateway.config.upstream_connect_timeout_ms;
    gateway.pool.submit_connect(*upstream, candidate);
}

void attempt_failed(Gateway& gateway, ProxyRequest& request, UpstreamConn& upstream, Fault fault) {
    RW_ASSERT(fault != Fault::none);
    RW_ASSERT(upstream.request == &request);
    gateway.metrics.upstream_errors.add();
    request_attempt_over(request);
    attempt_health_report(gateway, request, upstream.channel_id, fault);
    gateway.pool.close(upstream);
    if (attempt_can_retry(request, fault)) {
        attempt_retry_queue(gateway, request);
        return;
    }
    request_finish(gateway, request, fault);
}

void attempt_health_report(Gateway& gateway, ProxyRequest& request, int64_t channel_id,
                           Fault fault) {
    ChannelHealthBoard& health = *gateway.shared.health;
    const bool is_trial = request.trial_channel_id == channel_id;
    request.trial_channel_id = is_trial ? 0 : request.trial_channel_id;
    const uint64_t now_ms = gateway.shard.now_ms();
    if (fault == Fault::none) {
        health.succeeded(channel_id, now_ms, is_trial);
        return;
    }
    if (fault_name(fault).starts_with("local_") || fault == Fault::client_gone) {
        if (is_trial) {
            health.trial_abandoned(channel_id);
        }
        return;
    }
    const UpstreamHead& head = request.parser.head();
    const FailureKind kind = fault == Fault::upstream_auth_failed ? FailureKind::auth
                             : head.status == 429                 ? FailureKind::rate
                                                                  : FailureKind::server;
    bool auto_disable = true;
    for (uint32_t i = 0; i < request.candidate_count; i++) {
        if (request.candidates[i].channel_id == channel_id) {
            auto_disable = request.candidates[i].auto_disable;
        }
    }
    health.failed(channel_id, auto_disable,
                  {kind, head.status, head.retry_after_s, fault_name(fault)}, now_ms, is_trial);
}

void attempt_retries_run(Gateway& gateway) {
    attempt_slot_waiters_wake(gateway);
    // A retry that cannot get a connection queues the next candidate behind it: the loop
    // runs until the list is empty (bounded by each request's candidates).
    while (gateway.retry_head != nullptr) {
        ProxyRequest& request = *gateway.retry_head;
        gateway.retry_head = request.retry_next;
        if (gateway.retry_head == nullptr) {
            gateway.retry_tail = nullptr;
        }
        RW_ASSERT(request.is_retry_queued);
        request.is_retry_queued = false;
        request.retry_next = nullptr;
        if (request.is_finished) {
            request_maybe_release(gateway, request);  // The client left while it waited.
            continue;
        }
        attempt_start(gateway, request);
    }
}

void attempt_release_upstream(Gateway& gateway, UpstreamConn& upstream, bool is_reusable) {
    RW_ASSERT(upstream.request != nullptr);
    // A send still in flight means the upstream answered before reading everything.
    if (!is_reusable || upstream.is_send_inflight || !upload_is_sent_whole(*upstream.request) ||
        gateway.shard.is_draining() || gateway.config.upstream_keepalive_ms == 0) {
        gateway.pool.close(upstream);  // Detaches the request, kept alive while SQEs remain.
        return;
    }
    upstream.request->upstream_slot = UINT32_MAX;
    upstream.request = nullptr;
    gateway.pool.park(upstream, gateway.shard.now_ms(), gateway.config.upstream_keepalive_ms);
}

void attempt_on_connect(Gateway& gateway, UpstreamConn& upstream, int result) {
    if (upstream.state == UpstreamState::closing) {
        return;
    }
    RW_ASSERT(upstream.request != nullptr);
    ProxyRequest& request = *upstream.request;
    if (result < 0) {
        attempt_failed(gateway, request, upstream, Fault::upstream_unreachable);
        return;
    }
    if (upstream.is_tls) {
        // The handshake runs under the connect deadline (it is part of reaching the
        // upstream); the request goes out once it is done.
        tls_handshake_start(gateway, upstream, request);
        return;
    }
    attempt_send(gateway, upstream, request);
    // Armed now: the answer may come before the send CQE.
    gateway.pool.submit_recv(upstream, true);
}

void attempt_on_send(Gateway& gateway, UpstreamConn& upstream, int result) {
    upstream.is_send_inflight = false;
    if (upstream.state == UpstreamState::closing || upstream.request == nullptr) {
        return;
    }
    ProxyRequest& request = *upstream.request;
    if (result <= 0) {
        // The request did not get out whole, so the upstream cannot have acted on it:
        // safe to retry (the keep-alive race on a pooled connection lands here too).
        attempt_failed(gateway, request, upstream,
                       upstream.has_response_bytes ? Fault::upstream_send_failed_answered
                                                   : Fault::upstream_send_failed);
        return;
    }
    auto sent = static_cast<uint32_t>(result);
    RW_ASSERT(sent <= upstream.send_remaining_bytes);
    upstream.send_remaining_bytes -= sent;
    if (upstream.send_remaining_bytes == 0) {
        if (request.upload != nullptr && upload_on_sent(gateway, upstream, request)) {
            return;  // More of the upload to go (upload.h).
        }
        if (upstream.is_tls) {
            tls_on_sent(gateway, upstream, request);  // Ciphertext made while this was out.
        } else if (upstream.state == UpstreamState::sending) {
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
    gateway.pool.submit_send(upstream);
}

void attempt_sweep(Gateway& gateway) {
    const uint64_t now = gateway.shard.now_ms();
    for (uint32_t i = 0; i < gateway.pool.high_water(); i++) {
        UpstreamConn& upstream = gateway.pool.at(i);
        if (upstream.request != nullptr && upstream.state != UpstreamState::closing &&
            upstream.state != UpstreamState::free) {
            relay_keepalive_tick(gateway, *upstream.request, now);
        }
        if (upstream.deadline_ms == 0 || now < upstream.deadline_ms ||
            upstream.state == UpstreamState::free || upstream.state == UpstreamState::closing) {
            continue;
        }
        gateway.metrics.upstream_timeouts.add();
        if (upstream.state == UpstreamState::idle || upstream.request == nullptr) {
            gateway.pool.close(upstream);
            continue;
        }
        ProxyRequest& request = *upstream.request;
        if (upstream.state == UpstreamState::connecting) {
            attempt_failed(gateway, request, upstream, Fault::upstream_connect_timeout);
        } else if (request.is_relaying_stream) {
            request_finish(gateway, request, Fault::upstream_timeout);
        } else {
            // Sent but unanswered: the upstream may be working on it, so no retry.
            attempt_failed(gateway, request, upstream, Fault::upstream_timeout);
        }
    }
}

}  // namespace rw
