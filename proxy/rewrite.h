// proxy/rewrite.h — the request as the upstream will see it: the body with the channel's
// model name (and stream_options.include_usage forced on for streamed chat requests, so
// every stream can be metered, unless the channel's stream_usage is off; the request is
// then marked to have that usage chunk cut out again when the client did not ask for it) and a head
// carrying only the channel's credentials and the few client headers that change the upstream's
// behaviour. Client credentials, cookies and hop-by-hop headers never leave the gateway (RULES
// security §4). Shard thread only.
#pragma once

#include <string_view>

#include "arena/arena.h"
#include "core/http_parse.h"
#include "proxy/fault.h"
#include "proxy/translate.h"

namespace rw {

struct ProxyRequest;
struct Candidate;

// "[prefix]/v1/x": a base URL that already ends in /v1 (https://host/v1, as many
// OpenAI-compatible servers document it) does not get a second /v1. The two halves of
// the upstream path go in first and second.
void upstream_path(const Candidate& candidate, std::string_view path, std::string_view& first,
                   std::string_view& second);

// The client's query string as the upstream gets it (e.g. Claude Code's ?beta=true):
// parameters whose name mentions a credential (key, auth, token, secret, case-insensitive)
// are dropped, so a client key put in the URL never reaches a provider (RULES security §1,
// §4). Writes into out (at least query.size() bytes); returns the length written.
[[nodiscard]] uint32_t upstream_query_filter(std::string_view query, char* out);

// Builds request.upstream_head and request.upstream_body for the current candidate in
// the arena, translated when the candidate's protocol is not the client's (translate.h;
// request.translation and usage_format then name the upstream's). Returns Fault::none,
// local_out_of_memory, or client_invalid_body with request.fault_message naming the field
// that cannot be translated.
[[nodiscard]] Fault upstream_request_build(Arena& arena, ProxyRequest& request,
                                           const ParsedRequest& http,
                                           const MaxTokensDefaults& max_tokens_defaults);

}  // namespace rw
