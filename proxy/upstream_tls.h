// proxy/upstream_tls.h — https channels on the io_uring upstream path: OpenSSL runs over
// memory BIOs (proxy/tls.h) and the ring moves the ciphertext. The handshake runs under
// the connect deadline; the request is written once it is done; received ciphertext is
// decrypted into the very recv buffer it came in, which is then relayed (the decrypt is
// the relay's only copy). Shard thread only.
#pragma once

#include <cstdint>

namespace rw {

struct Gateway;
struct ProxyRequest;
struct UpstreamConn;

// The TCP connection is up: start the handshake (its first flight goes out).
void tls_handshake_start(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request);

// Writes the request (head and body) through the session and sends its ciphertext. False
// when the attempt failed (it is then closed and retried or finished).
[[nodiscard]] bool tls_send_request(Gateway& gateway, UpstreamConn& upstream,
                                    ProxyRequest& request);

// A ciphertext send completed: send what OpenSSL produced meanwhile, or move on to
// receiving.
void tls_on_sent(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request);

// Ciphertext arrived in recv buffer bid: drive the handshake, or decrypt and relay.
void tls_on_recv(Gateway& gateway, UpstreamConn& upstream, uint16_t bid, uint32_t length_bytes);

// Plaintext OpenSSL may still hold (records straddling reads): relay it piece by piece
// while the client's send queue has room; a full queue pauses until it drains.
void tls_drain(Gateway& gateway, UpstreamConn& upstream, ProxyRequest& request);

}  // namespace rw
