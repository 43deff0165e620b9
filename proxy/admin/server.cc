// proxy/admin/server.cc — the admin API's listener and thread. One thread polls the
// listener and a stop eventfd, serves one connection at a time (request → response →
// close) under a total deadline: reads the request with core's RequestParser, serves the
// dashboard's files (dashboard.h) without the token, checks the token at head time for
// everything else (so an unauthenticated body is never read), hands the request to
// admin_route (routes.h) and sends the reply. Responses are std::string (control plane:
// it may allocate). Invariant: no token, key secret or upstream key is ever logged or
// echoed in an error.
#include "proxy/admin/server.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

#include "arena/arena.h"
#include "arena/chunk_pool.h"
#include "core/assert.h"
#include "core/http_parse.h"
#include "core/http_write.h"
#include "core/listen.h"
#include "core/log.h"
#include "proxy/admin/dashboard.h"
#include "proxy/admin/handlers.h"
#include "proxy/admin/routes.h"
#include "storage/keys.h"

namespace rw {

// ---- Token check ---------------------------------------------------------------------------

bool admin_token_matches(std::string_view presented, std::string_view expected) {
    if (expected.empty()) {
        return false;
    }
    // Hashing both sides gives equal-length inputs to CRYPTO_memcmp, which takes the same
    // time whatever the contents [CRYPTO_memcmp(3)]; the length test comes after, so a
    // wrong length costs the same work as a wrong token.
    const KeyHash presented_hash = key_hash(presented);
    const KeyHash expected_hash = key_hash(expected);
    const bool is_equal_digest =
        CRYPTO_memcmp(presented_hash.data(), expected_hash.data(), key_hash_bytes) == 0;
    return is_equal_digest && presented.size() == expected.size();
}

// ---- Connections --------------------------------------------------------------------------

namespace {

using SteadyClock = std::chrono::steady_clock;

int remaining_ms(SteadyClock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    return left.count() <= 0 ? 0 : int(std::min<int64_t>(left.count(), INT32_MAX));
}

// Sends every byte before the deadline; false when the peer is gone or too slow.
bool send_all(int fd, std::string_view bytes, SteadyClock::time_point deadline) {
    while (!bytes.empty()) {
        // MSG_NOSIGNAL: a client that went away is EPIPE here, not SIGPIPE [send(2)].
        const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent > 0) {
            bytes.remove_prefix(size_t(sent));
            continue;
        }
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return false;
        }
        pollfd pfd{fd, POLLOUT, 0};
        const int wait_ms = remaining_ms(deadline);
        if (wait_ms == 0 || ::poll(&pfd, 1, wait_ms) == 0) {
            return false;
        }
    }
    return true;
}

// The header's credentials: "Bearer <token>" (scheme case-insensitive). Empty if absent.
std::string_view bearer_token(const ParsedRequest& request, bool& has_header) {
    const std::string_view value = request.find_header("authorization");
    has_header = !value.empty();
    if (value.size() < 7) {
        return {};
    }
    std::string scheme(value.substr(0, 7));
    for (char& c : scheme) {
        c = char(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (scheme != "bearer ") {
        return {};
    }
    std::string_view token = value.substr(7);
    while (!token.empty() && token.front() == ' ') {
        token.remove_prefix(1);
    }
    return token;
}

AdminReply reply_unauthorized(std::string_view code, std::string_view message) {
    AdminReply reply = admin_reply_error(401, code, message);
    reply.extra_headers = "WWW-Authenticate: Bearer realm=\"ringway-admin\"\r\n";
    return reply;
}

// Everything one connection needs; owned by AdminServer::Impl.
struct AdminConnContext {
    const std::string& token;
    AdminDeps& deps;
    ChunkPool& pool;
    RequestParser& parser;
    int stop_fd;
};

// Checked at head time so an unauthenticated body is never read or parsed.
bool admin_authorize(const AdminConnContext& context, const ParsedRequest& request,
                     AdminReply& reply) {
    bool has_header = false;
    const std::string_view token = bearer_token(request, has_header);
    if (!has_header) {
        reply = reply_unauthorized("missing_admin_token",
                                   "missing Authorization: Bearer <RINGWAY_ADMIN_TOKEN>");
        return false;
    }
    if (!admin_token_matches(token, context.token)) {
        // The presented value is never logged, not even in part (RULES Security 3).
        RW_LOG_WARN("event=admin_auth_failed path_bytes=%zu", request.path.size());
        reply = reply_unauthorized("invalid_admin_token", "invalid admin token");
        return false;
    }
    return true;
}

// Reads and parses one request into `reply`. False when there is nothing to answer
// (peer gone, stop requested, socket error).
bool admin_read_request(AdminConnContext& context, int fd, SteadyClock::time_point deadline,
                        AdminReply& reply) {
    char buffer[admin_recv_bytes];
    for (;;) {
        const int wait_ms = remaining_ms(deadline);
        if (wait_ms == 0) {
            reply = admin_reply_error(408, "request_timeout", "the admin request took too long");
            return true;
        }
        pollfd fds[2] = {{fd, POLLIN, 0}, {context.stop_fd, POLLIN, 0}};
        const int ready = ::poll(fds, 2, wait_ms);
        if (ready < 0 && errno != EINTR) {
            return false;
        }
        if (ready <= 0) {
            continue;
        }
        if (fds[1].revents != 0) {
            return false;
        }
        const ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            continue;
        }
        if (got <= 0) {
            return false;
        }
        // The parser copies what it keeps into the arena; `buffer` is reused next turn.
        std::string_view input(buffer, size_t(got));
        for (;;) {
            const ParseResult result = context.parser.feed(input);
            if (result.event == ParseEvent::need_more) {
                break;
            }
            if (result.event == ParseEvent::error) {
                reply = admin_reply_error(parse_error_status(result.error),
                                          parse_error_code(result.error),
                                          parse_error_message(result.error));
                return true;
            }
            const ParsedRequest& request = context.parser.request();
            if (result.event == ParseEvent::head_complete) {
                input.remove_prefix(result.consumed_bytes);
                // The dashboard's files hold no data: served to anyone, before the token.
                if (request.method == Method::get && dashboard_reply(request.path, reply)) {
                    return true;
                }
                if (!admin_authorize(context, request, reply)) {
                    return true;
                }
                if (request.expects_continue &&
                    !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", deadline)) {
                    return false;
                }
                continue;
            }
            RW_ASSERT(result.event == ParseEvent::message_complete);
            reply = admin_route(context.deps,
                                {request.method, request.path, request.query, request.body});
            return true;
        }
    }
}

// Sends the reply with Connection: close, then drains what the client still sends for
// a moment: closing with unread input makes the kernel send RST, which can destroy the
// response before the client read it (nginx's lingering close).
void admin_send_reply(int fd, const AdminReply& reply, SteadyClock::time_point deadline) {
    char date_line[date_line_bytes + 1];
    format_date_line(date_line, int64_t(std::time(nullptr)));
    std::string out(reply.body.size() + reply.extra_headers.size() + 256, '\0');
    ResponseSpec spec{};
    spec.status = reply.status;
    spec.content_type = reply.content_type;
    spec.body = reply.body;
    spec.is_close = true;
    spec.extra_headers = reply.extra_headers;
    spec.date_line = std::string_view(date_line, date_line_bytes);
    const uint32_t written = write_response(out.data(), uint32_t(out.size()), spec);
    RW_ASSERT(written > 0);  // Sized from the body and headers above.
    out.resize(written);
    if (!send_all(fd, out, deadline)) {
        return;
    }
    ::shutdown(fd, SHUT_WR);
    const auto linger_deadline = SteadyClock::now() + std::chrono::milliseconds(admin_linger_ms);
    char sink[4096];
    uint32_t drained_bytes = 0;
    while (drained_bytes < admin_linger_bytes_max) {
        pollfd pfd{fd, POLLIN, 0};
        const int wait_ms = remaining_ms(linger_deadline);
        if (wait_ms == 0 || ::poll(&pfd, 1, wait_ms) <= 0) {
            return;
        }
        const ssize_t got = ::recv(fd, sink, sizeof(sink), 0);
        if (got <= 0) {
            return;
        }
        drained_bytes += uint32_t(got);
    }
}

void admin_serve_connection(AdminConnContext& context, int fd) {
    const auto start = SteadyClock::now();
    const auto deadline = start + std::chrono::milliseconds(admin_connection_timeout_ms);
    Arena arena(&context.pool, admin_arena_bytes_max);
    context.parser.start(arena);
    AdminReply reply;
    if (admin_read_request(context, fd, deadline, reply)) {
        admin_send_reply(fd, reply, deadline);
        const ParsedRequest& request = context.parser.request();
        // Path only (bounded), never the query, headers or body.
        const int path_bytes = int(std::min<size_t>(request.path.size(), 80));
        RW_LOG_INFO("event=admin_request method=%s path=%.*s status=%u duration_ms=%lld",
                    std::string(admin_method_name(request.method)).c_str(), path_bytes,
                    request.path.data(), reply.status,
                    (long long)std::chrono::duration_cast<std::chrono::milliseconds>(
                        SteadyClock::now() - start)
                        .count());
    }
    // Views into the arena (the parsed request) die here.
    arena.release();
}

}  // namespace

// ---- The server ---------------------------------------------------------------------------

struct AdminServer::Impl {
    Impl(const std::string& token_in, Writer& writer, Catalog& catalog, Queries& queries)
        : token(token_in),
          deps(writer, catalog, queries),
          pool(admin_chunk_count_max, admin_large_bytes_max),
          parser(ParserLimits{admin_request_line_bytes_max, admin_header_bytes_max,
                              admin_header_count_max, admin_body_bytes_max,
                              admin_chunk_ext_bytes_max}) {}

    std::string token;
    AdminDeps deps;
    ChunkPool pool;
    RequestParser parser;
};

AdminServer::AdminServer() = default;
AdminServer::~AdminServer() {
    stop();
}

namespace {

std::string address_text(const sockaddr_storage& address) {
    char host[INET6_ADDRSTRLEN] = {};
    char text[INET6_ADDRSTRLEN + 16];
    if (address.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        ::inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof(host));
        std::snprintf(text, sizeof(text), "[%s]:%u", host, ntohs(v6.sin6_port));
    } else {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        ::inet_ntop(AF_INET, &v4.sin_addr, host, sizeof(host));
        std::snprintf(text, sizeof(text), "%s:%u", host, ntohs(v4.sin_port));
    }
    return text;
}

// A listening socket on `listen`; the bound address (real port) in `bound`. -1 on error.
int admin_listen(const ListenAddress& listen, sockaddr_storage& bound, std::string& error) {
    const int fd =
        ::socket(listen.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int one = 1;
    socklen_t bound_bytes = sizeof(bound);
    if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        ::bind(fd, reinterpret_cast<const sockaddr*>(&listen.address), listen.address_bytes) != 0 ||
        ::listen(fd, int(admin_listen_backlog)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_bytes) != 0) {
        error = std::string("cannot listen on RINGWAY_ADMIN_LISTEN=") + listen.text + ": " +
                std::strerror(errno);
        if (fd >= 0) {
            ::close(fd);
        }
        return -1;
    }
    return fd;
}

// The inherited listener when it is on `listen`'s address, else a new one.
int admin_listener(const ListenAddress& listen, int adopted, sockaddr_storage& bound,
                   std::string& error) {
    ListenAddress wanted = listen;
    std::string adopt_error;
    if (adopted >= 0 && listener_adopt(adopted, wanted, adopt_error)) {
        bound = wanted.address;
        return adopted;
    }
    if (adopted >= 0) {
        ::close(adopted);
    }
    return admin_listen(listen, bound, error);
}

}  // namespace

bool AdminServer::start(const Config& config, Writer& writer, Catalog& catalog, Queries& queries,
                        std::string& error) {
    RW_ASSERT(!thread_.joinable());
    RW_ASSERT(listen_fd_ < 0);
    const int adopted = std::exchange(adopted_fd_, -1);
    if (config.admin_token.empty()) {
        if (adopted >= 0) {
            ::close(adopted);
        }
        RW_LOG_INFO("event=admin_disabled reason=\"RINGWAY_ADMIN_TOKEN is not set\"");
        return true;
    }
    sockaddr_storage bound{};
    const int fd = admin_listener(config.admin_listen, adopted, bound, error);
    if (fd < 0) {
        return false;
    }
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) {
        error = std::string("eventfd: ") + std::strerror(errno);
        ::close(fd);
        return false;
    }
    listen_fd_ = fd;
    listen_text_ = address_text(bound);
    port_ = bound.ss_family == AF_INET6
                ? ntohs(reinterpret_cast<const sockaddr_in6&>(bound).sin6_port)
                : ntohs(reinterpret_cast<const sockaddr_in&>(bound).sin_port);
    impl_ = std::make_unique<Impl>(config.admin_token, writer, catalog, queries);
    impl_->deps.health = health_;
    impl_->deps.probe = probe_;
    impl_->deps.probe_context = probe_context_;
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "rw-admin");
        run();
    });
    RW_LOG_INFO("event=admin_listening admin=%s", listen_text_.c_str());
    RW_ASSERT(port_ != 0);
    return true;
}

void AdminServer::stop() {
    if (thread_.joinable()) {
        const uint64_t one = 1;
        // An eventfd write of 8 bytes cannot be short; it fails only on counter overflow.
        [[maybe_unused]] const ssize_t written = ::write(stop_fd_, &one, sizeof(one));
        thread_.join();
    }
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
    }
    if (stop_fd_ >= 0) {
        ::close(stop_fd_);
    }
    listen_fd_ = -1;
    stop_fd_ = -1;
    impl_.reset();
}

// The admin thread: one connection at a time. A slow client delays other admin calls by
// at most admin_connection_timeout_ms; the data plane is never affected.
void AdminServer::run() {
    RW_ASSERT(impl_ != nullptr);
    AdminConnContext context{impl_->token, impl_->deps, impl_->pool, impl_->parser, stop_fd_};
    auto next_tick = std::chrono::steady_clock::now();
    for (;;) {
        if (tick_ != nullptr && std::chrono::steady_clock::now() >= next_tick) {
            tick_(tick_context_);
            next_tick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        }
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        const int ready = ::poll(fds, 2, tick_ != nullptr ? 1000 : -1);
        if (ready < 0) {
            RW_ASSERT(errno == EINTR);  // EFAULT/EINVAL cannot happen with these arguments.
            continue;
        }
        if (fds[1].revents != 0) {
            return;
        }
        if (ready == 0) {
            continue;  // The tick's time.
        }
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            // EAGAIN (raced), ECONNABORTED: nothing to do. EMFILE/ENFILE: the connection
            // stays queued; poll would spin, so wait a moment.
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                RW_LOG_WARN("event=admin_accept_failed error=\"%s\"", std::strerror(errno));
                ::poll(nullptr, 0, 100);
            }
            continue;
        }
        admin_serve_connection(context, fd);
        ::close(fd);
    }
}

}  // namespace rw
