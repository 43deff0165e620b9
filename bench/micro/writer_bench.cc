// bench/micro/writer_bench.cc — the storage hot paths: rows/s the writer thread commits
// into a temp-file SQLite (batched vs one transaction per row), and the shard-side cost
// of try_reserve + push into the SPSC queue and of notify(). With RW_BENCH_PG_URL set
// (postgres://..., an empty database) the writer benchmark commits into PostgreSQL instead;
// its rows_per_cpu_s then counts the writer thread only, not the server: compare the
// items_per_second of the two runs, taken one after the other on the same machine.
// Goals (issue "Storage"): >= 200k rows/s on one writer thread, push < 50 ns.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>

#include "storage/log_queue.h"
#include "storage/writer.h"

namespace rw {
namespace {

// Rows are stamped from the bench's start: rows older than RINGWAY_LOG_RETENTION_DAYS
// (the fixed 2023 stamps used before) were pruned by retention as fast as they were written.
const int64_t bench_start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();

UsageRecord bench_record(uint64_t sequence) {
    UsageRecord record{};
    record.ts_ms = bench_start_ms + int64_t(sequence / 1000);
    record.key_id = int64_t(sequence % 64);  // 64 active keys.
    record.channel_id = 3;
    record.prompt_tokens = 300;
    record.completion_tokens = 200;
    record.total_tokens = 500;
    record.status = 200;
    record.attempts = 1;
    record.latency_us = 250000;
    record.ttfb_us = 80000;
    record.bytes_in = 1200;
    record.bytes_out = 5400;
    record.usage_source = UsageSource::reported;
    record.end_reason = EndReason::complete;
    record_set_text(record.model_requested, "gpt-4o-mini");
    record_set_text(record.model_sent, "gpt-4o-mini-2024-07-18");
    record_set_text(record.endpoint, "/v1/chat/completions");
    // Unique per row and shaped like the gateway's (rw-SHARD-MS-SEQUENCE, hex), so the
    // request_id index sees what it sees in production, not one repeated key.
    char request_id[48];
    std::snprintf(request_id, sizeof(request_id), "rw-0-%llx-%llx",
                  (unsigned long long)record.ts_ms, (unsigned long long)(sequence + 1));
    record_set_text(record.request_id, request_id);
    return record;
}

std::string bench_temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "rw-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
        std::abort();
    return pattern;
}

// CPU seconds a thread has used so far (its own clock: not inflated by other processes on
// a shared machine, unlike wall time).
double thread_cpu_s(std::thread& thread) {
    clockid_t clock;
    timespec now{};
    if (pthread_getcpuclockid(thread.native_handle(), &clock) != 0 ||
        clock_gettime(clock, &now) != 0)
        return 0;
    return double(now.tv_sec) + double(now.tv_nsec) * 1e-9;
}

double own_cpu_s() {
    timespec now{};
    (void)clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return double(now.tv_sec) + double(now.tv_nsec) * 1e-9;
}

// Keys 1..63; key 0 is the probes' system key every database has (migration 11).
bool bench_insert_keys(Db& db, void*, std::string&) {
    if (db.is_postgres()) {
        // With RW_BENCH_PG_LEASES=1 every key holds a budget lease of host "bench", so the
        // writer's per-key lease UPDATE (storage/budget_lease.h) matches a row.
        const char* leases = std::getenv("RW_BENCH_PG_LEASES");
        return db.exec(
                   "INSERT INTO keys (id, name, key_hash, key_prefix, created_at)"
                   " SELECT i, 'bench', decode(md5(i::text) || md5(i::text), 'hex'),"
                   " 'sk-rw-bnch', 1 FROM generate_series(0, 63) AS i ON CONFLICT DO NOTHING") &&
               (leases == nullptr || std::string_view(leases) != "1" ||
                db.exec("INSERT INTO budget_leases (key_id, host, period_index, first_day,"
                        " end_day, granted_nano, expires_at_ms) SELECT i, 'bench', 0,"
                        " '0000-00-00', '9999-99-99', 1000000000000000, 9000000000000000 FROM"
                        " generate_series(0, 63) AS i ON CONFLICT DO NOTHING"));
    }
    return db.exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 63)"
        " INSERT INTO keys (id, name, key_hash, key_prefix, created_at)"
        " SELECT i, 'bench', randomblob(32), 'sk-rw-bnch', 1 FROM n");
}

// Arg 0: rows per transaction (RINGWAY_LOG_BATCH). One shard feeds the writer as fast
// as reservations allow; each iteration commits rows_per_iteration rows end to end.
void BM_WriterRowsPerSecond(benchmark::State& state) {
    const std::string dir = bench_temp_dir();
    StorageConfig config;
    config.db_path = dir + "/bench.db";
    if (const char* pg = std::getenv("RW_BENCH_PG_URL"); pg != nullptr && pg[0] != '\0') {
        config.db_path = pg;
        config.local_path = dir + "/local";
        if (const char* leases = std::getenv("RW_BENCH_PG_LEASES");
            leases != nullptr && std::string_view(leases) == "1") {
            config.lease_host = "bench";
        }
    }
    config.log_batch_rows = uint32_t(state.range(0));
    config.log_flush_ms = 50;
    config.queue_slots = 65536;
    // RW_BENCH_PAGE_BYTES: the new database's page size (storage/config.h: 16384).
    if (const char* page = std::getenv("RW_BENCH_PAGE_BYTES"); page != nullptr) {
        config.page_bytes = std::atoll(page);
    }
    // RW_BENCH_WAL_INLINE=1: every checkpoint on the writer's thread at SQLite's own
    // auto-checkpoint point (what the writer did before storage/wal_checkpointer.h).
    if (const char* wal_inline = std::getenv("RW_BENCH_WAL_INLINE");
        wal_inline != nullptr && std::string_view(wal_inline) == "1") {
        config.wal_checkpoint_bytes = 1000 * uint64_t(config.page_bytes);
        config.wal_bytes_max = config.wal_checkpoint_bytes;
    }
    Writer writer;
    std::string error;
    if (!writer.open(config, 1, error)) {
        state.SkipWithError(error.c_str());
        return;
    }
    std::thread writer_thread([&writer] { writer.run(); });
    if (!writer.execute(bench_insert_keys, nullptr, error))
        state.SkipWithError(error.c_str());
    const uint64_t rows_per_iteration = state.range(0) == 1 ? 5000 : 100000;
    LogQueue& queue = writer.queue(0);
    uint64_t sequence = 0;
    const uint64_t rows_before = writer.rows_written();
    const double cpu_before_s = thread_cpu_s(writer_thread);
    const double producer_before_s = own_cpu_s();
    for (auto _ : state) {
        const uint64_t target = writer.rows_written() + rows_per_iteration;
        for (uint64_t i = 0; i < rows_per_iteration; i++) {
            while (!queue.try_reserve()) {  // A shard would answer 503; here: back off.
                writer.notify(0);
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
            queue.push(bench_record(sequence++));
            if ((i & 63) == 0)
                writer.notify(0);  // Once per simulated loop turn.
        }
        writer.notify(0);
        while (writer.rows_written() < target) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
    state.SetItemsProcessed(int64_t(state.iterations() * rows_per_iteration));
    // Rows per second of the writer thread's own CPU time: what one writer commits when it
    // has a core to itself, measured so that other load on the machine does not count.
    const double cpu_s = thread_cpu_s(writer_thread) - cpu_before_s;
    const WriterStats stats = writer.stats();
    // The bench's own producer (this thread: records built and pushed, waits).
    state.counters["producer_cpu_us_per_row"] =
        (own_cpu_s() - producer_before_s) * 1e6 /
        double(std::max<uint64_t>(1, writer.rows_written() - rows_before));
    // The checkpoint thread's CPU (storage/wal_checkpointer.h) per row: work that was the
    // writer thread's own before it had one. Over the whole run, setup included.
    state.counters["ckpt_cpu_us_per_row"] =
        double(stats.wal.thread_cpu_us) /
        double(std::max<uint64_t>(1, writer.rows_written() - rows_before));
    state.counters["rows_per_cpu_s"] =
        double(writer.rows_written() - rows_before) / std::max(cpu_s, 1e-9);
    state.counters["cpu_us_per_row"] =
        cpu_s * 1e6 / double(std::max<uint64_t>(1, writer.rows_written() - rows_before));
    state.counters["batch_us_last"] = double(stats.last_batch_latency_us);
    state.counters["batch_us_max"] = double(stats.batch_latency_us_max);
    state.counters["commit_errors"] = double(stats.commit_errors);
    state.counters["wal_pages_max"] = double(stats.wal.wal_pages_max);
    state.counters["ckpt_thread"] = double(stats.wal.background);
    state.counters["ckpt_inline"] = double(stats.wal.inline_);
    // Rows per second of transaction time alone (BEGIN..COMMIT), i.e. what one writer
    // thread sustains when it is never starved of CPU or records.
    state.counters["rows_per_commit_s"] =
        double(stats.rows_written) * 1e6 /
        double(std::max<uint64_t>(1, stats.batch_latency_us_total));
    writer.request_stop();
    writer_thread.join();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}
BENCHMARK(BM_WriterRowsPerSecond)
    ->Arg(1)
    ->Arg(64)
    ->Arg(512)
    ->Arg(2048)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The shard-side cost per request: try_reserve() + push(). The queue is drained outside
// the timed region whenever it fills, so every timed iteration is a successful reserve
// + push of a 360-byte record (the ring is 23 MiB: the copy goes to memory, not L1).
void BM_QueueReservePushUncontended(benchmark::State& state) {
    LogQueue queue(65536);
    static UsageRecord sink[4096];
    const UsageRecord record = bench_record(1);
    for (auto _ : state) {
        if (!queue.try_reserve()) [[unlikely]] {
            state.PauseTiming();
            while (queue.drain(sink, 4096) > 0) {
            }
            state.ResumeTiming();
            if (!queue.try_reserve())
                std::abort();
        }
        queue.push(record);
    }
}
BENCHMARK(BM_QueueReservePushUncontended);

// notify() while the writer is busy (not sleeping): a fence and a load, no syscall.
void BM_NotifyWriterAwake(benchmark::State& state) {
    const std::string dir = bench_temp_dir();
    StorageConfig config;
    config.db_path = dir + "/bench.db";
    Writer writer;
    std::string error;
    if (!writer.open(config, 1, error)) {
        state.SkipWithError(error.c_str());
        return;
    }
    for (auto _ : state)
        writer.notify(0);  // run() not started: sleep_ stays awake.
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}
BENCHMARK(BM_NotifyWriterAwake);

}  // namespace
}  // namespace rw

BENCHMARK_MAIN();
