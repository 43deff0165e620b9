// tests/fuzz/sse_scan_fuzz.cc — fuzz target for proxy/sse_scan (the SSE usage scanner).
// The first input byte picks the API format (low two bits) and how the rest is cut into
// pieces (pseudo-random lengths seeded by it, or byte by byte when bit 7 is set); the rest
// is the upstream body. Each input runs whole and cut: the scanner must not depend on piece
// boundaries, and its results must be consistent, besides its own asserts. Built as a
// libFuzzer binary under clang and as a corpus replay test (corpus_runner.cc) everywhere.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/sse_scan.h"

namespace rw {
namespace {

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

struct Outcome {
    UsageCounts usage;
    bool is_done;
    bool had_error;
    uint32_t events_count;
    uint32_t events_parsed_count;
    uint32_t events_skipped_count;
};

Outcome run(std::string_view stream, UsageFormat format, const std::vector<size_t>& ends) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 32 << 20);
    SseUsageScanner scanner;
    scanner.start(format, arena);
    size_t start = 0;
    std::string buffer;
    for (const size_t end : ends) {
        buffer.assign(stream.substr(start, end - start));
        scanner.feed(buffer);
        std::memset(buffer.data(), 0xAA, buffer.size());  // Views kept into it would show.
        start = end;
    }
    const Outcome outcome{scanner.usage(),
                          scanner.is_done(),
                          scanner.had_error_event(),
                          scanner.events_count(),
                          scanner.events_parsed_count(),
                          scanner.events_skipped_count()};
    arena.release();
    const UsageCounts& usage = outcome.usage;
    if (!usage.has_usage) {
        check(usage.prompt_tokens == 0 && usage.completion_tokens == 0 && usage.total_tokens == 0);
    }
    check(outcome.events_parsed_count <= outcome.events_count);
    check(outcome.events_skipped_count <= outcome.events_count);
    return outcome;
}

bool same(const Outcome& a, const Outcome& b) {
    return a.usage.has_usage == b.usage.has_usage &&
           a.usage.prompt_tokens == b.usage.prompt_tokens &&
           a.usage.completion_tokens == b.usage.completion_tokens &&
           a.usage.total_tokens == b.usage.total_tokens && a.is_done == b.is_done &&
           a.had_error == b.had_error && a.events_count == b.events_count &&
           a.events_parsed_count == b.events_parsed_count &&
           a.events_skipped_count == b.events_skipped_count;
}

}  // namespace
}  // namespace rw

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const uint8_t seed = data[0];
    constexpr rw::UsageFormat formats[] = {rw::UsageFormat::chat, rw::UsageFormat::responses,
                                           rw::UsageFormat::embeddings,
                                           rw::UsageFormat::anthropic_messages};
    const rw::UsageFormat format = formats[seed & 3];
    const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
    const rw::Outcome whole = rw::run(stream, format, {stream.size()});
    std::vector<size_t> ends;
    uint32_t state = 0x9E3779B9u ^ seed;  // xorshift32: piece lengths 1..32.
    for (size_t end = 0; end < stream.size();) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        end += (seed & 0x80) != 0 ? 1 : 1 + (state & 31);
        ends.push_back(end < stream.size() ? end : stream.size());
    }
    if (ends.empty()) {
        ends.push_back(0);
    }
    const rw::Outcome split = rw::run(stream, format, ends);
    // Inputs stay far below sse_event_bytes_max, so no event is ever oversize and the two
    // runs must agree on everything, counters included.
    rw::check(rw::same(whole, split));
    return 0;
}
