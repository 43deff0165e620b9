// proxy/gateway.cc — the wiring of the gateway on a shard: the handler the core calls, the
// dispatch of a new request (endpoint, method, admission, then /v1/models or the first
// attempt), the proxy's one switch over its completions, and the turn end. The work is in
// the files named in gateway.h. Shard thread only.
#include "proxy/gateway.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>

#include "proxy/attempt.h"
#include "proxy/count_tokens.h"
#include "proxy/json_fields.h"
#include "proxy/models.h"
#include "proxy/relay.h"
#include "proxy/request.h"
#include "proxy/stored_response.h"
#include "proxy/upload.h"
#include "storage/budget_lease.h"

namespace rw {
namespace {

Gateway& gateway_of(void* context) {
    return *static_cast<Gateway*>(context);
}

// A request's head: the endpoint, the method and the checks that need no body
// (admission_head). A refusal is answered now, before the client uploads (or the core
// stores) its body, and leaves no usage record; an accepted request's state waits in the
// connection's arena for its body (on_request) or its end (on_head_abandoned).
void* on_head(void* context, Conn& conn) {
    Gateway& gateway = gateway_of(context);
    const ParsedRequest& http = client_request(conn);
    const EndpointInfo* info = endpoint_find(http.path);
    const bool is_models = http.path == "/v1/models";
    Endpoint stored_endpoint{};
    std::string_view stored_id;
    if (info == nullptr &&
        stored_response_route(http.path, http.method, stored_endpoint, stored_id)) {
        info = &endpoint_info(stored_endpoint);  // /v1/responses/{id}[/cancel|/input_items].
    }
    const Method method = info != nullptr && info->is_stored
                              ? stored_response_method(info->endpoint)
                          : is_models ? Method::get
                                      : Method::post;
    if (info == nullptr && !is_models) {
        client_respond_unknown_url(conn);
        return nullptr;
    }
    // /v1/models answers in Anthropic's shape, refusals too, when the client names a version.
    const bool is_anthropic = info != nullptr
                                  ? info->is_anthropic
                                  : is_models && !http.find_header("anthropic-version").empty();
    const ErrorShape shape = is_anthropic ? ErrorShape::anthropic : ErrorShape::openai;
    // The id comes first: every answer from here on carries it, refusals too.
    char id_text[request_id_bytes_max];
    const std::string_view request_id = request_id_make(gateway, id_text);
    if (http.method != method) {
        gateway.metrics.faults[static_cast<uint32_t>(Fault::client_method_not_allowed)].add();
        fault_respond(conn, Fault::client_method_not_allowed,
                      {shape,
                       {},
                       info != nullptr && (info->endpoint == Endpoint::responses_retrieve ||
                                           info->endpoint == Endpoint::responses_delete)
                           ? "Only GET and DELETE are allowed on this path."
                       : method == Method::get ? "Only GET is allowed on this path."
                                               : "Only POST is allowed on this path.",
                       0,
                       request_id});
        return nullptr;
    }
    ProxyRequest* request = request_create(gateway, conn, request_id);
    if (request == nullptr) {
        gateway.metrics.faults[static_cast<uint32_t>(Fault::local_out_of_memory)].add();
        fault_respond(conn, Fault::local_out_of_memory, {shape, {}, {}, 0, request_id});
        return nullptr;
    }
    request->error_shape = shape;
    if (info != nullptr) {
        request->endpoint = info->endpoint;
        request->usage_format = info->format;
    }
    Fault fault = admission_head(gateway, *request, http, is_models);
    if (fault == Fault::none && info != nullptr && info->is_multipart) {
        fault = upload_head(gateway, *request, http);
    }
    if (fault != Fault::none) {
        request_refuse_head(gateway, *request, fault);
        return nullptr;
    }
    if (request->upload != nullptr) {
        client_body_stream(conn);  // Relayed as it arrives (upload.h), never stored.
    }
    return request;
}

void on_head_abandoned(void* context, void* head_state) {
    RW_ASSERT(head_state != nullptr);
    request_abandon(gateway_of(context), *static_cast<ProxyRequest*>(head_state));
}

// A request waiting for a budget lease (budget.cc lease_wait) joins the wait list, linked
// through retry_next as retries are (is_retry_queued: request_maybe_release waits for it).
void lease_wait_push(Gateway& gateway, ProxyRequest& request) {
    RW_ASSERT(!request.is_retry_queued);
    request.is_retry_queued = true;
    request.retry_next = nullptr;
    if (gateway.lease_wait_tail == nullptr) {
        gateway.lease_wait_head = &request;
    } else {
        gateway.lease_wait_tail->retry_next = &request;
    }
    gateway.lease_wait_tail = &request;
}

// Admission's verdict: refused, waiting for a budget lease, or on its way.
void request_admitted(Gateway& gateway, ProxyRequest& request, Fault fault) {
    if (fault != Fault::none) {
        request_finish(gateway, request, fault);
    } else if (request.is_lease_waiting) {
        lease_wait_push(gateway, request);
    } else if (request.is_counted_locally) {
        count_tokens_serve(gateway, request);
    } else {
        attempt_start(gateway, request);
    }
}

// Turn end: each waiting request whose wait ended, or that the lease thread has answered
// since it asked, tries its reservation again (and may wait again, until its deadline).
void lease_waiters_run(Gateway& gateway) {
    if (gateway.lease_wait_head == nullptr) {
        return;
    }
    const uint64_t generation = gateway.shared.leases->generation();
    const uint64_t now_ms = gateway.shard.now_ms();
    ProxyRequest* next = gateway.lease_wait_head;
    gateway.lease_wait_head = nullptr;
    gateway.lease_wait_tail = nullptr;
    while (next != nullptr) {
        ProxyRequest& request = *next;
        next = request.retry_next;
        request.is_retry_queued = false;
        request.retry_next = nullptr;
        if (request.is_finished) {
            request_maybe_release(gateway, request);  // The client left while it waited.
            continue;
        }
        if (request.lease_generation == generation && now_ms < request.lease_deadline_ms) {
            lease_wait_push(gateway, request);
            continue;
        }
        request_admitted(gateway, request, admission_lease_retry(gateway, request));
    }
}

// The body is in: the checks that need it (admission_body), then /v1/models or the first
// attempt. Every refusal from here on goes through request_finish and leaves no record.
void on_request(void* context, Conn& conn) {
    Gateway& gateway = gateway_of(context);
    auto* request = static_cast<ProxyRequest*>(client_head_state(conn));
    RW_ASSERT(request != nullptr);  // on_head accepted it (a refused head is never dispatched).
    request_start(gateway, *request);
    const ParsedRequest& http = client_request(conn);
    if (request->upload != nullptr) {
        upload_start(gateway, *request);  // The body follows through on_body.
        return;
    }
    if (http.path == "/v1/models") {
        models_serve(gateway, *request, !http.find_header("anthropic-version").empty());
        return;
    }
    const Fault fault = endpoint_info(request->endpoint).is_stored
                            ? stored_response_admit(gateway, *request, http)
                            : admission_body(gateway, *request, http);
    request_admitted(gateway, *request, fault);
}

// The proxy's one switch over its operations' completions (core/op.h handler_*).
void on_cqe(void* context, const io_uring_cqe& cqe) {
    Gateway& gateway = gateway_of(context);
    const OpTag tag = tag_unpack(cqe.user_data);
    // Only a multishot recv's CQEs carry IORING_CQE_F_MORE: its SQE stays in flight.
    UpstreamConn& upstream =
        gateway.pool.completed(tag.slot, tag.gen, (cqe.flags & IORING_CQE_F_MORE) == 0);
    switch (tag.op) {
        case Op::handler_connect: attempt_on_connect(gateway, upstream, cqe.res); break;
        case Op::handler_send: attempt_on_send(gateway, upstream, cqe.res); break;
        case Op::handler_recv: relay_on_recv(gateway, upstream, cqe); break;
        case Op::handler_cancel: break;  // Advisory: the cancelled ops complete on their own.
        case Op::handler_close: gateway.pool.on_closed(upstream); return;
        case Op::accept:
        case Op::wake:
        case Op::recv:
        case Op::send:
        case Op::send_continue:
        case Op::cancel:
        case Op::shutdown:
        case Op::close: RW_UNREACHABLE();
    }
    if (ProxyRequest* released = gateway.pool.maybe_finish(upstream)) {
        request_maybe_release(gateway, *released);  // Its closing connection let go.
    }
}

uint32_t on_body(void* context, void* request, std::string_view piece, bool is_last) {
    return upload_on_body(gateway_of(context), *static_cast<ProxyRequest*>(request), piece,
                          is_last);
}

void on_client_gone(void* context, void* request, ClientGone why) {
    RW_ASSERT(request != nullptr);
    request_on_client_gone(gateway_of(context), *static_cast<ProxyRequest*>(request), why);
}

void on_client_writable(void* context, void* request) {
    if (request != nullptr) {
        relay_on_client_writable(gateway_of(context), *static_cast<ProxyRequest*>(request));
    }
}

void on_turn_end(void* context) {
    Gateway& gateway = gateway_of(context);
    gateway.pool.rearm_listed();
    if (gateway.shard.now_ms() >= gateway.next_sweep_ms) {
        gateway.next_sweep_ms = gateway.shard.now_ms() + timer_sweep_ms;
        attempt_sweep(gateway);
    }
    attempt_retries_run(gateway);
    lease_waiters_run(gateway);
    if (gateway.has_records_pushed) {
        gateway.has_records_pushed = false;
        gateway.shared.writer->notify(gateway.shard.index());  // At most once per loop turn.
    }
}

}  // namespace

Gateway::Gateway(GatewayShared& shared_in, Shard& shard_in)
    : shared(shared_in),
      shard(shard_in),
      config(shard_in.config()),
      pool(shard_in, config.upstream_connections_max, config.upstream_multishot != 0,
           metrics.upstream_recvs_armed),
      random_state((0x9E3779B97F4A7C15ull ^ (uint64_t(shard_in.index()) << 32) ^ proxy_clock_us()) |
                   1) {
    shared.metrics[shard.index()] = &metrics;
    // Request ids ("rw-SHARD-MS-N") must not repeat across hosts sharing one database, whose
    // shards have the same numbers and count from the same start: each shard's N starts at
    // 40 random bits (two hosts' runs of N meet with odds of their requests over 2^40).
    uint64_t sequence_start = 0;
    if (::getrandom(&sequence_start, sizeof(sequence_start), 0) != sizeof(sequence_start)) {
        sequence_start = proxy_clock_us() ^ (uint64_t(::getpid()) << 20);
    }
    request_sequence = sequence_start & ((uint64_t(1) << 40) - 1);
    // The shard's simdjson parser, sized now so ordinary bodies never grow it mid-request
    // (larger documents still may, once: that growth is the parser's, capped by the body
    // and response limits).
    [[maybe_unused]] const bool is_reserved = json_parser_reserve(
        1u << 20, static_cast<uint32_t>(
                      std::min<uint64_t>(std::max(config.max_body_bytes, config.max_response_bytes),
                                         UINT32_MAX - json_padding_bytes)));
}

RequestHandler Gateway::handler() {
    RequestHandler handler;
    handler.context = this;
    handler.on_head = on_head;
    handler.on_head_abandoned = on_head_abandoned;
    handler.on_request = on_request;
    handler.on_body = on_body;
    handler.on_cqe = on_cqe;
    handler.on_client_gone = on_client_gone;
    handler.on_client_writable = on_client_writable;
    handler.on_turn_end = on_turn_end;
    return handler;
}

}  // namespace rw
