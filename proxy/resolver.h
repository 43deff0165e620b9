// proxy/resolver.h — channel base URLs turned into checked socket addresses, off the
// data plane. A control-plane thread resolves every channel's host (getaddrinfo) whenever
// the key/channel snapshot changes and every refresh period, applies the SSRF rules to
// the resolved binary address (so spellings like 2852039166 or ::ffff:169.254.169.254
// are judged as what they are), and publishes an immutable AddressBook through an atomic
// pointer. Shards copy what they need at admission and connect to exactly that address:
// no re-resolution between the check and the connect (RULES security §5).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "proxy/tls.h"
#include "storage/snapshot.h"

namespace rw {

struct BaseUrl {
    bool is_tls = false;
    std::string host;  // Without brackets.
    uint16_t port = 0;
    std::string path_prefix;  // "" or "/something" without a trailing slash.
    std::string host_header;  // host, or host:port when the port is not the default.
};

// Parses http(s)://host[:port][/path]. Returns false with a reason for anything else.
[[nodiscard]] bool base_url_parse(std::string_view text, BaseUrl& out, std::string& error);

enum class AddressClass : uint8_t { public_, loopback, private_, link_local, unspecified };

// Classifies an address after normalising IPv4-mapped IPv6.
AddressClass address_classify(const sockaddr_storage& address);

struct ChannelAddress {
    int64_t channel_id = 0;
    BaseUrl url;
    sockaddr_storage address{};
    socklen_t address_bytes = 0;
    bool is_usable = false;
    TlsContext* tls_context = nullptr;  // https channels; owned by the Resolver, never freed early.
    std::string error;  // Why not usable (unresolved, refused by the SSRF rules, bad URL).
};

class AddressBook {
public:
    explicit AddressBook(std::vector<ChannelAddress> entries) : entries_(std::move(entries)) {}
    [[nodiscard]] const ChannelAddress* find(int64_t channel_id) const;
    uint64_t snapshot_epoch = 0;

private:
    std::vector<ChannelAddress> entries_;  // Sorted by channel_id.
};

class Resolver {
public:
    Resolver() = default;
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // Resolves once synchronously (so the first requests find addresses), then starts the
    // refresh thread.
    // reader_index: the resolver's own reader slot in the publisher (shards use 0..n-1).
    void start(SnapshotPublisher& snapshots, uint32_t reader_index, uint32_t refresh_ms);
    void stop();

    // Lock-free read for shards. The book stays valid for at least retire_delay_ms after
    // it is replaced; callers copy what they need at once.
    const AddressBook* current() const { return current_.load(std::memory_order_acquire); }
    // Asks the thread to resolve now (a snapshot changed).
    void poke();
    // Control plane, after a channel write: resolves now and waits until an address book
    // built from snapshot `epoch` (or a later one) is published, at most timeout_ms, so a
    // channel is routable when the admin call that made it returns. False on timeout (a
    // slow DNS answer): the channel becomes routable when the lookup completes.
    [[nodiscard]] bool wait_published(uint64_t epoch, uint32_t timeout_ms);

private:
    void run();
    void rebuild();

    SnapshotPublisher* snapshots_ = nullptr;
    uint32_t reader_index_ = 0;
    uint32_t refresh_ms_ = 60000;
    std::atomic<const AddressBook*> current_{nullptr};
    std::vector<std::pair<uint64_t, std::unique_ptr<const AddressBook>>> retired_;  // (ms, book)
    std::unique_ptr<const AddressBook> owned_;
    // One TLS context per CA file ("" = system CAs), created on first use and kept for the
    // life of the process: upstream sessions started from one may outlive any book.
    std::vector<std::pair<std::string, std::unique_ptr<TlsContext>>> tls_contexts_;
    TlsContext* tls_context_for(const std::string& ca_file, std::string& error);
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable published_;  // After each rebuild (wait_published).
    bool is_stopping_ = false;
    bool is_poked_ = false;
    std::thread thread_;
};

}  // namespace rw
