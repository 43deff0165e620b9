// storage/keys.cc — key secrets (getrandom + SHA-256), spec validation, and the
// key/channel/price writes that run on the writer thread through Writer::execute. Control
// plane only. Secrets never appear in errors or logs.
#include "storage/keys.h"

#include <openssl/sha.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "core/assert.h"
#include "core/wall_clock.h"
#include "storage/catalog_listener.h"
#include "storage/json_lite.h"
#include "storage/model_pattern.h"
#include "storage/secrets.h"

namespace rw {

KeyHash key_hash(std::string_view secret) {
    KeyHash hash{};
    // Runs on the request path (every authenticated request). OpenSSL 3's one-shot
    // SHA256() goes through EVP_Q_digest, which fetches the digest and allocates a context
    // (three heap allocations per call, measured). The low-level API keeps its context on
    // the stack and allocates nothing; it is deprecated in 3.0 but present and equivalent.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, secret.data(), secret.size());
    SHA256_Final(hash.data(), &context);
#pragma GCC diagnostic pop
    return hash;
}

namespace {

constexpr char base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void base64url_append(const uint8_t* bytes, uint32_t count, std::string& out) {
    uint32_t index = 0;
    for (; index + 3 <= count; index += 3) {
        const uint32_t v =
            uint32_t(bytes[index]) << 16 | uint32_t(bytes[index + 1]) << 8 | bytes[index + 2];
        out.push_back(base64url_alphabet[(v >> 18) & 63]);
        out.push_back(base64url_alphabet[(v >> 12) & 63]);
        out.push_back(base64url_alphabet[(v >> 6) & 63]);
        out.push_back(base64url_alphabet[v & 63]);
    }
    const uint32_t rest = count - index;
    if (rest == 1) {
        const uint32_t v = uint32_t(bytes[index]) << 16;
        out.push_back(base64url_alphabet[(v >> 18) & 63]);
        out.push_back(base64url_alphabet[(v >> 12) & 63]);
    } else if (rest == 2) {
        const uint32_t v = uint32_t(bytes[index]) << 16 | uint32_t(bytes[index + 1]) << 8;
        out.push_back(base64url_alphabet[(v >> 18) & 63]);
        out.push_back(base64url_alphabet[(v >> 12) & 63]);
        out.push_back(base64url_alphabet[(v >> 6) & 63]);
    }
}

int64_t unix_now_s() {
    return int64_t(std::time(nullptr));
}

bool is_visible_ascii(std::string_view text) {
    for (const char c : text) {
        if (c <= 0x20 || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool key_secret_generate(std::string& secret, std::string& error) {
    uint8_t random[key_secret_random_bytes];
    uint32_t filled = 0;
    while (filled < sizeof(random)) {
        // getrandom from the urandom pool blocks only before the pool is initialised and
        // returns at most 256 bytes per call without being interrupted [getrandom(2)].
        const ssize_t got = ::getrandom(random + filled, sizeof(random) - filled, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            error = std::string("getrandom: ") + std::strerror(errno);
            return false;
        }
        filled += uint32_t(got);
    }
    secret.assign(key_secret_prefix);
    base64url_append(random, sizeof(random), secret);
    std::memset(random, 0, sizeof(random));
    RW_ASSERT(secret.size() == key_secret_bytes);
    return true;
}

std::string key_display_prefix(std::string_view secret) {
    if (secret.starts_with(key_secret_prefix) && secret.size() == key_secret_bytes) {
        return std::string(secret.substr(0, key_display_prefix_bytes));
    }
    // Imported secrets: at most a quarter of the secret, and never more than 8 bytes.
    const size_t shown = std::min<size_t>(8, secret.size() / 4);
    return std::string(secret.substr(0, shown)) + "...";
}

namespace {

// Each entry a name or "prefix*" pattern (model_pattern.h); empty when all are.
std::string model_list_check(const std::vector<std::string>& models) {
    for (const std::string& model : models) {
        if (const std::string why = model_pattern_check(model, price_model_bytes_max);
            !why.empty()) {
            return model_pattern_why(model, why);
        }
    }
    return {};
}

}  // namespace

std::string key_spec_check(const KeySpec& spec) {
    if (spec.name.empty() || spec.name.size() > 200) {
        return "key name must be 1..200 bytes";
    }
    if (spec.has_quota_limit && spec.quota_limit_tokens < 0) {
        return "quota_limit must be >= 0";
    }
    if (spec.expires_at_s < 0) {
        return "expires_at must be >= 0";
    }
    if (spec.has_budget && (spec.budget_nano < 0 || spec.budget_nano > budget_amount_max)) {
        return "budget_usd must be between 0 and 2251799.813685247";
    }
    if (spec.period != BudgetPeriod::none && spec.has_quota_limit &&
        spec.quota_limit_tokens > budget_amount_max) {
        return "quota_tokens over a period must be at most 2251799813685247";
    }
    if (!spec.allows_all_models) {
        std::vector<std::string> models;
        std::string error;
        if (!json_parse_string_array(spec.models_json, models, error)) {
            return "models: " + error;
        }
        if (const std::string why = model_list_check(models); !why.empty()) {
            return "models: " + why;
        }
    }
    if (!spec.allowed_cidrs_json.empty()) {
        std::vector<Cidr> cidrs;
        std::string error;
        if (!key_cidrs_parse(spec.allowed_cidrs_json, cidrs, error)) {
            return "allowed_cidrs: " + error;
        }
    }
    if (!spec.limits_json.empty()) {
        std::vector<ModelLimitSpec> limits;
        std::string error;
        if (!json_parse_model_limits(spec.limits_json, limits, error)) {
            return "limits: " + error;
        }
    }
    return {};
}

std::string channel_spec_check(const ChannelSpec& spec) {
    if (spec.name.empty() || spec.name.size() > 200) {
        return "channel name must be 1..200 bytes";
    }
    const std::string_view url = spec.base_url;
    if (!url.starts_with("http://") && !url.starts_with("https://")) {
        return "base_url must start with http:// or https://";
    }
    if (url.size() > 2048 || !is_visible_ascii(url)) {
        return "base_url is not a valid URL";
    }
    if (spec.api_key.empty() || spec.api_key.size() > 4096 || !is_visible_ascii(spec.api_key)) {
        return "api_key must be 1..4096 visible ASCII bytes";
    }
    std::vector<std::string> models;
    std::vector<std::pair<std::string, std::string>> model_map;
    std::string error;
    if (!json_parse_string_array(spec.models_json, models, error)) {
        return "models: " + error;
    }
    if (!json_parse_string_map(spec.model_map_json, model_map, error)) {
        return "model_map: " + error;
    }
    if (const std::string why = model_list_check(models); !why.empty()) {
        return "models: " + why;
    }
    for (const auto& [from, to] : model_map) {
        std::string why = model_pattern_check(from, price_model_bytes_max);
        if (why.empty()) {
            why = model_pattern_check(to, price_model_bytes_max);
            if (why.empty() && to.ends_with('*')) {
                why = "must map to a concrete model, not a pattern";
            }
        }
        if (!why.empty()) {
            return "model_map: " + model_pattern_why(from, why);
        }
    }
    if (spec.weight > 1000000) {
        return "weight must be <= 1000000";
    }
    return {};
}

// ---- Writes (run on the writer thread) -------------------------------------------------

namespace {

struct KeyWrite {
    const KeySpec* spec;
    const KeyHash* hash;  // Insert only.
    std::string_view key_prefix;
    int64_t id;  // In: update/revoke target. Out: inserted id.
};

void key_bind_spec(Stmt& stmt, const KeySpec& spec) {
    stmt.bind_text(1, spec.name);
    stmt.bind_int64_or_null(2, spec.quota_limit_tokens, !spec.has_quota_limit);
    stmt.bind_int64_or_null(3, spec.expires_at_s, spec.expires_at_s == 0);
    stmt.bind_text_or_null(4, spec.models_json, spec.allows_all_models);
    stmt.bind_int64(5, spec.rpm);
    stmt.bind_int64(6, spec.concurrency_max);
    stmt.bind_text_or_null(7, spec.allowed_cidrs_json, spec.allowed_cidrs_json.empty());
    stmt.bind_int64(8, spec.tpm);
    stmt.bind_text_or_null(9, spec.limits_json, spec.limits_json.empty());
    stmt.bind_int64_or_null(13, spec.budget_nano, !spec.has_budget);
    stmt.bind_text(14, budget_period_name(spec.period));
    stmt.bind_int64(15, spec.is_strict ? 1 : 0);
}

// Steps an INSERT ... RETURNING id (SQLite 3.35+ and PostgreSQL alike: no rowid call that
// only one of them has). False when it failed or inserted nothing (then `error` names
// what, id when an INSERT ... SELECT found no row).
bool step_returning_id(Stmt& stmt, int64_t& id, const char* what, int64_t what_id,
                       std::string& error) {
    const StepStatus status = stmt.step();
    if (status == StepStatus::error) {
        return false;
    }
    if (status == StepStatus::done) {
        error = std::string("no ") + what + " with id " + std::to_string(what_id);
        return false;
    }
    id = stmt.column_int64(0);
    stmt.reset();
    return true;
}

bool key_insert(Db& db, void* context, std::string& error) {
    KeyWrite& write = *static_cast<KeyWrite*>(context);
    Stmt stmt;
    if (!db.prepare("INSERT INTO keys (name, quota_limit, expires_at, models, rpm,"
                    " max_concurrency, allowed_cidrs, tpm, limits, key_hash, key_prefix, status,"
                    " quota_used, created_at, budget_nano, budget_period, strict)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'active', 0, ?12, ?13,"
                    " ?14, ?15) RETURNING id",
                    stmt)) {
        return false;
    }
    key_bind_spec(stmt, *write.spec);
    stmt.bind_blob(10, *write.hash);
    stmt.bind_text(11, write.key_prefix);
    stmt.bind_int64(12, unix_now_s());
    if (!step_returning_id(stmt, write.id, "key", 0, error)) {
        // A UNIQUE violation on key_hash means this secret is already stored; say so
        // without echoing anything about it.
        if (db.last_error_kind() == DbErrorKind::constraint) {
            error = "key already exists";
        }
        return false;
    }
    return true;
}

// Steps an UPDATE or DELETE of one row by id: "no <what> with id N" when none matched
// (the admin API turns that into 404).
bool step_one_row(Db& db, Stmt& stmt, const char* what, int64_t id, std::string& error) {
    if (!db.step_done(stmt)) {
        return false;
    }
    if (db.changes() == 0) {
        error = std::string("no ") + what + " with id " + std::to_string(id);
        return false;
    }
    return true;
}

bool key_update(Db& db, void* context, std::string& error) {
    KeyWrite& write = *static_cast<KeyWrite*>(context);
    Stmt stmt;
    if (!db.prepare("UPDATE keys SET name = ?1, quota_limit = ?2, expires_at = ?3, models = ?4,"
                    " rpm = ?5, max_concurrency = ?6, allowed_cidrs = ?7, tpm = ?8, limits = ?9,"
                    " budget_nano = ?13, budget_period = ?14, strict = ?15 WHERE id = ?10",
                    stmt)) {
        return false;
    }
    key_bind_spec(stmt, *write.spec);
    stmt.bind_int64(10, write.id);
    return step_one_row(db, stmt, "key", write.id, error);
}

bool key_revoke(Db& db, void* context, std::string& error) {
    KeyWrite& write = *static_cast<KeyWrite*>(context);
    Stmt stmt;
    if (!db.prepare("UPDATE keys SET status = 'revoked' WHERE id = ?1", stmt)) {
        return false;
    }
    stmt.bind_int64(1, write.id);
    return step_one_row(db, stmt, "key", write.id, error);
}

struct TopupWrite {
    const TopupSpec* spec;
    int64_t id;  // Out: the row's id.
};

bool key_topup_insert(Db& db, void* context, std::string& error) {
    TopupWrite& write = *static_cast<TopupWrite*>(context);
    const TopupSpec& spec = *write.spec;
    Stmt stmt;
    if (!db.prepare("INSERT INTO key_topups (key_id, amount_nano, reason, actor, created_at)"
                    " SELECT id, ?2, ?3, ?4, ?5 FROM keys WHERE id = ?1 RETURNING id",
                    stmt)) {
        return false;
    }
    stmt.bind_int64(1, spec.key_id);
    stmt.bind_int64(2, spec.amount_nano);
    stmt.bind_text(3, spec.reason);
    stmt.bind_text(4, spec.actor);
    stmt.bind_int64(5, wall_clock_unix_ms() / 1000);
    return step_returning_id(stmt, write.id, "key", spec.key_id, error);
}

struct ChannelWrite {
    const ChannelSpec* spec;
    int64_t id;
};

void channel_bind_spec(Stmt& stmt, const ChannelSpec& spec) {
    stmt.bind_text(1, spec.name);
    stmt.bind_text(2, channel_kind_name(spec.kind));
    stmt.bind_text(3, spec.base_url);
    stmt.bind_text(4, spec.api_key);
    stmt.bind_text(5, spec.models_json);
    stmt.bind_text(6, spec.model_map_json);
    stmt.bind_int64(7, spec.priority);
    stmt.bind_int64(8, spec.weight);
    stmt.bind_int64(9, spec.is_enabled ? 1 : 0);
    stmt.bind_int64(10, spec.allow_private_network ? 1 : 0);
    stmt.bind_text_or_null(11, spec.ca_file, spec.ca_file.empty());
    stmt.bind_text(12, stream_usage_name(spec.stream_usage));
    stmt.bind_int64(13, spec.auto_disable ? 1 : 0);
    stmt.bind_text(15, spec.probe_model);
}

bool channel_insert(Db& db, void* context, std::string& error) {
    ChannelWrite& write = *static_cast<ChannelWrite*>(context);
    Stmt stmt;
    if (!db.prepare("INSERT INTO channels (name, kind, base_url, api_key, models, model_map,"
                    " priority, weight, enabled, allow_private_network, ca_file, stream_usage,"
                    " auto_disable, created_at, probe_model)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                    " RETURNING id",
                    stmt)) {
        return false;
    }
    channel_bind_spec(stmt, *write.spec);
    stmt.bind_int64(14, unix_now_s());
    return step_returning_id(stmt, write.id, "channel", 0, error);
}

bool channel_update(Db& db, void* context, std::string& error) {
    ChannelWrite& write = *static_cast<ChannelWrite*>(context);
    Stmt stmt;
    if (!db.prepare("UPDATE channels SET name = ?1, kind = ?2, base_url = ?3, api_key = ?4,"
                    " models = ?5, model_map = ?6, priority = ?7, weight = ?8, enabled = ?9,"
                    " allow_private_network = ?10, ca_file = ?11, stream_usage = ?12, auto_disable "
                    "= ?13, probe_model = ?15"
                    " WHERE id = ?14",
                    stmt)) {
        return false;
    }
    channel_bind_spec(stmt, *write.spec);
    stmt.bind_int64(14, write.id);
    return step_one_row(db, stmt, "channel", write.id, error);
}

bool channel_health_update(Db& db, void* context, std::string& /*error*/) {
    const ChannelHealthRow& row = *static_cast<const ChannelHealthRow*>(context);
    Stmt stmt;
    if (!db.prepare("UPDATE channels SET health_state = ?2, health_reason = ?3,"
                    " health_since_ms = ?4, health_error = ?5 WHERE id = ?1",
                    stmt)) {
        return false;
    }
    stmt.bind_int64(1, row.channel_id);
    stmt.bind_text(2, row.is_down ? "down" : "up");
    stmt.bind_text(3, row.reason);
    stmt.bind_int64(4, row.since_ms);
    stmt.bind_text(5, row.error);
    return db.step_done(stmt);  // A deleted channel: no row, nothing to keep.
}

bool channel_delete(Db& db, void* context, std::string& error) {
    ChannelWrite& write = *static_cast<ChannelWrite*>(context);
    Stmt stmt;
    if (!db.prepare("DELETE FROM channels WHERE id = ?1", stmt)) {
        return false;
    }
    stmt.bind_int64(1, write.id);
    return step_one_row(db, stmt, "channel", write.id, error);
}

struct PriceWrite {
    const PriceSpec* spec;
    int64_t id;  // In: delete target. Out: inserted id.
};

bool price_insert(Db& db, void* context, std::string& error) {
    PriceWrite& write = *static_cast<PriceWrite*>(context);
    const PriceSpec& spec = *write.spec;
    Stmt stmt;
    if (!db.prepare("INSERT INTO prices (model, channel_id, input_per_mtok, output_per_mtok,"
                    " cached_input_per_mtok, cache_write_per_mtok, reasoning_per_mtok,"
                    " per_request, effective_from, created_at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
                    stmt)) {
        return false;
    }
    stmt.bind_text(1, spec.model);
    stmt.bind_int64_or_null(2, spec.channel_id, spec.channel_id == 0);
    stmt.bind_int64(3, spec.input_per_mtok);
    stmt.bind_int64(4, spec.output_per_mtok);
    stmt.bind_int64_or_null(5, spec.cached_input_per_mtok, !spec.has_cached_input);
    stmt.bind_int64_or_null(6, spec.cache_write_per_mtok, !spec.has_cache_write);
    stmt.bind_int64_or_null(7, spec.reasoning_per_mtok, !spec.has_reasoning);
    stmt.bind_int64(8, spec.per_request);
    stmt.bind_int64(9, spec.effective_from_s);
    stmt.bind_int64(10, unix_now_s());
    return step_returning_id(stmt, write.id, "price", 0, error);
}

bool price_delete(Db& db, void* context, std::string& error) {
    PriceWrite& write = *static_cast<PriceWrite*>(context);
    Stmt stmt;
    if (!db.prepare("UPDATE prices SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                    stmt)) {
        return false;
    }
    stmt.bind_int64(1, write.id);
    stmt.bind_int64(2, unix_now_s());
    return step_one_row(db, stmt, "price", write.id, error);
}

// An admin write, then (PostgreSQL) a NOTIFY in its transaction: delivered to every host
// LISTENing at COMMIT, which reloads its snapshot (storage/catalog_listener.h).
struct NotifyingWrite {
    Writer::AdminFn fn;
    void* context;
};

bool write_then_notify(Db& db, void* context, std::string& error) {
    const NotifyingWrite& write = *static_cast<const NotifyingWrite*>(context);
    if (!write.fn(db, write.context, error)) {
        return false;
    }
    return !db.is_postgres() || db.exec((std::string("NOTIFY ") + catalog_channel).c_str());
}

}  // namespace

bool Catalog::write_and_reload(Writer::AdminFn fn, void* context, std::string& error) {
    NotifyingWrite write{fn, context};
    if (!writer_.execute(write_then_notify, &write, error)) {
        return false;
    }
    if (!snapshots_.reload(error)) {
        error = "saved, but the snapshot reload failed: " + error;
        return false;
    }
    return true;
}

void Catalog::channels_changed() {
    if (channels_changed_ != nullptr) {
        channels_changed_(channels_changed_context_, snapshots_.publisher().epoch());
    }
}

Result<CreatedKey> Catalog::create_key(const KeySpec& spec) {
    std::string error = key_spec_check(spec);
    if (!error.empty()) {
        return Result<CreatedKey>::failure(error);
    }
    CreatedKey created;
    if (!key_secret_generate(created.secret, error)) {
        return Result<CreatedKey>::failure(error);
    }
    created.key_prefix = key_display_prefix(created.secret);
    const KeyHash hash = key_hash(created.secret);
    KeyWrite write{&spec, &hash, created.key_prefix, 0};
    if (!write_and_reload(key_insert, &write, error)) {
        return Result<CreatedKey>::failure(error);
    }
    RW_ASSERT(write.id > 0);
    created.id = write.id;
    return Result<CreatedKey>::success(std::move(created));
}

Result<int64_t> Catalog::import_key(const KeySpec& spec, std::string_view secret) {
    std::string error = key_spec_check(spec);
    if (!error.empty()) {
        return Result<int64_t>::failure(error);
    }
    if (secret.size() < imported_secret_bytes_min || secret.size() > imported_secret_bytes_max ||
        !is_visible_ascii(secret)) {
        return Result<int64_t>::failure("imported key must be 16..256 visible ASCII bytes");
    }
    const std::string prefix = key_display_prefix(secret);
    const KeyHash hash = key_hash(secret);
    KeyWrite write{&spec, &hash, prefix, 0};
    if (!write_and_reload(key_insert, &write, error)) {
        return Result<int64_t>::failure(error);
    }
    RW_ASSERT(write.id > 0);
    return Result<int64_t>::success(write.id);
}

bool Catalog::update_key(int64_t id, const KeySpec& spec, std::string& error) {
    error = key_spec_check(spec);
    if (!error.empty()) {
        return false;
    }
    KeyWrite write{&spec, nullptr, {}, id};
    return write_and_reload(key_update, &write, error);
}

Result<int64_t> Catalog::topup_key(const TopupSpec& spec) {
    if (spec.amount_nano <= 0 || spec.amount_nano > budget_amount_max) {
        return Result<int64_t>::failure("amount_usd must be above 0 and at most 2251799.813685247");
    }
    if (spec.reason.empty() || spec.reason.size() > 500) {
        return Result<int64_t>::failure("reason must be 1..500 bytes");
    }
    TopupWrite write{&spec, 0};
    std::string error;
    if (!write_and_reload(key_topup_insert, &write, error)) {
        return Result<int64_t>::failure(error);
    }
    return Result<int64_t>::success(write.id);
}

bool Catalog::revoke_key(int64_t id, std::string& error) {
    KeyWrite write{nullptr, nullptr, {}, id};
    return write_and_reload(key_revoke, &write, error);
}

// The spec as stored: its api_key sealed when a key is configured (a value read back
// sealed, as a PATCH that keeps the key passes it, stays as it is).
bool Catalog::channel_spec_seal(const ChannelSpec& spec, ChannelSpec& sealed,
                                std::string& error) const {
    sealed = spec;
    if (secret_key_.empty() || secret_is_sealed(spec.api_key)) {
        return true;
    }
    return secret_seal(secret_key_, spec.api_key, sealed.api_key, error);
}

Result<int64_t> Catalog::create_channel(const ChannelSpec& spec) {
    std::string error = channel_spec_check(spec);
    if (!error.empty()) {
        return Result<int64_t>::failure(error);
    }
    ChannelSpec sealed;
    if (!channel_spec_seal(spec, sealed, error)) {
        return Result<int64_t>::failure(error);
    }
    ChannelWrite write{&sealed, 0};
    if (!write_and_reload(channel_insert, &write, error)) {
        return Result<int64_t>::failure(error);
    }
    RW_ASSERT(write.id > 0);
    channels_changed();
    return Result<int64_t>::success(write.id);
}

bool Catalog::update_channel(int64_t id, const ChannelSpec& spec, std::string& error) {
    error = channel_spec_check(spec);
    if (!error.empty()) {
        return false;
    }
    ChannelSpec sealed;
    if (!channel_spec_seal(spec, sealed, error)) {
        return false;
    }
    ChannelWrite write{&sealed, id};
    if (!write_and_reload(channel_update, &write, error)) {
        return false;
    }
    channels_changed();
    return true;
}

bool Catalog::delete_channel(int64_t id, std::string& error) {
    ChannelWrite write{nullptr, id};
    if (!write_and_reload(channel_delete, &write, error)) {
        return false;
    }
    channels_changed();
    return true;
}

Result<int64_t> Catalog::create_price(const PriceSpec& spec) {
    std::string error = price_spec_check(spec);
    if (!error.empty()) {
        return Result<int64_t>::failure(error);
    }
    PriceWrite write{&spec, 0};
    if (!write_and_reload(price_insert, &write, error)) {
        return Result<int64_t>::failure(error);
    }
    RW_ASSERT(write.id > 0);
    return Result<int64_t>::success(write.id);
}

bool Catalog::delete_price(int64_t id, std::string& error) {
    PriceWrite write{nullptr, id};
    return write_and_reload(price_delete, &write, error);
}

bool channel_health_store(Writer& writer, const ChannelHealthRow& row, std::string& error) {
    ChannelHealthRow copy = row;
    return writer.execute(channel_health_update, &copy, error);
}

}  // namespace rw
