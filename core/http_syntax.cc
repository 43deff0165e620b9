// core/http_syntax.cc — byte-level syntax checks for what llhttp 8.1.0 lets through in a
// request head: the Host field's authority and the request-target's escapes (see
// http_syntax.h). Pure functions; called by http_parse.cc.
#include "core/http_syntax.h"

namespace rw {
namespace {

bool is_hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// unreserved / sub-delims of RFC 3986 2.2-2.3: what a reg-name holds besides '%' escapes.
bool is_reg_name_byte(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos;
}

}  // namespace

// The Host field must be uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2): a reg-name
// with valid %-escapes, or an IP-literal in brackets, then optional digits after ':'.
// Space, '/', '\\', '@', '?', '#', controls and non-ASCII are refused: proxies and
// frameworks disagree on how to read them, which is how Host spoofing starts. An empty
// value is allowed (RFC 9112 3.2: a target without an authority).
bool is_valid_authority(std::string_view host) {
    size_t index = 0;
    if (!host.empty() && host.front() == '[') {
        const size_t close = host.find(']');
        if (close == std::string_view::npos || close < 2) {
            return false;
        }
        for (index = 1; index < close; index += 1) {
            const char c = host[index];
            if (!is_hex_digit(c) && c != ':' && c != '.' && !is_reg_name_byte(c)) {
                return false;  // IPv6 or IPvFuture ("v1.x") characters only.
            }
        }
        index = close + 1;
    } else {
        for (; index < host.size() && host[index] != ':'; index += 1) {
            const char c = host[index];
            if (c == '%') {
                if (index + 2 >= host.size() || !is_hex_digit(host[index + 1]) ||
                    !is_hex_digit(host[index + 2])) {
                    return false;
                }
                index += 2;
            } else if (!is_reg_name_byte(c)) {
                return false;
            }
        }
    }
    if (index == host.size()) {
        return true;
    }
    if (host[index] != ':') {
        return false;
    }
    for (index += 1; index < host.size(); index += 1) {
        if (host[index] < '0' || host[index] > '9') {
            return false;
        }
    }
    return true;
}

// A request-target must not carry a fragment (RFC 9112 3.2: origin-form has none) and
// every '%' must start a %XX escape (RFC 3986 2.1); llhttp 8.1.0 lets both through.
bool is_valid_target_escapes(std::string_view target) {
    for (size_t index = 0; index < target.size(); index += 1) {
        if (target[index] == '#') {
            return false;
        }
        if (target[index] == '%' &&
            (index + 2 >= target.size() || !is_hex_digit(target[index + 1]) ||
             !is_hex_digit(target[index + 2]))) {
            return false;
        }
    }
    return true;
}

}  // namespace rw
