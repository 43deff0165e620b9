#pragma once
// tests/e2e/proxy_support.h — what the proxy e2e tests (tests/e2e/proxy_*_test.cc) share on
// top of tests/support/harness.h: a ringway with its admin API and one or more mock
// upstreams, key and channel creation, readiness probes (the resolver publishes a new
// channel's address within about a second), mock statistics, a read-only view of the usage
// database, and parsers for raw chunked / SSE bytes (cut streams never end cleanly, so the
// harness's Response parser cannot read them).
// Test thread only. Every wait polls with a deadline; nothing sleeps a fixed time.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/harness.h"
#include "tests/support/pg_test.h"

namespace rw::test::proxy {

inline constexpr std::string_view admin_token = "proxy-e2e-admin-token-0123456789";
// The channel's upstream key: the mock must see it, the client never.
inline constexpr std::string_view upstream_key = "sk-upstream-proxy-e2e-0123456789-abcdwxyz";

// Polls `condition` every few milliseconds until it holds or the deadline passes.
template <class Condition>
bool poll_until(Deadline deadline, Condition condition) {
    for (;;) {
        if (condition()) {
            return true;
        }
        if (deadline.passed()) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // Poll interval only.
    }
}

// --------------------------------------------------------------------------------------
// JSON (simdjson DOM; a parse failure is a test failure)
// --------------------------------------------------------------------------------------

class Json {
public:
    explicit Json(std::string_view text) : text_(text) {
        is_ok_ = parser_.parse(text_).get(root_) == simdjson::SUCCESS;
    }
    [[nodiscard]] bool ok() const { return is_ok_; }
    [[nodiscard]] bool has(std::string_view pointer) {
        simdjson::dom::element unused;
        return is_ok_ && root_.at_pointer(pointer).get(unused) == simdjson::SUCCESS;
    }
    [[nodiscard]] int64_t integer(std::string_view pointer, int64_t fallback = -1) {
        int64_t value = fallback;
        if (!is_ok_ || root_.at_pointer(pointer).get_int64().get(value) != simdjson::SUCCESS) {
            return fallback;
        }
        return value;
    }
    [[nodiscard]] std::string string(std::string_view pointer, std::string fallback = "<none>") {
        std::string_view value;
        if (!is_ok_ || root_.at_pointer(pointer).get_string().get(value) != simdjson::SUCCESS) {
            return fallback;
        }
        return std::string(value);
    }
    [[nodiscard]] std::optional<bool> boolean(std::string_view pointer) {
        bool value = false;
        if (!is_ok_ || root_.at_pointer(pointer).get_bool().get(value) != simdjson::SUCCESS) {
            return std::nullopt;
        }
        return value;
    }
    [[nodiscard]] size_t array_size(std::string_view pointer) {
        simdjson::dom::array array;
        if (!is_ok_ || root_.at_pointer(pointer).get_array().get(array) != simdjson::SUCCESS) {
            return 0;
        }
        return array.size();
    }
    // Keys of an object at `pointer` (empty when not an object).
    [[nodiscard]] std::vector<std::string> keys(std::string_view pointer) {
        std::vector<std::string> out;
        simdjson::dom::object object;
        if (is_ok_ && root_.at_pointer(pointer).get_object().get(object) == simdjson::SUCCESS) {
            for (auto field : object) {
                out.emplace_back(field.key);
            }
        }
        return out;
    }
    [[nodiscard]] const std::string& text() const { return text_; }

private:
    std::string text_;
    simdjson::dom::parser parser_;
    simdjson::dom::element root_;
    bool is_ok_ = false;
};

// --------------------------------------------------------------------------------------
// Requests
// --------------------------------------------------------------------------------------

inline std::string post_request(std::string_view path, std::string_view body,
                                std::string_view api_key, std::string_view extra_headers = {}) {
    std::string request = "POST " + std::string(path) + " HTTP/1.1\r\nHost: gateway\r\n";
    if (!api_key.empty()) {
        request += "Authorization: Bearer " + std::string(api_key) + "\r\n";
    }
    request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n" + std::string(extra_headers) + "\r\n" + std::string(body);
    return request;
}

inline std::string get_with_key(std::string_view path, std::string_view api_key) {
    std::string headers;
    if (!api_key.empty()) {
        headers = "Authorization: Bearer " + std::string(api_key) + "\r\n";
    }
    return get_request(path, headers);
}

// {"model":M,"messages":[...],"stream":S,<extra>} — extra is raw members, e.g.
// R"("x_mock":{"chunks":5})".
inline std::string chat_body(std::string_view model, bool is_stream, std::string_view extra = {}) {
    std::string body = R"({"model":")" + std::string(model) +
                       R"(","messages":[{"role":"user","content":"Say hello to the gateway."}])";
    if (is_stream) {
        body += R"(,"stream":true)";
    }
    if (!extra.empty()) {
        body += "," + std::string(extra);
    }
    return body + "}";
}

// --------------------------------------------------------------------------------------
// Raw chunked + SSE bytes
// --------------------------------------------------------------------------------------

// A response read as raw bytes up to the peer's close (or the terminating chunk).
struct RawResponse {
    int status = 0;
    std::string head;     // Status line and headers, without the blank line.
    std::string payload;  // De-chunked body bytes received.
    bool is_chunked = false;
    bool has_last_chunk = false;  // "0\r\n\r\n" arrived.
    bool is_framing_ok = true;    // Every chunk that arrived was well formed.
};

// Parses `bytes` as one HTTP/1.1 response that may be cut anywhere in a chunked body.
inline RawResponse parse_raw_response(std::string_view bytes) {
    RawResponse out;
    const size_t head_end = bytes.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
        out.is_framing_ok = false;
        return out;
    }
    out.head = std::string(bytes.substr(0, head_end));
    if (out.head.size() > 12) {
        out.status = std::atoi(out.head.c_str() + 9);
    }
    std::string lower_head;
    for (const char c : out.head) {
        lower_head.push_back(char(std::tolower(static_cast<unsigned char>(c))));
    }
    out.is_chunked = lower_head.find("transfer-encoding: chunked") != std::string::npos;
    std::string_view rest = bytes.substr(head_end + 4);
    if (!out.is_chunked) {
        out.payload = std::string(rest);
        return out;
    }
    while (!rest.empty()) {
        const size_t line_end = rest.find("\r\n");
        if (line_end == std::string_view::npos) {
            return out;  // Cut inside a size line.
        }
        size_t size = 0;
        const std::string size_text(rest.substr(0, line_end));
        char* end = nullptr;
        size = std::strtoul(size_text.c_str(), &end, 16);
        if (size_text.empty() || (end != nullptr && *end != '\0' && *end != ';')) {
            out.is_framing_ok = false;
            return out;
        }
        rest.remove_prefix(line_end + 2);
        if (size == 0) {
            out.has_last_chunk = rest.substr(0, 2) == "\r\n";
            if (rest.size() > 2) {
                out.is_framing_ok = false;  // Bytes after the last chunk.
            }
            return out;
        }
        if (rest.size() < size + 2) {  // Cut inside a chunk: keep what arrived.
            out.payload.append(rest.substr(0, std::min(size, rest.size())));
            return out;
        }
        out.payload.append(rest.substr(0, size));
        if (rest.substr(size, 2) != "\r\n") {
            out.is_framing_ok = false;
            return out;
        }
        rest.remove_prefix(size + 2);
    }
    return out;
}

// SSE events of a payload: each is the event's text without the blank line that ends it
// ("data: {...}" or "event: x\ndata: {...}"). A trailing partial event is dropped.
inline std::vector<std::string> sse_events(std::string_view payload) {
    std::vector<std::string> events;
    size_t start = 0;
    for (;;) {
        const size_t end = payload.find("\n\n", start);
        if (end == std::string_view::npos) {
            break;
        }
        events.emplace_back(payload.substr(start, end - start));
        start = end + 2;
    }
    return events;
}

// The JSON after "data: " in an event (the last data line), or "" when none.
inline std::string sse_data(std::string_view event) {
    const size_t at = event.rfind("data: ");
    if (at == std::string_view::npos) {
        return {};
    }
    const size_t end = event.find('\n', at);
    return std::string(event.substr(at + 6, end == std::string_view::npos ? end : end - at - 6));
}

// The integer value of `name` in a JSON body (e.g. one the mock received); -1 when absent.
inline int64_t member_value(const std::string& body, const std::string& name) {
    const std::string needle = "\"" + name + "\":";
    const size_t at = body.find(needle);
    return at == std::string::npos ? -1
                                   : std::strtoll(body.c_str() + at + needle.size(), nullptr, 10);
}

// Replaces what differs between two answers of the mock to the same request: response
// ids (…mockN) and creation times.
inline std::string normalize_mock_ids(std::string_view text) {
    static const std::regex ids("mock[0-9]+");
    static const std::regex created("\"(created|created_at)\":[0-9]+");
    std::string out = std::regex_replace(std::string(text), ids, "mockN");
    return std::regex_replace(out, created, "\"$1\":0");
}

inline constexpr std::string_view upstream_lost_event =
    "data: {\"error\":{\"message\":\"upstream connection lost\",\"type\":\"upstream_error\"}}";

// --------------------------------------------------------------------------------------
// The usage database, read-only
// --------------------------------------------------------------------------------------

using Row = std::map<std::string, std::string>;

// The usage database as the gateway was given it: a SQLite file, or (RW_TEST_PG) a
// PostgreSQL URL queried through libpq (one connection per query).
class Db {
public:
    explicit Db(const std::string& path) {
        if (path.starts_with("postgres")) {
            pg_url_ = path;
            return;
        }
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
            error_ = db_ != nullptr ? sqlite3_errmsg(db_) : "sqlite3_open_v2 failed";
            sqlite3_close(db_);
            db_ = nullptr;
            return;
        }
        sqlite3_busy_timeout(db_, 2000);
    }
    ~Db() { sqlite3_close(db_); }
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;
    [[nodiscard]] bool ok() const { return db_ != nullptr || !pg_url_.empty(); }
    [[nodiscard]] const std::string& error() const { return error_; }

    // Every row of `sql`, columns by name (NULL reads as "NULL"). Errors go to error().
    std::vector<Row> query(const std::string& sql) {
        std::vector<Row> rows;
        if (!pg_url_.empty()) {
            (void)pg_query(pg_url_, sql, rows, error_);
            return rows;
        }
        if (db_ == nullptr) {
            return rows;
        }
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
            error_ = sqlite3_errmsg(db_);
            return rows;
        }
        int rc = SQLITE_OK;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            Row row;
            for (int i = 0; i < sqlite3_column_count(stmt); i++) {
                const unsigned char* text = sqlite3_column_text(stmt, i);
                row[sqlite3_column_name(stmt, i)] =
                    text != nullptr ? reinterpret_cast<const char*>(text) : "NULL";
            }
            rows.push_back(std::move(row));
        }
        if (rc != SQLITE_DONE) {
            error_ = sqlite3_errmsg(db_);
        }
        sqlite3_finalize(stmt);
        return rows;
    }
    // The first column of the first row as an integer (-1 when none).
    int64_t scalar(const std::string& sql) {
        const std::vector<Row> rows = query(sql);
        if (rows.empty() || rows[0].empty()) {
            return -1;
        }
        return std::strtoll(rows[0].begin()->second.c_str(), nullptr, 10);
    }

private:
    sqlite3* db_ = nullptr;
    std::string pg_url_;
    std::string error_;
};

// Usage rows of one key in insertion order, waiting until at least `count` are committed.
inline std::vector<Row> wait_usage_rows(const std::string& db_path, int64_t key_id, size_t count,
                                        Deadline deadline) {
    std::vector<Row> rows;
    poll_until(deadline, [&] {
        Db db(db_path);
        if (!db.ok()) {
            return false;
        }
        rows = db.query("SELECT * FROM usage_logs WHERE key_id = " + std::to_string(key_id) +
                        " ORDER BY id");
        return rows.size() >= count;
    });
    return rows;
}

// A usage row's cost recomputed in SQL from its token kinds and the rates of the price it
// names (proxy/cost.h's rule: one half-up rounding of the summed products, then the fee;
// a row billed nothing costs nothing). `u` is usage_logs, `p` the price LEFT JOINed by id.
inline constexpr const char* cost_recomputed_sql =
    "(CASE WHEN u.price_id IS NULL OR u.usage_source = 'unknown' THEN 0 ELSE"
    " ((u.prompt_tokens - u.cached_input_tokens - u.cache_write_tokens) * p.input_per_mtok"
    " + u.cached_input_tokens * COALESCE(p.cached_input_per_mtok, p.input_per_mtok)"
    " + u.cache_write_tokens * COALESCE(p.cache_write_per_mtok, p.input_per_mtok)"
    " + (u.completion_tokens - u.reasoning_tokens) * p.output_per_mtok"
    " + u.reasoning_tokens * COALESCE(p.reasoning_per_mtok, p.output_per_mtok)"
    " + 500000) / 1000000 + p.per_request END)";

inline int64_t as_int(const Row& row, const std::string& column) {
    const auto it = row.find(column);
    return it == row.end() ? -999 : std::strtoll(it->second.c_str(), nullptr, 10);
}

inline std::string describe_row(const Row& row) {
    std::string out;
    for (const auto& [column, value] : row) {
        out += column + "=" + value + " ";
    }
    return out;
}

// --------------------------------------------------------------------------------------
// Mock upstream helpers
// --------------------------------------------------------------------------------------

inline std::string mock_stats_text(uint16_t mock_port) {
    const auto response =
        http_exchange(mock_port, get_request("/__mock/stats"), Deadline::after_ms(5000));
    return response.has_value() ? response->body : std::string("{}");
}

inline void mock_reset(uint16_t mock_port) {
    std::string error;
    const auto response = http_exchange(
        mock_port, "POST /__mock/reset HTTP/1.1\r\nHost: mock\r\nContent-Length: 0\r\n\r\n",
        Deadline::after_ms(5000), false, &error);
    ASSERT_TRUE(response.has_value() && response->status == 200)
        << "mock reset failed: " << error << " status "
        << (response.has_value() ? response->status : 0);
}

inline int64_t mock_requests(uint16_t mock_port) {
    return Json(mock_stats_text(mock_port)).integer("/requests_total");
}

// A TCP port on 127.0.0.1 with nothing listening (bound, read back, closed).
inline uint16_t closed_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        port = ntohs(address.sin_port);
    }
    ::close(fd);
    return port;
}

// --------------------------------------------------------------------------------------
// The gateway under test
// --------------------------------------------------------------------------------------

inline uint16_t admin_port_of(const std::string& ready_line) {
    const size_t field = ready_line.find(" admin=");
    if (field == std::string::npos) {
        return 0;
    }
    const size_t end = ready_line.find(' ', field + 1);
    const std::string address = ready_line.substr(field + 7, end - field - 7);
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
        return 0;
    }
    return uint16_t(std::stoul(address.substr(colon + 1)));
}

struct Key {
    int64_t id = 0;
    std::string secret;
};

struct ChannelSpec {
    std::string name;
    std::string kind = "openai";  // "anthropic" channels serve /v1/messages only.
    std::string base_url;         // Empty: http://127.0.0.1:<mock_port>
    uint16_t mock_port = 0;
    std::vector<std::string> models;  // A probe model "probe-<name>" is always added.
    std::string model_map_json;       // e.g. {"gpt-4o-mini":"mock-renamed"}; empty: none
    int priority = 0;
    int weight = 1;
    std::string extra_json;  // Raw members appended (e.g. "ca_file":"...").
};

inline std::string probe_model(const std::string& channel_name) {
    return "probe-" + channel_name;
}

class Gateway {
public:
    // Starts ringway with the admin API on; RINGWAY_* extras in `env`.
    void start(EnvList env) {
        env.emplace_back("RINGWAY_ADMIN_TOKEN", std::string(admin_token));
        env.emplace_back("RINGWAY_ADMIN_LISTEN", "127.0.0.1:0");
        std::string error;
        ASSERT_TRUE(ringway_.start(env, &error)) << error;
        admin_port_ = admin_port_of(ringway_.ready_line());
        ASSERT_NE(admin_port_, 0) << "no admin= in the ready line: " << ringway_.ready_line();
        const Response probe = admin("POST", "/admin/keys", R"({"name":"probe"})");
        ASSERT_EQ(probe.status, 201) << probe.body;
        Json json(probe.body);
        probe_key_ = Key{json.integer("/id"), json.string("/key")};
    }

    Response admin(std::string_view method, std::string_view path, std::string_view body = {}) {
        std::string request = std::string(method) + " " + std::string(path) +
                              " HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer " +
                              std::string(admin_token) + "\r\n";
        if (!body.empty()) {
            request +=
                "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n";
        }
        request += "\r\n" + std::string(body);
        std::string error;
        auto response =
            http_exchange(admin_port_, request, Deadline::after_ms(10000), false, &error);
        EXPECT_TRUE(response.has_value()) << "admin " << method << " " << path << ": " << error;
        return response.value_or(Response{});
    }

    // POST /admin/keys with the given JSON body; ADD_FAILURE on anything but 201.
    Key create_key(const std::string& body) {
        const Response response = admin("POST", "/admin/keys", body);
        EXPECT_EQ(response.status, 201) << body << " -> " << response.body;
        Json json(response.body);
        return Key{json.integer("/id"), json.string("/key")};
    }

    // POST /admin/channels; returns the channel id (0 on failure, with a test failure).
    int64_t create_channel(const ChannelSpec& spec) {
        std::string models = "[\"" + probe_model(spec.name) + "\"";
        for (const std::string& model : spec.models) {
            models += ",\"" + model + "\"";
        }
        models += "]";
        const std::string base_url = !spec.base_url.empty()
                                         ? spec.base_url
                                         : "http://127.0.0.1:" + std::to_string(spec.mock_port);
        std::string body = R"({"name":")" + spec.name + R"(","kind":")" + spec.kind +
                           R"(","base_url":")" + base_url + R"(","api_key":")" +
                           std::string(upstream_key) + R"(","models":)" + models +
                           R"(,"priority":)" + std::to_string(spec.priority) + R"(,"weight":)" +
                           std::to_string(spec.weight) + R"(,"allow_private_network":true)";
        if (!spec.model_map_json.empty()) {
            body += R"(,"model_map":)" + spec.model_map_json;
        }
        if (!spec.extra_json.empty()) {
            body += "," + spec.extra_json;
        }
        body += "}";
        const Response response = admin("POST", "/admin/channels", body);
        EXPECT_EQ(response.status, 201) << body << " -> " << response.body;
        channels_.push_back(spec.name);
        if (spec.kind == "anthropic") {
            anthropic_channels_.insert(spec.name);  // Probed on /v1/messages.
        }
        return Json(response.body).integer("/id", 0);
    }

    // Waits until the resolver has published an address for every channel created so far:
    // a request for each channel's own probe model stops being answered by the gateway
    // with 503 no_channel_available. Probes use the probe key (rows of that key and models
    // named probe-* are not the tests' rows). Returns the last probe answer per channel.
    std::map<std::string, Response> wait_channels_routable(int64_t timeout_ms = 10000) {
        std::map<std::string, Response> answers;
        const Deadline deadline = Deadline::after_ms(timeout_ms);
        for (const std::string& name : channels_) {
            Response last;
            const bool is_anthropic = anthropic_channels_.count(name) > 0;
            const bool is_ready = poll_until(deadline, [&] {
                const std::string body = chat_body(probe_model(name), false);
                const auto response = http_exchange(
                    port(),
                    post_request(is_anthropic ? "/v1/messages" : "/v1/chat/completions", body,
                                 probe_key_.secret),
                    Deadline::after_ms(5000));
                if (!response.has_value()) {
                    return false;
                }
                last = *response;
                // OpenAI's shape names the code; Anthropic's (on /v1/messages) only the type.
                return !(response->status == 503 &&
                         (response->body.find("no_channel_available") != std::string::npos ||
                          response->body.find("No upstream channel") != std::string::npos));
            });
            EXPECT_TRUE(is_ready) << "channel " << name
                                  << " never became routable; last: " << last.status << " "
                                  << last.body;
            answers[name] = last;
        }
        return answers;
    }

    // One request on a new connection.
    Response call(const std::string& request, int64_t timeout_ms = 10000) {
        std::string error;
        auto response =
            http_exchange(port(), request, Deadline::after_ms(timeout_ms), false, &error);
        EXPECT_TRUE(response.has_value()) << error << "\nrequest: " << escape_bytes(request);
        return response.value_or(Response{});
    }
    Response chat(const Key& key, const std::string& body) {
        return call(post_request("/v1/chat/completions", body, key.secret));
    }

    std::string metrics() { return scrape_metrics(port(), Deadline::after_ms(5000)).value_or(""); }
    double metric(std::string_view name) { return metric_sum(metrics(), name); }

    [[nodiscard]] uint16_t port() const { return ringway_.port(); }
    [[nodiscard]] std::string db_path() const { return ringway_.db(); }
    [[nodiscard]] const Key& probe_key() const { return probe_key_; }
    Ringway& ringway() { return ringway_; }

    // SIGTERM and a clean exit (every queued usage row committed).
    void stop() {
        ASSERT_TRUE(ringway_.process().send_signal(SIGTERM));
        const auto status = ringway_.process().wait_exit(Deadline::after_ms(20000));
        ASSERT_TRUE(status.has_value()) << "ringway did not exit after SIGTERM";
        EXPECT_TRUE(status->is_exited && status->code == 0) << describe(*status) << "\n"
                                                            << ringway_.stderr_text();
    }

private:
    Ringway ringway_;
    uint16_t admin_port_ = 0;
    Key probe_key_;
    std::vector<std::string> channels_;
    std::set<std::string> anthropic_channels_;
};

// A channel "main" on the mock at `mock_port` serving gpt-4o-mini, routable, with its price:
// $1 per million input tokens (1000 nano-USD a token), $2 per million output (2000).
inline void priced_channel(Gateway& gateway, uint16_t mock_port) {
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = mock_port;
    spec.models = {"gpt-4o-mini"};
    ASSERT_GT(gateway.create_channel(spec), 0);
    ASSERT_EQ(gateway.wait_channels_routable().at("main").status, 200);
    const Response price = gateway.admin(
        "POST", "/admin/prices",
        R"({"model":"gpt-4o-mini","input_per_mtok":"1","output_per_mtok":"2","effective_from":0})");
    ASSERT_EQ(price.status, 201) << price.body;
}

// `gateway`'s answer once it serves `key` (polled for up to 30 s: a lease coming free, a
// database back).
inline Response wait_served(Gateway& gateway, const Key& key, const std::string& body) {
    Response served;
    EXPECT_TRUE(poll_until(Deadline::after_ms(30000),
                           [&] {
                               served = gateway.chat(key, body);
                               return served.status == 200;
                           }))
        << served.status << " " << served.body;
    return served;
}

// Starts a mock upstream with `--default NAME=VALUE` pairs.
inline void start_mock(MockUpstream& mock, const std::vector<std::string>& defaults = {},
                       std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args = std::move(extra_args);
    for (const std::string& pair : defaults) {
        args.push_back("--default");
        args.push_back(pair);
    }
    std::string error;
    ASSERT_TRUE(mock.start(args, {}, &error)) << error;
}

// --------------------------------------------------------------------------------------
// Budgets
// --------------------------------------------------------------------------------------

// nano-USD as the decimal text the admin API takes ("0.000123456").
inline std::string usd(int64_t nano) {
    char text[48];
    std::snprintf(text, sizeof(text), "%lld.%09lld", (long long)(nano / 1000000000),
                  (long long)(nano % 1000000000));
    return text;
}

// Output tokens of exact_body: its max_tokens and the mock's chunks.
inline constexpr int64_t exact_body_output_tokens = 8;

// A chat body whose mock usage is exactly its reservation: prompt tokens = its byte count (a
// three-digit number written over the placeholder of the same width), completion tokens =
// its max_tokens (the mock's chunks).
inline std::string exact_body() {
    const std::string templ = chat_body(
        "gpt-4o-mini", false, R"("x_mock":{"prompt-tokens":999,"chunks":8},"max_tokens":8)");
    std::string body = templ;
    const std::string size = std::to_string(templ.size());
    EXPECT_EQ(size.size(), 3u);
    body.replace(body.find("999"), 3, size);
    return body;
}

// What a burst of requests on a limited key got back.
struct BurstTally {
    int ok_count = 0;       // 200
    int refused_count = 0;  // 429 insufficient_quota
    int other_count = 0;    // Anything else, or no answer.
};

// `clients` threads at once, each sending `per_client` requests (POST
// /v1/chat/completions with `body`, bearer `secret`, each on a new connection) one after
// the other; request `sent` of client `client` goes to ports[(client + sent) % size], so
// several gateways share the burst. `on_refused` sees every 429 insufficient_quota answer
// (on a client thread).
template <class OnRefused>
BurstTally quota_burst(const std::vector<uint16_t>& ports, int clients, int per_client,
                       const std::string& body, const std::string& secret, OnRefused on_refused) {
    std::atomic<int> ok_count{0};
    std::atomic<int> refused_count{0};
    std::atomic<int> other_count{0};
    std::vector<std::thread> threads;
    for (int client = 0; client < clients; client++) {
        threads.emplace_back([&, client] {
            for (int sent = 0; sent < per_client; sent++) {
                const uint16_t port = ports[size_t(client + sent) % ports.size()];
                const auto response =
                    http_exchange(port, post_request("/v1/chat/completions", body, secret),
                                  Deadline::after_ms(20000));
                if (!response.has_value()) {
                    other_count += 1;
                } else if (response->status == 200) {
                    ok_count += 1;
                } else if (response->status == 429 &&
                           response->body.find("insufficient_quota") != std::string::npos) {
                    refused_count += 1;
                    on_refused(*response);
                } else {
                    other_count += 1;
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    return {ok_count.load(), refused_count.load(), other_count.load()};
}

inline BurstTally quota_burst(const std::vector<uint16_t>& ports, int clients, int per_client,
                              const std::string& body, const std::string& secret) {
    return quota_burst(ports, clients, per_client, body, secret, [](const Response&) {});
}

}  // namespace rw::test::proxy
