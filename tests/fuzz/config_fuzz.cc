// tests/fuzz/config_fuzz.cc — RINGWAY_* parsing on arbitrary values. The input is lines
// of NAME=VALUE forming the environment. Whatever it holds, config_from_env either
// succeeds with a Config that satisfies its documented ranges, or fails with one line
// naming a RINGWAY_ variable; it never crashes, never asserts, never reads past a value.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"

namespace {

using Env = std::vector<std::pair<std::string, std::string>>;

const char* lookup(const char* name, void* context) {
    const Env& env = *static_cast<const Env*>(context);
    for (const auto& [key, value] : env) {
        if (key == name) {
            return value.c_str();
        }
    }
    return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Env env;
    const std::string text(reinterpret_cast<const char*>(data), size);
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) {
            end = text.size();
        }
        const std::string line = text.substr(start, end - start);
        const size_t equals = line.find('=');
        if (equals != std::string::npos) {
            // Values are C strings in a real environment: no embedded NUL.
            std::string value = line.substr(equals + 1);
            value = value.substr(0, value.find('\0'));
            env.emplace_back(line.substr(0, equals), value);
        }
        start = end + 1;
    }
    rw::Config config;
    std::string error;
    if (rw::config_from_env(config, lookup, &env, error)) {
        if (config.shards < 1 || config.shards > rw::config_cpus_available() ||
            !std::has_single_bit(config.recv_buffers) || config.max_connections < 1 ||
            config.header_timeout_ms < 50 || config.log_batch < 1 ||
            (config.listen.address.ss_family != AF_INET &&
             config.listen.address.ss_family != AF_INET6)) {
            std::abort();  // Accepted a value outside its documented range.
        }
    } else if (error.find("RINGWAY_") == std::string::npos) {
        std::abort();  // A refusal must name the variable.
    }
    return 0;
}
