// bench/micro/tls_bench.cc — the cost of proxy/tls.cc on the upstream path: encrypting a
// 16 KiB record into the memory BIO and taking it out (write_plaintext + take_ciphertext),
// feeding and decrypting one (feed_ciphertext + read_plaintext), and full vs resumed
// handshakes. The peer is an in-memory OpenSSL server. openssl_allocs counts libcrypto/libssl
// mallocs per iteration (CRYPTO_set_mem_functions, installed before OpenSSL allocates).
#include <benchmark/benchmark.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "proxy/tls.h"

namespace rw {
namespace {

std::atomic<uint64_t> openssl_alloc_count{0};

void* count_malloc(size_t bytes, const char*, int) {
    openssl_alloc_count.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(bytes);
}
void* count_realloc(void* pointer, size_t bytes, const char*, int) {
    openssl_alloc_count.fetch_add(1, std::memory_order_relaxed);
    return std::realloc(pointer, bytes);
}
void count_free(void* pointer, const char*, int) {
    std::free(pointer);
}

constexpr uint32_t record_plaintext_bytes = 16384;  // TLS maximum fragment.

// A self-signed P-256 server; the client context is insecure so no CA is needed.
struct Peer {
    SSL_CTX* server_ctx = nullptr;
    std::unique_ptr<TlsContext> client_context;

    Peer() {
        EVP_PKEY* key = EVP_EC_gen("P-256");
        X509* cert = X509_new();
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
        X509_set_pubkey(cert, key);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
        X509_set_issuer_name(cert, X509_get_subject_name(cert));
        X509_sign(cert, key, EVP_sha256());
        server_ctx = SSL_CTX_new(TLS_server_method());
        SSL_CTX_use_certificate(server_ctx, cert);
        SSL_CTX_use_PrivateKey(server_ctx, key);
        X509_free(cert);
        EVP_PKEY_free(key);
        TlsContextOptions options;
        options.is_insecure = true;
        std::string error;
        client_context = TlsContext::create(options, error);
        if (client_context == nullptr) {
            std::abort();
        }
    }
    ~Peer() { SSL_CTX_free(server_ctx); }
};

Peer& peer() {
    static Peer instance;
    return instance;
}

// One connected pair: the engine under test and a server SSL over memory BIOs.
struct Connection {
    TlsSession client;
    SSL* server = nullptr;
    BIO* server_in = nullptr;
    BIO* server_out = nullptr;
    std::vector<std::byte> buffer = std::vector<std::byte>(64 * 1024);

    Connection() {
        server = SSL_new(peer().server_ctx);
        server_in = BIO_new(BIO_s_mem());
        server_out = BIO_new(BIO_s_mem());
        SSL_set_bio(server, server_in, server_out);
        SSL_set_accept_state(server);
    }
    ~Connection() { SSL_free(server); }

    void to_server() {
        while (client.pending_ciphertext() > 0) {
            const uint32_t taken =
                client.take_ciphertext(buffer.data(), static_cast<uint32_t>(buffer.size()));
            BIO_write(server_in, buffer.data(), static_cast<int>(taken));
        }
    }
    void to_client() {
        for (;;) {
            const int taken = BIO_read(server_out, buffer.data(), static_cast<int>(buffer.size()));
            if (taken <= 0) {
                return;
            }
            client.feed_ciphertext(buffer.data(), static_cast<uint32_t>(taken));
        }
    }
    bool handshake() {
        std::string error;
        if (!client.start(*peer().client_context, "localhost", error)) {
            return false;
        }
        for (int turn = 0; turn < 16; turn += 1) {
            const HandshakeResult result = client.handshake();
            to_server();
            SSL_do_handshake(server);
            if (result.status == HandshakeStatus::done) {
                to_client();  // TLS 1.3 tickets.
                std::byte sink[64];
                while (client.read_plaintext(sink, sizeof(sink)).status == ReadStatus::bytes) {
                }
                return true;
            }
            if (result.status == HandshakeStatus::failed) {
                return false;
            }
            to_client();
        }
        return false;
    }
};

void BM_encrypt_record(benchmark::State& state) {
    Connection connection;
    if (!connection.handshake()) {
        state.SkipWithError("handshake failed");
        return;
    }
    std::vector<std::byte> plaintext(record_plaintext_bytes, std::byte{'x'});
    std::vector<std::byte> ciphertext(record_plaintext_bytes + 256);
    const uint64_t allocs_before = openssl_alloc_count.load();
    for (auto _ : state) {
        const int written =
            connection.client.write_plaintext(plaintext.data(), record_plaintext_bytes);
        const uint32_t taken = connection.client.take_ciphertext(
            ciphertext.data(), static_cast<uint32_t>(ciphertext.size()));
        benchmark::DoNotOptimize(written);
        benchmark::DoNotOptimize(taken);
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * record_plaintext_bytes);
    state.counters["openssl_allocs"] = benchmark::Counter(
        double(openssl_alloc_count.load() - allocs_before), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_encrypt_record);

void BM_decrypt_record(benchmark::State& state) {
    Connection connection;
    if (!connection.handshake()) {
        state.SkipWithError("handshake failed");
        return;
    }
    constexpr uint32_t batch_records = 64;
    std::vector<char> plaintext(record_plaintext_bytes, 'x');
    std::vector<std::byte> batch;
    std::vector<std::byte> out(record_plaintext_bytes);
    size_t batch_offset = 0;
    uint32_t record_ciphertext_bytes = 0;
    uint64_t allocs = 0;
    for (auto _ : state) {
        if (batch_offset == batch.size()) {
            // Records carry sequence numbers, so they are made by the real server in order,
            // a batch at a time, outside the timing.
            state.PauseTiming();
            for (uint32_t index = 0; index < batch_records; index += 1) {
                SSL_write(connection.server, plaintext.data(), int(record_plaintext_bytes));
            }
            batch.resize(BIO_ctrl_pending(connection.server_out));
            BIO_read(connection.server_out, batch.data(), int(batch.size()));
            record_ciphertext_bytes = static_cast<uint32_t>(batch.size() / batch_records);
            batch_offset = 0;
            state.ResumeTiming();
        }
        const uint64_t allocs_before = openssl_alloc_count.load(std::memory_order_relaxed);
        connection.client.feed_ciphertext(batch.data() + batch_offset, record_ciphertext_bytes);
        batch_offset += record_ciphertext_bytes;
        uint32_t read_bytes = 0;
        for (;;) {
            const ReadResult result =
                connection.client.read_plaintext(out.data(), static_cast<uint32_t>(out.size()));
            if (result.status != ReadStatus::bytes) {
                break;
            }
            read_bytes += result.plaintext_bytes;
        }
        allocs += openssl_alloc_count.load(std::memory_order_relaxed) - allocs_before;
        if (read_bytes != record_plaintext_bytes) {
            state.SkipWithError("short read");
            return;
        }
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * record_plaintext_bytes);
    state.counters["openssl_allocs"] =
        benchmark::Counter(double(allocs), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_decrypt_record);

// start() + the client half of a handshake (the in-memory server's work is included, so
// this is an upper bound for the client side).
void BM_handshake(benchmark::State& state) {
    const bool is_resumed = state.range(0) == 1;
    {
        Connection warm;  // Leaves a session in the cache for the resumed case.
        if (!warm.handshake()) {
            state.SkipWithError("handshake failed");
            return;
        }
    }
    for (auto _ : state) {
        Connection connection;
        std::string error;
        // No session is ever stored for fresh.localhost (its tickets are never read), so
        // every handshake to it is a full one.
        const char* host = is_resumed ? "localhost" : "fresh.localhost";
        if (!connection.client.start(*peer().client_context, host, error)) {
            state.SkipWithError("start failed");
            return;
        }
        bool is_done = false;
        for (int turn = 0; turn < 16 && !is_done; turn += 1) {
            const HandshakeResult result = connection.client.handshake();
            connection.to_server();
            SSL_do_handshake(connection.server);
            is_done = result.status == HandshakeStatus::done;
            if (result.status == HandshakeStatus::failed) {
                state.SkipWithError("handshake failed");
                return;
            }
            if (!is_done) {
                connection.to_client();
            }
        }
        if (connection.client.is_resumed() != is_resumed) {
            state.SkipWithError("unexpected resumption state");
            return;
        }
    }
}
BENCHMARK(BM_handshake)->Arg(0)->Arg(1)->ArgName("resumed");

}  // namespace
}  // namespace rw

int main(int argc, char** argv) {
    // Must run before OpenSSL allocates anything, or it is refused [CRYPTO_set_mem_functions(3)].
    if (CRYPTO_set_mem_functions(rw::count_malloc, rw::count_realloc, rw::count_free) != 1) {
        return 1;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
