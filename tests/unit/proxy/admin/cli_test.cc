// tests/unit/proxy/admin/cli_test.cc — the operator CLI: its pure helpers, and whole
// commands run through admin_cli_main() against a real in-process AdminServer (real
// sockets, SQLite in a temp dir, a Writer thread), with stdout/stderr captured. Checks
// the tables, the secret shown once on create, the upstream key never printed, and the
// errors for a server that is not running, a wrong token and API validation failures.
#include "proxy/admin/cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "proxy/admin/server.h"
#include "storage/keys.h"
#include "storage/queries.h"
#include "storage/snapshot.h"
#include "storage/writer.h"
#include "tests/unit/storage/storage_test_support.h"

namespace rw {
namespace {

TEST(AdminCli, ParsesDurations) {
    int64_t seconds = 0;
    ASSERT_TRUE(admin_cli_parse_duration("30d", seconds));
    EXPECT_EQ(seconds, 30 * 86400);
    ASSERT_TRUE(admin_cli_parse_duration("12h", seconds));
    EXPECT_EQ(seconds, 12 * 3600);
    ASSERT_TRUE(admin_cli_parse_duration("2w", seconds));
    EXPECT_EQ(seconds, 14 * 86400);
    ASSERT_TRUE(admin_cli_parse_duration("90s", seconds));
    EXPECT_EQ(seconds, 90);
    EXPECT_FALSE(admin_cli_parse_duration("30", seconds));
    EXPECT_FALSE(admin_cli_parse_duration("d", seconds));
    EXPECT_FALSE(admin_cli_parse_duration("-3d", seconds));
    EXPECT_FALSE(admin_cli_parse_duration("3y", seconds));
}

TEST(AdminCli, ErrorText) {
    EXPECT_EQ(
        admin_cli_error_text(
            R"({"error":{"message":"name is required","type":"invalid_request_error","code":"missing_field"}})"),
        "name is required (missing_field)");
    EXPECT_EQ(admin_cli_error_text("not json"), "");
    EXPECT_EQ(admin_cli_error_text(R"({"data":[]})"), "");
    EXPECT_TRUE(admin_cli_is_command("key"));
    EXPECT_TRUE(admin_cli_is_command("usage"));
    EXPECT_TRUE(admin_cli_is_command("latency"));
    EXPECT_FALSE(admin_cli_is_command("--help"));
}

struct CliRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

std::string read_all(FILE* file) {
    std::string text;
    std::rewind(file);
    char buffer[4096];
    size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
        text.append(buffer, got);
    }
    std::fclose(file);
    return text;
}

// Runs admin_cli_main with stdout and stderr redirected into temp files.
CliRun run_cli(std::vector<std::string> words) {
    std::vector<char*> argv;
    std::string program = "ringway";
    argv.push_back(program.data());
    for (std::string& word : words) {
        argv.push_back(word.data());
    }
    FILE* out = std::tmpfile();
    FILE* err = std::tmpfile();
    std::fflush(stdout);
    std::fflush(stderr);
    const int saved_out = ::dup(1);
    const int saved_err = ::dup(2);
    ::dup2(::fileno(out), 1);
    ::dup2(::fileno(err), 2);
    CliRun run;
    run.exit_code = admin_cli_main(int(argv.size()), argv.data());
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(saved_out, 1);
    ::dup2(saved_err, 2);
    ::close(saved_out);
    ::close(saved_err);
    run.out = read_all(out);
    run.err = read_all(err);
    return run;
}

constexpr const char* cli_token = "cli-admin-token-0123456789";

class AdminCliTest : public ::testing::Test {
protected:
    void SetUp() override {
        const StorageConfig storage = test::test_config(dir_);
        std::string error;
        ASSERT_TRUE(writer_.open(storage, 1, error)) << error;
        writer_thread_ = std::thread([this] { writer_.run(); });
        ASSERT_TRUE(snapshots_.open(storage, 1, error)) << error;
        ASSERT_TRUE(queries_.open(storage, error)) << error;
        Config config{};
        auto& address = reinterpret_cast<sockaddr_in&>(config.admin_listen.address);
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        config.admin_listen.address_bytes = sizeof(sockaddr_in);
        config.admin_token = cli_token;
        ASSERT_TRUE(server_.start(config, writer_, catalog_, queries_, error)) << error;
        ::setenv("RINGWAY_ADMIN_LISTEN", server_.listen_text().c_str(), 1);
        ::setenv("RINGWAY_ADMIN_TOKEN", cli_token, 1);
    }
    void TearDown() override {
        server_.stop();
        writer_.request_stop();
        if (writer_thread_.joinable()) {
            writer_thread_.join();
        }
        ::unsetenv("RINGWAY_ADMIN_LISTEN");
        ::unsetenv("RINGWAY_ADMIN_TOKEN");
    }

    test::TempDir dir_;
    Writer writer_;
    std::thread writer_thread_;
    SnapshotStore snapshots_;
    Catalog catalog_{writer_, snapshots_};
    Queries queries_;
    AdminServer server_;
};

TEST_F(AdminCliTest, KeyCreateListRevoke) {
    const CliRun created = run_cli({"key", "create", "--name", "app", "--quota", "1000000",
                                    "--models", "gpt-4o, o3", "--rpm", "60", "--expires", "30d"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    const size_t secret_at = created.out.find("sk-rw-");
    ASSERT_NE(secret_at, std::string::npos) << created.out;
    const std::string secret = created.out.substr(secret_at, key_secret_bytes);
    const KeyEntry* entry = snapshots_.publisher().current()->find_key(key_hash(secret));
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->rpm, 60u);
    EXPECT_TRUE(entry->allows_model("o3"));
    EXPECT_FALSE(entry->allows_model("gpt-4"));
    EXPECT_GT(entry->expires_at_s, int64_t(std::time(nullptr)) + 29 * 86400);
    EXPECT_NE(created.out.find("gpt-4o,o3"), std::string::npos) << created.out;

    const CliRun list = run_cli({"key", "list"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_NE(list.out.find("NAME"), std::string::npos);
    EXPECT_NE(list.out.find("app"), std::string::npos);
    EXPECT_NE(list.out.find("1000000"), std::string::npos);
    EXPECT_EQ(list.out.find(secret), std::string::npos);

    const CliRun json = run_cli({"key", "list", "--json"});
    ASSERT_EQ(json.exit_code, 0);
    EXPECT_TRUE(json.out.starts_with(R"({"object":"list","data":[{"id":)")) << json.out;

    const CliRun revoked = run_cli({"key", "revoke", std::to_string(entry->id)});
    ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
    EXPECT_NE(revoked.out.find("revoked"), std::string::npos);
    EXPECT_FALSE(snapshots_.publisher().current()->find_key(key_hash(secret))->is_active);
}

// --allowed-cidrs: a comma list on create and update, "any" clears it, a bad block is the
// server's 400 naming it.
TEST_F(AdminCliTest, KeyAllowedCidrs) {
    const CliRun created =
        run_cli({"key", "create", "--name", "lan", "--allowed-cidrs", "10.0.0.0/8, 2001:DB8::/32"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    EXPECT_NE(created.out.find("ALLOWED_CIDRS"), std::string::npos) << created.out;
    EXPECT_NE(created.out.find("10.0.0.0/8,2001:db8::/32"), std::string::npos) << created.out;
    const size_t secret_at = created.out.find("sk-rw-");
    ASSERT_NE(secret_at, std::string::npos) << created.out;
    const KeyHash hash = key_hash(created.out.substr(secret_at, key_secret_bytes));
    const KeyEntry* entry = snapshots_.publisher().current()->find_key(hash);
    ASSERT_NE(entry, nullptr);
    ASSERT_EQ(entry->allowed_cidrs.size(), 2u);
    IpAddress inside;
    IpAddress outside;
    ASSERT_TRUE(ip_parse("10.1.2.3", inside));
    ASSERT_TRUE(ip_parse("192.0.2.1", outside));
    EXPECT_TRUE(entry->allows_address(inside));
    EXPECT_FALSE(entry->allows_address(outside));
    const std::string id = std::to_string(entry->id);

    const CliRun bad = run_cli({"key", "update", id, "--allowed-cidrs", "10.0.0.0/8,10.0.0.1/40"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("\"10.0.0.1/40\""), std::string::npos) << bad.err;
    EXPECT_EQ(snapshots_.publisher().current()->find_key(hash)->allowed_cidrs.size(), 2u);

    const CliRun cleared = run_cli({"key", "update", id, "--allowed-cidrs", "any"});
    ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
    entry = snapshots_.publisher().current()->find_key(hash);
    EXPECT_TRUE(entry->allowed_cidrs.empty());
    EXPECT_TRUE(entry->allows_address(outside));
}

// --tpm and --limits JSON: stored, in the snapshot with a rate slot per model, shown by the
// table; "none" clears the limits; a bad limits object is the server's 400.
TEST_F(AdminCliTest, KeyTokensPerMinuteAndPerModelLimits) {
    const CliRun created = run_cli({"key", "create", "--name", "limited", "--tpm", "90000",
                                    "--limits", R"({"gpt-4o":{"rpm":60,"tpm":9000}})"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    EXPECT_NE(created.out.find("TPM"), std::string::npos) << created.out;
    EXPECT_NE(created.out.find(R"({"gpt-4o":{"rpm":60,"tpm":9000}})"), std::string::npos)
        << created.out;
    const size_t secret_at = created.out.find("sk-rw-");
    ASSERT_NE(secret_at, std::string::npos) << created.out;
    const KeyHash hash = key_hash(created.out.substr(secret_at, key_secret_bytes));
    const KeyEntry* entry = snapshots_.publisher().current()->find_key(hash);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->tpm, 90000u);
    const ModelLimit* model = entry->model_limit("gpt-4o");
    ASSERT_NE(model, nullptr);
    EXPECT_EQ(model->rpm, 60u);
    EXPECT_EQ(model->tpm, 9000u);
    EXPECT_EQ(entry->model_limit("gpt-4o-mini"), nullptr);
    const std::string id = std::to_string(entry->id);

    const CliRun bad = run_cli({"key", "update", id, "--limits", R"({"gpt-4o":{"rpm":"x"}})"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("limits"), std::string::npos) << bad.err;

    const CliRun cleared = run_cli({"key", "update", id, "--limits", "none", "--tpm", "0"});
    ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
    entry = snapshots_.publisher().current()->find_key(hash);
    EXPECT_TRUE(entry->model_limits.empty());
    EXPECT_EQ(entry->tpm, 0u);
}

TEST_F(AdminCliTest, ChannelAddNeverPrintsTheUpstreamKey) {
    const std::string upstream_key = "sk-cli-upstream-secret-abcd1234";
    ::setenv("RINGWAY_TEST_UPSTREAM_KEY", upstream_key.c_str(), 1);
    const CliRun added =
        run_cli({"channel", "add", "--name", "main", "--kind", "openai", "--base-url",
                 "https://api.openai.com", "--api-key-env", "RINGWAY_TEST_UPSTREAM_KEY", "--models",
                 "gpt-4o", "--priority", "-2"});
    ASSERT_EQ(added.exit_code, 0) << added.err;
    EXPECT_EQ(added.out.find(upstream_key), std::string::npos);
    EXPECT_NE(added.out.find("sk-\u20261234"), std::string::npos) << added.out;
    const auto channels = snapshots_.publisher().current()->channels();
    ASSERT_EQ(channels.size(), 1u);
    EXPECT_EQ(channels[0].api_key, upstream_key);
    EXPECT_EQ(channels[0].priority, -2);

    const CliRun list = run_cli({"channel", "list"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_NE(list.out.find("https://api.openai.com"), std::string::npos);
    EXPECT_EQ(list.out.find(upstream_key), std::string::npos);

    const CliRun missing_env =
        run_cli({"channel", "add", "--name", "x", "--kind", "openai", "--base-url",
                 "https://api.openai.com", "--api-key-env", "RINGWAY_TEST_UNSET_VARIABLE"});
    EXPECT_EQ(missing_env.exit_code, 2);
    EXPECT_NE(missing_env.err.find("RINGWAY_TEST_UNSET_VARIABLE"), std::string::npos);

    const CliRun bad_url =
        run_cli({"channel", "add", "--name", "x", "--kind", "openai", "--base-url",
                 "ftp://example.com", "--api-key-env", "RINGWAY_TEST_UPSTREAM_KEY"});
    EXPECT_EQ(bad_url.exit_code, 1);
    EXPECT_NE(bad_url.err.find("admin API error 400"), std::string::npos) << bad_url.err;
    EXPECT_NE(bad_url.err.find("(invalid_field)"), std::string::npos) << bad_url.err;
    EXPECT_EQ(bad_url.err.find(upstream_key), std::string::npos);
    ::unsetenv("RINGWAY_TEST_UPSTREAM_KEY");
}

// `ringway <command> [verb] --help` prints that command's usage on stdout, exits 0 and sends
// nothing (the server is never asked, so it needs no token either).
TEST(AdminCli, HelpPerCommand) {
    const CliRun add = run_cli({"channel", "add", "--help"});
    EXPECT_EQ(add.exit_code, 0) << add.err;
    EXPECT_NE(add.out.find("ringway channel add --name NAME"), std::string::npos) << add.out;
    EXPECT_NE(add.out.find("--model-map"), std::string::npos);
    EXPECT_EQ(add.out.find("ringway key create"), std::string::npos);
    EXPECT_EQ(add.out.find("ringway channel list"), std::string::npos);
    const CliRun channel = run_cli({"channel", "--help"});
    EXPECT_EQ(channel.exit_code, 0);
    EXPECT_NE(channel.out.find("ringway channel test ID"), std::string::npos);
    EXPECT_EQ(channel.out.find("ringway key"), std::string::npos);
    const CliRun logs = run_cli({"logs", "--help"});
    EXPECT_EQ(logs.exit_code, 0);
    EXPECT_NE(logs.out.find("logs --request ID"), std::string::npos);
    const CliRun update = run_cli({"key", "update", "7", "--name", "x", "--help"});
    EXPECT_EQ(update.exit_code, 0);
    EXPECT_NE(update.out.find("ringway key update ID"), std::string::npos);
    const CliRun all = run_cli({"--help"});
    EXPECT_EQ(all.exit_code, 0);
    EXPECT_NE(all.out.find("ringway usage"), std::string::npos);
}

TEST_F(AdminCliTest, ChannelFieldsOnlyTheCliCouldNotSetBefore) {
    ::setenv("RINGWAY_TEST_UPSTREAM_KEY", "sk-cli-upstream-secret-abcd1234", 1);
    const CliRun added = run_cli(
        {"channel", "add", "--name", "mapped", "--kind", "openai", "--base-url",
         "https://api.openai.com", "--api-key-env", "RINGWAY_TEST_UPSTREAM_KEY", "--model-map",
         "gpt-4o=gpt-4o-2024-08-06,mini=gpt-4o-mini", "--auto-disable=false"});
    ASSERT_EQ(added.exit_code, 0) << added.err;
    auto channels = snapshots_.publisher().current()->channels();
    ASSERT_EQ(channels.size(), 1u);
    EXPECT_EQ(channels[0].model_map,
              (std::vector<std::pair<std::string, std::string>>{{"gpt-4o", "gpt-4o-2024-08-06"},
                                                                {"mini", "gpt-4o-mini"}}));
    EXPECT_FALSE(channels[0].auto_disable);
    const std::string id = std::to_string(channels[0].id);
    const CliRun updated = run_cli({"channel", "update", id, "--model-map", "none",
                                    "--allow-private-network=true", "--auto-disable"});
    ASSERT_EQ(updated.exit_code, 0) << updated.err;
    channels = snapshots_.publisher().current()->channels();
    EXPECT_TRUE(channels[0].model_map.empty());
    EXPECT_TRUE(channels[0].allow_private_network);
    EXPECT_TRUE(channels[0].auto_disable);
    const CliRun bad = run_cli({"channel", "update", id, "--model-map", "no-equals-sign"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--model-map"), std::string::npos);
    ::unsetenv("RINGWAY_TEST_UPSTREAM_KEY");
}

TEST_F(AdminCliTest, UsageAndLogs) {
    const CliRun created = run_cli({"key", "create", "--name", "metered"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    const int64_t key_id = snapshots_.publisher().current()->keys()[0].id;
    for (uint64_t i = 0; i < 3; i++) {
        ASSERT_TRUE(writer_.queue(0).try_reserve());
        writer_.queue(0).push(test::make_record(i, key_id, 40, 1700000000000));
    }
    writer_.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer_.rows_written() == 3; }));
    const CliRun usage =
        run_cli({"usage", "--key", std::to_string(key_id), "--since", "2023-11-01"});
    ASSERT_EQ(usage.exit_code, 0) << usage.err;
    EXPECT_NE(usage.out.find("2023-11-14"), std::string::npos) << usage.out;
    EXPECT_NE(usage.out.find("120"), std::string::npos) << usage.out;  // 3 × 40 tokens.
    const CliRun recent = run_cli({"usage", "--since", "7d"});         // The rows are from 2023.
    ASSERT_EQ(recent.exit_code, 0) << recent.err;
    EXPECT_EQ(recent.out.find("2023-11-14"), std::string::npos);
    const CliRun logs = run_cli({"logs", "--limit", "2"});
    ASSERT_EQ(logs.exit_code, 0) << logs.err;
    EXPECT_NE(logs.out.find("gpt-4o-mini"), std::string::npos) << logs.out;
    EXPECT_NE(logs.out.find("--before"), std::string::npos) << logs.out;  // A full page.
}

// Every /admin/logs filter has an option (--status, --end-reason beside --key, --limit,
// --before, --request), and `ringway latency` prints /admin/latency's days.
TEST_F(AdminCliTest, LogFiltersAndLatency) {
    const CliRun created = run_cli({"key", "create", "--name", "filtered"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    const int64_t key_id = snapshots_.publisher().current()->keys()[0].id;
    const EndReason reasons[] = {EndReason::complete, EndReason::upstream_error,
                                 EndReason::client_gone};
    const uint16_t statuses[] = {200, 502, 200};
    for (uint64_t i = 0; i < 3; i++) {
        UsageRecord record = test::make_record(i, key_id, 40, 1700000000000);
        record.status = statuses[i];
        record.end_reason = reasons[i];
        record.latency_us = 2000 * (i + 1);
        ASSERT_TRUE(writer_.queue(0).try_reserve());
        writer_.queue(0).push(record);
    }
    writer_.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer_.rows_written() == 3; }));
    const CliRun failed = run_cli({"logs", "--status", "502"});
    ASSERT_EQ(failed.exit_code, 0) << failed.err;
    EXPECT_NE(failed.out.find("upstream_error"), std::string::npos) << failed.out;
    EXPECT_EQ(failed.out.find("client_gone"), std::string::npos) << failed.out;
    const CliRun gone =
        run_cli({"logs", "--key", "filtered", "--end-reason", "client_gone", "--limit", "5"});
    ASSERT_EQ(gone.exit_code, 0) << gone.err;
    EXPECT_NE(gone.out.find("client_gone"), std::string::npos) << gone.out;
    EXPECT_EQ(gone.out.find("upstream_error"), std::string::npos) << gone.out;
    EXPECT_NE(gone.out.find("req-2"), std::string::npos) << gone.out;
    EXPECT_EQ(run_cli({"logs", "--end-reason", "x;y"}).exit_code, 2);
    EXPECT_EQ(run_cli({"logs", "--status", "abc"}).exit_code, 2);
    const CliRun latency = run_cli({"latency", "--since", "2023-11-01"});
    ASSERT_EQ(latency.exit_code, 0) << latency.err;
    EXPECT_NE(latency.out.find("LATENCY_P50_MS"), std::string::npos) << latency.out;
    EXPECT_NE(latency.out.find("2023-11-14"), std::string::npos) << latency.out;
    EXPECT_NE(latency.out.find("4.0"), std::string::npos) << latency.out;  // p50 of 2, 4, 6 ms.
    const CliRun help = run_cli({"latency", "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("ringway latency"), std::string::npos) << help.out;
    EXPECT_NE(run_cli({"logs", "--help"}).out.find("--end-reason"), std::string::npos);
}

TEST_F(AdminCliTest, PriceSetListRemoveAndUsageCost) {
    const CliRun set =
        run_cli({"price", "set", "--model", "gpt-4o-mini", "--input", "0.15", "--output", "0.60",
                 "--cached-input", "0.075", "--effective-from", "1600000000"});
    ASSERT_EQ(set.exit_code, 0) << set.err;
    EXPECT_NE(set.out.find("0.075"), std::string::npos) << set.out;
    const CliRun inexact =
        run_cli({"price", "set", "--model", "m", "--input", "0.0000000001", "--output", "1"});
    EXPECT_EQ(inexact.exit_code, 1);
    EXPECT_NE(inexact.err.find("input_per_mtok"), std::string::npos) << inexact.err;
    EXPECT_EQ(run_cli({"price", "set", "--model", "m", "--input", "1"}).exit_code, 2);
    const CliRun list = run_cli({"price", "list"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_NE(list.out.find("gpt-4o-mini"), std::string::npos) << list.out;
    EXPECT_NE(list.out.find("CACHED_IN"), std::string::npos) << list.out;
    const int64_t price_id =
        snapshots_.publisher().current()->prices().find("gpt-4o-mini", 0, 1700000000000)->id;

    // A priced row shows its cost in usage and logs.
    const CliRun created = run_cli({"key", "create", "--name", "spender"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    const int64_t key_id = snapshots_.publisher().current()->keys()[0].id;
    UsageRecord record = test::make_record(1, key_id, 40, 1700000000000);
    record.cost_nano = 1'234'500;  // $0.0012345
    ASSERT_TRUE(writer_.queue(0).try_reserve());
    writer_.queue(0).push(record);
    writer_.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer_.rows_written() == 1; }));
    const CliRun usage = run_cli({"usage", "--since", "2023-11-01", "--group-by", "key,model"});
    ASSERT_EQ(usage.exit_code, 0) << usage.err;
    EXPECT_NE(usage.out.find("0.0012345"), std::string::npos) << usage.out;
    EXPECT_NE(usage.out.find("gpt-4o-mini-2024-07-18"), std::string::npos) << usage.out;
    EXPECT_EQ(run_cli({"usage", "--group-by", "key;drop"}).exit_code, 2);
    const CliRun logs = run_cli({"logs"});
    EXPECT_NE(logs.out.find("0.0012345"), std::string::npos) << logs.out;
    const CliRun keys = run_cli({"key", "list"});
    EXPECT_NE(keys.out.find("0.0012345"), std::string::npos) << keys.out;  // SPEND_USD.

    const CliRun removed = run_cli({"price", "rm", std::to_string(price_id)});
    ASSERT_EQ(removed.exit_code, 0) << removed.err;
    EXPECT_EQ(run_cli({"price", "list"}).out.find("gpt-4o-mini"), std::string::npos);
    EXPECT_NE(run_cli({"price", "list", "--all"}).out.find("gpt-4o-mini"), std::string::npos);
}

TEST_F(AdminCliTest, AliasAddListUpdateRemove) {
    const CliRun added = run_cli({"alias", "add", "fast", "--models", "gpt-4o-mini, claude-haiku"});
    ASSERT_EQ(added.exit_code, 0) << added.err;
    EXPECT_NE(added.out.find("gpt-4o-mini,claude-haiku"), std::string::npos) << added.out;
    const AliasEntry* alias = snapshots_.publisher().current()->find_alias("fast");
    ASSERT_NE(alias, nullptr);  // The snapshot was reloaded before the answer.
    EXPECT_EQ(alias->models, (std::vector<std::string>{"gpt-4o-mini", "claude-haiku"}));
    const std::string id = std::to_string(alias->id);
    EXPECT_EQ(run_cli({"alias", "add", "fast", "--models", "x"}).exit_code, 1);  // Taken.
    const CliRun pattern = run_cli({"alias", "add", "p", "--models", "gpt-*"});
    EXPECT_EQ(pattern.exit_code, 1);
    EXPECT_NE(pattern.err.find("not a pattern"), std::string::npos) << pattern.err;
    EXPECT_EQ(run_cli({"alias", "add", "p"}).exit_code, 2);  // --models is required.
    const CliRun list = run_cli({"alias", "list"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_NE(list.out.find("NAME"), std::string::npos) << list.out;
    EXPECT_NE(list.out.find("fast"), std::string::npos) << list.out;
    const CliRun updated = run_cli({"alias", "update", id, "--name", "quick", "--models", "o3"});
    ASSERT_EQ(updated.exit_code, 0) << updated.err;
    EXPECT_EQ(snapshots_.publisher().current()->find_alias("fast"), nullptr);
    ASSERT_NE(snapshots_.publisher().current()->find_alias("quick"), nullptr);
    EXPECT_EQ(snapshots_.publisher().current()->find_alias("quick")->models,
              (std::vector<std::string>{"o3"}));
    const CliRun removed = run_cli({"alias", "rm", id});
    ASSERT_EQ(removed.exit_code, 0) << removed.err;
    EXPECT_TRUE(snapshots_.publisher().current()->aliases().empty());
    EXPECT_EQ(run_cli({"alias", "rm", id}).exit_code, 1);  // 404 now.
    const CliRun help = run_cli({"alias", "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("ringway alias add NAME --models"), std::string::npos) << help.out;
    EXPECT_NE(help.out.find("ringway alias rm ID"), std::string::npos) << help.out;
}

// --key takes an id (all digits, sent as is, even when a key is named like a number) or a
// name, resolved through GET /admin/keys (revoked keys included); none or several → exit 1.
TEST_F(AdminCliTest, KeyByName) {
    for (const char* name : {"2", "other", "dup", "dup", "gone"}) {
        const CliRun created = run_cli({"key", "create", "--name", name});
        ASSERT_EQ(created.exit_code, 0) << created.err;
    }
    const auto id_of = [&](std::string_view name) {
        int64_t id = 0;
        for (const KeyEntry& key : snapshots_.publisher().current()->keys()) {
            id = key.name == name ? key.id : id;
        }
        return id;
    };
    const int64_t numeric_named = id_of("2");
    const int64_t other = id_of("other");
    const int64_t gone = id_of("gone");
    ASSERT_NE(numeric_named, 2);  // So "--key 2" can only mean id 2.
    ASSERT_EQ(other, 2);
    ASSERT_EQ(run_cli({"key", "revoke", std::to_string(gone)}).exit_code, 0);
    std::vector<int64_t> dup_ids;
    for (const KeyEntry& key : snapshots_.publisher().current()->keys()) {
        if (key.name == "dup") {
            dup_ids.push_back(key.id);
        }
    }
    ASSERT_EQ(dup_ids.size(), 2u);
    uint64_t sequence = 0;
    for (const int64_t key_id : {numeric_named, other, gone}) {
        ASSERT_TRUE(writer_.queue(0).try_reserve());
        writer_.queue(0).push(test::make_record(sequence++, key_id, 40, 1700000000000));
    }
    writer_.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer_.rows_written() == 3; }));
    const auto key_json = [](int64_t id) { return "\"key_id\":" + std::to_string(id) + ","; };
    // The in-process server logs to the same stderr: look for the CLI's own line.
    const auto has_line = [](const std::string& text, const std::string& line) {
        return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
    };

    const CliRun by_id = run_cli({"usage", "--key", "2", "--since", "2023-11-01", "--json"});
    ASSERT_EQ(by_id.exit_code, 0) << by_id.err;
    EXPECT_NE(by_id.out.find(key_json(2)), std::string::npos) << by_id.out;
    EXPECT_EQ(by_id.out.find(key_json(numeric_named)), std::string::npos) << by_id.out;

    const CliRun by_name = run_cli({"usage", "--key", "other", "--since", "2023-11-01", "--json"});
    ASSERT_EQ(by_name.exit_code, 0) << by_name.err;
    EXPECT_EQ(by_name.out, by_id.out);
    const CliRun table = run_cli({"usage", "--key=other", "--since", "2023-11-01"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("2023-11-14"), std::string::npos) << table.out;
    const CliRun logs = run_cli({"logs", "--key", "other", "--json"});
    ASSERT_EQ(logs.exit_code, 0) << logs.err;
    EXPECT_NE(logs.out.find(key_json(other)), std::string::npos) << logs.out;
    EXPECT_EQ(logs.out.find(key_json(numeric_named)), std::string::npos) << logs.out;
    const CliRun revoked = run_cli({"logs", "--key", "gone", "--json"});
    ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
    EXPECT_NE(revoked.out.find(key_json(gone)), std::string::npos) << revoked.out;
    EXPECT_EQ(revoked.out.find(key_json(other)), std::string::npos) << revoked.out;

    const CliRun unknown = run_cli({"usage", "--key", "app", "--since", "7d"});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_EQ(unknown.out, "");
    EXPECT_TRUE(has_line(unknown.err, "ringway: no key named \"app\"")) << unknown.err;
    const CliRun ambiguous = run_cli({"logs", "--key", "dup"});
    EXPECT_EQ(ambiguous.exit_code, 1);
    EXPECT_EQ(ambiguous.out, "");
    EXPECT_TRUE(has_line(ambiguous.err, "ringway: 2 keys are named \"dup\" (ids " +
                                            std::to_string(dup_ids[0]) + ", " +
                                            std::to_string(dup_ids[1]) + "); pass --key ID"))
        << ambiguous.err;
    EXPECT_EQ(run_cli({"usage", "--key", ""}).exit_code, 2);
    EXPECT_EQ(run_cli({"usage", "--key", "app", "--bogus", "1"}).exit_code, 2);

    ::setenv("RINGWAY_ADMIN_TOKEN", "wrong-token-000000000000", 1);
    const CliRun refused = run_cli({"usage", "--key", "other"});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find("refused RINGWAY_ADMIN_TOKEN (401)"), std::string::npos)
        << refused.err;
    ::setenv("RINGWAY_ADMIN_TOKEN", cli_token, 1);
}

TEST_F(AdminCliTest, Errors) {
    ::setenv("RINGWAY_ADMIN_TOKEN", "wrong-token-000000000000", 1);
    const CliRun refused = run_cli({"key", "list"});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find("401"), std::string::npos) << refused.err;
    EXPECT_EQ(refused.err.find("wrong-token"), std::string::npos);
    ::unsetenv("RINGWAY_ADMIN_TOKEN");
    const CliRun no_token = run_cli({"key", "list"});
    EXPECT_EQ(no_token.exit_code, 1);
    EXPECT_NE(no_token.err.find("RINGWAY_ADMIN_TOKEN is not set"), std::string::npos);
    ::setenv("RINGWAY_ADMIN_TOKEN", cli_token, 1);
    EXPECT_EQ(run_cli({"key", "create"}).exit_code, 2);  // No --name.
    EXPECT_EQ(run_cli({"key", "frobnicate"}).exit_code, 2);
    EXPECT_EQ(run_cli({"key", "list", "--bogus", "1"}).exit_code, 2);
    EXPECT_EQ(run_cli({"key", "revoke", "abc"}).exit_code, 2);
    const CliRun missing = run_cli({"key", "show", "999"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("404"), std::string::npos) << missing.err;

    // Nothing listens on the port of a stopped server: a clear "is it running" message.
    const std::string address = server_.listen_text();
    server_.stop();
    const CliRun down = run_cli({"key", "list"});
    EXPECT_EQ(down.exit_code, 1);
    EXPECT_NE(down.err.find("cannot reach the admin API at " + address), std::string::npos)
        << down.err;
    EXPECT_NE(down.err.find("Connection refused"), std::string::npos) << down.err;
    EXPECT_NE(down.err.find("is ringway running with RINGWAY_ADMIN_TOKEN set?"), std::string::npos);
}

}  // namespace
}  // namespace rw
