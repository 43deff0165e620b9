// tests/support/mock_upstream.cc — the stand-in LLM provider of ringway's e2e tests and the
// "direct" baseline of bench/load: an epoll HTTP/1.1 server (optionally TLS) that speaks the
// OpenAI and Anthropic wire formats and misbehaves on demand, per request, via x-mock-*.
// Threads: --threads N event loops share one listening socket (EPOLLEXCLUSIVE); a connection
// lives on the loop that accepted it. Only `Stats` is shared, behind one mutex.
// Invariant: a connection serves one request at a time; pipelined bytes wait in Conn::in.
//
// CLI:  mock_upstream [--listen 127.0.0.1:0] [--threads 1] [--tls-cert F --tls-key F]
//                     [--default NAME=VALUE]...
//   Prints exactly one line "listening 127.0.0.1:PORT" on stdout (flushed) once accepting.
//   --default sets a control for requests that do not carry it (for load runs).
//
// Endpoints:
//   POST /v1/chat/completions  chat.completion / SSE chat.completion.chunk ("stream":true)
//   POST /v1/completions       text_completion, same streaming rules
//   POST /v1/embeddings        list of embedding objects (float or "encoding_format":"base64")
//   POST /v1/responses         Responses API object / SSE event:+data: (created .. completed)
//   POST /v1/messages          Anthropic Messages JSON / SSE (message_start .. message_stop)
//   POST /v1/messages/count_tokens  {"input_tokens": N} (N: the prompt_tokens formula below)
//   POST /v1/responses/input_tokens {"object":"response.input_tokens","input_tokens": N}
//   GET|DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel, GET …/input_items: the
//                              responses answered before (unless "store": false), kept in
//                              memory; an unknown id: 404 as OpenAI answers it
//   GET  /v1/models            model list
//   POST /v1/images/generations  gpt-image answer with usage (usage none: dall-e's, none)
//   POST /v1/audio/speech      binary audio, chunked piece by piece (see reply_speech)
//   POST /v1/moderations       results, no usage;  POST /v1/rerank  results + usage.total_tokens
//   POST /v1/audio/transcriptions, /v1/audio/translations, /v1/images/edits  multipart uploads
//                              (see reply_upload): the answer reports what arrived (bytes,
//                              FNV-1a of the whole body, the model part, the file part's size)
//   GET  /__mock/stats         JSON counters + last request (overall and per scenario id)
//   POST /__mock/reset         clears the counters;  GET /__mock/health -> 200 "ok"
//   POST /__mock/defaults      replaces every --default with the body's NAME=VALUE lines
//                              (empty body: none), e.g. to fix a "broken" provider mid-test
// Streams end with "data: [DONE]" (chat, completions); Responses and Anthropic streams do not.
// Response headers as the providers send them, on answers and errors alike: OpenAI paths
// x-request-id, openai-processing-ms, x-ratelimit-{limit,remaining,reset}-{requests,tokens}
// and a Cloudflare set-cookie (which a gateway must not relay); /v1/messages* request-id and
// anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}.
// The model echoes the request's "model" verbatim ("mock-model" when absent).
//
// Token formula (deterministic, for assertions):
//   prompt_tokens (input_tokens)      = x-mock-prompt-tokens if given, else
//                                       ceil(request body bytes as received / 4)
//   completion_tokens (output_tokens) = x-mock-chunks (number of content deltas), default 3,
//                                       plus x-mock-reasoning-tokens (not on /v1/messages)
//   total_tokens = prompt + completion. Embeddings: prompt_tokens = total_tokens.
//   Content delta i (0-based) is x-mock-text verbatim if given (inserted raw into the JSON
//   string, so escapes like \n or \u00e9 pass through), else x-mock-chunk-text-bytes (default
//   4) copies of the letter 'a' + i % 26. Non-streaming content is the concatenation.
//   Anthropic message_start carries output_tokens min(1, C); message_delta carries C.
//
// Controls: header "x-mock-NAME: VALUE", or a top-level body member "x_mock": {"NAME": VALUE}
// (for clients that cannot set headers), or --default NAME=VALUE. Header wins, then body,
// then default. An unknown x-mock-* name or a bad value answers 400 (catches typos).
//   chunks N                 content deltas (= completion tokens), default 3
//   chunk-text-bytes N       bytes per generated delta, default 4
//   text S                   use S as every delta's text
//   first-byte-delay-ms N    delay before the status line
//   first-event-delay-ms N   delay between the response head and the first SSE event
//   event-delay-ms N         delay between consecutive SSE events
//   split-bytes N            write the response in N-byte pieces, one write(2) each, cut at
//                            arbitrary positions (across events and HTTP chunk framing)
//   split-delay-ms N         pause between those pieces, default 1
//   http-chunk-bytes N       re-frame the chunked body into N-byte HTTP chunks (an event may
//                            straddle chunks, several events may share one; a remainder is
//                            held until the next event)
//   eol lf|crlf|cr           SSE line ending, default lf
//   status N                 answer N with the endpoint's error JSON (OpenAI
//                            {"error":{"message","type","param","code"}}, Anthropic
//                            {"type":"error","error":{...}} on /v1/messages); 401 echoes a
//                            masked key: "Incorrect API key provided: sk-a*****wxyz. ...";
//                            3xx answers with a Location header (must never be followed)
//   retry-after S            Retry-After seconds on 429/503 (default 1)
//   retry-after-ms N         also retry-after-ms: N on 429/503 (OpenAI's SDKs read it)
//   fault F                  reset        RST (SO_LINGER 0 + close) after K events / bytes
//                            reset-early  RST before any response byte
//                            truncate     close (FIN) after K events (no terminating chunk),
//                                         non-stream: Content-Length > bytes sent, then FIN
//                            close-early  FIN before any response byte
//                            stall        send K events / bytes, then nothing until the client
//                                         closes;  stall-early: nothing at all
//                            bad-chunk    invalid chunk-size line after K events, then FIN
//                            extra-bytes  junk after a complete response (keeps the conn)
//                            error-event  after K events an in-stream error event, then a
//                                         clean end without [DONE] / message_stop
//   fault-after K            streams: SSE events sent before the fault (default 2; the chat
//                            role chunk is event 1); non-stream: body bytes (default half)
//   connection-close 1       "Connection: close" and close after the response
//   http10 1                 "HTTP/1.0" response, no keep-alive; streams are close-delimited
//   usage auto|none|final|finish  auto: final usage chunk iff stream_options.include_usage;
//                            none: no usage anywhere (also "no-usage: 1"); final: always a
//                            final usage chunk; finish: usage on the finish_reason chunk
//   prompt-tokens N          fixes prompt_tokens / input_tokens
//   cached-tokens N          prompt-cache reads: OpenAI prompt_tokens_details.cached_tokens
//                            and Responses input_tokens_details.cached_tokens (part of the
//                            prompt: keep N <= prompt); Anthropic cache_read_input_tokens
//                            (beside input_tokens). Default 0.
//   cache-write-tokens N     Anthropic cache_creation_input_tokens (beside input_tokens)
//   reasoning-tokens N       OpenAI completion_tokens_details / Responses
//                            output_tokens_details.reasoning_tokens, added to the completion
//                            tokens (hidden output, as o-series models report it)
//   embedding-dims N         embedding vector length, default 8
//   scenario-id ID           counter key for fail-first and for stats "scenarios"
//   fail-first N             status / fault apply only to the first N requests of the
//                            scenario (status defaults to 503 when neither is given)
//   interim LIST             interim heads sent before the real one, e.g. "100,103" (103
//                            carries a Link header); 101 sends a Switching Protocols head
//   content-encoding S       adds "Content-Encoding: S" (the body is not changed)
//   transfer-encoding S      whole answers: "Transfer-Encoding: S" instead of
//                            Content-Length; the body is chunk-framed once when S ends in
//                            chunked, else sent raw, then the connection closes
//   obey-max-tokens 1        stop as a provider does at the request's output limit: the
//                            content deltas (so the completion tokens) are at most its
//                            max_tokens / max_completion_tokens / max_output_tokens
//   framing length|chunked|close  whole answers: Content-Length (default), chunked, or
//                            delimited by closing the connection; streams: chunked
//                            (default) or close (HTTP/1.1 without length, then FIN)
//   tool NAME                a tool-call answer calls NAME when the request offers it
//   tool-arguments JSON      a chat tool call's arguments (default {"q":"mock"})
//   body-read-pause-ms N     once a request's head is in and its body is not, stop reading
//                            the connection for N ms (once per request): the sender's
//                            socket buffers fill, as behind a provider that reads slowly
//   answer-early K           answer as soon as the head and K body bytes are in (0: at the
//                            head), without reading the rest of the body, then close
//                            (Connection: close; later input is read and dropped). With
//                            status N: a provider refusing an upload before taking it.
//   These two act before the body is read, so they come from headers or --default only.
// A status of 2xx or 304 answers the endpoint normally with that status (its body kept).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/assert.h"

namespace rw {
namespace {

constexpr size_t header_bytes_max = 64 * 1024;
constexpr size_t body_bytes_max = 64 * 1024 * 1024;
constexpr size_t recorded_body_bytes_max = 1024 * 1024;
constexpr size_t read_chunk_bytes = 64 * 1024;
constexpr uint32_t json_depth_max = 64;
constexpr uint32_t chunks_max = 1000000;
constexpr uint32_t delay_ms_max = 24 * 3600 * 1000;
constexpr uint32_t embedding_dims_max = 65536;
constexpr int epoll_events_max = 256;
constexpr uint32_t threads_max = 256;
constexpr std::string_view default_model = "mock-model";
constexpr std::string_view extra_junk = "EXTRA-BYTES-AFTER-RESPONSE\r\n";

// ---------------------------------------------------------------------------------------
// Small string and JSON helpers. The JSON reader only skips and slices; the mock never
// needs unescaped values because everything it echoes goes back into JSON verbatim.
// ---------------------------------------------------------------------------------------

char lower_ascii(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (lower_ascii(a[i]) != lower_ascii(b[i])) {
            return false;
        }
    }
    return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

void append_u64(std::string& out, uint64_t value) {
    char text[24];
    const auto result = std::to_chars(text, text + sizeof(text), value);
    out.append(text, result.ptr);
}

void append_hex(std::string& out, uint64_t value) {
    char text[24];
    const auto result = std::to_chars(text, text + sizeof(text), value, 16);
    out.append(text, result.ptr);
}

bool parse_u64(std::string_view s, uint64_t& out) {
    s = trim(s);
    if (s.empty()) {
        return false;
    }
    const auto result = std::from_chars(s.data(), s.data() + s.size(), out);
    return result.ec == std::errc() && result.ptr == s.data() + s.size();
}

bool parse_u32(std::string_view s, uint32_t max, uint32_t& out) {
    uint64_t value = 0;
    if (!parse_u64(s, value) || value > max) {
        return false;
    }
    out = static_cast<uint32_t>(value);
    return true;
}

bool parse_bool(std::string_view s, bool& out) {
    s = trim(s);
    if (s == "1" || iequals(s, "true") || iequals(s, "yes")) {
        out = true;
        return true;
    }
    if (s == "0" || iequals(s, "false") || iequals(s, "no")) {
        out = false;
        return true;
    }
    return false;
}

// Escapes for a JSON string body. Bytes >= 0x80 pass through (assumed UTF-8).
void append_json_escaped(std::string& out, std::string_view s) {
    for (const char c : s) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (byte < 0x20) {
            char text[8];
            std::snprintf(text, sizeof(text), "\\u%04x", byte);
            out.append(text);
        } else {
            out.push_back(c);
        }
    }
}

size_t json_ws(std::string_view s, size_t i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
        ++i;
    }
    return i;
}

// Returns the index just past the JSON value starting at s[i], or npos when the value is
// malformed, truncated or nested deeper than json_depth_max. Literals and numbers are
// accepted loosely (any run up to a delimiter); the mock is not a validator.
size_t json_value_end(std::string_view s, size_t i, uint32_t depth) {
    if (depth > json_depth_max || i >= s.size()) {
        return std::string_view::npos;
    }
    const char first = s[i];
    if (first == '"') {
        for (++i; i < s.size(); ++i) {
            if (s[i] == '\\') {
                ++i;
            } else if (s[i] == '"') {
                return i + 1;
            }
        }
        return std::string_view::npos;
    }
    if (first == '{' || first == '[') {
        const char close = first == '{' ? '}' : ']';
        i = json_ws(s, i + 1);
        if (i < s.size() && s[i] == close) {
            return i + 1;
        }
        for (;;) {
            if (first == '{') {
                if (i >= s.size() || s[i] != '"') {
                    return std::string_view::npos;
                }
                i = json_ws(s, json_value_end(s, i, depth + 1));
                if (i >= s.size() || s[i] != ':') {
                    return std::string_view::npos;
                }
                i = json_ws(s, i + 1);
            }
            i = json_value_end(s, i, depth + 1);
            if (i == std::string_view::npos) {
                return i;
            }
            i = json_ws(s, i);
            if (i >= s.size()) {
                return std::string_view::npos;
            }
            if (s[i] == close) {
                return i + 1;
            }
            if (s[i] != ',') {
                return std::string_view::npos;
            }
            i = json_ws(s, i + 1);
        }
    }
    const size_t start = i;
    while (i < s.size() && std::string_view(",}] \t\r\n").find(s[i]) == std::string_view::npos) {
        ++i;
    }
    return i == start ? std::string_view::npos : i;
}

// Calls visit(raw_key, raw_value) for every member of the object that `s` holds (after
// leading whitespace). raw_key excludes its quotes, escapes kept. Returns false when `s`
// is not a well-formed object; members before the malformed spot were already visited.
template <typename Visit>
bool json_object_each(std::string_view s, Visit&& visit) {
    size_t i = json_ws(s, 0);
    if (i >= s.size() || s[i] != '{') {
        return false;
    }
    i = json_ws(s, i + 1);
    if (i < s.size() && s[i] == '}') {
        return true;
    }
    for (;;) {
        const size_t key_end = json_value_end(s, i, 1);
        if (key_end == std::string_view::npos || s[i] != '"') {
            return false;
        }
        const std::string_view key = s.substr(i + 1, key_end - i - 2);
        i = json_ws(s, key_end);
        if (i >= s.size() || s[i] != ':') {
            return false;
        }
        i = json_ws(s, i + 1);
        const size_t value_end = json_value_end(s, i, 1);
        if (value_end == std::string_view::npos) {
            return false;
        }
        visit(key, s.substr(i, value_end - i));
        i = json_ws(s, value_end);
        if (i < s.size() && s[i] == '}') {
            return true;
        }
        if (i >= s.size() || s[i] != ',') {
            return false;
        }
        i = json_ws(s, i + 1);
    }
}

bool json_object_find(std::string_view s, std::string_view key, std::string_view& value) {
    bool is_found = false;
    json_object_each(s, [&](std::string_view member_key, std::string_view member_value) {
        if (!is_found && member_key == key) {
            value = member_value;
            is_found = true;
        }
    });
    return is_found;
}

// The raw contents of a JSON string value (escapes kept), or the value itself otherwise.
std::string_view json_unquote(std::string_view value) {
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        return value.substr(1, value.size() - 2);
    }
    return value;
}

bool json_is_valid(std::string_view s) {
    const size_t start = json_ws(s, 0);
    const size_t end = json_value_end(s, start, 0);
    return end != std::string_view::npos && json_ws(s, end) == s.size();
}

// Number of elements of the array `s`; 0 when `s` is not an array.
uint32_t json_array_count(std::string_view s) {
    size_t i = json_ws(s, 0);
    if (i >= s.size() || s[i] != '[') {
        return 0;
    }
    i = json_ws(s, i + 1);
    uint32_t count = 0;
    while (i < s.size() && s[i] != ']') {
        i = json_value_end(s, i, 1);
        if (i == std::string_view::npos) {
            return count;
        }
        count += 1;
        i = json_ws(s, i);
        if (i < s.size() && s[i] == ',') {
            i = json_ws(s, i + 1);
        }
    }
    return count;
}

void append_base64(std::string& out, const unsigned char* bytes, size_t length_bytes) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= length_bytes; i += 3) {
        const uint32_t v =
            (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        out.push_back(alphabet[(v >> 6) & 63]);
        out.push_back(alphabet[v & 63]);
    }
    if (i < length_bytes) {
        uint32_t v = uint32_t{bytes[i]} << 16;
        if (i + 1 < length_bytes) {
            v |= uint32_t{bytes[i + 1]} << 8;
        }
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        out.push_back(i + 1 < length_bytes ? alphabet[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
}

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1 request parsing (client side of the mock: ringway or curl).
// ---------------------------------------------------------------------------------------

struct Header {
    std::string name;   // As received (case kept), for stats.
    std::string value;  // Trimmed.
};

struct Request {
    std::string method;
    std::string target;   // Path + query, as received.
    std::string path;     // Without the query.
    std::string version;  // "HTTP/1.1" or "HTTP/1.0".
    std::vector<Header> headers;
    std::string body;  // Decoded (chunked bodies are de-chunked).
    bool has_content_length = false;
    uint64_t content_length = 0;
    bool is_chunked_body = false;
    bool is_expect_continue = false;
    bool wants_close = false;
};

const std::string* header_find(const Request& request, std::string_view name) {
    for (const Header& header : request.headers) {
        if (iequals(header.name, name)) {
            return &header.value;
        }
    }
    return nullptr;
}

enum class ParseStatus : uint8_t { incomplete, complete, bad_request, too_large };

struct ParseOutcome {
    ParseStatus status = ParseStatus::incomplete;
    size_t consumed_bytes = 0;         // Valid when complete.
    bool is_waiting_for_body = false;  // Head complete, body not yet.
};

// De-chunks a chunked body that starts at `s`. Returns complete with consumed_bytes, or
// incomplete when more bytes are needed, or bad_request on a malformed size line.
ParseOutcome parse_chunked_body(std::string_view s, std::string& body) {
    ParseOutcome outcome;
    body.clear();
    size_t i = 0;
    for (;;) {
        const size_t line_end = s.find("\r\n", i);
        if (line_end == std::string_view::npos) {
            return outcome;
        }
        std::string_view size_text = s.substr(i, line_end - i);
        size_text = size_text.substr(0, size_text.find(';'));
        uint64_t chunk_bytes = 0;
        const auto result =
            std::from_chars(size_text.data(), size_text.data() + size_text.size(), chunk_bytes, 16);
        if (size_text.empty() || result.ec != std::errc() ||
            result.ptr != size_text.data() + size_text.size() || chunk_bytes > body_bytes_max) {
            outcome.status = ParseStatus::bad_request;
            return outcome;
        }
        i = line_end + 2;
        if (chunk_bytes == 0) {
            // Trailers end at an empty line; without trailers that is the next CRLF.
            const size_t end = s.substr(i, 2) == "\r\n" ? i : s.find("\r\n\r\n", i);
            if (end == std::string_view::npos) {
                return outcome;
            }
            outcome.status = ParseStatus::complete;
            outcome.consumed_bytes = end + (end == i ? 2 : 4);
            return outcome;
        }
        if (s.size() < i + chunk_bytes + 2) {
            return outcome;
        }
        if (s.substr(i + chunk_bytes, 2) != "\r\n" || body.size() + chunk_bytes > body_bytes_max) {
            outcome.status = ParseStatus::bad_request;
            return outcome;
        }
        body.append(s.substr(i, chunk_bytes));
        i += chunk_bytes + 2;
    }
}

bool parse_head_line(std::string_view line, Request& request) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
        return false;
    }
    const std::string_view name = line.substr(0, colon);
    if (name.find_first_of(" \t") != std::string_view::npos) {
        return false;
    }
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
        uint64_t length = 0;
        if (!parse_u64(value, length) ||
            (request.has_content_length && length != request.content_length)) {
            return false;
        }
        request.has_content_length = true;
        request.content_length = length;
    } else if (iequals(name, "transfer-encoding")) {
        if (!iequals(value, "chunked")) {
            return false;
        }
        request.is_chunked_body = true;
    } else if (iequals(name, "connection")) {
        if (value.find("close") != std::string_view::npos ||
            value.find("Close") != std::string_view::npos) {
            request.wants_close = true;
        }
    } else if (iequals(name, "expect")) {
        request.is_expect_continue = iequals(value, "100-continue");
    }
    request.headers.push_back(Header{std::string(name), std::string(value)});
    return true;
}

// Parses one request from the front of `in`. The request is rebuilt from scratch on every
// call (requests are small; the mock favours simplicity over incremental parsing).
ParseOutcome parse_request(std::string_view in, Request& request) {
    ParseOutcome outcome;
    const size_t head_end = in.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
        outcome.status =
            in.size() > header_bytes_max ? ParseStatus::too_large : ParseStatus::incomplete;
        return outcome;
    }
    if (head_end > header_bytes_max) {
        outcome.status = ParseStatus::too_large;
        return outcome;
    }
    request = Request{};
    const std::string_view head = in.substr(0, head_end);
    const size_t line_end = std::min(head.find("\r\n"), head.size());
    const std::string_view start_line = head.substr(0, line_end);
    const size_t space1 = start_line.find(' ');
    const size_t space2 = start_line.rfind(' ');
    if (space1 == std::string_view::npos || space2 == space1) {
        outcome.status = ParseStatus::bad_request;
        return outcome;
    }
    request.method = std::string(start_line.substr(0, space1));
    request.target = std::string(start_line.substr(space1 + 1, space2 - space1 - 1));
    request.version = std::string(start_line.substr(space2 + 1));
    request.path = request.target.substr(0, request.target.find('?'));
    if (request.version != "HTTP/1.1" && request.version != "HTTP/1.0") {
        outcome.status = ParseStatus::bad_request;
        return outcome;
    }
    size_t i = line_end + 2;
    while (i <= head.size() && line_end < head.size()) {
        const size_t next = std::min(head.find("\r\n", i), head.size());
        if (!parse_head_line(head.substr(i, next - i), request)) {
            outcome.status = ParseStatus::bad_request;
            return outcome;
        }
        i = next + 2;
    }
    if (request.version == "HTTP/1.0") {
        const std::string* connection = header_find(request, "connection");
        request.wants_close = connection == nullptr || !iequals(*connection, "keep-alive");
    }
    const size_t body_start = head_end + 4;
    if (request.is_chunked_body) {
        if (request.has_content_length) {
            outcome.status = ParseStatus::bad_request;
            return outcome;
        }
        ParseOutcome body = parse_chunked_body(in.substr(body_start), request.body);
        body.consumed_bytes += body_start;
        body.is_waiting_for_body = body.status == ParseStatus::incomplete;
        return body;
    }
    if (request.content_length > body_bytes_max) {
        outcome.status = ParseStatus::too_large;
        return outcome;
    }
    if (in.size() - body_start < request.content_length) {
        outcome.is_waiting_for_body = true;
        return outcome;
    }
    request.body = std::string(in.substr(body_start, request.content_length));
    outcome.status = ParseStatus::complete;
    outcome.consumed_bytes = body_start + request.content_length;
    return outcome;
}

// ---------------------------------------------------------------------------------------
// Controls: what a request asks the mock to do (see the file header).
// ---------------------------------------------------------------------------------------

enum class Fault : uint8_t {
    none,
    reset,
    reset_early,
    truncate,
    close_early,
    stall,
    stall_early,
    bad_chunk,
    extra_bytes,
    error_event,
};
enum class Eol : uint8_t { lf, crlf, cr };
enum class UsageMode : uint8_t { automatic, none, final, finish };

struct Controls {
    uint32_t chunk_count = 3;
    uint32_t chunk_text_bytes = 4;
    bool has_text = false;
    std::string text;
    uint32_t first_byte_delay_ms = 0;
    uint32_t first_event_delay_ms = 0;
    uint32_t event_delay_ms = 0;
    uint32_t split_bytes = 0;
    uint32_t split_delay_ms = 1;
    uint32_t http_chunk_bytes = 0;
    Eol eol = Eol::lf;
    uint32_t status = 0;  // 0: answer normally.
    uint32_t retry_after_s = 1;
    bool has_retry_after_ms = false;
    uint32_t retry_after_ms = 0;
    Fault fault = Fault::none;
    bool has_fault_after = false;
    uint32_t fault_after = 0;
    bool is_connection_close = false;
    bool is_http10 = false;
    UsageMode usage = UsageMode::automatic;
    bool has_prompt_tokens = false;
    uint32_t prompt_tokens = 0;
    uint32_t cached_tokens = 0;
    uint32_t cache_write_tokens = 0;
    uint32_t reasoning_tokens = 0;
    uint32_t embedding_dims = 8;
    bool has_fail_first = false;
    uint32_t fail_first = 0;
    std::string scenario_id;
    std::vector<uint32_t> interim;  // 1xx statuses sent before the real head.
    std::string content_encoding;
    std::string transfer_encoding;
    std::string framing;  // "", "length", "chunked" or "close".
    bool is_obeying_max_tokens = false;
    std::string tool;            // The tool to call when the request offers it (else the first).
    std::string tool_arguments;  // The call's arguments (JSON text); empty: {"q":"mock"}.
    uint32_t body_read_pause_ms = 0;  // Read before the body (conn_body_hold); parsed here
    bool has_answer_early = false;    // too so that a bad value answers 400.
    uint32_t answer_early_bytes = 0;
};

constexpr std::string_view control_names[] = {
    "chunks",
    "chunk-text-bytes",
    "text",
    "first-byte-delay-ms",
    "first-event-delay-ms",
    "event-delay-ms",
    "split-bytes",
    "split-delay-ms",
    "http-chunk-bytes",
    "eol",
    "status",
    "retry-after",
    "retry-after-ms",
    "fault",
    "fault-after",
    "connection-close",
    "http10",
    "usage",
    "no-usage",
    "prompt-tokens",
    "cached-tokens",
    "cache-write-tokens",
    "reasoning-tokens",
    "embedding-dims",
    "fail-first",
    "scenario-id",
    "interim",
    "content-encoding",
    "transfer-encoding",
    "framing",
    "obey-max-tokens",
    "tool",
    "tool-arguments",
    "body-read-pause-ms",
    "answer-early",
};

bool control_is_known(std::string_view name) {
    for (const std::string_view known : control_names) {
        if (iequals(known, name)) {
            return true;
        }
    }
    return false;
}

// --default NAME=VALUE pairs, replaced as a whole by POST /__mock/defaults (a body of
// NAME=VALUE lines): a request holds the list it started with, so replacing it mid-request
// leaves its views valid.
using ControlDefaults = std::vector<std::pair<std::string, std::string>>;
std::mutex control_defaults_mutex;
std::shared_ptr<const ControlDefaults> control_defaults = std::make_shared<ControlDefaults>();

std::shared_ptr<const ControlDefaults> control_defaults_now() {
    const std::lock_guard lock(control_defaults_mutex);
    return control_defaults;
}

// Where a control's value comes from: header, then the body's "x_mock" object, then the
// CLI default. Views stay valid while the request lives.
struct ControlSource {
    const Request* request;
    std::string_view x_mock;  // Raw JSON object from the request body, or empty.
    std::shared_ptr<const ControlDefaults> defaults = control_defaults_now();

    bool lookup(std::string_view name, std::string_view& value) const {
        for (const Header& header : request->headers) {
            if (header.name.size() == 7 + name.size() && istarts_with(header.name, "x-mock-") &&
                iequals(std::string_view(header.name).substr(7), name)) {
                value = header.value;
                return true;
            }
        }
        if (!x_mock.empty() && json_object_find(x_mock, name, value)) {
            value = json_unquote(value);
            return true;
        }
        for (const auto& [default_name, default_value] : *defaults) {
            if (iequals(default_name, name)) {
                value = default_value;
                return true;
            }
        }
        return false;
    }
};

bool parse_fault(std::string_view s, Fault& fault) {
    static constexpr std::pair<std::string_view, Fault> names[] = {
        {"none", Fault::none},
        {"reset", Fault::reset},
        {"reset-early", Fault::reset_early},
        {"truncate", Fault::truncate},
        {"close-early", Fault::close_early},
        {"stall", Fault::stall},
        {"stall-early", Fault::stall_early},
        {"bad-chunk", Fault::bad_chunk},
        {"extra-bytes", Fault::extra_bytes},
        {"error-event", Fault::error_event},
    };
    for (const auto& [name, value] : names) {
        if (iequals(trim(s), name)) {
            fault = value;
            return true;
        }
    }
    return false;
}

bool controls_check_names(const ControlSource& source, std::string& error) {
    for (const Header& header : source.request->headers) {
        if (istarts_with(header.name, "x-mock-") &&
            !control_is_known(std::string_view(header.name).substr(7))) {
            error = "mock: unknown control header " + header.name;
            return false;
        }
    }
    bool is_ok = true;
    if (!source.x_mock.empty()) {
        json_object_each(source.x_mock, [&](std::string_view key, std::string_view) {
            if (is_ok && !control_is_known(key)) {
                error = "mock: unknown x_mock member " + std::string(key);
                is_ok = false;
            }
        });
    }
    return is_ok;
}

// Fills `controls` from the request. Returns false with a message for a 400 when a control
// is unknown or its value does not parse: a typo in a test must not silently pass.
bool controls_parse(const ControlSource& source, Controls& controls, std::string& error) {
    if (!controls_check_names(source, error)) {
        return false;
    }
    std::string_view value;
    bool is_ok = true;
    const auto number = [&](std::string_view name, uint32_t max, uint32_t& field, bool* has) {
        if (is_ok && source.lookup(name, value)) {
            if (!parse_u32(value, max, field)) {
                error = "mock: bad value for x-mock-" + std::string(name);
                is_ok = false;
            } else if (has != nullptr) {
                *has = true;
            }
        }
    };
    const auto flag = [&](std::string_view name, bool& field) {
        if (is_ok && source.lookup(name, value) && !parse_bool(value, field)) {
            error = "mock: bad value for x-mock-" + std::string(name);
            is_ok = false;
        }
    };
    number("chunks", chunks_max, controls.chunk_count, nullptr);
    number("chunk-text-bytes", 1 << 20, controls.chunk_text_bytes, nullptr);
    number("first-byte-delay-ms", delay_ms_max, controls.first_byte_delay_ms, nullptr);
    number("first-event-delay-ms", delay_ms_max, controls.first_event_delay_ms, nullptr);
    number("event-delay-ms", delay_ms_max, controls.event_delay_ms, nullptr);
    number("split-bytes", 1 << 30, controls.split_bytes, nullptr);
    number("split-delay-ms", delay_ms_max, controls.split_delay_ms, nullptr);
    number("http-chunk-bytes", 1 << 30, controls.http_chunk_bytes, nullptr);
    number("status", 999, controls.status, nullptr);
    number("retry-after", delay_ms_max, controls.retry_after_s, nullptr);
    number("retry-after-ms", delay_ms_max, controls.retry_after_ms, &controls.has_retry_after_ms);
    number("fault-after", 1u << 31, controls.fault_after, &controls.has_fault_after);
    number("prompt-tokens", 1u << 31, controls.prompt_tokens, &controls.has_prompt_tokens);
    number("cached-tokens", 1u << 31, controls.cached_tokens, nullptr);
    number("cache-write-tokens", 1u << 31, controls.cache_write_tokens, nullptr);
    number("reasoning-tokens", 1u << 31, controls.reasoning_tokens, nullptr);
    number("embedding-dims", embedding_dims_max, controls.embedding_dims, nullptr);
    number("fail-first", 1u << 31, controls.fail_first, &controls.has_fail_first);
    number("body-read-pause-ms", delay_ms_max, controls.body_read_pause_ms, nullptr);
    number("answer-early", body_bytes_max, controls.answer_early_bytes, &controls.has_answer_early);
    flag("connection-close", controls.is_connection_close);
    flag("http10", controls.is_http10);
    flag("obey-max-tokens", controls.is_obeying_max_tokens);
    bool is_no_usage = false;
    flag("no-usage", is_no_usage);
    if (is_ok && source.lookup("text", value)) {
        controls.has_text = true;
        controls.text = std::string(value);
    }
    if (is_ok && source.lookup("tool", value)) {
        controls.tool = std::string(trim(value));
    }
    if (is_ok && source.lookup("tool-arguments", value)) {
        controls.tool_arguments = std::string(trim(value));
    }
    if (is_ok && source.lookup("scenario-id", value)) {
        controls.scenario_id = std::string(trim(value));
    }
    if (is_ok && source.lookup("interim", value)) {
        std::string_view rest = trim(value);
        while (is_ok && !rest.empty()) {
            const size_t comma = rest.find(',');
            uint32_t status = 0;
            if (!parse_u32(rest.substr(0, comma), 199, status) || status < 100) {
                error = "mock: bad value for x-mock-interim";
                is_ok = false;
            }
            controls.interim.push_back(status);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
    }
    if (is_ok && source.lookup("content-encoding", value)) {
        controls.content_encoding = std::string(trim(value));
    }
    if (is_ok && source.lookup("transfer-encoding", value)) {
        controls.transfer_encoding = std::string(trim(value));
    }
    if (is_ok && source.lookup("framing", value)) {
        controls.framing = std::string(trim(value));
        if (controls.framing != "length" && controls.framing != "chunked" &&
            controls.framing != "close") {
            error = "mock: bad value for x-mock-framing";
            is_ok = false;
        }
    }
    if (is_ok && source.lookup("fault", value) && !parse_fault(value, controls.fault)) {
        error = "mock: bad value for x-mock-fault";
        is_ok = false;
    }
    if (is_ok && source.lookup("eol", value)) {
        value = trim(value);
        if (iequals(value, "lf")) {
            controls.eol = Eol::lf;
        } else if (iequals(value, "crlf")) {
            controls.eol = Eol::crlf;
        } else if (iequals(value, "cr")) {
            controls.eol = Eol::cr;
        } else {
            error = "mock: bad value for x-mock-eol";
            is_ok = false;
        }
    }
    if (is_ok && source.lookup("usage", value)) {
        value = trim(value);
        if (iequals(value, "auto")) {
            controls.usage = UsageMode::automatic;
        } else if (iequals(value, "none")) {
            controls.usage = UsageMode::none;
        } else if (iequals(value, "final")) {
            controls.usage = UsageMode::final;
        } else if (iequals(value, "finish")) {
            controls.usage = UsageMode::finish;
        } else {
            error = "mock: bad value for x-mock-usage";
            is_ok = false;
        }
    }
    if (is_no_usage) {
        controls.usage = UsageMode::none;
    }
    return is_ok;
}

// ---------------------------------------------------------------------------------------
// Stats shared by all loops: what tests assert on (requests per path and scenario, the
// last request's exact headers and body, connection counts for keep-alive reuse).
// ---------------------------------------------------------------------------------------

struct RecordedRequest {
    bool is_set = false;
    std::string method;
    std::string target;
    std::string path;
    std::string version;
    std::vector<Header> headers;
    bool has_content_length = false;
    uint64_t content_length = 0;
    bool is_chunked_body = false;
    uint64_t body_bytes = 0;
    std::string body;  // First recorded_body_bytes_max bytes.
};

struct Scenario {
    uint64_t request_count = 0;
    RecordedRequest last;
};

struct Stats {
    std::mutex mutex;
    uint64_t request_count = 0;  // Excludes /__mock/*.
    std::map<std::string, uint64_t> paths;
    std::map<std::string, Scenario> scenarios;
    RecordedRequest last;
    std::atomic<uint64_t> connections_accepted{0};
    std::atomic<uint64_t> connections_open{0};
    // Response pieces written after their delay (event-delay-ms and the like): a load
    // test's count of relayed events, which does not come in waves as requests do.
    std::atomic<uint64_t> delayed_writes{0};
};

Stats stats;

void record_copy(const Request& request, RecordedRequest& record) {
    record.is_set = true;
    record.method = request.method;
    record.target = request.target;
    record.path = request.path;
    record.version = request.version;
    record.headers = request.headers;
    record.has_content_length = request.has_content_length;
    record.content_length = request.content_length;
    record.is_chunked_body = request.is_chunked_body;
    record.body_bytes = request.body.size();
    record.body.assign(request.body, 0, std::min(request.body.size(), recorded_body_bytes_max));
}

// Counts the request and keeps a copy of it. Returns the scenario's request count
// including this one (1-based), which drives x-mock-fail-first.
uint64_t stats_record(const Request& request, const std::string& scenario_id) {
    const std::lock_guard lock(stats.mutex);
    stats.request_count += 1;
    stats.paths[request.path] += 1;
    record_copy(request, stats.last);
    Scenario& scenario = stats.scenarios[scenario_id];
    scenario.request_count += 1;
    record_copy(request, scenario.last);
    RW_ASSERT(scenario.request_count <= stats.request_count);
    return scenario.request_count;
}

void stats_reset() {
    const std::lock_guard lock(stats.mutex);
    stats.request_count = 0;
    stats.paths.clear();
    stats.scenarios.clear();
    stats.last = RecordedRequest{};
    stats.connections_accepted.store(0);
    stats.delayed_writes.store(0);
}

void append_recorded_json(std::string& out, const RecordedRequest& record) {
    if (!record.is_set) {
        out += "null";
        return;
    }
    const auto field = [&](std::string_view name, std::string_view text) {
        out += '"';
        out += name;
        out += "\":\"";
        append_json_escaped(out, text);
        out += "\",";
    };
    out += '{';
    field("method", record.method);
    field("target", record.target);
    field("path", record.path);
    field("version", record.version);
    // "headers": lower-cased name -> value (repeats joined by ", "); "header_list": as sent.
    std::map<std::string, std::string> by_name;
    for (const Header& header : record.headers) {
        std::string name;
        for (const char c : header.name) {
            name.push_back(lower_ascii(c));
        }
        std::string& joined = by_name[name];
        joined += joined.empty() ? "" : ", ";
        joined += header.value;
    }
    out += "\"headers\":{";
    for (const auto& [name, value] : by_name) {
        out += out.back() == '{' ? "\"" : ",\"";
        append_json_escaped(out, name);
        out += "\":\"";
        append_json_escaped(out, value);
        out += '"';
    }
    out += "},\"header_list\":[";
    for (const Header& header : record.headers) {
        out += out.back() == '[' ? "[\"" : ",[\"";
        append_json_escaped(out, header.name);
        out += "\",\"";
        append_json_escaped(out, header.value);
        out += "\"]";
    }
    out += "],\"content_length\":";
    if (record.has_content_length) {
        append_u64(out, record.content_length);
    } else {
        out += "null";
    }
    out += ",\"is_chunked\":";
    out += record.is_chunked_body ? "true" : "false";
    out += ",\"body_bytes\":";
    append_u64(out, record.body_bytes);
    out += ",\"body_truncated\":";
    out += record.body.size() < record.body_bytes ? "true" : "false";
    out += ",\"body\":\"";
    append_json_escaped(out, record.body);
    out += "\",\"body_json\":";
    const bool is_json = record.body.size() == record.body_bytes && json_is_valid(record.body);
    out += is_json ? std::string_view(record.body) : std::string_view("null");
    out += '}';
}

std::string stats_json() {
    std::string out;
    const std::lock_guard lock(stats.mutex);
    out += "{\"requests_total\":";
    append_u64(out, stats.request_count);
    out += ",\"connections_accepted\":";
    append_u64(out, stats.connections_accepted.load());
    out += ",\"connections_open\":";
    append_u64(out, stats.connections_open.load());
    out += ",\"delayed_writes\":";
    append_u64(out, stats.delayed_writes.load());
    out += ",\"paths\":{";
    for (const auto& [path, count] : stats.paths) {
        out += out.back() == '{' ? "\"" : ",\"";
        append_json_escaped(out, path);
        out += "\":";
        append_u64(out, count);
    }
    out += "},\"scenarios\":{";
    for (const auto& [id, scenario] : stats.scenarios) {
        out += out.back() == '{' ? "\"" : ",\"";
        append_json_escaped(out, id);
        out += "\":{\"requests\":";
        append_u64(out, scenario.request_count);
        out += ",\"last_request\":";
        append_recorded_json(out, scenario.last);
        out += '}';
    }
    out += "},\"last_request\":";
    append_recorded_json(out, stats.last);
    out += "}\n";
    return out;
}

// ---------------------------------------------------------------------------------------
// Replies: what an endpoint answers, before HTTP framing and faults are applied.
// ---------------------------------------------------------------------------------------

struct Reply {
    uint32_t status = 200;
    std::string content_type = "application/json";
    std::vector<Header> headers;  // Extra response headers (Retry-After, ...).
    bool is_stream = false;
    std::string body;                 // Whole body when !is_stream.
    std::vector<std::string> events;  // Complete SSE events (with their blank line) otherwise.
    std::string error_event;          // What fault=error-event sends mid-stream.
};

// What every endpoint needs to know about the request, computed once.
struct Context {
    const Request* request;
    const Controls* controls;
    std::string_view model;  // Raw JSON string contents from the body; escapes kept.
    std::string_view body_object;
    bool is_stream = false;
    bool include_usage = false;
    uint64_t prompt_tokens = 0;
    uint64_t completion_tokens = 0;
    uint64_t id = 0;
    uint64_t created_s = 0;
    std::string tool_name;  // Non-empty: answer with a call of this tool (see tool_to_call).
};

std::atomic<uint64_t> next_response_id{1};

std::string_view eol_text(Eol eol) {
    switch (eol) {
        case Eol::lf: return "\n";
        case Eol::crlf: return "\r\n";
        case Eol::cr: return "\r";
    }
    RW_UNREACHABLE();
}

void sse_push(Reply& reply, Eol eol, std::string_view event_name, std::string_view data) {
    std::string event;
    if (!event_name.empty()) {
        event += "event: ";
        event += event_name;
        event += eol_text(eol);
    }
    event += "data: ";
    event += data;
    event += eol_text(eol);
    event += eol_text(eol);
    reply.events.push_back(std::move(event));
}

void append_chunk_text(std::string& out, const Controls& controls, uint32_t chunk_index) {
    if (controls.has_text) {
        out += controls.text;
        return;
    }
    out.append(controls.chunk_text_bytes, static_cast<char>('a' + chunk_index % 26));
}

std::string full_text(const Controls& controls) {
    std::string text;
    for (uint32_t i = 0; i < controls.chunk_count; ++i) {
        append_chunk_text(text, controls, i);
    }
    return text;
}

std::string openai_usage_json(const Context& ctx) {
    std::string out = "{\"prompt_tokens\":";
    append_u64(out, ctx.prompt_tokens);
    out += ",\"completion_tokens\":";
    append_u64(out, ctx.completion_tokens);
    out += ",\"total_tokens\":";
    append_u64(out, ctx.prompt_tokens + ctx.completion_tokens);
    out += ",\"prompt_tokens_details\":{\"cached_tokens\":";
    append_u64(out, ctx.controls->cached_tokens);
    out += ",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":";
    append_u64(out, ctx.controls->reasoning_tokens);
    out +=
        ",\"audio_tokens\":0,"
        "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}";
    return out;
}

std::string object_head(const Context& ctx, std::string_view id_prefix, std::string_view object) {
    std::string out = "{\"id\":\"";
    out += id_prefix;
    append_u64(out, ctx.id);
    out += "\",\"object\":\"";
    out += object;
    out += "\",\"created\":";
    append_u64(out, ctx.created_s);
    out += ",\"model\":\"";
    out += ctx.model;
    out += "\",\"system_fingerprint\":\"fp_mock\",\"choices\":[";
    return out;
}

constexpr std::string_view openai_stream_error =
    "{\"error\":{\"message\":\"mock: injected mid-stream error\",\"type\":\"server_error\","
    "\"param\":null,\"code\":null}}";

// The items of the JSON array `s` holds (raw), or none when it is not one.
std::vector<std::string_view> json_array_items(std::string_view s) {
    std::vector<std::string_view> items;
    size_t i = json_ws(s, 0);
    if (i >= s.size() || s[i] != '[') {
        return items;
    }
    i = json_ws(s, i + 1);
    while (i < s.size() && s[i] != ']') {
        const size_t end = json_value_end(s, i, 1);
        if (end == std::string_view::npos) {
            return {};
        }
        items.push_back(s.substr(i, end - i));
        i = json_ws(s, end);
        if (i < s.size() && s[i] == ',') {
            i = json_ws(s, i + 1);
        }
    }
    return items;
}

// Tool calls, as the providers document them: a request with tools whose last message is
// not a tool's answer (chat: role "tool"; Anthropic: a user message holding a tool_result
// block) is answered with a call of the first tool (or of the tool named by the control
// `tool`, when offered), arguments {"q":"mock"} (or the control `tool-arguments`, on chat);
// a request whose last message is a tool result gets the usual text. Returns the tool's
// name or empty.
std::string tool_to_call(std::string_view body, bool is_anthropic, std::string_view wanted) {
    std::string_view tools;
    std::string_view messages;
    if (!json_object_find(body, "tools", tools) || !json_object_find(body, "messages", messages)) {
        return {};
    }
    const std::vector<std::string_view> tool_list = json_array_items(tools);
    const std::vector<std::string_view> message_list = json_array_items(messages);
    if (tool_list.empty() || message_list.empty()) {
        return {};
    }
    std::string_view value;
    const std::string_view last = message_list.back();
    if (is_anthropic) {
        if (json_object_find(last, "content", value) &&
            value.find("\"tool_result\"") != std::string_view::npos) {
            return {};
        }
    } else if (json_object_find(last, "role", value) && value == "\"tool\"") {
        return {};
    }
    std::string first;
    for (std::string_view holder : tool_list) {
        if (!is_anthropic && !json_object_find(holder, "function", holder)) {
            return {};
        }
        if (!json_object_find(holder, "name", value)) {
            return {};
        }
        const std::string name(json_unquote(value));
        if (name == wanted || wanted.empty()) {
            return name;
        }
        first = first.empty() ? name : first;
    }
    return first;
}

// A chat answer calling ctx.tool_name: whole, or streamed as OpenAI streams tool calls (the
// first delta with id, type and name, then the arguments in two pieces; finish_reason
// "tool_calls"; the usage chunk when asked for; [DONE]).
void reply_chat_tool_call(const Context& ctx, bool has_usage_chunk, Reply& reply) {
    const std::string_view arguments = ctx.controls->tool_arguments.empty()
                                           ? std::string_view(R"({"q":"mock"})")
                                           : std::string_view(ctx.controls->tool_arguments);
    std::string whole_arguments(1, '"');  // Each a JSON string.
    std::string first_half(1, '"');
    std::string second_half(1, '"');
    append_json_escaped(whole_arguments, arguments);
    append_json_escaped(first_half, arguments.substr(0, arguments.size() / 2));
    append_json_escaped(second_half, arguments.substr(arguments.size() / 2));
    whole_arguments += '"';
    first_half += '"';
    second_half += '"';
    std::string call_id = "call_mock";
    append_u64(call_id, ctx.id);
    const std::string head_call = "{\"index\":0,\"id\":\"" + call_id +
                                  "\",\"type\":\"function\",\"function\":{\"name\":\"" +
                                  ctx.tool_name + "\",\"arguments\":";
    if (!ctx.is_stream) {
        std::string out = object_head(ctx, "chatcmpl-mock", "chat.completion");
        out +=
            "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
            "\"tool_calls\":[{" +
            head_call.substr(11) + whole_arguments +
            "}}],\"refusal\":null,\"annotations\":[]},"
            "\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":" +
            openai_usage_json(ctx) + "}";
        reply.body = std::move(out);
        return;
    }
    reply.is_stream = true;
    reply.content_type = "text/event-stream; charset=utf-8";
    const std::string head = object_head(ctx, "chatcmpl-mock", "chat.completion.chunk");
    const std::string tail = has_usage_chunk ? "],\"usage\":null}" : "]}";
    const Eol eol = ctx.controls->eol;
    const auto delta = [&](const std::string& body, std::string_view finish) {
        sse_push(reply, eol, "",
                 head + "{\"index\":0,\"delta\":" + body +
                     ",\"logprobs\":null,\"finish_reason\":" + std::string(finish) + "}" + tail);
    };
    delta("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[" + head_call + "\"\"}}]}",
          "null");
    delta("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":" + first_half + "}}]}",
          "null");
    delta("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":" + second_half + "}}]}",
          "null");
    delta("{}", "\"tool_calls\"");
    if (has_usage_chunk) {
        sse_push(reply, eol, "", head + "],\"usage\":" + openai_usage_json(ctx) + "}");
    }
    sse_push(reply, eol, "", "[DONE]");
}

// Chat and legacy completions share one shape: choices with a per-choice payload, usage
// as a final choices-less chunk (or on the finish chunk), then [DONE].
void reply_openai_choices(const Context& ctx, bool is_chat, Reply& reply) {
    const Controls& controls = *ctx.controls;
    const std::string_view id_prefix = is_chat ? "chatcmpl-mock" : "cmpl-mock";
    const bool has_usage_chunk = (controls.usage == UsageMode::automatic && ctx.include_usage) ||
                                 controls.usage == UsageMode::final;
    if (is_chat && !ctx.tool_name.empty()) {
        reply_chat_tool_call(ctx, has_usage_chunk, reply);
        return;
    }
    if (!ctx.is_stream) {
        std::string out =
            object_head(ctx, id_prefix, is_chat ? "chat.completion" : "text_completion");
        const std::string text = full_text(controls);
        out += is_chat ? "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""
                       : "{\"text\":\"";
        out += text;
        out += is_chat ? "\",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
                         "\"finish_reason\":\"stop\"}]"
                       : "\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}]";
        if (controls.usage != UsageMode::none) {
            out += ",\"usage\":";
            out += openai_usage_json(ctx);
        }
        out += "}";
        reply.body = std::move(out);
        return;
    }
    reply.is_stream = true;
    reply.content_type = "text/event-stream; charset=utf-8";
    const std::string head =
        object_head(ctx, id_prefix, is_chat ? "chat.completion.chunk" : "text_completion");
    const std::string_view tail = has_usage_chunk ? "],\"usage\":null}" : "]}";
    const Eol eol = controls.eol;
    if (is_chat) {
        sse_push(reply, eol, "",
                 head +
                     "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                     "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}" +
                     std::string(tail));
    }
    for (uint32_t i = 0; i < controls.chunk_count; ++i) {
        std::string data =
            head + (is_chat ? "{\"index\":0,\"delta\":{\"content\":\"" : "{\"text\":\"");
        append_chunk_text(data, controls, i);
        data += is_chat ? "\"},\"logprobs\":null,\"finish_reason\":null}"
                        : "\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}";
        data += tail;
        sse_push(reply, eol, "", data);
    }
    std::string finish =
        head + (is_chat
                    ? "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}"
                    : "{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}");
    if (controls.usage == UsageMode::finish) {
        finish += "],\"usage\":" + openai_usage_json(ctx) + "}";
    } else {
        finish += tail;
    }
    sse_push(reply, eol, "", finish);
    if (has_usage_chunk) {
        sse_push(reply, eol, "", head + "],\"usage\":" + openai_usage_json(ctx) + "}");
    }
    sse_push(reply, eol, "", "[DONE]");
    reply.error_event = std::string("data: ") + std::string(openai_stream_error) +
                        std::string(eol_text(eol)) + std::string(eol_text(eol));
}

void reply_embeddings(const Context& ctx, Reply& reply) {
    const Controls& controls = *ctx.controls;
    std::string_view input;
    uint32_t input_count = 1;
    if (json_object_find(ctx.body_object, "input", input)) {
        const size_t first = json_ws(input, json_ws(input, 0) + 1);
        const bool is_token_array = first < input.size() && input[first] != '"' &&
                                    input[first] != '[' && input[first] != ']';
        if (input.substr(json_ws(input, 0), 1) == "[" && !is_token_array) {
            input_count = json_array_count(input);
        }
    }
    std::string_view format;
    const bool is_base64 = json_object_find(ctx.body_object, "encoding_format", format) &&
                           json_unquote(format) == "base64";
    std::string out = "{\"object\":\"list\",\"data\":[";
    std::vector<float> values(controls.embedding_dims);
    for (uint32_t i = 0; i < input_count; ++i) {
        // Multiples of 1/64 are exact in binary and print exactly with %g.
        for (uint32_t d = 0; d < controls.embedding_dims; ++d) {
            values[d] =
                static_cast<float>(static_cast<int32_t>(((i + 1) * 7 + d * 3) % 64) - 32) / 64.0f;
        }
        out += i == 0 ? "{\"object\":\"embedding\",\"index\":"
                      : ",{\"object\":\"embedding\",\"index\":";
        append_u64(out, i);
        out += ",\"embedding\":";
        if (is_base64) {
            out += '"';
            append_base64(out, reinterpret_cast<const unsigned char*>(values.data()),
                          values.size() * sizeof(float));
            out += '"';
        } else {
            out += '[';
            for (uint32_t d = 0; d < controls.embedding_dims; ++d) {
                char text[32];
                std::snprintf(text, sizeof(text), d == 0 ? "%g" : ",%g",
                              static_cast<double>(values[d]));
                out += text;
            }
            out += ']';
        }
        out += '}';
    }
    out += "],\"model\":\"";
    out += ctx.model;
    out += "\"";
    if (controls.usage != UsageMode::none) {
        out += ",\"usage\":{\"prompt_tokens\":";
        append_u64(out, ctx.prompt_tokens);
        out += ",\"total_tokens\":";
        append_u64(out, ctx.prompt_tokens);
        out += '}';
    }
    out += '}';
    reply.body = std::move(out);
}

// The Responses API object; `status` is "in_progress" (no output, usage null) or
// "completed" (full output and usage unless usage is none).
std::string responses_object(const Context& ctx, bool is_completed) {
    std::string out = "{\"id\":\"resp_mock";
    append_u64(out, ctx.id);
    out += "\",\"object\":\"response\",\"created_at\":";
    append_u64(out, ctx.created_s);
    out += is_completed ? ",\"status\":\"completed\"" : ",\"status\":\"in_progress\"";
    out +=
        ",\"background\":false,\"error\":null,\"incomplete_details\":null,\"instructions\":null,"
        "\"max_output_tokens\":null,\"model\":\"";
    out += ctx.model;
    out += "\",\"output\":[";
    if (is_completed) {
        out += "{\"id\":\"msg_mock";
        append_u64(out, ctx.id);
        out +=
            "\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":"
            "[{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"";
        out += full_text(*ctx.controls);
        out += "\"}]}";
    }
    out +=
        "],\"parallel_tool_calls\":true,\"previous_response_id\":null,\"reasoning\":"
        "{\"effort\":null,\"summary\":null},\"store\":";
    // As OpenAI: stored unless the request says "store": false.
    std::string_view store;
    out +=
        json_object_find(ctx.request->body, "store", store) && store == "false" ? "false" : "true";
    out +=
        ",\"temperature\":1.0,\"text\":"
        "{\"format\":{\"type\":\"text\"}},\"tool_choice\":\"auto\",\"tools\":[],\"top_p\":1.0,"
        "\"truncation\":\"disabled\",\"usage\":";
    if (is_completed && ctx.controls->usage != UsageMode::none) {
        out += "{\"input_tokens\":";
        append_u64(out, ctx.prompt_tokens);
        out += ",\"input_tokens_details\":{\"cached_tokens\":";
        append_u64(out, ctx.controls->cached_tokens);
        out += "},\"output_tokens\":";
        append_u64(out, ctx.completion_tokens);
        out += ",\"output_tokens_details\":{\"reasoning_tokens\":";
        append_u64(out, ctx.controls->reasoning_tokens);
        out += "},\"total_tokens\":";
        append_u64(out, ctx.prompt_tokens + ctx.completion_tokens);
        out += '}';
    } else {
        out += "null";
    }
    out += ",\"user\":null,\"metadata\":{}}";
    return out;
}

// Streaming order follows OpenAI: created, in_progress, output_item.added,
// content_part.added, output_text.delta x C, output_text.done, content_part.done,
// output_item.done, completed. Every event carries type and sequence_number; no [DONE].
void reply_responses(const Context& ctx, Reply& reply) {
    if (!ctx.is_stream) {
        reply.body = responses_object(ctx, true);
        return;
    }
    reply.is_stream = true;
    reply.content_type = "text/event-stream; charset=utf-8";
    const Controls& controls = *ctx.controls;
    uint64_t sequence = 0;
    std::string item_id = "msg_mock";
    append_u64(item_id, ctx.id);
    const auto push = [&](std::string_view type, const std::string& fields) {
        std::string data = "{\"type\":\"";
        data += type;
        data += "\",\"sequence_number\":";
        append_u64(data, sequence++);
        data += fields;
        data += '}';
        sse_push(reply, controls.eol, type, data);
    };
    const std::string in_progress = responses_object(ctx, false);
    const std::string item_ref =
        ",\"item_id\":\"" + item_id + "\",\"output_index\":0,\"content_index\":0";
    const std::string text = full_text(controls);
    push("response.created", ",\"response\":" + in_progress);
    push("response.in_progress", ",\"response\":" + in_progress);
    push("response.output_item.added", ",\"output_index\":0,\"item\":{\"id\":\"" + item_id +
                                           "\",\"type\":\"message\",\"status\":\"in_progress\","
                                           "\"role\":\"assistant\",\"content\":[]}");
    push("response.content_part.added", item_ref +
                                            ",\"part\":{\"type\":\"output_text\","
                                            "\"annotations\":[],\"logprobs\":[],\"text\":\"\"}");
    for (uint32_t i = 0; i < controls.chunk_count; ++i) {
        std::string fields = item_ref + ",\"delta\":\"";
        append_chunk_text(fields, controls, i);
        fields += "\",\"logprobs\":[]";
        push("response.output_text.delta", fields);
    }
    push("response.output_text.done", item_ref + ",\"text\":\"" + text + "\",\"logprobs\":[]");
    push("response.content_part.done", item_ref +
                                           ",\"part\":{\"type\":\"output_text\","
                                           "\"annotations\":[],\"logprobs\":[],\"text\":\"" +
                                           text + "\"}");
    push("response.output_item.done", ",\"output_index\":0,\"item\":{\"id\":\"" + item_id +
                                          "\",\"type\":\"message\",\"status\":\"completed\","
                                          "\"role\":\"assistant\",\"content\":[{\"type\":"
                                          "\"output_text\",\"annotations\":[],\"logprobs\":[],"
                                          "\"text\":\"" +
                                          text + "\"}]}");
    push("response.completed", ",\"response\":" + responses_object(ctx, true));
    std::string error = "{\"type\":\"error\",\"sequence_number\":";
    append_u64(error, sequence);
    error +=
        ",\"code\":\"server_error\",\"message\":\"mock: injected mid-stream "
        "error\",\"param\":null}";
    Reply error_reply;
    sse_push(error_reply, controls.eol, "error", error);
    reply.error_event = std::move(error_reply.events.front());
}

// Anthropic Messages: usage.input_tokens in message_start, cumulative output_tokens in
// message_delta. x-mock-usage none drops both usage objects.
void reply_messages(const Context& ctx, Reply& reply) {
    const Controls& controls = *ctx.controls;
    const bool has_usage = controls.usage != UsageMode::none;
    std::string id = "msg_mock";
    append_u64(id, ctx.id);
    const auto usage_json = [&](uint64_t output_tokens) {
        std::string out = ",\"usage\":{\"input_tokens\":";
        append_u64(out, ctx.prompt_tokens);
        out += ",\"cache_creation_input_tokens\":";
        append_u64(out, ctx.controls->cache_write_tokens);
        out += ",\"cache_read_input_tokens\":";
        append_u64(out, ctx.controls->cached_tokens);
        out += ",\"output_tokens\":";
        append_u64(out, output_tokens);
        out += '}';
        return out;
    };
    const std::string message_head = "{\"id\":\"" + id +
                                     "\",\"type\":\"message\",\"role\":\"assistant\","
                                     "\"model\":\"" +
                                     std::string(ctx.model) + "\",\"content\":[";
    std::string tool_id = "toolu_mock";
    append_u64(tool_id, ctx.id);
    const bool is_tool_call = !ctx.tool_name.empty();
    const std::string tool_block = "{\"type\":\"tool_use\",\"id\":\"" + tool_id + "\",\"name\":\"" +
                                   ctx.tool_name + "\",\"input\":";
    const std::string stop_reason = is_tool_call ? "tool_use" : "end_turn";
    if (!ctx.is_stream && is_tool_call) {
        reply.body = message_head + tool_block +
                     "{\"q\":\"mock\"}}],\"stop_reason\":\"tool_use\","
                     "\"stop_sequence\":null" +
                     (has_usage ? usage_json(ctx.completion_tokens) : std::string()) + "}";
        return;
    }
    if (!ctx.is_stream) {
        reply.body = message_head + "{\"type\":\"text\",\"text\":\"" + full_text(controls) +
                     "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null" +
                     (has_usage ? usage_json(ctx.completion_tokens) : std::string()) + "}";
        return;
    }
    reply.is_stream = true;
    reply.content_type = "text/event-stream; charset=utf-8";
    const Eol eol = controls.eol;
    sse_push(
        reply, eol, "message_start",
        "{\"type\":\"message_start\",\"message\":" + message_head +
            "],\"stop_reason\":null,\"stop_sequence\":null" +
            (has_usage ? usage_json(std::min<uint64_t>(1, ctx.completion_tokens)) : std::string()) +
            "}}");
    sse_push(reply, eol, "content_block_start",
             "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":" +
                 (is_tool_call ? tool_block + "{}}}"
                               : std::string("{\"type\":\"text\",\"text\":\"\"}}")));
    sse_push(reply, eol, "ping", "{\"type\":\"ping\"}");
    if (is_tool_call) {
        for (const std::string_view piece : {"", "{\\\"q\\\":", "\\\"mock\\\"}"}) {
            sse_push(reply, eol, "content_block_delta",
                     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                     "\"input_json_delta\",\"partial_json\":\"" +
                         std::string(piece) + "\"}}");
        }
    }
    for (uint32_t i = 0; i < (is_tool_call ? 0 : controls.chunk_count); ++i) {
        std::string data =
            "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
            "\"text\":\"";
        append_chunk_text(data, controls, i);
        data += "\"}}";
        sse_push(reply, eol, "content_block_delta", data);
    }
    sse_push(reply, eol, "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}");
    std::string delta = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" + stop_reason +
                        "\",\"stop_sequence\":null}";
    if (has_usage) {
        delta += ",\"usage\":{\"output_tokens\":";
        append_u64(delta, ctx.completion_tokens);
        delta += '}';
    }
    delta += '}';
    sse_push(reply, eol, "message_delta", delta);
    sse_push(reply, eol, "message_stop", "{\"type\":\"message_stop\"}");
    Reply error_reply;
    sse_push(error_reply, eol, "error",
             "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
             "\"Overloaded\"}}");
    reply.error_event = std::move(error_reply.events.front());
}

// ---------------------------------------------------------------------------------------
// Images, audio speech, moderations and rerank (protocols-endpoints), shaped as the
// providers document them.
// ---------------------------------------------------------------------------------------

// POST /v1/images/generations: one data item per "n" (default 1). With usage (the default)
// gpt-image's answer: size/quality/output_format and usage {input_tokens, output_tokens
// (completion tokens x n), total_tokens, input_tokens_details}; with usage none dall-e's:
// {"created","data":[{"url","revised_prompt"}]}.
// A streamed image ("stream": true; edits too): x-mock-chunks - 1 partial_image events, then
// the completed one with gpt-image's usage at its root (none under usage none), as
// OpenAI's image_generation.* / image_edit.* events.
void reply_image_stream(const Context& ctx, std::string_view prefix, Reply& reply) {
    const Controls& controls = *ctx.controls;
    reply.is_stream = true;
    reply.content_type = "text/event-stream; charset=utf-8";
    constexpr std::string_view pixel =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+"
        "M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    for (uint32_t i = 0; i + 1 < controls.chunk_count; ++i) {
        const std::string type = std::string(prefix) + ".partial_image";
        std::string data = "{\"type\":\"" + type + "\",\"b64_json\":\"" + std::string(pixel) +
                           "\",\"partial_image_index\":";
        append_u64(data, i);
        data += "}";
        sse_push(reply, controls.eol, type, data);
    }
    const std::string type = std::string(prefix) + ".completed";
    std::string data =
        "{\"type\":\"" + type + "\",\"b64_json\":\"" + std::string(pixel) + "\",\"created_at\":";
    append_u64(data, ctx.created_s);
    data +=
        ",\"size\":\"1024x1024\",\"quality\":\"low\",\"background\":\"opaque\","
        "\"output_format\":\"png\"";
    if (controls.usage != UsageMode::none) {
        data += ",\"usage\":{\"total_tokens\":";
        append_u64(data, ctx.prompt_tokens + ctx.completion_tokens);
        data += ",\"input_tokens\":";
        append_u64(data, ctx.prompt_tokens);
        data += ",\"output_tokens\":";
        append_u64(data, ctx.completion_tokens);
        data += ",\"input_tokens_details\":{\"text_tokens\":";
        append_u64(data, ctx.prompt_tokens);
        data += ",\"image_tokens\":0}}";
    }
    data += "}";
    sse_push(reply, controls.eol, type, data);
}

void reply_images(const Context& ctx, Reply& reply) {
    if (ctx.is_stream) {
        reply_image_stream(ctx, "image_generation", reply);
        return;
    }
    std::string_view value;
    uint64_t count = 1;
    if (json_object_find(ctx.body_object, "n", value)) {
        uint64_t parsed = 0;
        if (parse_u64(trim(value), parsed) && parsed > 0 && parsed <= 10) {
            count = parsed;
        }
    }
    const bool has_usage = ctx.controls->usage != UsageMode::none;
    std::string out = "{\"created\":";
    append_u64(out, ctx.created_s);
    out += ",\"data\":[";
    for (uint64_t i = 0; i < count; ++i) {
        out += i == 0 ? "" : ",";
        if (has_usage) {
            out += "{\"b64_json\":\"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk";
            out += "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\"}";
        } else {
            out += "{\"url\":\"https://mock.invalid/img-";
            append_u64(out, ctx.id * 16 + i);
            out += ".png\",\"revised_prompt\":\"a mock image\"}";
        }
    }
    out += "]";
    if (has_usage) {
        const uint64_t output_tokens = ctx.completion_tokens * count;
        out +=
            ",\"background\":\"opaque\",\"output_format\":\"png\",\"quality\":\"low\","
            "\"size\":\"1024x1024\",\"usage\":{\"total_tokens\":";
        append_u64(out, ctx.prompt_tokens + output_tokens);
        out += ",\"input_tokens\":";
        append_u64(out, ctx.prompt_tokens);
        out += ",\"output_tokens\":";
        append_u64(out, output_tokens);
        out += ",\"input_tokens_details\":{\"text_tokens\":";
        append_u64(out, ctx.prompt_tokens);
        out += ",\"image_tokens\":0}}";
    }
    out += "}";
    reply.body = std::move(out);
}

// POST /v1/audio/speech: the audio bytes, x-mock-chunks pieces of x-mock-chunk-text-bytes
// bytes (binary: every byte value, "\n\n" and "data:" included), Content-Type by
// response_format (mp3 default). Sent chunked as OpenAI does, piece by piece (event-delay-ms,
// first-event-delay-ms apply); framing length sends it whole with Content-Length.
void reply_speech(const Context& ctx, Reply& reply) {
    const Controls& controls = *ctx.controls;
    std::string_view format = "mp3";
    std::string_view value;
    if (json_object_find(ctx.body_object, "response_format", value)) {
        format = json_unquote(value);
    }
    reply.content_type = format == "wav"    ? "audio/wav"
                         : format == "opus" ? "audio/opus"
                         : format == "aac"  ? "audio/aac"
                         : format == "flac" ? "audio/flac"
                         : format == "pcm"  ? "audio/pcm"
                                            : "audio/mpeg";
    if (json_object_find(ctx.body_object, "stream_format", value) && json_unquote(value) == "sse") {
        // OpenAI's SSE speech: speech.audio.delta events (base64 audio), then
        // speech.audio.done with the usage (none under usage none).
        reply.is_stream = true;
        reply.content_type = "text/event-stream; charset=utf-8";
        for (uint32_t piece = 0; piece < controls.chunk_count; ++piece) {
            sse_push(reply, controls.eol, "speech.audio.delta",
                     "{\"type\":\"speech.audio.delta\",\"audio\":\"SUQzBAAAAAAA\"}");
        }
        std::string done = "{\"type\":\"speech.audio.done\"";
        if (controls.usage != UsageMode::none) {
            done += ",\"usage\":{\"input_tokens\":";
            append_u64(done, ctx.prompt_tokens);
            done += ",\"output_tokens\":";
            append_u64(done, ctx.completion_tokens);
            done += ",\"total_tokens\":";
            append_u64(done, ctx.prompt_tokens + ctx.completion_tokens);
            done += "}";
        }
        done += "}";
        sse_push(reply, controls.eol, "speech.audio.done", done);
        return;
    }
    static constexpr std::string_view tricky = "\n\ndata: {\"usage\":{\"input_tokens\":9}}\n\n";
    uint64_t n = 0;
    for (uint32_t piece = 0; piece < controls.chunk_count; ++piece) {
        std::string bytes;
        bytes.reserve(controls.chunk_text_bytes);
        for (uint32_t i = 0; i < controls.chunk_text_bytes; ++i, ++n) {
            bytes += n % 256 < tricky.size() ? tricky[n % 256] : static_cast<char>(n * 31 + 7);
        }
        reply.events.push_back(std::move(bytes));
    }
    if (controls.framing == "length") {
        for (const std::string& piece : reply.events) {
            reply.body += piece;
        }
        reply.events.clear();
        return;
    }
    reply.is_stream = true;
}

// POST /v1/moderations: one result per input (a string: one), no usage, as OpenAI answers.
void reply_moderations(const Context& ctx, Reply& reply) {
    std::string_view input;
    uint32_t count = 1;
    if (json_object_find(ctx.body_object, "input", input) &&
        input.substr(json_ws(input, 0), 1) == "[") {
        count = std::max<uint32_t>(1, json_array_count(input));
    }
    std::string out = "{\"id\":\"modr-mock";
    append_u64(out, ctx.id);
    out += "\",\"model\":\"";
    out += ctx.model;
    out += "\",\"results\":[";
    for (uint32_t i = 0; i < count; ++i) {
        out += i == 0 ? "" : ",";
        out +=
            "{\"flagged\":false,\"categories\":{\"harassment\":false,\"hate\":false,"
            "\"self-harm\":false,\"sexual\":false,\"violence\":false},\"category_scores\":{"
            "\"harassment\":0.0001,\"hate\":0.0001,\"self-harm\":0.0001,\"sexual\":0.0001,"
            "\"violence\":0.0001},\"category_applied_input_types\":{\"harassment\":[\"text\"],"
            "\"hate\":[\"text\"],\"self-harm\":[\"text\"],\"sexual\":[\"text\"],"
            "\"violence\":[\"text\"]}}";
    }
    out += "]}";
    reply.body = std::move(out);
}

// POST /v1/rerank: one result per document, best first. With usage Jina's and vLLM's
// answer ({"usage":{"total_tokens":N}}, N the prompt-token formula); with usage none
// Cohere's (meta.billed_units, no token usage).
void reply_rerank(const Context& ctx, Reply& reply) {
    std::string_view documents;
    uint32_t count = 0;
    if (json_object_find(ctx.body_object, "documents", documents)) {
        count = json_array_count(documents);
    }
    std::string out = "{\"id\":\"rerank-mock";
    append_u64(out, ctx.id);
    out += "\",\"model\":\"";
    out += ctx.model;
    out += "\",\"results\":[";
    for (uint32_t i = 0; i < count; ++i) {
        out += i == 0 ? "{\"index\":" : ",{\"index\":";
        append_u64(out, i);
        char score[64];
        std::snprintf(score, sizeof(score), ",\"relevance_score\":%g}",
                      1.0 / static_cast<double>(i + 1));
        out += score;
    }
    out += "]";
    if (ctx.controls->usage != UsageMode::none) {
        out += ",\"usage\":{\"total_tokens\":";
        append_u64(out, ctx.prompt_tokens);
        out += "}";
    } else {
        out += ",\"meta\":{\"billed_units\":{\"search_units\":1}}";
    }
    out += "}";
    reply.body = std::move(out);
}

// The endpoints above: true when path is one of them (reply written).
bool reply_more_endpoints(const Context& ctx, std::string_view path, Reply& reply) {
    if (path == "/v1/images/generations") {
        reply_images(ctx, reply);
    } else if (path == "/v1/audio/speech") {
        reply_speech(ctx, reply);
    } else if (path == "/v1/moderations") {
        reply_moderations(ctx, reply);
    } else if (path == "/v1/rerank") {
        reply_rerank(ctx, reply);
    } else {
        return false;
    }
    return true;
}

// The value of a multipart part named `name` (empty when absent), scanning the whole body.
std::string_view multipart_part(std::string_view body, std::string_view boundary,
                                std::string_view name) {
    const std::string delimiter = "--" + std::string(boundary);
    size_t at = body.find(delimiter);
    while (at != std::string_view::npos) {
        const size_t headers_begin = at + delimiter.size() + 2;
        const size_t headers_end = body.find("\r\n\r\n", headers_begin);
        if (headers_end == std::string_view::npos) {
            return {};
        }
        const size_t next = body.find("\r\n" + delimiter, headers_end + 4);
        if (next == std::string_view::npos) {
            return {};
        }
        const std::string_view headers = body.substr(headers_begin, headers_end - headers_begin);
        if (headers.find("name=\"" + std::string(name) + "\"") != std::string_view::npos) {
            return body.substr(headers_end + 4, next - headers_end - 4);
        }
        at = next + 2;
    }
    return {};
}

// POST /v1/audio/transcriptions, /translations, /v1/images/edits (multipart/form-data):
// what arrived, so a test can check that the upload passed unchanged: upload_bytes and
// upload_fnv1a (FNV-1a 64 of the whole body, hex), the model part, file_bytes and
// file_fnv1a (the file part's). Transcriptions with usage (the default): gpt-4o-transcribe's
// {"type":"tokens","input_tokens","output_tokens","total_tokens"} (input: the prompt-token
// formula over the file part; output: the completion tokens); usage none (or a part
// x_mock_usage=none, as ringway relays no x-mock-* header): whisper-1's
// {"type":"duration","seconds":3}. Images edits: gpt-image's answer (reply_images).
// Returns an error message for a body that is not such an upload (answered 400), or empty.
std::string reply_upload(const Request& request, const Controls& controls, std::string_view path,
                         Reply& reply) {
    const std::string* content_type = header_find(request, "content-type");
    const std::string_view type =
        content_type != nullptr ? std::string_view(*content_type) : std::string_view();
    const size_t boundary_at = type.find("boundary=");
    if (!type.starts_with("multipart/form-data") || boundary_at == std::string_view::npos) {
        return "mock: expected multipart/form-data";
    }
    std::string_view boundary = type.substr(boundary_at + 9);
    if (boundary.size() >= 2 && boundary.front() == '"') {
        boundary = boundary.substr(1, boundary.size() - 2);
    }
    const std::string_view body = request.body;
    const std::string_view model = multipart_part(body, boundary, "model");
    const std::string_view file =
        multipart_part(body, boundary, path == "/v1/images/edits" ? "image" : "file");
    if (model.empty()) {
        return "mock: no model part";
    }
    const auto fnv1a = [](std::string_view bytes) {
        uint64_t hash = 0xcbf29ce484222325ull;
        for (const char c : bytes) {
            hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
        }
        char text[24];
        std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
        return std::string(text);
    };
    const uint64_t prompt_tokens =
        controls.has_prompt_tokens ? controls.prompt_tokens : (file.size() + 3) / 4;
    std::string out = "{\"text\":\"mock transcript\",\"model\":\"";
    out += model;
    out += "\",\"upload_bytes\":";
    append_u64(out, body.size());
    out += ",\"upload_fnv1a\":\"";
    out += fnv1a(body);
    out += "\",\"file_bytes\":";
    append_u64(out, file.size());
    out += ",\"file_fnv1a\":\"";
    out += fnv1a(file);
    out += "\"";
    if (path == "/v1/images/edits") {
        out += ",\"created\":1700000000,\"data\":[{\"b64_json\":\"iVBORw0KGgo=\"}]";
    }
    // A client that cannot send x-mock-* headers (ringway relays none) names it in a part.
    if (controls.usage == UsageMode::none ||
        multipart_part(body, boundary, "x_mock_usage") == "none") {
        out += path == "/v1/images/edits" ? "" : ",\"usage\":{\"type\":\"duration\",\"seconds\":3}";
    } else {
        const uint64_t output_tokens = controls.chunk_count;
        out += ",\"usage\":{\"type\":\"tokens\",\"input_tokens\":";
        append_u64(out, prompt_tokens);
        out += ",\"output_tokens\":";
        append_u64(out, output_tokens);
        out += ",\"total_tokens\":";
        append_u64(out, prompt_tokens + output_tokens);
        out += "}";
    }
    out += "}";
    reply.body = std::move(out);
    return {};
}

bool is_upload_endpoint(std::string_view path) {
    return path == "/v1/audio/transcriptions" || path == "/v1/audio/translations" ||
           path == "/v1/images/edits";
}

bool is_more_endpoint(std::string_view path) {
    return path == "/v1/images/generations" || path == "/v1/audio/speech" ||
           path == "/v1/moderations" || path == "/v1/rerank";
}

void reply_models(Reply& reply) {
    reply.body =
        "{\"object\":\"list\",\"data\":[{\"id\":\"mock-model\",\"object\":\"model\",\"created\":"
        "1700000000,"
        "\"owned_by\":\"mock\"},{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":"
        "1700000000,"
        "\"owned_by\":\"mock\"}]}";
}

// "sk-abcdef...wxyz" -> "sk-a*****wxyz", the way OpenAI echoes a rejected key.
std::string mask_key(const Request& request) {
    std::string key;
    if (const std::string* authorization = header_find(request, "authorization")) {
        key = *authorization;
        if (istarts_with(key, "Bearer ")) {
            key = std::string(trim(std::string_view(key).substr(7)));
        }
    } else if (const std::string* api_key = header_find(request, "x-api-key")) {
        key = *api_key;
    }
    if (key.size() <= 8) {
        return "***";
    }
    return key.substr(0, 4) + "*****" + key.substr(key.size() - 4);
}

// An error reply in the endpoint's own dialect. `message` overrides the canned text.
void reply_error(const Request& request, const Controls& controls, uint32_t status,
                 std::string_view message, Reply& reply) {
    RW_ASSERT(status >= 400);
    reply = Reply{};
    reply.status = status;
    std::string text(message);
    std::string_view type = "server_error";
    std::string_view code = "null";
    std::string_view anthropic_type = "api_error";
    switch (status) {
        case 400:
            type = "invalid_request_error";
            anthropic_type = "invalid_request_error";
            break;
        case 401:
            if (text.empty()) {
                text =
                    "Incorrect API key provided: " + mask_key(request) +
                    ". You can find your API key at https://platform.openai.com/account/api-keys.";
            }
            type = "invalid_request_error";
            code = "\"invalid_api_key\"";
            anthropic_type = "authentication_error";
            break;
        case 403:
            type = "invalid_request_error";
            anthropic_type = "permission_error";
            break;
        case 404:
            if (text.empty()) {
                text = "The model does not exist or you do not have access to it.";
                code = "\"model_not_found\"";
            }
            type = "invalid_request_error";
            anthropic_type = "not_found_error";
            break;
        case 429:
            if (text.empty()) {
                text = "Rate limit reached for requests. Please try again in 1s.";
            }
            type = "requests";
            code = "\"rate_limit_exceeded\"";
            anthropic_type = "rate_limit_error";
            break;
        case 503:
        case 529:
            if (text.empty()) {
                text = request.path == "/v1/messages"
                           ? "Overloaded"
                           : "The engine is currently overloaded, please try again later.";
            }
            anthropic_type = "overloaded_error";
            break;
        default: break;
    }
    if (text.empty()) {
        text = status >= 500
                   ? "The server had an error while processing your request. Sorry about that!"
                   : "mock: error status";
    }
    if (status == 429 || status == 503 || status == 529) {
        std::string seconds;
        append_u64(seconds, controls.retry_after_s);
        reply.headers.push_back(Header{"Retry-After", seconds});
        if (controls.has_retry_after_ms) {
            std::string milliseconds;
            append_u64(milliseconds, controls.retry_after_ms);
            reply.headers.push_back(Header{"retry-after-ms", milliseconds});
        }
    }
    std::string out;
    if (request.path.starts_with("/v1/messages")) {
        out = "{\"type\":\"error\",\"error\":{\"type\":\"" + std::string(anthropic_type) +
              "\",\"message\":\"";
        append_json_escaped(out, text);
        out += "\"}}";
    } else {
        out = "{\"error\":{\"message\":\"";
        append_json_escaped(out, text);
        out += "\",\"type\":\"" + std::string(type) +
               "\",\"param\":null,\"code\":" + std::string(code) + "}}";
    }
    reply.body = std::move(out);
}

// ---------------------------------------------------------------------------------------
// Plans: a reply turned into timed wire writes plus what to do with the connection after.
// ---------------------------------------------------------------------------------------

enum class After : uint8_t { keep_alive, close, close_abrupt, reset, stall };

struct Step {
    std::string bytes;
    uint32_t delay_ms = 0;           // Waited before these bytes are written.
    bool is_separate_write = false;  // Never coalesced with neighbours (split-bytes).
};

struct Plan {
    std::vector<Step> steps;
    After after = After::keep_alive;
};

std::string_view reason_phrase(uint32_t status) {
    switch (status) {
        case 200: return "OK";
        case 204: return "No Content";
        case 304: return "Not Modified";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Payload Too Large";
        case 422: return "Unprocessable Entity";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 529: return "Overloaded";
        default: return "Status";
    }
}

enum class Framing : uint8_t { content_length, chunked, until_close };

// The interim heads a test asked for (x-mock-interim), in order.
std::string interim_heads(const Controls& controls) {
    std::string out;
    for (const uint32_t status : controls.interim) {
        out += "HTTP/1.1 ";
        append_u64(out, status);
        if (status == 100) {
            out += " Continue\r\n\r\n";
        } else if (status == 101) {
            out += " Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        } else if (status == 103) {
            out += " Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n";
        } else {
            out += " Interim\r\n\r\n";
        }
    }
    return out;
}

std::string response_head(const Reply& reply, const Controls& controls, Framing framing,
                          uint64_t content_length, bool is_closing, bool is_keep_alive_10) {
    std::string out = interim_heads(controls);
    out += controls.is_http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    append_u64(out, reply.status);
    out += ' ';
    out += reason_phrase(reply.status);
    out += "\r\nServer: mock_upstream\r\nContent-Type: ";
    out += reply.content_type;
    out += "\r\n";
    if (!controls.transfer_encoding.empty()) {
        out += "Transfer-Encoding: " + controls.transfer_encoding + "\r\n";
    } else if (framing == Framing::content_length) {
        out += "Content-Length: ";
        append_u64(out, content_length);
        out += "\r\n";
    } else if (framing == Framing::chunked) {
        out += "Transfer-Encoding: chunked\r\n";
    }
    if (!controls.content_encoding.empty()) {
        out += "Content-Encoding: " + controls.content_encoding + "\r\n";
    }
    if (reply.is_stream) {
        out += "Cache-Control: no-cache\r\n";
    }
    for (const Header& header : reply.headers) {
        out += header.name + ": " + header.value + "\r\n";
    }
    if (is_closing && !controls.is_http10) {
        out += "Connection: close\r\n";
    } else if (!is_closing && is_keep_alive_10) {
        out += "Connection: keep-alive\r\n";  // An HTTP/1.0 client asked to keep it.
    }
    out += "\r\n";
    return out;
}

void append_http_chunk(std::string& out, std::string_view data) {
    if (data.empty()) {
        return;  // A zero-size chunk would end the body.
    }
    append_hex(out, data.size());
    out += "\r\n";
    out += data;
    out += "\r\n";
}

// Frames body pieces for the chosen transfer encoding. With http_chunk_bytes set, pieces
// are re-cut into fixed-size chunks and a remainder waits for the next piece.
struct Framer {
    Framing framing;
    uint32_t chunk_bytes;
    std::string carry;

    std::string frame(std::string_view piece) {
        if (framing != Framing::chunked) {
            return std::string(piece);
        }
        std::string out;
        if (chunk_bytes == 0) {
            append_http_chunk(out, piece);
            return out;
        }
        carry += piece;
        size_t i = 0;
        for (; carry.size() - i >= chunk_bytes; i += chunk_bytes) {
            append_http_chunk(out, std::string_view(carry).substr(i, chunk_bytes));
        }
        carry.erase(0, i);
        return out;
    }

    std::string finish() {
        std::string out;
        if (framing == Framing::chunked) {
            append_http_chunk(out, carry);
            carry.clear();
            out += "0\r\n\r\n";
        }
        return out;
    }
};

void plan_stream(const Reply& reply, const Controls& controls, bool is_closing,
                 bool is_keep_alive_10, Plan& plan) {
    const Framing framing =
        controls.is_http10 || controls.framing == "close" ? Framing::until_close : Framing::chunked;
    Framer framer{framing, controls.http_chunk_bytes, {}};
    const Fault fault = controls.fault;
    const bool is_cut = fault == Fault::reset || fault == Fault::truncate ||
                        fault == Fault::stall || fault == Fault::bad_chunk ||
                        fault == Fault::error_event;
    const size_t event_count =
        is_cut ? std::min<size_t>(reply.events.size(),
                                  controls.has_fault_after ? controls.fault_after : 2)
               : reply.events.size();
    plan.steps.push_back(
        Step{response_head(reply, controls, framing, 0, is_closing, is_keep_alive_10),
             controls.first_byte_delay_ms, false});
    for (size_t i = 0; i < event_count; ++i) {
        plan.steps.push_back(Step{framer.frame(reply.events[i]),
                                  i == 0 ? controls.first_event_delay_ms : controls.event_delay_ms,
                                  false});
    }
    switch (fault) {
        case Fault::reset: plan.after = After::reset; return;
        case Fault::truncate: plan.after = After::close_abrupt; return;
        case Fault::stall: plan.after = After::stall; return;
        case Fault::bad_chunk:
            plan.steps.push_back(Step{"zz\r\nnot-a-chunk\r\n", controls.event_delay_ms, false});
            plan.after = After::close_abrupt;
            return;
        case Fault::error_event:
            plan.steps.push_back(
                Step{framer.frame(reply.error_event), controls.event_delay_ms, false});
            break;
        default: break;
    }
    plan.steps.push_back(Step{framer.finish(), 0, false});
    if (fault == Fault::extra_bytes) {
        plan.steps.push_back(Step{std::string(extra_junk), 0, false});
    }
}

// A whole answer framed otherwise than by Content-Length (x-mock-framing chunked|close or
// x-mock-transfer-encoding). A coding list that ends in chunked is chunk-framed once;
// anything else is sent raw and the connection closes.
void plan_whole_framed(const Reply& reply, const Controls& controls, bool is_closing,
                       bool is_keep_alive_10, Plan& plan) {
    const std::string& coding = controls.transfer_encoding;
    const bool is_chunked =
        coding.empty() ? controls.framing == "chunked"
                       : coding.size() >= 7 && iequals(coding.substr(coding.size() - 7), "chunked");
    const Framing framing = is_chunked ? Framing::chunked : Framing::until_close;
    const bool is_ending_with_close = is_closing || framing == Framing::until_close;
    std::string out =
        response_head(reply, controls, framing, 0, is_ending_with_close, is_keep_alive_10);
    if (is_chunked) {
        append_http_chunk(out, reply.body);
        out += "0\r\n\r\n";
    } else {
        out += reply.body;
    }
    plan.steps.push_back(Step{std::move(out), controls.first_byte_delay_ms, false});
    plan.after = is_ending_with_close ? After::close : After::keep_alive;
}

void plan_whole(const Reply& reply, const Controls& controls, bool is_closing,
                bool is_keep_alive_10, Plan& plan) {
    const std::string& body = reply.body;
    const Fault fault = controls.fault;
    const size_t sent_bytes = std::min<size_t>(
        body.size(), controls.has_fault_after ? controls.fault_after : body.size() / 2);
    if (fault == Fault::bad_chunk) {
        std::string out =
            response_head(reply, controls, Framing::chunked, 0, is_closing, is_keep_alive_10);
        append_http_chunk(out, std::string_view(body).substr(0, sent_bytes));
        out += "zz\r\nnot-a-chunk\r\n";
        plan.steps.push_back(Step{std::move(out), controls.first_byte_delay_ms, false});
        plan.after = After::close_abrupt;
        return;
    }
    if (!controls.transfer_encoding.empty() || controls.framing == "chunked" ||
        controls.framing == "close") {
        plan_whole_framed(reply, controls, is_closing, is_keep_alive_10, plan);
        return;
    }
    std::string out = response_head(reply, controls, Framing::content_length, body.size(),
                                    is_closing, is_keep_alive_10);
    const bool is_cut = fault == Fault::reset || fault == Fault::truncate || fault == Fault::stall;
    out.append(body, 0, is_cut ? sent_bytes : body.size());
    if (fault == Fault::extra_bytes) {
        out += extra_junk;
    }
    plan.steps.push_back(Step{std::move(out), controls.first_byte_delay_ms, false});
    if (fault == Fault::reset) {
        plan.after = After::reset;
    } else if (fault == Fault::truncate) {
        plan.after = After::close_abrupt;
    } else if (fault == Fault::stall) {
        plan.after = After::stall;
    }
}

// split-bytes: merge zero-delay neighbours (so cuts fall at arbitrary positions, across
// events and chunk framing), then cut into pieces that are each their own write(2).
void plan_split(const Controls& controls, Plan& plan) {
    std::vector<Step> merged;
    for (Step& step : plan.steps) {
        if (!merged.empty() && step.delay_ms == 0) {
            merged.back().bytes += step.bytes;
        } else {
            merged.push_back(std::move(step));
        }
    }
    std::vector<Step> pieces;
    for (const Step& step : merged) {
        for (size_t i = 0; i < step.bytes.size(); i += controls.split_bytes) {
            pieces.push_back(Step{step.bytes.substr(i, controls.split_bytes),
                                  i == 0 ? step.delay_ms : controls.split_delay_ms, true});
        }
        if (step.bytes.empty()) {
            pieces.push_back(Step{std::string(), step.delay_ms, true});
        }
    }
    plan.steps = std::move(pieces);
}

// Turns a reply into a plan. Early faults send nothing at all.
void plan_build(const Reply& reply, const Controls& controls, const Request& request, Plan& plan) {
    plan = Plan{};
    switch (controls.fault) {
        case Fault::reset_early: plan.after = After::reset; return;
        case Fault::close_early: plan.after = After::close_abrupt; return;
        case Fault::stall_early: plan.after = After::stall; return;
        default: break;
    }
    if (reply.is_stream && request.version == "HTTP/1.0" && !controls.is_http10) {
        // HTTP/1.0 has no chunked encoding: answer a 1.0 client's stream close-delimited.
        Controls http10 = controls;
        http10.is_http10 = true;
        plan_build(reply, http10, request, plan);
        return;
    }
    const bool is_closing = controls.is_connection_close || controls.is_http10 ||
                            request.wants_close || (reply.is_stream && controls.framing == "close");
    const bool is_keep_alive_10 = request.version == "HTTP/1.0";
    if (reply.is_stream) {
        plan_stream(reply, controls, is_closing, is_keep_alive_10, plan);
    } else {
        plan_whole(reply, controls, is_closing, is_keep_alive_10, plan);
    }
    if (is_closing && plan.after == After::keep_alive) {
        plan.after = After::close;
    }
    if (controls.split_bytes > 0) {
        plan_split(controls, plan);
    }
    RW_ASSERT(!plan.steps.empty());
}

// ---------------------------------------------------------------------------------------
// Request dispatch: route, controls, fail-first gating, reply, plan.
// ---------------------------------------------------------------------------------------

bool dispatch_mock_path(const Request& request, Reply& reply) {
    if (request.path == "/__mock/stats" && request.method == "GET") {
        reply.body = stats_json();
    } else if (request.path == "/__mock/defaults" && request.method == "POST") {
        auto defaults = std::make_shared<ControlDefaults>();
        std::string_view rest = request.body;
        while (!rest.empty()) {
            const size_t end = rest.find('\n');
            const std::string_view line = rest.substr(0, end);
            rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
            const size_t equals = line.find('=');
            if (equals != std::string_view::npos) {
                defaults->emplace_back(std::string(line.substr(0, equals)),
                                       std::string(line.substr(equals + 1)));
            }
        }
        const std::lock_guard lock(control_defaults_mutex);
        control_defaults = std::move(defaults);
        reply.body = "{\"ok\":true}";
    } else if (request.path == "/__mock/reset" && request.method == "POST") {
        stats_reset();
        reply.body = "{\"ok\":true}";
    } else if (request.path == "/__mock/health") {
        reply.content_type = "text/plain";
        reply.body = "ok\n";
    } else {
        return false;
    }
    return true;
}

// The headers a provider sends with every answer (see the file header).
void provider_headers(const Request& request, uint64_t id, Reply& reply) {
    std::string request_id = "req_mock";
    append_u64(request_id, id);
    if (request.path.starts_with("/v1/messages")) {
        reply.headers.push_back(Header{"request-id", std::move(request_id)});
        for (const char* kind : {"requests", "tokens", "input-tokens", "output-tokens"}) {
            const std::string prefix = std::string("anthropic-ratelimit-") + kind;
            reply.headers.push_back(Header{prefix + "-limit", "4000"});
            reply.headers.push_back(Header{prefix + "-remaining", "3999"});
            reply.headers.push_back(Header{prefix + "-reset", "2025-01-01T00:00:07Z"});
        }
        return;
    }
    reply.headers.push_back(Header{"x-request-id", std::move(request_id)});
    reply.headers.push_back(Header{"openai-processing-ms", "42"});
    for (const char* kind : {"requests", "tokens"}) {
        reply.headers.push_back(Header{std::string("x-ratelimit-limit-") + kind, "10000"});
        reply.headers.push_back(Header{std::string("x-ratelimit-remaining-") + kind, "9999"});
        reply.headers.push_back(Header{std::string("x-ratelimit-reset-") + kind, "6ms"});
    }
    reply.headers.push_back(
        Header{"set-cookie", "__cf_bm=mock-cookie; path=/; HttpOnly; Secure; SameSite=None"});
}

// Stored responses (OpenAI's GET/DELETE /v1/responses/{id}, POST …/cancel, GET
// …/input_items): every /v1/responses answer whose request did not say "store": false is
// kept here (its completed object and its input), shared by the loops behind one mutex.
struct StoredMockResponse {
    std::string object;  // The completed Responses object.
    std::string input;   // The request's "input" when it was a string.
};
std::mutex stored_responses_mutex;
std::map<std::string, StoredMockResponse> stored_responses;  // Guarded by the mutex above.

void stored_response_keep(const Context& ctx) {
    std::string_view store;
    if (json_object_find(ctx.request->body, "store", store) && store == "false") {
        return;
    }
    std::string id = "resp_mock";
    append_u64(id, ctx.id);
    std::string_view input;
    StoredMockResponse stored{responses_object(ctx, true), {}};
    if (json_object_find(ctx.request->body, "input", input) && input.size() >= 2 &&
        input.front() == '"') {
        stored.input = std::string(json_unquote(input));
    }
    const std::lock_guard lock(stored_responses_mutex);
    stored_responses[id] = std::move(stored);
}

// /v1/responses/{id}[/cancel|/input_items]: true when the path is one of them (answered).
bool reply_stored_response(const Request& request, const Controls& controls, Reply& reply) {
    constexpr std::string_view prefix = "/v1/responses/";
    const std::string& path = request.path;
    if (!path.starts_with(prefix) || path == "/v1/responses/input_tokens") {
        return false;
    }
    std::string_view rest = std::string_view(path).substr(prefix.size());
    const size_t slash = rest.find('/');
    const std::string id(rest.substr(0, slash));
    const std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash);
    const std::lock_guard lock(stored_responses_mutex);
    const auto found = stored_responses.find(id);
    const bool is_method_ok = tail.empty() ? request.method == "GET" || request.method == "DELETE"
                              : tail == "/cancel"
                                  ? request.method == "POST"
                                  : tail == "/input_items" && request.method == "GET";
    if (!is_method_ok) {
        reply_error(request, controls, 404, "Invalid URL (" + request.method + " " + path + ")",
                    reply);
        return true;
    }
    if (found == stored_responses.end()) {
        reply_error(request, controls, 404, "Response with id '" + id + "' not found.", reply);
        return true;
    }
    if (tail == "/input_items") {
        reply.body = "{\"object\":\"list\",\"data\":[{\"id\":\"msg_in_" + id +
                     "\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"user\","
                     "\"content\":[{\"type\":\"input_text\",\"text\":\"" +
                     found->second.input + "\"}]}],\"first_id\":\"msg_in_" + id +
                     "\",\"last_id\":\"msg_in_" + id + "\",\"has_more\":false}";
    } else if (tail == "/cancel") {
        std::string object = found->second.object;
        const size_t at = object.find("\"status\":\"completed\"");
        if (at != std::string::npos) {
            object.replace(at, 20, "\"status\":\"cancelled\"");
        }
        reply.body = std::move(object);
    } else if (request.method == "DELETE") {
        reply.body = "{\"id\":\"" + id + "\",\"object\":\"response.deleted\",\"deleted\":true}";
        stored_responses.erase(found);
    } else {
        reply.body = found->second.object;
    }
    return true;
}

std::atomic<uint64_t> next_error_id{1};

void dispatch_llm(const Request& request, const Controls& controls, Reply& reply) {
    const bool is_get = request.method == "GET";
    const std::string& path = request.path;
    if (path == "/v1/models") {
        if (!is_get) {
            reply_error(request, controls, 405, "mock: use GET /v1/models", reply);
            return;
        }
        reply_models(reply);
        return;
    }
    if (reply_stored_response(request, controls, reply)) {
        provider_headers(request, next_response_id.fetch_add(1, std::memory_order_relaxed), reply);
        return;
    }
    const bool is_known =
        path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/embeddings" ||
        path == "/v1/responses" || path == "/v1/messages" || path == "/v1/messages/count_tokens" ||
        path == "/v1/responses/input_tokens" || is_more_endpoint(path) || is_upload_endpoint(path);
    if (!is_known || request.method != "POST") {
        reply_error(request, controls, 404, "Invalid URL (" + request.method + " " + path + ")",
                    reply);
        return;
    }
    if (is_upload_endpoint(path)) {
        const std::string error = reply_upload(request, controls, path, reply);
        if (!error.empty()) {
            reply_error(request, controls, 400, error, reply);
        }
        return;
    }
    Controls obeyed;  // A copy only when the output limit changes the chunks.
    const Controls* active = &controls;
    std::string_view limit_value;
    if (controls.is_obeying_max_tokens) {
        for (const char* name : {"max_tokens", "max_completion_tokens", "max_output_tokens"}) {
            uint32_t limit = 0;
            if (json_object_find(request.body, name, limit_value) &&
                parse_u32(limit_value, chunks_max, limit) && limit < active->chunk_count) {
                obeyed = *active;
                obeyed.chunk_count = limit;
                active = &obeyed;
            }
        }
    }
    Context ctx{&request, active, default_model, request.body, false, false, 0, 0, 0, 0, {}};
    if (!json_object_each(request.body, [](std::string_view, std::string_view) {})) {
        reply_error(
            request, controls, 400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)",
            reply);
        return;
    }
    std::string_view value;
    if (json_object_find(request.body, "model", value) && value.size() >= 2 &&
        value.front() == '"') {
        ctx.model = json_unquote(value);
    }
    ctx.is_stream = json_object_find(request.body, "stream", value) && value == "true";
    std::string_view stream_options;
    ctx.include_usage = json_object_find(request.body, "stream_options", stream_options) &&
                        json_object_find(stream_options, "include_usage", value) && value == "true";
    ctx.prompt_tokens =
        controls.has_prompt_tokens ? controls.prompt_tokens : (request.body.size() + 3) / 4;
    // Reasoning is hidden output: counted in the completion tokens, never sent as content.
    // Anthropic reports no reasoning kind, so its output stays the content deltas.
    ctx.completion_tokens =
        uint64_t(active->chunk_count) + (path == "/v1/messages" ? 0 : controls.reasoning_tokens);
    ctx.id = next_response_id.fetch_add(1, std::memory_order_relaxed);
    ctx.created_s = static_cast<uint64_t>(std::time(nullptr));
    if (path == "/v1/chat/completions" || path == "/v1/messages") {
        ctx.tool_name = tool_to_call(request.body, path == "/v1/messages", controls.tool);
    }
    if (reply_more_endpoints(ctx, path, reply)) {
        // Images, speech, moderations, rerank.
    } else if (path == "/v1/chat/completions" || path == "/v1/completions") {
        reply_openai_choices(ctx, path == "/v1/chat/completions", reply);
    } else if (path == "/v1/embeddings") {
        reply_embeddings(ctx, reply);
    } else if (path == "/v1/responses") {
        reply_responses(ctx, reply);
        if (controls.status == 0 && controls.fault == Fault::none) {
            stored_response_keep(ctx);
        }
    } else if (path == "/v1/responses/input_tokens") {
        reply.body = "{\"object\":\"response.input_tokens\",\"input_tokens\":";
        append_u64(reply.body, ctx.prompt_tokens);
        reply.body += "}";
    } else if (path == "/v1/messages/count_tokens") {
        reply.body = "{\"input_tokens\":";
        append_u64(reply.body, ctx.prompt_tokens);
        reply.body += "}";
    } else {
        reply_messages(ctx, reply);
    }
    provider_headers(request, ctx.id, reply);
}

// Handles one complete request. Afterwards `plan` owns every byte to send.
void handle_request(const Request& request, Plan& plan) {
    Reply reply;
    Controls controls;
    if (dispatch_mock_path(request, reply)) {
        plan_build(reply, controls, request, plan);
        return;
    }
    std::string_view x_mock;
    if (!json_object_find(request.body, "x_mock", x_mock)) {
        x_mock = {};
    }
    std::string error;
    const bool is_ok = controls_parse(ControlSource{&request, x_mock}, controls, error);
    const uint64_t scenario_count = stats_record(request, controls.scenario_id);
    if (!is_ok) {
        Controls plain;
        reply_error(request, plain, 400, error, reply);
        plan_build(reply, plain, request, plan);
        return;
    }
    if (controls.has_fail_first) {
        if (scenario_count > controls.fail_first) {
            controls.status = 0;
            controls.fault = Fault::none;
        } else if (controls.status == 0 && controls.fault == Fault::none) {
            controls.status = 503;
        }
    }
    if (controls.status >= 400) {
        reply_error(request, controls, controls.status, "", reply);
        provider_headers(request, next_error_id.fetch_add(1, std::memory_order_relaxed), reply);
    } else if (controls.status >= 300 && controls.status < 400 && controls.status != 304) {
        // A redirect the gateway must never follow (RULES.md, upstream isolation).
        reply.status = controls.status;
        reply.headers.push_back(Header{"Location", "http://127.0.0.1:9/mock-redirect-target"});
        reply.body = "{}";
    } else {
        dispatch_llm(request, controls, reply);
        if (controls.status != 0) {
            reply.status = controls.status;  // A 2xx or 304 with the endpoint's body.
        }
    }
    plan_build(reply, controls, request, plan);
}

// ---------------------------------------------------------------------------------------
// Connections and the epoll loop. Sockets are edge-triggered with IN|OUT|RDHUP registered
// once; every handler therefore reads/writes until EAGAIN [epoll(7) "edge-triggered"].
// ---------------------------------------------------------------------------------------

enum class ConnState : uint8_t { reading, writing, draining, stalled };
enum class IoResult : uint8_t { progress, blocked, closed };

struct Conn {
    uint64_t id = 0;
    int fd = -1;
    SSL* ssl = nullptr;
    bool is_handshake_done = false;
    ConnState state = ConnState::reading;
    std::string in;
    Request request;
    Plan plan;
    size_t step_index = 0;
    bool is_step_delay_done = false;
    bool is_timer_armed = false;
    bool has_sent_continue = false;
    bool is_read_paused = false;    // body-read-pause-ms: nothing is read until its timer.
    bool is_pause_decided = false;  // This request's head was looked at for it.
    std::string out;
    size_t out_offset = 0;
};

struct Timer {
    int64_t deadline_ms;
    int fd;
    uint64_t conn_id;
    bool is_read_pause = false;  // Ends a body-read-pause-ms (else: a plan step's delay).
    bool operator>(const Timer& other) const { return deadline_ms > other.deadline_ms; }
};

struct Worker {
    int epoll_fd = -1;
    int listen_fd = -1;
    SSL_CTX* ssl_ctx = nullptr;
    std::vector<Conn*> conns;  // Indexed by fd; only this worker's connections.
    std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers;
    uint64_t next_conn_id = 1;
};

void conn_close(Worker& worker, Conn* conn, bool is_reset) {
    RW_ASSERT(conn->fd >= 0);
    RW_ASSERT(worker.conns[static_cast<size_t>(conn->fd)] == conn);
    if (is_reset) {
        // SO_LINGER with a zero timeout makes close(2) send RST [socket(7) SO_LINGER].
        const linger option{1, 0};
        setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
    }
    if (conn->ssl != nullptr) {
        SSL_free(conn->ssl);
    }
    worker.conns[static_cast<size_t>(conn->fd)] = nullptr;
    close(conn->fd);
    stats.connections_open.fetch_sub(1);
    delete conn;
}

// > 0 bytes moved, 0 orderly EOF, -1 would block, -2 error.
ssize_t io_read(Conn* conn, char* buf, size_t length_bytes) {
    if (conn->ssl == nullptr) {
        const ssize_t n = recv(conn->fd, buf, length_bytes, 0);
        if (n >= 0) {
            return n;
        }
        return (errno == EAGAIN || errno == EINTR) ? -1 : -2;
    }
    const int n = SSL_read(conn->ssl, buf, static_cast<int>(length_bytes));
    if (n > 0) {
        return n;
    }
    const int error = SSL_get_error(conn->ssl, n);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        return -1;
    }
    ERR_clear_error();
    return error == SSL_ERROR_ZERO_RETURN ? 0 : -2;
}

ssize_t io_write(Conn* conn, const char* buf, size_t length_bytes) {
    if (conn->ssl == nullptr) {
        const ssize_t n = send(conn->fd, buf, length_bytes, MSG_NOSIGNAL);
        if (n >= 0) {
            return n;
        }
        return (errno == EAGAIN || errno == EINTR) ? -1 : -2;
    }
    // SSL_MODE_ENABLE_PARTIAL_WRITE is set, so n may be short [SSL_write(3)].
    const int n =
        SSL_write(conn->ssl, buf, static_cast<int>(std::min<size_t>(length_bytes, 1 << 30)));
    if (n > 0) {
        return n;
    }
    const int error = SSL_get_error(conn->ssl, n);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        return -1;
    }
    ERR_clear_error();
    return -2;
}

// body-read-pause-ms is looked at as soon as a request's head is in, before the rest is read
// (conn_read's loop would otherwise take the whole body first), once per request. True:
// paused, nothing more is read until the timer fires.
bool conn_read_pause(Worker& worker, Conn* conn) {
    if (conn->is_pause_decided || conn->in.find("\r\n\r\n") == std::string::npos) {
        return false;
    }
    conn->is_pause_decided = true;
    Request request;
    const ParseOutcome outcome = parse_request(conn->in, request);
    Controls controls;
    std::string error;
    if (!outcome.is_waiting_for_body || outcome.status != ParseStatus::incomplete ||
        !controls_parse(ControlSource{&request, {}}, controls, error) ||
        controls.body_read_pause_ms == 0) {
        return false;
    }
    conn->is_read_paused = true;
    worker.timers.push(Timer{now_ms() + controls.body_read_pause_ms, conn->fd, conn->id, true});
    return true;
}

// Reads everything available. In reading/writing state bytes are kept (pipelining); in
// draining/stalled state they are discarded. Closes the connection on EOF or error.
IoResult conn_read(Worker& worker, Conn* conn) {
    char buf[read_chunk_bytes];
    for (;;) {
        const ssize_t n = io_read(conn, buf, sizeof(buf));
        if (n == -1) {
            return IoResult::blocked;
        }
        if (n <= 0) {
            conn_close(worker, conn, false);
            return IoResult::closed;
        }
        if (conn->state == ConnState::reading || conn->state == ConnState::writing) {
            conn->in.append(buf, static_cast<size_t>(n));
            if (conn->in.size() > header_bytes_max + body_bytes_max + 4096) {
                conn_close(worker, conn, false);
                return IoResult::closed;
            }
            if (conn->state == ConnState::reading && conn_read_pause(worker, conn)) {
                return IoResult::blocked;
            }
        }
    }
}

IoResult conn_flush(Worker& worker, Conn* conn) {
    while (conn->out_offset < conn->out.size()) {
        const ssize_t n = io_write(conn, conn->out.data() + conn->out_offset,
                                   conn->out.size() - conn->out_offset);
        if (n == -1) {
            return IoResult::blocked;
        }
        if (n < 0) {
            conn_close(worker, conn, false);
            return IoResult::closed;
        }
        conn->out_offset += static_cast<size_t>(n);
    }
    conn->out.clear();
    conn->out_offset = 0;
    return IoResult::progress;
}

// Writes plan steps in order, honouring delays (one timer at a time per connection) and
// coalescing consecutive zero-delay steps into one write. Returns progress when the whole
// plan is on the wire.
IoResult conn_write_plan(Worker& worker, Conn* conn) {
    for (;;) {
        const IoResult flushed = conn_flush(worker, conn);
        if (flushed != IoResult::progress) {
            return flushed;
        }
        std::vector<Step>& steps = conn->plan.steps;
        if (conn->step_index == steps.size()) {
            return IoResult::progress;
        }
        Step& step = steps[conn->step_index];
        if (step.delay_ms > 0 && !conn->is_step_delay_done) {
            if (!conn->is_timer_armed) {
                worker.timers.push(Timer{now_ms() + step.delay_ms, conn->fd, conn->id});
                conn->is_timer_armed = true;
            }
            return IoResult::blocked;
        }
        if (step.delay_ms > 0) {
            stats.delayed_writes.fetch_add(1, std::memory_order_relaxed);
        }
        conn->is_step_delay_done = false;
        conn->out.swap(step.bytes);
        conn->step_index += 1;
        while (!step.is_separate_write && conn->step_index < steps.size() &&
               steps[conn->step_index].delay_ms == 0 &&
               !steps[conn->step_index].is_separate_write) {
            conn->out += steps[conn->step_index].bytes;
            conn->step_index += 1;
        }
    }
}

void conn_start_plan(Conn* conn) {
    conn->state = ConnState::writing;
    conn->step_index = 0;
    conn->is_step_delay_done = false;
}

// A request whose head is in and whose body is not: answer-early (from headers or
// --default: the body's x_mock is not in). True: answered, the plan is made.
bool conn_answer_early(Conn* conn) {
    Controls controls;
    std::string error;
    if (!controls_parse(ControlSource{&conn->request, {}}, controls, error)) {
        return false;  // Answered 400 with the whole request.
    }
    const size_t head_end = conn->in.find("\r\n\r\n");
    RW_ASSERT(head_end != std::string::npos);
    if (!controls.has_answer_early ||
        conn->in.size() - head_end - 4 < controls.answer_early_bytes) {
        return false;
    }
    conn->request.wants_close = true;  // The rest of the body is never read as a request.
    handle_request(conn->request, conn->plan);
    return true;
}

// Runs the request/response cycle as far as it can go without blocking.
void conn_advance(Worker& worker, Conn* conn) {
    for (;;) {
        if (conn->state == ConnState::reading) {
            const ParseOutcome outcome = parse_request(conn->in, conn->request);
            const bool is_answered_early = outcome.is_waiting_for_body &&
                                           outcome.status == ParseStatus::incomplete &&
                                           conn_answer_early(conn);
            if (outcome.status == ParseStatus::incomplete && !is_answered_early) {
                if (outcome.is_waiting_for_body && conn->request.is_expect_continue &&
                    !conn->has_sent_continue) {
                    conn->has_sent_continue = true;
                    conn->out += "HTTP/1.1 100 Continue\r\n\r\n";
                    if (conn_flush(worker, conn) == IoResult::closed) {
                        return;
                    }
                }
                return;
            }
            conn->has_sent_continue = false;
            conn->is_pause_decided = false;
            if (is_answered_early) {
                // Planned by conn_body_hold.
            } else if (outcome.status == ParseStatus::complete) {
                conn->in.erase(0, outcome.consumed_bytes);
                handle_request(conn->request, conn->plan);
            } else {
                Reply reply;
                Controls controls;
                controls.is_connection_close = true;
                reply_error(conn->request, controls,
                            outcome.status == ParseStatus::too_large ? 431 : 400,
                            "mock: malformed or oversized request", reply);
                plan_build(reply, controls, conn->request, conn->plan);
            }
            conn_start_plan(conn);
        }
        if (conn->state != ConnState::writing) {
            return;
        }
        const IoResult written = conn_write_plan(worker, conn);
        if (written != IoResult::progress) {
            return;
        }
        switch (conn->plan.after) {
            case After::keep_alive: conn->state = ConnState::reading; continue;
            case After::close:
                if (conn->ssl != nullptr) {
                    SSL_shutdown(conn->ssl);  // close_notify; we do not wait for the peer's.
                }
                [[fallthrough]];
            case After::close_abrupt:
                // FIN now, then discard input until the client closes: closing with unread
                // input would turn our FIN into an RST [RFC 1122 4.2.2.13].
                shutdown(conn->fd, SHUT_WR);
                conn->state = ConnState::draining;
                return;
            case After::reset: conn_close(worker, conn, true); return;
            case After::stall: conn->state = ConnState::stalled; return;
        }
        RW_UNREACHABLE();
    }
}

void conn_on_io(Worker& worker, Conn* conn) {
    if (conn->is_read_paused) {
        return;  // body-read-pause-ms: read when its timer fires (edge-triggered: it reads all).
    }
    if (!conn->is_handshake_done) {
        const int result = SSL_accept(conn->ssl);
        if (result != 1) {
            const int error = SSL_get_error(conn->ssl, result);
            if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                conn_close(worker, conn, false);
            }
            return;
        }
        conn->is_handshake_done = true;
    }
    if (conn_read(worker, conn) == IoResult::closed) {
        return;
    }
    conn_advance(worker, conn);
}

void worker_accept(Worker& worker) {
    for (;;) {
        const int fd = accept4(worker.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;  // EAGAIN: another loop took it, or the backlog is empty.
        }
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        Conn* conn = new Conn;
        conn->id = worker.next_conn_id++;
        conn->fd = fd;
        conn->is_handshake_done = worker.ssl_ctx == nullptr;
        if (worker.ssl_ctx != nullptr) {
            conn->ssl = SSL_new(worker.ssl_ctx);
            SSL_set_fd(conn->ssl, fd);
        }
        if (worker.conns.size() <= static_cast<size_t>(fd)) {
            worker.conns.resize(static_cast<size_t>(fd) + 1, nullptr);
        }
        RW_ASSERT(worker.conns[static_cast<size_t>(fd)] == nullptr);
        worker.conns[static_cast<size_t>(fd)] = conn;
        stats.connections_accepted.fetch_add(1);
        stats.connections_open.fetch_add(1);
        epoll_event event{};
        event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        event.data.fd = fd;
        // Adding an fd that is already readable reports it at once [epoll_ctl(2)].
        if (epoll_ctl(worker.epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
            conn_close(worker, conn, false);
        }
    }
}

void worker_fire_timers(Worker& worker) {
    const int64_t now = now_ms();
    while (!worker.timers.empty() && worker.timers.top().deadline_ms <= now) {
        const Timer timer = worker.timers.top();
        worker.timers.pop();
        const auto index = static_cast<size_t>(timer.fd);
        Conn* conn = index < worker.conns.size() ? worker.conns[index] : nullptr;
        if (conn == nullptr || conn->id != timer.conn_id) {
            continue;  // The connection closed while its timer waited.
        }
        if (timer.is_read_pause) {
            RW_ASSERT(conn->is_read_paused);
            conn->is_read_paused = false;
            conn_on_io(worker, conn);
            continue;
        }
        RW_ASSERT(conn->is_timer_armed);
        conn->is_timer_armed = false;
        conn->is_step_delay_done = true;
        conn_advance(worker, conn);
    }
}

void worker_run(Worker* worker) {
    epoll_event events[epoll_events_max];
    for (;;) {
        int timeout_ms = -1;
        if (!worker->timers.empty()) {
            const int64_t wait_ms = worker->timers.top().deadline_ms - now_ms();
            timeout_ms = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(wait_ms, 60000)));
        }
        const int count = epoll_wait(worker->epoll_fd, events, epoll_events_max, timeout_ms);
        for (int i = 0; i < count; ++i) {
            const int fd = events[i].data.fd;
            if (fd == worker->listen_fd) {
                worker_accept(*worker);
                continue;
            }
            const auto index = static_cast<size_t>(fd);
            if (index < worker->conns.size() && worker->conns[index] != nullptr) {
                conn_on_io(*worker, worker->conns[index]);
            }
        }
        worker_fire_timers(*worker);
    }
}

// ---------------------------------------------------------------------------------------
// Startup (control plane): arguments, listening socket, TLS context, loops.
// ---------------------------------------------------------------------------------------

struct Options {
    std::string listen_host = "127.0.0.1";
    uint16_t listen_port = 0;
    uint32_t thread_count = 1;
    std::string tls_cert;
    std::string tls_key;
};

[[noreturn]] void usage_exit(const char* message) {
    std::fprintf(stderr,
                 "mock_upstream: %s\nusage: mock_upstream [--listen HOST:PORT] [--threads N] "
                 "[--tls-cert F --tls-key F] [--default NAME=VALUE]...\n",
                 message);
    std::exit(2);
}

Options parse_options(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            usage_exit("see the header of tests/support/mock_upstream.cc for the controls");
        }
        if (i + 1 >= argc) {
            usage_exit("missing value");
        }
        const std::string_view value = argv[++i];
        if (arg == "--listen") {
            const size_t colon = value.rfind(':');
            uint32_t port = 0;
            if (colon == std::string_view::npos ||
                !parse_u32(value.substr(colon + 1), 65535, port)) {
                usage_exit("--listen wants HOST:PORT");
            }
            options.listen_host = std::string(value.substr(0, colon));
            options.listen_port = static_cast<uint16_t>(port);
        } else if (arg == "--threads") {
            if (!parse_u32(value, threads_max, options.thread_count) || options.thread_count == 0) {
                usage_exit("--threads wants 1..256");
            }
        } else if (arg == "--tls-cert") {
            options.tls_cert = std::string(value);
        } else if (arg == "--tls-key") {
            options.tls_key = std::string(value);
        } else if (arg == "--default") {
            const size_t equals = value.find('=');
            if (equals == std::string_view::npos || !control_is_known(value.substr(0, equals))) {
                usage_exit("--default wants a known NAME=VALUE");
            }
            auto defaults = std::make_shared<ControlDefaults>(*control_defaults);
            defaults->emplace_back(std::string(value.substr(0, equals)),
                                   std::string(value.substr(equals + 1)));
            control_defaults = std::move(defaults);  // Before the loops start: no lock needed.
        } else {
            usage_exit("unknown option");
        }
    }
    if (options.tls_cert.empty() != options.tls_key.empty()) {
        usage_exit("--tls-cert and --tls-key go together");
    }
    return options;
}

SSL_CTX* tls_context_create(const Options& options) {
    if (options.tls_cert.empty()) {
        return nullptr;
    }
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, options.tls_cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, options.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_print_errors_fp(stderr);
        std::fprintf(stderr, "mock_upstream: cannot load TLS certificate/key\n");
        std::exit(1);
    }
    // Partial writes and a moving buffer: Conn::out may be appended to between retries.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

int listen_socket_create(const Options& options, uint16_t& bound_port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(options.listen_port);
    if (inet_pton(AF_INET, options.listen_host.c_str(), &address.sin_addr) != 1) {
        std::fprintf(stderr, "mock_upstream: --listen host must be an IPv4 address\n");
        std::exit(1);
    }
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    socklen_t length = sizeof(address);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(fd, 4096) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        std::fprintf(stderr, "mock_upstream: cannot listen on %s:%u: %s\n",
                     options.listen_host.c_str(), options.listen_port, std::strerror(errno));
        std::exit(1);
    }
    bound_port = ntohs(address.sin_port);
    return fd;
}

int run(int argc, char** argv) {
    const Options options = parse_options(argc, argv);
    std::signal(SIGPIPE, SIG_IGN);
    SSL_CTX* ssl_ctx = tls_context_create(options);
    uint16_t port = 0;
    const int listen_fd = listen_socket_create(options, port);
    std::vector<Worker*> workers;
    for (uint32_t i = 0; i < options.thread_count; ++i) {
        Worker* worker = new Worker;
        worker->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        worker->listen_fd = listen_fd;
        worker->ssl_ctx = ssl_ctx;
        epoll_event event{};
        // EPOLLEXCLUSIVE: one loop wakes per incoming connection [epoll_ctl(2)].
        event.events = EPOLLIN | EPOLLEXCLUSIVE;
        event.data.fd = listen_fd;
        if (worker->epoll_fd < 0 ||
            epoll_ctl(worker->epoll_fd, EPOLL_CTL_ADD, listen_fd, &event) != 0) {
            std::fprintf(stderr, "mock_upstream: epoll setup failed: %s\n", std::strerror(errno));
            return 1;
        }
        workers.push_back(worker);
    }
    std::printf("listening %s:%u\n", options.listen_host.c_str(), port);
    std::fflush(stdout);
    std::vector<std::thread> threads;
    for (size_t i = 1; i < workers.size(); ++i) {
        threads.emplace_back(worker_run, workers[i]);
    }
    worker_run(workers[0]);
    RW_UNREACHABLE();  // The loops run until the process is killed.
}

}  // namespace
}  // namespace rw

int main(int argc, char** argv) {
    return rw::run(argc, argv);
}
