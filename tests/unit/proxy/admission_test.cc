// tests/unit/proxy/admission_test.cc — the shard's memo of secrets' SHA-256 (KeyHashMemo,
// proxy/admission.h): a remembered secret gives its own hash and only its own, whatever
// shares its entry; secrets too short or too long are hashed every time.
#include "proxy/admission.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "storage/keys.h"

namespace rw {
namespace {

TEST(KeyHashMemo, ARememberedSecretGivesItsOwnHashAndNoOther) {
    const auto memo = std::make_unique<KeyHashMemo>();
    const std::string secret = "sk-rw-AAAAbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKK";
    bool is_remembered = true;
    EXPECT_EQ(memo->hash(secret, is_remembered), key_hash(secret));
    EXPECT_FALSE(is_remembered);
    memo->remember(secret, key_hash(secret));
    EXPECT_EQ(memo->hash(secret, is_remembered), key_hash(secret));
    EXPECT_TRUE(is_remembered);

    // The same length and last 8 bytes (so the same entry), one byte apart at the front:
    // hashed, never given the remembered one.
    std::string other = secret;
    other[0] = 'S';
    EXPECT_EQ(memo->hash(other, is_remembered), key_hash(other));
    EXPECT_FALSE(is_remembered);
    // A prefix of the remembered secret with the same tail is another secret too.
    const std::string shorter = secret.substr(1);
    EXPECT_EQ(memo->hash(shorter, is_remembered), key_hash(shorter));
    EXPECT_FALSE(is_remembered);

    // Remembering the other one replaces the first in their shared entry.
    memo->remember(other, key_hash(other));
    EXPECT_EQ(memo->hash(other, is_remembered), key_hash(other));
    EXPECT_TRUE(is_remembered);
    EXPECT_EQ(memo->hash(secret, is_remembered), key_hash(secret));
    EXPECT_FALSE(is_remembered);
}

TEST(KeyHashMemo, SecretsTooShortOrTooLongAreHashedEveryTime) {
    const auto memo = std::make_unique<KeyHashMemo>();
    for (const std::string& secret :
         {std::string("sk-1234"), std::string(KeyHashMemo::secret_bytes_max + 1, 'k')}) {
        memo->remember(secret, key_hash(secret));
        bool is_remembered = true;
        EXPECT_EQ(memo->hash(secret, is_remembered), key_hash(secret)) << secret.size();
        EXPECT_FALSE(is_remembered) << secret.size();
    }
    const std::string longest(KeyHashMemo::secret_bytes_max, 'k');
    memo->remember(longest, key_hash(longest));
    bool is_remembered = false;
    EXPECT_EQ(memo->hash(longest, is_remembered), key_hash(longest));
    EXPECT_TRUE(is_remembered);
}

}  // namespace
}  // namespace rw
