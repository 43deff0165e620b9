// tests/e2e/proxy_upload_test.cc — the multipart upload endpoints (README "Endpoints"):
// /v1/audio/transcriptions, /translations and /v1/images/edits relayed to the mock as they
// arrive. The mock reports what it received (size and FNV-1a of the whole body), so each
// test checks that the upload arrived unchanged; the model is read from its part (renamed
// by a channel's model_map), and the refusals come before anything reaches the upstream:
// no model part (400), an upload over RINGWAY_MAX_UPLOAD_BYTES (413), a chunked one (411).
// A 48 MiB upload goes through curl while ringway's peak RSS grows by a fraction of it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr std::string_view boundary = "----ringwayTestBoundary7MA4YWxkTrZu0gW";

std::string fnv1a_hex(std::string_view bytes) {
    uint64_t hash = 0xcbf29ce484222325ull;
    for (const char c : bytes) {
        hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    }
    char text[24];
    std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
    return text;
}

// Bytes of every value, "\r\n--" included, so a scanner that trusted the file would trip.
std::string file_bytes(size_t size) {
    std::string out(size, '\0');
    uint32_t state = 12345;
    for (size_t i = 0; i < size; i++) {
        state = state * 1103515245u + 12345u;
        out[i] = static_cast<char>(state >> 16);
        if (i % 4099 == 0 && i + 4 < size) {
            out.replace(i, 4, "\r\n--");
            i += 3;
        }
    }
    return out;
}

struct Part {
    std::string name;
    std::string value;
    std::string filename;  // Non-empty: a file part.
};

std::string multipart_body(const std::vector<Part>& parts) {
    std::string out;
    for (const Part& part : parts) {
        out += "--" + std::string(boundary) + "\r\nContent-Disposition: form-data; name=\"" +
               part.name + "\"";
        if (!part.filename.empty()) {
            out += "; filename=\"" + part.filename + "\"\r\nContent-Type: application/octet-stream";
        }
        out += "\r\n\r\n" + part.value + "\r\n";
    }
    out += "--" + std::string(boundary) + "--\r\n";
    return out;
}

std::string upload_request(std::string_view path, std::string_view body, std::string_view key,
                           std::string_view extra_headers = {}) {
    return "POST " + std::string(path) + " HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " +
           std::string(key) +
           "\r\nContent-Type: multipart/form-data; boundary=" + std::string(boundary) +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
           std::string(extra_headers) + "\r\n" + std::string(body);
}

// VmHWM (peak resident set) of a process, in KiB; -1 when unreadable.
int64_t peak_rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::atoll(line.c_str() + 6);
        }
    }
    return -1;
}

class ProxyUploadTest : public ::testing::Test {
protected:
    void start(EnvList env) {
        ASSERT_NO_FATAL_FAILURE(start_mock(mock_));
        ASSERT_NO_FATAL_FAILURE(gateway_.start(std::move(env)));
        ChannelSpec spec;
        spec.name = "main";
        spec.mock_port = mock_.port();
        spec.models = {"whisper-1", "gpt-4o-transcribe", "gpt-image-1", "my-whisper"};
        spec.model_map_json = R"({"my-whisper":"whisper-1"})";
        ASSERT_GT(gateway_.create_channel(spec), 0);
        ASSERT_EQ(gateway_.wait_channels_routable().at("main").status, 200);
        key_ = gateway_.create_key(R"({"name":"uploads"})");
        ASSERT_FALSE(key_.secret.empty());
        ASSERT_NO_FATAL_FAILURE(mock_reset(mock_.port()));
    }
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_MAX_UPLOAD_BYTES", std::to_string(4 << 20)},
                                       {"RINGWAY_MULTIPART_MODEL_WINDOW_BYTES", "65536"}}));
    }

    Response post(std::string_view path, std::string_view body, std::string_view extra = {}) {
        return gateway_.call(upload_request(path, body, key_.secret, extra), 30000);
    }

    Row next_row() {
        rows_seen_ += 1;
        const auto rows =
            wait_usage_rows(gateway_.db_path(), key_.id, rows_seen_, Deadline::after_ms(10000));
        EXPECT_EQ(rows.size(), rows_seen_);
        return rows.empty() ? Row{} : rows.back();
    }

    void TearDown() override {
        if (HasFailure()) {
            std::printf("ringway stderr:\n%s\nmock stats: %s\n",
                        gateway_.ringway().stderr_text().c_str(),
                        mock_stats_text(mock_.port()).c_str());
        }
    }

    MockUpstream mock_;
    Gateway gateway_;
    Key key_;
    size_t rows_seen_ = 0;
};

TEST_F(ProxyUploadTest, TranscriptionArrivesUnchangedAndBillsItsUsage) {
    const std::string file = file_bytes(3 << 20);  // Many recv buffers, sent piece by piece.
    const std::string body = multipart_body({{"model", "gpt-4o-transcribe", ""},
                                             {"file", file, "speech.mp3"},
                                             {"response_format", "json", ""}});
    const Response response = post("/v1/audio/transcriptions", body);
    ASSERT_EQ(response.status, 200) << response.body;
    Json json(response.body);
    ASSERT_TRUE(json.ok()) << response.body;
    EXPECT_EQ(json.integer("/upload_bytes"), static_cast<int64_t>(body.size()));
    EXPECT_EQ(json.string("/upload_fnv1a"), fnv1a_hex(body));
    EXPECT_EQ(json.integer("/file_bytes"), static_cast<int64_t>(file.size()));
    EXPECT_EQ(json.string("/model"), "gpt-4o-transcribe");
    const Row row = next_row();
    EXPECT_EQ(row.at("endpoint"), "/v1/audio/transcriptions") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "reported");
    EXPECT_EQ(as_int(row, "prompt_tokens"), static_cast<int64_t>((file.size() + 3) / 4));
    EXPECT_EQ(as_int(row, "completion_tokens"), 3);  // The mock's default.
    EXPECT_EQ(as_int(row, "bytes_in"), static_cast<int64_t>(body.size()));
    EXPECT_EQ(as_int(row, "status"), 200);
}

// The model part after a small file (inside the window), renamed by the channel's model_map:
// the upstream gets the new name and a Content-Length that fits it.
TEST_F(ProxyUploadTest, ModelAfterTheFileIsFoundAndRenamed) {
    const std::string file = file_bytes(20000);
    const std::string body = multipart_body(
        {{"file", file, "speech.wav"}, {"model", "my-whisper", ""}, {"x_mock_usage", "none", ""}});
    const Response response = post("/v1/audio/translations", body);
    ASSERT_EQ(response.status, 200) << response.body;
    Json json(response.body);
    ASSERT_TRUE(json.ok()) << response.body;
    EXPECT_EQ(json.string("/model"), "whisper-1");
    std::string expected = body;
    expected.replace(expected.find("my-whisper"), 10, "whisper-1");
    EXPECT_EQ(json.integer("/upload_bytes"), static_cast<int64_t>(expected.size()));
    EXPECT_EQ(json.string("/upload_fnv1a"), fnv1a_hex(expected));
    EXPECT_EQ(json.integer("/file_bytes"), static_cast<int64_t>(file.size()));
    const Row row = next_row();
    EXPECT_EQ(row.at("endpoint"), "/v1/audio/translations") << describe_row(row);
    EXPECT_EQ(row.at("model_requested"), "my-whisper");
    EXPECT_EQ(row.at("model_sent"), "whisper-1");
    // whisper-1 reports seconds, not tokens: estimated, and an upload's bytes are audio, so
    // the estimate counts no prompt tokens (README "Endpoints").
    EXPECT_EQ(row.at("usage_source"), "estimated");
    EXPECT_EQ(as_int(row, "prompt_tokens"), 0);
}

TEST_F(ProxyUploadTest, ImageEditArrivesUnchanged) {
    const std::string image = file_bytes(300000);
    const std::string body = multipart_body(
        {{"model", "gpt-image-1", ""}, {"prompt", "a hat", ""}, {"image", image, "cat.png"}});
    const Response response = post("/v1/images/edits", body);
    ASSERT_EQ(response.status, 200) << response.body;
    Json json(response.body);
    ASSERT_TRUE(json.ok()) << response.body;
    EXPECT_EQ(json.string("/upload_fnv1a"), fnv1a_hex(body));
    EXPECT_EQ(json.integer("/file_bytes"), static_cast<int64_t>(image.size()));
    const Row row = next_row();
    EXPECT_EQ(row.at("endpoint"), "/v1/images/edits") << describe_row(row);
    EXPECT_EQ(row.at("usage_source"), "reported");
    EXPECT_EQ(as_int(row, "prompt_tokens"), static_cast<int64_t>((image.size() + 3) / 4));
}

TEST_F(ProxyUploadTest, MissingModelPartIs400AndNothingIsSent) {
    const std::string no_model = multipart_body({{"file", file_bytes(5000), "a.mp3"}});
    Response response = post("/v1/audio/transcriptions", no_model);
    EXPECT_EQ(response.status, 400) << response.body;
    EXPECT_NE(response.body.find("missing_model"), std::string::npos) << response.body;
    // The model after a file larger than the window: refused, the window named.
    const std::string late_model =
        multipart_body({{"file", file_bytes(200000), "a.mp3"}, {"model", "whisper-1", ""}});
    response = post("/v1/audio/transcriptions", late_model);
    EXPECT_EQ(response.status, 400) << response.body;
    EXPECT_NE(response.body.find("RINGWAY_MULTIPART_MODEL_WINDOW_BYTES"), std::string::npos)
        << response.body;
    // A JSON body on a multipart endpoint.
    response = gateway_.call(
        post_request("/v1/audio/transcriptions", R"({"model":"whisper-1"})", key_.secret), 30000);
    EXPECT_EQ(response.status, 400) << response.body;
    EXPECT_NE(response.body.find("multipart/form-data"), std::string::npos) << response.body;
    EXPECT_EQ(mock_requests(mock_.port()), 0);
}

TEST_F(ProxyUploadTest, OverTheLimitIs413AndChunkedIs411) {
    // Only the head: the refusal comes before the upload.
    std::string head =
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: gateway\r\n"
        "Authorization: Bearer " +
        key_.secret + "\r\nContent-Type: multipart/form-data; boundary=" + std::string(boundary) +
        "\r\nContent-Length: " + std::to_string((4 << 20) + 1) + "\r\n\r\n";
    Response response = gateway_.call(head, 30000);
    EXPECT_EQ(response.status, 413) << response.body;
    EXPECT_NE(response.body.find("upload_too_large"), std::string::npos) << response.body;
    const std::string chunked =
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " +
        key_.secret + "\r\nContent-Type: multipart/form-data; boundary=" + std::string(boundary) +
        "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    response = gateway_.call(chunked, 30000);
    EXPECT_EQ(response.status, 411) << response.body;
    EXPECT_EQ(mock_requests(mock_.port()), 0);
}

// A JSON endpoint keeps RINGWAY_MAX_BODY_BYTES: the larger upload limit is not its own.
class ProxyUploadLimitsTest : public ProxyUploadTest {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_MAX_UPLOAD_BYTES", std::to_string(64 << 20)},
                                       {"RINGWAY_MAX_BODY_BYTES", std::to_string(1 << 20)},
                                       {"RINGWAY_RECV_BUFFERS", "64"}}));
    }
};

TEST_F(ProxyUploadLimitsTest, JsonBodyOverMaxBodyIs413) {
    const std::string head =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
        "Authorization: Bearer " +
        key_.secret +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string((1 << 20) + 1) +
        "\r\n\r\n";
    const Response response = gateway_.call(head, 30000);
    EXPECT_EQ(response.status, 413) << response.body;
    EXPECT_EQ(mock_requests(mock_.port()), 0);
}

// curl -F uploads a 48 MiB file: it arrives whole and unchanged, and ringway's peak RSS
// grows by far less than the file (it is never held whole).
TEST_F(ProxyUploadLimitsTest, CurlLargeUploadWithBoundedMemory) {
    if (std::system("command -v curl >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "curl is not installed";
    }
    TempDir dir;
    const std::string file = file_bytes(48 << 20);
    const std::string file_path = dir.path() + "/speech.mp3";
    const std::string out_path = dir.path() + "/answer.json";
    {
        std::ofstream out(file_path, std::ios::binary);
        out.write(file.data(), static_cast<std::streamsize>(file.size()));
    }
    // A first small upload warms the shard's pools; the peak is read after it.
    const std::string small = multipart_body({{"model", "whisper-1", ""}, {"file", "x", "a"}});
    ASSERT_EQ(post("/v1/audio/transcriptions", small).status, 200);
    next_row();  // The warm-up's row, before the big upload's can be committed too.
    const pid_t pid = gateway_.ringway().process().pid();
    const int64_t before_kib = peak_rss_kib(pid);
    ASSERT_GT(before_kib, 0);
    const std::string command =
        "curl -sS --fail --max-time 300 -o " + out_path + " -H 'Authorization: Bearer " +
        key_.secret + "' -F model=whisper-1 -F file=@" + file_path +
        " http://127.0.0.1:" + std::to_string(gateway_.port()) + "/v1/audio/transcriptions";
    const int status = std::system(command.c_str());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command;
    const int64_t after_kib = peak_rss_kib(pid);
    std::ifstream answer(out_path);
    const std::string text((std::istreambuf_iterator<char>(answer)),
                           std::istreambuf_iterator<char>());
    Json json(text);
    ASSERT_TRUE(json.ok()) << text;
    EXPECT_EQ(json.integer("/file_bytes"), static_cast<int64_t>(file.size()));
    EXPECT_EQ(json.string("/model"), "whisper-1");
    const int64_t growth_kib = after_kib - before_kib;
    std::printf("upload %zu MiB: ringway peak RSS %lld KiB -> %lld KiB (+%lld KiB)\n",
                file.size() >> 20, static_cast<long long>(before_kib),
                static_cast<long long>(after_kib), static_cast<long long>(growth_kib));
    EXPECT_LT(growth_kib, 8 * 1024) << "the upload was held in memory";
    const Row big = next_row();
    EXPECT_GT(as_int(big, "bytes_in"), static_cast<int64_t>(file.size())) << describe_row(big);
    EXPECT_EQ(as_int(big, "status"), 200) << describe_row(big);
}

// The mock's request count, read from the front of its stats (the recorded binary upload
// after it is no valid UTF-8, so the stats are not parsed as JSON); -1 when absent.
int64_t upload_mock_requests(uint16_t mock_port) {
    const std::string stats = mock_stats_text(mock_port);
    long long count = -1;
    return std::sscanf(stats.c_str(), "{\"requests_total\":%lld", &count) == 1 ? count : -1;
}

// Replaces a mock's --default controls (uploads carry no x-mock-* header upstream).
void mock_defaults_set(uint16_t mock_port, std::string_view defaults) {
    const auto set = http_exchange(mock_port, post_request("/__mock/defaults", defaults, ""),
                                   Deadline::after_ms(5000));
    ASSERT_TRUE(set.has_value() && set->status == 200);
}

// A provider that stops reading the upload for longer than RINGWAY_BODY_TIMEOUT_MS: ringway
// stops reading the client too (its upstream send cannot complete), and that wait is the
// provider's, not the client's: the body deadline is suspended while the upload is held
// back, so the upload completes.
class ProxyUploadSlowUpstreamTest : public ProxyUploadTest {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start({{"RINGWAY_MAX_UPLOAD_BYTES", std::to_string(64 << 20)},
                                       {"RINGWAY_BODY_TIMEOUT_MS", "2000"},
                                       {"RINGWAY_RECV_BUFFERS", "64"}}));
    }
};

TEST_F(ProxyUploadSlowUpstreamTest, PausedUpstreamDoesNotTimeTheClientOut) {
    // 24 MiB: more than the loopback socket buffers between ringway and the mock hold, so
    // ringway's upstream send waits on the mock for the whole pause.
    const std::string file = file_bytes(24 << 20);
    const std::string body = multipart_body({{"model", "whisper-1", ""}, {"file", file, "a.mp3"}});
    ASSERT_NO_FATAL_FAILURE(mock_defaults_set(mock_.port(), "body-read-pause-ms=5000"));
    const Response response =
        gateway_.call(upload_request("/v1/audio/transcriptions", body, key_.secret), 120000);
    ASSERT_EQ(response.status, 200) << response.body;
    Json json(response.body);
    ASSERT_TRUE(json.ok()) << response.body;
    EXPECT_EQ(json.integer("/upload_bytes"), static_cast<int64_t>(body.size()));
    EXPECT_EQ(json.string("/upload_fnv1a"), fnv1a_hex(body));
    const Row row = next_row();
    EXPECT_EQ(as_int(row, "status"), 200) << describe_row(row);
    EXPECT_EQ(row.at("end_reason"), "complete") << describe_row(row);
    EXPECT_EQ(as_int(row, "bytes_in"), static_cast<int64_t>(body.size()));
    EXPECT_EQ(metric_sum(gateway_.metrics(), "ringway_timeouts_total", {{"phase", "body"}}), 0);
}

// Two channels for one model; "first" (higher priority) answers the upload before reading
// its body (the mock's answer-early).
class ProxyUploadRetryTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(start_mock(first_));
        ASSERT_NO_FATAL_FAILURE(start_mock(second_));
        ASSERT_NO_FATAL_FAILURE(
            gateway_.start({{"RINGWAY_MAX_UPLOAD_BYTES", std::to_string(8 << 20)},
                            {"RINGWAY_MULTIPART_MODEL_WINDOW_BYTES", "65536"}}));
        for (MockUpstream* mock : {&first_, &second_}) {
            ChannelSpec spec;
            spec.name = mock == &first_ ? "first" : "second";
            spec.mock_port = mock->port();
            spec.models = {"whisper-1"};
            spec.priority = mock == &first_ ? 10 : 0;
            ASSERT_GT(gateway_.create_channel(spec), 0);
        }
        ASSERT_EQ(gateway_.wait_channels_routable().at("first").status, 200);
        key_ = gateway_.create_key(R"({"name":"uploads"})");
        ASSERT_FALSE(key_.secret.empty());
        ASSERT_NO_FATAL_FAILURE(mock_reset(first_.port()));
        ASSERT_NO_FATAL_FAILURE(mock_reset(second_.port()));
    }
    void TearDown() override {
        if (HasFailure()) {
            std::printf("ringway stderr:\n%s\n", gateway_.ringway().stderr_text().c_str());
        }
    }
    Row only_row() {
        const auto rows =
            wait_usage_rows(gateway_.db_path(), key_.id, 1, Deadline::after_ms(10000));
        EXPECT_EQ(rows.size(), 1u);
        return rows.empty() ? Row{} : rows[0];
    }

    MockUpstream first_;
    MockUpstream second_;
    Gateway gateway_;
    Key key_;
};

// Only the prefix (the bytes up to the end of the model part, which ringway keeps) went to
// the first channel when it refused: the second channel gets the whole upload. The client
// sends the rest only once ringway moved on, so nothing past the prefix can have gone to
// the first channel.
TEST_F(ProxyUploadRetryTest, RefusalAfterThePrefixOnlyIsRetriedWhole) {
    ASSERT_NO_FATAL_FAILURE(mock_defaults_set(first_.port(), "answer-early=0\nstatus=503"));
    const std::string body =
        multipart_body({{"model", "whisper-1", ""}, {"file", file_bytes(1 << 20), "a.mp3"}});
    const std::string request = upload_request("/v1/audio/transcriptions", body, key_.secret);
    // The head and the model part up to the delimiter that ends it: the model is known
    // exactly when these bytes are in.
    const size_t model_end = body.find("\r\n--", body.find("whisper-1")) + 4 + boundary.size();
    const size_t split = request.size() - body.size() + model_end;
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    ASSERT_TRUE(client.send(std::string_view(request).substr(0, split), Deadline::after_ms(5000)));
    ASSERT_TRUE(poll_until(Deadline::after_ms(10000), [&] {
        return gateway_.metric("ringway_upstream_retries_total") >= 1;
    })) << gateway_.metrics();
    ASSERT_TRUE(client.send(std::string_view(request).substr(split), Deadline::after_ms(30000)));
    const auto response = client.read_response(Deadline::after_ms(30000));
    ASSERT_TRUE(response.has_value());
    ASSERT_EQ(response->status, 200) << response->body;
    Json json(response->body);
    ASSERT_TRUE(json.ok()) << response->body;
    EXPECT_EQ(json.integer("/upload_bytes"), static_cast<int64_t>(body.size()));
    EXPECT_EQ(json.string("/upload_fnv1a"), fnv1a_hex(body));
    EXPECT_EQ(upload_mock_requests(first_.port()), 1);
    EXPECT_EQ(upload_mock_requests(second_.port()), 1);
    const Row row = only_row();
    EXPECT_EQ(as_int(row, "status"), 200) << describe_row(row);
    EXPECT_EQ(as_int(row, "attempts"), 2) << describe_row(row);
}

// The first channel refuses after taking more than the prefix (the mock answers once 256 KiB
// of the body are in; ringway keeps only the 64 KiB window): the upload cannot be sent
// again, so no other channel is tried and the client gets the provider's own refusal with
// its Retry-After (a client can resend; ringway cannot), one row, nothing charged.
TEST_F(ProxyUploadRetryTest, RefusalAfterMoreThanThePrefixIsTheClientsAnswer) {
    ASSERT_NO_FATAL_FAILURE(
        mock_defaults_set(first_.port(), "answer-early=262144\nstatus=503\nretry-after=7"));
    const std::string body =
        multipart_body({{"model", "whisper-1", ""}, {"file", file_bytes(1 << 20), "a.mp3"}});
    Client client;
    ASSERT_TRUE(client.connect(gateway_.port(), Deadline::after_ms(5000)));
    // The send may fail once ringway has answered and closed (it reads and drops at most
    // 1 MiB after its answer): the answer is read either way.
    [[maybe_unused]] const bool is_sent = client.send(
        upload_request("/v1/audio/transcriptions", body, key_.secret), Deadline::after_ms(30000));
    const auto response = client.read_response(Deadline::after_ms(30000));
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->status, 503) << response->body;
    EXPECT_EQ(response->header("retry-after").value_or(""), "7");
    EXPECT_EQ(upload_mock_requests(first_.port()), 1);
    EXPECT_EQ(upload_mock_requests(second_.port()), 0);
    const Row row = only_row();
    EXPECT_EQ(as_int(row, "status"), 503) << describe_row(row);
    EXPECT_EQ(as_int(row, "attempts"), 1) << describe_row(row);
    EXPECT_EQ(row.at("end_reason"), "upstream_error") << describe_row(row);
    EXPECT_EQ(as_int(row, "prompt_tokens") + as_int(row, "completion_tokens"), 0);
}

}  // namespace
}  // namespace rw::test::proxy
