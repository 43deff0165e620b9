// core/listen.cc — listening sockets and thread pinning (see listen.h). Startup only.
#include "core/listen.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/limits.h"

namespace rw {
namespace {

uint16_t address_port(const sockaddr_storage& address) {
    if (address.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
    }
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
}

void address_set_port(sockaddr_storage& address, uint16_t port) {
    if (address.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6&>(address).sin6_port = htons(port);
    } else {
        reinterpret_cast<sockaddr_in&>(address).sin_port = htons(port);
    }
}

// SO_REUSEPORT would let a second ringway (same user) share a port that is already
// taken, silently splitting traffic between two processes. A probe without it fails
// with EADDRINUSE against any listener there; with port 0 it also picks the port.
bool listeners_probe(ListenAddress& listen, std::string& error) {
    const int probe = ::socket(listen.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (probe < 0 || ::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        ::bind(probe, reinterpret_cast<const sockaddr*>(&listen.address), listen.address_bytes) !=
            0) {
        error = std::string("cannot listen on ") + listen.text + ": " + std::strerror(errno);
        if (probe >= 0) {
            ::close(probe);
        }
        return false;
    }
    if (address_port(listen.address) == 0) {
        sockaddr_storage bound;
        socklen_t bound_bytes = sizeof(bound);
        if (::getsockname(probe, reinterpret_cast<sockaddr*>(&bound), &bound_bytes) != 0) {
            error = std::string("getsockname: ") + std::strerror(errno);
            ::close(probe);
            return false;
        }
        address_set_port(listen.address, address_port(bound));
    }
    ::close(probe);
    return true;
}

// The text shown in logs names the real port.
void listeners_rename(ListenAddress& listen) {
    char host[INET6_ADDRSTRLEN] = {};
    const uint16_t port = address_port(listen.address);
    if (listen.address.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6&>(listen.address).sin6_addr, host,
                  sizeof(host));
        std::snprintf(listen.text, sizeof(listen.text), "[%s]:%u", host, port);
    } else {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(listen.address).sin_addr, host,
                  sizeof(host));
        std::snprintf(listen.text, sizeof(listen.text), "%s:%u", host, port);
    }
}

// The index-th CPU of the affinity mask, or -1.
int cpu_of_index(int64_t index) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (index < 0 || sched_getaffinity(0, sizeof(set), &set) != 0) {
        return -1;
    }
    int64_t seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &set)) {
            if (seen == index) {
                return cpu;
            }
            seen += 1;
        }
    }
    return -1;
}

}  // namespace

bool listeners_open(ListenAddress& listen, uint32_t count, std::vector<int>& fds,
                    std::string& error) {
    if (!listeners_probe(listen, error)) {
        return false;
    }
    const int one = 1;
    for (uint32_t i = 0; i < count; i++) {
        const int fd = ::socket(listen.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            error = std::string("socket: ") + std::strerror(errno);
            return false;
        }
        fds.push_back(fd);
        // TCP_NODELAY is inherited by accepted sockets: streamed events leave at once.
        if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
            error = std::string("setsockopt: ") + std::strerror(errno);
            return false;
        }
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&listen.address), listen.address_bytes) !=
                0 ||
            ::listen(fd, listen_backlog) != 0) {
            error = std::string("cannot listen on ") + listen.text + ": " + std::strerror(errno);
            return false;
        }
    }
    listeners_rename(listen);
    return true;
}

bool listener_adopt(int fd, ListenAddress& listen, std::string& error) {
    sockaddr_storage bound{};
    socklen_t bound_bytes = sizeof(bound);
    int is_listening = 0;
    socklen_t flag_bytes = sizeof(is_listening);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_bytes) != 0 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &is_listening, &flag_bytes) != 0 ||
        is_listening == 0) {
        error = "inherited descriptor " + std::to_string(fd) + " is not a listening socket";
        return false;
    }
    ListenAddress inherited = listen;
    inherited.address = bound;
    inherited.address_bytes = bound_bytes;
    listeners_rename(inherited);
    const uint16_t port = address_port(listen.address);
    ListenAddress wanted = listen;
    address_set_port(wanted.address, port == 0 ? address_port(bound) : port);
    listeners_rename(wanted);
    if (std::strcmp(wanted.text, inherited.text) != 0) {
        error = std::string("the inherited listener is on ") + inherited.text + ", not " +
                listen.text + ": a new listen address needs a restart";
        return false;
    }
    listen = inherited;
    return true;
}

void thread_name_and_pin(const char* name, int64_t cpu_index) {
    pthread_setname_np(pthread_self(), name);
    const int cpu = cpu_of_index(cpu_index);
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        [[maybe_unused]] const int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
}

}  // namespace rw
