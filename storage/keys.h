// storage/keys.h — the key and channel store (control plane). Gateway keys are
// `sk-rw-` + 43 base64url chars (32 bytes from getrandom); only their SHA-256 and a short
// display prefix are stored, and the secret is returned once. Every write goes through
// the Writer's command channel (one writing connection in the process) and is followed
// by a snapshot reload, so the data plane sees the change at its next acquire().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/limits.h"
#include "storage/aliases.h"
#include "storage/budget.h"
#include "storage/prices.h"
#include "storage/result.h"
#include "storage/snapshot.h"
#include "storage/writer.h"

namespace rw {

constexpr std::string_view key_secret_prefix = "sk-rw-";

// SHA-256 of the secret bytes as presented (no trimming).
[[nodiscard]] KeyHash key_hash(std::string_view secret);
// A fresh secret from getrandom(2). False only if the kernel refuses randomness.
[[nodiscard]] bool key_secret_generate(std::string& secret, std::string& error);
// What may be shown of a secret: the type prefix and a few chars, never enough to use.
[[nodiscard]] std::string key_display_prefix(std::string_view secret);

struct KeySpec {
    std::string name;
    bool has_quota_limit = false;  // false: unlimited (quota_limit NULL).
    int64_t quota_limit_tokens = 0;
    int64_t expires_at_s = 0;       // Unix seconds; 0 = never.
    bool allows_all_models = true;  // false: only models_json (a JSON array of names).
    std::string models_json;
    uint32_t rpm = 0;              // 0 = unlimited.
    uint32_t concurrency_max = 0;  // 0 = unlimited.
    uint32_t tpm = 0;              // Tokens per minute; 0 = unlimited.
    // Per-model limits, a JSON object {"gpt-4o":{"rpm":60,"tpm":90000}}; empty: none.
    std::string limits_json;
    // A JSON array of CIDR blocks in canonical form the key may be used from; empty: any
    // address (allowed_cidrs NULL).
    std::string allowed_cidrs_json;
    bool has_budget = false;  // false: no money budget (budget_nano NULL).
    int64_t budget_nano = 0;
    BudgetPeriod period = BudgetPeriod::none;  // Of both the quota and the budget.
    // A request setting no output limit gets the largest its budget affords (budget.h).
    bool is_strict = false;
};

// An audited raise of a key's budget for the period it is made in (key_topups row).
struct TopupSpec {
    int64_t key_id = 0;
    int64_t amount_nano = 0;  // > 0.
    std::string reason;       // 1..500 bytes.
    std::string actor;        // Who: the admin API's caller as it names itself.
};

struct ChannelSpec {
    std::string name;
    ChannelKind kind = ChannelKind::openai;
    std::string base_url;  // http:// or https:// (SSRF policy is the proxy's).
    std::string api_key;
    std::string models_json = "[]";     // JSON array of model names served.
    std::string model_map_json = "{}";  // JSON object requested -> sent.
    int32_t priority = 0;
    uint32_t weight = 1;
    bool is_enabled = true;
    bool allow_private_network = false;
    std::string ca_file;  // Empty: system CA paths.
    StreamUsage stream_usage = StreamUsage::inject;
    bool auto_disable = true;  // Failures may take the channel out of routing (health).
    std::string probe_model;   // The model an idle down channel is probed on; empty: none.
};

// A channel's health as the gateway judged it, persisted so it survives a restart.
struct ChannelHealthRow {
    int64_t channel_id = 0;
    bool is_down = false;
    std::string reason;    // "auth", "server"; empty when up.
    int64_t since_ms = 0;  // Unix ms of the last change.
    std::string error;     // The failure that decided it, e.g. "HTTP 401".
};

// Writes `row` through the writer thread (one UPDATE; a channel deleted meanwhile updates
// nothing). Control plane; blocks until committed.
[[nodiscard]] bool channel_health_store(Writer& writer, const ChannelHealthRow& row,
                                        std::string& error);

struct CreatedKey {
    int64_t id = 0;
    std::string secret;  // Shown to the operator once; never stored.
    std::string key_prefix;
};

// Control-plane façade over Writer + SnapshotStore for keys, channels, prices and aliases.
// Thread-safe (both are); each call blocks until the write committed and the snapshot was reloaded.
// A failed reload after a committed write is reported as an error too (the write stays).
class Catalog {
public:
    // secret_key: seals channel keys before they are written (empty: stored as given).
    Catalog(Writer& writer, SnapshotStore& snapshots, std::string secret_key = {})
        : writer_(writer), snapshots_(snapshots), secret_key_(std::move(secret_key)) {}

    // Called after every committed channel write and its snapshot reload, with the new
    // snapshot epoch, before the call returns (the proxy waits there for the channel's
    // address). Set once before the Catalog is shared.
    using ChannelsChangedFn = void (*)(void* context, uint64_t snapshot_epoch);
    void set_channels_changed(ChannelsChangedFn fn, void* context) {
        channels_changed_ = fn;
        channels_changed_context_ = context;
    }

    [[nodiscard]] Result<CreatedKey> create_key(const KeySpec& spec);
    // Stores a secret the operator already has (e.g. migrated from another gateway).
    [[nodiscard]] Result<int64_t> import_key(const KeySpec& spec, std::string_view secret);
    [[nodiscard]] bool update_key(int64_t id, const KeySpec& spec, std::string& error);
    [[nodiscard]] bool revoke_key(int64_t id, std::string& error);
    // Stores a top-up row (the key must exist); its id.
    [[nodiscard]] Result<int64_t> topup_key(const TopupSpec& spec);

    [[nodiscard]] Result<int64_t> create_channel(const ChannelSpec& spec);
    [[nodiscard]] bool update_channel(int64_t id, const ChannelSpec& spec, std::string& error);
    [[nodiscard]] bool delete_channel(int64_t id, std::string& error);

    // A new price version (price_spec_check'ed); its id. Versions are never edited: a
    // change is a new version with a later effective_from (prices.h).
    [[nodiscard]] Result<int64_t> create_price(const PriceSpec& spec);
    // Marks a live version deleted (deleted_at = now): it prices nothing from the next
    // snapshot on; rows it priced keep their cost and price_id. "no price with id N" when
    // there is no live version N.
    [[nodiscard]] bool delete_price(int64_t id, std::string& error);

    // Gateway aliases (storage/aliases.h, written in aliases.cc): alias_spec_check'ed;
    // "alias already exists" for a name taken, "no alias with id N" for a missing one.
    [[nodiscard]] Result<int64_t> create_alias(const AliasSpec& spec);
    [[nodiscard]] bool update_alias(int64_t id, const AliasSpec& spec, std::string& error);
    [[nodiscard]] bool delete_alias(int64_t id, std::string& error);

private:
    [[nodiscard]] bool write_and_reload(Writer::AdminFn fn, void* context, std::string& error);
    [[nodiscard]] bool channel_spec_seal(const ChannelSpec& spec, ChannelSpec& sealed,
                                         std::string& error) const;
    void channels_changed();

    Writer& writer_;
    SnapshotStore& snapshots_;
    std::string secret_key_;
    ChannelsChangedFn channels_changed_ = nullptr;
    void* channels_changed_context_ = nullptr;
};

// Validation shared with the admin API (returns an empty string when valid).
[[nodiscard]] std::string key_spec_check(const KeySpec& spec);
[[nodiscard]] std::string channel_spec_check(const ChannelSpec& spec);

}  // namespace rw
