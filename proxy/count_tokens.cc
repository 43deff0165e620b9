// proxy/count_tokens.cc — the local token count estimate (see count_tokens.h).
#include "proxy/count_tokens.h"

#include <cstring>

#include "core/text.h"
#include "proxy/gateway.h"
#include "proxy/request.h"

namespace rw {

uint64_t count_tokens_estimate(uint64_t body_bytes) {
    return (body_bytes + 3) / 4;
}

void count_tokens_serve(Gateway& gateway, ProxyRequest& request) {
    RW_ASSERT(request.endpoint == Endpoint::count_tokens);
    RW_ASSERT(request.attempts_made == 0);  // No upstream: no record.
    char body[64];
    char* cursor = body;
    auto put = [&cursor](std::string_view text) {
        std::memcpy(cursor, text.data(), text.size());
        cursor += text.size();
    };
    put("{\"input_tokens\":");
    cursor = decimal_write(cursor, count_tokens_estimate(request.body.size()));
    put(",\"estimated\":true}");
    RW_ASSERT(cursor <= body + sizeof(body));
    request.is_response_started = true;
    request.status_sent = 200;
    client_respond(*request.conn, {200,
                                   "application/json",
                                   {body, static_cast<size_t>(cursor - body)},
                                   "x-ringway-token-count: estimated\r\n",
                                   false});
    request_finish(gateway, request, Fault::none);
}

}  // namespace rw
