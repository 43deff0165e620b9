// storage/usage_rows.h — a usage_logs row's 27 columns in one place: their names in the
// INSERT's order, each one's value from a UsageRecord, and on SQLite an eponymous virtual
// table, rw_usage_rows, over a run of the writer's batch. The writer inserts a run with
// one `INSERT INTO usage_logs (...) SELECT ... FROM rw_usage_rows`: SQLite reads each value
// straight from the record (xColumn) instead of from a bound parameter, so no row pays 27
// sqlite3_bind_* calls and their Variable opcodes, and one small statement takes any
// number of rows (PostgreSQL keeps its multi-row INSERTs with parameters).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "storage/records.h"

namespace rw {

class Db;

// The columns, in the order usage_column_put numbers them (0-based). The last four are
// the optional ids: '' when the request had none.
constexpr std::string_view usage_log_column_names[] = {"ts_ms",
                                                       "key_id",
                                                       "channel_id",
                                                       "model_requested",
                                                       "model_sent",
                                                       "endpoint",
                                                       "status",
                                                       "prompt_tokens",
                                                       "completion_tokens",
                                                       "total_tokens",
                                                       "usage_source",
                                                       "end_reason",
                                                       "attempts",
                                                       "latency_us",
                                                       "ttfb_us",
                                                       "bytes_in",
                                                       "bytes_out",
                                                       "request_id",
                                                       "cached_input_tokens",
                                                       "cache_write_tokens",
                                                       "reasoning_tokens",
                                                       "cost_nano",
                                                       "price_id",
                                                       "client_request_id",
                                                       "traceparent",
                                                       "upstream_request_id",
                                                       "response_id"};
constexpr int usage_log_column_count = int(std::size(usage_log_column_names));
constexpr int usage_log_first_optional_column = 23;

// "ts_ms, key_id, ..." in that order.
[[nodiscard]] std::string usage_log_columns_sql();

// A uint64 counter as an SQL INTEGER: values stored are far below 2^63 (bytes,
// microseconds, tokens); clamped anyway so a corrupt record cannot become a negative column.
inline int64_t to_sql_int(uint64_t value) {
    return value > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(value);
}

// An id field as text; most are empty, and then no strnlen looks at the field.
template <size_t N>
[[nodiscard]] std::string_view optional_text(const char (&field)[N]) {
    return field[0] == '\0' ? std::string_view() : record_text(field);
}

// Column `column` of `record` handed to `sink`: sink.integer(int64_t), sink.text(view into
// the record), sink.named(code, name) (an enum stored as its name: usage_source_name,
// end_reason_name; the view lives as long as the program), sink.optional_text(view into
// the record, empty when the request had no such id) or sink.null() (an unpriced row's
// price_id).
template <class Sink>
void usage_column_put(const UsageRecord& record, int column, Sink& sink) {
    switch (column) {
        case 0: return sink.integer(record.ts_ms);
        case 1: return sink.integer(record.key_id);
        case 2: return sink.integer(record.channel_id);
        case 3: return sink.text(record_text(record.model_requested));
        case 4: return sink.text(record_text(record.model_sent));
        case 5: return sink.text(record_text(record.endpoint));
        case 6: return sink.integer(record.status);
        case 7: return sink.integer(record.prompt_tokens);
        case 8: return sink.integer(record.completion_tokens);
        case 9: return sink.integer(record.total_tokens);
        case 10:
            return sink.named(uint8_t(record.usage_source), usage_source_name(record.usage_source));
        case 11: return sink.named(uint8_t(record.end_reason), end_reason_name(record.end_reason));
        case 12: return sink.integer(record.attempts);
        case 13: return sink.integer(to_sql_int(record.latency_us));
        case 14: return sink.integer(to_sql_int(record.ttfb_us));
        case 15: return sink.integer(to_sql_int(record.bytes_in));
        case 16: return sink.integer(to_sql_int(record.bytes_out));
        case 17: return sink.text(record_text(record.request_id));
        case 18: return sink.integer(record.cached_input_tokens);
        case 19: return sink.integer(record.cache_write_tokens);
        case 20: return sink.integer(record.reasoning_tokens);
        case 21: return sink.integer(record.cost_nano);
        case 22: return record.price_id == 0 ? sink.null() : sink.integer(record.price_id);
        case 23: return sink.optional_text(optional_text(record.client_request_id));
        case 24: return sink.optional_text(optional_text(record.traceparent));
        case 25: return sink.optional_text(optional_text(record.upstream_request_id));
        case 26: return sink.optional_text(optional_text(record.response_id));
        default: return sink.null();
    }
}

// The rows rw_usage_rows shows: set by the writer before it steps the INSERT, read when
// the statement starts its scan (xFilter). Not owned; valid until the step returns.
struct UsageRows {
    const UsageRecord* rows = nullptr;
    uint32_t count = 0;
};

// SQLite: "INSERT INTO usage_logs (...) SELECT ... FROM rw_usage_rows", the rows
// usage_rows_register's `source` shows, in order.
[[nodiscard]] std::string usage_rows_insert_sql();

// SQLite only: registers rw_usage_rows on `db`'s connection, reading `source` (which must
// outlive the connection). False with `error` set when SQLite refuses the module.
[[nodiscard]] bool usage_rows_register(Db& db, UsageRows* source, std::string& error);

}  // namespace rw
