// tests/e2e/proxy_tls_test.cc — https channels (RULES security §6): the mock upstream
// serves TLS with a certificate for 127.0.0.1 signed by a throw-away CA made with the
// openssl CLI in the test's temp dir. A channel that does not trust that CA must fail
// (502) without the upstream ever seeing a request; with ca_file naming the CA it must
// work. And an https channel must never fall back to plaintext: pointed at a plain-HTTP
// server, nothing readable (no request, no key) may arrive there. A long TLS stream to a
// client that reads slowly (the stream paused and resumed hundreds of times) completes.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

std::string find_openssl() {
    for (const char* path : {"/usr/bin/openssl", "/usr/local/bin/openssl", "/bin/openssl"}) {
        if (::access(path, X_OK) == 0) {
            return path;
        }
    }
    return {};
}

// Runs openssl with `args` in `dir`; false (with output) on failure.
bool openssl(const std::string& program, const std::vector<std::string>& args,
             const std::string& dir, std::string* output) {
    Process process;
    SpawnOptions options;
    options.program = program;
    options.args = args;
    options.working_dir = dir;
    if (!process.start(options, output)) {
        return false;
    }
    const auto status = process.wait_exit(Deadline::after_ms(30000));
    *output = process.output(Stream::out) + process.output(Stream::err);
    return status.has_value() && status->is_exited && status->code == 0;
}

class ProxyTlsTest : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string program = find_openssl();
        if (program.empty()) {
            std::printf("SKIPPED: the openssl CLI is not installed\n");
            std::fflush(stdout);
            std::_Exit(77);
        }
        const std::string& dir = certs_.path();
        FILE* ext = std::fopen((dir + "/leaf.ext").c_str(), "w");
        ASSERT_NE(ext, nullptr);
        std::fputs(
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
            "extendedKeyUsage=serverAuth\n",
            ext);
        std::fclose(ext);
        std::string output;
        ASSERT_TRUE(openssl(program,
                            {"req", "-x509", "-newkey", "ec", "-pkeyopt",
                             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out",
                             "ca.pem", "-days", "2", "-subj", "/CN=ringway e2e test CA"},
                            dir, &output))
            << output;
        ASSERT_TRUE(
            openssl(program,
                    {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"},
                    dir, &output))
            << output;
        ASSERT_TRUE(
            openssl(program,
                    {"x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext"},
                    dir, &output))
            << output;
        ASSERT_NO_FATAL_FAILURE(start_mock(
            tls_mock_, {}, {"--tls-cert", dir + "/leaf.pem", "--tls-key", dir + "/leaf.key"}));
        ASSERT_NO_FATAL_FAILURE(gateway_.start(
            {{"RINGWAY_SHARDS", "1"}, {"RINGWAY_UPSTREAM_CONNECT_TIMEOUT_MS", "1500"}}));
        key_ = gateway_.create_key(R"({"name":"app"})");
    }

    std::string https_url(uint16_t port) { return "https://127.0.0.1:" + std::to_string(port); }

    // The TLS mock's statistics, fetched with curl (the harness client speaks plain TCP).
    std::string mock_stats_text_tls() {
        if (::access("/usr/bin/curl", X_OK) != 0) {
            std::printf("SKIPPED: curl is not installed\n");
            std::fflush(stdout);
            std::_Exit(77);
        }
        Process curl;
        SpawnOptions options;
        options.program = "/usr/bin/curl";
        options.args = {"-sS",
                        "--max-time",
                        "10",
                        "--cacert",
                        certs_.path() + "/ca.pem",
                        https_url(tls_mock_.port()) + "/__mock/stats"};
        std::string error;
        EXPECT_TRUE(curl.start(options, &error)) << error;
        const auto status = curl.wait_exit(Deadline::after_ms(15000));
        EXPECT_TRUE(status.has_value() && status->is_exited && status->code == 0)
            << curl.output(Stream::err);
        return curl.output(Stream::out);
    }
    int64_t tls_mock_requests() { return Json(mock_stats_text_tls()).integer("/requests_total"); }

    TempDir certs_;
    MockUpstream tls_mock_;
    Gateway gateway_;
    Key key_;
};

TEST_F(ProxyTlsTest, UntrustedCertificateFailsWithoutReachingTheUpstream) {
    ChannelSpec spec;
    spec.name = "untrusted";
    spec.base_url = https_url(tls_mock_.port());
    spec.models = {"gpt-4o-mini"};
    ASSERT_GT(gateway_.create_channel(spec), 0);
    gateway_.wait_channels_routable();
    const Response response = gateway_.chat(key_, chat_body("gpt-4o-mini", false));
    EXPECT_EQ(response.status, 502) << response.body;
    std::string code;
    EXPECT_EQ(check_error_response(response, &code), "");
    EXPECT_EQ(tls_mock_requests(), 0) << "a request got through an untrusted TLS peer";
}

TEST_F(ProxyTlsTest, CaFileMakesTheChannelWork) {
    ChannelSpec spec;
    spec.name = "trusted";
    spec.base_url = https_url(tls_mock_.port());
    spec.models = {"gpt-4o-mini"};
    spec.extra_json = R"("ca_file":")" + certs_.path() + R"(/ca.pem")";
    ASSERT_GT(gateway_.create_channel(spec), 0);
    const auto probes = gateway_.wait_channels_routable();
    EXPECT_EQ(probes.at("trusted").status, 200) << probes.at("trusted").body;
    const Response whole = gateway_.chat(key_, chat_body("gpt-4o-mini", false));
    EXPECT_EQ(whole.status, 200) << whole.body;
    const Response streamed = gateway_.chat(key_, chat_body("gpt-4o-mini", true));
    EXPECT_EQ(streamed.status, 200) << streamed.body;
    EXPECT_EQ(sse_events(streamed.body).back(), "data: [DONE]") << escape_bytes(streamed.body);
    Json stats(mock_stats_text_tls());
    EXPECT_EQ(stats.string("/last_request/headers/authorization"),
              "Bearer " + std::string(upstream_key));
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 2, Deadline::after_ms(5000));
    ASSERT_EQ(rows.size(), 2u);
    for (const Row& row : rows) {
        EXPECT_EQ(row.at("usage_source"), "reported") << describe_row(row);
    }
}

TEST_F(ProxyTlsTest, HttpsChannelNeverSpeaksPlaintext) {
    MockUpstream plain;
    ASSERT_NO_FATAL_FAILURE(start_mock(plain));
    ChannelSpec spec;
    spec.name = "plain-behind-https";
    spec.base_url = https_url(plain.port());
    spec.models = {"gpt-4o-mini"};
    ASSERT_GT(gateway_.create_channel(spec), 0);
    gateway_.wait_channels_routable();
    // The plain server waits for a request head that never comes (a ClientHello has no
    // CRLFCRLF), so the handshake ends at the connect deadline (504) or fails (502).
    const Response response = gateway_.chat(key_, chat_body("gpt-4o-mini", false));
    EXPECT_TRUE(response.status == 502 || response.status == 504) << response.body;
    std::string code;
    EXPECT_EQ(check_error_response(response, &code), "");
    Json stats(mock_stats_text(plain.port()));
    EXPECT_EQ(stats.integer("/requests_total"), 0)
        << "an https channel sent a plaintext HTTP request (with the channel's key): "
        << stats.text();
}

// About 8 MB of events over TLS to a client that reads 4 KB at a time: the stream pauses
// and resumes hundreds of times, and each resume decrypts what OpenSSL holds into a spare
// recv buffer (relayed and given back like a received one, or given back at once when
// OpenSSL has nothing whole). The stream completes byte for byte.
TEST_F(ProxyTlsTest, SlowClientOnLongTlsStreamResumesToItsEnd) {
    ChannelSpec spec;
    spec.name = "trusted";
    spec.base_url = https_url(tls_mock_.port());
    spec.models = {"gpt-4o-mini"};
    spec.extra_json = R"("ca_file":")" + certs_.path() + R"(/ca.pem")";
    ASSERT_GT(gateway_.create_channel(spec), 0);
    gateway_.wait_channels_routable();

    Client slow;
    slow.set_receive_buffer_bytes(4096);
    std::string error;
    ASSERT_TRUE(slow.connect(gateway_.port(), Deadline::after_ms(5000), &error)) << error;
    ASSERT_TRUE(slow.send(
        post_request(
            "/v1/chat/completions",
            chat_body("gpt-4o-mini", true, R"("x_mock":{"chunks":2000,"chunk-text-bytes":4000})"),
            key_.secret),
        Deadline::after_ms(5000)));
    std::string bytes = slow.unread();
    char buffer[4096];
    uint64_t reads = 0;
    const Deadline deadline = Deadline::after_ms(120000);
    while (!deadline.passed() &&
           (bytes.size() < 7 || bytes.compare(bytes.size() - 7, 7, "\r\n0\r\n\r\n") != 0)) {
        pollfd polled{slow.fd(), POLLIN, 0};
        if (::poll(&polled, 1, 200) <= 0) {
            continue;
        }
        const ssize_t got = ::recv(slow.fd(), buffer, sizeof(buffer), 0);
        if (got <= 0) {
            break;
        }
        bytes.append(buffer, static_cast<size_t>(got));
        if (++reads % 200 == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));  // Let it pause.
        }
    }
    const RawResponse raw = parse_raw_response(bytes);
    EXPECT_EQ(raw.status, 200);
    EXPECT_TRUE(raw.has_last_chunk && raw.is_framing_ok) << "the stream was cut";
    const std::vector<std::string> events = sse_events(raw.payload);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "data: [DONE]");
    EXPECT_EQ(std::count_if(events.begin(), events.end(),
                            [](const std::string& event) { return event.size() > 4000; }),
              2000)
        << "content events lost or duplicated";
    const auto rows = wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(10000));
    EXPECT_EQ(rows.size(), 1u);
}

}  // namespace
}  // namespace rw::test::proxy
