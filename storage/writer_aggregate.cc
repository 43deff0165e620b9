// storage/writer_aggregate.cc — the part of a usage batch's transaction that is not the
// rows themselves: the batch summed per (key, day, model, channel) into daily_usage upserts,
// and each key's quota_used and spend_nano moved by its rows' totals, in the same
// transaction as the rows (storage/writer.cc opens and commits it).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "core/assert.h"
#include "storage/writer.h"

namespace rw {

namespace {

int32_t day_from_ts_ms(int64_t ts_ms) {
    // Floor division so timestamps before 1970 still land on the right day.
    const int64_t ms_per_day = 86400000;
    int64_t day = ts_ms / ms_per_day;
    if (ts_ms % ms_per_day < 0) {
        day -= 1;
    }
    return static_cast<int32_t>(day);
}

// 'YYYY-MM-DD' for days since the epoch (Howard Hinnant's civil_from_days), without
// gmtime_r's locale/timezone work per row. target must hold 11 bytes.
void day_format(int32_t day_index, char* target) {
    int64_t z = int64_t(day_index) + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    const int64_t d = doy - (153 * mp + 2) / 5 + 1;
    const int64_t m = mp < 10 ? mp + 3 : mp - 9;
    const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
    const int64_t year = y < 0 ? 0 : y % 10000;  // Four digits; usage is never that old.
    target[0] = char('0' + year / 1000);
    target[1] = char('0' + year / 100 % 10);
    target[2] = char('0' + year / 10 % 10);
    target[3] = char('0' + year % 10);
    target[4] = '-';
    target[5] = char('0' + m / 10);
    target[6] = char('0' + m % 10);
    target[7] = '-';
    target[8] = char('0' + d / 10);
    target[9] = char('0' + d % 10);
    target[10] = '\0';
}

constexpr uint32_t no_group = UINT32_MAX;

uint64_t mix64(
    uint64_t x) {  // The MurmurHash3 finalizer: every input bit reaches every output bit.
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint64_t group_hash(const UsageRecord& record, int32_t day) {
    uint64_t model = 1469598103934665603ULL;  // FNV-1a over the NUL-terminated model.
    for (const char* c = record.model_requested; *c != '\0'; c++) {
        model = (model ^ uint8_t(*c)) * 1099511628211ULL;
    }
    return mix64(uint64_t(record.key_id) ^
                 mix64((uint64_t(record.channel_id) << 32) ^ uint32_t(day) ^ mix64(model)));
}

}  // namespace

// Sums the batch per (key, day, model, channel) so a batch costs one upsert per group and
// one quota update per key instead of one of each per row; same transaction, same totals.
// Rows find their group in an open-addressing table of group indexes (linear probing, at
// most half full), then only the groups are sorted (key, day, channel, model): the
// statements run in the same order as when the rows themselves were sorted, and
// commit_batch_aggregates() finds each key's groups next to each other. Sorting the rows
// cost about a tenth of the writer's CPU per row (bench/micro/writer_bench under callgrind).
void Writer::commit_batch_aggregate() {
    uint32_t slot_count = 16;
    while (slot_count < 2 * batch_count_) {
        slot_count *= 2;
    }
    RW_ASSERT(slot_count <= group_slots_.size());
    uint32_t* const slots = group_slots_.data();
    std::fill_n(slots, slot_count, no_group);
    uint32_t count = 0;
    for (uint32_t index = 0; index < batch_count_; index++) {
        const UsageRecord& record = batch_[index];
        const int32_t day = day_from_ts_ms(record.ts_ms);
        uint32_t slot = uint32_t(group_hash(record, day)) & (slot_count - 1);
        for (;;) {
            const uint32_t group = slots[slot];
            if (group == no_group) {
                slots[slot] = count;
                Aggregate& row = aggregates_[count];
                count += 1;
                row = Aggregate{};
                row.key_id = record.key_id;
                row.channel_id = record.channel_id;
                row.model = record.model_requested;
                row.day = day;
                aggregate_add(row, record);
                break;
            }
            Aggregate& sum = aggregates_[group];
            if (sum.key_id == record.key_id && sum.day == day &&
                sum.channel_id == record.channel_id &&
                std::strcmp(sum.model, record.model_requested) == 0) {  // NUL-terminated.
                aggregate_add(sum, record);
                break;
            }
            slot = (slot + 1) & (slot_count - 1);
        }
    }
    std::sort(aggregates_.get(), aggregates_.get() + count,
              [](const Aggregate& a, const Aggregate& b) {
                  if (a.key_id != b.key_id) {
                      return a.key_id < b.key_id;
                  }
                  if (a.day != b.day) {
                      return a.day < b.day;
                  }
                  if (a.channel_id != b.channel_id) {
                      return a.channel_id < b.channel_id;
                  }
                  return std::strcmp(a.model, b.model) < 0;
              });
    aggregate_count_ = count;
    RW_ASSERT(aggregate_count_ >= 1);
    RW_ASSERT(aggregate_count_ <= batch_count_);
}

void Writer::aggregate_add(Aggregate& sum, const UsageRecord& record) {
    sum.requests += 1;
    sum.unpriced_requests += record.price_id == 0 ? 1 : 0;
    sum.prompt_tokens += record.prompt_tokens;
    sum.completion_tokens += record.completion_tokens;
    sum.total_tokens += record.total_tokens;
    sum.cached_input_tokens += record.cached_input_tokens;
    sum.cache_write_tokens += record.cache_write_tokens;
    sum.reasoning_tokens += record.reasoning_tokens;
    sum.cost_nano += record.cost_nano;
}

// The batch's daily sums and the keys' quota_used and spend_nano, inside the open
// transaction (write_batch_rows' caller commits it).
bool Writer::commit_batch_aggregates() {
    uint64_t key_total_tokens = 0;
    int64_t key_cost_nano = 0;
    uint32_t key_first = 0;
    for (uint32_t index = 0; index < aggregate_count_; index++) {
        const Aggregate& sum = aggregates_[index];
        char day[11];
        day_format(sum.day, day);
        upsert_daily_.bind_int64(1, sum.key_id);
        upsert_daily_.bind_text(2, std::string_view(day, 10));
        upsert_daily_.bind_int64(3, sum.requests);
        upsert_daily_.bind_int64(4, to_sql_int(sum.prompt_tokens));
        upsert_daily_.bind_int64(5, to_sql_int(sum.completion_tokens));
        upsert_daily_.bind_int64(6, to_sql_int(sum.total_tokens));
        upsert_daily_.bind_int64(7, to_sql_int(sum.cached_input_tokens));
        upsert_daily_.bind_int64(8, to_sql_int(sum.cache_write_tokens));
        upsert_daily_.bind_int64(9, to_sql_int(sum.reasoning_tokens));
        upsert_daily_.bind_int64(10, sum.cost_nano);
        upsert_daily_.bind_int64(11, sum.unpriced_requests);
        upsert_daily_.bind_text(
            12, std::string_view(sum.model, strnlen(sum.model, record_model_bytes_max)));
        upsert_daily_.bind_int64(13, sum.channel_id);
        if (!db_.step_done(upsert_daily_)) {
            return false;
        }
        key_total_tokens += sum.total_tokens;
        key_cost_nano += sum.cost_nano;
        const bool is_key_end =
            index + 1 == aggregate_count_ || aggregates_[index + 1].key_id != sum.key_id;
        if (is_key_end) {
            // A key_id without a keys row (0, or a key deleted by hand) updates nothing:
            // the invariant is stated per existing key.
            add_quota_used_.bind_int64(1, sum.key_id);
            add_quota_used_.bind_int64(2, to_sql_int(key_total_tokens));
            add_quota_used_.bind_int64(3, key_cost_nano);
            if (!db_.step_done(add_quota_used_) ||
                (add_lease_committed_.is_prepared() && !commit_lease_committed(key_first, index))) {
                return false;
            }
            key_first = index + 1;
            key_total_tokens = 0;
            key_cost_nano = 0;
        }
    }
    return true;
}

// One key's groups [first, last] (sorted by day): each day's tokens and cost moved into
// this host's lease of the period holding that day, if it has one.
bool Writer::commit_lease_committed(uint32_t first, uint32_t last) {
    uint64_t day_tokens = 0;
    int64_t day_nano = 0;
    for (uint32_t index = first; index <= last; index++) {
        const Aggregate& sum = aggregates_[index];
        day_tokens += sum.total_tokens;
        day_nano += sum.cost_nano;
        if (index < last && aggregates_[index + 1].day == sum.day) {
            continue;
        }
        char day[11];
        day_format(sum.day, day);
        add_lease_committed_.bind_int64(1, sum.key_id);
        add_lease_committed_.bind_text(2, config_.lease_host);
        add_lease_committed_.bind_text(3, std::string_view(day, 10));
        add_lease_committed_.bind_int64(4, to_sql_int(day_tokens));
        add_lease_committed_.bind_int64(5, day_nano);
        if (!db_.step_done(add_lease_committed_)) {
            return false;
        }
        day_tokens = 0;
        day_nano = 0;
    }
    return true;
}

}  // namespace rw
