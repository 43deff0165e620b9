// proxy/stored_response.cc — stored responses (see stored_response.h). Shard threads; the
// table is shared under its mutex.
#include "proxy/stored_response.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "proxy/gateway.h"
#include "proxy/json_fields.h"
#include "proxy/request.h"
#include "proxy/resolver.h"
#include "storage/db.h"

namespace rw {

struct StoredResponses::Entry {
    uint64_t stamp;  // 0: empty.
    int64_t key_id;
    int64_t channel_id;
    uint8_t id_bytes;
    char id[stored_response_id_bytes_max];
    char model_sent[record_model_bytes_max + 1];
};

namespace {

uint64_t id_hash(std::string_view id) {
    uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a.
    for (const char c : id) {
        hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    }
    return hash;
}

}  // namespace

bool stored_response_route(std::string_view path, Method method, Endpoint& endpoint,
                           std::string_view& id) {
    constexpr std::string_view prefix = "/v1/responses/";
    if (!path.starts_with(prefix)) {
        return false;
    }
    std::string_view rest = path.substr(prefix.size());
    const size_t slash = rest.find('/');
    id = rest.substr(0, slash);
    const std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash);
    if (id == "input_tokens" || id.empty()) {
        return false;  // POST /v1/responses/input_tokens is an endpoint of its own.
    }
    if (tail.empty()) {
        endpoint =
            method == Method::delete_ ? Endpoint::responses_delete : Endpoint::responses_retrieve;
    } else if (tail == "/cancel") {
        endpoint = Endpoint::responses_cancel;
    } else if (tail == "/input_items") {
        endpoint = Endpoint::responses_input_items;
    } else {
        return false;
    }
    return true;
}

Method stored_response_method(Endpoint endpoint) {
    switch (endpoint) {
        case Endpoint::responses_delete: return Method::delete_;
        case Endpoint::responses_cancel: return Method::post;
        default: return Method::get;
    }
}

StoredResponses::StoredResponses(uint32_t capacity)
    : set_count_(capacity / ways > 0 ? capacity / ways : 1) {
    // Anonymous zero pages, resident only once written (an all-zero Entry is empty). Not
    // calloc: the allocator zeroed the block itself, and an idle gateway held all ~6 MiB.
    void* pages = ::mmap(nullptr, entries_bytes(), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    RW_ASSERT(pages != MAP_FAILED);  // Startup only: address space, not memory.
    entries_ = static_cast<Entry*>(pages);
}

StoredResponses::~StoredResponses() {
    ::munmap(entries_, entries_bytes());
}

size_t StoredResponses::entries_bytes() const {
    return size_t(set_count_) * ways * sizeof(Entry);
}

StoredResponses::Entry* StoredResponses::set_of(std::string_view id) const {
    return entries_ + (id_hash(id) % set_count_) * ways;
}

void StoredResponses::put(std::string_view id, int64_t key_id, int64_t channel_id,
                          std::string_view model_sent) {
    if (!stored_response_id_valid(id)) {
        return;
    }
    const std::lock_guard lock(mutex_);
    Entry* set = set_of(id);
    Entry* target = &set[0];
    for (uint32_t way = 0; way < ways; way++) {
        Entry& entry = set[way];
        if (entry.stamp != 0 && std::string_view(entry.id, entry.id_bytes) == id) {
            target = &entry;  // The same id again (a reload's replay): refreshed in place.
            break;
        }
        if (entry.stamp < target->stamp) {
            target = &entry;  // Empty (0) or older.
        }
    }
    target->stamp = ++stamp_;
    target->key_id = key_id;
    target->channel_id = channel_id;
    target->id_bytes = static_cast<uint8_t>(id.size());
    std::memcpy(target->id, id.data(), id.size());
    const size_t model_bytes = std::min<size_t>(model_sent.size(), record_model_bytes_max);
    std::memcpy(target->model_sent, model_sent.data(), model_bytes);
    target->model_sent[model_bytes] = '\0';
}

bool StoredResponses::find(std::string_view id, StoredResponse& out,
                           char (&model_out)[record_model_bytes_max + 1]) const {
    if (!stored_response_id_valid(id)) {
        return false;
    }
    const std::lock_guard lock(mutex_);
    const Entry* set = set_of(id);
    for (uint32_t way = 0; way < ways; way++) {
        const Entry& entry = set[way];
        if (entry.stamp != 0 && std::string_view(entry.id, entry.id_bytes) == id) {
            std::memcpy(model_out, entry.model_sent, sizeof(model_out));
            out =
                StoredResponse{entry.key_id, entry.channel_id,
                               std::string_view(model_out, strnlen(model_out, sizeof(model_out)))};
            return true;
        }
    }
    return false;
}

void StoredResponses::forget(std::string_view id) {
    if (!stored_response_id_valid(id)) {
        return;
    }
    const std::lock_guard lock(mutex_);
    Entry* set = set_of(id);
    for (uint32_t way = 0; way < ways; way++) {
        if (set[way].stamp != 0 && std::string_view(set[way].id, set[way].id_bytes) == id) {
            set[way].stamp = 0;
        }
    }
}

bool stored_responses_load(const StorageConfig& storage, StoredResponses& table, uint32_t& loaded,
                           std::string& error) {
    loaded = 0;
    Db db;
    if (!db.open(storage, DbMode::read_only, error)) {
        return false;
    }
    Stmt stmt;
    if (!db.prepare("SELECT response_id, key_id, channel_id, model_sent FROM usage_logs"
                    " WHERE response_id != '' ORDER BY id DESC LIMIT ?1",
                    stmt)) {
        error = db.last_error();
        return false;
    }
    stmt.bind_int64(1, table.capacity());
    struct Row {
        std::string id;
        int64_t key_id;
        int64_t channel_id;
        std::string model_sent;
    };
    std::vector<Row> rows;
    for (;;) {
        const StepStatus status = stmt.step();
        if (status == StepStatus::error) {
            error = db.last_error();
            return false;
        }
        if (status == StepStatus::done) {
            break;
        }
        rows.push_back({std::string(stmt.column_text(0)), stmt.column_int64(1),
                        stmt.column_int64(2), std::string(stmt.column_text(3))});
    }
    stmt.reset();
    for (auto row = rows.rbegin(); row != rows.rend(); ++row) {
        table.put(row->id, row->key_id, row->channel_id, row->model_sent);
    }
    loaded = static_cast<uint32_t>(rows.size());
    return true;
}

Fault stored_response_admit(Gateway& gateway, ProxyRequest& request, const ParsedRequest& http) {
    RW_ASSERT(request.key_id != 0);  // admission_head found the key.
    Endpoint endpoint{};
    std::string_view id;
    const bool is_routed = stored_response_route(http.path, http.method, endpoint, id);
    RW_ASSERT(is_routed);  // on_head routed it.
    Arena& arena = client_arena(*request.conn);
    StoredResponse stored;
    char model[record_model_bytes_max + 1];
    const bool is_known = gateway.shared.stored_responses != nullptr &&
                          gateway.shared.stored_responses->find(id, stored, model) &&
                          stored.key_id == request.key_id;
    if (!is_known) {
        // Another key's id answers as an unknown one does: nothing tells them apart.
        char message[160];
        const int length =
            std::snprintf(message, sizeof(message), "Response with id '%.*s' not found.",
                          int(std::min<size_t>(id.size(), 64)), id.data());
        const char* copy = arena.copy({message, size_t(length > 0 ? length : 0)});
        request.fault_message = copy != nullptr ? std::string_view(copy, size_t(length)) : "";
        return Fault::client_response_not_found;
    }
    const Fault fault = admission_stored(gateway, request, http, stored.channel_id);
    if (fault != Fault::none) {
        return fault;
    }
    const char* model_copy = arena.copy(stored.model_sent);
    if (model_copy == nullptr && !stored.model_sent.empty()) {
        return Fault::local_out_of_memory;
    }
    request.model_requested = {model_copy, stored.model_sent.size()};
    request.candidates[0].model_sent = request.model_requested;
    return Fault::none;
}

void stored_response_pin(Gateway& gateway, ProxyRequest& request) {
    const std::string_view previous = request.fields.previous_response_id;
    if (request.endpoint != Endpoint::responses || previous.empty() ||
        gateway.shared.stored_responses == nullptr) {
        return;
    }
    StoredResponse stored;
    char model[record_model_bytes_max + 1];
    if (!gateway.shared.stored_responses->find(previous, stored, model) ||
        stored.key_id != request.key_id) {
        return;
    }
    for (uint32_t index = 0; index < request.candidate_count; index++) {
        const Candidate& candidate = request.candidates[index];
        if (candidate.channel_id != stored.channel_id || candidate.kind != ChannelKind::openai) {
            continue;
        }
        if (request.trial_channel_id != 0 && request.trial_channel_id != candidate.channel_id) {
            gateway.shared.health->trial_abandoned(request.trial_channel_id);
            request.trial_channel_id = 0;
        }
        request.candidates[0] = candidate;
        request.candidate_count = 1;
        return;
    }
}

void stored_response_learn(Gateway& gateway, const ProxyRequest& request, int64_t channel_id,
                           std::string_view model_sent) {
    if (request.endpoint == Endpoint::responses_delete && request.status_sent >= 200 &&
        request.status_sent < 300 && gateway.shared.stored_responses != nullptr) {
        Endpoint endpoint{};
        std::string_view id;
        if (stored_response_route(client_request(*request.conn).path, Method::delete_, endpoint,
                                  id)) {
            gateway.shared.stored_responses->forget(id);
        }
        return;
    }
    if (request.response_id.empty() || gateway.shared.stored_responses == nullptr) {
        return;
    }
    gateway.shared.stored_responses->put(request.response_id, request.key_id, channel_id,
                                         model_sent);
}

}  // namespace rw
