// tests/unit/core/http_parse_test.cc — RequestParser against a table of valid and refused
// requests. Every case is fed whole, split in two at every offset, and one byte at a time;
// the outcomes (parsed fields, consumed byte counts, error) must be identical, because
// the connection code sees arbitrary recv boundaries. Input buffers are scribbled over
// after each feed, as the kernel would reuse them, so a view into them shows up as a diff.
#include "core/http_parse.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/llhttp_simd.h"

namespace rw {
namespace {

constexpr ParserLimits test_limits{
    .request_line_bytes_max = 64,
    .header_bytes_max = 256,
    .header_count_max = 8,
    .body_bytes_max = 1000,
    .chunk_ext_bytes_max = 16,
};

// A completed message, copied out of the arena before it is released.
struct MessageCopy {
    Method method = Method::other;
    std::string method_text;
    std::string target;
    std::string path;
    std::string query;
    uint8_t version_minor = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string host;
    bool has_content_length = false;
    uint64_t content_length = 0;
    bool is_chunked = false;
    bool keep_alive = false;
    bool expects_continue = false;
    std::string body;
    bool is_padded = false;      // body_padding_bytes zeros follow the body.
    uint64_t head_bytes = 0;     // Sum of consumed_bytes up to head_complete.
    uint64_t message_bytes = 0;  // Sum of consumed_bytes up to message_complete.

    bool operator==(const MessageCopy&) const = default;
};

struct Outcome {
    std::vector<MessageCopy> messages;
    ParseError error = ParseError::none;
    uint64_t error_offset = 0;   // Stream offset reported by the error (not compared).
    bool is_in_message = false;  // in_message() at the end of the stream.

    bool operator==(const Outcome& other) const {
        return messages == other.messages && error == other.error &&
               is_in_message == other.is_in_message;
    }
};

MessageCopy copy_message(const ParsedRequest& request) {
    MessageCopy copy;
    copy.method = request.method;
    copy.method_text = std::string(request.method_text);
    copy.target = std::string(request.target);
    copy.path = std::string(request.path);
    copy.query = std::string(request.query);
    copy.version_minor = request.version_minor;
    for (uint32_t index = 0; index < request.header_count; index += 1) {
        copy.headers.emplace_back(std::string(request.headers[index].name),
                                  std::string(request.headers[index].value));
    }
    copy.host = std::string(request.host);
    copy.has_content_length = request.has_content_length;
    copy.content_length = request.content_length;
    copy.is_chunked = request.is_chunked;
    copy.keep_alive = request.keep_alive;
    copy.expects_continue = request.expects_continue;
    copy.body = std::string(request.body);
    copy.is_padded = request.body.data() != nullptr;
    for (uint32_t index = 0; copy.is_padded && index < body_padding_bytes; index += 1) {
        copy.is_padded = request.body.data()[request.body.size() + index] == '\0';
    }
    return copy;
}

// Feeds stream cut at cuts (ascending offsets) the way conn.cc will: loop on feed() over
// each received piece, start() again after every message_complete.
Outcome run(std::string_view stream, const std::vector<size_t>& cuts,
            const ParserLimits& limits = test_limits, uint64_t arena_bytes_max = 1 << 20) {
    ChunkPool pool(64, 8 << 20);
    Arena arena(&pool, arena_bytes_max);
    RequestParser parser(limits);
    parser.start(arena);
    Outcome outcome;
    uint64_t stream_offset = 0;
    uint64_t message_start = 0;
    uint64_t head_bytes = 0;
    bool has_head = false;
    std::vector<size_t> ends = cuts;
    ends.push_back(stream.size());
    size_t piece_start = 0;
    for (const size_t piece_end : ends) {
        std::string buffer(stream.substr(piece_start, piece_end - piece_start));
        piece_start = piece_end;
        std::string_view rest = buffer;
        for (;;) {
            const ParseResult result = parser.feed(rest);
            EXPECT_LE(result.consumed_bytes, rest.size());
            if (result.event == ParseEvent::need_more) {
                EXPECT_EQ(result.consumed_bytes, rest.size());
                stream_offset += rest.size();
                break;
            }
            stream_offset += result.consumed_bytes;
            rest.remove_prefix(result.consumed_bytes);
            if (result.event == ParseEvent::head_complete) {
                EXPECT_FALSE(has_head);
                EXPECT_TRUE(parser.in_message());
                has_head = true;
                head_bytes = stream_offset - message_start;
                continue;
            }
            if (result.event == ParseEvent::message_complete) {
                EXPECT_TRUE(has_head);
                EXPECT_FALSE(parser.in_message());
                MessageCopy copy = copy_message(parser.request());
                copy.head_bytes = head_bytes;
                copy.message_bytes = stream_offset - message_start;
                outcome.messages.push_back(std::move(copy));
                arena.release();
                parser.start(arena);
                EXPECT_FALSE(parser.in_message());
                message_start = stream_offset;
                has_head = false;
                continue;
            }
            EXPECT_EQ(result.event, ParseEvent::error);
            EXPECT_NE(result.error, ParseError::none);
            outcome.error = result.error;
            outcome.error_offset = stream_offset;
            arena.release();
            return outcome;
        }
        std::memset(buffer.data(), 0xAA, buffer.size());  // The kernel reuses the buffer.
    }
    outcome.is_in_message = parser.in_message();
    arena.release();
    return outcome;
}

struct Case {
    std::string name;
    std::string stream;
    ParseError error;               // Expected at the end (none: all complete).
    size_t message_count;           // Messages completed before the end or the error.
    void (*check)(const Outcome&);  // Field values of the whole-stream outcome.
    ParserLimits limits = test_limits;
};

void no_check(const Outcome&) {}

std::string repeat(char c, size_t count) {
    return std::string(count, c);
}

// A valid HTTP/1.1 head with Host and the given extra header lines.
std::string head(std::string_view request_line, std::string_view extra = "") {
    return std::string(request_line) + "\r\nHost: h\r\n" + std::string(extra) + "\r\n";
}

// A header name and value longer than 16 bytes, with every byte class llhttp takes 16 at a
// time in its SSE4.2 build (core/llhttp_simd.h).
std::string long_name() {
    return "X-" + repeat('a', 20) + "!#$%&'*+-.^_`|~09AZaz";
}

std::string long_value() {
    return repeat('v', 17) + "\t !\"~(){}" + repeat('w', 19) + "\x80\xff";
}

std::vector<Case> valid_cases() {
    std::vector<Case> cases;
    cases.push_back({"get_with_query",
                     "GET /v1/models?limit=2&x=y HTTP/1.1\r\nHost: gw.example\r\n"
                     "User-Agent: t/1\r\n\r\n",
                     ParseError::none, 1, [](const Outcome& outcome) {
                         const MessageCopy& message = outcome.messages.at(0);
                         EXPECT_EQ(message.method, Method::get);
                         EXPECT_EQ(message.method_text, "GET");
                         EXPECT_EQ(message.target, "/v1/models?limit=2&x=y");
                         EXPECT_EQ(message.path, "/v1/models");
                         EXPECT_EQ(message.query, "limit=2&x=y");
                         EXPECT_EQ(message.version_minor, 1);
                         ASSERT_EQ(message.headers.size(), 2u);
                         EXPECT_EQ(message.headers[0].first, "Host");
                         EXPECT_EQ(message.headers[0].second, "gw.example");
                         EXPECT_EQ(message.headers[1].first, "User-Agent");
                         EXPECT_EQ(message.headers[1].second, "t/1");
                         EXPECT_EQ(message.host, "gw.example");
                         EXPECT_FALSE(message.has_content_length);
                         EXPECT_FALSE(message.is_chunked);
                         EXPECT_TRUE(message.keep_alive);
                         EXPECT_FALSE(message.expects_continue);
                         EXPECT_EQ(message.body, "");
                         EXPECT_TRUE(message.is_padded);
                         EXPECT_EQ(message.head_bytes, 74u);
                         EXPECT_EQ(message.message_bytes, 74u);
                     }});
    cases.push_back({"long_header_name_and_value",
                     head("GET / HTTP/1.1", long_name() + ": " + long_value() + "\r\n"),
                     ParseError::none, 1, [](const Outcome& outcome) {
                         const MessageCopy& message = outcome.messages.at(0);
                         ASSERT_EQ(message.headers.size(), 2u);
                         EXPECT_EQ(message.headers[1].first, long_name());
                         EXPECT_EQ(message.headers[1].second, long_value());
                     }});
    cases.push_back({"post_content_length",
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\n"
                     "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n"
                     "{\"model\":\"x\"}",
                     ParseError::none, 1, [](const Outcome& outcome) {
                         const MessageCopy& message = outcome.messages.at(0);
                         EXPECT_EQ(message.method, Method::post);
                         EXPECT_EQ(message.path, "/v1/chat/completions");
                         EXPECT_EQ(message.query, "");
                         EXPECT_TRUE(message.has_content_length);
                         EXPECT_EQ(message.content_length, 13u);
                         EXPECT_EQ(message.body, "{\"model\":\"x\"}");
                         EXPECT_TRUE(message.is_padded);
                         EXPECT_EQ(message.message_bytes - message.head_bytes, 13u);
                         ASSERT_EQ(message.headers.size(), 3u);
                         EXPECT_EQ(message.headers[1].second, "application/json");
                     }});
    cases.push_back({"chunked_with_extensions_and_trailer",
                     head("POST /v1/x HTTP/1.1", "Transfer-Encoding: chunked\r\n") +
                         "5;ext=val\r\nhello\r\n6;flag\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
                     ParseError::none, 1, [](const Outcome& outcome) {
                         const MessageCopy& message = outcome.messages.at(0);
                         EXPECT_TRUE(message.is_chunked);
                         EXPECT_FALSE(message.has_content_length);
                         EXPECT_EQ(message.body, "hello world");
                         EXPECT_TRUE(message.is_padded);
                         EXPECT_TRUE(message.keep_alive);
                         ASSERT_EQ(message.headers.size(), 2u);  // The trailer is dropped.
                         EXPECT_EQ(message.headers[1].first, "Transfer-Encoding");
                     }});
    cases.push_back({"chunked_empty_body",
                     head("POST / HTTP/1.1", "transfer-encoding: Chunked\r\n") + "0\r\n\r\n",
                     ParseError::none, 1, [](const Outcome& outcome) {
                         EXPECT_TRUE(outcome.messages.at(0).is_chunked);
                         EXPECT_EQ(outcome.messages.at(0).body, "");
                         EXPECT_TRUE(outcome.messages.at(0).is_padded);
                     }});
    cases.push_back({"pipelined_three",
                     head("GET /a HTTP/1.1") + head("POST /b HTTP/1.1", "Content-Length: 3\r\n") +
                         "abc" + head("PUT /c?q HTTP/1.1", "Transfer-Encoding: chunked\r\n") +
                         "2\r\nxy\r\n0\r\n\r\n",
                     ParseError::none, 3, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).method, Method::get);
                         EXPECT_EQ(outcome.messages.at(0).target, "/a");
                         EXPECT_EQ(outcome.messages.at(0).body, "");
                         EXPECT_EQ(outcome.messages.at(0).message_bytes, 28u);
                         EXPECT_EQ(outcome.messages.at(1).method, Method::post);
                         EXPECT_EQ(outcome.messages.at(1).body, "abc");
                         EXPECT_EQ(outcome.messages.at(1).message_bytes, 48u + 3u);
                         EXPECT_EQ(outcome.messages.at(2).method, Method::put);
                         EXPECT_EQ(outcome.messages.at(2).query, "q");
                         EXPECT_EQ(outcome.messages.at(2).body, "xy");
                         EXPECT_FALSE(outcome.is_in_message);
                     }});
    cases.push_back({"pipelined_partial_second", head("GET /a HTTP/1.1") + "GET /b HT",
                     ParseError::none, 1, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).target, "/a");
                         EXPECT_TRUE(outcome.is_in_message);
                     }});
    cases.push_back({"http10_keep_alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                     ParseError::none, 1, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).version_minor, 0);
                         EXPECT_TRUE(outcome.messages.at(0).keep_alive);
                         EXPECT_EQ(outcome.messages.at(0).host, "");
                     }});
    cases.push_back(
        {"http10_close", "GET / HTTP/1.0\r\n\r\n", ParseError::none, 1, [](const Outcome& outcome) {
             EXPECT_EQ(outcome.messages.at(0).version_minor, 0);
             EXPECT_FALSE(outcome.messages.at(0).keep_alive);
         }});
    cases.push_back({"http11_connection_close", head("GET / HTTP/1.1", "Connection: close\r\n"),
                     ParseError::none, 1, [](const Outcome& outcome) {
                         EXPECT_FALSE(outcome.messages.at(0).keep_alive);
                     }});
    cases.push_back(
        {"expect_continue",
         head("POST / HTTP/1.1", "Expect: 100-Continue\r\nContent-Length: 2\r\n") + "hi",
         ParseError::none, 1, [](const Outcome& outcome) {
             EXPECT_TRUE(outcome.messages.at(0).expects_continue);
             EXPECT_EQ(outcome.messages.at(0).body, "hi");
         }});
    cases.push_back(
        {"expect_continue_ignored_on_http10", "GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
         ParseError::none, 1,
         [](const Outcome& outcome) { EXPECT_FALSE(outcome.messages.at(0).expects_continue); }});
    cases.push_back(
        {"leading_crlf_options_star_trimmed_values",
         "\r\nOPTIONS * HTTP/1.1\r\nhOsT:h2 \t\r\nX-A:   spaced  value \t\r\nX-E:\r\n\r\n",
         ParseError::none, 1, [](const Outcome& outcome) {
             const MessageCopy& message = outcome.messages.at(0);
             EXPECT_EQ(message.method, Method::options);
             EXPECT_EQ(message.target, "*");
             EXPECT_EQ(message.path, "*");
             EXPECT_EQ(message.host, "h2");
             ASSERT_EQ(message.headers.size(), 3u);
             EXPECT_EQ(message.headers[0].first, "hOsT");
             EXPECT_EQ(message.headers[1].second, "spaced  value");
             EXPECT_EQ(message.headers[2].second, "");
         }});
    cases.push_back({"methods",
                     head("DELETE /d HTTP/1.1") + head("PATCH /p HTTP/1.1") +
                         head("HEAD /h HTTP/1.1") + head("MKCOL /m HTTP/1.1"),
                     ParseError::none, 4, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).method, Method::delete_);
                         EXPECT_EQ(outcome.messages.at(1).method, Method::patch);
                         EXPECT_EQ(outcome.messages.at(2).method, Method::head);
                         EXPECT_EQ(outcome.messages.at(3).method, Method::other);
                         EXPECT_EQ(outcome.messages.at(3).method_text, "MKCOL");
                     }});
    cases.push_back({"valid_authorities_and_escapes",
                     "GET /a%41%2f?q=%7E HTTP/1.1\r\nHost: gw.example:8080\r\n\r\n"
                     "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                     "GET / HTTP/1.1\r\nHost: a%41-b_c~d\r\n\r\n"
                     "GET / HTTP/1.1\r\nHost: h:\r\n\r\n"
                     "GET / HTTP/1.1\r\nHost:\r\n\r\n",
                     ParseError::none, 6, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).path, "/a%41%2f");
                         EXPECT_EQ(outcome.messages.at(0).host, "gw.example:8080");
                         EXPECT_EQ(outcome.messages.at(1).host, "[::1]:80");
                         EXPECT_EQ(outcome.messages.at(5).host, "");
                     }});
    cases.push_back({"chunked_two_trailers",
                     head("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\n") +
                         "3\r\nabc\r\n0\r\nA: 1\r\nB: 2\r\n\r\n" + head("GET /next HTTP/1.1"),
                     ParseError::none, 2, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).body, "abc");
                         EXPECT_EQ(outcome.messages.at(1).path, "/next");
                     }});
    cases.push_back({"content_length_zero", head("POST / HTTP/1.1", "Content-Length: 0\r\n"),
                     ParseError::none, 1, [](const Outcome& outcome) {
                         EXPECT_TRUE(outcome.messages.at(0).has_content_length);
                         EXPECT_EQ(outcome.messages.at(0).content_length, 0u);
                         EXPECT_EQ(outcome.messages.at(0).body, "");
                         EXPECT_TRUE(outcome.messages.at(0).is_padded);
                     }});
    return cases;
}

void add_refusal(std::vector<Case>& cases, std::string name, std::string stream, ParseError error,
                 size_t message_count = 0) {
    cases.push_back({std::move(name), std::move(stream), error, message_count, no_check});
}

std::vector<Case> refused_cases() {
    std::vector<Case> cases;
    const std::string te = "Transfer-Encoding: chunked\r\n";
    const std::string chunked = head("POST / HTTP/1.1", te);
    add_refusal(cases, "obs_fold", head("GET / HTTP/1.1", "X: a\r\n b\r\n"), ParseError::obs_fold);
    add_refusal(cases, "obs_fold_tab", head("GET / HTTP/1.1", "X: a\r\n\tb\r\n"),
                ParseError::obs_fold);
    add_refusal(cases, "space_before_first_header", "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
                ParseError::obs_fold);
    add_refusal(cases, "bare_lf_request_line", "GET / HTTP/1.1\nHost: h\r\n\r\n",
                ParseError::bare_cr_or_lf);
    add_refusal(cases, "bare_lf_header", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
                ParseError::bare_cr_or_lf);
    add_refusal(cases, "bare_lf_head_end", "GET / HTTP/1.1\r\nHost: h\r\n\n",
                ParseError::bare_cr_or_lf);
    add_refusal(cases, "bare_cr_header", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
                ParseError::bare_cr_or_lf);
    add_refusal(cases, "bare_cr_request_line", "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n",
                ParseError::bare_cr_or_lf);
    add_refusal(cases, "bare_lf_leading", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
                ParseError::bare_cr_or_lf);
    add_refusal(cases, "missing_host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", ParseError::missing_host);
    add_refusal(cases, "duplicate_host", head("GET / HTTP/1.1", "host: h\r\n"),
                ParseError::duplicate_host);
    add_refusal(cases, "http09", "GET /\r\n\r\n", ParseError::bad_version);
    add_refusal(cases, "http09_explicit", "GET / HTTP/0.9\r\n\r\n", ParseError::bad_version);
    add_refusal(cases, "http20", head("GET / HTTP/2.0"), ParseError::bad_version);
    add_refusal(cases, "http12", head("GET / HTTP/1.2"), ParseError::bad_version);
    add_refusal(cases, "http30", head("GET / HTTP/3.0"), ParseError::bad_version);
    add_refusal(cases, "h2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ParseError::bad_version);
    add_refusal(cases, "version_syntax", head("GET / HTTP/1.x"), ParseError::bad_request);
    add_refusal(cases, "version_two_digits", head("GET / HTTP/11.1"), ParseError::bad_request);
    add_refusal(cases, "not_http", head("GET / HTTX/1.1"), ParseError::bad_request);
    add_refusal(cases, "upgrade_websocket",
                head("GET / HTTP/1.1", "Upgrade: websocket\r\nConnection: Upgrade\r\n"),
                ParseError::upgrade_refused);
    add_refusal(cases, "upgrade_h2c",
                head("GET / HTTP/1.1", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"),
                ParseError::upgrade_refused);
    add_refusal(cases, "connect", head("CONNECT a:443 HTTP/1.1"), ParseError::connect_refused);
    add_refusal(cases, "cl_then_te", head("POST / HTTP/1.1", "Content-Length: 3\r\n" + te) + "abc",
                ParseError::cl_and_te);
    add_refusal(cases, "te_then_cl", head("POST / HTTP/1.1", te + "Content-Length: 3\r\n") + "abc",
                ParseError::cl_and_te);
    add_refusal(cases, "duplicate_cl_equal",
                head("POST / HTTP/1.1", "Content-Length: 3\r\nContent-Length: 3\r\n") + "abc",
                ParseError::duplicate_content_length);
    add_refusal(cases, "cl_negative", head("POST / HTTP/1.1", "Content-Length: -1\r\n"),
                ParseError::bad_content_length);
    add_refusal(cases, "cl_two_numbers", head("POST / HTTP/1.1", "Content-Length: 1 2\r\n"),
                ParseError::bad_content_length);
    add_refusal(cases, "cl_overflow",
                head("POST / HTTP/1.1", "Content-Length: 99999999999999999999999\r\n"),
                ParseError::bad_content_length);
    add_refusal(cases, "te_gzip_chunked",
                head("POST / HTTP/1.1", "Transfer-Encoding: gzip, chunked\r\n"),
                ParseError::bad_transfer_encoding);
    add_refusal(cases, "te_chunked_chunked",
                head("POST / HTTP/1.1", "Transfer-Encoding: chunked, chunked\r\n"),
                ParseError::bad_transfer_encoding);
    add_refusal(cases, "te_chunked_gzip",
                head("POST / HTTP/1.1", "Transfer-Encoding: chunked, gzip\r\n"),
                ParseError::bad_transfer_encoding);
    add_refusal(cases, "te_twice", head("POST / HTTP/1.1", te + te),
                ParseError::bad_transfer_encoding);
    add_refusal(cases, "te_gzip", head("POST / HTTP/1.1", "Transfer-Encoding: gzip\r\n"),
                ParseError::bad_transfer_encoding);
    add_refusal(cases, "te_http10", "POST / HTTP/1.0\r\n" + te + "\r\n0\r\n\r\n",
                ParseError::bad_transfer_encoding);
    add_refusal(cases, "chunk_size_overflow", chunked + "fffffffffffffffff\r\n",
                ParseError::bad_chunk);
    add_refusal(cases, "chunk_size_negative", chunked + "-5\r\nhello\r\n0\r\n\r\n",
                ParseError::bad_chunk);
    add_refusal(cases, "chunk_size_leading_space", chunked + " 5\r\nhello\r\n0\r\n\r\n",
                ParseError::bad_chunk);
    add_refusal(cases, "chunk_size_trailing_space", chunked + "5 \r\nhello\r\n0\r\n\r\n",
                ParseError::bad_chunk);
    add_refusal(cases, "chunk_size_hex_prefix", chunked + "0x5\r\nhello\r\n0\r\n\r\n",
                ParseError::bad_chunk);
    add_refusal(cases, "chunk_data_overrun", chunked + "5\r\nhelloX\r\n0\r\n\r\n",
                ParseError::bad_chunk);
    add_refusal(cases, "chunk_size_bare_lf", chunked + "5\nhello\r\n0\r\n\r\n",
                ParseError::bad_chunk);
    add_refusal(cases, "absolute_form", head("GET http://a/b HTTP/1.1"), ParseError::bad_target);
    add_refusal(cases, "star_not_options", head("GET * HTTP/1.1"), ParseError::bad_target);
    add_refusal(cases, "bad_method", head("G@T / HTTP/1.1"), ParseError::bad_method);
    add_refusal(cases, "response_line", "HTTP/1.1 200 OK\r\n\r\n", ParseError::bad_method);
    add_refusal(cases, "space_in_header_name", head("GET / HTTP/1.1", "A B: c\r\n"),
                ParseError::invalid_header);
    add_refusal(cases, "header_without_colon", head("GET / HTTP/1.1", "NoColon\r\n"),
                ParseError::invalid_header);
    add_refusal(cases, "nul_in_header_value", head("GET / HTTP/1.1", std::string("X: a\0b\r\n", 8)),
                ParseError::invalid_header);
    // Past 16 bytes of a name or value: llhttp's SSE4.2 build reads those 16 at a time
    // (core/llhttp_simd.h), and must refuse what its baseline build refuses.
    add_refusal(cases, "nul_deep_in_long_header_value",
                head("GET / HTTP/1.1",
                     "X: " + repeat('v', 21) + std::string("\0", 1) + repeat('w', 18) + "\r\n"),
                ParseError::invalid_header);
    add_refusal(cases, "ctl_deep_in_long_header_value",
                head("GET / HTTP/1.1", "X: " + repeat('v', 33) + "\x01" + repeat('w', 9) + "\r\n"),
                ParseError::invalid_header);
    add_refusal(cases, "space_deep_in_long_header_name",
                head("GET / HTTP/1.1", "X-" + repeat('n', 19) + " " + repeat('m', 17) + ": c\r\n"),
                ParseError::invalid_header);
    // A bare LF is refused in the trailer section as in the head.
    add_refusal(cases, "trailer_end_bare_lf", chunked + "0\r\n\n", ParseError::bare_cr_or_lf);
    add_refusal(cases, "trailer_field_bare_lf", chunked + "1\r\na\r\n0\r\nX: y\n\r\n",
                ParseError::bare_cr_or_lf);
    add_refusal(cases, "trailer_end_after_field_bare_lf", chunked + "0\r\nX: y\r\n\n",
                ParseError::bare_cr_or_lf);
    add_refusal(cases, "trailer_bare_cr", chunked + "0\r\nX: a\rb\r\n\r\n",
                ParseError::bare_cr_or_lf);
    add_refusal(cases, "trailer_obs_fold", chunked + "0\r\nX: a\r\n b\r\n\r\n",
                ParseError::obs_fold);
    // Host must be uri-host[:port].
    const char* const bad_hosts[] = {"a b", "a/b",  "a\\b", "h\xc3\xa9", "a@b", "a:80x", "a?b",
                                     "a#b", "[::1", "[]",   "a%zz",      "a%4", "::1",   "a:b:80"};
    for (size_t index = 0; index < std::size(bad_hosts); index += 1) {
        add_refusal(cases, "bad_host_" + std::to_string(index),
                    "GET / HTTP/1.1\r\nHost: " + std::string(bad_hosts[index]) + "\r\n\r\n",
                    ParseError::bad_host);
    }
    // A fragment or a '%' not followed by two hex digits in the target.
    add_refusal(cases, "target_fragment", head("GET /v1/models#frag HTTP/1.1"),
                ParseError::bad_target);
    add_refusal(cases, "target_bare_percent_end", head("GET /a% HTTP/1.1"), ParseError::bad_target);
    add_refusal(cases, "target_percent_one_digit", head("GET /a%4 HTTP/1.1"),
                ParseError::bad_target);
    add_refusal(cases, "target_percent_not_hex", head("GET /a%zz?x HTTP/1.1"),
                ParseError::bad_target);
    add_refusal(cases, "target_percent_in_query", head("GET /a?q=%g1 HTTP/1.1"),
                ParseError::bad_target);
    // Refusals after complete messages: the earlier messages still come out.
    add_refusal(cases, "pipelined_then_refused", head("GET /a HTTP/1.1") + "GET / HTTP/1.1\r\n\r\n",
                ParseError::missing_host, 1);
    return cases;
}

// Limits exactly at the boundary pass; one byte or item over is refused.
std::vector<Case> limit_cases() {
    std::vector<Case> cases;
    // "GET " + target + " HTTP/1.1" is 13 + target bytes.
    const std::string target_at = "/" + repeat('a', 50);
    cases.push_back(
        {"request_line_at_limit", head("GET " + target_at + " HTTP/1.1"), ParseError::none, 1,
         [](const Outcome& outcome) { EXPECT_EQ(outcome.messages.at(0).target.size(), 51u); }});
    add_refusal(cases, "request_line_over_limit", head("GET " + target_at + "a HTTP/1.1"),
                ParseError::request_line_too_long);
    add_refusal(cases, "request_line_never_ends", "GET /" + repeat('a', 200),
                ParseError::request_line_too_long);
    // "Host: h\r\n" is 9 bytes, "X: " + value + "\r\n" is 5 + value bytes.
    cases.push_back({"header_bytes_at_limit",
                     "GET / HTTP/1.1\r\nHost: h\r\nX: " + repeat('v', 242) + "\r\n\r\n",
                     ParseError::none, 1, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).headers.at(1).second.size(), 242u);
                     }});
    add_refusal(cases, "header_bytes_over_limit",
                "GET / HTTP/1.1\r\nHost: h\r\nX: " + repeat('v', 243) + "\r\n\r\n",
                ParseError::header_bytes_too_large);
    add_refusal(cases, "header_bytes_never_end",
                "GET / HTTP/1.1\r\nHost: h\r\nX: " + repeat('v', 400),
                ParseError::header_bytes_too_large);
    std::string seven_more;
    for (int index = 0; index < 7; index += 1) {
        seven_more += "X-" + std::to_string(index) + ": v\r\n";
    }
    cases.push_back({"header_count_at_limit", head("GET / HTTP/1.1", seven_more), ParseError::none,
                     1, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).headers.size(), 8u);
                         EXPECT_EQ(outcome.messages.at(0).headers.at(7).first, "X-6");
                     }});
    add_refusal(cases, "header_count_over_limit", head("GET / HTTP/1.1", seven_more + "X-7: v\r\n"),
                ParseError::too_many_headers);
    cases.push_back({"body_content_length_at_limit",
                     head("POST / HTTP/1.1", "Content-Length: 1000\r\n") + repeat('b', 1000),
                     ParseError::none, 1, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).body, repeat('b', 1000));
                         EXPECT_TRUE(outcome.messages.at(0).is_padded);
                     }});
    add_refusal(cases, "body_content_length_over_limit",
                head("POST / HTTP/1.1", "Content-Length: 1001\r\n"), ParseError::body_too_large);
    const std::string te = "Transfer-Encoding: chunked\r\n";
    cases.push_back({"body_chunked_at_limit",
                     head("POST / HTTP/1.1", te) + "1f4\r\n" + repeat('c', 500) + "\r\n1F4\r\n" +
                         repeat('d', 500) + "\r\n0\r\n\r\n",
                     ParseError::none, 1, [](const Outcome& outcome) {
                         EXPECT_EQ(outcome.messages.at(0).body,
                                   repeat('c', 500) + repeat('d', 500));
                         EXPECT_TRUE(outcome.messages.at(0).is_padded);
                     }});
    add_refusal(cases, "body_chunked_over_limit",
                head("POST / HTTP/1.1", te) + "1f4\r\n" + repeat('c', 500) + "\r\n1f5\r\n" +
                    repeat('d', 501) + "\r\n0\r\n\r\n",
                ParseError::body_too_large);
    // Extension bytes: name + 1 + value + 1 per extension.
    cases.push_back(
        {"chunk_ext_at_limit",
         head("POST / HTTP/1.1", te) + "3;abcdefg=hijklmn\r\nabc\r\n0;abcdefg=hijklmn\r\n\r\n",
         ParseError::none, 1,
         [](const Outcome& outcome) { EXPECT_EQ(outcome.messages.at(0).body, "abc"); }});
    add_refusal(cases, "chunk_ext_over_limit",
                head("POST / HTTP/1.1", te) + "3;abcdefg=hijklmno\r\nabc\r\n0\r\n\r\n",
                ParseError::chunk_ext_too_long);
    add_refusal(cases, "chunk_ext_many_short",
                head("POST / HTTP/1.1", te) + "3;a;b;c;d;e;f;g;h;i\r\nabc\r\n0\r\n\r\n",
                ParseError::chunk_ext_too_long);
    std::string nine_trailers;
    for (int index = 0; index < 9; index += 1) {
        // Appended piecewise: GCC 12 -O3 raises a false -Wrestrict on "T" + to_string().
        nine_trailers += 'T';
        nine_trailers += static_cast<char>('0' + index);
        nine_trailers += ": v\r\n";
    }
    add_refusal(cases, "trailer_count_over_limit",
                head("POST / HTTP/1.1", te) + "0\r\n" + nine_trailers + "\r\n",
                ParseError::too_many_headers);
    add_refusal(cases, "trailer_bytes_over_limit",
                head("POST / HTTP/1.1", te) + "0\r\nT: " + repeat('t', 300) + "\r\n\r\n",
                ParseError::header_bytes_too_large);
    return cases;
}

std::vector<Case> all_cases() {
    std::vector<Case> cases = valid_cases();
    for (Case& refused : refused_cases()) {
        cases.push_back(std::move(refused));
    }
    for (Case& limit : limit_cases()) {
        cases.push_back(std::move(limit));
    }
    return cases;
}

class HttpParseCase : public testing::TestWithParam<Case> {};

TEST_P(HttpParseCase, SameOutcomeForEverySplit) {
    const Case& test_case = GetParam();
    const Outcome whole = run(test_case.stream, {}, test_case.limits);
    EXPECT_EQ(whole.error, test_case.error);
    EXPECT_EQ(whole.messages.size(), test_case.message_count);
    for (const MessageCopy& message : whole.messages) {
        EXPECT_TRUE(message.is_padded);
    }
    test_case.check(whole);
    for (size_t cut = 1; cut < test_case.stream.size(); cut += 1) {
        const Outcome split = run(test_case.stream, {cut}, test_case.limits);
        ASSERT_TRUE(split == whole) << "split at " << cut;
    }
    std::vector<size_t> every_byte;
    for (size_t cut = 1; cut < test_case.stream.size(); cut += 1) {
        every_byte.push_back(cut);
    }
    const Outcome bytewise = run(test_case.stream, every_byte, test_case.limits);
    ASSERT_TRUE(bytewise == whole) << "byte by byte";
}

INSTANTIATE_TEST_SUITE_P(Table, HttpParseCase, testing::ValuesIn(all_cases()),
                         [](const testing::TestParamInfo<Case>& param_info) {
                             return param_info.param.name;
                         });

TEST(HttpParseError, StatusCodeAndMessageForEveryError) {
    EXPECT_EQ(parse_error_status(ParseError::request_line_too_long), 414);
    EXPECT_EQ(parse_error_status(ParseError::header_bytes_too_large), 431);
    EXPECT_EQ(parse_error_status(ParseError::too_many_headers), 431);
    EXPECT_EQ(parse_error_status(ParseError::body_too_large), 413);
    EXPECT_EQ(parse_error_status(ParseError::bad_version), 505);
    EXPECT_EQ(parse_error_status(ParseError::connect_refused), 405);
    EXPECT_EQ(parse_error_status(ParseError::bad_transfer_encoding), 501);
    EXPECT_EQ(parse_error_status(ParseError::arena_exhausted), 431);
    EXPECT_EQ(parse_error_status(ParseError::body_arena_exhausted), 413);
    EXPECT_EQ(parse_error_status(ParseError::obs_fold), 400);
    EXPECT_EQ(parse_error_code(ParseError::cl_and_te), "cl_and_te");
    EXPECT_EQ(parse_error_code(ParseError::body_arena_exhausted), "body_arena_exhausted");
    for (uint8_t index = 1; index < static_cast<uint8_t>(ParseError::count_); index += 1) {
        const auto error = static_cast<ParseError>(index);
        const uint16_t status = parse_error_status(error);
        EXPECT_GE(status, 400);
        EXPECT_LT(status, 600);
        const std::string_view code = parse_error_code(error);
        EXPECT_FALSE(code.empty());
        EXPECT_EQ(code.find_first_not_of("abcdefghijklmnopqrstuvwxyz_0123456789"),
                  std::string_view::npos);
        EXPECT_EQ(parse_error_message(error).back(), '.');
    }
}

TEST(HttpParseError, ConsumedBytesPointAtTheRefusedByte) {
    const std::string stream = "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n";
    const Outcome whole = run(stream, {});
    EXPECT_EQ(whole.error, ParseError::bare_cr_or_lf);
    EXPECT_EQ(whole.error_offset, stream.find('\n', 16));
    const Outcome fold = run("GET / HTTP/1.1\r\nHost: h\r\n x\r\n\r\n", {3, 20});
    EXPECT_EQ(fold.error, ParseError::obs_fold);
    EXPECT_EQ(fold.error_offset, 25u);
}

// The head scanner counts a line's bytes a run at a time: the refusal still points at the
// first byte over the limit, however the stream is split (test_limits: request line 64,
// header bytes 256).
TEST(HttpParseError, LimitRefusalsPointAtTheFirstByteOver) {
    struct Refusal {
        std::string stream;
        ParseError error;
        uint64_t offset;
    };
    const Refusal refusals[] = {
        {"GET /" + repeat('a', 200), ParseError::request_line_too_long, 64},
        {"GET /" + repeat('a', 59) + " HTTP/1.1\r\n", ParseError::request_line_too_long, 64},
        // "GET / HTTP/1.1\r\n" is 16 bytes; the 257th header byte is refused.
        {"GET / HTTP/1.1\r\nHost: h\r\nX: " + repeat('v', 400), ParseError::header_bytes_too_large,
         16 + 256},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: " + repeat('v', 242) + "\r\nY: z\r\n\r\n",
         ParseError::header_bytes_too_large, 16 + 256},
    };
    for (const Refusal& refusal : refusals) {
        for (size_t cut = 0; cut < refusal.stream.size(); cut += 7) {
            const Outcome outcome =
                run(refusal.stream, cut == 0 ? std::vector<size_t>{} : std::vector<size_t>{cut});
            EXPECT_EQ(outcome.error, refusal.error) << refusal.stream << " cut " << cut;
            EXPECT_EQ(outcome.error_offset, refusal.offset) << refusal.stream << " cut " << cut;
        }
    }
}

TEST(HttpParseArena, HeadOverTheArenaCapIsRefusedWith431) {
    // Each value fits a small chunk but together they need a second one, which the cap
    // forbids. The control run with room to spare parses the same bytes.
    std::string extra;
    for (int index = 0; index < 6; index += 1) {
        extra += "X-" + std::to_string(index) + ": " + repeat('v', 3000) + "\r\n";
    }
    const std::string stream = head("GET / HTTP/1.1", extra);
    ParserLimits limits = test_limits;
    limits.header_bytes_max = 64 * 1024;
    const Outcome roomy = run(stream, {}, limits, 1 << 20);
    EXPECT_EQ(roomy.error, ParseError::none);
    ASSERT_EQ(roomy.messages.size(), 1u);
    EXPECT_EQ(roomy.messages[0].headers.at(6).second, repeat('v', 3000));
    const std::vector<std::vector<size_t>> splits = {{}, {100}, {5000, 9000, 12000}};
    for (const std::vector<size_t>& cuts : splits) {
        const Outcome capped = run(stream, cuts, limits, chunk_payload_bytes);
        EXPECT_EQ(capped.error, ParseError::arena_exhausted);
        EXPECT_TRUE(capped.messages.empty());
    }
    EXPECT_EQ(parse_error_status(ParseError::arena_exhausted), 431);
}

TEST(HttpParseArena, BodyOverTheArenaCapIsRefusedWith413) {
    ParserLimits limits = test_limits;
    limits.body_bytes_max = 1 << 20;
    // More than a chunk holds, so it needs a large block, which the one-chunk cap forbids.
    const std::string body = repeat('b', 20000);
    const std::string by_length = head("POST / HTTP/1.1", "Content-Length: 20000\r\n") + body;
    const std::string by_chunks = head("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\n") +
                                  "4e20\r\n" + body + "\r\n0\r\n\r\n";
    for (const std::string& stream : {by_length, by_chunks}) {
        const Outcome roomy = run(stream, {}, limits, 1 << 20);
        EXPECT_EQ(roomy.error, ParseError::none);
        ASSERT_EQ(roomy.messages.size(), 1u);
        EXPECT_EQ(roomy.messages[0].body, body);
        const Outcome capped = run(stream, {}, limits, chunk_payload_bytes);
        EXPECT_EQ(capped.error, ParseError::body_arena_exhausted);
        const Outcome capped_split = run(stream, {7, 120, 3000}, limits, chunk_payload_bytes);
        EXPECT_EQ(capped_split.error, ParseError::body_arena_exhausted);
    }
}

TEST(HttpParseChunked, ManySmallChunksGrowOneContiguousBody) {
    ParserLimits limits = test_limits;
    limits.body_bytes_max = 100 * 1000;
    std::string stream = head("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\n");
    std::string expected;
    for (size_t index = 0; index < 1000; index += 1) {
        const std::string piece = std::to_string(index % 10) + repeat('x', 9 + index % 60);
        char size_line[16];
        std::snprintf(size_line, sizeof(size_line), "%zx\r\n", piece.size());
        stream += size_line + piece + "\r\n";
        expected += piece;
    }
    stream += "0\r\n\r\n";
    const Outcome whole = run(stream, {}, limits);
    ASSERT_EQ(whole.messages.size(), 1u);
    EXPECT_EQ(whole.messages[0].body, expected);
    EXPECT_TRUE(whole.messages[0].is_padded);
    const Outcome split = run(stream, {10, 500, 501, 20000, 40000}, limits);
    EXPECT_TRUE(split == whole);
}

TEST(HttpParseState, InMessageAndBodylessCompletion) {
    ChunkPool pool(8, 1 << 20);
    Arena arena(&pool, 1 << 20);
    RequestParser parser(test_limits);
    parser.start(arena);
    EXPECT_FALSE(parser.in_message());
    ParseResult result = parser.feed("");
    EXPECT_EQ(result.event, ParseEvent::need_more);
    EXPECT_FALSE(parser.in_message());
    result = parser.feed("G");
    EXPECT_EQ(result.event, ParseEvent::need_more);
    EXPECT_TRUE(parser.in_message());
    const std::string rest = "ET /x HTTP/1.1\r\nHost: h\r\n\r\nGET";
    result = parser.feed(rest);
    EXPECT_EQ(result.event, ParseEvent::head_complete);
    EXPECT_EQ(result.consumed_bytes, rest.size() - 3);
    EXPECT_EQ(parser.request().target, "/x");  // Head fields are there at head time.
    result = parser.feed("GET");  // The body-less message ends before any byte of this.
    EXPECT_EQ(result.event, ParseEvent::message_complete);
    EXPECT_EQ(result.consumed_bytes, 0u);
    EXPECT_FALSE(parser.in_message());
    EXPECT_EQ(parser.request().find_header("host"), "h");
    EXPECT_EQ(parser.request().find_header("x-missing"), "");
    arena.release();
    parser.start(arena);
    result = parser.feed("GET");
    EXPECT_EQ(result.event, ParseEvent::need_more);
    EXPECT_TRUE(parser.in_message());
    arena.release();
}

// A body refused at its head is parsed for framing but never stored (no arena memory).
TEST(HttpParseState, DiscardedBodyIsFramedButNotStored) {
    for (const std::string& body_stream :
         {std::string("Content-Length: 600\r\n\r\n") + repeat('x', 600),
          std::string("Transfer-Encoding: chunked\r\n\r\n258\r\n") + repeat('x', 600) +
              "\r\n0\r\n\r\n"}) {
        ChunkPool pool(8, 1 << 20);
        Arena arena(&pool, 1 << 20);
        RequestParser parser(test_limits);
        parser.start(arena);
        const std::string stream =
            "POST / HTTP/1.1\r\nHost: h\r\n" + body_stream + "GET /next HTTP/1.1\r\n";
        ParseResult result = parser.feed(stream);
        ASSERT_EQ(result.event, ParseEvent::head_complete);
        const uint64_t head_in_use = pool.stats().large_in_use_bytes;
        parser.discard_body();
        std::string_view rest = std::string_view(stream).substr(result.consumed_bytes);
        result = parser.feed(rest);
        ASSERT_EQ(result.event, ParseEvent::message_complete);
        EXPECT_EQ(rest.substr(result.consumed_bytes), "GET /next HTTP/1.1\r\n");
        EXPECT_EQ(parser.request().body, "");
        EXPECT_EQ(pool.stats().large_in_use_bytes, head_in_use) << "the body took memory";
        arena.release();
    }
}

TEST(HttpParseState, HeadCompleteComesBeforeTheBodyForContinue) {
    ChunkPool pool(8, 1 << 20);
    Arena arena(&pool, 1 << 20);
    RequestParser parser(test_limits);
    parser.start(arena);
    const std::string stream =
        head("POST / HTTP/1.1", "Expect: 100-continue\r\nContent-Length: 4\r\n") + "body";
    ParseResult result = parser.feed(stream);
    EXPECT_EQ(result.event, ParseEvent::head_complete);
    EXPECT_EQ(result.consumed_bytes, stream.size() - 4);
    EXPECT_TRUE(parser.request().expects_continue);
    EXPECT_EQ(parser.request().content_length, 4u);
    result = parser.feed(std::string_view(stream).substr(result.consumed_bytes));
    EXPECT_EQ(result.event, ParseEvent::message_complete);
    EXPECT_EQ(result.consumed_bytes, 4u);
    EXPECT_EQ(parser.request().body, "body");
    arena.release();
}

// The build the environment and the CPU select runs: CTest runs this binary once as is (the
// SSE4.2 build where the CPU has it) and once as llhttp_baseline.http_parse_test, with
// RINGWAY_LLHTTP_SIMD=0 (tests/CMakeLists.txt).
TEST(LlhttpSimd, RunsTheBuildTheEnvironmentAndCpuSelect) {
    const char* forced = std::getenv("RINGWAY_LLHTTP_SIMD");
    const bool is_forced_baseline = forced != nullptr && std::strcmp(forced, "0") == 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    const bool expected = !is_forced_baseline && __builtin_cpu_supports("sse4.2");
#else
    const bool expected = false;
#endif
    EXPECT_EQ(llhttp_simd_active(), expected);
}

}  // namespace
}  // namespace rw
