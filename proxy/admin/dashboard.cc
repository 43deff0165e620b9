// proxy/admin/dashboard.cc — serves the embedded dashboard files (see dashboard.h).
#include "proxy/admin/dashboard.h"

#include <string>

#include "proxy/admin/handlers.h"

namespace rw {

bool dashboard_reply(std::string_view path, AdminReply& reply) {
    const std::string_view wanted = path == "/index.html" ? std::string_view("/") : path;
    for (size_t i = 0; i < dashboard_file_count; i++) {
        const DashboardFile& file = dashboard_files[i];
        if (file.path != wanted) {
            continue;
        }
        reply = AdminReply{};
        reply.status = 200;
        reply.body.assign(file.body);
        reply.content_type = file.content_type;
        reply.extra_headers = "Content-Security-Policy: " + std::string(dashboard_csp) +
                              "\r\n"
                              "X-Content-Type-Options: nosniff\r\n"
                              "X-Frame-Options: DENY\r\n"
                              "Referrer-Policy: no-referrer\r\n"
                              "Cache-Control: no-store\r\n";
        return true;
    }
    return false;
}

}  // namespace rw
