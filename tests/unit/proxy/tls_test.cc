// tests/unit/proxy/tls_test.cc — proxy/tls.cc against a real OpenSSL server running in the
// same thread over memory BIOs: bytes are pumped between the two by hand, no sockets. The
// test PKI (a CA, a leaf for localhost/127.0.0.1, a self-signed leaf; EC P-256) is made once
// per process with OpenSSL's APIs; the CA is written to a temp dir for the ca_file option.
#include "proxy/tls.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace rw {
namespace {

// ---------------------------------------------------------------------------------------
// Test PKI

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    ASSERT_NE(extension, nullptr) << value;
    ASSERT_EQ(X509_add_ext(cert, extension, -1), 1);
    X509_EXTENSION_free(extension);
}

// A certificate for key, named common_name, signed by issuer_key (self-signed when issuer is
// nullptr). san is a subjectAltName value or nullptr.
X509* make_cert(EVP_PKEY* key, const char* common_name, X509* issuer, EVP_PKEY* issuer_key,
                long serial, bool is_ca, const char* san) {
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
    X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
    X509* signer = issuer != nullptr ? issuer : cert;
    add_extension(cert, signer, NID_subject_key_identifier, "hash");
    add_extension(cert, signer, NID_authority_key_identifier, "keyid:always");
    if (is_ca) {
        add_extension(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(cert, signer, NID_ext_key_usage, "serverAuth");
    }
    if (san != nullptr) {
        add_extension(cert, signer, NID_subject_alt_name, san);
    }
    EXPECT_GT(X509_sign(cert, issuer_key, EVP_sha256()), 0);
    return cert;
}

struct TestPki {
    EVP_PKEY* ca_key = nullptr;
    X509* ca_cert = nullptr;
    EVP_PKEY* server_key = nullptr;
    X509* server_cert = nullptr;  // localhost + 127.0.0.1, issued by the CA.
    EVP_PKEY* self_signed_key = nullptr;
    X509* self_signed_cert = nullptr;  // localhost, issued by itself.
    std::string temp_dir;
    std::string ca_file;

    TestPki() {
        ca_key = EVP_EC_gen("P-256");
        server_key = EVP_EC_gen("P-256");
        self_signed_key = EVP_EC_gen("P-256");
        ca_cert = make_cert(ca_key, "ringway test CA", nullptr, ca_key, 1, true, nullptr);
        server_cert = make_cert(server_key, "localhost", ca_cert, ca_key, 2, false,
                                "DNS:localhost,IP:127.0.0.1");
        self_signed_cert = make_cert(self_signed_key, "localhost", nullptr, self_signed_key, 3,
                                     false, "DNS:localhost");
        char dir_template[] = "/tmp/rw_tls_test_XXXXXX";
        const char* dir = mkdtemp(dir_template);
        if (dir != nullptr) {
            temp_dir = dir;
            ca_file = temp_dir + "/ca.pem";
            FILE* file = std::fopen(ca_file.c_str(), "w");
            if (file != nullptr) {
                PEM_write_X509(file, ca_cert);
                std::fclose(file);
            }
        }
    }
    ~TestPki() {
        if (!ca_file.empty()) {
            unlink(ca_file.c_str());
            rmdir(temp_dir.c_str());
        }
        X509_free(ca_cert);
        X509_free(server_cert);
        X509_free(self_signed_cert);
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(server_key);
        EVP_PKEY_free(self_signed_key);
    }
};

const TestPki& pki() {
    static const TestPki instance;
    return instance;
}

// ---------------------------------------------------------------------------------------
// The in-memory upstream: an OpenSSL server SSL over two memory BIOs.

struct ServerOptions {
    bool is_self_signed = false;
    int min_version = 0;
    int max_version = 0;
    bool is_legacy_security = false;  // @SECLEVEL=0, needed for TLS 1.1 in OpenSSL 3.
};

// Records what the client offered in the Server that owns ssl (app data), so servers on
// several threads can share one ServerContext.
int server_on_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_bytes,
                   const unsigned char* offered, unsigned int offered_bytes, void*) {
    auto* seen = static_cast<std::string*>(SSL_get_app_data(ssl));
    seen->assign(reinterpret_cast<const char*>(offered), offered_bytes);
    static const unsigned char ours[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, out_bytes, ours, sizeof(ours), offered, offered_bytes) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

class ServerContext {
public:
    explicit ServerContext(const ServerOptions& options = {}) {
        ctx_ = SSL_CTX_new(TLS_server_method());
        const TestPki& keys = pki();
        X509* cert = options.is_self_signed ? keys.self_signed_cert : keys.server_cert;
        EVP_PKEY* key = options.is_self_signed ? keys.self_signed_key : keys.server_key;
        EXPECT_EQ(SSL_CTX_use_certificate(ctx_, cert), 1);
        EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_, key), 1);
        if (options.is_legacy_security) {
            SSL_CTX_set_security_level(ctx_, 0);
            EXPECT_EQ(SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0"), 1);
        }
        if (options.min_version != 0) {
            SSL_CTX_set_min_proto_version(ctx_, options.min_version);
        }
        if (options.max_version != 0) {
            SSL_CTX_set_max_proto_version(ctx_, options.max_version);
        }
        SSL_CTX_set_alpn_select_cb(ctx_, server_on_alpn, nullptr);
    }
    ~ServerContext() { SSL_CTX_free(ctx_); }
    ServerContext(const ServerContext&) = delete;
    ServerContext& operator=(const ServerContext&) = delete;

    SSL_CTX* ctx() { return ctx_; }

private:
    SSL_CTX* ctx_ = nullptr;
};

class Server {
public:
    explicit Server(ServerContext& context) {
        ssl_ = SSL_new(context.ctx());
        in_ = BIO_new(BIO_s_mem());
        out_ = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl_, in_, out_);
        SSL_set_accept_state(ssl_);
        SSL_set_app_data(ssl_, &alpn_offered);
    }
    ~Server() { SSL_free(ssl_); }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    SSL* ssl() { return ssl_; }
    void feed(const std::byte* data, uint32_t data_bytes) {
        ASSERT_EQ(BIO_write(in_, data, static_cast<int>(data_bytes)), static_cast<int>(data_bytes));
    }
    uint32_t pending() const { return static_cast<uint32_t>(BIO_ctrl_pending(out_)); }
    uint32_t take(std::byte* out, uint32_t capacity_bytes) {
        const int taken = BIO_read(out_, out, static_cast<int>(capacity_bytes));
        return taken > 0 ? static_cast<uint32_t>(taken) : 0;
    }
    // Advances the server handshake; returns false once it failed fatally.
    bool step() {
        if (SSL_is_init_finished(ssl_) == 1) {
            return true;
        }
        ERR_clear_error();
        const int rc = SSL_do_handshake(ssl_);
        if (rc == 1) {
            return true;
        }
        const int ssl_error = SSL_get_error(ssl_, rc);
        ERR_clear_error();
        return ssl_error == SSL_ERROR_WANT_READ;
    }
    // Reads every plaintext byte available; returns the last SSL_get_error() value
    // (SSL_ERROR_WANT_READ when simply drained).
    int read_all(std::string& out) {
        char buffer[8192];
        for (;;) {
            ERR_clear_error();
            size_t read_bytes = 0;
            const int rc = SSL_read_ex(ssl_, buffer, sizeof(buffer), &read_bytes);
            if (rc == 1) {
                out.append(buffer, read_bytes);
                continue;
            }
            const int ssl_error = SSL_get_error(ssl_, rc);
            ERR_clear_error();
            return ssl_error;
        }
    }
    void write(std::string_view text) {
        size_t written_bytes = 0;
        ASSERT_EQ(SSL_write_ex(ssl_, text.data(), text.size(), &written_bytes), 1);
        ASSERT_EQ(written_bytes, text.size());
    }
    std::string server_name() const {
        const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
        return name != nullptr ? name : "";
    }

    std::string alpn_offered;  // Raw wire list the client offered.

private:
    SSL* ssl_ = nullptr;
    BIO* in_ = nullptr;
    BIO* out_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// Pumps

// Moves everything the client queued to the server; returns the byte count.
uint32_t pump_to_server(TlsSession& client, Server& server) {
    std::byte buffer[4096];
    uint32_t moved_bytes = 0;
    while (client.pending_ciphertext() > 0) {
        const uint32_t taken = client.take_ciphertext(buffer, sizeof(buffer));
        EXPECT_GT(taken, 0u);
        if (taken == 0) {
            break;
        }
        server.feed(buffer, taken);
        moved_bytes += taken;
    }
    return moved_bytes;
}

// Drives both handshakes until the client is done or failed, feeding the client at most
// feed_chunk_bytes between handshake() calls. Stops (returning want_io) if nothing moves.
HandshakeResult drive_handshake(TlsSession& client, Server& server, uint32_t feed_chunk_bytes) {
    HandshakeResult result = client.handshake();
    for (int turn = 0; turn < 64 && result.status == HandshakeStatus::want_io; turn += 1) {
        const uint32_t to_server_bytes = pump_to_server(client, server);
        server.step();
        uint32_t to_client_bytes = 0;
        std::byte buffer[4096];
        while (server.pending() > 0 && result.status == HandshakeStatus::want_io) {
            const uint32_t cap = std::min<uint32_t>(feed_chunk_bytes, sizeof(buffer));
            const uint32_t taken = server.take(buffer, cap);
            client.feed_ciphertext(buffer, taken);
            to_client_bytes += taken;
            result = client.handshake();
        }
        if (to_server_bytes == 0 && to_client_bytes == 0) {
            break;  // Stalled.
        }
    }
    // Whatever the client still queued (its Finished, an alert) goes to the server so its
    // side completes too.
    pump_to_server(client, server);
    server.step();
    return result;
}

struct Received {
    std::string text;
    ReadStatus last_status = ReadStatus::want_more;
    std::string last_reason;
};

// Reads every plaintext byte the client can produce from what it has been fed.
void client_read_all(TlsSession& client, Received& received, uint32_t capacity_bytes) {
    std::vector<std::byte> buffer(capacity_bytes);
    for (;;) {
        const ReadResult result = client.read_plaintext(buffer.data(), capacity_bytes);
        received.last_status = result.status;
        if (result.status != ReadStatus::bytes) {
            received.last_reason = std::string(result.reason);
            return;
        }
        EXPECT_LE(result.plaintext_bytes, capacity_bytes);
        received.text.append(reinterpret_cast<const char*>(buffer.data()), result.plaintext_bytes);
    }
}

// Moves all server output to the client, feed_chunk_bytes at a time, reading after each.
Received pump_to_client(Server& server, TlsSession& client, uint32_t feed_chunk_bytes,
                        uint32_t read_capacity_bytes = 16384) {
    Received received;
    std::byte buffer[4096];
    while (server.pending() > 0) {
        const uint32_t cap = std::min<uint32_t>(feed_chunk_bytes, sizeof(buffer));
        const uint32_t taken = server.take(buffer, cap);
        client.feed_ciphertext(buffer, taken);
        client_read_all(client, received, read_capacity_bytes);
        if (received.last_status != ReadStatus::want_more) {
            break;
        }
    }
    return received;
}

std::unique_ptr<TlsContext> make_context(const TlsContextOptions& options) {
    std::string error;
    std::unique_ptr<TlsContext> context = TlsContext::create(options, error);
    EXPECT_NE(context, nullptr) << error;
    EXPECT_TRUE(error.empty()) << error;
    return context;
}

std::unique_ptr<TlsContext> make_ca_file_context() {
    TlsContextOptions options;
    options.ca_file = pki().ca_file;
    return make_context(options);
}

std::string pattern_text(uint32_t length_bytes, uint32_t seed) {
    std::string text(length_bytes, '\0');
    uint32_t state = seed;
    for (char& c : text) {
        state = state * 1103515245u + 12345u;
        c = static_cast<char>('a' + (state >> 16) % 26);
    }
    return text;
}

// One request from the client and one response back, both checked byte for byte.
void round_trip(TlsSession& client, Server& server, std::string_view request,
                std::string_view response, uint32_t feed_chunk_bytes) {
    ASSERT_EQ(client.write_plaintext(request.data(), static_cast<uint32_t>(request.size())),
              static_cast<int>(request.size()));
    EXPECT_GT(client.pending_ciphertext(), request.size());  // Encrypted + framed.
    pump_to_server(client, server);
    std::string server_got;
    EXPECT_EQ(server.read_all(server_got), SSL_ERROR_WANT_READ);
    EXPECT_EQ(server_got, request);
    server.write(response);
    const Received received = pump_to_client(server, client, feed_chunk_bytes);
    EXPECT_EQ(received.last_status, ReadStatus::want_more) << received.last_reason;
    EXPECT_EQ(received.text, response);
}

constexpr std::string_view request_text =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}";
constexpr std::string_view response_text =
    "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";

// ---------------------------------------------------------------------------------------
// Tests

TEST(Tls, HandshakeAndRoundTripWithCaFile) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    EXPECT_TRUE(client.is_started());
    EXPECT_FALSE(client.is_established());

    const HandshakeResult result = drive_handshake(client, server, 4096);
    ASSERT_EQ(result.status, HandshakeStatus::done) << result.reason;
    EXPECT_TRUE(client.is_established());
    EXPECT_FALSE(client.is_resumed());
    EXPECT_EQ(SSL_is_init_finished(server.ssl()), 1);
    EXPECT_EQ(SSL_version(server.ssl()), TLS1_3_VERSION);
    EXPECT_EQ(server.server_name(), "localhost");  // SNI was sent.
    EXPECT_EQ(server.alpn_offered, std::string("\x08http/1.1"));
    round_trip(client, server, request_text, response_text, 4096);
}

TEST(Tls, LargePayloadCrossesManyRecordsBothWays) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);

    const std::string upload = pattern_text(100 * 1024, 1);
    ASSERT_EQ(client.write_plaintext(upload.data(), static_cast<uint32_t>(upload.size())),
              static_cast<int>(upload.size()));
    // 100 KiB needs at least 7 records of <= 16 KiB, each with header and tag.
    EXPECT_GE(client.pending_ciphertext(), upload.size() + 7 * (5 + 16));
    pump_to_server(client, server);
    EXPECT_EQ(client.pending_ciphertext(), 0u);
    std::string server_got;
    EXPECT_EQ(server.read_all(server_got), SSL_ERROR_WANT_READ);
    EXPECT_EQ(server_got.size(), upload.size());
    EXPECT_TRUE(server_got == upload);

    const std::string download = pattern_text(100 * 1024, 2);
    server.write(download);
    // A read buffer smaller than a record: records are handed out in parts.
    const Received received = pump_to_client(server, client, 4096, 1000);
    EXPECT_EQ(received.last_status, ReadStatus::want_more);
    EXPECT_EQ(received.text.size(), download.size());
    EXPECT_TRUE(received.text == download);
}

TEST(Tls, FedOneByteAtATime) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    const HandshakeResult result = drive_handshake(client, server, 1);
    ASSERT_EQ(result.status, HandshakeStatus::done) << result.reason;
    round_trip(client, server, request_text, response_text, 1);
    const std::string download = pattern_text(20000, 3);  // Spans two records.
    server.write(download);
    const Received received = pump_to_client(server, client, 1);
    EXPECT_EQ(received.last_status, ReadStatus::want_more);
    EXPECT_TRUE(received.text == download);
}

TEST(Tls, SystemPathsDoNotTrustTestCa) {
    auto context = make_context({});
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    const HandshakeResult result = drive_handshake(client, server, 4096);
    EXPECT_EQ(result.status, HandshakeStatus::failed);
    EXPECT_EQ(result.reason, "certificate verify failed: unable to get local issuer certificate");
    EXPECT_EQ(client.last_error(), result.reason);
    EXPECT_FALSE(client.is_established());
    EXPECT_NE(SSL_is_init_finished(server.ssl()), 1);
}

TEST(Tls, SelfSignedServerIsRejected) {
    auto context = make_ca_file_context();
    ServerContext server_context({.is_self_signed = true});
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    const HandshakeResult result = drive_handshake(client, server, 4096);
    EXPECT_EQ(result.status, HandshakeStatus::failed);
    EXPECT_EQ(result.reason, "certificate verify failed: self-signed certificate");
}

TEST(Tls, WrongHostnameIsRejected) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "api.example.com", error)) << error;
    const HandshakeResult result = drive_handshake(client, server, 4096);
    EXPECT_EQ(result.status, HandshakeStatus::failed);
    EXPECT_EQ(result.reason, "certificate verify failed: hostname mismatch");
    EXPECT_EQ(server.server_name(), "api.example.com");
}

TEST(Tls, SubdomainDoesNotMatchExactName) {
    // A certificate for localhost does not cover names below it.
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "sub.localhost", error)) << error;
    const HandshakeResult result = drive_handshake(client, server, 4096);
    EXPECT_EQ(result.status, HandshakeStatus::failed);
    EXPECT_EQ(result.reason, "certificate verify failed: hostname mismatch");
}

TEST(Tls, IpLiteralIsVerifiedAgainstIpSanAndSendsNoSni) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    {
        Server server(server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*context, "127.0.0.1", error)) << error;
        const HandshakeResult result = drive_handshake(client, server, 4096);
        ASSERT_EQ(result.status, HandshakeStatus::done) << result.reason;
        EXPECT_EQ(server.server_name(), "");  // No SNI for an IP literal.
        EXPECT_EQ(client.host(), "127.0.0.1");
    }
    {
        Server server(server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*context, "127.0.0.2", error)) << error;
        const HandshakeResult result = drive_handshake(client, server, 4096);
        EXPECT_EQ(result.status, HandshakeStatus::failed);
        EXPECT_EQ(result.reason, "certificate verify failed: IP address mismatch");
    }
    {
        Server server(server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*context, "[::1]", error)) << error;
        EXPECT_EQ(client.host(), "::1");
        const HandshakeResult result = drive_handshake(client, server, 4096);
        EXPECT_EQ(result.status, HandshakeStatus::failed);
        EXPECT_EQ(result.reason, "certificate verify failed: IP address mismatch");
        EXPECT_EQ(server.server_name(), "");
    }
}

TEST(Tls, InsecureSkipsVerificationButStillSendsSni) {
    TlsContextOptions options;
    options.is_insecure = true;
    auto context = make_context(options);
    ASSERT_TRUE(context->is_insecure());
    ServerContext server_context({.is_self_signed = true});
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "wrong.example.com", error)) << error;
    const HandshakeResult result = drive_handshake(client, server, 4096);
    ASSERT_EQ(result.status, HandshakeStatus::done) << result.reason;
    EXPECT_EQ(server.server_name(), "wrong.example.com");
    round_trip(client, server, request_text, response_text, 4096);
}

TEST(Tls, ContextCreationErrors) {
    std::string error;
    TlsContextOptions missing;
    missing.ca_file = "/nonexistent/ringway-ca.pem";
    EXPECT_EQ(TlsContext::create(missing, error), nullptr);
    EXPECT_NE(error.find("cannot load the CA file '/nonexistent/ringway-ca.pem'"),
              std::string::npos)
        << error;

    error.clear();
    TlsContextOptions both;
    both.ca_file = pki().ca_file;
    both.is_insecure = true;
    EXPECT_EQ(TlsContext::create(both, error), nullptr);
    EXPECT_FALSE(error.empty());

    auto context = make_ca_file_context();
    TlsSession client;
    error.clear();
    EXPECT_FALSE(client.start(*context, "", error));
    EXPECT_FALSE(error.empty());
    EXPECT_FALSE(client.is_started());
    error.clear();
    EXPECT_FALSE(client.start(*context, std::string(300, 'a'), error));
    EXPECT_FALSE(error.empty());
}

TEST(Tls, Tls11OnlyServerIsRefused) {
    ServerOptions legacy;
    legacy.max_version = TLS1_1_VERSION;
    legacy.is_legacy_security = true;
    ServerContext server_context(legacy);

    // Control: the server really can speak TLS 1.1 to a client that allows it, so the
    // refusal below is ours and not a broken server.
    {
        SSL_CTX* old_ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(old_ctx, TLS1_VERSION);
        SSL_CTX_set_security_level(old_ctx, 0);
        ASSERT_EQ(SSL_CTX_set_cipher_list(old_ctx, "DEFAULT:@SECLEVEL=0"), 1);
        SSL* old_client = SSL_new(old_ctx);
        BIO* c_in = BIO_new(BIO_s_mem());
        BIO* c_out = BIO_new(BIO_s_mem());
        SSL_set_bio(old_client, c_in, c_out);
        SSL_set_connect_state(old_client);
        Server server(server_context);
        int rc = 0;
        for (int turn = 0; turn < 16 && rc != 1; turn += 1) {
            rc = SSL_do_handshake(old_client);
            char buffer[8192];
            int moved = BIO_read(c_out, buffer, sizeof(buffer));
            if (moved > 0) {
                server.feed(reinterpret_cast<std::byte*>(buffer), static_cast<uint32_t>(moved));
            }
            server.step();
            moved =
                static_cast<int>(server.take(reinterpret_cast<std::byte*>(buffer), sizeof(buffer)));
            if (moved > 0) {
                BIO_write(c_in, buffer, moved);
            }
        }
        EXPECT_EQ(rc, 1);
        EXPECT_EQ(SSL_version(old_client), TLS1_1_VERSION);
        SSL_free(old_client);
        SSL_CTX_free(old_ctx);
        ERR_clear_error();
    }

    auto context = make_ca_file_context();
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    const HandshakeResult result = drive_handshake(client, server, 4096);
    EXPECT_EQ(result.status, HandshakeStatus::failed);
    EXPECT_EQ(result.reason, "TLS handshake failed: tlsv1 alert protocol version");
    EXPECT_NE(SSL_is_init_finished(server.ssl()), 1);
}

class TlsResumption : public ::testing::TestWithParam<int> {};

TEST_P(TlsResumption, SecondSessionResumes) {
    auto context = make_ca_file_context();
    ServerOptions options;
    options.max_version = GetParam();
    ServerContext server_context(options);
    EXPECT_EQ(context->cached_session_count(), 0u);
    {
        Server server(server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
        ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
        EXPECT_FALSE(client.is_resumed());
        // TLS 1.3 tickets come after the handshake: the client sees them while reading.
        round_trip(client, server, request_text, response_text, 4096);
        EXPECT_EQ(SSL_version(server.ssl()), GetParam());
        client.shutdown();
    }
    EXPECT_EQ(context->cached_session_count(), 1u);
    {
        Server server(server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
        ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
        EXPECT_TRUE(client.is_resumed());
        EXPECT_EQ(SSL_session_reused(server.ssl()), 1);
        round_trip(client, server, request_text, response_text, 4096);
    }
    {
        // Another host on the same context has no session to offer.
        Server server(server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*context, "127.0.0.1", error)) << error;
        ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
        EXPECT_FALSE(client.is_resumed());
        EXPECT_EQ(SSL_session_reused(server.ssl()), 0);
    }
    {
        // A fresh context knows nothing: no resumption.
        auto other_context = make_ca_file_context();
        Server server(server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*other_context, "localhost", error)) << error;
        ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
        EXPECT_FALSE(client.is_resumed());
    }
}

INSTANTIATE_TEST_SUITE_P(Versions, TlsResumption, ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& version_info) {
                             return version_info.param == TLS1_3_VERSION ? std::string("tls13")
                                                                         : std::string("tls12");
                         });

TEST(Tls, SessionCacheIsBoundedAndForgetsOnFailure) {
    TlsContextOptions options;
    options.is_insecure = true;  // Lets one cert serve many host names.
    auto context = make_context(options);
    ServerContext server_context;
    for (uint32_t index = 0; index < tls_session_hosts_max + 3; index += 1) {
        Server server(server_context);
        TlsSession client;
        std::string error;
        const std::string host = "host" + std::to_string(index) + ".test";
        ASSERT_TRUE(client.start(*context, host, error)) << error;
        ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
        round_trip(client, server, request_text, response_text, 4096);
    }
    EXPECT_EQ(context->cached_session_count(), tls_session_hosts_max);

    // A failed handshake drops that host's session.
    auto verifying = make_ca_file_context();
    {
        Server server(server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*verifying, "localhost", error)) << error;
        ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
        round_trip(client, server, request_text, response_text, 4096);
    }
    EXPECT_EQ(verifying->cached_session_count(), 1u);
    {
        ServerContext bad_server_context({.is_self_signed = true});
        Server server(bad_server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*verifying, "localhost", error)) << error;
        EXPECT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::failed);
    }
    EXPECT_EQ(verifying->cached_session_count(), 0u);
}

TEST(Tls, CloseNotifyIsCleanClose) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
    server.write("last words");
    EXPECT_EQ(SSL_shutdown(server.ssl()), 0);  // close_notify queued.
    Received received = pump_to_client(server, client, 4096);
    EXPECT_EQ(received.text, "last words");
    EXPECT_EQ(received.last_status, ReadStatus::closed_cleanly);
    // Even if the socket then reports EOF, the stream had ended properly.
    client.feed_end_of_stream();
    client.shutdown();  // Answers with our close_notify.
    EXPECT_GT(client.pending_ciphertext(), 0u);
}

TEST(Tls, EofWithoutCloseNotifyIsTruncation) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
    server.write("partial answ");
    Received received = pump_to_client(server, client, 4096);
    EXPECT_EQ(received.text, "partial answ");
    EXPECT_EQ(received.last_status, ReadStatus::want_more);
    client.feed_end_of_stream();  // The upstream vanished: recv returned 0.
    std::byte buffer[64];
    const ReadResult result = client.read_plaintext(buffer, sizeof(buffer));
    EXPECT_EQ(result.status, ReadStatus::truncated);
    EXPECT_EQ(result.reason, "TLS stream truncated: upstream closed without close_notify");
    // libssl queued a fatal alert (one encrypted record); sending it is pointless when the
    // socket is gone, but it is there.
    const uint32_t alert_bytes = client.pending_ciphertext();
    EXPECT_EQ(alert_bytes, 5u + 2u + 1u + 16u);
    client.shutdown();  // No close_notify after a fatal error.
    EXPECT_EQ(client.pending_ciphertext(), alert_bytes);
}

TEST(Tls, EofInsideARecordIsTruncation) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
    server.write(pattern_text(1000, 4));
    std::byte half[400];
    const uint32_t taken = server.take(half, sizeof(half));
    ASSERT_EQ(taken, sizeof(half));
    client.feed_ciphertext(half, taken);
    client.feed_end_of_stream();
    std::byte buffer[2048];
    const ReadResult result = client.read_plaintext(buffer, sizeof(buffer));
    EXPECT_EQ(result.status, ReadStatus::truncated);
}

TEST(Tls, EofDuringHandshakeFails) {
    auto context = make_ca_file_context();
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    EXPECT_EQ(client.handshake().status, HandshakeStatus::want_io);
    EXPECT_GT(client.pending_ciphertext(), 0u);  // The ClientHello.
    client.feed_end_of_stream();
    const HandshakeResult result = client.handshake();
    EXPECT_EQ(result.status, HandshakeStatus::failed);
    EXPECT_EQ(result.reason, "TLS handshake failed: upstream closed the connection");
}

TEST(Tls, PlainHttpAnswerFailsTheHandshake) {
    auto context = make_ca_file_context();
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    EXPECT_EQ(client.handshake().status, HandshakeStatus::want_io);
    const std::string_view http = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    client.feed_ciphertext(reinterpret_cast<const std::byte*>(http.data()),
                           static_cast<uint32_t>(http.size()));
    const HandshakeResult result = client.handshake();
    EXPECT_EQ(result.status, HandshakeStatus::failed);
    EXPECT_EQ(result.reason, "TLS handshake failed: wrong version number");
}

TEST(Tls, ClientShutdownSendsCloseNotify) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
    client.shutdown();
    EXPECT_GT(client.pending_ciphertext(), 0u);
    pump_to_server(client, server);
    std::string server_got;
    EXPECT_EQ(server.read_all(server_got), SSL_ERROR_ZERO_RETURN);
    EXPECT_TRUE(server_got.empty());
    client.shutdown();  // Idempotent: nothing more queued.
    EXPECT_EQ(client.pending_ciphertext(), 0u);
}

TEST(Tls, KeyUpdateReplyWaitsForTheNextWrite) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
    round_trip(client, server, request_text, response_text, 4096);  // Drains tickets.
    ASSERT_EQ(client.pending_ciphertext(), 0u);
    // A one-byte TLS 1.3 record: 5 header + 1 data + 1 content type + 16 tag.
    constexpr uint32_t one_byte_record_bytes = 23;
    ASSERT_EQ(client.write_plaintext("y", 1), 1);
    EXPECT_EQ(client.pending_ciphertext(), one_byte_record_bytes);
    pump_to_server(client, server);
    std::string server_got;
    EXPECT_EQ(server.read_all(server_got), SSL_ERROR_WANT_READ);
    EXPECT_EQ(server_got, "y");

    ASSERT_EQ(SSL_key_update(server.ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
    server.write("after key update");
    const Received received = pump_to_client(server, client, 4096);
    EXPECT_EQ(received.text, "after key update");
    // OpenSSL 3.0 does not answer inside SSL_read: the client's own KeyUpdate goes out in
    // front of its next record (RFC 8446 4.6.3 only requires it before the next data).
    EXPECT_EQ(client.pending_ciphertext(), 0u);
    ASSERT_EQ(client.write_plaintext("y", 1), 1);
    EXPECT_GT(client.pending_ciphertext(), one_byte_record_bytes);
    pump_to_server(client, server);
    server_got.clear();
    EXPECT_EQ(server.read_all(server_got), SSL_ERROR_WANT_READ);
    EXPECT_EQ(server_got, "y");
    round_trip(client, server, request_text, response_text, 4096);
}

TEST(Tls, RenegotiationRequestIsRefusedWithAnAlertFromRead) {
    auto context = make_ca_file_context();
    ServerOptions tls12;
    tls12.max_version = TLS1_2_VERSION;
    ServerContext server_context(tls12);
    Server server(server_context);
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
    round_trip(client, server, request_text, response_text, 4096);
    ASSERT_EQ(client.pending_ciphertext(), 0u);

    ASSERT_EQ(SSL_renegotiate(server.ssl()), 1);
    EXPECT_EQ(SSL_do_handshake(server.ssl()), 1);  // Queues a HelloRequest.
    EXPECT_GT(server.pending(), 0u);
    const Received received = pump_to_client(server, client, 4096);
    EXPECT_EQ(received.last_status, ReadStatus::want_more) << received.last_reason;
    EXPECT_TRUE(received.text.empty());
    // read_plaintext() produced ciphertext: the no_renegotiation warning alert.
    EXPECT_GT(client.pending_ciphertext(), 0u);
    EXPECT_TRUE(client.is_established());
}

TEST(Tls, ResetAllowsReuseOfTheSlot) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    TlsSession client;
    for (int attempt = 0; attempt < 3; attempt += 1) {
        Server server(server_context);
        std::string error;
        ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
        ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
        round_trip(client, server, request_text, response_text, 4096);
        client.reset();
        EXPECT_FALSE(client.is_started());
        EXPECT_EQ(client.pending_ciphertext(), 0u);
    }
}

// Shards share one context: handshakes on several threads at once, all resuming the same
// host's session. Run under the tsan preset to check the locking claim in tls.h.
TEST(Tls, ContextIsSharedByThreads) {
    auto context = make_ca_file_context();
    ServerContext server_context;
    {
        Server server(server_context);
        TlsSession client;
        std::string error;
        ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
        ASSERT_EQ(drive_handshake(client, server, 4096).status, HandshakeStatus::done);
        round_trip(client, server, request_text, response_text, 4096);
    }
    ASSERT_EQ(context->cached_session_count(), 1u);
    constexpr int thread_count = 4;
    constexpr int connections_per_thread = 25;
    std::atomic<int> done_count{0};
    std::atomic<int> resumed_count{0};
    std::vector<std::thread> threads;
    for (int index = 0; index < thread_count; index += 1) {
        threads.emplace_back([&] {
            for (int connection = 0; connection < connections_per_thread; connection += 1) {
                Server server(server_context);
                TlsSession client;
                std::string error;
                if (!client.start(*context, "localhost", error)) {
                    continue;
                }
                if (drive_handshake(client, server, 4096).status != HandshakeStatus::done) {
                    continue;
                }
                round_trip(client, server, request_text, response_text, 4096);
                done_count.fetch_add(1);
                resumed_count.fetch_add(client.is_resumed() ? 1 : 0);
                client.shutdown();
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(done_count.load(), thread_count * connections_per_thread);
    EXPECT_EQ(resumed_count.load(), thread_count * connections_per_thread);
    EXPECT_EQ(context->cached_session_count(), 1u);
}

TEST(TlsDeathTest, WriteBeforeHandshakeIsAProgrammerError) {
    auto context = make_ca_file_context();
    TlsSession client;
    std::string error;
    ASSERT_TRUE(client.start(*context, "localhost", error)) << error;
    EXPECT_DEATH((void)client.write_plaintext("x", 1), "assertion failed");
}

}  // namespace
}  // namespace rw
