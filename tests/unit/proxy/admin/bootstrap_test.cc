// tests/unit/proxy/admin/bootstrap_test.cc — first-start channels from OPENAI_API_KEY /
// ANTHROPIC_API_KEY: created once on an empty database (a second start changes nothing),
// OPENAI_BASE_URL's /v1 dropped and a local one allowed, a bad one refused without the
// secret in the error, and the default OpenAI base.
#include "proxy/admin/bootstrap.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>

#include "storage/keys.h"
#include "storage/queries.h"
#include "storage/snapshot.h"
#include "storage/writer.h"
#include "tests/unit/proxy/admin/admin_test_support.h"
#include "tests/unit/storage/storage_test_support.h"

namespace rw {
namespace {

using test::AdminServerTest;

const char* map_lookup(const char* name, void* context) {
    const auto& env = *static_cast<std::map<std::string, std::string>*>(context);
    const auto found = env.find(name);
    return found == env.end() ? nullptr : found->second.c_str();
}

TEST_F(AdminServerTest, BootstrapCreatesChannelsOnce) {
    std::map<std::string, std::string> env;
    std::string error;
    ASSERT_TRUE(bootstrap_channels_from_env(catalog_, queries_, map_lookup, &env, error)) << error;
    EXPECT_TRUE(snapshot().channels().empty());  // Nothing set: nothing created.

    env["OPENAI_API_KEY"] = "sk-openai-bootstrap-secret-1234";
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9999/v1/";
    env["ANTHROPIC_API_KEY"] = "sk-ant-bootstrap-secret-5678";
    ASSERT_TRUE(bootstrap_channels_from_env(catalog_, queries_, map_lookup, &env, error)) << error;
    ASSERT_EQ(snapshot().channels().size(), 2u);
    const ChannelEntry* openai = nullptr;
    const ChannelEntry* anthropic = nullptr;
    for (const ChannelEntry& channel : snapshot().channels()) {
        (channel.kind == ChannelKind::openai ? openai : anthropic) = &channel;
    }
    ASSERT_NE(openai, nullptr);
    ASSERT_NE(anthropic, nullptr);
    EXPECT_EQ(openai->base_url, "http://127.0.0.1:9999");
    EXPECT_TRUE(openai->allow_private_network);  // The operator named a local server.
    EXPECT_EQ(openai->api_key, "sk-openai-bootstrap-secret-1234");
    EXPECT_TRUE(openai->models.empty());  // Every model.
    EXPECT_EQ(anthropic->kind, ChannelKind::anthropic);
    EXPECT_EQ(anthropic->base_url, "https://api.anthropic.com");
    EXPECT_FALSE(anthropic->allow_private_network);

    // A second start finds channels and changes nothing.
    env["OPENAI_API_KEY"] = "sk-openai-other-secret-0000";
    ASSERT_TRUE(bootstrap_channels_from_env(catalog_, queries_, map_lookup, &env, error)) << error;
    EXPECT_EQ(snapshot().channels().size(), 2u);
}

TEST_F(AdminServerTest, BootstrapRefusesABadBaseUrl) {
    std::map<std::string, std::string> env{{"OPENAI_API_KEY", "sk-openai-bootstrap-secret-1234"},
                                           {"OPENAI_BASE_URL", "http://169.254.169.254"}};
    std::string error;
    EXPECT_FALSE(bootstrap_channels_from_env(catalog_, queries_, map_lookup, &env, error));
    EXPECT_NE(error.find("OPENAI_API_KEY"), std::string::npos);
    EXPECT_EQ(error.find("sk-openai"), std::string::npos);  // Never the secret.
    EXPECT_TRUE(snapshot().channels().empty());
}

TEST(AdminBootstrapDefault, OpenAiDefaultBase) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    SnapshotStore snapshots;
    ASSERT_TRUE(snapshots.open(config, 1, error)) << error;
    Catalog catalog(writer, snapshots);
    Queries queries;
    ASSERT_TRUE(queries.open(config, error)) << error;
    std::map<std::string, std::string> env{{"OPENAI_API_KEY", "sk-openai-bootstrap-secret-1234"}};
    EXPECT_TRUE(bootstrap_channels_from_env(catalog, queries, map_lookup, &env, error)) << error;
    const auto channels = queries.list_channels();
    ASSERT_TRUE(channels.ok());
    ASSERT_EQ(channels.value.size(), 1u);
    EXPECT_EQ(channels.value[0].base_url, "https://api.openai.com");
    EXPECT_EQ(channels.value[0].name, "openai");
    EXPECT_FALSE(channels.value[0].allow_private_network);
    writer.request_stop();
    writer_thread.join();
}

}  // namespace
}  // namespace rw
