// core/resp.h — a small RESP2 client (the Redis protocol): commands encoded as arrays of
// bulk strings, replies parsed incrementally (a reply split across reads is kept until it
// is whole), several commands pipelined in one write. Control plane only: one background
// thread owns a client, which blocks in poll() up to its deadline and allocates freely.
// No shard ever calls it (proxy/rate_share.h says who does).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rw {

enum class RespType : uint8_t { simple, error, integer, bulk, nil, array };

struct RespValue {
    RespType type = RespType::nil;
    int64_t integer = 0;
    std::string text;              // simple, error, bulk.
    std::vector<RespValue> items;  // array.
};

// Appends one command (an array of bulk strings) to `out`.
void resp_command(std::string& out, const std::vector<std::string_view>& args);

// Replies from a byte stream fed in whatever pieces the socket gives.
class RespReader {
public:
    enum class Result : uint8_t { value, incomplete, bad };
    // Bounds on what one reply may hold (a bad or hostile server is refused, not obeyed).
    static constexpr uint32_t depth_max = 8;
    static constexpr int64_t bulk_bytes_max = 64 << 20;
    static constexpr int64_t array_items_max = 1 << 20;

    void feed(std::string_view bytes) { buffer_.append(bytes); }
    // The next whole reply: value (consumed), incomplete (nothing consumed; feed more) or
    // bad (the stream is not RESP2; the connection must go).
    [[nodiscard]] Result next(RespValue& out);
    [[nodiscard]] size_t buffered() const { return buffer_.size() - start_; }
    void clear() {
        buffer_.clear();
        start_ = 0;
    }

private:
    // Parses at pos; on value advances pos past it.
    Result parse(size_t& pos, RespValue& out, uint32_t depth) const;
    std::string buffer_;
    size_t start_ = 0;  // Bytes before it are consumed.
};

// One connection to a server, used by one thread. Every call is bounded by timeout_ms.
class RespClient {
public:
    RespClient() = default;
    ~RespClient() { close(); }
    RespClient(const RespClient&) = delete;
    RespClient& operator=(const RespClient&) = delete;

    // host: an IPv4 or IPv6 address or "localhost".
    [[nodiscard]] bool connect(const std::string& host, uint16_t port, uint32_t timeout_ms,
                               std::string& error);
    // Writes `commands` (resp_command's bytes for `count` commands) and reads `count`
    // replies into `replies` (an error reply is a value of type error, not a failure).
    // false: the connection failed, timed out or spoke no RESP2; it is closed and `error`
    // says why.
    [[nodiscard]] bool exchange(std::string_view commands, size_t count,
                                std::vector<RespValue>& replies, uint32_t timeout_ms,
                                std::string& error);
    [[nodiscard]] bool is_connected() const { return fd_ >= 0; }
    void close();
    // Adopts a connected socket (tests: one end of a socketpair).
    void adopt(int fd) {
        close();
        fd_ = fd;
    }

private:
    int fd_ = -1;
    RespReader reader_;
};

}  // namespace rw
