// tests/e2e/proxy_billing_test.cc — the billing invariants under a mixed load (RULES §8,
// §9): about 200 concurrent requests on three keys — whole and streamed chat, Responses
// streams, embeddings, streams reset mid-way, truncated answers, relayed 503s, upstream
// auth failures, clients leaving mid-stream, and a key running out of quota — then SIGTERM.
// Afterwards, in the database: exactly one usage row per request that reached the mock
// (the mock's own counter), keys.quota_used == SUM(usage_logs.total_tokens) and
// keys.spend_nano == SUM(usage_logs.cost_nano) for every key, each row's cost equal to its
// token kinds times its price's rates, daily_usage agreeing with the rows, each fault's row saying
// how it ended, and PRAGMA integrity_check = ok. The metrics agree with the rows before shutdown.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

enum Kind : int {
    chat_whole,
    chat_stream,
    stream_reset,
    whole_truncated,
    upstream_503,
    client_gone,
    embeddings,
    responses_stream,
    upstream_401,
    kind_count,
};

constexpr int threads = 4;
constexpr int requests_per_thread = 50;

struct Tally {
    std::mutex mutex;
    std::array<int, kind_count> admitted{};  // Answered by the upstream path.
    std::array<int, kind_count> quota_refused{};
    std::vector<std::string> problems;
    void problem(const std::string& text) {
        const std::lock_guard lock(mutex);
        problems.push_back(text);
    }
};

// Sends one request of `kind`; returns the status the client saw (0: none).
int run_one(uint16_t port, int kind, const std::string& secret, Tally& tally) {
    const std::string n = std::to_string(kind);
    switch (kind) {
        case chat_whole:
        case upstream_503:
        case whole_truncated:
        case upstream_401:
        case embeddings: {
            std::string path = "/v1/chat/completions";
            std::string body;
            if (kind == chat_whole) {
                body = chat_body("gpt-4o-mini", false, R"("x_mock":{"chunks":5})");
            }
            if (kind == upstream_503) {
                body = chat_body("gpt-4o-mini", false, R"("x_mock":{"status":503})");
            }
            if (kind == upstream_401) {
                body = chat_body("gpt-4o-mini", true, R"("x_mock":{"status":401})");
            }
            if (kind == whole_truncated) {
                body = chat_body("gpt-4o-mini", false, R"("x_mock":{"fault":"truncate"})");
            }
            if (kind == embeddings) {
                path = "/v1/embeddings";
                body = R"({"model":"text-embedding-3-small","input":"billing"})";
            }
            const auto response =
                http_exchange(port, post_request(path, body, secret), Deadline::after_ms(10000));
            if (!response.has_value()) {
                tally.problem("kind " + n + ": no response");
                return 0;
            }
            return response->status;
        }
        case chat_stream:
        case responses_stream: {
            const std::string path = kind == chat_stream ? "/v1/chat/completions" : "/v1/responses";
            const std::string body =
                kind == chat_stream
                    ? chat_body("gpt-4o-mini", true, R"("x_mock":{"chunks":8,"split-bytes":64})")
                    : R"({"model":"gpt-4o-mini","input":"hi","stream":true})";
            const auto response =
                http_exchange(port, post_request(path, body, secret), Deadline::after_ms(10000));
            if (!response.has_value()) {
                tally.problem("kind " + n + ": no complete response");
                return 0;
            }
            if (response->status == 200 &&
                response->body.find("upstream connection lost") != std::string::npos) {
                tally.problem("kind " + n + ": a healthy stream was cut");
            }
            return response->status;
        }
        case stream_reset:
        case client_gone: {
            Client client;
            const std::string x_mock =
                kind == stream_reset ? R"("x_mock":{"chunks":6,"fault":"reset","fault-after":2})"
                                     : R"("x_mock":{"chunks":40,"event-delay-ms":20})";
            // Connection: close on the reset kind, whose check waits for the close: the
            // small key's quota refusal is a whole answer that would keep the connection.
            const std::string_view close_header =
                kind == stream_reset ? "Connection: close\r\n" : "";
            if (!client.connect(port, Deadline::after_ms(5000)) ||
                !client.send(
                    post_request("/v1/chat/completions", chat_body("gpt-4o-mini", true, x_mock),
                                 secret, close_header),
                    Deadline::after_ms(5000))) {
                tally.problem("kind " + n + ": cannot send");
                return 0;
            }
            if (kind == stream_reset) {
                if (!client.wait_closed(Deadline::after_ms(10000))) {
                    tally.problem("kind " + n + ": not closed");
                }
                const RawResponse raw = parse_raw_response(client.unread());
                if (raw.status == 200 && (raw.has_last_chunk || sse_events(raw.payload).empty() ||
                                          sse_events(raw.payload).back() != upstream_lost_event)) {
                    tally.problem("reset stream not ended by the error event: " +
                                  escape_bytes(client.unread(), 600));
                }
                return raw.status;
            }
            // Leave after the first event (or read a refusal whole: read_response consumes
            // a complete answer, so its status is taken from there).
            int status = 0;
            poll_until(Deadline::after_ms(5000), [&] {
                (void)client.wait_readable(Deadline::after_ms(20));
                std::string unused;
                const auto whole = client.read_response(Deadline::after_ms(1), false, &unused);
                if (whole.has_value()) {
                    status = whole->status;
                    return true;
                }
                const RawResponse raw = parse_raw_response(client.unread());
                status = raw.status;
                return raw.status != 0 && (raw.status != 200 || !sse_events(raw.payload).empty());
            });
            client.close();
            if (status == 0) {
                tally.problem("kind " + n + ": no answer");
            }
            return status;
        }
        default: return 0;
    }
}

TEST(ProxyBillingTest, MixedLoadKeepsOneRowPerUpstreamRequestAndQuotaEqualToRows) {
    MockUpstream mock;
    ASSERT_NO_FATAL_FAILURE(start_mock(mock, {}, {"--threads", "2"}));
    Gateway gateway;
    ASSERT_NO_FATAL_FAILURE(gateway.start({{"RINGWAY_SHARDS", "2"}}));
    ChannelSpec spec;
    spec.name = "main";
    spec.mock_port = mock.port();
    spec.models = {"gpt-4o-mini", "text-embedding-3-small"};
    // The load's deliberate 401s and 503s would take the only channel down (channel
    // health); this test is about the records, so the channel opts out.
    spec.extra_json = R"("auto_disable":false)";
    ASSERT_GT(gateway.create_channel(spec), 0);
    ASSERT_EQ(gateway.wait_channels_routable().at("main").status, 200);
    // Prices in force for the load (from 1970): the chat model with a cached-input rate and
    // a per-request fee, embeddings by prefix; the probes' models stay unpriced.
    for (const char* body :
         {R"({"model":"gpt-4o-mini","input_per_mtok":"0.15","output_per_mtok":"0.60",)"
          R"("cached_input_per_mtok":"0.075","per_request":"0.000001","effective_from":0})",
          R"({"model":"text-embedding-*","input_per_mtok":"0.02","output_per_mtok":"0",)"
          R"("effective_from":0})"}) {
        const Response price = gateway.admin("POST", "/admin/prices", body);
        ASSERT_EQ(price.status, 201) << price.body;
    }
    const Key keys[3] = {gateway.create_key(R"({"name":"a"})"),
                         gateway.create_key(R"({"name":"b","quota_tokens":100000000})"),
                         gateway.create_key(R"({"name":"small","quota_tokens":100})")};
    ASSERT_NO_FATAL_FAILURE(mock_reset(mock.port()));
    // The probes' records, counted once they are all queued and committed: the load's
    // records are then exactly the ones above this baseline.
    MetricsScraper scraper(gateway.port());
    std::string metrics;
    // Nothing in flight, every queued record committed, and at least `records_min` of them.
    const auto is_settled = [&](double records_min) {
        metrics = scraper.scrape(Deadline::after_ms(2000)).value_or("");
        return !metrics.empty() && metric_sum(metrics, "ringway_requests_in_flight") == 0 &&
               metric_sum(metrics, "ringway_writer_rows_total") ==
                   metric_sum(metrics, "ringway_usage_records_total") &&
               metric_sum(metrics, "ringway_usage_records_total") >= records_min;
    };
    ASSERT_TRUE(poll_until(Deadline::after_ms(10000), [&] { return is_settled(0); })) << metrics;
    const double records_before = metric_sum(metrics, "ringway_usage_records_total");

    Tally tally;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; t++) {
        workers.emplace_back([&, t] {
            for (int i = 0; i < requests_per_thread; i++) {
                const int kind = (i + t) % kind_count;
                // The small key gets every 7th request and runs out of quota part-way,
                // whatever the threads' pace: thread 0's own small-key requests before its
                // last one (i = 45) cost 109 tokens (a truncated answer 0: its client got a
                // 502, a chat stream 54, embeddings 13, a reset stream 42), each charged
                // before its client saw the end; so that last one at least is refused.
                const Key& key = (i % 7 == 3) ? keys[2] : keys[(i + t) % 2];
                const int status = run_one(gateway.port(), kind, key.secret, tally);
                const std::lock_guard lock(tally.mutex);
                if (status == 429 && &key == &keys[2]) {
                    tally.quota_refused[size_t(kind)] += 1;
                } else if (status != 0) {
                    tally.admitted[size_t(kind)] += 1;
                }
            }
        });
    }
    for (std::thread& worker : workers) {
        worker.join();
    }
    for (const std::string& problem : tally.problems) {
        ADD_FAILURE() << problem;
    }

    int admitted_total = 0;
    int refused_total = 0;
    for (int k = 0; k < kind_count; k++) {
        admitted_total += tally.admitted[size_t(k)];
        refused_total += tally.quota_refused[size_t(k)];
    }
    std::string summary = "admitted per kind:";
    for (int k = 0; k < kind_count; k++) {
        summary += " " + std::to_string(tally.admitted[size_t(k)]);
    }
    std::printf("%s; refused for quota: %d\n", summary.c_str(), refused_total);
    EXPECT_EQ(admitted_total + refused_total, threads * requests_per_thread);
    EXPECT_GT(refused_total, 0) << "the small key never ran out of quota";
    // Every admitted request reached the mock exactly once (one channel: no retries).
    const int64_t reached = mock_requests(mock.port());
    EXPECT_EQ(reached, admitted_total);

    // Before shutdown: every request finished (a client that left may be noticed a chunk
    // later), its record queued (the gauge drops only after that) and committed, one
    // record per request that reached the mock, and the metrics say so.
    EXPECT_TRUE(poll_until(Deadline::after_ms(10000), [&] {
        return is_settled(records_before + double(reached));
    })) << metrics;
    const double records = metric_sum(metrics, "ringway_usage_records_total");
    const double prompt_metric = metric_sum(metrics, "ringway_tokens_prompt_total");
    const double completion_metric = metric_sum(metrics, "ringway_tokens_completion_total");
    const double unpriced_metric = metric_sum(metrics, "ringway_unpriced_requests_total");
    EXPECT_EQ(metric_sum(metrics, "ringway_writer_commit_errors_total"), 0);

    ASSERT_NO_FATAL_FAILURE(gateway.stop());

    Db db(gateway.db_path());
    ASSERT_TRUE(db.ok()) << db.error();
    const std::string probe = std::to_string(gateway.probe_key().id);
    // On any failure below: the rows by how they ended, so the odd one can be named.
    struct Breakdown {
        Db& db;
        const std::string& probe;
        double records;
        ~Breakdown() {
            if (!::testing::Test::HasFailure()) {
                return;
            }
            std::string text =
                "usage_logs by end_reason, usage_source, status (records at the "
                "final scrape: " +
                std::to_string(int64_t(records)) + "):\n";
            for (const Row& row : db.query(
                     "SELECT key_id = " + probe +
                     " AS probe, endpoint, end_reason, usage_source, status, COUNT(*) AS rows, "
                     "SUM(prompt_tokens) AS prompt, SUM(completion_tokens) AS completion, "
                     "MIN(prompt_tokens) AS prompt_min, MAX(prompt_tokens) AS prompt_max "
                     "FROM usage_logs GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5")) {
                text += "  " + describe_row(row) + "\n";
            }
            std::printf("%s", text.c_str());
        }
    } breakdown{db, probe, records};
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id != " + probe), reached);
    EXPECT_EQ(double(db.scalar("SELECT COUNT(*) FROM usage_logs")), records);
    EXPECT_EQ(double(db.scalar("SELECT COALESCE(SUM(prompt_tokens), 0) FROM usage_logs")),
              prompt_metric);
    EXPECT_EQ(double(db.scalar("SELECT COALESCE(SUM(completion_tokens), 0) FROM usage_logs")),
              completion_metric);
    for (const Row& row :
         db.query("SELECT k.id, k.quota_used, COALESCE(SUM(u.total_tokens), 0) AS logged, "
                  "COUNT(u.id) AS rows_logged, "
                  "(SELECT COALESCE(SUM(total_tokens), 0) FROM daily_usage d WHERE d.key_id = "
                  "k.id) AS daily, "
                  "(SELECT COALESCE(SUM(requests), 0) FROM daily_usage d WHERE d.key_id = k.id) AS "
                  "daily_requests "
                  "FROM keys k LEFT JOIN usage_logs u ON u.key_id = k.id GROUP BY k.id")) {
        EXPECT_EQ(row.at("quota_used"), row.at("logged")) << describe_row(row);
        EXPECT_EQ(row.at("daily"), row.at("logged")) << describe_row(row);
        EXPECT_EQ(row.at("daily_requests"), row.at("rows_logged")) << describe_row(row);
    }
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE total_tokens != "
                        "prompt_tokens + completion_tokens"),
              0);

    // The cost invariant: a key's spend is the sum of its rows' cost, as are its days'; every
    // row's cost is its token kinds times the rates of the price it names (one rounding,
    // the fee only when billed); the load's rows are all priced, the probes' none, and the
    // metric counted every unpriced row.
    for (const Row& row :
         db.query("SELECT k.id, k.spend_nano, COALESCE(SUM(u.cost_nano), 0) AS cost, "
                  "(SELECT COALESCE(SUM(cost_nano), 0) FROM daily_usage d WHERE d.key_id = "
                  "k.id) AS daily_cost, "
                  "(SELECT COALESCE(SUM(unpriced_requests), 0) FROM daily_usage d WHERE "
                  "d.key_id = k.id) AS daily_unpriced, "
                  "COALESCE(SUM(u.id IS NOT NULL AND u.price_id IS NULL), 0) AS unpriced "
                  "FROM keys k LEFT JOIN usage_logs u ON u.key_id = k.id GROUP BY k.id")) {
        EXPECT_EQ(row.at("spend_nano"), row.at("cost")) << describe_row(row);
        EXPECT_EQ(row.at("daily_cost"), row.at("cost")) << describe_row(row);
        EXPECT_EQ(row.at("daily_unpriced"), row.at("unpriced")) << describe_row(row);
    }
    EXPECT_EQ(db.scalar(std::string("SELECT COUNT(*) FROM usage_logs u LEFT JOIN prices p ON "
                                    "p.id = u.price_id WHERE u.cost_nano != ") +
                        cost_recomputed_sql),
              0);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id != " + probe +
                        " AND price_id IS NULL"),
              0);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id = " + probe +
                        " AND price_id IS NOT NULL"),
              0);
    EXPECT_EQ(double(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE price_id IS NULL")),
              unpriced_metric);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE usage_source = 'unknown' AND "
                        "cost_nano != 0"),
              0);
    EXPECT_GT(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE usage_source = 'estimated' AND "
                        "cost_nano > 0"),
              0);
    EXPECT_GT(db.scalar("SELECT SUM(cost_nano) FROM usage_logs"), 0);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM usage_logs WHERE attempts != 1"), 0);

    // Each fault left the row it should.
    const auto count = [&](const std::string& where) {
        return db.scalar("SELECT COUNT(*) FROM usage_logs WHERE key_id != " + probe + " AND " +
                         where);
    };
    EXPECT_EQ(count("status = 503"), tally.admitted[upstream_503]);
    EXPECT_EQ(count("status = 503 AND end_reason = 'upstream_error' AND usage_source = 'unknown' "
                    "AND total_tokens = 0"),
              tally.admitted[upstream_503]);
    EXPECT_EQ(count("status = 502 AND end_reason = 'upstream_error' AND usage_source = 'unknown'"),
              tally.admitted[upstream_401]);
    EXPECT_EQ(
        count("status = 502 AND end_reason = 'upstream_reset' AND usage_source = 'unknown' AND "
              "total_tokens = 0"),
        tally.admitted[whole_truncated]);
    EXPECT_EQ(
        count("status = 200 AND end_reason = 'upstream_reset' AND usage_source = 'estimated'"),
        tally.admitted[stream_reset]);
    EXPECT_EQ(count("endpoint = '/v1/embeddings' AND usage_source = 'reported'"),
              tally.admitted[embeddings]);
    EXPECT_EQ(count("endpoint = '/v1/responses' AND usage_source = 'reported' AND "
                    "end_reason = 'complete'"),
              tally.admitted[responses_stream]);
    // A client leaving mid-stream is client_gone, billed by estimate (a fast stream may
    // have completed first; then it is reported).
    EXPECT_EQ(count("end_reason = 'client_gone' AND usage_source = 'estimated'") +
                  count("end_reason = 'complete' AND bytes_in > 0 AND model_requested = "
                        "'gpt-4o-mini' AND endpoint = '/v1/chat/completions' AND status = 200") -
                  tally.admitted[chat_whole] - tally.admitted[chat_stream],
              tally.admitted[client_gone]);
    EXPECT_GT(count("end_reason = 'client_gone'"), 0);
    EXPECT_EQ(count("end_reason = 'client_gone' AND usage_source != 'estimated'"), 0);

    if (gateway.db_path().starts_with("postgres")) {
        return;  // PostgreSQL checks its own pages; PRAGMA is SQLite's.
    }
    const auto integrity = db.query("PRAGMA integrity_check");
    ASSERT_EQ(integrity.size(), 1u);
    EXPECT_EQ(integrity[0].begin()->second, "ok");
}

}  // namespace
}  // namespace rw::test::proxy
