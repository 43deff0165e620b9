// tests/unit/storage/writer_test.cc — the writer against real SQLite files: rows land,
// daily aggregates and quota_used match the rows and the invariant holds; flush by
// deadline; admin commands; stop with full queues commits everything.
#include "storage/writer.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "storage/migrations.h"
#include "storage_test_support.h"

namespace rw {
namespace {

// Inserts keys 1..count so quota updates have rows to land on.
bool insert_keys(Db& db, void* context, std::string& /*error*/) {
    const int64_t count = *static_cast<const int64_t*>(context);
    for (int64_t id = 1; id <= count; id++) {
        const std::string sql =
            "INSERT INTO keys (id, name, key_hash, key_prefix, created_at)"
            " VALUES (" +
            std::to_string(id) + ", 'k', randomblob(32), 'p', 1)";
        if (!db.exec(sql.c_str())) {
            return false;
        }
    }
    return true;
}

// Checks integrity, exactly-once by request_id, and the quota invariant.
void expect_database_consistent(const StorageConfig& config, int64_t expected_rows) {
    Db db;
    std::string error;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    EXPECT_EQ(db.query_text("PRAGMA integrity_check").value, "ok");
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM usage_logs").value, expected_rows);
    EXPECT_EQ(db.query_int64("SELECT count(DISTINCT request_id) FROM usage_logs").value,
              expected_rows);
    const QuotaInvariantReport report = check_quota_invariant(db);
    EXPECT_TRUE(report.error.empty()) << report.error;
    EXPECT_TRUE(report.holds);
    // daily_usage must agree with the rows it summarises.
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM ("
                             " SELECT key_id, date(ts_ms / 1000, 'unixepoch') AS day,"
                             " model_requested AS model, channel_id,"
                             " count(*) AS n, sum(prompt_tokens) AS p,"
                             " sum(completion_tokens) AS c, sum(total_tokens) AS t"
                             " FROM usage_logs GROUP BY 1, 2, 3, 4) AS l"
                             " JOIN daily_usage AS d USING (key_id, day, model, channel_id)"
                             " WHERE d.requests = l.n AND d.prompt_tokens = l.p"
                             " AND d.completion_tokens = l.c AND d.total_tokens = l.t")
                  .value,
              db.query_int64("SELECT count(*) FROM daily_usage").value);
    // ... in the token kinds and the money too.
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM ("
                             " SELECT key_id, date(ts_ms / 1000, 'unixepoch') AS day,"
                             " sum(cached_input_tokens) AS ci, sum(cache_write_tokens) AS cw,"
                             " sum(reasoning_tokens) AS r, sum(cost_nano) AS cost,"
                             " sum(price_id IS NULL) AS unpriced"
                             " FROM usage_logs GROUP BY 1, 2) AS l"
                             " JOIN daily_usage AS d USING (key_id, day)"
                             " WHERE d.cached_input_tokens = l.ci AND d.cache_write_tokens = l.cw"
                             " AND d.reasoning_tokens = l.r AND d.cost_nano = l.cost"
                             " AND d.unpriced_requests = l.unpriced")
                  .value,
              db.query_int64("SELECT count(*) FROM daily_usage").value);
}

TEST(Writer, BatchesFromTwoShardsLandExactlyOnce) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 2, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    int64_t key_count = 3;
    ASSERT_TRUE(writer.execute(insert_keys, &key_count, error)) << error;

    constexpr uint64_t per_shard = 20000;
    auto shard = [&writer](uint32_t shard_index) {
        LogQueue& queue = writer.queue(shard_index);
        for (uint64_t i = 0; i < per_shard; i++) {
            while (!queue.try_reserve()) {  // Back-pressure: a real shard answers 503.
                writer.notify(shard_index);
                std::this_thread::yield();
            }
            const uint64_t sequence = shard_index * per_shard + i;
            // Keys 0..3 (0 = unauthenticated), two different days.
            queue.push(test::make_record(sequence, int64_t(sequence % 4), uint32_t(sequence % 97),
                                         1700000000000 + int64_t(sequence / 4 % 2) * 86400000));
            if (i % 16 == 0) {
                writer.notify(shard_index);  // Once per "loop turn".
            }
        }
        writer.notify(shard_index);
    };
    std::thread shard0(shard, 0);
    std::thread shard1(shard, 1);
    shard0.join();
    shard1.join();
    writer.request_stop();
    writer_thread.join();

    const WriterStats stats = writer.stats();
    EXPECT_EQ(stats.rows_written, 2 * per_shard);
    // A transaction holds at most writer_batch_rows_max rows (a backlog is taken in one).
    EXPECT_GE(stats.batches_committed,
              2 * per_shard / writer_batch_rows_max(config.log_batch_rows));
    EXPECT_EQ(stats.commit_errors, 0u);
    EXPECT_FALSE(stats.is_stalled);
    uint64_t histogram_total = 0;
    for (const uint64_t count : stats.latency_histogram) {
        histogram_total += count;
    }
    EXPECT_EQ(histogram_total, stats.batches_committed);
    EXPECT_GE(stats.batch_latency_us_max, stats.last_batch_latency_us);
    EXPECT_EQ(writer.queue(0).depth(), 0u);
    expect_database_consistent(config, 2 * per_shard);

    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    int64_t expected_key1 = 0;
    for (uint64_t s = 0; s < 2 * per_shard; s++) {
        if (s % 4 == 1) {
            expected_key1 += int64_t(s % 97);
        }
    }
    EXPECT_EQ(db.query_int64("SELECT quota_used FROM keys WHERE id = 1").value, expected_key1);
    EXPECT_EQ(db.query_int64("SELECT sum(total_tokens) FROM daily_usage WHERE key_id = 1").value,
              expected_key1);
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM daily_usage").value, 8);  // 4 keys x 2 days
    EXPECT_EQ(db.query_int64("SELECT requests FROM daily_usage WHERE key_id = 2 AND"
                             " day = '2023-11-14'")
                  .value,
              int64_t(2 * per_shard / 8));
    EXPECT_EQ(db.query_text("SELECT model_sent || ' ' || endpoint || ' ' || usage_source ||"
                            " ' ' || end_reason FROM usage_logs WHERE request_id = 'req-5'")
                  .value,
              "gpt-4o-mini-2024-07-18 /v1/chat/completions reported complete");
}

TEST(Writer, PartialBatchCommitsByFlushDeadline) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    for (uint64_t i = 0; i < 3; i++) {
        ASSERT_TRUE(writer.queue(0).try_reserve());
        writer.queue(0).push(test::make_record(i, 0, 5));
    }
    writer.notify(0);
    // Far below log_batch_rows: only the flush deadline (5 ms) can commit these.
    EXPECT_TRUE(test::wait_until([&] { return writer.rows_written() == 3; }));
    EXPECT_EQ(writer.stats().batches_committed, 1u);
    writer.request_stop();
    writer_thread.join();
    expect_database_consistent(config, 3);
}

bool failing_command(Db& db, void* /*context*/, std::string& error) {
    if (!db.exec("INSERT INTO keys (name, key_hash, key_prefix, created_at)"
                 " VALUES ('x', randomblob(32), 'p', 1)")) {
        return false;
    }
    error = "refused on purpose";
    return false;
}

TEST(Writer, AdminCommandFailureRollsBack) {
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    EXPECT_FALSE(writer.execute(failing_command, nullptr, error));
    EXPECT_EQ(error, "refused on purpose");
    int64_t key_count = 2;
    EXPECT_TRUE(writer.execute(insert_keys, &key_count, error)) << error;
    EXPECT_FALSE(writer.execute(insert_keys, &key_count, error));  // Duplicate ids.
    EXPECT_NE(error.find("UNIQUE"), std::string::npos) << error;
    writer.request_stop();
    writer_thread.join();
    EXPECT_FALSE(writer.execute(insert_keys, &key_count, error));
    EXPECT_EQ(error, "storage writer is not running");
    EXPECT_EQ(writer.stats().admin_commands, 3u);

    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM keys WHERE system = 0").value, 2);
}

TEST(Writer, StopWithFullQueuesCommitsEverything) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.log_flush_ms = 60000;  // Only the stop may flush.
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 2, error)) << error;
    {
        int64_t key_count = 1;
        Db& db = writer.db_before_run();
        ASSERT_TRUE(insert_keys(db, &key_count, error)) << db.last_error();
    }
    uint64_t sequence = 0;
    for (uint32_t shard = 0; shard < 2; shard++) {
        LogQueue& queue = writer.queue(shard);
        while (queue.try_reserve()) {
            queue.push(test::make_record(sequence++, 1, 3));
        }
        EXPECT_EQ(queue.depth(), config.queue_slots);  // Completely full.
    }
    writer.request_stop();  // Before run(): run() must still drain everything.
    std::thread writer_thread([&writer] { writer.run(); });
    writer_thread.join();
    EXPECT_EQ(writer.rows_written(), sequence);
    EXPECT_EQ(writer.queue(0).depth(), 0u);
    EXPECT_EQ(writer.queue(1).depth(), 0u);
    expect_database_consistent(config, int64_t(sequence));
    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    EXPECT_EQ(db.query_int64("SELECT quota_used FROM keys WHERE id = 1").value,
              int64_t(3 * sequence));
}

TEST(Writer, BacklogCommitsInFewerLargerTransactionsRowForRow) {
    // A backlog (here: a queue filled before the writer runs) is taken up to
    // writer_batch_rows_max rows per transaction instead of log_batch_rows, and every row
    // still lands once, in order, with each column where it belongs: on SQLite each batch
    // (512 and 488 rows) is one INSERT ... SELECT over rw_usage_rows, the statement reused.
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    ASSERT_EQ(writer_batch_rows_max(config.log_batch_rows), 8 * config.log_batch_rows);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    {
        int64_t key_count = 3;
        Db& db = writer.db_before_run();
        ASSERT_TRUE(insert_keys(db, &key_count, error)) << db.last_error();
    }
    constexpr uint64_t rows = 1000;
    LogQueue& queue = writer.queue(0);
    for (uint64_t sequence = 0; sequence < rows; sequence++) {
        ASSERT_TRUE(queue.try_reserve());
        queue.push(test::make_record(sequence, int64_t(sequence % 4), uint32_t(sequence % 97)));
    }
    writer.request_stop();  // Before run(): run() drains it all, then returns.
    std::thread writer_thread([&writer] { writer.run(); });
    writer_thread.join();
    EXPECT_EQ(writer.rows_written(), rows);
    const uint64_t batch_max = writer_batch_rows_max(config.log_batch_rows);
    // 512 + 488 rows: 2 transactions, where batches of log_batch_rows would take 16.
    EXPECT_EQ(writer.stats().batches_committed, (rows + batch_max - 1) / batch_max);
    expect_database_consistent(config, int64_t(rows));
    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM usage_logs AS u,"
                             " (SELECT id, CAST(substr(request_id, 5) AS INTEGER) AS s"
                             "  FROM usage_logs) AS q"
                             " WHERE u.id = q.id AND u.id = q.s + 1 AND u.key_id = q.s % 4"
                             " AND u.total_tokens = q.s % 97 AND u.latency_us = 1000 + q.s"
                             " AND (u.price_id IS NULL) = (q.s % 3 = 0) AND u.channel_id = 7"
                             " AND u.model_sent = 'gpt-4o-mini-2024-07-18'"
                             " AND u.usage_source = 'reported' AND u.end_reason = 'complete'")
                  .value,
              int64_t(rows));
    int64_t expected_key1 = 0;
    for (uint64_t sequence = 1; sequence < rows; sequence += 4) {
        expected_key1 += int64_t(sequence % 97);
    }
    EXPECT_EQ(db.query_int64("SELECT quota_used FROM keys WHERE id = 1").value, expected_key1);
}

TEST(Writer, EveryColumnIsStoredAsTheRecordHoldsIt) {
    // The rows reach usage_logs through rw_usage_rows (storage/usage_rows.h): each column
    // must hold what the record holds, an absent id '' (not NULL), an unpriced row's
    // price_id NULL, and usage_source / end_reason the names usage_source_name and
    // end_reason_name give, codes outside the enums included.
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    UsageRecord full = test::make_record(1, 2, 301, 1700000123456);
    full.channel_id = 9;
    full.status = 502;
    full.attempts = 3;
    full.ttfb_us = 77;
    full.bytes_in = 12;
    full.bytes_out = 34;
    full.usage_source = UsageSource::estimated;
    full.end_reason = EndReason::upstream_stream_error;
    record_set_text(full.model_requested, "m-asked");
    record_set_text(full.endpoint, "/v1/messages");
    record_set_text(full.client_request_id, "client-1");
    record_set_text(full.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    record_set_text(full.upstream_request_id, "up-1");
    record_set_text(full.response_id, "resp_1");
    UsageRecord bare = test::make_record(3, 1, 10);  // Unpriced (sequence % 3 == 0), no ids.
    UsageRecord odd = test::make_record(4, 1, 10);
    odd.usage_source = UsageSource(200);  // Codes no enumerator has.
    odd.end_reason = EndReason(77);
    LogQueue& queue = writer.queue(0);
    for (const UsageRecord& record : {full, bare, odd}) {
        ASSERT_TRUE(queue.try_reserve());
        queue.push(record);
    }
    writer.request_stop();
    std::thread writer_thread([&writer] { writer.run(); });
    writer_thread.join();
    ASSERT_EQ(writer.rows_written(), 3u);

    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    EXPECT_EQ(db.query_text("SELECT ts_ms || ' ' || key_id || ' ' || channel_id || ' ' ||"
                            " model_requested || ' ' || model_sent || ' ' || endpoint || ' ' ||"
                            " status || ' ' || prompt_tokens || ' ' || completion_tokens || ' ' ||"
                            " total_tokens || ' ' || usage_source || ' ' || end_reason || ' ' ||"
                            " attempts || ' ' || latency_us || ' ' || ttfb_us || ' ' || bytes_in ||"
                            " ' ' || bytes_out || ' ' || request_id || ' ' || cached_input_tokens"
                            " || ' ' || cache_write_tokens || ' ' || reasoning_tokens || ' ' ||"
                            " cost_nano || ' ' || price_id || ' ' || client_request_id || ' ' ||"
                            " traceparent || ' ' || upstream_request_id || ' ' || response_id"
                            " FROM usage_logs WHERE id = 1")
                  .value,
              "1700000123456 2 9 m-asked gpt-4o-mini-2024-07-18 /v1/messages 502 150 151 301"
              " estimated upstream_stream_error 3 1001 77 12 34 req-1 37 18 50 1000304 5"
              " client-1 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 up-1 resp_1");
    EXPECT_EQ(db.query_text("SELECT quote(price_id) || quote(client_request_id) ||"
                            " quote(traceparent) || quote(upstream_request_id) ||"
                            " quote(response_id) || ' ' || usage_source || ' ' || end_reason"
                            " FROM usage_logs WHERE id = 2")
                  .value,
              "NULL'''''''' reported complete");
    EXPECT_EQ(db.query_text("SELECT usage_source || ' ' || end_reason FROM usage_logs"
                            " WHERE id = 3")
                  .value,
              std::string(usage_source_name(odd.usage_source)) + " " +
                  std::string(end_reason_name(odd.end_reason)));
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM usage_logs WHERE typeof(ts_ms) = 'integer'"
                             " AND typeof(status) = 'integer' AND typeof(model_sent) = 'text'"
                             " AND typeof(usage_source) = 'text'")
                  .value,
              3);
}

TEST(Writer, OpenRejectsBadConfig) {
    test::TempDir dir;
    StorageConfig config = test::test_config(dir);
    config.queue_slots = 1000;  // Not a power of two.
    Writer writer;
    std::string error;
    EXPECT_FALSE(writer.open(config, 1, error));
    EXPECT_NE(error.find("power of two"), std::string::npos) << error;
}

TEST(Writer, SpendMovesWithTheRowsInOneTransaction) {
    // keys.spend_nano grows by exactly the cost of the key's committed rows, a priced row
    // stores its price_id and an unpriced one NULL.
    test::TempDir dir;
    const StorageConfig config = test::test_config(dir);
    Writer writer;
    std::string error;
    ASSERT_TRUE(writer.open(config, 1, error)) << error;
    std::thread writer_thread([&writer] { writer.run(); });
    int64_t key_count = 2;
    ASSERT_TRUE(writer.execute(insert_keys, &key_count, error)) << error;
    int64_t expected_spend[3] = {0, 0, 0};
    for (uint64_t sequence = 0; sequence < 50; sequence++) {
        const int64_t key_id = 1 + int64_t(sequence % 2);
        const UsageRecord record = test::make_record(sequence, key_id, 40);
        expected_spend[key_id] += record.cost_nano;
        ASSERT_TRUE(writer.queue(0).try_reserve());
        writer.queue(0).push(record);
    }
    writer.notify(0);
    ASSERT_TRUE(test::wait_until([&] { return writer.rows_written() == 50; }));
    writer.request_stop();
    writer_thread.join();
    Db db;
    ASSERT_TRUE(db.open(config, DbMode::read_only, error)) << error;
    for (const int64_t key_id : {int64_t{1}, int64_t{2}}) {
        const std::string sql = "SELECT spend_nano FROM keys WHERE id = " + std::to_string(key_id);
        EXPECT_EQ(db.query_int64(sql.c_str()).value, expected_spend[key_id]);
        EXPECT_GT(expected_spend[key_id], 0);
    }
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM usage_logs WHERE price_id IS NULL").value, 17);
    EXPECT_EQ(db.query_int64("SELECT count(*) FROM usage_logs WHERE price_id = 5").value, 33);
    EXPECT_EQ(db.query_int64("SELECT sum(unpriced_requests) FROM daily_usage").value, 17);
    expect_database_consistent(config, 50);
}

}  // namespace
}  // namespace rw
