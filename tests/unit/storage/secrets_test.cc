// tests/unit/storage/secrets_test.cc — channel keys at rest (storage/secrets.h): a sealed
// value opens with its key only, carries no plain text, differs on every seal (fresh
// nonce) and detects tampering; plain values pass through; key files in hex or raw form;
// and the database files' modes (storage/db_files.h).
#include "storage/secrets.h"

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/db_files.h"
#include "tests/unit/storage/storage_test_support.h"

namespace rw {
namespace {

const std::string key_a(32, 'A');
const std::string key_b(32, 'B');
constexpr std::string_view plain = "sk-upstream-0123456789-abcdwxyz";

TEST(Secrets, SealedOpensWithItsKeyOnly) {
    std::string sealed;
    std::string error;
    ASSERT_TRUE(secret_seal(key_a, plain, sealed, error)) << error;
    EXPECT_TRUE(secret_is_sealed(sealed));
    EXPECT_EQ(sealed.find(plain), std::string::npos);
    EXPECT_EQ(sealed.find("abcdwxyz"), std::string::npos);
    std::string opened;
    ASSERT_TRUE(secret_open(key_a, sealed, opened, error)) << error;
    EXPECT_EQ(opened, plain);
    EXPECT_FALSE(secret_open(key_b, sealed, opened, error));
    EXPECT_NE(error.find("wrong key"), std::string::npos) << error;
    EXPECT_FALSE(secret_open("", sealed, opened, error));
    EXPECT_NE(error.find("no RINGWAY_SECRET_KEY_FILE"), std::string::npos) << error;
}

TEST(Secrets, EverySealDiffersAndTamperingIsDetected) {
    std::string first;
    std::string second;
    std::string error;
    ASSERT_TRUE(secret_seal(key_a, plain, first, error));
    ASSERT_TRUE(secret_seal(key_a, plain, second, error));
    EXPECT_NE(first, second);  // A fresh nonce each time.
    std::string damaged = first;
    damaged[secret_sealed_prefix.size() + 30] =
        damaged[secret_sealed_prefix.size() + 30] == '0' ? '1' : '0';
    std::string opened;
    EXPECT_FALSE(secret_open(key_a, damaged, opened, error));
    EXPECT_FALSE(secret_open(key_a, std::string(secret_sealed_prefix) + "zz", opened, error));
}

TEST(Secrets, PlainValuesPassThrough) {
    std::string opened;
    std::string error;
    ASSERT_TRUE(secret_open("", plain, opened, error));
    EXPECT_EQ(opened, plain);
    ASSERT_TRUE(secret_open(key_a, plain, opened, error));
    EXPECT_EQ(opened, plain);
}

TEST(Secrets, KeyFilesInHexOrRawBytes) {
    test::TempDir dir;
    const std::string path = dir.path() + "/key";
    std::string key;
    std::string error;
    std::ofstream(path) << "  " << std::string(64, 'f') << "\n";
    ASSERT_TRUE(secret_key_load(path, key, error)) << error;
    EXPECT_EQ(key, std::string(32, '\xff'));
    std::ofstream(path, std::ios::binary | std::ios::trunc) << std::string(32, '\n');
    ASSERT_TRUE(secret_key_load(path, key, error)) << error;  // Raw bytes, even whitespace.
    EXPECT_EQ(key.size(), 32u);
    std::ofstream(path, std::ios::trunc) << std::string(63, 'f');
    EXPECT_FALSE(secret_key_load(path, key, error));
    EXPECT_NE(error.find("64 hex digits"), std::string::npos);
    EXPECT_FALSE(secret_key_load(dir.path() + "/missing", key, error));
    EXPECT_NE(error.find("cannot read"), std::string::npos);
}

mode_t mode_of(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 ? (info.st_mode & 0777) : 01000;
}

TEST(DbFiles, CreatedOwnerOnlyAndReadableOnesFixed) {
    test::TempDir dir;
    const std::string db = dir.path() + "/ringway.db";
    std::vector<std::string> fixed;
    std::string error;
    const mode_t old_umask = ::umask(022);
    ASSERT_TRUE(db_files_secure(db, fixed, error)) << error;
    EXPECT_EQ(mode_of(db), 0600u);
    EXPECT_TRUE(fixed.empty());
    std::ofstream(db + "-wal") << "x";
    ASSERT_EQ(::chmod(db.c_str(), 0644), 0);
    ASSERT_EQ(::chmod((db + "-wal").c_str(), 0664), 0);
    ASSERT_TRUE(db_files_secure(db, fixed, error)) << error;
    EXPECT_EQ(mode_of(db), 0600u);
    EXPECT_EQ(mode_of(db + "-wal"), 0600u);
    EXPECT_EQ(fixed, (std::vector<std::string>{db, db + "-wal"}));
    ::umask(old_umask);
}

}  // namespace
}  // namespace rw
