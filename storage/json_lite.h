// storage/json_lite.h — the two JSON shapes storage keeps in TEXT columns: a list of
// model names (`["gpt-4o","gpt-4o-mini"]`) and a model rename map
// (`{"gpt-4o":"gpt-4o-2024-08-06"}`). Strict RFC 8259 strings (escapes decoded, \u
// including surrogate pairs), nothing else. Control plane only: admin writes validate
// with it and snapshot loads parse with it. Untrusted input never asserts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rw {

// Parses a JSON array of strings. False on anything else (error says where).
[[nodiscard]] bool json_parse_string_array(std::string_view text, std::vector<std::string>& out,
                                           std::string& error);

// Parses a JSON object whose values are all strings; keys keep their order.
[[nodiscard]] bool json_parse_string_map(std::string_view text,
                                         std::vector<std::pair<std::string, std::string>>& out,
                                         std::string& error);

// One model's limits in a key's `limits` column: {"gpt-4o":{"rpm":60,"tpm":90000}}.
struct ModelLimitSpec {
    std::string model;
    int64_t rpm = 0;  // 0: none.
    int64_t tpm = 0;  // 0: none.
};

// Parses a JSON object of model name -> {"rpm": N, "tpm": N} (both optional, integers in
// 0..4294967295, no other member, no model twice). False with error on anything else.
[[nodiscard]] bool json_parse_model_limits(std::string_view text, std::vector<ModelLimitSpec>& out,
                                           std::string& error);

}  // namespace rw
