// storage/secrets.h — channel keys (the upstream secrets) at rest: sealed with AES-256-GCM
// (OpenSSL EVP) under a 32-byte key the operator keeps outside the database
// (RINGWAY_SECRET_KEY_FILE or the systemd credential ringway-secret-key). A sealed value
// is "rwenc:v1:" + hex(nonce[12] || ciphertext || tag[16]); a fresh random nonce per seal.
// Rows written before a key was configured are plain text: they keep working, and
// secrets_prepare() seals them at the first start with a key. Control plane only
// (startup, admin writes, snapshot reloads): nothing here is on the request path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rw {

class Db;

constexpr uint32_t secret_key_bytes = 32;
constexpr std::string_view secret_sealed_prefix = "rwenc:v1:";

// Reads a key file: 64 hex digits (`openssl rand -hex 32`), or exactly 32 raw bytes;
// surrounding whitespace is ignored. One clear line in error otherwise.
[[nodiscard]] bool secret_key_load(const std::string& path, std::string& key, std::string& error);

[[nodiscard]] bool secret_is_sealed(std::string_view stored);

// plain sealed under key (32 bytes). False only when OpenSSL or getrandom fails.
[[nodiscard]] bool secret_seal(std::string_view key, std::string_view plain, std::string& sealed,
                               std::string& error);

// The plain secret of a stored value: plain rows as they are, sealed ones opened with key.
// False (with why) when a sealed value has no key, a wrong key, or is damaged.
[[nodiscard]] bool secret_open(std::string_view key, std::string_view stored, std::string& plain,
                               std::string& error);

// At startup, on the writer's connection before it runs: with a key, every sealed channel
// key must open with it (else one line naming the problem: a wrong key file refuses to
// start) and plain ones are sealed in one transaction; without a key, sealed rows refuse
// to start. plain_rows counts the channels whose key stays plain text (no key).
struct SecretsReport {
    uint32_t sealed_now = 0;
    uint32_t plain_rows = 0;
};
[[nodiscard]] bool secrets_prepare(Db& db, std::string_view key, SecretsReport& report,
                                   std::string& error);

// Re-seals every channel key under new_key in one transaction: sealed values are opened
// with old_key, plain ones are taken as they are. rows: channel keys re-sealed.
[[nodiscard]] bool secrets_rotate(Db& db, std::string_view old_key, std::string_view new_key,
                                  uint32_t& rows, std::string& error);

}  // namespace rw
