// storage/aliases.h — gateway model aliases (the `aliases` table): a name clients may ask
// for ("fast") that stands for an ordered list of concrete models. The request path tries
// the first model's channels, then the next model's, within the retry budget (proxy/
// admission.cc); the usage row keeps the asked name (model_requested) and the model sent.
// Written through Catalog (storage/keys.h) like channels, read by Queries for the admin API
// and by SnapshotStore::reload into the snapshot. Control plane.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rw {

// Models one alias may stand for (each is a fallback attempt's model at most).
constexpr uint32_t alias_models_max = 8;
constexpr uint32_t alias_name_bytes_max = 200;

struct AliasSpec {
    std::string name;
    std::string models_json;  // A JSON array of 1..alias_models_max concrete model names.
};

// An alias as the snapshot holds it.
struct AliasEntry {
    int64_t id = 0;
    std::string name;
    std::vector<std::string> models;  // In fallback order.
};

// An alias as the admin API shows it.
struct AliasInfo {
    int64_t id = 0;
    std::string name;
    std::string models_json;
    int64_t created_at_s = 0;
    int64_t updated_at_s = 0;
};

// Empty when valid: a name of 1..200 bytes without '*' or control characters, and 1..8
// distinct concrete model names (no pattern, not the alias itself); otherwise why not.
[[nodiscard]] std::string alias_spec_check(const AliasSpec& spec);

// The alias's models in order (alias_spec_check'ed text); false with error otherwise.
[[nodiscard]] bool alias_models_parse(const std::string& models_json,
                                      std::vector<std::string>& models, std::string& error);

}  // namespace rw
