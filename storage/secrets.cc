// storage/secrets.cc — sealing and opening channel keys (see secrets.h). OpenSSL EVP with
// AES-256-GCM: a 12-byte random nonce (RAND_bytes) per value, a 16-byte tag, and the
// constant associated data below so a value sealed for another purpose does not open.
#include "storage/secrets.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "core/assert.h"
#include "storage/db.h"

namespace rw {
namespace {

// The variable's name, kept whole in one place: messages are built from it (GCC splits long
// literals copied into std::string into overlapping pieces, which tests scanning the
// binary for RINGWAY_* names would misread).
const char* const secret_key_variable = "RINGWAY_SECRET_KEY_FILE";

constexpr int nonce_bytes = 12;
constexpr int tag_bytes = 16;
constexpr std::string_view associated_data = "ringway channel api_key v1";
constexpr uint32_t secret_key_file_bytes_max = 4096;

struct CipherFree {
    void operator()(EVP_CIPHER_CTX* context) const { EVP_CIPHER_CTX_free(context); }
};
using Cipher = std::unique_ptr<EVP_CIPHER_CTX, CipherFree>;

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool hex_decode(std::string_view hex, std::string& out) {
    if (hex.size() % 2 != 0) {
        return false;
    }
    out.resize(hex.size() / 2);
    for (size_t i = 0; i < out.size(); i++) {
        const int high = hex_value(hex[2 * i]);
        const int low = hex_value(hex[2 * i + 1]);
        if (high < 0 || low < 0) {
            return false;
        }
        out[i] = static_cast<char>(high * 16 + low);
    }
    return true;
}

void hex_append(std::string& out, const unsigned char* bytes, size_t count) {
    static constexpr char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < count; i++) {
        out.push_back(digits[bytes[i] >> 4]);
        out.push_back(digits[bytes[i] & 15]);
    }
}

std::string_view trim_space(std::string_view text) {
    while (!text.empty() && std::strchr(" \t\r\n", text.front()) != nullptr) {
        text.remove_prefix(1);
    }
    while (!text.empty() && std::strchr(" \t\r\n", text.back()) != nullptr) {
        text.remove_suffix(1);
    }
    return text;
}

// Every channel's id and stored api_key, read before any change.
struct StoredKey {
    int64_t id;
    std::string value;
};

bool channel_keys_read(Db& db, std::vector<StoredKey>& rows, std::string& error) {
    Stmt stmt;
    if (!db.prepare("SELECT id, api_key FROM channels ORDER BY id", stmt)) {
        error = db.last_error();
        return false;
    }
    for (;;) {
        const StepStatus status = stmt.step();
        if (status == StepStatus::error) {
            error = db.last_error();
            return false;
        }
        if (status == StepStatus::done) {
            return true;
        }
        rows.push_back({stmt.column_int64(0), std::string(stmt.column_text(1))});
    }
}

// Rewrites the given rows' api_key in one transaction (all or nothing).
bool channel_keys_write(Db& db, const std::vector<StoredKey>& rows, std::string& error) {
    Stmt stmt;
    if (!db.exec("BEGIN IMMEDIATE") ||
        !db.prepare("UPDATE channels SET api_key = ?1 WHERE id = ?2", stmt)) {
        error = db.last_error();
        return false;
    }
    for (const StoredKey& row : rows) {
        stmt.bind_text(1, row.value);
        stmt.bind_int64(2, row.id);
        if (!db.step_done(stmt)) {
            error = db.last_error();
            (void)db.exec("ROLLBACK");
            return false;
        }
    }
    if (!db.exec("COMMIT")) {
        error = db.last_error();
        (void)db.exec("ROLLBACK");
        return false;
    }
    return true;
}

}  // namespace

bool secret_key_load(const std::string& path, std::string& key, std::string& error) {
    FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        error = std::string(secret_key_variable) + "=" + path +
                ": cannot read: " + std::strerror(errno);
        return false;
    }
    char buffer[secret_key_file_bytes_max + 1];
    const size_t length = std::fread(buffer, 1, sizeof(buffer), file);
    std::fclose(file);
    const std::string_view raw(buffer, length);
    const std::string_view text = trim_space(raw);
    if (text.size() == 2 * secret_key_bytes && hex_decode(text, key)) {
        return true;
    }
    if (raw.size() == secret_key_bytes) {
        key.assign(raw);
        return true;
    }
    key.clear();
    error = std::string(secret_key_variable) + "=" + path +
            ": must hold 64 hex digits (openssl rand -hex 32) or 32 raw bytes";
    return false;
}

bool secret_is_sealed(std::string_view stored) {
    return stored.substr(0, secret_sealed_prefix.size()) == secret_sealed_prefix;
}

bool secret_seal(std::string_view key, std::string_view plain, std::string& sealed,
                 std::string& error) {
    RW_ASSERT(key.size() == secret_key_bytes);
    unsigned char nonce[nonce_bytes];
    std::vector<unsigned char> cipher(plain.size() + 16);
    unsigned char tag[tag_bytes];
    const auto* key_bytes = reinterpret_cast<const unsigned char*>(key.data());
    const Cipher context(EVP_CIPHER_CTX_new());
    int length = 0;
    int final_length = 0;
    if (RAND_bytes(nonce, nonce_bytes) != 1 || context == nullptr ||
        EVP_EncryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr, key_bytes, nonce) != 1 ||
        EVP_EncryptUpdate(context.get(), nullptr, &length,
                          reinterpret_cast<const unsigned char*>(associated_data.data()),
                          int(associated_data.size())) != 1 ||
        EVP_EncryptUpdate(context.get(), cipher.data(), &length,
                          reinterpret_cast<const unsigned char*>(plain.data()),
                          int(plain.size())) != 1 ||
        EVP_EncryptFinal_ex(context.get(), cipher.data() + length, &final_length) != 1 ||
        EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_GET_TAG, tag_bytes, tag) != 1) {
        error = "AES-256-GCM sealing failed";
        return false;
    }
    sealed.assign(secret_sealed_prefix);
    hex_append(sealed, nonce, nonce_bytes);
    hex_append(sealed, cipher.data(), size_t(length + final_length));
    hex_append(sealed, tag, tag_bytes);
    return true;
}

bool secret_open(std::string_view key, std::string_view stored, std::string& plain,
                 std::string& error) {
    if (!secret_is_sealed(stored)) {
        plain.assign(stored);  // Written before a key was configured.
        return true;
    }
    if (key.empty()) {
        error = std::string("channel keys are encrypted but no ") + secret_key_variable +
                " is configured";
        return false;
    }
    std::string bytes;
    if (!hex_decode(stored.substr(secret_sealed_prefix.size()), bytes) ||
        bytes.size() < size_t(nonce_bytes + tag_bytes)) {
        error = "a stored channel key is damaged";
        return false;
    }
    const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    const int cipher_bytes = int(bytes.size()) - nonce_bytes - tag_bytes;
    std::vector<unsigned char> out(size_t(cipher_bytes) + 16);
    const Cipher context(EVP_CIPHER_CTX_new());
    int length = 0;
    int final_length = 0;
    const bool is_ok =
        context != nullptr &&
        EVP_DecryptInit_ex(context.get(), EVP_aes_256_gcm(), nullptr,
                           reinterpret_cast<const unsigned char*>(key.data()), data) == 1 &&
        EVP_DecryptUpdate(context.get(), nullptr, &length,
                          reinterpret_cast<const unsigned char*>(associated_data.data()),
                          int(associated_data.size())) == 1 &&
        EVP_DecryptUpdate(context.get(), out.data(), &length, data + nonce_bytes, cipher_bytes) ==
            1 &&
        EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_TAG, tag_bytes,
                            const_cast<unsigned char*>(data + nonce_bytes + cipher_bytes)) == 1 &&
        EVP_DecryptFinal_ex(context.get(), out.data() + length, &final_length) == 1;
    if (!is_ok) {
        error = std::string("the channel keys do not decrypt with this ") + secret_key_variable +
                " (wrong key?)";
        return false;
    }
    plain.assign(reinterpret_cast<const char*>(out.data()), size_t(length + final_length));
    return true;
}

bool secrets_prepare(Db& db, std::string_view key, SecretsReport& report, std::string& error) {
    std::vector<StoredKey> rows;
    if (!channel_keys_read(db, rows, error)) {
        return false;
    }
    std::vector<StoredKey> to_seal;
    for (StoredKey& row : rows) {
        std::string plain;
        if (!secret_open(key, row.value, plain, error)) {
            error += " (channel " + std::to_string(row.id) + ")";
            return false;
        }
        if (secret_is_sealed(row.value)) {
            continue;
        }
        if (key.empty()) {
            report.plain_rows += 1;
            continue;
        }
        std::string sealed;
        if (!secret_seal(key, plain, sealed, error)) {
            return false;
        }
        to_seal.push_back({row.id, std::move(sealed)});
    }
    if (!to_seal.empty() && !channel_keys_write(db, to_seal, error)) {
        return false;
    }
    report.sealed_now = uint32_t(to_seal.size());
    return true;
}

bool secrets_rotate(Db& db, std::string_view old_key, std::string_view new_key, uint32_t& rows,
                    std::string& error) {
    RW_ASSERT(new_key.size() == secret_key_bytes);
    std::vector<StoredKey> stored;
    if (!channel_keys_read(db, stored, error)) {
        return false;
    }
    for (StoredKey& row : stored) {
        std::string plain;
        std::string sealed;
        if (!secret_open(old_key, row.value, plain, error) ||
            !secret_seal(new_key, plain, sealed, error)) {
            error += " (channel " + std::to_string(row.id) + ")";
            return false;
        }
        row.value = std::move(sealed);
    }
    if (!stored.empty() && !channel_keys_write(db, stored, error)) {
        return false;
    }
    rows = uint32_t(stored.size());
    return true;
}

}  // namespace rw
