// tests/unit/proxy/admin/prices_test.cc — /admin/prices in process: USD decimal strings
// parsed exactly into nano-USD and shown back exactly, every inexact or malformed amount
// refused with the field named, PATCH as a new version of the same model and channel,
// DELETE as a mark that keeps the version listed with ?all=1, and the snapshot following.
#include <gtest/gtest.h>

#include <string>

#include "storage/snapshot.h"
#include "tests/unit/proxy/admin/admin_test_support.h"

namespace rw {
namespace {

using test::AdminServerTest;
using test::HttpReply;
using test::Json;

TEST_F(AdminServerTest, PriceCreatedExactlyAndShownExactly) {
    const HttpReply created = call("POST", "/admin/prices",
                                   R"({"model":"gpt-4o-mini","input_per_mtok":"0.15",
        "output_per_mtok":"0.60","cached_input_per_mtok":"0.075","per_request":"0.000000001",
        "effective_from":1700000000})");
    ASSERT_EQ(created.status, 201) << created.body;
    Json price(created.body);
    EXPECT_EQ(price.string("/object"), "price");
    EXPECT_EQ(price.string("/input_per_mtok"), "0.15");
    EXPECT_EQ(price.string("/output_per_mtok"), "0.6");
    EXPECT_EQ(price.string("/cached_input_per_mtok"), "0.075");
    EXPECT_TRUE(price.is_null("/cache_write_per_mtok"));  // Charged at the input rate.
    EXPECT_TRUE(price.is_null("/reasoning_per_mtok"));    // Charged at the output rate.
    EXPECT_EQ(price.string("/per_request"), "0.000000001");
    EXPECT_TRUE(price.is_null("/channel_id"));
    EXPECT_EQ(price.integer("/effective_from"), 1700000000);
    // Stored as integers, in the snapshot the shards price rows with.
    const PriceEntry* entry =
        snapshots_.publisher().current()->prices().find("gpt-4o-mini", 3, 1700000000000);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->rates.input_per_mtok, 150'000'000);
    EXPECT_EQ(entry->rates.cached_input_per_mtok, 75'000'000);
    EXPECT_EQ(entry->rates.cache_write_per_mtok, 150'000'000);
    EXPECT_EQ(entry->rates.per_request, 1);
    // Without effective_from a version starts at the next whole second, never before.
    const HttpReply later = call("POST", "/admin/prices",
                                 R"({"model":"x*","input_per_mtok":"1","output_per_mtok":"2"})");
    ASSERT_EQ(later.status, 201) << later.body;
    EXPECT_GT(Json(later.body).integer("/effective_from"), int64_t(std::time(nullptr)) - 1);
}

TEST_F(AdminServerTest, PriceAmountsMustBeExactDecimalStrings) {
    const auto refused = [&](const std::string& members) {
        const HttpReply reply = call("POST", "/admin/prices", "{" + members + "}");
        EXPECT_EQ(reply.status, 400) << members << " -> " << reply.body;
        return reply.body;
    };
    const std::string ok = R"("model":"m","output_per_mtok":"1",)";
    // More precision than nano-USD is refused, never rounded.
    EXPECT_NE(refused(ok + R"("input_per_mtok":"0.0000000001")").find("input_per_mtok"),
              std::string::npos);
    // A JSON number would be binary floating point: refused.
    EXPECT_NE(refused(ok + R"("input_per_mtok":0.15)").find("decimal string"), std::string::npos);
    for (const char* amount :
         {"\"-1\"", "\"1e3\"", "\"\"", "\".5\"", "\"1.\"", "\"10000.01\"", "\"abc\"", "null"}) {
        refused(ok + R"("input_per_mtok":)" + amount);
    }
    refused(R"("model":"m","input_per_mtok":"1")");  // output_per_mtok is required.
    refused(R"("model":"a*b","input_per_mtok":"1","output_per_mtok":"1")");
    refused(R"("input_per_mtok":"1","output_per_mtok":"1")");
    refused(ok + R"("input_per_mtok":"1","channel_id":42)");  // No such channel.
    refused(ok + R"("input_per_mtok":"1","per_request":"1000.000000001")");
    refused(ok + R"("input_per_mtok":"1","colour":"blue")");
    EXPECT_EQ(call("GET", "/admin/prices").body.find("\"model\""), std::string::npos);
}

TEST_F(AdminServerTest, PricePatchIsANewVersionAndDeleteAMark) {
    const HttpReply created = call("POST", "/admin/prices",
                                   R"({"model":"claude-*","input_per_mtok":"3",
        "output_per_mtok":"15","cache_write_per_mtok":"3.75","effective_from":100})");
    ASSERT_EQ(created.status, 201) << created.body;
    const int64_t first = Json(created.body).integer("/id");
    const HttpReply patched = call("PATCH", "/admin/prices/" + std::to_string(first),
                                   R"({"output_per_mtok":"16","effective_from":200})");
    ASSERT_EQ(patched.status, 201) << patched.body;
    Json version(patched.body);
    const int64_t second = version.integer("/id");
    EXPECT_NE(second, first);
    EXPECT_EQ(version.string("/model"), "claude-*");
    EXPECT_EQ(version.string("/input_per_mtok"), "3");
    EXPECT_EQ(version.string("/cache_write_per_mtok"), "3.75");
    EXPECT_EQ(version.string("/output_per_mtok"), "16");
    // The first version still prices requests that started before the second one.
    const Snapshot& snapshot = *snapshots_.publisher().current();
    EXPECT_EQ(snapshot.prices().find("claude-3", 0, 150'000)->id, first);
    EXPECT_EQ(snapshot.prices().find("claude-3", 0, 250'000)->id, second);
    EXPECT_EQ(
        call("PATCH", "/admin/prices/" + std::to_string(first), R"({"model":"other"})").status,
        400);
    EXPECT_EQ(call("PATCH", "/admin/prices/999", R"({"input_per_mtok":"1"})").status, 404);

    const HttpReply deleted = call("DELETE", "/admin/prices/" + std::to_string(second));
    ASSERT_EQ(deleted.status, 200) << deleted.body;
    EXPECT_FALSE(Json(deleted.body).is_null("/deleted_at"));
    EXPECT_EQ(call("DELETE", "/admin/prices/" + std::to_string(second)).status, 404);
    EXPECT_EQ(snapshots_.publisher().current()->prices().find("claude-3", 0, 250'000)->id, first);
    EXPECT_EQ(Json(call("GET", "/admin/prices").body).array_size("/data"), 1u);
    EXPECT_EQ(Json(call("GET", "/admin/prices?all=1").body).array_size("/data"), 2u);
    EXPECT_EQ(call("GET", "/admin/prices/" + std::to_string(second)).status, 200);
    EXPECT_EQ(call("GET", "/admin/prices?deleted=1").status, 400);
}

}  // namespace
}  // namespace rw
