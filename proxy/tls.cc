// proxy/tls.cc — OpenSSL 3.0 client engine over memory BIOs (see tls.h). The SSL_CTX is
// configured once in TlsContext::create() and then only read; the per-host session cache is
// the one mutable shared thing and sits behind session_mutex_. Every SSL object, its two
// memory BIOs and OpenSSL's per-thread error queue are used by one shard thread only.
// Error discipline: ERR_clear_error() before each SSL_* call whose SSL_get_error() we read,
// and the queue is emptied after a failure, so one connection's error never leaks into the
// next connection's diagnosis on the same shard [SSL_get_error(3)].
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <climits>
#include <cstdio>
#include <cstring>

#include "core/assert.h"

namespace rw {

namespace {

// ALPN wire format: length-prefixed protocol names. We only speak HTTP/1.1 upstream.
constexpr unsigned char alpn_http_1_1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// The text of the earliest error on this thread's OpenSSL queue, then clears the queue.
// Returns a static string (OpenSSL's reason table) or a fallback; never nullptr.
const char* openssl_take_reason() {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) {
        return "no error detail";
    }
    const char* reason = ERR_reason_error_string(code);
    return reason != nullptr ? reason : "unknown OpenSSL error";
}

// True when host (brackets already stripped) is an IPv4 or IPv6 literal. host_text is
// NUL-terminated.
bool host_is_ip_literal(const char* host_text) {
    unsigned char address[16];
    return inet_pton(AF_INET, host_text, address) == 1 ||
           inet_pton(AF_INET6, host_text, address) == 1;
}

// True when the error queue says the transport ended without close_notify. OpenSSL 3.0
// reports that as SSL_ERROR_SSL with SSL_R_UNEXPECTED_EOF_WHILE_READING (1.1.1 reported
// SSL_ERROR_SYSCALL with an empty queue; both are accepted). Does not consume the queue.
bool openssl_is_unexpected_eof(int ssl_error) {
    const unsigned long code = ERR_peek_error();
    if (ssl_error == SSL_ERROR_SYSCALL && code == 0) {
        return true;
    }
    return ssl_error == SSL_ERROR_SSL && ERR_GET_LIB(code) == ERR_LIB_SSL &&
           ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

// Sets what the peer's certificate must match and what SNI to send, for host (a
// NUL-terminated DNS name or IP literal). Returns false when OpenSSL refuses a value.
bool session_set_peer_name(SSL* ssl, const char* host, bool is_insecure) {
    RW_ASSERT(ssl != nullptr);
    RW_ASSERT(host[0] != '\0');
    const bool is_ip = host_is_ip_literal(host);
    if (!is_insecure) {
        // Without a reference identity OpenSSL verifies the chain but checks no name at
        // all: any valid certificate for any host would pass [SSL_set1_host(3)]. An IP
        // literal is set as an IP explicitly (IP SANs only, never a DNS-name match) rather
        // than relying on SSL_set1_host's own literal detection.
        if (is_ip) {
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1) {
                return false;
            }
        } else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(ssl, host) != 1) {
                return false;
            }
        }
    }
    // SNI carries DNS names only; literal IPs are not permitted (RFC 6066 section 3).
    return is_ip || SSL_set_tlsext_host_name(ssl, host) == 1;
}

// Applies the verification and ALPN part of the client configuration. Returns nullptr on
// success or the step that failed.
const char* context_configure(SSL_CTX* ctx, const TlsContextOptions& options) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        return "cannot set the minimum protocol version to TLS 1.2";
    }
    // Providers never renegotiate; refusing it removes a whole class of mid-stream surprises.
    // A server HelloRequest then gets a no_renegotiation warning from read_plaintext().
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (options.releases_idle_buffers) {
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    }
    if (options.is_insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
        // With SSL_VERIFY_PEER and no callback a bad chain aborts the handshake, and
        // SSL_get_verify_result() keeps the reason [SSL_CTX_set_verify(3)].
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        if (options.ca_file.empty()) {
            if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
                return "cannot use the system CA paths";
            }
        } else {
            const std::string ca_file(options.ca_file);  // OpenSSL wants a C string.
            if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
                return "cannot load the CA file";
            }
        }
    }
    // SSL_CTX_set_alpn_protos returns 0 on success, unlike almost everything else in libssl.
    if (SSL_CTX_set_alpn_protos(ctx, alpn_http_1_1, sizeof(alpn_http_1_1)) != 0) {
        return "cannot set ALPN";
    }
    return nullptr;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// TlsContext

std::unique_ptr<TlsContext> TlsContext::create(const TlsContextOptions& options,
                                               std::string& error) {
    if (options.is_insecure && !options.ca_file.empty()) {
        error = "tls: a CA file and the insecure switch exclude each other";
        return nullptr;
    }
    ERR_clear_error();
    std::unique_ptr<TlsContext> context(new TlsContext());
    context->ctx_ = SSL_CTX_new(TLS_client_method());
    if (context->ctx_ == nullptr) {
        error = std::string("tls: SSL_CTX_new failed: ") + openssl_take_reason();
        return nullptr;
    }
    context->is_insecure_ = options.is_insecure;
    if (const char* step = context_configure(context->ctx_, options); step != nullptr) {
        error = std::string("tls: ") + step;
        if (!options.ca_file.empty()) {
            error += std::string(" '") + std::string(options.ca_file) + "'";
        }
        error += std::string(": ") + openssl_take_reason();
        return nullptr;
    }
    // Client-side caching only, and no internal store: OpenSSL's internal cache is keyed by
    // session id, which a client cannot look up by host. The callback hands us each new
    // session and we keep the newest per host [SSL_CTX_sess_set_new_cb(3)].
    SSL_CTX_set_session_cache_mode(context->ctx_,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(context->ctx_, &TlsContext::session_on_new);
    SSL_CTX_set_app_data(context->ctx_, context.get());
    RW_ASSERT(SSL_CTX_get_verify_mode(context->ctx_) ==
              (options.is_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER));
    return context;
}

TlsContext::~TlsContext() {
    for (SessionSlot& slot : session_slots_) {
        SSL_SESSION_free(slot.session);  // Accepts nullptr.
        slot.session = nullptr;
    }
    SSL_CTX_free(ctx_);
}

uint32_t TlsContext::cached_session_count() const {
    const std::lock_guard<std::mutex> lock(session_mutex_);
    uint32_t count = 0;
    for (const SessionSlot& slot : session_slots_) {
        count += slot.session != nullptr ? 1u : 0u;
    }
    RW_ASSERT(count <= tls_session_hosts_max);
    return count;
}

TlsContext::SessionSlot* TlsContext::session_find(std::string_view host) {
    for (SessionSlot& slot : session_slots_) {
        if (slot.session != nullptr &&
            std::string_view(slot.host.data(), slot.host_bytes) == host) {
            return &slot;
        }
    }
    return nullptr;
}

// Returns a private copy of the remembered session for host (the caller owns one reference)
// or nullptr. Why a copy: libssl writes to the SSL_SESSION an SSL object uses (for example
// it marks it not resumable when the connection dies without close_notify), so an object
// shared by SSLs on several shards would be a data race. The cached object itself is only
// read, and only under the mutex.
ssl_session_st* TlsContext::session_copy_for(std::string_view host) {
    const std::lock_guard<std::mutex> lock(session_mutex_);
    const SessionSlot* slot = session_find(host);
    if (slot == nullptr) {
        return nullptr;
    }
    RW_ASSERT(slot->session != nullptr);
    return SSL_SESSION_dup(slot->session);  // nullptr on allocation failure: no resumption.
}

// Takes ownership of session (one reference) and makes it host's remembered session,
// replacing the previous one or evicting the oldest host when all slots are used.
void TlsContext::session_store(std::string_view host, ssl_session_st* session) {
    RW_ASSERT(session != nullptr);
    RW_ASSERT(host.size() <= tls_host_bytes_max);
    SSL_SESSION* replaced = nullptr;
    {
        const std::lock_guard<std::mutex> lock(session_mutex_);
        SessionSlot* slot = session_find(host);
        if (slot == nullptr) {
            slot = &session_slots_[0];
            for (SessionSlot& candidate : session_slots_) {
                if (candidate.session == nullptr) {
                    slot = &candidate;
                    break;
                }
                if (candidate.stored_tick < slot->stored_tick) {
                    slot = &candidate;
                }
            }
            std::memcpy(slot->host.data(), host.data(), host.size());
            slot->host[host.size()] = '\0';
            slot->host_bytes = static_cast<uint32_t>(host.size());
        }
        replaced = slot->session;
        slot->session = session;
        session_tick_ += 1;
        slot->stored_tick = session_tick_;
    }
    SSL_SESSION_free(replaced);  // Outside the lock; accepts nullptr.
}

void TlsContext::session_forget(std::string_view host) {
    SSL_SESSION* forgotten = nullptr;
    {
        const std::lock_guard<std::mutex> lock(session_mutex_);
        SessionSlot* slot = session_find(host);
        if (slot == nullptr) {
            return;
        }
        forgotten = slot->session;
        slot->session = nullptr;
        slot->host_bytes = 0;
    }
    SSL_SESSION_free(forgotten);
}

// Called by libssl on the shard thread when a session becomes resumable: after a TLS 1.2
// handshake, and for each TLS 1.3 NewSessionTicket (which arrives after the handshake, so
// inside read_plaintext()). We store a duplicate and return 0, leaving the SSL's own object
// to the SSL alone (see session_copy_for for why nothing is shared).
int TlsContext::session_on_new(SSL* ssl, ssl_session_st* session) {
    auto* context = static_cast<TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    const auto* tls = static_cast<const TlsSession*>(SSL_get_app_data(ssl));
    RW_ASSERT(context != nullptr);
    RW_ASSERT(tls != nullptr);
    if (SSL_SESSION_is_resumable(session) != 1) {
        return 0;
    }
    SSL_SESSION* copy = SSL_SESSION_dup(session);
    if (copy != nullptr) {
        context->session_store(tls->host(), copy);
    }
    return 0;  // 0: libssl keeps its reference; we did not take it.
}

// ---------------------------------------------------------------------------------------
// TlsSession

bool TlsSession::start(TlsContext& context, std::string_view host, std::string& error) {
    RW_ASSERT(ssl_ == nullptr);  // reset() before reuse.
    RW_ASSERT(context.ctx_ != nullptr);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (host.empty() || host.size() > tls_host_bytes_max ||
        host.find('\0') != std::string_view::npos) {
        error = "tls: unusable upstream host name";
        return false;
    }
    std::memcpy(host_.data(), host.data(), host.size());
    host_[host.size()] = '\0';
    host_bytes_ = static_cast<uint32_t>(host.size());

    ERR_clear_error();
    SSL* ssl = SSL_new(context.ctx_);
    BIO* bio_in = BIO_new(BIO_s_mem());
    BIO* bio_out = BIO_new(BIO_s_mem());
    if (ssl == nullptr || bio_in == nullptr || bio_out == nullptr) {
        SSL_free(ssl);
        BIO_free(bio_in);
        BIO_free(bio_out);
        error = std::string("tls: cannot create a connection: ") + openssl_take_reason();
        host_bytes_ = 0;
        return false;
    }
    // An empty memory BIO must mean "no data yet" (read returns -1 with the retry flag, so
    // libssl reports SSL_ERROR_WANT_READ), not EOF; feed_end_of_stream() flips it to 0.
    // That is the BIO_s_mem default, set here explicitly because we depend on it
    // [BIO_s_mem(3)].
    BIO_set_mem_eof_return(bio_in, -1);
    SSL_set_bio(ssl, bio_in, bio_out);  // ssl now owns both BIOs [SSL_set_bio(3)].
    SSL_set_connect_state(ssl);
    SSL_set_app_data(ssl, this);

    if (!session_set_peer_name(ssl, host_.data(), context.is_insecure_)) {
        error = std::string("tls: cannot set the upstream host name: ") + openssl_take_reason();
        SSL_free(ssl);
        host_bytes_ = 0;
        return false;
    }
    if (SSL_SESSION* session = context.session_copy_for(host); session != nullptr) {
        // SSL_set_session takes its own reference. A session the server no longer accepts
        // costs nothing: the server answers with a full handshake.
        [[maybe_unused]] const int is_set = SSL_set_session(ssl, session);
        SSL_SESSION_free(session);
    }
    ssl_ = ssl;
    ciphertext_in_ = bio_in;
    ciphertext_out_ = bio_out;
    context_ = &context;
    state_ = State::handshaking;
    has_end_of_stream_ = false;
    reason_bytes_ = 0;
    return true;
}

void TlsSession::reset() {
    if (ssl_ != nullptr) {
        RW_ASSERT(state_ != State::idle);
        SSL_free(ssl_);  // Frees both BIOs and any unsent ciphertext.
    }
    ssl_ = nullptr;
    ciphertext_in_ = nullptr;
    ciphertext_out_ = nullptr;
    context_ = nullptr;
    state_ = State::idle;
    has_end_of_stream_ = false;
    host_bytes_ = 0;
    reason_bytes_ = 0;
}

void TlsSession::feed_ciphertext(const std::byte* data, uint32_t data_bytes) {
    RW_ASSERT(ssl_ != nullptr);
    RW_ASSERT(!has_end_of_stream_);  // Nothing can arrive after the socket's EOF.
    if (data_bytes == 0) {
        return;
    }
    RW_ASSERT(data_bytes <= static_cast<uint32_t>(INT_MAX));
    const int written = BIO_write(ciphertext_in_, data, static_cast<int>(data_bytes));
    // A memory BIO write fails only when it cannot grow: out of memory is fatal (STYLE 4).
    RW_ASSERT(written == static_cast<int>(data_bytes));
}

void TlsSession::feed_end_of_stream() {
    RW_ASSERT(ssl_ != nullptr);
    has_end_of_stream_ = true;
    // From now on an empty input BIO reads as EOF (0, no retry flag), which libssl turns
    // into "unexpected eof" unless close_notify came first [BIO_s_mem(3)].
    BIO_set_mem_eof_return(ciphertext_in_, 0);
}

uint32_t TlsSession::pending_ciphertext() const {
    if (ssl_ == nullptr) {
        return 0;
    }
    const size_t pending_bytes = BIO_ctrl_pending(ciphertext_out_);
    RW_ASSERT(pending_bytes <= UINT32_MAX);
    return static_cast<uint32_t>(pending_bytes);
}

uint32_t TlsSession::take_ciphertext(std::byte* out, uint32_t capacity_bytes) {
    RW_ASSERT(ssl_ != nullptr);
    RW_ASSERT(capacity_bytes <= static_cast<uint32_t>(INT_MAX));
    if (capacity_bytes == 0) {
        return 0;
    }
    // An empty memory BIO returns -1 (retry), not 0.
    const int taken = BIO_read(ciphertext_out_, out, static_cast<int>(capacity_bytes));
    if (taken <= 0) {
        return 0;
    }
    RW_ASSERT(static_cast<uint32_t>(taken) <= capacity_bytes);
    return static_cast<uint32_t>(taken);
}

// Drives the client handshake as far as the fed bytes allow. On want_io the caller sends
// pending_ciphertext() (the ClientHello on the first call, Finished later) and feeds the
// next bytes received. On failed the connection is dead; the reason names a certificate
// problem first, because that is what an operator must act on.
HandshakeResult TlsSession::handshake() {
    RW_ASSERT(ssl_ != nullptr);
    RW_ASSERT(state_ == State::handshaking);
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
        state_ = State::established;
        RW_ASSERT(SSL_is_init_finished(ssl_) == 1);
        return {HandshakeStatus::done, {}};
    }
    const int ssl_error = SSL_get_error(ssl_, rc);
    // SSL_ERROR_WANT_WRITE cannot happen: a memory BIO accepts every write.
    if (ssl_error == SSL_ERROR_WANT_READ) {
        return {HandshakeStatus::want_io, {}};
    }
    state_ = State::failed;
    // A session the server choked on must not be offered again.
    context_->session_forget(host());
    const long verify_result = SSL_get_verify_result(ssl_);
    if (!context_->is_insecure_ && verify_result != X509_V_OK) {
        ERR_clear_error();
        // The X509_V_ERR_* text: "self-signed certificate", "hostname mismatch",
        // "unable to get local issuer certificate", "certificate has expired", ...
        return {HandshakeStatus::failed, set_reason("certificate verify failed: ",
                                                    X509_verify_cert_error_string(verify_result))};
    }
    if (openssl_is_unexpected_eof(ssl_error)) {
        ERR_clear_error();
        return {HandshakeStatus::failed,
                set_reason("TLS handshake failed: ", "upstream closed the connection")};
    }
    return {HandshakeStatus::failed, fail_with("TLS handshake failed: ")};
}

int TlsSession::write_plaintext(const void* data, uint32_t data_bytes) {
    RW_ASSERT(ssl_ != nullptr);
    RW_ASSERT(state_ == State::established);
    RW_ASSERT(data_bytes <= static_cast<uint32_t>(INT_MAX));
    if (data_bytes == 0) {
        return 0;
    }
    ERR_clear_error();
    size_t written_bytes = 0;
    if (SSL_write_ex(ssl_, data, data_bytes, &written_bytes) == 1) {
        // Without SSL_MODE_ENABLE_PARTIAL_WRITE a success means everything was written,
        // and a memory BIO never pushes back [SSL_write(3)].
        RW_ASSERT(written_bytes == data_bytes);
        return static_cast<int>(written_bytes);
    }
    state_ = State::failed;
    [[maybe_unused]] const std::string_view reason = fail_with("TLS write failed: ");
    return -1;
}

// Decrypts what was fed. Besides application data, libssl consumes post-handshake
// messages here (TLS 1.3 NewSessionTicket, which reaches session_on_new; KeyUpdate, whose
// reply waits for the next write) and may queue an alert, so the caller checks
// pending_ciphertext() after the loop of reads as well.
ReadResult TlsSession::read_plaintext(std::byte* out, uint32_t capacity_bytes) {
    RW_ASSERT(ssl_ != nullptr);
    RW_ASSERT(state_ == State::established);
    RW_ASSERT(capacity_bytes > 0);
    ERR_clear_error();
    size_t read_bytes = 0;
    const int rc = SSL_read_ex(ssl_, out, capacity_bytes, &read_bytes);
    if (rc == 1) {
        RW_ASSERT(read_bytes > 0);
        RW_ASSERT(read_bytes <= capacity_bytes);
        return {ReadStatus::bytes, static_cast<uint32_t>(read_bytes), {}};
    }
    const int ssl_error = SSL_get_error(ssl_, rc);
    if (ssl_error == SSL_ERROR_WANT_READ) {
        return {ReadStatus::want_more, 0, {}};
    }
    if (ssl_error == SSL_ERROR_ZERO_RETURN) {  // close_notify [SSL_get_error(3)].
        state_ = State::closed_by_upstream;
        return {ReadStatus::closed_cleanly, 0, {}};
    }
    state_ = State::failed;
    if (openssl_is_unexpected_eof(ssl_error)) {
        ERR_clear_error();
        return {ReadStatus::truncated, 0,
                set_reason("TLS stream truncated: ", "upstream closed without close_notify")};
    }
    return {ReadStatus::failed, 0, fail_with("TLS read failed: ")};
}

void TlsSession::shutdown() {
    if (state_ != State::established && state_ != State::closed_by_upstream) {
        return;  // Never started, still in the handshake, already shut down, or failed.
    }
    RW_ASSERT(ssl_ != nullptr);
    ERR_clear_error();
    // The first call queues close_notify and returns 0 (ours sent, theirs not yet seen) or 1
    // (theirs already received). We never wait for theirs: the socket closes next.
    const int rc = SSL_shutdown(ssl_);
    if (rc < 0) {
        ERR_clear_error();
    }
    state_ = State::shut_down;
}

bool TlsSession::is_resumed() const {
    return ssl_ != nullptr && SSL_session_reused(ssl_) == 1;
}

std::string_view TlsSession::fail_with(const char* prefix) {
    return set_reason(prefix, openssl_take_reason());
}

std::string_view TlsSession::set_reason(const char* prefix, const char* detail) {
    RW_ASSERT(prefix != nullptr);
    RW_ASSERT(detail != nullptr);
    const int length =
        std::snprintf(reason_text_.data(), reason_text_.size(), "%s%s", prefix, detail);
    reason_bytes_ = length <= 0 ? 0u
                    : static_cast<uint32_t>(length) < reason_text_.size()
                        ? static_cast<uint32_t>(length)
                        : static_cast<uint32_t>(reason_text_.size() - 1);
    return last_error();
}

}  // namespace rw
