// tests/fuzz/http_parse_fuzz.cc — fuzz target for core/http_parse (the llhttp adapter).
// The first input byte chooses how the rest is cut into feeds; the rest is the client byte
// stream. Each input runs whole and cut, and the two runs must agree (the parser must not
// depend on recv boundaries), besides the parser's own asserts. Built as a libFuzzer binary
// under clang and as a corpus replay test (corpus_runner.cc) everywhere.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/http_parse.h"

namespace rw {
namespace {

constexpr ParserLimits fuzz_limits{
    .request_line_bytes_max = 256,
    .header_bytes_max = 1024,
    .header_count_max = 16,
    .body_bytes_max = 4096,
    .chunk_ext_bytes_max = 32,
};

struct Trace {
    std::string text;  // Every completed message's fields, then the error code.
    ParseError error = ParseError::none;
    bool is_error_after_head = false;  // The error came while reading a body or trailers.
};

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

void trace_message(Trace& trace, const ParsedRequest& request, uint64_t message_bytes) {
    std::string& text = trace.text;
    text += "method=" + std::to_string(static_cast<int>(request.method));
    text += " target=" + std::string(request.target) + " minor=";
    text += std::to_string(request.version_minor) + " host=" + std::string(request.host);
    for (uint32_t index = 0; index < request.header_count; index += 1) {
        text += " h=" + std::string(request.headers[index].name) + ":" +
                std::string(request.headers[index].value);
    }
    text += " cl=" + std::to_string(request.content_length) +
            " chunked=" + std::to_string(request.is_chunked) +
            " ka=" + std::to_string(request.keep_alive) + " body=" + std::string(request.body);
    text += " bytes=" + std::to_string(message_bytes) + "\n";
    check(request.body.size() <= fuzz_limits.body_bytes_max);
    for (uint32_t index = 0; index < body_padding_bytes; index += 1) {
        check(request.body.data()[request.body.size() + index] == '\0');
    }
    if (request.has_content_length) {
        check(request.body.size() == request.content_length);
    }
}

Trace run(std::string_view stream, const std::vector<size_t>& ends) {
    ChunkPool pool(64, 16 << 20);
    Arena arena(&pool, 4 << 20);
    RequestParser parser(fuzz_limits);
    parser.start(arena);
    Trace trace;
    bool has_head = false;
    uint64_t message_bytes = 0;
    size_t piece_start = 0;
    for (const size_t piece_end : ends) {
        std::string buffer(stream.substr(piece_start, piece_end - piece_start));
        piece_start = piece_end;
        std::string_view rest = buffer;
        for (;;) {
            const ParseResult result = parser.feed(rest);
            check(result.consumed_bytes <= rest.size());
            message_bytes += result.consumed_bytes;
            if (result.event == ParseEvent::need_more) {
                check(result.consumed_bytes == rest.size());
                break;
            }
            rest.remove_prefix(result.consumed_bytes);
            if (result.event == ParseEvent::head_complete) {
                check(!has_head);
                has_head = true;
                continue;
            }
            if (result.event == ParseEvent::message_complete) {
                check(has_head);
                trace_message(trace, parser.request(), message_bytes);
                arena.release();
                parser.start(arena);
                has_head = false;
                message_bytes = 0;
                continue;
            }
            check(result.event == ParseEvent::error);
            check(result.error != ParseError::none);
            trace.error = result.error;
            trace.is_error_after_head = has_head;
            trace.text += "error=" + std::string(parse_error_code(result.error)) + "\n";
            arena.release();
            return trace;
        }
        std::memset(buffer.data(), 0xAA, buffer.size());  // Views into it would show.
    }
    arena.release();
    return trace;
}

// Limits on extension and trailer bytes are counted per llhttp piece, so when such a
// limit and a syntax error fall inside the same span, which one is seen first depends
// on the cuts (documented in http_parse.cc). Only those may differ.
bool is_piece_counted(const Trace& trace) {
    return trace.is_error_after_head && (trace.error == ParseError::chunk_ext_too_long ||
                                         trace.error == ParseError::header_bytes_too_large ||
                                         trace.error == ParseError::too_many_headers);
}

}  // namespace
}  // namespace rw

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const uint8_t seed = data[0];
    const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
    const rw::Trace whole = rw::run(stream, {stream.size()});
    // Cuts every (seed % 13 + 1) bytes, or byte by byte when the seed's top bit is set.
    const size_t step = (seed & 0x80) != 0 ? 1 : size_t(seed % 13) + 1;
    std::vector<size_t> ends;
    for (size_t end = step; end < stream.size(); end += step) {
        ends.push_back(end);
    }
    ends.push_back(stream.size());
    const rw::Trace split = rw::run(stream, ends);
    if (rw::is_piece_counted(whole) || rw::is_piece_counted(split)) {
        rw::check((whole.error == rw::ParseError::none) == (split.error == rw::ParseError::none));
        return 0;
    }
    rw::check(whole.text == split.text);
    return 0;
}
