// proxy/admin/dashboard.h — the operator's dashboard: one page and its script and style
// sheet (proxy/admin/dashboard/), embedded into the binary at build time (embed.cmake
// generates dashboard_files.cc) and served by the admin listener without the token: the
// files hold no data, the page asks for the token and calls the admin API with it. Every
// answer carries a strict Content-Security-Policy (no inline script or style, no other
// origin), so nothing but these files can run on the admin origin.
#pragma once

#include <cstddef>
#include <string_view>

namespace rw {

struct AdminReply;

// One embedded file (generated in dashboard_files.cc).
struct DashboardFile {
    std::string_view path;          // "/", "/dashboard.js", "/dashboard.css"
    std::string_view content_type;  // With its charset.
    std::string_view body;
};

// The embedded files, in dashboard_files.cc.
extern const DashboardFile dashboard_files[];
extern const size_t dashboard_file_count;

// The Content-Security-Policy of every dashboard answer.
inline constexpr std::string_view dashboard_csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// The file at `path` (its query already split off) as a 200 in `reply`; false when no
// dashboard file has that path (the request then goes on to the admin API).
[[nodiscard]] bool dashboard_reply(std::string_view path, AdminReply& reply);

}  // namespace rw
