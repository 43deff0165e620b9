// proxy/admin/handlers.cc — the replies every admin handler shares (see handlers.h).
#include "proxy/admin/handlers.h"

#include <utility>

#include "core/assert.h"
#include "core/http_write.h"
#include "core/log.h"

namespace rw {

AdminReply admin_reply_json(uint16_t status, std::string body) {
    AdminReply reply;
    reply.status = status;
    reply.body = std::move(body);
    return reply;
}

AdminReply admin_reply_error(uint16_t status, std::string_view code, std::string_view message) {
    RW_ASSERT(status >= 400);
    std::string body(error_body_bytes_max(code, message), '\0');
    const uint32_t written =
        write_error_body(body.data(), uint32_t(body.size()), status, code, message);
    RW_ASSERT(written > 0);
    body.resize(written);
    return admin_reply_json(status, std::move(body));
}

AdminReply admin_reply_storage_error(const std::string& error) {
    if (error.starts_with("no key with id ") || error.starts_with("no channel with id ") ||
        error.starts_with("no price with id ") || error.starts_with("no alias with id ")) {
        return admin_reply_error(404, "not_found", error);
    }
    if (error == "key already exists") {
        return admin_reply_error(409, "key_exists", error);
    }
    RW_LOG_ERROR("event=admin_storage_error error=\"%s\"", error.c_str());
    return admin_reply_error(500, "storage_error", "storage error: " + error);
}

}  // namespace rw
