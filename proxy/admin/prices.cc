// proxy/admin/prices.cc — /admin/prices: the price versions the data plane prices usage
// rows with (storage/prices.h). USD travels as decimal strings ("0.15") and is parsed
// exactly into nano-USD integers; nothing here is floating point. A version is never
// edited in place: PATCH makes a new version of the same model and channel, in force from
// its effective_from, so the rows an old version priced keep pointing at the rates they
// were charged; DELETE marks a version deleted (it prices nothing afterwards). Writes go
// through Catalog (snapshot reloaded before the reply).
#include "proxy/admin/handlers.h"

#include <ctime>
#include <string>
#include <vector>

#include "core/assert.h"
#include "core/limits.h"
#include "core/log.h"
#include "proxy/admin/json.h"
#include "proxy/admin/routes.h"
#include "storage/keys.h"
#include "storage/queries.h"

namespace rw {

namespace ondemand = simdjson::ondemand;

namespace {

// The members of a price body; has_* says the member was present.
struct PriceFields {
    bool has_model = false;
    bool has_channel_id = false;
    bool has_input = false;
    bool has_output = false;
    bool has_cached_input = false;
    bool has_cache_write = false;
    bool has_reasoning = false;
    bool has_per_request = false;
    bool has_effective_from = false;
    PriceSpec spec;  // Values of the members present (nullable rates: spec.has_*).
};

// A nullable rate: a USD string, or null for "no rate of its own" (its parent's rate).
bool price_rate_read(ondemand::value& value, std::string_view field, bool& has_rate, int64_t& rate,
                     std::string& error) {
    has_rate = !json_is_null(value);
    rate = 0;
    return !has_rate || json_read_usd(value, field, price_per_mtok_nano_max, rate, error);
}

bool price_field_read(PriceFields& fields, std::string_view key, ondemand::value& value,
                      std::string& error) {
    PriceSpec& spec = fields.spec;
    if (key == "model") {
        fields.has_model = true;
        return json_read_string(value, key, spec.model, error);
    }
    if (key == "channel_id") {
        fields.has_channel_id = true;
        spec.channel_id = 0;
        return json_is_null(value) ||
               json_read_int(value, key, 1, INT64_MAX, spec.channel_id, error);
    }
    if (key == "input_per_mtok") {
        fields.has_input = true;
        return json_read_usd(value, key, price_per_mtok_nano_max, spec.input_per_mtok, error);
    }
    if (key == "output_per_mtok") {
        fields.has_output = true;
        return json_read_usd(value, key, price_per_mtok_nano_max, spec.output_per_mtok, error);
    }
    if (key == "cached_input_per_mtok") {
        fields.has_cached_input = true;
        return price_rate_read(value, key, spec.has_cached_input, spec.cached_input_per_mtok,
                               error);
    }
    if (key == "cache_write_per_mtok") {
        fields.has_cache_write = true;
        return price_rate_read(value, key, spec.has_cache_write, spec.cache_write_per_mtok, error);
    }
    if (key == "reasoning_per_mtok") {
        fields.has_reasoning = true;
        return price_rate_read(value, key, spec.has_reasoning, spec.reasoning_per_mtok, error);
    }
    if (key == "per_request") {
        fields.has_per_request = true;
        return json_read_usd(value, key, price_per_request_nano_max, spec.per_request, error);
    }
    if (key == "effective_from") {
        fields.has_effective_from = true;
        return json_read_int(value, key, 0, 253402300799, spec.effective_from_s, error);
    }
    return json_unknown_field(key, error);
}

// Copies the members present in `fields` over `spec` (a PATCH's base version).
void price_fields_apply(const PriceFields& fields, PriceSpec& spec) {
    const PriceSpec& given = fields.spec;
    if (fields.has_input) {
        spec.input_per_mtok = given.input_per_mtok;
    }
    if (fields.has_output) {
        spec.output_per_mtok = given.output_per_mtok;
    }
    if (fields.has_cached_input) {
        spec.has_cached_input = given.has_cached_input;
        spec.cached_input_per_mtok = given.cached_input_per_mtok;
    }
    if (fields.has_cache_write) {
        spec.has_cache_write = given.has_cache_write;
        spec.cache_write_per_mtok = given.cache_write_per_mtok;
    }
    if (fields.has_reasoning) {
        spec.has_reasoning = given.has_reasoning;
        spec.reasoning_per_mtok = given.reasoning_per_mtok;
    }
    if (fields.has_per_request) {
        spec.per_request = given.per_request;
    }
}

// A new version without effective_from is in force from the next whole second: no request
// that started before the write can be priced by it.
int64_t price_default_effective_from_s() {
    return int64_t(std::time(nullptr)) + 1;
}

void json_out_rate(JsonOut& out, std::string_view name, bool has_rate, int64_t rate) {
    out.key(name);
    has_rate ? out.string(json_usd(rate)) : out.null();
}

void json_out_price(JsonOut& out, const PriceInfo& price) {
    out.begin_object();
    out.key("id").number(price.id).key("object").string("price");
    out.key("model").string(price.model).key("channel_id");
    price.channel_id != 0 ? out.number(price.channel_id) : out.null();
    json_out_rate(out, "input_per_mtok", true, price.input_per_mtok);
    json_out_rate(out, "output_per_mtok", true, price.output_per_mtok);
    json_out_rate(out, "cached_input_per_mtok", price.has_cached_input,
                  price.cached_input_per_mtok);
    json_out_rate(out, "cache_write_per_mtok", price.has_cache_write, price.cache_write_per_mtok);
    json_out_rate(out, "reasoning_per_mtok", price.has_reasoning, price.reasoning_per_mtok);
    json_out_rate(out, "per_request", true, price.per_request);
    out.key("effective_from").number(price.effective_from_s);
    out.key("created_at").number(price.created_at_s).key("deleted_at");
    price.deleted_at_s != 0 ? out.number(price.deleted_at_s) : out.null();
    out.end_object();
}

AdminReply price_reply(AdminDeps& deps, int64_t id, uint16_t status) {
    const Result<PriceInfo> price = deps.queries.get_price(id);
    if (!price.ok()) {
        return admin_reply_storage_error(price.error);
    }
    JsonOut out;
    json_out_price(out, price.value);
    return admin_reply_json(status, out.take());
}

// Writes a checked spec as a new version; 201 with it, or the refusal.
AdminReply price_create(AdminDeps& deps, const PriceSpec& spec) {
    const std::string error = price_spec_check(spec);
    if (!error.empty()) {
        return admin_reply_error(400, "invalid_field", error);
    }
    if (spec.channel_id != 0 && !deps.queries.get_channel(spec.channel_id).ok()) {
        return admin_reply_error(
            400, "invalid_field",
            "channel_id: no channel with id " + std::to_string(spec.channel_id));
    }
    const Result<int64_t> created = deps.catalog.create_price(spec);
    if (!created.ok()) {
        return admin_reply_storage_error(created.error);
    }
    RW_LOG_INFO(
        "event=admin_price_created id=%lld model=\"%s\" channel_id=%lld effective_from=%lld",
        (long long)created.value, spec.model.c_str(), (long long)spec.channel_id,
        (long long)spec.effective_from_s);
    return price_reply(deps, created.value, 201);
}

}  // namespace

AdminReply admin_prices_create(AdminDeps& deps, const AdminRequest& request) {
    PriceFields fields;
    AdminReply reply;
    if (!admin_parse_fields(deps, request.body, fields, price_field_read, reply)) {
        return reply;
    }
    for (const auto& [is_present, name] :
         {std::pair{fields.has_model, "model"}, std::pair{fields.has_input, "input_per_mtok"},
          std::pair{fields.has_output, "output_per_mtok"}}) {
        if (!is_present) {
            return admin_reply_error(400, "missing_field", std::string(name) + " is required");
        }
    }
    PriceSpec spec = fields.spec;
    if (!fields.has_effective_from) {
        spec.effective_from_s = price_default_effective_from_s();
    }
    return price_create(deps, spec);
}

AdminReply admin_prices_list(AdminDeps& deps, const AdminRequest& request) {
    AdminReply reply;
    std::string unknown;
    if (!admin_query_names_known(request.query, {"all"}, unknown)) {
        return admin_reply_error(400, "invalid_parameter", "unknown parameter \"" + unknown + "\"");
    }
    int64_t all = 0;
    if (!admin_query_int(request.query, "all", 0, 1, all, reply)) {
        return reply;
    }
    const Result<std::vector<PriceInfo>> prices = deps.queries.list_prices(all == 1);
    if (!prices.ok()) {
        return admin_reply_storage_error(prices.error);
    }
    JsonOut out;
    out.begin_object().key("object").string("list").key("data").begin_array();
    for (const PriceInfo& price : prices.value) {
        json_out_price(out, price);
    }
    out.end_array().end_object();
    return admin_reply_json(200, out.take());
}

AdminReply admin_prices_get(AdminDeps& deps, const AdminRequest& request) {
    return price_reply(deps, request.id, 200);
}

// A new version of price {id}: the same model and channel, the members given changed, in
// force from effective_from (default: the next second). 201 with the new version; {id}
// stays as it was for the rows it priced and requests that started before.
AdminReply admin_prices_patch(AdminDeps& deps, const AdminRequest& request) {
    PriceFields fields;
    AdminReply reply;
    if (!admin_parse_fields(deps, request.body, fields, price_field_read, reply)) {
        return reply;
    }
    if (fields.has_model || fields.has_channel_id) {
        return admin_reply_error(400, "invalid_field",
                                 "a price's model and channel_id are fixed; POST /admin/prices "
                                 "for another model or channel");
    }
    const Result<PriceInfo> base = deps.queries.get_price(request.id);
    if (!base.ok()) {
        return admin_reply_storage_error(base.error);
    }
    if (base.value.deleted_at_s != 0) {
        return admin_reply_error(404, "not_found",
                                 "price " + std::to_string(request.id) + " is deleted");
    }
    const PriceInfo& info = base.value;
    PriceSpec spec;
    spec.model = info.model;
    spec.channel_id = info.channel_id;
    spec.input_per_mtok = info.input_per_mtok;
    spec.output_per_mtok = info.output_per_mtok;
    spec.has_cached_input = info.has_cached_input;
    spec.cached_input_per_mtok = info.cached_input_per_mtok;
    spec.has_cache_write = info.has_cache_write;
    spec.cache_write_per_mtok = info.cache_write_per_mtok;
    spec.has_reasoning = info.has_reasoning;
    spec.reasoning_per_mtok = info.reasoning_per_mtok;
    spec.per_request = info.per_request;
    price_fields_apply(fields, spec);
    spec.effective_from_s =
        fields.has_effective_from ? fields.spec.effective_from_s : price_default_effective_from_s();
    return price_create(deps, spec);
}

AdminReply admin_prices_delete(AdminDeps& deps, const AdminRequest& request) {
    std::string error;
    if (!deps.catalog.delete_price(request.id, error)) {
        return admin_reply_storage_error(error);
    }
    RW_LOG_INFO("event=admin_price_deleted id=%lld", (long long)request.id);
    return price_reply(deps, request.id, 200);
}

}  // namespace rw
