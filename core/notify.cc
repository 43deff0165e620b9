// core/notify.cc — sd_notify's documented socket protocol, in a dozen lines.
#include "core/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace rw {

bool notify_systemd(const char* state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || path[0] == '\0') {
        return true;
    }
    sockaddr_un address;
    std::memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    const size_t path_bytes = std::strlen(path);
    if ((path[0] != '/' && path[0] != '@') || path_bytes >= sizeof(address.sun_path)) {
        return false;
    }
    std::memcpy(address.sun_path, path, path_bytes);
    if (path[0] == '@') {
        address.sun_path[0] = '\0';  // Abstract namespace.
    }
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    const auto address_bytes = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_bytes);
    const ssize_t sent = ::sendto(fd, state, std::strlen(state), MSG_NOSIGNAL,
                                  reinterpret_cast<const sockaddr*>(&address), address_bytes);
    ::close(fd);
    return sent >= 0;
}

}  // namespace rw
