// proxy/rewrite.cc — the upstream request (see rewrite.h). The head is appended piece by
// piece: snprintf's format parsing was 4% of a proxied request's CPU (bench/load/proxy.sh
// perf profile).
#include "proxy/rewrite.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/text.h"
#include "proxy/request.h"
#include "proxy/stored_response.h"
#include "proxy/upload.h"

namespace rw {
namespace {

constexpr std::string_view user_agent = "ringway/0.1.0";

struct HeadText {
    char* out;
    uint32_t capacity;
    uint32_t used = 0;

    void put(std::string_view text) {
        RW_ASSERT(used + text.size() <= capacity);
        std::memcpy(out + used, text.data(), text.size());
        used += static_cast<uint32_t>(text.size());
    }
    void put_header(std::string_view name, std::string_view value) {
        if (!value.empty()) {
            put(name);
            put(": ");
            put(value);
            put("\r\n");
        }
    }
};

bool name_mentions_credential(std::string_view name) {
    char lower[64];
    const size_t length = std::min(name.size(), sizeof(lower));
    for (size_t i = 0; i < length; i++) {
        const char c = name[i];
        lower[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    }
    const std::string_view text(lower, length);
    for (const std::string_view word : {"key", "auth", "token", "secret"}) {
        if (text.find(word) != std::string_view::npos) {
            return true;
        }
    }
    return name.size() > sizeof(lower);  // Too long to judge: dropped.
}

}  // namespace

uint32_t upstream_query_filter(std::string_view query, char* out) {
    uint32_t used = 0;
    while (!query.empty()) {
        const size_t end = std::min(query.find('&'), query.size());
        const std::string_view parameter = query.substr(0, end);
        const std::string_view name = parameter.substr(0, parameter.find('='));
        if (!parameter.empty() && !name_mentions_credential(name)) {
            if (used > 0) {
                out[used++] = '&';
            }
            std::memcpy(out + used, parameter.data(), parameter.size());
            used += static_cast<uint32_t>(parameter.size());
        }
        query.remove_prefix(std::min(end + 1, query.size()));
    }
    return used;
}

void upstream_path(const Candidate& candidate, std::string_view path, std::string_view& first,
                   std::string_view& second) {
    first = candidate.path_prefix;
    second = path;
    if (first.size() >= 3 && first.substr(first.size() - 3) == "/v1" &&
        path.substr(0, 4) == "/v1/") {
        second = path.substr(3);
    }
}

namespace {

// Copies text into the arena followed by json_padding_bytes zero bytes; empty on refusal.
std::string_view arena_padded_copy(Arena& arena, std::string_view text) {
    auto* out = static_cast<char*>(arena.alloc(text.size() + json_padding_bytes, 16));
    if (out == nullptr) {
        return {};
    }
    std::memcpy(out, text.data(), text.size());
    std::memset(out + text.size(), 0, json_padding_bytes);
    return {out, text.size()};
}

// OpenAI's reasoning models take max_completion_tokens, not max_tokens, on chat.
bool is_openai_reasoning_model(std::string_view model) {
    for (const std::string_view prefix : {"o1", "o3", "o4", "gpt-5"}) {
        if (model.starts_with(prefix)) {
            return true;
        }
    }
    return false;
}

// A strict key's injected output limit as the last member of the body the client's
// protocol would carry (",\"max_tokens\":N"; empty when none was injected), named as the
// upstream reads it: max_output_tokens on responses, max_completion_tokens for OpenAI
// reasoning models on chat, else max_tokens. Written into the client's body before a
// translation, which carries it over as the other protocol's limit.
std::string_view output_limit_member(ProxyRequest& request, const Candidate& candidate,
                                     char (&out)[64]) {
    if (request.output_limit_injected == 0) {
        return {};
    }
    std::string_view name = "max_tokens";
    if (request.endpoint == Endpoint::responses) {
        name = "max_output_tokens";
    } else if (request.endpoint == Endpoint::chat && request.translation == Translation::none &&
               candidate.kind == ChannelKind::openai &&
               is_openai_reasoning_model(candidate.model_sent)) {
        name = "max_completion_tokens";
    }
    const int length = std::snprintf(out, sizeof(out), ",\"%.*s\":%u", int(name.size()),
                                     name.data(), request.output_limit_injected);
    RW_ASSERT(length > 0 && static_cast<size_t>(length) < sizeof(out));
    return {out, static_cast<size_t>(length)};
}

// The translated body (translate.h) for the current candidate; `client_body` is the
// client's (with a strict key's output limit added, when injected).
Fault translated_body(Arena& arena, ProxyRequest& request, const Candidate& candidate,
                      const MaxTokensDefaults& max_tokens_defaults, std::string_view client_body) {
    thread_local std::string body;
    thread_local std::string error;
    thread_local std::string param;
    const TranslateRequestOptions options{
        candidate.model_sent, max_tokens_default(max_tokens_defaults, candidate.model_sent),
        candidate.stream_usage == StreamUsage::inject};
    if (!translate_request(request.translation, client_body, options, body, error, param)) {
        const char* message = arena.copy(error);
        request.fault_message = message != nullptr ? std::string_view(message, error.size()) : "";
        request.fault_code = "unsupported_parameter";
        return Fault::client_invalid_body;
    }
    request.upstream_body = arena_padded_copy(arena, body);
    return request.upstream_body.empty() ? Fault::local_out_of_memory : Fault::none;
}

// The upstream request's head for the current candidate: the channel's credentials and the
// few client headers that change the upstream's behaviour (see rewrite.h).
Fault upstream_head_build(Arena& arena, ProxyRequest& request, const ParsedRequest& http,
                          std::string_view prefix, std::string_view path) {
    const Candidate& candidate = request.candidates[request.attempt_index];
    const std::string_view accept = http.find_header("accept");
    const std::string_view openai_beta = http.find_header("openai-beta");
    const std::string_view anthropic_beta = http.find_header("anthropic-beta");
    const auto capacity = static_cast<uint32_t>(
        512 + (request.upload != nullptr ? request.upload->content_type.size() : 0) +
        prefix.size() + path.size() + http.query.size() + candidate.host_header.size() +
        candidate.api_key.size() + accept.size() + openai_beta.size() + anthropic_beta.size() +
        request.anthropic_version.size() + request.client_request_id.size() +
        request.traceparent.size());
    auto* out = static_cast<char*>(arena.alloc(capacity, 1));
    if (out == nullptr) {
        return Fault::local_out_of_memory;
    }
    const bool is_anthropic = candidate.kind == ChannelKind::anthropic;
    char content_length[decimal_bytes_max];
    const uint64_t body_bytes = request.upload != nullptr ? request.upload->upstream_length_bytes
                                                          : request.upstream_body.size();
    const char* const content_length_end = decimal_write(content_length, body_bytes);
    HeadText head{out, capacity};
    // A stored response's request goes as the client sent it: GET, DELETE, or a POST
    // without a body (cancel).
    const EndpointInfo& info = endpoint_info(request.endpoint);
    const Method method = info.is_stored ? stored_response_method(request.endpoint) : Method::post;
    head.put(method == Method::get ? "GET " : method == Method::delete_ ? "DELETE " : "POST ");
    head.put(prefix);
    head.put(path);
    if (!http.query.empty()) {
        const uint32_t query_bytes = upstream_query_filter(http.query, out + head.used + 1);
        if (query_bytes > 0) {
            out[head.used] = '?';  // The filtered query was written just after it.
            head.used += 1 + query_bytes;
        }
    }
    head.put(" HTTP/1.1\r\nHost: ");
    head.put(candidate.host_header);
    head.put(is_anthropic ? "\r\nx-api-key: " : "\r\nAuthorization: Bearer ");
    head.put(candidate.api_key);
    if (method == Method::post && !info.is_stored) {
        head.put("\r\nContent-Type: ");
        head.put(request.upload != nullptr ? request.upload->content_type
                                           : std::string_view("application/json"));
    }
    if (method == Method::post) {
        head.put("\r\nContent-Length: ");
        head.put({content_length, static_cast<size_t>(content_length_end - content_length)});
    }
    head.put("\r\n");
    head.put_header("Accept", accept.empty() || request.translation != Translation::none
                                  ? std::string_view("application/json")
                                  : accept);
    // Without Accept-Encoding any coding would do [RFC 9110 12.5.3]: ask for the body as
    // is, so usage can be read from it and what is relayed is what the client expects.
    head.put("Accept-Encoding: identity\r\n");
    head.put_header("User-Agent", user_agent);
    head.put_header("OpenAI-Beta", openai_beta);
    // The client's own ids go on, so its trace continues at the provider (checked at start).
    head.put_header("x-request-id", request.client_request_id);
    head.put_header("traceparent", request.traceparent);
    if (is_anthropic) {
        head.put_header("anthropic-version", request.anthropic_version);
        head.put_header("anthropic-beta", anthropic_beta);
    }
    head.put("\r\n");
    arena.shrink_last(out, head.used);  // Built after the body: the capacity was a worst case.
    request.upstream_head = {out, head.used};
    return Fault::none;
}

}  // namespace

Fault upstream_request_build(Arena& arena, ProxyRequest& request, const ParsedRequest& http,
                             const MaxTokensDefaults& max_tokens_defaults) {
    const Candidate& candidate = request.candidates[request.attempt_index];
    request.translation = translation_for(request.endpoint, candidate.kind);
    request.usage_format = request.translation == Translation::none
                               ? endpoint_info(request.endpoint).format
                               : translate_upstream_format(request.translation);
    const bool is_chat_like =
        request.endpoint == Endpoint::chat || request.endpoint == Endpoint::completions;
    // Metered streams: include_usage forced on upstream, and the usage chunk cut out again
    // for a client that did not ask for it (absent, false or null).
    const bool is_usage_injected =
        request.is_streaming && is_chat_like && candidate.stream_usage == StreamUsage::inject;
    request.is_usage_cut = request.translation == Translation::none && is_usage_injected &&
                           !request.fields.include_usage;
    char limit_text[64];
    const std::string_view limit_member = output_limit_member(request, candidate, limit_text);
    if (endpoint_info(request.endpoint).is_stored) {
        RW_ASSERT(request.translation == Translation::none);  // Only openai channels hold them.
        std::string_view prefix;
        std::string_view path;
        upstream_path(candidate, client_request(*request.conn).path, prefix, path);
        request.upstream_body = {};
        return upstream_head_build(arena, request, http, prefix, path);
    }
    if (request.upload != nullptr) {
        if (!upload_body_build(arena, request, candidate)) {
            return Fault::local_out_of_memory;
        }
    } else if (request.translation != Translation::none) {
        std::string_view client_body = request.body;
        if (!limit_member.empty()) {  // Strict keys only: other requests translate as sent.
            client_body =
                request_rewrite(arena, request.body, request.fields, {}, false, limit_member);
            if (client_body.empty()) {
                return Fault::local_out_of_memory;
            }
        }
        const Fault fault =
            translated_body(arena, request, candidate, max_tokens_defaults, client_body);
        if (fault != Fault::none) {
            return fault;
        }
    } else {
        const std::string_view new_model = candidate.model_sent == request.model_requested
                                               ? std::string_view{}
                                               : candidate.model_sent;
        request.upstream_body = request_rewrite(arena, request.body, request.fields, new_model,
                                                is_usage_injected, limit_member);
        if (request.upstream_body.empty()) {
            return Fault::local_out_of_memory;
        }
    }
    std::string_view prefix;
    std::string_view path;
    upstream_path(candidate,
                  request.translation == Translation::none
                      ? endpoint_path(request.endpoint)
                      : translate_upstream_path(request.translation),
                  prefix, path);
    return upstream_head_build(arena, request, http, prefix, path);
}

}  // namespace rw
