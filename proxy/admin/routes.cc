// proxy/admin/routes.cc — the route table and its dispatch, and the query-string helpers
// (see routes.h). Paths arrive without their query (core/http_parse.h splits them).
#include "proxy/admin/routes.h"

#include <cstdlib>
#include <ctime>

#include "core/text.h"

namespace rw {

namespace {

struct AdminRoute {
    Method method;
    std::string_view path;  // Exact, or a prefix followed by "{id}".
    AdminHandler handler;
};

// The whole admin API. Routes of one path are listed together, in the order their
// methods appear in a 405's Allow header.
constexpr AdminRoute admin_routes[] = {
    {Method::get, "/admin/keys", admin_keys_list},
    {Method::post, "/admin/keys", admin_keys_create},
    {Method::get, "/admin/keys/{id}", admin_keys_get},
    {Method::patch, "/admin/keys/{id}", admin_keys_patch},
    {Method::delete_, "/admin/keys/{id}", admin_keys_delete},
    {Method::post, "/admin/keys/{id}/topup", admin_keys_topup},
    {Method::get, "/admin/channels", admin_channels_list},
    {Method::post, "/admin/channels", admin_channels_create},
    {Method::get, "/admin/channels/{id}", admin_channels_get},
    {Method::patch, "/admin/channels/{id}", admin_channels_patch},
    {Method::delete_, "/admin/channels/{id}", admin_channels_delete},
    {Method::post, "/admin/channels/{id}/test", admin_channels_test},
    {Method::get, "/admin/prices", admin_prices_list},
    {Method::post, "/admin/prices", admin_prices_create},
    {Method::get, "/admin/prices/{id}", admin_prices_get},
    {Method::patch, "/admin/prices/{id}", admin_prices_patch},
    {Method::delete_, "/admin/prices/{id}", admin_prices_delete},
    {Method::get, "/admin/aliases", admin_aliases_list},
    {Method::post, "/admin/aliases", admin_aliases_create},
    {Method::get, "/admin/aliases/{id}", admin_aliases_get},
    {Method::patch, "/admin/aliases/{id}", admin_aliases_patch},
    {Method::delete_, "/admin/aliases/{id}", admin_aliases_delete},
    {Method::get, "/admin/usage", admin_usage_get},
    {Method::get, "/admin/logs", admin_logs_get},
    {Method::get, "/admin/latency", admin_latency_get},
};

// True when `path` fits `pattern`; "{id}" takes a positive decimal id (at the end, or
// followed by a fixed suffix such as "/test").
bool route_path_fits(std::string_view pattern, std::string_view path, int64_t& id) {
    constexpr std::string_view id_marker = "{id}";
    const size_t marker = pattern.find(id_marker);
    if (marker == std::string_view::npos) {
        return path == pattern;
    }
    const std::string_view prefix = pattern.substr(0, marker);
    const std::string_view suffix = pattern.substr(marker + id_marker.size());
    return path.size() > prefix.size() + suffix.size() && path.starts_with(prefix) &&
           path.ends_with(suffix) &&
           parse_decimal_i64(
               path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()), 1,
               INT64_MAX, id);
}

}  // namespace

AdminReply admin_route(AdminDeps& deps, const AdminRequest& request) {
    std::string allow;  // The methods of the routes whose path fits, for a 405.
    for (const AdminRoute& route : admin_routes) {
        int64_t id = 0;
        if (!route_path_fits(route.path, request.path, id)) {
            continue;
        }
        if (route.method == request.method) {
            AdminRequest routed = request;
            routed.id = id;
            return route.handler(deps, routed);
        }
        allow += allow.empty() ? "" : ", ";
        allow += admin_method_name(route.method);
    }
    if (allow.empty()) {
        return admin_reply_error(404, "not_found", "no such admin endpoint");
    }
    AdminReply reply = admin_reply_error(405, "method_not_allowed", "method not allowed here");
    reply.extra_headers = "Allow: " + allow + "\r\n";
    return reply;
}

std::string_view admin_method_name(Method method) {
    switch (method) {
        case Method::get: return "GET";
        case Method::head: return "HEAD";
        case Method::post: return "POST";
        case Method::put: return "PUT";
        case Method::delete_: return "DELETE";
        case Method::options: return "OPTIONS";
        case Method::patch: return "PATCH";
        case Method::other: return "OTHER";
    }
    return "OTHER";
}

// ---- Query strings ------------------------------------------------------------------------

bool admin_query_param(std::string_view query, std::string_view name, std::string& value,
                       bool& is_bad) {
    while (!query.empty()) {
        const size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        const size_t eq = pair.find('=');
        if (pair.substr(0, eq) != name) {
            continue;
        }
        const std::string_view raw =
            eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        value.clear();
        for (size_t i = 0; i < raw.size(); i++) {
            if (raw[i] == '+') {
                value.push_back(' ');
            } else if (raw[i] == '%') {
                if (i + 2 >= raw.size()) {  // "%" needs two hex digits after it.
                    is_bad = true;
                    return true;
                }
                const std::string hex(raw.substr(i + 1, 2));
                char* end = nullptr;
                const long byte = std::strtol(hex.c_str(), &end, 16);
                if (hex.size() != 2 || end != hex.c_str() + 2) {
                    is_bad = true;
                    return true;
                }
                value.push_back(char(byte));
                i += 2;
            } else {
                value.push_back(raw[i]);
            }
        }
        return true;
    }
    return false;
}

bool admin_query_names_known(std::string_view query, std::initializer_list<std::string_view> known,
                             std::string& unknown) {
    while (!query.empty()) {
        const size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        const std::string_view name = pair.substr(0, pair.find('='));
        if (name.empty()) {
            continue;
        }
        bool is_known = false;
        for (const std::string_view candidate : known) {
            is_known = is_known || candidate == name;
        }
        if (!is_known) {
            unknown.assign(name.substr(0, 64));
            return false;
        }
    }
    return true;
}

bool admin_parse_day(std::string_view text, std::string& day) {
    if (text.empty()) {
        day.clear();
        return true;
    }
    if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
        int64_t year = 0;
        int64_t month = 0;
        int64_t mday = 0;
        if (!parse_decimal_i64(text.substr(0, 4), 1970, 9999, year) ||
            !parse_decimal_i64(text.substr(5, 2), 1, 12, month) ||
            !parse_decimal_i64(text.substr(8, 2), 1, 31, mday)) {
            return false;
        }
        day.assign(text);
        return true;
    }
    int64_t seconds = 0;
    if (!parse_decimal_i64(text, 0, 253402300799, seconds)) {
        return false;  // Up to 9999-12-31.
    }
    const time_t when = time_t(seconds);
    tm parts{};
    gmtime_r(&when, &parts);
    char buffer[16];
    std::strftime(buffer, sizeof(buffer), "%Y-%m-%d", &parts);
    day.assign(buffer);
    return true;
}

bool admin_query_int(std::string_view query, std::string_view name, int64_t min, int64_t max,
                     int64_t& out, AdminReply& reply) {
    std::string text;
    bool is_bad = false;
    if (!admin_query_param(query, name, text, is_bad)) {
        return true;
    }
    if (is_bad || !parse_decimal_i64(text, min, max, out)) {
        reply = admin_reply_error(400, "invalid_parameter",
                                  std::string(name) + " must be an integer in " +
                                      std::to_string(min) + ".." + std::to_string(max));
        return false;
    }
    return true;
}

bool admin_query_day(std::string_view query, std::string_view name, std::string& day,
                     AdminReply& reply) {
    std::string text;
    bool is_bad = false;
    admin_query_param(query, name, text, is_bad);
    if (is_bad || !admin_parse_day(text, day)) {
        reply = admin_reply_error(400, "invalid_parameter",
                                  std::string(name) + " must be YYYY-MM-DD or Unix seconds");
        return false;
    }
    return true;
}

}  // namespace rw
