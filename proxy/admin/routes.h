// proxy/admin/routes.h — the admin API's endpoints as one table of {method, path pattern,
// handler} (routes.cc), the dispatch over it, and the query-string helpers handlers read
// their parameters with. Admin thread only.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/http_parse.h"
#include "proxy/admin/handlers.h"

namespace rw {

// One endpoint's handler (handlers.h lists them).
using AdminHandler = AdminReply (*)(AdminDeps& deps, const AdminRequest& request);

// Runs the handler whose method and path pattern fit `request` ("{id}" in a pattern takes
// a positive decimal id, given to the handler as request.id). A path no pattern fits is
// 404 not_found; a path that fits with another method is 405 with Allow listing the
// methods it has, in table order.
[[nodiscard]] AdminReply admin_route(AdminDeps& deps, const AdminRequest& request);

// "GET", "PATCH", ... as sent; "OTHER" for a method ringway has no name for.
[[nodiscard]] std::string_view admin_method_name(Method method);

// ---- Query strings ------------------------------------------------------------------------

// "a=1&b=x" → the value of `name` (percent-decoded; '+' is a space). False when the
// parameter is absent; `is_bad` when it is malformed.
bool admin_query_param(std::string_view query, std::string_view name, std::string& value,
                       bool& is_bad);

// True when every parameter name of `query` is in `known`; else the first unknown name
// (cut at 64 bytes) in `unknown`.
[[nodiscard]] bool admin_query_names_known(std::string_view query,
                                           std::initializer_list<std::string_view> known,
                                           std::string& unknown);

// "YYYY-MM-DD" as is, or Unix seconds → the UTC day. Empty stays empty (unbounded).
[[nodiscard]] bool admin_parse_day(std::string_view text, std::string& day);

// An optional integer parameter in [min, max] (min >= 0), left untouched when absent;
// false with a 400 invalid_parameter in `reply` when malformed.
[[nodiscard]] bool admin_query_int(std::string_view query, std::string_view name, int64_t min,
                                   int64_t max, int64_t& out, AdminReply& reply);

// An optional day parameter (admin_parse_day); false with a 400 in `reply` when malformed.
[[nodiscard]] bool admin_query_day(std::string_view query, std::string_view name, std::string& day,
                                   AdminReply& reply);

}  // namespace rw
