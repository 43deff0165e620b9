// proxy/endpoint.cc — the endpoint table (see endpoint.h).
#include "proxy/endpoint.h"

#include "core/assert.h"

namespace rw {
namespace {

constexpr EndpointInfo endpoints[] = {
    {"/v1/chat/completions", Endpoint::chat, UsageFormat::chat},
    {"/v1/completions", Endpoint::completions, UsageFormat::chat},
    {"/v1/embeddings", Endpoint::embeddings, UsageFormat::embeddings},
    {"/v1/responses", Endpoint::responses, UsageFormat::responses},
    {"/v1/messages", Endpoint::messages, UsageFormat::anthropic_messages},
};

}  // namespace

const EndpointInfo* endpoint_find(std::string_view path) {
    for (const EndpointInfo& info : endpoints) {
        if (path == info.path) {
            return &info;
        }
    }
    return nullptr;
}

std::string_view endpoint_path(Endpoint endpoint) {
    for (const EndpointInfo& info : endpoints) {
        if (info.endpoint == endpoint) {
            return info.path;
        }
    }
    RW_UNREACHABLE();
}

}  // namespace rw
