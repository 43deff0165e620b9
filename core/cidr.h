// core/cidr.h — IP addresses and CIDR blocks in one compact form, their parsing, and the
// client address behind trusted proxies (the X-Forwarded-For walk). Pure functions over
// caller memory, any thread. Every address is held as 128 bits: IPv6 as it is, IPv4 (and
// an IPv4-mapped IPv6 address ::ffff:a.b.c.d) as ::ffff:a.b.c.d with is_v4 set, so an
// IPv4 rule matches an IPv4 client however the socket spelled it. A rule of one family
// never matches an address of the other: ::/0 is every IPv6 client, 0.0.0.0/0 every IPv4 one.
// Parsing happens on the control plane (config, snapshot load); matching allocates nothing.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rw {

// 128 bits, most significant first: high holds bytes 0..7 of the IPv6 form.
struct IpAddress {
    uint64_t high = 0;
    uint64_t low = 0;
    bool is_v4 = false;  // An IPv4 address (low = 0x0000ffff'xxxxxxxx, high = 0).

    friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// A block: the address with its host bits zero, and its prefix in 128-bit terms (an IPv4
// /8 is stored as 96 + 8), so matching is one masked compare for both families.
struct Cidr {
    IpAddress network;
    uint8_t prefix_bits = 0;  // 0..128.
};

// At most this many entries in one list (a key's allowed_cidrs, RINGWAY_TRUSTED_PROXIES):
// every one is tried per request, so a list stays short.
constexpr uint32_t cidr_list_entries_max = 64;

// A textual address: dotted-quad IPv4 (no leading zeros, no shorthand such as "10.1") or
// IPv6 in any RFC 4291 form (no zone, no brackets, no port). An IPv4-mapped IPv6 address
// becomes its IPv4 address. False on anything else.
[[nodiscard]] bool ip_parse(std::string_view text, IpAddress& address);

// From a socket address (sockaddr_in or sockaddr_in6); false for any other family.
[[nodiscard]] bool ip_from_sockaddr(const void* sockaddr_bytes, uint32_t length_bytes,
                                    IpAddress& address);

// The address as text (IPv4 dotted, IPv6 by inet_ntop). Control plane and logs.
[[nodiscard]] std::string ip_text(const IpAddress& address);

// "ADDRESS/PREFIX", or a bare ADDRESS (one host: /32 or /128). The prefix is decimal
// without leading zeros, at most 32 for IPv4 and 128 for IPv6; an IPv4-mapped IPv6 block
// (::ffff:10.0.0.0/104) becomes the IPv4 block (10.0.0.0/8). Host bits set past the
// prefix (10.1.2.3/8) are refused rather than guessed. False with *why, one phrase
// ("prefix must be 0..32 for IPv4"), on anything else.
[[nodiscard]] bool cidr_parse(std::string_view text, Cidr& cidr, std::string_view* why = nullptr);

// The block as text, in canonical form ("10.0.0.0/8", "2001:db8::/32").
[[nodiscard]] std::string cidr_text(const Cidr& cidr);

// True when the address lies in the block (same family, same first prefix bits).
[[nodiscard]] bool cidr_contains(const Cidr& cidr, const IpAddress& address);
// True when some block of the list holds the address; false for an empty list.
[[nodiscard]] bool cidr_list_contains(std::span<const Cidr> list, const IpAddress& address);

// A list written as "10.0.0.0/8, 2001:db8::/32": comma-separated, spaces around entries
// ignored, at most cidr_list_entries_max entries, none empty. Empty text is the empty list.
// False with error naming the bad entry: "\"10.0.0.300/8\": not an IPv4 or IPv6 address".
[[nodiscard]] bool cidr_list_parse(std::string_view text, std::vector<Cidr>& list,
                                   std::string& error);

// The client of a request whose TCP peer is `peer`. When the peer is one of the trusted
// proxies, the X-Forwarded-For values (every such header's value, in arrival order) are
// read as one list and walked from the right: entries that are themselves trusted are
// skipped and the first untrusted one is the client; if every entry is trusted, the
// leftmost is. A peer that is not trusted, no entries, or a malformed entry met on the
// walk (anything ip_parse refuses, an empty entry, more entries than
// forwarded_entries_max) leaves the client as the peer: garbage is never believed. Entries
// left of the client are never read: they are whatever the client chose to send.
constexpr uint32_t forwarded_entries_max = 64;
[[nodiscard]] IpAddress forwarded_client(const IpAddress& peer,
                                         std::span<const std::string_view> forwarded_for,
                                         std::span<const Cidr> trusted_proxies);

}  // namespace rw
