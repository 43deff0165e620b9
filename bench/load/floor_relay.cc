// bench/load/floor_relay.cc — the floor for the load benches, not part of ringway: a
// transparent TCP byte relay, one upstream connection per client connection, no HTTP parsing,
// no logging; every byte is forwarded as it arrives. HTTP/1.1 keep-alive passes through a
// byte relay unchanged, so wrk and the mock work through it as through nginx. Measured beside
// nginx and ringway (bench/load/streams.sh, proxy.sh: FLOOR=1), its CPU per stream or request
// is the least that any proxy sending each event when it arrives pays on loopback.
// Single-threaded (the scripts pin it like the others); two engines:
//   epoll  edge-triggered, each socket registered once (EPOLLIN|EPOLLOUT|EPOLLRDHUP); reads
//          until EAGAIN or a short read (on TCP a short read emptied the queue, as nginx
//          assumes), writes each piece at once; a short write keeps the rest and pauses the
//          source until the target is writable again.
//   uring  multishot accept, connect, multishot recv with provided buffers on both sides, a
//          send of each received buffer on its completion (one send in flight per direction,
//          the rest queued in order); SINGLE_ISSUER | DEFER_TASKRUN, like ringway's shard.
// Usage: floor_relay --engine epoll|uring --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT
//        [--buffers 1024] [--buffer-bytes 16384]   (PORT 0: any; the port is printed)
// A pair closes when either side fails, or ends and what it sent before is delivered (a
// half-close is not relayed). On SIGTERM or SIGINT it prints its counters to stderr, exits 0.
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct Options {
    const char* engine = "epoll";
    sockaddr_in listen_address{};
    sockaddr_in upstream_address{};
    uint32_t buffer_count = 1024;  // uring: provided buffers (a power of two); epoll: unused
    uint32_t buffer_bytes = 16384;
};

struct Counters {
    uint64_t pairs = 0;         // client connections accepted and relayed
    uint64_t reads = 0;         // read() calls that returned data / recv completions
    uint64_t writes = 0;        // write() calls / send submissions
    uint64_t short_writes = 0;  // writes that did not take the whole piece
    uint64_t enobufs = 0;       // uring: multishot recvs ended by an empty buffer ring
};
Counters counters;
volatile sig_atomic_t is_stopping = 0;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "floor_relay: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

bool parse_address(const char* text, sockaddr_in& address) {
    const char* colon = std::strrchr(text, ':');
    char host[64];
    if (colon == nullptr || static_cast<size_t>(colon - text) >= sizeof(host))
        return false;
    std::memcpy(host, text, static_cast<size_t>(colon - text));
    host[colon - text] = '\0';
    char* end = nullptr;
    const long port = std::strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return false;
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    return inet_pton(AF_INET, host, &address.sin_addr) == 1;
}

Options parse_options(int argc, char** argv) {
    Options options;
    bool has_listen = false, has_upstream = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char* name = argv[i];
        const char* value = argv[i + 1];
        if (std::strcmp(name, "--engine") == 0) {
            options.engine = value;
        } else if (std::strcmp(name, "--listen") == 0) {
            has_listen = parse_address(value, options.listen_address);
        } else if (std::strcmp(name, "--upstream") == 0) {
            has_upstream = parse_address(value, options.upstream_address);
        } else if (std::strcmp(name, "--buffers") == 0) {
            options.buffer_count = static_cast<uint32_t>(std::strtoul(value, nullptr, 10));
        } else if (std::strcmp(name, "--buffer-bytes") == 0) {
            options.buffer_bytes = static_cast<uint32_t>(std::strtoul(value, nullptr, 10));
        }
    }
    const bool is_engine_known =
        std::strcmp(options.engine, "epoll") == 0 || std::strcmp(options.engine, "uring") == 0;
    const uint32_t count = options.buffer_count;
    if (!has_listen || !has_upstream || !is_engine_known || count == 0 || count > 32768 ||
        (count & (count - 1)) != 0 || options.buffer_bytes < 512) {
        std::fprintf(stderr,
                     "usage: floor_relay --engine epoll|uring --listen IP:PORT --upstream IP:PORT "
                     "[--buffers POWER_OF_TWO<=32768] [--buffer-bytes >=512]\n");
        std::exit(2);
    }
    return options;
}

void set_nodelay(int fd) {
    const int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        die("TCP_NODELAY");
}

int listen_socket(const Options& options, int type_flags) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
    const int one = 1;
    if (fd < 0)
        die("socket");
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        die("SO_REUSEADDR");
    // Accepted sockets inherit TCP_NODELAY: events leave at once, as with nginx and ringway.
    set_nodelay(fd);
    sockaddr_in bound = options.listen_address;
    socklen_t bound_bytes = sizeof(bound);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&bound), sizeof(bound)) != 0)
        die("bind");
    if (listen(fd, 4096) != 0)
        die("listen");
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_bytes) != 0)
        die("getsockname");
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &bound.sin_addr, host, sizeof(host));
    std::printf("listening %s:%u\n", host, ntohs(bound.sin_port));
    std::fflush(stdout);
    return fd;
}

int upstream_socket(int type_flags) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
    if (fd >= 0)
        set_nodelay(fd);
    return fd;
}

// Raises the soft descriptor limit to the hard one; a pair holds two descriptors.
uint32_t pairs_max() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("getrlimit");
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("setrlimit");
    return static_cast<uint32_t>((limit.rlim_cur - 32) / 2);
}

// ---- epoll ---------------------------------------------------------------------------------
namespace epoll_engine {

// Bytes a short write left for one target socket; its source is paused while any are held.
struct Pending {
    char* bytes = nullptr;
    uint32_t bytes_count = 0;
    uint32_t offset = 0;
};

struct Pair {
    int fd[2] = {-1, -1};  // [0] client, [1] upstream
    Pending into[2];       // bytes waiting for fd[side] to become writable
    bool has_eof[2] = {};  // EPOLLRDHUP seen: read on to the end
};

struct Engine {
    int epoll_fd = -1;
    int listen_fd = -1;
    sockaddr_in upstream{};
    std::vector<Pair> pairs;
    std::vector<uint32_t> free_pairs;
    std::vector<uint32_t> closed_pairs;  // freed after the event batch: no stale event reuses them
    std::vector<char> buffer;
};

constexpr uint64_t listen_tag = ~uint64_t{0};

void pair_close(Engine& engine, uint32_t index) {
    Pair& pair = engine.pairs[index];
    if (pair.fd[0] < 0)
        return;
    for (int side = 0; side < 2; side++) {
        close(pair.fd[side]);  // also leaves the epoll set
        pair.fd[side] = -1;
        std::free(pair.into[side].bytes);
        pair.into[side] = Pending{};
        pair.has_eof[side] = false;
    }
    engine.closed_pairs.push_back(index);
}

// Writes a piece to fd[target]; what the socket does not take waits in into[target].
bool pair_write(Pair& pair, int target, const char* bytes, uint32_t bytes_count) {
    counters.writes++;
    ssize_t written = write(pair.fd[target], bytes, bytes_count);
    if (written == static_cast<ssize_t>(bytes_count))
        return true;
    if (written < 0 && errno != EAGAIN)
        return false;  // (the connect may still be in progress)
    if (written < 0)
        written = 0;
    counters.short_writes++;
    Pending& pending = pair.into[target];
    pending.bytes_count = bytes_count - static_cast<uint32_t>(written);
    pending.bytes = static_cast<char*>(std::malloc(pending.bytes_count));
    if (pending.bytes == nullptr)
        die("malloc");
    std::memcpy(pending.bytes, bytes + written, pending.bytes_count);
    pending.offset = 0;
    return true;
}

// Relays fd[source] to the other side until the source is empty or the target is full.
bool pair_relay(Engine& engine, Pair& pair, int source) {
    const int target = 1 - source;
    const auto capacity = static_cast<ssize_t>(engine.buffer.size());
    while (pair.into[target].bytes == nullptr) {
        const ssize_t got = read(pair.fd[source], engine.buffer.data(), engine.buffer.size());
        if (got == 0)
            return false;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return errno == EAGAIN;
        counters.reads++;
        if (!pair_write(pair, target, engine.buffer.data(), static_cast<uint32_t>(got))) {
            return false;
        }
        if (got < capacity && !pair.has_eof[source])
            return true;
    }
    return true;  // paused: on_writable resumes it
}

// fd[target] is writable: sends what waits for it, then resumes its paused source.
bool pair_flush(Engine& engine, Pair& pair, int target) {
    Pending& pending = pair.into[target];
    if (pending.bytes == nullptr)
        return true;
    counters.writes++;
    const ssize_t written = write(pair.fd[target], pending.bytes + pending.offset,
                                  pending.bytes_count - pending.offset);
    if (written < 0)
        return errno == EAGAIN;
    pending.offset += static_cast<uint32_t>(written);
    if (pending.offset < pending.bytes_count)
        return true;
    std::free(pending.bytes);
    pending = Pending{};
    return pair_relay(engine, pair, 1 - target);
}

void on_accept(Engine& engine) {
    while (true) {
        const int client_fd =
            accept4(engine.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client_fd < 0)
            return;  // EAGAIN, or out of descriptors: the backlog waits
        const int upstream_fd = upstream_socket(SOCK_NONBLOCK);
        if (engine.free_pairs.empty() || upstream_fd < 0) {
            close(client_fd);
            if (upstream_fd >= 0)
                close(upstream_fd);
            continue;
        }
        const auto& upstream = engine.upstream;
        if (connect(upstream_fd, reinterpret_cast<const sockaddr*>(&upstream), sizeof(upstream)) !=
                0 &&
            errno != EINPROGRESS) {
            close(client_fd);
            close(upstream_fd);
            continue;
        }
        const uint32_t index = engine.free_pairs.back();
        engine.free_pairs.pop_back();
        Pair& pair = engine.pairs[index];
        pair.fd[0] = client_fd;
        pair.fd[1] = upstream_fd;
        counters.pairs++;
        for (uint32_t side = 0; side < 2; side++) {
            epoll_event event{};
            event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
            event.data.u64 = uint64_t{index} * 2 + side;
            if (epoll_ctl(engine.epoll_fd, EPOLL_CTL_ADD, pair.fd[side], &event) != 0)
                die("epoll_ctl");
        }
    }
}

void on_event(Engine& engine, const epoll_event& event) {
    const auto index = static_cast<uint32_t>(event.data.u64 / 2);
    const auto side = static_cast<int>(event.data.u64 % 2);
    Pair& pair = engine.pairs[index];
    if (pair.fd[0] < 0)
        return;  // closed earlier in this batch
    bool is_open = (event.events & EPOLLERR) == 0;
    if (is_open && (event.events & EPOLLOUT) != 0)
        is_open = pair_flush(engine, pair, side);
    if (is_open && (event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0) {
        pair.has_eof[side] = pair.has_eof[side] || (event.events & (EPOLLRDHUP | EPOLLHUP)) != 0;
        is_open = pair_relay(engine, pair, side);
    }
    if (!is_open)
        pair_close(engine, index);
}

void run(const Options& options) {
    Engine engine;
    engine.upstream = options.upstream_address;
    engine.buffer.resize(options.buffer_bytes);
    engine.pairs.resize(pairs_max());
    for (auto i = static_cast<uint32_t>(engine.pairs.size()); i > 0; i--)
        engine.free_pairs.push_back(i - 1);
    engine.listen_fd = listen_socket(options, SOCK_NONBLOCK);
    engine.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (engine.epoll_fd < 0)
        die("epoll_create1");
    epoll_event listen_event{};
    listen_event.events = EPOLLIN;
    listen_event.data.u64 = listen_tag;
    if (epoll_ctl(engine.epoll_fd, EPOLL_CTL_ADD, engine.listen_fd, &listen_event) != 0)
        die("epoll_ctl");
    std::vector<epoll_event> events(512);
    while (is_stopping == 0) {
        const int ready =
            epoll_wait(engine.epoll_fd, events.data(), static_cast<int>(events.size()), -1);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < ready; i++) {
            if (events[static_cast<size_t>(i)].data.u64 == listen_tag) {
                on_accept(engine);
            } else {
                on_event(engine, events[static_cast<size_t>(i)]);
            }
        }
        for (uint32_t index : engine.closed_pairs)
            engine.free_pairs.push_back(index);
        engine.closed_pairs.clear();
    }
}

}  // namespace epoll_engine

// ---- io_uring ------------------------------------------------------------------------------
namespace uring_engine {

enum class Op : uint64_t { accept, connect, recv, send };
constexpr uint16_t no_buffer = 0xffff;

// The received buffers waiting to be sent into one socket, in order (linked by buffer id).
struct Queue {
    uint16_t head = no_buffer;
    uint16_t tail = no_buffer;
    uint32_t offset = 0;  // bytes of the head already sent
    bool is_sending = false;
};

struct Pair {
    int fd[2] = {-1, -1};  // [0] client, [1] upstream
    Queue into[2];
    uint32_t ops_in_flight = 0;  // connect, armed recvs, sends: freed when it reaches 0
    bool is_used = false;
    bool is_closing = false;
    bool is_starved[2] = {};  // recv ended by -ENOBUFS: re-armed once buffers come back
    bool has_eof[2] = {};     // fd[side] ended: the pair closes once its bytes are sent on
};

struct Engine {
    io_uring ring{};
    io_uring_buf_ring* buf_ring = nullptr;
    char* buffers = nullptr;
    uint32_t buffer_bytes = 0;
    int buf_ring_mask = 0;
    int buffers_returned = 0;           // added to the ring, made visible at the end of the turn
    uint32_t buffers_held = 0;          // taken by recvs and not returned yet
    std::vector<uint16_t> next_buffer;  // Queue links
    std::vector<uint32_t> buffer_bytes_used;
    std::vector<Pair> pairs;
    std::vector<uint32_t> free_pairs;
    std::vector<uint32_t> starved;  // pair * 2 + side
    int listen_fd = -1;
    sockaddr_in upstream{};
};

uint64_t tag(Op op, uint32_t index, uint32_t side) {
    return (uint64_t{index} << 3) | (uint64_t{side} << 2) | static_cast<uint64_t>(op);
}

io_uring_sqe* sqe_get(Engine& engine) {
    io_uring_sqe* sqe = io_uring_get_sqe(&engine.ring);
    if (sqe == nullptr) {
        io_uring_submit(&engine.ring);
        sqe = io_uring_get_sqe(&engine.ring);
        if (sqe == nullptr)
            die("io_uring_get_sqe");
    }
    return sqe;
}

void submit_accept(Engine& engine) {
    io_uring_sqe* sqe = sqe_get(engine);
    io_uring_prep_multishot_accept(sqe, engine.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(Op::accept, 0, 0));
}

void submit_recv(Engine& engine, uint32_t index, uint32_t side) {
    Pair& pair = engine.pairs[index];
    io_uring_sqe* sqe = sqe_get(engine);
    io_uring_prep_recv_multishot(sqe, pair.fd[side], nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, tag(Op::recv, index, side));
    pair.ops_in_flight++;
}

void submit_send(Engine& engine, uint32_t index, uint32_t target) {
    Pair& pair = engine.pairs[index];
    Queue& queue = pair.into[target];
    const uint16_t id = queue.head;
    io_uring_sqe* sqe = sqe_get(engine);
    io_uring_prep_send(sqe, pair.fd[target],
                       engine.buffers + size_t{id} * engine.buffer_bytes + queue.offset,
                       engine.buffer_bytes_used[id] - queue.offset, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(Op::send, index, target));
    queue.is_sending = true;
    pair.ops_in_flight++;
    counters.writes++;
}

void buffer_return(Engine& engine, uint16_t id) {
    engine.buffers_held--;
    io_uring_buf_ring_add(engine.buf_ring, engine.buffers + size_t{id} * engine.buffer_bytes,
                          engine.buffer_bytes, id, engine.buf_ring_mask, engine.buffers_returned++);
}

// Frees the pair once nothing is in flight: its queued buffers go back, its sockets close.
void pair_reap(Engine& engine, uint32_t index) {
    Pair& pair = engine.pairs[index];
    if (!pair.is_closing || pair.ops_in_flight > 0)
        return;
    for (int side = 0; side < 2; side++) {
        for (uint16_t id = pair.into[side].head; id != no_buffer; id = engine.next_buffer[id]) {
            buffer_return(engine, id);
        }
        if (pair.fd[side] >= 0)
            close(pair.fd[side]);
    }
    pair = Pair{};
    engine.free_pairs.push_back(index);
}

// Ends both directions; shutdown() completes the armed recvs and the sends in flight.
void pair_close(Engine& engine, uint32_t index) {
    Pair& pair = engine.pairs[index];
    if (!pair.is_closing) {
        pair.is_closing = true;
        for (int fd : pair.fd) {
            if (fd >= 0)
                shutdown(fd, SHUT_RDWR);
        }
    }
    pair_reap(engine, index);
}

void on_accept(Engine& engine, const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0)
        submit_accept(engine);
    if (cqe.res < 0)
        return;
    const int upstream_fd = upstream_socket(0);
    if (engine.free_pairs.empty() || upstream_fd < 0) {
        close(cqe.res);
        if (upstream_fd >= 0)
            close(upstream_fd);
        return;
    }
    const uint32_t index = engine.free_pairs.back();
    engine.free_pairs.pop_back();
    Pair& pair = engine.pairs[index];
    pair.is_used = true;
    pair.fd[0] = cqe.res;
    pair.fd[1] = upstream_fd;
    counters.pairs++;
    io_uring_sqe* sqe = sqe_get(engine);
    io_uring_prep_connect(sqe, upstream_fd, reinterpret_cast<const sockaddr*>(&engine.upstream),
                          sizeof(engine.upstream));
    io_uring_sqe_set_data64(sqe, tag(Op::connect, index, 1));
    pair.ops_in_flight++;
}

void on_recv(Engine& engine, uint32_t index, uint32_t side, const io_uring_cqe& cqe) {
    Pair& pair = engine.pairs[index];
    const bool is_armed = (cqe.flags & IORING_CQE_F_MORE) != 0;
    if (!is_armed)
        pair.ops_in_flight--;
    if (cqe.res > 0) {
        counters.reads++;
        engine.buffers_held++;
        const auto id = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
        if (pair.is_closing) {
            buffer_return(engine, id);
        } else {
            Queue& queue = pair.into[1 - side];
            engine.buffer_bytes_used[id] = static_cast<uint32_t>(cqe.res);
            engine.next_buffer[id] = no_buffer;
            if (queue.tail == no_buffer) {
                queue.head = id;
            } else {
                engine.next_buffer[queue.tail] = id;
            }
            queue.tail = id;
            if (!queue.is_sending)
                submit_send(engine, index, 1 - side);
            if (!is_armed)
                submit_recv(engine, index, side);
        }
    } else if (cqe.res == -ENOBUFS && !pair.is_closing) {
        counters.enobufs++;
        pair.is_starved[side] = true;
        engine.starved.push_back(index * 2 + side);
    } else if (cqe.res == 0 && !pair.is_closing) {
        // End of stream: what it sent before is still queued for the other side.
        pair.has_eof[side] = true;
        if (pair.into[1 - side].head == no_buffer)
            pair_close(engine, index);
    } else if (!is_armed) {
        pair_close(engine, index);  // an error
    }
    pair_reap(engine, index);
}

void on_send(Engine& engine, uint32_t index, uint32_t target, const io_uring_cqe& cqe) {
    Pair& pair = engine.pairs[index];
    Queue& queue = pair.into[target];
    pair.ops_in_flight--;
    queue.is_sending = false;
    if (pair.is_closing || cqe.res < 0) {
        pair_close(engine, index);
        return;
    }
    queue.offset += static_cast<uint32_t>(cqe.res);
    if (queue.offset < engine.buffer_bytes_used[queue.head]) {
        counters.short_writes++;
    } else {
        const uint16_t sent = queue.head;
        queue.head = engine.next_buffer[sent];
        if (queue.head == no_buffer)
            queue.tail = no_buffer;
        queue.offset = 0;
        buffer_return(engine, sent);
    }
    if (queue.head != no_buffer) {
        submit_send(engine, index, target);
    } else if (pair.has_eof[1 - target]) {
        pair_close(engine, index);  // its source ended and everything it sent is delivered
    }
}

void on_cqe(Engine& engine, const io_uring_cqe& cqe) {
    const uint64_t data = io_uring_cqe_get_data64(&cqe);
    const auto op = static_cast<Op>(data & 3);
    const auto side = static_cast<uint32_t>((data >> 2) & 1);
    const auto index = static_cast<uint32_t>(data >> 3);
    switch (op) {
        case Op::accept: on_accept(engine, cqe); break;
        case Op::connect: {
            Pair& pair = engine.pairs[index];
            pair.ops_in_flight--;
            if (cqe.res < 0 || pair.is_closing) {
                pair_close(engine, index);
            } else {
                submit_recv(engine, index, 0);
                submit_recv(engine, index, 1);
            }
            break;
        }
        case Op::recv: on_recv(engine, index, side, cqe); break;
        case Op::send: on_send(engine, index, side, cqe); break;
    }
}

// End of a loop turn: returned buffers become visible, and starved recvs are armed again
// once the ring holds a buffer.
void turn_end(Engine& engine, uint32_t buffer_count) {
    if (engine.buffers_returned > 0) {
        io_uring_buf_ring_advance(engine.buf_ring, engine.buffers_returned);
        engine.buffers_returned = 0;
    }
    if (engine.starved.empty() || engine.buffers_held == buffer_count)
        return;
    for (uint32_t entry : engine.starved) {
        Pair& pair = engine.pairs[entry / 2];
        if (!pair.is_used || pair.is_closing || !pair.is_starved[entry % 2])
            continue;
        pair.is_starved[entry % 2] = false;
        submit_recv(engine, entry / 2, entry % 2);
    }
    engine.starved.clear();
}

void setup(Engine& engine, const Options& options) {
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    params.cq_entries = 4 * 4096;
    const int rc = io_uring_queue_init_params(4096, &engine.ring, &params);
    if (rc < 0) {
        errno = -rc;
        die("io_uring_queue_init_params");
    }
    const uint32_t count = options.buffer_count;
    engine.buffer_bytes = options.buffer_bytes;
    engine.buf_ring_mask = io_uring_buf_ring_mask(count);
    const size_t ring_bytes = count * sizeof(io_uring_buf);
    const size_t buffers_bytes = size_t{count} * engine.buffer_bytes;
    void* ring_memory =
        mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* buffer_memory =
        mmap(nullptr, buffers_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring_memory == MAP_FAILED || buffer_memory == MAP_FAILED)
        die("mmap");
    engine.buf_ring = static_cast<io_uring_buf_ring*>(ring_memory);
    engine.buffers = static_cast<char*>(buffer_memory);
    io_uring_buf_ring_init(engine.buf_ring);
    io_uring_buf_reg registration{};
    registration.ring_addr = reinterpret_cast<uint64_t>(ring_memory);
    registration.ring_entries = count;
    registration.bgid = 0;
    const int registered = io_uring_register_buf_ring(&engine.ring, &registration, 0);
    if (registered != 0) {
        errno = -registered;
        die("io_uring_register_buf_ring");
    }
    engine.buffers_held = count;  // each buffer_return below gives one to the ring
    for (uint32_t id = 0; id < count; id++)
        buffer_return(engine, static_cast<uint16_t>(id));
    io_uring_buf_ring_advance(engine.buf_ring, engine.buffers_returned);
    engine.buffers_returned = 0;
    engine.next_buffer.resize(count, no_buffer);
    engine.buffer_bytes_used.resize(count, 0);
}

void run(const Options& options) {
    Engine engine;
    engine.upstream = options.upstream_address;
    setup(engine, options);
    engine.pairs.resize(pairs_max());
    for (auto i = static_cast<uint32_t>(engine.pairs.size()); i > 0; i--)
        engine.free_pairs.push_back(i - 1);
    engine.listen_fd = listen_socket(options, 0);
    submit_accept(engine);
    while (is_stopping == 0) {
        const int rc = io_uring_submit_and_wait(&engine.ring, 1);
        if (rc < 0 && rc != -EINTR) {
            errno = -rc;
            die("io_uring_submit_and_wait");
        }
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&engine.ring, head, cqe) {
            on_cqe(engine, *cqe);
            seen++;
        }
        io_uring_cq_advance(&engine.ring, seen);
        turn_end(engine, options.buffer_count);
    }
}

}  // namespace uring_engine

void on_stop_signal(int) {
    is_stopping = 1;
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse_options(argc, argv);
    std::signal(SIGPIPE, SIG_IGN);
    struct sigaction action {};
    action.sa_handler = on_stop_signal;  // no SA_RESTART: the wait returns EINTR
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    if (std::strcmp(options.engine, "epoll") == 0) {
        epoll_engine::run(options);
    } else {
        uring_engine::run(options);
    }
    std::fprintf(
        stderr,
        "floor_relay %s: pairs=%llu reads=%llu writes=%llu short_writes=%llu enobufs=%llu\n",
        options.engine, static_cast<unsigned long long>(counters.pairs),
        static_cast<unsigned long long>(counters.reads),
        static_cast<unsigned long long>(counters.writes),
        static_cast<unsigned long long>(counters.short_writes),
        static_cast<unsigned long long>(counters.enobufs));
    return 0;
}
