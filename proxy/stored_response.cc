// proxy/stored_response.cc — stored responses (see stored_response.h). Shard threads; the
// table is shared, each set under its own sequence word (a seqlock, no mutex).
#include "proxy/stored_response.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
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

namespace {

constexpr uint32_t words_of(uint32_t bytes) {
    return (bytes + 7) / 8;
}
constexpr uint32_t id_words = words_of(stored_response_id_bytes_max);
constexpr uint32_t model_words = words_of(record_model_bytes_max + 1);

uint64_t id_hash(std::string_view id) {
    uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a.
    for (const char c : id) {
        hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    }
    return hash;
}

// Every word of a set is read and written through atomic_ref (relaxed; the sequence word
// orders them), so a reader racing a writer reads stale or torn entries, never undefined
// behaviour, and throws them away when the sequence moved.
uint64_t word_load(const uint64_t& word) {
    return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(word)).load(std::memory_order_relaxed);
}

void word_store(uint64_t& word, uint64_t value) {
    std::atomic_ref<uint64_t>(word).store(value, std::memory_order_relaxed);
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// An id as the words an entry keeps it in (zero-padded), to compare word by word.
struct IdWords {
    uint64_t bytes;
    uint64_t words[id_words];
};

IdWords id_words_of(std::string_view id) {
    IdWords out{id.size(), {}};
    std::memcpy(out.words, id.data(), id.size());
    return out;
}

}  // namespace

struct StoredResponses::Set {
    // Even: stable; odd: a writer is in. Each write adds 2, so the value a write ends at
    // also orders the set's entries: it is the entry's stamp (0: empty).
    uint64_t sequence;
    struct Entry {
        uint64_t stamp;
        uint64_t key_id;
        uint64_t channel_id;
        uint64_t id_bytes;
        uint64_t id[id_words];
        uint64_t model_sent[model_words];  // NUL-terminated.

        [[nodiscard]] bool holds(const IdWords& key) const {
            if (word_load(stamp) == 0 || word_load(id_bytes) != key.bytes) {
                return false;
            }
            for (uint32_t i = 0; i < words_of(static_cast<uint32_t>(key.bytes)); i++) {
                if (word_load(id[i]) != key.words[i]) {
                    return false;
                }
            }
            return true;
        }
    } entries[ways];

    // The writer's side: waits for another writer of this set (a few dozen stores), then
    // makes the sequence odd. Returns the odd value; set_unlock publishes the next even one.
    uint64_t lock() {
        std::atomic_ref<uint64_t> word(sequence);
        for (;;) {
            uint64_t seen = word.load(std::memory_order_relaxed);
            if ((seen & 1) == 0 &&
                word.compare_exchange_weak(seen, seen + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
                // The odd sequence is seen before any entry store (pairs with the reader's
                // acquire fence in read()).
                std::atomic_thread_fence(std::memory_order_release);
                return seen + 1;
            }
            cpu_relax();
        }
    }
    void unlock(uint64_t odd) {
        RW_ASSERT((odd & 1) == 1);
        std::atomic_ref<uint64_t>(sequence).store(odd + 1, std::memory_order_release);
    }

    // The reader's side: runs `copy` (which reads entries into the caller's locals) until
    // no writer was in the set meanwhile; returns its last result.
    template <class Copy>
    bool read(Copy copy) const {
        std::atomic_ref<uint64_t> word(const_cast<uint64_t&>(sequence));
        for (;;) {
            const uint64_t before = word.load(std::memory_order_acquire);
            if ((before & 1) == 1) {
                cpu_relax();
                continue;
            }
            const bool result = copy();
            std::atomic_thread_fence(std::memory_order_acquire);
            if (word.load(std::memory_order_relaxed) == before) {
                return result;
            }
        }
    }
};

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
    // Anonymous zero pages, resident only once written (an all-zero set is stable and
    // empty). Not calloc: the allocator zeroed the block itself, and an idle gateway held
    // all ~6 MiB.
    void* pages = ::mmap(nullptr, sets_bytes(), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    RW_ASSERT(pages != MAP_FAILED);  // Startup only: address space, not memory.
    sets_ = static_cast<Set*>(pages);
}

StoredResponses::~StoredResponses() {
    ::munmap(sets_, sets_bytes());
}

size_t StoredResponses::sets_bytes() const {
    return size_t(set_count_) * sizeof(Set);
}

StoredResponses::Set& StoredResponses::set_of(std::string_view id) const {
    return sets_[id_hash(id) % set_count_];
}

void StoredResponses::put(std::string_view id, int64_t key_id, int64_t channel_id,
                          std::string_view model_sent) {
    if (!stored_response_id_valid(id)) {
        return;
    }
    const IdWords key = id_words_of(id);
    uint64_t model[model_words] = {};
    std::memcpy(model, model_sent.data(),
                std::min<size_t>(model_sent.size(), record_model_bytes_max));
    Set& set = set_of(id);
    const uint64_t odd = set.lock();
    Set::Entry* target = &set.entries[0];
    for (Set::Entry& entry : set.entries) {
        if (entry.holds(key)) {
            target = &entry;  // The same id again (a reload's replay): refreshed in place.
            break;
        }
        if (word_load(entry.stamp) < word_load(target->stamp)) {
            target = &entry;  // Empty (0) or older.
        }
    }
    word_store(target->stamp, odd + 1);
    word_store(target->key_id, static_cast<uint64_t>(key_id));
    word_store(target->channel_id, static_cast<uint64_t>(channel_id));
    word_store(target->id_bytes, key.bytes);
    for (uint32_t i = 0; i < id_words; i++) {
        word_store(target->id[i], key.words[i]);
    }
    for (uint32_t i = 0; i < model_words; i++) {
        word_store(target->model_sent[i], model[i]);
    }
    set.unlock(odd);
}

bool StoredResponses::find(std::string_view id, StoredResponse& out,
                           char (&model_out)[record_model_bytes_max + 1]) const {
    if (!stored_response_id_valid(id)) {
        return false;
    }
    static_assert(sizeof(model_out) == model_words * 8);
    const IdWords key = id_words_of(id);
    const Set& set = set_of(id);
    uint64_t key_id = 0;
    uint64_t channel_id = 0;
    uint64_t model[model_words];
    const bool is_found = set.read([&] {
        for (const Set::Entry& entry : set.entries) {
            if (entry.holds(key)) {
                key_id = word_load(entry.key_id);
                channel_id = word_load(entry.channel_id);
                for (uint32_t i = 0; i < model_words; i++) {
                    model[i] = word_load(entry.model_sent[i]);
                }
                return true;
            }
        }
        return false;
    });
    if (!is_found) {
        return false;
    }
    std::memcpy(model_out, model, sizeof(model_out));
    model_out[record_model_bytes_max] = '\0';
    out = StoredResponse{static_cast<int64_t>(key_id), static_cast<int64_t>(channel_id),
                         std::string_view(model_out, strnlen(model_out, sizeof(model_out)))};
    return true;
}

void StoredResponses::forget(std::string_view id) {
    if (!stored_response_id_valid(id)) {
        return;
    }
    const IdWords key = id_words_of(id);
    Set& set = set_of(id);
    const uint64_t odd = set.lock();
    for (Set::Entry& entry : set.entries) {
        if (entry.holds(key)) {
            word_store(entry.stamp, 0);
        }
    }
    set.unlock(odd);
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
