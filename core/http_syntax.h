// core/http_syntax.h — byte-level syntax checks for a request head that llhttp 8.1.0 does
// not make: the Host field's authority (RFC 9110 7.2, RFC 3986 3.2.2) and the
// request-target's %-escapes and fragment (RFC 9112 3.2, RFC 3986 2.1).
#pragma once

#include <string_view>

namespace rw {

// uri-host [ ":" port ]: a reg-name with valid %-escapes or a bracketed IP-literal, then
// optional digits after ':'. An empty value is valid (a target without an authority).
bool is_valid_authority(std::string_view host);

// No '#' and every '%' starts a %XX escape.
bool is_valid_target_escapes(std::string_view target);

}  // namespace rw
