// proxy/admin/base_url.h — the admin API's check of a channel's base_url before it is
// stored: the first guard against a channel pointed at the host's own services or a cloud
// metadata endpoint (SSRF). The proxy checks again, on the address it actually connects
// to (proxy/resolver.h), because a host name is not resolved here. Pure, any thread.
#pragma once

#include <string>
#include <string_view>

namespace rw {

// The admin API's check of a channel base_url: http or https only, a host, an optional
// numeric port, no user info, query or fragment. Host literals that are link-local or
// cloud metadata (169.254.0.0/16, fe80::/10, fd00:ec2::254) are always refused; loopback,
// RFC 1918, CGNAT, ULA, unspecified and "localhost" only with allow_private_network.
// Odd IPv4 spellings (2852039166, 0x7f.1, ::ffff:a.b.c.d) are normalised first
// (inet_aton). Host names are not resolved here: the proxy checks the address it
// connects to. Returns an empty string when acceptable, otherwise one sentence.
[[nodiscard]] std::string admin_base_url_check(std::string_view url, bool allow_private_network);

}  // namespace rw
