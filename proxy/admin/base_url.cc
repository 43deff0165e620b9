// proxy/admin/base_url.cc — admin_base_url_check: split the URL by hand (scheme, host,
// port; nothing else allowed), then classify the host literal as public, private or
// forbidden. IPv4 spellings are read by inet_aton, IPv6 by inet_pton, exactly as a
// connect would read them; names are checked for their characters and a few reserved
// ones (localhost, metadata.google.internal). Every refusal is one sentence for the API.
#include "proxy/admin/base_url.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

#include "core/text.h"

namespace rw {

namespace {

enum class HostClass : uint8_t { public_, private_, forbidden };

HostClass ipv4_classify(uint32_t address) {  // Host byte order.
    const uint32_t a = address >> 24;
    const uint32_t b = (address >> 16) & 0xff;
    if (a == 169 && b == 254) {
        return HostClass::forbidden;  // Link-local, metadata.
    }
    if (address == 0xA83F8110u) {
        return HostClass::forbidden;  // 168.63.129.16 (Azure).
    }
    if (address == 0x646464C8u) {
        return HostClass::forbidden;  // 100.100.100.200 (Alibaba).
    }
    if (a >= 224) {
        return HostClass::forbidden;  // Multicast, reserved.
    }
    if (a == 0 || a == 127 || a == 10) {
        return HostClass::private_;
    }
    if (a == 172 && (b & 0xf0) == 16) {
        return HostClass::private_;  // 172.16.0.0/12
    }
    if (a == 192 && b == 168) {
        return HostClass::private_;
    }
    if (a == 100 && (b & 0xc0) == 64) {
        return HostClass::private_;  // 100.64.0.0/10 CGNAT
    }
    return HostClass::public_;
}

HostClass ipv6_classify(const in6_addr& address) {
    const uint8_t* bytes = address.s6_addr;
    static constexpr uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes, mapped_prefix, 12) == 0) {  // ::ffff:a.b.c.d is the IPv4 host.
        return ipv4_classify(uint32_t(bytes[12]) << 24 | uint32_t(bytes[13]) << 16 |
                             uint32_t(bytes[14]) << 8 | bytes[15]);
    }
    static constexpr uint8_t ec2_metadata[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0,    0,
                                                 0,    0, 0,    0,    0, 0, 0x02, 0x54};
    if (std::memcmp(bytes, ec2_metadata, 16) == 0) {
        return HostClass::forbidden;
    }
    if (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80) {
        return HostClass::forbidden;  // fe80::/10
    }
    if (bytes[0] == 0xff) {
        return HostClass::forbidden;  // Multicast.
    }
    if ((bytes[0] & 0xfe) == 0xfc) {
        return HostClass::private_;  // fc00::/7
    }
    static constexpr uint8_t zeros[15] = {};
    if (std::memcmp(bytes, zeros, 15) == 0 && bytes[15] <= 1) {
        return HostClass::private_;  // ::, ::1
    }
    return HostClass::public_;
}

bool is_numeric_looking(std::string_view host) {
    if (host.empty() || host[0] < '0' || host[0] > '9') {
        return false;
    }
    for (const char c : host) {
        const bool is_hex =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!is_hex && c != '.' && c != 'x' && c != 'X') {
            return false;
        }
    }
    return true;
}

// Classifies a host (IPv6 without brackets when is_ipv6). Fills error for hosts that
// are not valid at all.
HostClass host_classify(std::string_view host, bool is_ipv6, std::string& error) {
    const std::string text(host);
    if (is_ipv6) {
        in6_addr address{};
        if (::inet_pton(AF_INET6, text.c_str(), &address) != 1) {
            error = "base_url has an invalid IPv6 address";
            return HostClass::forbidden;
        }
        return ipv6_classify(address);
    }
    if (is_numeric_looking(host)) {
        // inet_aton accepts every legacy spelling (2852039166, 0x7f.1, 0177.0.0.1), which
        // is exactly what a connect would use [inet_aton(3)].
        in_addr address{};
        if (::inet_aton(text.c_str(), &address) == 0) {
            error = "base_url host looks like an IPv4 address but is not a valid one";
            return HostClass::forbidden;
        }
        return ipv4_classify(ntohl(address.s_addr));
    }
    for (const char c : host) {
        const bool is_name_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                  (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
        if (!is_name_char) {
            error = "base_url host has invalid characters";
            return HostClass::forbidden;
        }
    }
    std::string lower(host);
    for (char& c : lower) {
        c = char(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    while (!lower.empty() && lower.back() == '.') {
        lower.pop_back();
    }
    if (lower == "localhost" || lower.ends_with(".localhost")) {
        return HostClass::private_;
    }
    if (lower == "metadata.google.internal") {
        return HostClass::forbidden;
    }
    return HostClass::public_;
}

// 1..65535 in at most five digits (so "00080" passes, "000080" does not).
bool port_is_valid(std::string_view port) {
    uint64_t value = 0;
    return port.size() <= 5 && parse_decimal(port, 65535, value) && value >= 1;
}

}  // namespace

std::string admin_base_url_check(std::string_view url, bool allow_private_network) {
    std::string_view rest;
    if (url.starts_with("https://")) {
        rest = url.substr(8);
    } else if (url.starts_with("http://")) {
        rest = url.substr(7);
    } else {
        return "base_url must start with http:// or https://";
    }
    if (url.size() > 2048) {
        return "base_url is longer than 2048 bytes";
    }
    for (const char c : url) {
        if (c <= 0x20 || c >= 0x7f) {
            return "base_url must be visible ASCII without spaces";
        }
    }
    if (rest.find_first_of("?#") != std::string_view::npos) {
        return "base_url must not have a query or fragment";
    }
    std::string_view host = rest.substr(0, rest.find('/'));
    if (host.find('@') != std::string_view::npos) {
        return "base_url must not contain user info";
    }
    bool is_ipv6 = false;
    std::string_view port;
    if (host.starts_with('[')) {
        const size_t close = host.find(']');
        if (close == std::string_view::npos) {
            return "base_url has an unterminated IPv6 address";
        }
        const std::string_view after = host.substr(close + 1);
        if (!after.empty() && !after.starts_with(':')) {
            return "base_url has a malformed host";
        }
        port = after.empty() ? std::string_view() : after.substr(1);
        if (!after.empty() && port.empty()) {
            return "base_url has an empty port";
        }
        host = host.substr(1, close - 1);
        is_ipv6 = true;
    } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
        port = host.substr(colon + 1);
        if (port.empty()) {
            return "base_url has an empty port";
        }
        host = host.substr(0, colon);
    }
    if (host.empty()) {
        return "base_url has no host";
    }
    if (!port.empty() && !port_is_valid(port)) {
        return "base_url port must be 1..65535";
    }
    std::string error;
    const HostClass host_class = host_classify(host, is_ipv6, error);
    if (!error.empty()) {
        return error;
    }
    if (host_class == HostClass::forbidden) {
        return "base_url host is a link-local, metadata or non-unicast address";
    }
    if (host_class == HostClass::private_ && !allow_private_network) {
        return "base_url host is a loopback or private address; set allow_private_network";
    }
    return {};
}

}  // namespace rw
