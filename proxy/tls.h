// proxy/tls.h — the TLS client engine for https upstreams: OpenSSL over memory BIOs, so
// io_uring keeps all socket I/O. The shard feeds received ciphertext in, drives handshake
// and reads/writes, then takes the ciphertext out and sends it itself. No fds, no blocking.
// TlsContext is built on the control plane and then shared read-only by every shard (only
// its session cache changes, under a mutex on the connect path). A TlsSession belongs to one
// upstream connection and is touched only by the shard thread that owns that connection.
#pragma once

#include <openssl/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/limits.h"

struct ssl_session_st;  // SSL_SESSION; its typedef lives in <openssl/ssl.h>.

namespace rw {

struct TlsContextOptions {
    // A PEM bundle of trusted CAs for this channel. Empty means the system default paths
    // (SSL_CERT_FILE / SSL_CERT_DIR or the distribution's bundle).
    std::string_view ca_file;
    // Turns peer verification off entirely (no chain, no host name check). Only for an
    // explicit per-channel switch; the caller must log it at startup (RULES.md Security 6).
    bool is_insecure = false;
    // SSL_MODE_RELEASE_BUFFERS: free OpenSSL's ~34 KiB of record buffers whenever a
    // connection is idle. Saves memory on a large idle keep-alive pool, but costs a malloc
    // and free per burst on the data plane, so it is off by default.
    bool releases_idle_buffers = false;
};

// A client SSL_CTX plus the per-host session cache used for resumption. Create it once per
// channel (or per ca_file/is_insecure combination) before shards start, keep it alive until
// every TlsSession started from it has been reset, and never reconfigure it afterwards:
// OpenSSL allows one SSL_CTX to back SSL objects on many threads only once it is configured.
class TlsContext {
public:
    // Returns nullptr and fills error (one line, no secrets) when OpenSSL refuses the
    // configuration, for example an unreadable or empty ca_file. Control plane only.
    [[nodiscard]] static std::unique_ptr<TlsContext> create(const TlsContextOptions& options,
                                                            std::string& error);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    [[nodiscard]] bool is_insecure() const { return is_insecure_; }
    // Hosts that currently have a resumable session. For tests and the admin view.
    [[nodiscard]] uint32_t cached_session_count() const;

private:
    friend class TlsSession;
    TlsContext() = default;

    struct SessionSlot {
        std::array<char, tls_host_bytes_max + 1> host{};  // NUL-terminated.
        uint32_t host_bytes = 0;
        ssl_session_st* session = nullptr;  // Owned; never handed to an SSL (see .cc).
        uint64_t stored_tick = 0;           // For oldest-first eviction.
    };

    [[nodiscard]] ssl_session_st* session_copy_for(std::string_view host);
    void session_store(std::string_view host, ssl_session_st* session);
    void session_forget(std::string_view host);
    [[nodiscard]] SessionSlot* session_find(std::string_view host);
    // SSL_CTX_sess_set_new_cb hook; runs on the shard thread inside handshake()/read.
    static int session_on_new(SSL* ssl, ssl_session_st* session);

    SSL_CTX* ctx_ = nullptr;
    bool is_insecure_ = false;
    // The only mutable state after create(). Taken on the connect path only: start(), a
    // failed handshake, and the new-session callback (once or twice per new connection).
    mutable std::mutex session_mutex_;
    std::array<SessionSlot, tls_session_hosts_max> session_slots_{};
    uint64_t session_tick_ = 0;
};

enum class HandshakeStatus : uint8_t {
    done,     // Established; write_plaintext and read_plaintext may be used.
    want_io,  // Flush pending_ciphertext(), then feed more bytes and call handshake() again.
    failed,   // Fatal; reason says why. Send nothing more; close the socket.
};

struct HandshakeResult {
    HandshakeStatus status;
    // Set when failed, for example "certificate verify failed: self-signed certificate".
    // Views into the TlsSession; valid until its next call.
    std::string_view reason;
};

enum class ReadStatus : uint8_t {
    bytes,           // plaintext_bytes > 0 were written to out; call again, more may be ready.
    want_more,       // Every fed byte is consumed; feed more ciphertext to continue.
    closed_cleanly,  // The upstream sent close_notify: the stream ended on purpose.
    truncated,       // The stream ended (feed_end_of_stream) without close_notify.
    failed,          // Protocol or decryption error; reason says which. Fatal.
};

struct ReadResult {
    ReadStatus status;
    uint32_t plaintext_bytes;  // > 0 only with ReadStatus::bytes.
    std::string_view reason;   // Set when failed or truncated; views into the TlsSession.
};

// One upstream TLS connection. Lives in a preallocated upstream slot: default-construct it
// once, start() per connection, reset() when the connection is gone.
//
// Ciphertext to send can appear after handshake() (flights, or a fatal alert on failure),
// write_plaintext() (records, preceded by a deferred TLS 1.3 KeyUpdate reply: OpenSSL 3.0
// answers a KeyUpdate request with the next write, not from the read), read_plaintext() (the
// no_renegotiation warning for a TLS 1.2 HelloRequest, a fatal alert on failure or
// truncation) and shutdown() (close_notify). The caller checks pending_ciphertext() after
// each of them and sends what take_ciphertext() returns; after a failure sending the alert
// is optional. Nothing is ever sent implicitly: there is no socket here.
class TlsSession {
public:
    TlsSession() = default;
    ~TlsSession() { reset(); }
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // Prepares a client handshake to host (a DNS name or an IP literal, IPv6 with or without
    // brackets). A DNS name is sent as SNI and checked against the certificate; an IP literal
    // is checked against the IP SANs and sends no SNI (RFC 6066 3). Offers the context's
    // last session for host, if any. Allocates the SSL object (connect path). Returns false
    // with error filled when host is unusable or OpenSSL fails; the session stays reset.
    [[nodiscard]] bool start(TlsContext& context, std::string_view host, std::string& error);
    // Frees the SSL object. Idempotent. The context must outlive every started session.
    void reset();

    // Hands bytes received from the upstream socket to OpenSSL (copied; the caller's
    // buffer may be given back at once). Then call handshake() or read_plaintext().
    void feed_ciphertext(const std::byte* data, uint32_t data_bytes);
    // The upstream socket reached EOF (recv returned 0). Later reads report closed_cleanly
    // only if close_notify already arrived, truncated otherwise.
    void feed_end_of_stream();

    // Ciphertext waiting to be sent, in bytes.
    [[nodiscard]] uint32_t pending_ciphertext() const;
    // Copies up to capacity_bytes of pending ciphertext into out and consumes them; returns
    // the count. A copy rather than a view: the next OpenSSL call may grow (and move) the
    // memory BIO while an io_uring send is still reading the bytes.
    [[nodiscard]] uint32_t take_ciphertext(std::byte* out, uint32_t capacity_bytes);

    [[nodiscard]] HandshakeResult handshake();
    // Encrypts all data_bytes into the outgoing buffer. Only after handshake() returned done.
    // Returns data_bytes, or -1 on a fatal error (see last_error()).
    [[nodiscard]] int write_plaintext(const void* data, uint32_t data_bytes);
    // Decrypts fed ciphertext into out. Only after handshake() returned done. Call it until
    // it stops returning bytes: a record larger than capacity_bytes is handed out in parts.
    [[nodiscard]] ReadResult read_plaintext(std::byte* out, uint32_t capacity_bytes);
    // Queues close_notify (flush it, then close the socket) when the connection is healthy.
    // Does not wait for the upstream's close_notify. No-op after a failure. Idempotent.
    void shutdown();

    [[nodiscard]] bool is_started() const { return ssl_ != nullptr; }
    [[nodiscard]] bool is_established() const { return state_ == State::established; }
    // True when the handshake resumed a remembered session (an abbreviated handshake).
    [[nodiscard]] bool is_resumed() const;
    // The text of the last failure; empty when none.
    [[nodiscard]] std::string_view last_error() const {
        return {reason_text_.data(), reason_bytes_};
    }
    // The host given to start(), without brackets.
    [[nodiscard]] std::string_view host() const { return {host_.data(), host_bytes_}; }

private:
    enum class State : uint8_t {
        idle,                // No SSL object.
        handshaking,         // start() done; handshake() not yet done.
        established,         // Reads and writes allowed.
        closed_by_upstream,  // close_notify received; only shutdown() or reset() remain.
        shut_down,           // Our close_notify is queued; only reset() remains.
        failed,              // Fatal error; OpenSSL forbids SSL_shutdown now [SSL_shutdown(3)].
    };

    [[nodiscard]] std::string_view fail_with(const char* prefix);
    [[nodiscard]] std::string_view set_reason(const char* prefix, const char* detail);

    State state_ = State::idle;
    bool has_end_of_stream_ = false;

    SSL* ssl_ = nullptr;
    BIO* ciphertext_in_ = nullptr;   // Owned by ssl_ (SSL_set_bio); upstream → OpenSSL.
    BIO* ciphertext_out_ = nullptr;  // Owned by ssl_; OpenSSL → upstream.
    TlsContext* context_ = nullptr;
    std::array<char, tls_host_bytes_max + 1> host_{};
    uint32_t host_bytes_ = 0;
    std::array<char, 192> reason_text_{};
    uint32_t reason_bytes_ = 0;
};

}  // namespace rw
