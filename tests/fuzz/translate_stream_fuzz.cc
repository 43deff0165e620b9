// tests/fuzz/translate_stream_fuzz.cc — fuzz target for proxy/translate_stream (the
// Chat ⇄ Messages and Chat → Responses stream translators). The first input byte picks the
// direction (bit 0: Anthropic events to Chat chunks; else Chat chunks to Responses events
// when bit 2 is set, to Anthropic events when not), whether the client asked for the
// usage chunk (bit 1) and how the rest is cut into pieces (byte by byte when bit 7 is set,
// else pseudo-random lengths seeded by it); the rest is the upstream stream. Each input runs
// whole and cut: the client's bytes must not depend on piece boundaries, and every event the
// translator writes must be well-formed (each data: line JSON, or [DONE]; an event's data
// names its `event:` as its type; each event ends with a blank line). Built as a libFuzzer binary
// under clang and as a corpus replay test.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/translate.h"

namespace rw {
namespace {

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

struct Outcome {
    std::string out;
    bool is_ok;
};

Outcome run(std::string_view stream, Translation translation, bool include_usage,
            const std::vector<size_t>& ends) {
    ChunkPool pool(64, 64 << 20);
    Arena arena(&pool, 32 << 20);
    StreamTranslator* translator =
        stream_translator_create(arena, translation, include_usage, "fuzz-model", 1700000000);
    check(translator != nullptr);
    Outcome outcome{{}, true};
    size_t start = 0;
    std::string buffer;
    for (const size_t end : ends) {
        buffer.assign(stream.substr(start, end - start));
        outcome.is_ok =
            outcome.is_ok && stream_translate_feed(arena, *translator, buffer, outcome.out);
        buffer.assign(buffer.size(), '\xAA');  // A view kept into a piece would show.
        start = end;
    }
    if (outcome.is_ok) {
        stream_translate_finish(*translator, outcome.out);
    }
    arena.release();
    return outcome;
}

// Every event: "event: NAME\n" lines and "data: JSON\n" lines (of type NAME), closed by a
// blank line.
void check_well_formed(std::string_view out) {
    simdjson::dom::parser parser;
    check(out.empty() || out.ends_with("\n\n"));
    std::string_view event_name;
    while (!out.empty()) {
        const size_t end = out.find('\n');
        check(end != std::string_view::npos);
        const std::string_view line = out.substr(0, end);
        out.remove_prefix(end + 1);
        if (line.empty()) {
            event_name = {};
            continue;
        }
        if (line.starts_with("event: ")) {
            event_name = line.substr(7);
            continue;
        }
        check(line.starts_with("data: "));
        const std::string_view data = line.substr(6);
        if (data == "[DONE]") {
            continue;
        }
        const simdjson::padded_string padded(data);
        simdjson::dom::element element;
        check(parser.parse(padded).get(element) == simdjson::SUCCESS);
        check(element.is_object());
        std::string_view type;
        if (!event_name.empty()) {
            check(element["type"].get_string().get(type) == simdjson::SUCCESS);
            check(type == event_name);
        }
    }
}

}  // namespace
}  // namespace rw

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const uint8_t seed = data[0];
    const rw::Translation translation = (seed & 1) != 0   ? rw::Translation::chat_to_messages
                                        : (seed & 4) != 0 ? rw::Translation::responses_to_chat
                                                          : rw::Translation::messages_to_chat;
    const bool include_usage = (seed & 2) != 0;
    const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
    const rw::Outcome whole = rw::run(stream, translation, include_usage, {stream.size()});
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
    const rw::Outcome split = rw::run(stream, translation, include_usage, ends);
    // Inputs stay far below translate_line_bytes_max: both runs succeed and agree.
    rw::check(whole.is_ok && split.is_ok);
    rw::check(whole.out == split.out);
    rw::check_well_formed(whole.out);
    return 0;
}
