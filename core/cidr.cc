// core/cidr.cc — addresses, CIDR blocks and the X-Forwarded-For walk (see cidr.h). Text
// goes through inet_pton/inet_ntop, which need NUL-terminated strings: the text is copied
// into a stack buffer first, so nothing here allocates but the control plane's std::string
// results. Any thread.
#include "core/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

#include "core/assert.h"

namespace rw {
namespace {

constexpr uint64_t v4_mapped_high = 0;
constexpr uint64_t v4_mapped_low_tag = 0x0000ffff00000000ull;  // ::ffff:0:0
constexpr uint8_t v4_prefix_offset = 96;
// The longest IPv6 text: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 bytes.
constexpr size_t address_text_bytes_max = 45;

uint64_t load_be64(const uint8_t* bytes) {
    uint64_t value = 0;
    for (int i = 0; i < 8; i++) {
        value = (value << 8) | bytes[i];
    }
    return value;
}

void store_be64(uint64_t value, uint8_t* bytes) {
    for (int i = 7; i >= 0; i--) {
        bytes[i] = static_cast<uint8_t>(value);
        value >>= 8;
    }
}

IpAddress from_v4(uint32_t host_order) {
    return IpAddress{v4_mapped_high, v4_mapped_low_tag | host_order, true};
}

// The 16 bytes of an IPv6 address; a mapped one (::ffff:a.b.c.d) is its IPv4 address.
IpAddress from_v6_bytes(const uint8_t* bytes) {
    IpAddress address{load_be64(bytes), load_be64(bytes + 8), false};
    address.is_v4 = address.high == v4_mapped_high &&
                    (address.low & 0xffffffff00000000ull) == v4_mapped_low_tag;
    return address;
}

uint64_t mask_high(uint8_t prefix_bits) {
    if (prefix_bits >= 64) {
        return ~0ull;
    }
    return prefix_bits == 0 ? 0 : ~0ull << (64 - prefix_bits);
}

uint64_t mask_low(uint8_t prefix_bits) {
    if (prefix_bits <= 64) {
        return 0;
    }
    return prefix_bits == 128 ? ~0ull : ~0ull << (128 - prefix_bits);
}

std::string_view trim_spaces(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

bool set_why(std::string_view* why, std::string_view text) {
    if (why != nullptr) {
        *why = text;
    }
    return false;
}

}  // namespace

bool ip_parse(std::string_view text, IpAddress& address) {
    char buffer[address_text_bytes_max + 1];
    if (text.empty() || text.size() > address_text_bytes_max) {
        return false;
    }
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    if (text.find(':') == std::string_view::npos) {
        // glibc's inet_pton(AF_INET) takes exactly four decimal parts and refuses leading
        // zeros ("010.0.0.1" could be read as octal elsewhere) [inet_pton(3)].
        in_addr v4{};
        if (::inet_pton(AF_INET, buffer, &v4) != 1) {
            return false;
        }
        address = from_v4(ntohl(v4.s_addr));
        return true;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, buffer, &v6) != 1) {
        return false;  // Zones ("%eth0"), brackets and ports are refused here.
    }
    address = from_v6_bytes(v6.s6_addr);
    return true;
}

bool ip_from_sockaddr(const void* sockaddr_bytes, uint32_t length_bytes, IpAddress& address) {
    RW_ASSERT(sockaddr_bytes != nullptr);
    sa_family_t family = AF_UNSPEC;
    if (length_bytes < sizeof(family)) {
        return false;
    }
    std::memcpy(&family, sockaddr_bytes, sizeof(family));
    if (family == AF_INET && length_bytes >= sizeof(sockaddr_in)) {
        sockaddr_in v4;
        std::memcpy(&v4, sockaddr_bytes, sizeof(v4));
        address = from_v4(ntohl(v4.sin_addr.s_addr));
        return true;
    }
    if (family == AF_INET6 && length_bytes >= sizeof(sockaddr_in6)) {
        sockaddr_in6 v6;
        std::memcpy(&v6, sockaddr_bytes, sizeof(v6));
        address = from_v6_bytes(v6.sin6_addr.s6_addr);
        return true;
    }
    return false;
}

std::string ip_text(const IpAddress& address) {
    char buffer[INET6_ADDRSTRLEN];
    if (address.is_v4) {
        const auto v4 = static_cast<uint32_t>(address.low);
        std::snprintf(buffer, sizeof(buffer), "%u.%u.%u.%u", v4 >> 24, (v4 >> 16) & 0xff,
                      (v4 >> 8) & 0xff, v4 & 0xff);
        return buffer;
    }
    in6_addr v6{};
    store_be64(address.high, v6.s6_addr);
    store_be64(address.low, v6.s6_addr + 8);
    const char* text = ::inet_ntop(AF_INET6, &v6, buffer, sizeof(buffer));
    RW_ASSERT(text != nullptr);  // The buffer is INET6_ADDRSTRLEN: it always fits.
    return buffer;
}

bool cidr_parse(std::string_view text, Cidr& cidr, std::string_view* why) {
    const size_t slash = text.find('/');
    const std::string_view address_text = text.substr(0, slash);
    IpAddress network;
    if (!ip_parse(address_text, network)) {
        return set_why(why, "not an IPv4 or IPv6 address");
    }
    // A mapped IPv6 spelling counts its prefix over 128 bits; a dotted one over 32.
    const bool is_v6_text = address_text.find(':') != std::string_view::npos;
    const uint32_t text_bits_max = is_v6_text ? 128 : 32;
    uint32_t prefix = text_bits_max;
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        const bool is_number = !digits.empty() && digits.size() <= 3 &&
                               digits.find_first_not_of("0123456789") == std::string_view::npos &&
                               (digits.size() == 1 || digits.front() != '0');
        prefix = 0;
        for (const char c : digits) {
            prefix = prefix * 10 + static_cast<uint32_t>(c - '0');
        }
        if (!is_number || prefix > text_bits_max) {
            return set_why(why, is_v6_text ? "prefix must be 0..128 for IPv6"
                                           : "prefix must be 0..32 for IPv4");
        }
    }
    const uint32_t prefix_bits = is_v6_text ? prefix : prefix + v4_prefix_offset;
    if (network.is_v4 && prefix_bits < v4_prefix_offset) {
        // Only reachable with a mapped network and a prefix under 96, which must then have
        // host bits set (the ffff sits in bits 80..95); say so plainly.
        return set_why(why, "an IPv4-mapped block needs a prefix of at least 96");
    }
    const auto bits = static_cast<uint8_t>(prefix_bits);
    if ((network.high & ~mask_high(bits)) != 0 || (network.low & ~mask_low(bits)) != 0) {
        return set_why(why, "address has bits set past the prefix (write the network address)");
    }
    cidr = Cidr{network, bits};
    RW_ASSERT(cidr.prefix_bits <= 128);
    return true;
}

std::string cidr_text(const Cidr& cidr) {
    RW_ASSERT(cidr.prefix_bits <= 128);
    const uint32_t prefix =
        cidr.network.is_v4 ? uint32_t(cidr.prefix_bits) - v4_prefix_offset : cidr.prefix_bits;
    return ip_text(cidr.network) + "/" + std::to_string(prefix);
}

bool cidr_contains(const Cidr& cidr, const IpAddress& address) {
    if (cidr.network.is_v4 != address.is_v4) {
        return false;
    }
    return (address.high & mask_high(cidr.prefix_bits)) == cidr.network.high &&
           (address.low & mask_low(cidr.prefix_bits)) == cidr.network.low;
}

bool cidr_list_contains(std::span<const Cidr> list, const IpAddress& address) {
    for (const Cidr& cidr : list) {
        if (cidr_contains(cidr, address)) {
            return true;
        }
    }
    return false;
}

bool cidr_list_parse(std::string_view text, std::vector<Cidr>& list, std::string& error) {
    list.clear();
    if (trim_spaces(text).empty()) {
        return true;
    }
    for (;;) {
        const size_t comma = text.find(',');
        const std::string_view entry = trim_spaces(text.substr(0, comma));
        Cidr cidr;
        std::string_view why;
        if (entry.empty()) {
            error = "empty entry in the list";
            return false;
        }
        if (!cidr_parse(entry, cidr, &why)) {
            // Appended piece by piece: "literal" + std::string trips GCC 12's false
            // -Wrestrict at -O3 (GCC PR 105651).
            error = std::string("\"").append(entry.substr(0, 64)).append("\": ").append(why);
            return false;
        }
        if (list.size() == cidr_list_entries_max) {
            error = std::string("more than ")
                        .append(std::to_string(cidr_list_entries_max))
                        .append(" entries");
            return false;
        }
        list.push_back(cidr);
        if (comma == std::string_view::npos) {
            return true;
        }
        text.remove_prefix(comma + 1);
    }
}

IpAddress forwarded_client(const IpAddress& peer, std::span<const std::string_view> forwarded_for,
                           std::span<const Cidr> trusted_proxies) {
    if (forwarded_for.empty() || !cidr_list_contains(trusted_proxies, peer)) {
        return peer;
    }
    IpAddress client = peer;
    uint32_t walked_count = 0;
    // Headers last to first, entries within each right to left: one list read backwards.
    for (size_t header_index = forwarded_for.size(); header_index-- > 0;) {
        std::string_view value = forwarded_for[header_index];
        if (trim_spaces(value).empty()) {
            continue;  // An empty header adds no entries.
        }
        for (;;) {
            const size_t comma = value.rfind(',');
            const std::string_view entry =
                trim_spaces(comma == std::string_view::npos ? value : value.substr(comma + 1));
            IpAddress address;
            walked_count += 1;
            if (walked_count > forwarded_entries_max || !ip_parse(entry, address)) {
                return peer;  // Garbage from a trusted hop is not believed either.
            }
            client = address;
            if (!cidr_list_contains(trusted_proxies, address)) {
                return client;  // The first untrusted hop from the right.
            }
            if (comma == std::string_view::npos) {
                break;
            }
            value = value.substr(0, comma);
        }
    }
    return client;  // Every entry trusted: the leftmost.
}

}  // namespace rw
