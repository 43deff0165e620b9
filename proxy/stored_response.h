// proxy/stored_response.h — OpenAI's stored responses: GET /v1/responses/{id}, DELETE
// /v1/responses/{id}, POST /v1/responses/{id}/cancel and GET /v1/responses/{id}/input_items
// reach the `openai` channel that created the response, for the key that created it. The
// id and its channel are learnt from the /v1/responses answer (the whole body's "id", a
// stream's response.created), kept in StoredResponses (every shard's, bounded) and on the
// creating request's usage row (usage_logs.response_id), from which a start reloads them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/http_parse.h"
#include "core/limits.h"
#include "proxy/endpoint.h"
#include "proxy/fault.h"
#include "proxy/usage.h"
#include "storage/config.h"

namespace rw {

struct Gateway;
struct ProxyRequest;
class Arena;

// The stored-response endpoint a request path names, and the id in it: /v1/responses/{id}
// (retrieve; delete under DELETE), /v1/responses/{id}/cancel, /v1/responses/{id}/input_items.
// False for any other path (input_tokens included).
[[nodiscard]] bool stored_response_route(std::string_view path, Method method, Endpoint& endpoint,
                                         std::string_view& id);

// The method the endpoint is served under (GET, DELETE or POST).
[[nodiscard]] Method stored_response_method(Endpoint endpoint);

struct StoredResponse {
    int64_t key_id = 0;
    int64_t channel_id = 0;
    std::string_view model_sent;  // Into the caller's copy (StoredResponses::find).
};

// Response ids with the key and channel that created them, shared by every shard. A
// set-associative table of a fixed size (4 ways; a full set forgets its oldest entry),
// allocated once and resident only where written. No lock is shared: each set has its own
// sequence word (a seqlock): a writer makes it odd while it writes that set's entries, a
// reader copies what it needs and tries again if the word moved meanwhile. Shards touching
// different sets never meet; two on one set wait at most for the other's few stores.
class StoredResponses {
public:
    explicit StoredResponses(uint32_t capacity);
    ~StoredResponses();
    StoredResponses(const StoredResponses&) = delete;
    StoredResponses& operator=(const StoredResponses&) = delete;

    void put(std::string_view id, int64_t key_id, int64_t channel_id, std::string_view model_sent);
    // Copies the entry's model into model_out (record_model_bytes_max + 1 bytes).
    [[nodiscard]] bool find(std::string_view id, StoredResponse& out,
                            char (&model_out)[record_model_bytes_max + 1]) const;
    void forget(std::string_view id);
    [[nodiscard]] uint32_t capacity() const { return set_count_ * ways; }

    static constexpr uint32_t ways = 4;

private:
    struct Set;
    [[nodiscard]] Set& set_of(std::string_view id) const;
    [[nodiscard]] size_t sets_bytes() const;

    Set* sets_;
    uint32_t set_count_;
};

// Entries the gateway keeps: 32768 (about 6 MiB of address space; resident as written).
constexpr uint32_t stored_responses_capacity = 32768;

// The admission of a stored-response request once its (empty) body is in: the key again,
// the id known to this key (else 404 response_not_found, as OpenAI answers another
// organisation's id), its channel as the one candidate, and a usage queue slot.
[[nodiscard]] Fault stored_response_admit(Gateway& gateway, ProxyRequest& request,
                                          const ParsedRequest& http);

// At startup: the newest `capacity` response ids recorded on usage rows (with their key,
// channel and model), oldest first so the newest win a full set. Both backends.
[[nodiscard]] bool stored_responses_load(const StorageConfig& storage, StoredResponses& table,
                                         uint32_t& loaded, std::string& error);

// A /v1/responses request continuing a stored response (previous_response_id this key
// created): its candidates narrowed to the channel that holds it, when that channel is
// among them (no other channel has the response; without it the candidates stay).
void stored_response_pin(Gateway& gateway, ProxyRequest& request);

// A finished /v1/responses request's id, learnt from its answer, joins the table.
void stored_response_learn(Gateway& gateway, const ProxyRequest& request, int64_t channel_id,
                           std::string_view model_sent);

}  // namespace rw
