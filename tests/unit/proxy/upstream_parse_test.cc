// tests/unit/proxy/upstream_parse_test.cc — the upstream response parser: head fields,
// body spans through Content-Length and chunked framing, extra bytes after a message,
// close-delimited bodies, truncation, bad framing and span-list overflow. Each response is
// fed whole, split at every offset and one byte at a time; the events and the body must
// not depend on the split. Spans are read right after each feed and the input buffer is
// overwritten afterwards, as a recv buffer would be.
#include "proxy/upstream_parse.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace rw {
namespace {

struct Outcome {
    bool is_head_seen = false;
    bool is_complete = false;
    bool is_error = false;
    uint64_t extra_bytes = 0;  // Bytes after the message in the input.
    std::string body;
    UpstreamHead head;
    bool is_reusable = false;
};

// Feeds the pieces in order, collecting spans after every feed.
Outcome feed_pieces(const std::vector<std::string>& pieces) {
    UpstreamParser parser;
    Outcome outcome;
    for (const std::string& piece : pieces) {
        std::string buffer = piece;  // A recv buffer: reused (scribbled) after the feed.
        uint32_t offset = 0;
        while (!outcome.is_complete && !outcome.is_error) {
            const UpstreamFeed feed = parser.feed({buffer.data() + offset, buffer.size() - offset});
            offset += feed.consumed_bytes;
            for (uint32_t i = 0; i < parser.span_count(); i++) {
                outcome.body.append(parser.spans()[i]);
            }
            parser.spans_clear();
            if (feed.event == UpstreamEvent::head_complete) {
                outcome.is_head_seen = true;
                outcome.head = parser.head();
                continue;
            }
            if (feed.event == UpstreamEvent::spans_full) {
                continue;
            }
            if (feed.event == UpstreamEvent::message_complete) {
                outcome.is_complete = true;
                outcome.extra_bytes = buffer.size() - offset;
            } else if (feed.event == UpstreamEvent::error) {
                outcome.is_error = true;
            }
            break;
        }
        buffer.assign(buffer.size(), '#');
        if (outcome.is_complete) {
            break;
        }
    }
    outcome.is_reusable = parser.is_reusable();
    return outcome;
}

std::vector<std::vector<std::string>> splits_of(const std::string& bytes) {
    std::vector<std::vector<std::string>> splits;
    splits.push_back({bytes});
    for (size_t at = 1; at < bytes.size(); at++) {
        splits.push_back({bytes.substr(0, at), bytes.substr(at)});
    }
    std::vector<std::string> bytewise;
    for (char c : bytes) {
        bytewise.emplace_back(1, c);
    }
    splits.push_back(bytewise);
    return splits;
}

void expect_same_for_every_split(const std::string& bytes, const Outcome& expected) {
    for (const auto& pieces : splits_of(bytes)) {
        const Outcome outcome = feed_pieces(pieces);
        ASSERT_EQ(outcome.is_head_seen, expected.is_head_seen) << pieces.size() << " pieces";
        ASSERT_EQ(outcome.is_complete, expected.is_complete) << pieces.size() << " pieces";
        ASSERT_EQ(outcome.is_error, expected.is_error) << pieces.size() << " pieces";
        ASSERT_EQ(outcome.body, expected.body) << pieces.size() << " pieces";
        ASSERT_EQ(outcome.head.status, expected.head.status);
        ASSERT_EQ(outcome.is_reusable, expected.is_reusable) << pieces.size() << " pieces";
    }
}

TEST(UpstreamParse, ContentLengthResponse) {
    const std::string bytes =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
        "x-request-id: req_123\r\n\r\n{\"ok\":true}";
    const Outcome outcome = feed_pieces({bytes});
    EXPECT_TRUE(outcome.is_head_seen);
    EXPECT_TRUE(outcome.is_complete);
    EXPECT_EQ(outcome.body, "{\"ok\":true}");
    EXPECT_EQ(outcome.head.status, 200);
    EXPECT_STREQ(outcome.head.content_type, "application/json");
    EXPECT_STREQ(outcome.head.request_id, "req_123");
    EXPECT_TRUE(outcome.head.has_content_length);
    EXPECT_FALSE(outcome.head.is_event_stream);
    EXPECT_TRUE(outcome.is_reusable);
    expect_same_for_every_split(bytes, outcome);
}

// Anthropic names its id request-id; OpenAI's x-request-id wins when both come.
TEST(UpstreamParse, ProviderRequestIdFromEitherHeader) {
    const Outcome anthropic =
        feed_pieces({"HTTP/1.1 200 OK\r\nrequest-id: "
                     "req_011CSHoEeqs5C35K2UUqR7Fy\r\nContent-Length: 0\r\n\r\n"});
    EXPECT_STREQ(anthropic.head.request_id, "req_011CSHoEeqs5C35K2UUqR7Fy");
    const Outcome both =
        feed_pieces({"HTTP/1.1 200 OK\r\nrequest-id: second\r\nx-request-id: first\r\n"
                     "Content-Length: 0\r\n\r\n"});
    EXPECT_STREQ(both.head.request_id, "first");
}

TEST(UpstreamParse, ChunkedEventStream) {
    const std::string bytes =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
        "f\r\ndata: {\"a\":1}\n\n\r\n"
        "8\r\ndata: [D\r\n"
        "6\r\nONE]\n\n\r\n0\r\n\r\n";
    const Outcome outcome = feed_pieces({bytes});
    EXPECT_TRUE(outcome.is_complete);
    EXPECT_TRUE(outcome.head.is_event_stream);
    EXPECT_TRUE(outcome.head.is_chunked);
    EXPECT_EQ(outcome.body, "data: {\"a\":1}\n\ndata: [DONE]\n\n");
    EXPECT_TRUE(outcome.is_reusable);
    expect_same_for_every_split(bytes, outcome);
}

TEST(UpstreamParse, ExtraBytesAfterTheMessageAreLeftOver) {
    const std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiJUNK";
    const Outcome outcome = feed_pieces({bytes});
    EXPECT_TRUE(outcome.is_complete);
    EXPECT_EQ(outcome.body, "hi");
    EXPECT_EQ(outcome.extra_bytes, 4u);  // The caller must not pool the connection.
}

TEST(UpstreamParse, ConnectionCloseAndHttp10AreNotReusable) {
    Outcome outcome =
        feed_pieces({"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"});
    EXPECT_TRUE(outcome.is_complete);
    EXPECT_TRUE(outcome.head.has_connection_close);
    EXPECT_FALSE(outcome.is_reusable);
    outcome = feed_pieces({"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"});
    EXPECT_TRUE(outcome.is_complete);
    EXPECT_FALSE(outcome.is_reusable);
}

TEST(UpstreamParse, CloseDelimitedBodyCompletesAtEofOnly) {
    UpstreamParser parser;
    std::string bytes = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it";
    UpstreamFeed feed = parser.feed(bytes);
    ASSERT_EQ(feed.event, UpstreamEvent::head_complete);
    feed = parser.feed(std::string_view(bytes).substr(feed.consumed_bytes));
    EXPECT_EQ(feed.event, UpstreamEvent::need_more);
    ASSERT_EQ(parser.span_count(), 1u);
    EXPECT_EQ(parser.spans()[0], "all of it");
    EXPECT_FALSE(parser.is_message_complete());
    EXPECT_TRUE(parser.finish_on_eof());
    EXPECT_FALSE(parser.is_reusable());
}

TEST(UpstreamParse, TruncatedChunkedBodyIsNotComplete) {
    UpstreamParser parser;
    const std::string bytes = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
    UpstreamFeed feed = parser.feed(bytes);
    ASSERT_EQ(feed.event, UpstreamEvent::head_complete);
    feed = parser.feed(std::string_view(bytes).substr(feed.consumed_bytes));
    EXPECT_EQ(feed.event, UpstreamEvent::need_more);
    EXPECT_FALSE(parser.finish_on_eof());  // Never presented as a finished answer.
}

TEST(UpstreamParse, BadChunkSizeIsAnError) {
    const Outcome outcome = feed_pieces(
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"});
    EXPECT_TRUE(outcome.is_head_seen);
    EXPECT_TRUE(outcome.is_error);
    EXPECT_FALSE(outcome.is_complete);
}

TEST(UpstreamParse, RetryAfterAndStatusOfARefusal) {
    const Outcome outcome = feed_pieces(
        {"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 17\r\nContent-Length: 0\r\n\r\n"});
    EXPECT_TRUE(outcome.is_complete);
    EXPECT_EQ(outcome.head.status, 429);
    EXPECT_EQ(outcome.head.retry_after_s, 17u);
}

TEST(UpstreamParse, HeadersClientsActOnAreKeptForTheClientWhateverTheSplit) {
    const std::string response =
        "HTTP/1.1 429 Too Many Requests\r\nX-Request-Id: req_123\r\nSet-Cookie: a=b\r\n"
        "Retry-After: 7\r\nretry-after-ms: 7000\r\nx-ratelimit-remaining-tokens: 0\r\n"
        "anthropic-ratelimit-output-tokens-remaining: 12\r\nx-ratelimit-api-key-id: k1\r\n"
        "Openai-Processing-Ms: 9\r\nAuthorization: Bearer sk-x\r\nContent-Length: 0\r\n\r\n";
    const std::string expected =
        "x-upstream-request-id: req_123\r\nretry-after: 7\r\nretry-after-ms: 7000\r\n"
        "x-ratelimit-remaining-tokens: 0\r\nanthropic-ratelimit-output-tokens-remaining: 12\r\n"
        "openai-processing-ms: 9\r\n";
    for (const auto& pieces : splits_of(response)) {
        char relayed[upstream_relayed_headers_bytes_max];
        UpstreamParser parser;
        parser.start(relayed, sizeof(relayed));
        for (const std::string& piece : pieces) {
            std::string buffer = piece;  // Headers are kept by the head's end at the latest.
            if (!parser.is_head_complete()) {
                (void)parser.feed(buffer);
            }
            buffer.assign(buffer.size(), '#');
        }
        ASSERT_EQ(parser.relayed_headers(), expected) << pieces.size() << " pieces";
        ASSERT_TRUE(parser.head().has_retry_after);
    }
    // No room: lines that do not fit are dropped whole.
    char small[50];
    UpstreamParser parser;
    parser.start(small, sizeof(small));
    (void)parser.feed(response);
    EXPECT_EQ(parser.relayed_headers(), "x-upstream-request-id: req_123\r\nretry-after: 7\r\n");
}

// attempt_relayed_headers_trim gives the buffer's tail back to the arena once the head is
// relayed: a trailer of a relayed name must not be written past the kept bytes.
TEST(UpstreamParse, ASealedBufferKeepsNoTrailer) {
    const std::string head =
        "HTTP/1.1 200 OK\r\nx-request-id: req_1\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string body = "5\r\nhello\r\n0\r\nretry-after: 9\r\nx-request-id: t\r\n\r\n";
    for (const bool is_sealed : {false, true}) {
        char relayed[upstream_relayed_headers_bytes_max];
        std::memset(relayed, '~', sizeof(relayed));
        UpstreamParser parser;
        parser.start(relayed, sizeof(relayed));
        const UpstreamFeed at_head = parser.feed(head);
        ASSERT_EQ(at_head.event, UpstreamEvent::head_complete);
        const std::string kept(parser.relayed_headers());
        ASSERT_EQ(kept, "x-upstream-request-id: req_1\r\n");
        if (is_sealed) {
            parser.relayed_seal();
        }
        UpstreamFeed fed{};
        for (std::string_view rest = body; !rest.empty() && fed.event != UpstreamEvent::error;
             rest.remove_prefix(fed.consumed_bytes)) {
            fed = parser.feed(rest);
            parser.spans_clear();
            if (fed.event == UpstreamEvent::message_complete) {
                break;
            }
        }
        ASSERT_EQ(fed.event, UpstreamEvent::message_complete);
        if (is_sealed) {
            EXPECT_EQ(parser.relayed_headers(), kept);
            EXPECT_EQ(relayed[kept.size()], '~');  // Not a byte past the sealed end.
        } else {
            // Unsealed, the trailers' relayed names are appended: what the seal prevents.
            EXPECT_GT(parser.relayed_headers().size(), kept.size());
        }
    }
}

TEST(UpstreamParse, TheLinesTheKeysLimitsReplaceAreDroppedAndTakeNoRoom) {
    const std::string response =
        "HTTP/1.1 200 OK\r\nX-RateLimit-Limit-Requests: 10000\r\n"
        "x-ratelimit-remaining-requests: 9999\r\nx-ratelimit-limit-tokens: 500\r\n"
        "x-ratelimit-reset-tokens: 6m0s\r\nx-request-id: req_9\r\n"
        "anthropic-ratelimit-requests-remaining: 4\r\nContent-Length: 0\r\n\r\n";
    const std::vector<std::string> bytewise = splits_of(response).back();
    const auto relayed = [&bytewise](uint8_t replaced, uint32_t capacity) {
        char buffer[upstream_relayed_headers_bytes_max];
        UpstreamParser parser;
        parser.start(buffer, capacity, replaced);
        for (const std::string& piece : bytewise) {
            if (!parser.is_head_complete()) {
                (void)parser.feed(piece);
            }
        }
        return std::string(parser.relayed_headers());
    };
    EXPECT_EQ(relayed(upstream_replaces_none, 2048),
              "x-ratelimit-limit-requests: 10000\r\nx-ratelimit-remaining-requests: 9999\r\n"
              "x-ratelimit-limit-tokens: 500\r\nx-ratelimit-reset-tokens: 6m0s\r\n"
              "x-upstream-request-id: req_9\r\nanthropic-ratelimit-requests-remaining: 4\r\n");
    EXPECT_EQ(relayed(upstream_replaces_requests, 2048),
              "x-ratelimit-limit-tokens: 500\r\nx-ratelimit-reset-tokens: 6m0s\r\n"
              "x-upstream-request-id: req_9\r\nanthropic-ratelimit-requests-remaining: 4\r\n");
    EXPECT_EQ(relayed(upstream_replaces_tokens, 2048),
              "x-ratelimit-limit-requests: 10000\r\nx-ratelimit-remaining-requests: 9999\r\n"
              "x-upstream-request-id: req_9\r\nanthropic-ratelimit-requests-remaining: 4\r\n");
    // A full buffer: the dropped lines take no room, so the lines after them fit. With 80
    // bytes and nothing replaced only the first two lines fit (35 + 38 bytes).
    EXPECT_EQ(relayed(upstream_replaces_none, 80),
              "x-ratelimit-limit-requests: 10000\r\nx-ratelimit-remaining-requests: 9999\r\n");
    EXPECT_EQ(relayed(upstream_replaces_requests | upstream_replaces_tokens, 80),
              "x-upstream-request-id: req_9\r\nanthropic-ratelimit-requests-remaining: 4\r\n");
}

TEST(UpstreamParse, TheRelayAllowList) {
    for (const char* name :
         {"x-request-id", "request-id", "retry-after", "retry-after-ms", "openai-processing-ms",
          "x-ratelimit-limit-requests", "anthropic-ratelimit-tokens-reset", "x-ratelimit-ke",
          "anthropic-ratelimit-cook", "x-ratelimit-a-s-c-k"}) {
        EXPECT_TRUE(upstream_header_is_relayed(name)) << name;
    }
    for (const char* name : {"set-cookie",
                             "cookie",
                             "authorization",
                             "x-api-key",
                             "x-ratelimit-api-key",
                             "anthropic-ratelimit-auth-token",
                             "openai-organization",
                             "server",
                             "content-length",
                             "x-secret",
                             "x-ratelimit-key",
                             "x-ratelimit-cookie-x",
                             "anthropic-ratelimit-secret",
                             "retry-after-key",
                             "x-request-id-auth",
                             "",
                             "x",
                             "x-ratelimit-my-authority",
                             "anthropic-ratelimit-tokens-secret",
                             "x-ratelimit-sskey"}) {
        EXPECT_FALSE(upstream_header_is_relayed(name)) << name;
    }
}

TEST(UpstreamParse, ManyChunksInOneBufferOverflowTheSpanListWithoutLoss) {
    std::string bytes = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::string expected;
    for (int i = 0; i < 100; i++) {  // More chunks than upstream_body_spans_max.
        const std::string data = "event " + std::to_string(i) + "\n";
        char size[16];
        std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
        bytes += size + data + "\r\n";
        expected += data;
    }
    bytes += "0\r\n\r\n";
    const Outcome outcome = feed_pieces({bytes});
    EXPECT_TRUE(outcome.is_complete);
    EXPECT_EQ(outcome.body, expected);
}

TEST(UpstreamParse, InterimHeadsAreSkippedBeforeTheFinalOne) {
    const std::string bytes =
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\nok";
    const Outcome outcome = feed_pieces({bytes});
    EXPECT_TRUE(outcome.is_head_seen);
    EXPECT_TRUE(outcome.is_complete);
    EXPECT_EQ(outcome.head.status, 200);
    EXPECT_STREQ(outcome.head.content_type, "application/json");
    EXPECT_EQ(outcome.body, "ok");
    EXPECT_TRUE(outcome.is_reusable);
    expect_same_for_every_split(bytes, outcome);
}

TEST(UpstreamParse, EndlessInterimHeadsAreAnError) {
    std::string bytes;
    for (uint32_t i = 0; i <= upstream_interim_heads_max; i++) {
        bytes += "HTTP/1.1 103 Early Hints\r\n\r\n";
    }
    bytes += "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    const Outcome outcome = feed_pieces({bytes});
    EXPECT_FALSE(outcome.is_head_seen);
    EXPECT_TRUE(outcome.is_error);
}

TEST(UpstreamParse, SwitchingProtocolsIsAnError) {
    UpstreamParser parser;
    const UpstreamFeed feed = parser.feed(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
    EXPECT_EQ(feed.event, UpstreamEvent::error);
    EXPECT_STREQ(parser.error_reason(), "101 Switching Protocols from the upstream");
}

TEST(UpstreamParse, NoContentAndNotModifiedHaveNoBodyWhateverTheirFraming) {
    for (const std::string status : {"204 No Content", "304 Not Modified"}) {
        const std::string with_length = "HTTP/1.1 " + status + "\r\nContent-Length: 5\r\n\r\nhello";
        Outcome outcome = feed_pieces({with_length});
        EXPECT_TRUE(outcome.is_complete) << status;
        EXPECT_EQ(outcome.body, "") << status;
        EXPECT_EQ(outcome.extra_bytes, 5u) << status;
        EXPECT_TRUE(outcome.head.has_skipped_body) << status;
        EXPECT_FALSE(outcome.is_reusable) << status;  // It announced bytes: never pooled.
        outcome = feed_pieces({"HTTP/1.1 " + status +
                               "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"});
        EXPECT_TRUE(outcome.is_complete) << status;
        EXPECT_EQ(outcome.body, "") << status;
        EXPECT_FALSE(outcome.is_reusable) << status;
        outcome = feed_pieces({"HTTP/1.1 " + status + "\r\n\r\n"});
        EXPECT_TRUE(outcome.is_complete) << status;
        EXPECT_FALSE(outcome.head.has_skipped_body) << status;
        EXPECT_TRUE(outcome.is_reusable) << status;
    }
}

TEST(UpstreamParse, TransferCodingsOtherThanOneChunkedAreErrors) {
    for (const std::string coding :
         {"chunked, chunked", "gzip", "chunked, gzip", "gzip, chunked", "identity"}) {
        const Outcome outcome = feed_pieces({"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding +
                                             "\r\n\r\n5\r\nhello\r\n0\r\n\r\n"});
        EXPECT_TRUE(outcome.is_error) << coding;
        EXPECT_FALSE(outcome.is_head_seen) << coding;
    }
    const Outcome twice = feed_pieces(
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n0\r\n\r\n"});
    EXPECT_TRUE(twice.is_error);
    const Outcome plain = feed_pieces(
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding:  Chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n"});
    EXPECT_TRUE(plain.is_complete);
    EXPECT_EQ(plain.body, "hello");
}

TEST(UpstreamParse, ContentEncodingIsKeptForTheRelay) {
    const Outcome outcome = feed_pieces(
        {"HTTP/1.1 200 OK\r\nContent-Encoding:  gzip \r\nContent-Length: 3\r\n\r\nabc"});
    EXPECT_TRUE(outcome.is_complete);
    EXPECT_STREQ(outcome.head.content_encoding, "gzip");
    const Outcome twice =
        feed_pieces({"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Encoding: br\r\n"
                     "Content-Length: 3\r\n\r\nabc"});
    EXPECT_TRUE(twice.is_error);
}

}  // namespace
}  // namespace rw
