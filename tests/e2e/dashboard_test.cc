// tests/e2e/dashboard_test.cc — the operator's dashboard end to end: the admin listener
// serves the page, its script and style sheet without the token and under a strict CSP
// (the API still wants the token); /admin/latency's percentiles and /admin/logs' status
// and end_reason filters answer from the usage rows; and headless Chromium loads the page
// against a ringway holding rows of real proxied requests (through the mock upstream),
// and the DOM after the page's fetches shows the keys, their token sums from the
// database, the models and the channel's health. A screenshot is kept as a test artifact
// (RW_TEST_ARTIFACTS_DIR/dashboard.png). The browser test exits 77 (skipped) only when no
// chromium binary can be found.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

constexpr std::string_view csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

class DashboardTest : public ::testing::Test {
protected:
    void SetUp() override {
        start_mock(mock_);
        gateway_.start({{"RINGWAY_SHARDS", "2"}});
        ChannelSpec spec;
        spec.name = "alpha-channel";
        spec.mock_port = mock_.port();
        spec.models = {"gpt-4o-mini", "o4-mini"};
        channel_ = gateway_.create_channel(spec);
        gateway_.wait_channels_routable();
        const Response price = gateway_.admin(
            "POST", "/admin/prices",
            R"({"model":"gpt-4o-mini","input_per_mtok":"2","output_per_mtok":"8","effective_from":0})");
        ASSERT_EQ(price.status, 201) << price.body;
        red_ = gateway_.create_key(R"({"name":"team-red","quota_tokens":20000})");
        blue_ = gateway_.create_key(R"({"name":"team-blue"})");
        // Real proxied requests: distinct token counts per key, a stream, an upstream 400.
        ASSERT_EQ(chat(red_, "gpt-4o-mini", false, R"("x_mock":{"prompt-tokens":4321})"), 200);
        ASSERT_EQ(chat(red_, "gpt-4o-mini", true, R"("x_mock":{"prompt-tokens":1234})"), 200);
        ASSERT_EQ(chat(red_, "o4-mini", false, R"("x_mock":{"prompt-tokens":9000})"), 200);
        ASSERT_EQ(chat(blue_, "gpt-4o-mini", false, R"("x_mock":{"prompt-tokens":777})"), 200);
        ASSERT_EQ(chat(blue_, "gpt-4o-mini", false, R"("x_mock":{"status":400})"), 400);
        wait_usage_rows(gateway_.db_path(), red_.id, 3, Deadline::after_ms(10000));
        wait_usage_rows(gateway_.db_path(), blue_.id, 2, Deadline::after_ms(10000));
    }

    int chat(const Key& key, const std::string& model, bool is_stream, const std::string& extra) {
        return gateway_.chat(key, chat_body(model, is_stream, extra)).status;
    }

    // A GET on the admin listener without any Authorization header.
    Response anonymous_get(const std::string& path) {
        const std::string ready = gateway_.ringway().ready_line();
        auto response =
            http_exchange(admin_port_of(ready), get_request(path, ""), Deadline::after_ms(10000));
        EXPECT_TRUE(response.has_value()) << path;
        return response.value_or(Response{});
    }

    int64_t db_scalar(const std::string& sql) {
        Db db(gateway_.db_path());
        return db.scalar(sql);
    }

    MockUpstream mock_;
    Gateway gateway_;
    int64_t channel_ = 0;
    Key red_;
    Key blue_;
};

TEST_F(DashboardTest, FilesAreServedWithoutTheTokenUnderAStrictCsp) {
    const Response page = anonymous_get("/");
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(page.header("content-security-policy"), csp);
    EXPECT_EQ(page.header("x-content-type-options"), "nosniff");
    EXPECT_NE(page.body.find(R"(<script src="/dashboard.js" defer></script>)"), std::string::npos);
    EXPECT_EQ(page.body.find("<style"), std::string::npos);  // Nothing inline for CSP to allow.
    EXPECT_EQ(page.body.find("http"), std::string::npos) << "no other origin is referenced";
    const Response script = anonymous_get("/dashboard.js");
    ASSERT_EQ(script.status, 200);
    EXPECT_EQ(script.header("content-type"), "text/javascript; charset=utf-8");
    EXPECT_NE(script.body.find("sessionStorage"), std::string::npos);
    EXPECT_EQ(script.body.find("innerHTML"), std::string::npos);
    const Response style = anonymous_get("/dashboard.css");
    ASSERT_EQ(style.status, 200);
    EXPECT_EQ(style.header("content-type"), "text/css; charset=utf-8");
    EXPECT_EQ(anonymous_get("/index.html").body, page.body);
    // The data still wants the token, and so does any other path.
    EXPECT_EQ(anonymous_get("/admin/keys").status, 401);
    EXPECT_EQ(anonymous_get("/dashboard.json").status, 401);
}

TEST_F(DashboardTest, LatencyPercentilesComeFromTheRows) {
    const Response response = gateway_.admin("GET", "/admin/latency?since=2000-01-01");
    ASSERT_EQ(response.status, 200) << response.body;
    Json json(response.body);
    ASSERT_EQ(json.array_size("/data"), 1u) << response.body;  // Every row is from today.
    EXPECT_EQ(json.string("/data/0/day"),
              Db(gateway_.db_path())
                  .query("SELECT date(MAX(ts_ms) / 1000, 'unixepoch') AS d FROM usage_logs")[0]
                  .at("d"));
    const int64_t rows = db_scalar("SELECT COUNT(*) FROM usage_logs");
    EXPECT_EQ(json.integer("/data/0/requests"), rows);
    EXPECT_EQ(json.integer("/data/0/latency_us/count"), rows);
    // Nearest rank over the stored latencies, recomputed here.
    Db db(gateway_.db_path());
    std::vector<int64_t> latencies;
    for (const Row& row : db.query("SELECT latency_us FROM usage_logs ORDER BY latency_us")) {
        latencies.push_back(as_int(row, "latency_us"));
    }
    ASSERT_EQ(int64_t(latencies.size()), rows);
    const auto rank = [&](size_t percent) {
        return latencies[(latencies.size() * percent + 99) / 100 - 1];
    };
    EXPECT_EQ(json.integer("/data/0/latency_us/p50"), rank(50));
    EXPECT_EQ(json.integer("/data/0/latency_us/p90"), rank(90));
    EXPECT_EQ(json.integer("/data/0/latency_us/p99"), rank(99));
    EXPECT_EQ(json.integer("/data/0/ttfb_us/count"),
              db_scalar("SELECT COUNT(*) FROM usage_logs WHERE ttfb_us > 0"));
    EXPECT_EQ(json.boolean("/truncated"), false);
    // A window without rows, and a bad parameter.
    EXPECT_EQ(
        Json(gateway_.admin("GET", "/admin/latency?until=2000-01-01").body).array_size("/data"),
        0u);
    EXPECT_EQ(gateway_.admin("GET", "/admin/latency?since=yesterday").status, 400);
    EXPECT_EQ(gateway_.admin("GET", "/admin/latency?bucket=1").status, 400);
}

TEST_F(DashboardTest, LogsFilterByStatusAndEndReason) {
    Json bad(gateway_.admin("GET", "/admin/logs?status=400").body);
    ASSERT_EQ(int64_t(bad.array_size("/data")),
              db_scalar("SELECT COUNT(*) FROM usage_logs WHERE status = 400"));
    ASSERT_GE(bad.array_size("/data"), 1u);
    EXPECT_EQ(bad.integer("/data/0/key_id"), blue_.id);
    const std::string reason = bad.string("/data/0/end_reason");
    Json by_reason(gateway_.admin("GET", "/admin/logs?end_reason=" + reason).body);
    EXPECT_EQ(int64_t(by_reason.array_size("/data")),
              db_scalar("SELECT COUNT(*) FROM usage_logs WHERE end_reason = '" + reason + "'"));
    Json both(gateway_
                  .admin("GET", "/admin/logs?status=200&end_reason=complete&key_id=" +
                                    std::to_string(red_.id))
                  .body);
    EXPECT_EQ(int64_t(both.array_size("/data")),
              db_scalar("SELECT COUNT(*) FROM usage_logs WHERE status = 200 AND end_reason = "
                        "'complete' AND key_id = " +
                        std::to_string(red_.id)));
    EXPECT_EQ(both.array_size("/data"), 3u);
    EXPECT_EQ(gateway_.admin("GET", "/admin/logs?status=42").status, 400);
    EXPECT_EQ(gateway_.admin("GET", "/admin/logs?end_reason=DROP%20TABLE").status, 400);
}

// The cost counters by model and channel equal the ledger's sums (the rows are committed
// after the answer, the counters before the row is queued: both are in by now).
TEST_F(DashboardTest, CostMetricsByModelAndChannelMatchTheLedger) {
    const std::string text = gateway_.metrics();
    for (const char* model : {"gpt-4o-mini", "o4-mini"}) {
        const int64_t nano = db_scalar(
            std::string("SELECT SUM(cost_nano) FROM usage_logs WHERE model_requested = '") + model +
            "'");
        EXPECT_NEAR(metric_sum(text, "ringway_model_cost_usd_total", {{"model", model}}),
                    double(nano) / 1e9, 1e-9)
            << model;
    }
    const int64_t channel_nano = db_scalar(
        "SELECT SUM(cost_nano) FROM usage_logs WHERE channel_id = " + std::to_string(channel_));
    EXPECT_GT(channel_nano, 0);
    EXPECT_NEAR(
        metric_sum(text, "ringway_channel_cost_usd_total", {{"channel", std::to_string(channel_)}}),
        double(channel_nano) / 1e9, 1e-9);
}

// ---- The browser ---------------------------------------------------------------------------

std::string find_chromium() {
    for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
        const std::string command = std::string("command -v ") + name + " 2>/dev/null";
        FILE* pipe = ::popen(command.c_str(), "r");
        char line[512] = {};
        const bool has_line = pipe != nullptr && std::fgets(line, sizeof(line), pipe) != nullptr;
        if (pipe != nullptr) {
            ::pclose(pipe);
        }
        std::string path = has_line ? std::string(line) : "";
        while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) {
            path.pop_back();
        }
        if (!path.empty()) {
            return path;
        }
    }
    return "";
}

// Runs chromium headless on `url` with `mode` (--dump-dom or --screenshot=F); its stdout.
std::string run_chromium(const std::string& chromium, const std::string& profile_dir,
                         const std::string& mode, const std::string& url) {
    // The virtual time budget lets the page's fetches finish before the DOM is dumped
    // (virtual time waits for network requests); the timeout bounds a wedged browser.
    const std::string command = "timeout 90 " + chromium +
                                " --headless=new --no-sandbox --disable-gpu --no-first-run"
                                " --disable-extensions --disable-dev-shm-usage"
                                " --user-data-dir=" +
                                profile_dir + " --window-size=1400,2600" +
                                " --virtual-time-budget=20000 " + mode + " '" + url + "' 2>" +
                                profile_dir + "/stderr.txt";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return "";
    }
    std::string out;
    char buffer[65536];
    size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
        out.append(buffer, got);
    }
    ::pclose(pipe);
    return out;
}

// The text of the element with id="ID" (tags stripped), for assertions on one table.
std::string element_text(const std::string& dom, const std::string& id) {
    const size_t at = dom.find("id=\"" + id + "\"");
    if (at == std::string::npos) {
        return "";
    }
    const size_t end = dom.find("</table>", at);
    std::string text;
    bool in_tag = false;
    for (size_t i = at; i < std::min(end, dom.size()); i++) {
        if (dom[i] == '<') {
            in_tag = true;
            text.push_back(' ');
        } else if (dom[i] == '>') {
            in_tag = false;
        } else if (!in_tag) {
            text.push_back(dom[i]);
        }
    }
    return text;
}

TEST_F(DashboardTest, ChromiumShowsKeysTokensModelsAndChannelHealth) {
    const std::string chromium = find_chromium();
    if (chromium.empty()) {
        std::printf("chromium is not installed (make deps installs it): skipped\n");
        std::fflush(stdout);
        std::_Exit(77);
    }
    const std::string profile = gateway_.ringway().temp_dir() + "/chromium-profile";
    ::mkdir(profile.c_str(), 0700);
    const uint16_t admin_port = admin_port_of(gateway_.ringway().ready_line());
    // The token in the fragment: the page moves it to sessionStorage; never sent.
    const std::string url =
        "http://127.0.0.1:" + std::to_string(admin_port) + "/#token=" + std::string(admin_token);
    const std::string dom = run_chromium(chromium, profile, "--dump-dom", url);
    ASSERT_NE(dom.find("data-state=\"ready\""), std::string::npos)
        << "the page never finished loading; DOM:\n"
        << dom.substr(0, 4000);
    EXPECT_EQ(dom.find(std::string(admin_token)), std::string::npos)
        << "the token must not stay in the page";

    // Per key: the names and their token sums as the database has them.
    const std::string by_key = element_text(dom, "by-key");
    for (const Key& key : {red_, blue_}) {
        const std::string id = std::to_string(key.id);
        const std::string name = key.id == red_.id ? "team-red" : "team-blue";
        EXPECT_NE(by_key.find(name), std::string::npos) << by_key;
        const int64_t prompt =
            db_scalar("SELECT SUM(prompt_tokens) FROM usage_logs WHERE key_id = " + id);
        const int64_t total =
            db_scalar("SELECT SUM(total_tokens) FROM usage_logs WHERE key_id = " + id);
        EXPECT_NE(by_key.find(" " + std::to_string(prompt) + " "), std::string::npos)
            << name << " prompt " << prompt << " in: " << by_key;
        EXPECT_NE(by_key.find(" " + std::to_string(total) + " "), std::string::npos)
            << name << " total " << total << " in: " << by_key;
    }
    const std::string by_model = element_text(dom, "by-model");
    EXPECT_NE(by_model.find("o4-mini"), std::string::npos) << by_model;
    EXPECT_NE(by_model.find(" " +
                            std::to_string(db_scalar("SELECT SUM(total_tokens) FROM "
                                                     "usage_logs WHERE model_sent = 'o4-mini'")) +
                            " "),
              std::string::npos)
        << by_model;
    // The channel's health, the key near its limit, the recent requests.
    const std::string channels = element_text(dom, "channels");
    EXPECT_NE(channels.find("alpha-channel"), std::string::npos) << channels;
    EXPECT_NE(channels.find(" up "), std::string::npos) << channels;
    const std::string limits = element_text(dom, "limits");
    EXPECT_NE(limits.find("team-red"), std::string::npos) << limits;
    const int64_t red_used =
        db_scalar("SELECT quota_used FROM keys WHERE id = " + std::to_string(red_.id));
    EXPECT_NE(limits.find(std::to_string(red_used) + " / 20000"), std::string::npos) << limits;
    const std::string logs = element_text(dom, "logs");
    EXPECT_NE(logs.find(" 400 "), std::string::npos) << logs;
    EXPECT_NE(dom.find("<svg"), std::string::npos) << "no chart was drawn";
    EXPECT_NE(dom.find("class=\"bar\""), std::string::npos);

    // The screenshot, kept for people to look at.
    const std::string artifacts = RW_TEST_ARTIFACTS_DIR;
    ::mkdir(artifacts.c_str(), 0755);
    const std::string png = artifacts + "/dashboard.png";
    std::remove(png.c_str());
    run_chromium(chromium, profile, "--screenshot=" + png, url);
    struct stat info {};
    ASSERT_EQ(::stat(png.c_str(), &info), 0) << "no screenshot at " << png;
    EXPECT_GT(info.st_size, 10000) << "the screenshot is nearly empty";
}

}  // namespace
}  // namespace rw::test::proxy
