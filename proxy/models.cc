// proxy/models.cc — GET /v1/models (see models.h): each model once, the first
// models_listed_max distinct names of at most model_name_bytes_max bytes, sized by a first
// pass and written by a second, so the JSON is never cut short.
#include "proxy/models.h"

#include <cstring>

#include "core/text.h"
#include "proxy/gateway.h"
#include "proxy/request.h"

namespace rw {
namespace {

// Writes the list into out (nullptr: only counts); returns the bytes it takes.
uint32_t models_write(const Snapshot& snapshot, const KeyEntry& key, char* out) {
    uint32_t used = 0;
    auto put = [&](std::string_view text) {
        if (out != nullptr) {
            std::memcpy(out + used, text.data(), text.size());
        }
        used += static_cast<uint32_t>(text.size());
    };
    auto put_escaped = [&](std::string_view text) {
        char escaped[model_name_bytes_max * 6];
        const char* end = json_escape_write(escaped, text);
        put({escaped, static_cast<size_t>(end - escaped)});
    };
    put("{\"object\":\"list\",\"data\":[");
    uint32_t listed = 0;
    std::string_view seen[models_listed_max];
    for (const ChannelEntry& channel : snapshot.channels()) {
        if (!channel.is_enabled) {
            continue;
        }
        for (const std::string& model : channel.models) {
            if (!key.allows_model(model) || model.size() > model_name_bytes_max) {
                continue;
            }
            bool is_duplicate = false;
            for (uint32_t i = 0; i < listed; i++) {
                is_duplicate = is_duplicate || seen[i] == model;
            }
            if (is_duplicate || listed == models_listed_max) {
                continue;
            }
            put(listed == 0 ? "{\"id\":\"" : ",{\"id\":\"");
            seen[listed++] = model;
            put_escaped(model);
            put("\",\"object\":\"model\",\"created\":0,\"owned_by\":\"");
            put_escaped(std::string_view(channel.name).substr(0, model_name_bytes_max));
            put("\"}");
        }
    }
    put("]}");
    return used;
}

}  // namespace

void models_serve(Gateway& gateway, ProxyRequest& request) {
    SnapshotPublisher& publisher = *gateway.shared.snapshots;
    const Snapshot* snapshot = publisher.acquire(gateway.shard.index());
    const KeyEntry* key = snapshot != nullptr ? snapshot->find_key_by_id(request.key_id) : nullptr;
    char* out = nullptr;
    uint32_t length = 0;
    if (key != nullptr) {
        length = models_write(*snapshot, *key, nullptr);  // Sizing pass.
        out = static_cast<char*>(client_arena(*request.conn).alloc(length, 1));
    }
    if (out == nullptr) {
        publisher.quiesce(gateway.shard.index());
        request_finish(gateway, request, Fault::local_out_of_memory);
        return;
    }
    [[maybe_unused]] const uint32_t written = models_write(*snapshot, *key, out);
    RW_ASSERT(written == length);
    publisher.quiesce(gateway.shard.index());
    request.is_response_started = true;
    char id_header[request_id_header_bytes_max];
    client_respond(*request.conn, {200,
                                   "application/json",
                                   {out, length},
                                   request_id_header(id_header, request.request_id),
                                   false});
    request_finish(gateway, request, Fault::none);
}

}  // namespace rw
