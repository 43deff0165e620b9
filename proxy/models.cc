// proxy/models.cc — GET /v1/models (see models.h): each name once, the first
// models_listed_max distinct names of at most model_name_bytes_max bytes — every enabled
// channel's listed models (ChannelEntry::listed_models, computed at snapshot load), then the
// aliases — that the key may use. Collected once into views of the held snapshot, then sized
// and written, so the JSON is never cut short.
#include "proxy/models.h"

#include <cstring>

#include "core/text.h"
#include "proxy/gateway.h"
#include "proxy/request.h"

namespace rw {
namespace {

struct ListedModel {
    std::string_view id;
    std::string_view owner;  // The channel's name, or "ringway" for an alias.
};

struct ModelList {
    ListedModel models[models_listed_max];
    uint32_t count = 0;

    void add(std::string_view id, std::string_view owner) {
        if (count == models_listed_max || id.size() > model_name_bytes_max) {
            return;
        }
        for (uint32_t i = 0; i < count; i++) {
            if (models[i].id == id) {
                return;
            }
        }
        models[count++] = {id, owner.substr(0, model_name_bytes_max)};
    }
};

void models_collect(const Snapshot& snapshot, const KeyEntry& key, ModelList& list) {
    for (const ChannelEntry& channel : snapshot.channels()) {
        if (!channel.is_enabled) {
            continue;
        }
        for (const std::string& model : channel.listed_models) {
            if (key.allows_model(model)) {
                list.add(model, channel.name);
            }
        }
    }
    for (const AliasEntry& alias : snapshot.aliases()) {
        for (const std::string& model : alias.models) {
            if (key.allows_model(model)) {  // As admission allows an alias.
                list.add(alias.name, "ringway");
                break;
            }
        }
    }
}

// Writes the list into out (nullptr: only counts) in OpenAI's shape, or Anthropic's
// ({"data":[{"type":"model",...}],"has_more":false,"first_id","last_id"}); returns the bytes.
uint32_t models_write(const ModelList& list, bool is_anthropic, char* out) {
    uint32_t used = 0;
    auto put = [&](std::string_view text) {
        if (out != nullptr) {
            std::memcpy(out + used, text.data(), text.size());
        }
        used += static_cast<uint32_t>(text.size());
    };
    auto put_string = [&](std::string_view text) {
        char escaped[model_name_bytes_max * 6 + 2];
        escaped[0] = '"';
        char* end = json_escape_write(escaped + 1, text);
        *end++ = '"';
        put({escaped, static_cast<size_t>(end - escaped)});
    };
    put(is_anthropic ? "{\"data\":[" : "{\"object\":\"list\",\"data\":[");
    for (uint32_t i = 0; i < list.count; i++) {
        const ListedModel& model = list.models[i];
        put(i == 0 ? "{" : ",{");
        if (is_anthropic) {
            put("\"type\":\"model\",\"id\":");
            put_string(model.id);
            put(",\"display_name\":");
            put_string(model.id);
            put(",\"created_at\":\"1970-01-01T00:00:00Z\"}");
        } else {
            put("\"id\":");
            put_string(model.id);
            put(",\"object\":\"model\",\"created\":0,\"owned_by\":");
            put_string(model.owner);
            put("}");
        }
    }
    put("]");
    if (is_anthropic) {
        put(",\"has_more\":false,\"first_id\":");
        list.count == 0 ? put("null") : put_string(list.models[0].id);
        put(",\"last_id\":");
        list.count == 0 ? put("null") : put_string(list.models[list.count - 1].id);
    }
    put("}");
    return used;
}

}  // namespace

void models_serve(Gateway& gateway, ProxyRequest& request, bool is_anthropic) {
    SnapshotPublisher& publisher = *gateway.shared.snapshots;
    const Snapshot* snapshot = publisher.acquire(gateway.shard.index());
    const KeyEntry* key = snapshot != nullptr ? snapshot->find_key_by_id(request.key_id) : nullptr;
    ModelList list;  // Views into the snapshot: used before quiesce.
    char* out = nullptr;
    uint32_t length = 0;
    if (key != nullptr) {
        models_collect(*snapshot, *key, list);
        length = models_write(list, is_anthropic, nullptr);  // Sizing pass.
        out = static_cast<char*>(client_arena(*request.conn).alloc(length, 1));
    }
    if (out == nullptr) {
        publisher.quiesce(gateway.shard.index());
        request_finish(gateway, request, Fault::local_out_of_memory);
        return;
    }
    [[maybe_unused]] const uint32_t written = models_write(list, is_anthropic, out);
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
