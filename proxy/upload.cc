// proxy/upload.cc — multipart uploads relayed as they arrive (see upload.h).
#include "proxy/upload.h"

#include <algorithm>

#include <cstring>

#include "proxy/admission.h"
#include "proxy/attempt.h"
#include "proxy/gateway.h"
#include "proxy/multipart.h"
#include "proxy/request.h"

namespace rw {
namespace {

// One send upstream: a recv buffer's worth of the client's body (plaintext), and for TLS
// room for the records around it.
constexpr uint32_t tls_record_overhead_bytes = 1024;

Fault upload_refuse(ProxyRequest& request, std::string_view code, std::string_view message) {
    request.fault_code = code;
    request.fault_message = message;
    return Fault::client_invalid_body;
}

// The start of the body is in: the model is known. The checks that need it, then the
// first attempt. Returns the bytes of `piece` taken.
uint32_t upload_route(Gateway& gateway, ProxyRequest& request, uint32_t taken,
                      uint32_t piece_bytes) {
    Upload& upload = *request.upload;
    const std::string_view model{upload.prefix + upload.model_begin,
                                 upload.model_end - upload.model_begin};
    if (model.empty() || model.size() > 256) {
        request_finish(gateway, request,
                       upload_refuse(request, "invalid_model",
                                     "The model part of the upload is empty or too long."));
        return piece_bytes;
    }
    request.model_requested = model;
    upload.is_routed = true;
    const Fault fault = admission_body(gateway, request, client_request(*request.conn));
    if (fault != Fault::none) {
        request_finish(gateway, request, fault);
        return piece_bytes;  // Answered; the rest of the body is read and dropped.
    }
    attempt_start(gateway, request);
    return taken;
}

// Before the model is known: the piece goes into the prefix window and the window is
// scanned for the model part.
uint32_t upload_take_prefix(Gateway& gateway, ProxyRequest& request, std::string_view piece,
                            bool is_last) {
    Upload& upload = *request.upload;
    const auto taken = static_cast<uint32_t>(
        std::min<uint64_t>(piece.size(), upload.prefix_capacity - upload.prefix_bytes));
    std::memcpy(upload.prefix + upload.prefix_bytes, piece.data(), taken);
    upload.prefix_bytes += taken;
    const MultipartField field =
        multipart_find_field({upload.prefix, upload.prefix_bytes}, upload.boundary, "model");
    const auto piece_bytes = static_cast<uint32_t>(piece.size());
    switch (field.result) {
        case MultipartFind::found:
            upload.model_begin = static_cast<uint32_t>(field.value_begin);
            upload.model_end = static_cast<uint32_t>(field.value_end);
            return upload_route(gateway, request, taken, piece_bytes);
        case MultipartFind::need_more:
            if (upload.prefix_bytes < upload.prefix_capacity &&
                !(is_last && taken == piece_bytes)) {
                return taken;
            }
            request_finish(
                gateway, request,
                upload_refuse(request, "missing_model",
                              upload.prefix_bytes < upload.prefix_capacity
                                  ? "The upload has no model part."
                                  : "The upload's model part must come within its first "
                                    "RINGWAY_MULTIPART_MODEL_WINDOW_BYTES bytes (send the "
                                    "model field before the file)."));
            return piece_bytes;
        case MultipartFind::absent:
            request_finish(
                gateway, request,
                upload_refuse(request, "missing_model", "The upload has no model part."));
            return piece_bytes;
        case MultipartFind::malformed:
            request_finish(gateway, request,
                           upload_refuse(request, "invalid_multipart",
                                         "The body is not multipart/form-data with the boundary "
                                         "its Content-Type names."));
            return piece_bytes;
    }
    return piece_bytes;
}

// After the prefix: one piece into the window and upstream, when no send is in flight.
uint32_t upload_relay(Gateway& gateway, ProxyRequest& request, std::string_view piece) {
    Upload& upload = *request.upload;
    if (request.upstream_slot == UINT32_MAX || !upload.is_prefix_sent || upload.is_window_sending) {
        return 0;  // Paused: upload_on_sent resumes the body.
    }
    UpstreamConn& upstream = gateway.pool.at(request.upstream_slot);
    if (upstream.is_send_inflight || upstream.state == UpstreamState::closing) {
        return 0;
    }
    uint32_t taken = 0;
    uint32_t send_bytes = 0;
    if (upstream.is_tls) {
        taken = static_cast<uint32_t>(
            std::min<uint64_t>(piece.size(), upload.window_capacity - tls_record_overhead_bytes));
        if (upstream.tls.write_plaintext(piece.data(), taken) < 0 ||
            upstream.tls.pending_ciphertext() > upload.window_capacity) {
            attempt_failed(gateway, request, upstream, Fault::upstream_tls_failed);
            return static_cast<uint32_t>(piece.size());
        }
        send_bytes = upstream.tls.take_ciphertext(reinterpret_cast<std::byte*>(upload.window),
                                                  upload.window_capacity);
    } else {
        taken = static_cast<uint32_t>(std::min<uint64_t>(piece.size(), upload.window_capacity));
        std::memcpy(upload.window, piece.data(), taken);
        send_bytes = taken;
    }
    upload.taken_after_prefix += taken;
    upload.is_window_sending = true;
    upstream.iov[0] = {upload.window, send_bytes};
    upstream.iov[1] = {nullptr, 0};
    upstream.send_remaining_bytes = send_bytes;
    // The answer's deadline counts from the last byte sent, not from the head.
    upstream.deadline_ms = gateway.shard.now_ms() + gateway.config.upstream_first_byte_timeout_ms;
    gateway.pool.submit_send(upstream);
    return taken;
}

}  // namespace

Fault upload_head(Gateway& gateway, ProxyRequest& request, const ParsedRequest& http) {
    if (http.is_chunked) {
        return Fault::client_length_required;
    }
    if (http.content_length > gateway.config.max_upload_bytes) {
        return Fault::client_upload_too_large;
    }
    const std::string_view content_type = http.find_header("content-type");
    const std::string_view boundary = multipart_boundary(content_type);
    if (boundary.empty()) {
        return upload_refuse(request, "invalid_content_type",
                             "This endpoint takes multipart/form-data (with a boundary).");
    }
    Arena& arena = client_arena(*request.conn);
    auto* upload = static_cast<Upload*>(arena.alloc(sizeof(Upload), alignof(Upload)));
    const uint32_t prefix_capacity = static_cast<uint32_t>(std::min<uint64_t>(
        gateway.config.multipart_model_window_bytes, std::max<uint64_t>(http.content_length, 1)));
    const uint32_t window_capacity =
        gateway.shard.buf_ring().buf_bytes() + tls_record_overhead_bytes;
    char* prefix =
        upload != nullptr ? static_cast<char*>(arena.alloc(prefix_capacity, 1)) : nullptr;
    char* window =
        prefix != nullptr ? static_cast<char*>(arena.alloc(window_capacity, 1)) : nullptr;
    if (window == nullptr) {
        return Fault::local_out_of_memory;
    }
    *upload = Upload{};
    upload->content_type = content_type;
    upload->boundary = boundary;
    upload->length_bytes = http.content_length;
    upload->prefix = prefix;
    upload->prefix_capacity = prefix_capacity;
    upload->window = window;
    upload->window_capacity = window_capacity;
    request.upload = upload;
    return Fault::none;
}

void upload_start(Gateway& gateway, ProxyRequest& request) {
    request.bytes_in = request.upload->length_bytes;
    if (request.upload->length_bytes == 0) {
        request_finish(gateway, request,
                       upload_refuse(request, "missing_model", "The upload has no model part."));
    }
}

uint32_t upload_on_body(Gateway& gateway, ProxyRequest& request, std::string_view piece,
                        bool is_last) {
    if (request.is_finished || request.is_client_gone) {
        return static_cast<uint32_t>(piece.size());  // Answered: read and dropped.
    }
    if (!request.upload->is_routed) {
        return upload_take_prefix(gateway, request, piece, is_last);
    }
    return upload_relay(gateway, request, piece);
}

bool upload_on_sent(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request) {
    if (upstream.is_tls && upstream.tls.pending_ciphertext() > 0) {
        return false;  // The head's records first (tls_on_sent); then here again.
    }
    Upload& upload = *request.upload;
    upload.is_prefix_sent = true;
    upload.is_window_sending = false;
    if (upload_is_sent_whole(request)) {
        return false;
    }
    upstream.deadline_ms = gateway.shard.now_ms() + gateway.config.upstream_first_byte_timeout_ms;
    client_body_resume(*request.conn);
    return true;
}

bool upload_body_build(Arena& arena, ProxyRequest& request, const Candidate& candidate) {
    Upload& upload = *request.upload;
    upload.is_prefix_sent = false;
    upload.is_window_sending = false;
    const std::string_view prefix{upload.prefix, upload.prefix_bytes};
    const uint32_t model_bytes = upload.model_end - upload.model_begin;
    if (candidate.model_sent == request.model_requested) {
        request.upstream_body = prefix;
        upload.upstream_length_bytes = upload.length_bytes;
        return true;
    }
    const size_t size = prefix.size() - model_bytes + candidate.model_sent.size();
    auto* out = static_cast<char*>(arena.alloc(size, 1));
    if (out == nullptr) {
        return false;
    }
    std::memcpy(out, prefix.data(), upload.model_begin);
    std::memcpy(out + upload.model_begin, candidate.model_sent.data(), candidate.model_sent.size());
    std::memcpy(out + upload.model_begin + candidate.model_sent.size(),
                prefix.data() + upload.model_end, prefix.size() - upload.model_end);
    request.upstream_body = {out, size};
    upload.upstream_length_bytes = upload.length_bytes - model_bytes + candidate.model_sent.size();
    return true;
}

bool upload_can_retry(const ProxyRequest& request) {
    return request.upload == nullptr || request.upload->taken_after_prefix == 0;
}

bool upload_is_sent_whole(const ProxyRequest& request) {
    const Upload* upload = request.upload;
    return upload == nullptr ||
           (upload->is_prefix_sent && !upload->is_window_sending &&
            upload->prefix_bytes + upload->taken_after_prefix == upload->length_bytes);
}

}  // namespace rw
