// proxy/resolver.cc — base URL parsing, address classification and the resolver thread.
// Control plane only: getaddrinfo may block, which is why it runs here and never on a
// shard. Retired address books are freed after a delay far longer than any admission.
#include "proxy/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/log.h"
#include "core/text.h"

namespace rw {
namespace {

uint64_t steady_ms() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

AddressClass classify_v4(uint32_t host_order) {
    const uint32_t a = host_order >> 24;
    const uint32_t b = (host_order >> 16) & 0xFF;
    if (host_order == 0) {
        return AddressClass::unspecified;
    }
    if (a == 127) {
        return AddressClass::loopback;
    }
    if (a == 169 && b == 254) {
        return AddressClass::link_local;  // Includes 169.254.169.254 (cloud metadata).
    }
    if (a == 10 || (a == 172 && b >= 16 && b <= 31) || (a == 192 && b == 168) ||
        (a == 100 && b >= 64 && b <= 127) || a == 0) {
        return AddressClass::private_;  // RFC 1918, CGNAT 100.64/10, "this network".
    }
    return AddressClass::public_;
}

}  // namespace

bool base_url_parse(std::string_view text, BaseUrl& out, std::string& error) {
    std::string_view rest;
    if (text.substr(0, 7) == "http://") {
        out.is_tls = false;
        rest = text.substr(7);
    } else if (text.substr(0, 8) == "https://") {
        out.is_tls = true;
        rest = text.substr(8);
    } else {
        error = "base_url must start with http:// or https://";
        return false;
    }
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos) {
        error = "base_url must not contain credentials";
        return false;
    }
    std::string_view host = authority;
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            error = "base_url has an unclosed IPv6 bracket";
            return false;
        }
        host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') {
                error = "base_url has junk after the IPv6 address";
                return false;
            }
            port_text = authority.substr(close + 2);
        }
    } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port_text = authority.substr(colon + 1);
    }
    if (host.empty()) {
        error = "base_url has no host";
        return false;
    }
    uint64_t port = out.is_tls ? 443 : 80;
    if (!port_text.empty() && (!parse_decimal(port_text, 65535, port) || port == 0)) {
        error = "base_url has a bad port";
        return false;
    }
    while (!path.empty() && path.back() == '/') {
        path.remove_suffix(1);
    }
    if (path.find_first_of("?# \r\n") != std::string_view::npos) {
        error = "base_url path must not contain a query, fragment or spaces";
        return false;
    }
    out.host.assign(host);
    out.port = static_cast<uint16_t>(port);
    out.path_prefix.assign(path);
    const bool is_default_port = port == (out.is_tls ? 443u : 80u);
    const bool is_v6 = host.find(':') != std::string_view::npos;
    out.host_header = is_v6 ? "[" + out.host + "]" : out.host;
    if (!is_default_port) {
        out.host_header.push_back(':');
        out.host_header.append(std::to_string(out.port));
    }
    return true;
}

AddressClass address_classify(const sockaddr_storage& address) {
    if (address.ss_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        return classify_v4(ntohl(v4.sin_addr.s_addr));
    }
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    const uint8_t* bytes = v6.sin6_addr.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) || IN6_IS_ADDR_V4COMPAT(&v6.sin6_addr)) {
        uint32_t v4 = 0;
        std::memcpy(&v4, bytes + 12, 4);
        return classify_v4(ntohl(v4));
    }
    if (IN6_IS_ADDR_UNSPECIFIED(&v6.sin6_addr)) {
        return AddressClass::unspecified;
    }
    if (IN6_IS_ADDR_LOOPBACK(&v6.sin6_addr)) {
        return AddressClass::loopback;
    }
    if (IN6_IS_ADDR_LINKLOCAL(&v6.sin6_addr)) {
        return AddressClass::link_local;
    }
    // fd00:ec2::254 (AWS metadata over IPv6) sits in the ULA range: refused like link-local.
    static const uint8_t aws_metadata[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                             0,    0,    0,    0,    0, 0, 0x02, 0x54};
    if (std::memcmp(bytes, aws_metadata, 16) == 0) {
        return AddressClass::link_local;
    }
    if ((bytes[0] & 0xFE) == 0xFC) {
        return AddressClass::private_;  // ULA fc00::/7.
    }
    return AddressClass::public_;
}

const ChannelAddress* AddressBook::find(int64_t channel_id) const {
    auto it = std::lower_bound(
        entries_.begin(), entries_.end(), channel_id,
        [](const ChannelAddress& entry, int64_t id) { return entry.channel_id < id; });
    return (it != entries_.end() && it->channel_id == channel_id) ? &*it : nullptr;
}

Resolver::~Resolver() {
    stop();
}

TlsContext* Resolver::tls_context_for(const std::string& ca_file, std::string& error) {
    for (auto& [file, context] : tls_contexts_) {
        if (file == ca_file) {
            return context.get();
        }
    }
    TlsContextOptions options;
    options.ca_file = ca_file;
    std::string reason;
    std::unique_ptr<TlsContext> context = TlsContext::create(options, reason);
    if (context == nullptr) {
        error = "TLS setup failed: " + reason;
        return nullptr;
    }
    tls_contexts_.emplace_back(ca_file, std::move(context));
    return tls_contexts_.back().second.get();
}

void Resolver::start(SnapshotPublisher& snapshots, uint32_t reader_index, uint32_t refresh_ms) {
    snapshots_ = &snapshots;
    reader_index_ = reader_index;
    refresh_ms_ = refresh_ms;
    rebuild();
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "rw-resolver");
        run();
    });
}

void Resolver::stop() {
    {
        std::lock_guard lock(mutex_);
        is_stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void Resolver::poke() {
    {
        std::lock_guard lock(mutex_);
        is_poked_ = true;
    }
    wake_.notify_all();
}

bool Resolver::wait_published(uint64_t epoch, uint32_t timeout_ms) {
    poke();
    std::unique_lock lock(mutex_);
    return published_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
        const AddressBook* book = current();
        return is_stopping_ || (book != nullptr && book->snapshot_epoch >= epoch);
    });
}

void Resolver::run() {
    uint64_t seen_epoch = current() ? current()->snapshot_epoch : 0;
    uint64_t last_rebuild_ms = steady_ms();
    std::unique_lock lock(mutex_);
    while (!is_stopping_) {
        // Woken by poke() (a poke during a rebuild is not missed: the predicate sees it),
        // or every second to notice a new snapshot epoch.
        wake_.wait_for(lock, std::chrono::milliseconds(1000),
                       [this] { return is_poked_ || is_stopping_; });
        if (is_stopping_) {
            break;
        }
        // Retired key/channel snapshots are freed only by collect() (or the next publish).
        snapshots_->collect();
        const uint64_t epoch = snapshots_->epoch();
        const bool is_due = steady_ms() - last_rebuild_ms >= refresh_ms_;
        if (is_poked_ || epoch != seen_epoch || is_due) {
            is_poked_ = false;
            lock.unlock();
            rebuild();
            lock.lock();
            seen_epoch = epoch;
            last_rebuild_ms = steady_ms();
        }
    }
}

// Resolves every channel of the current snapshot. The channels are copied out under the
// resolver's own reader epoch, which is released before any (slow) lookup.
void Resolver::rebuild() {
    std::vector<ChannelAddress> entries;
    std::vector<ChannelEntry> channels;
    const Snapshot* snapshot = snapshots_->acquire(reader_index_);
    const uint64_t epoch = snapshot != nullptr ? snapshot->epoch() : 0;
    if (snapshot != nullptr) {
        channels.assign(snapshot->channels().begin(), snapshot->channels().end());
    }
    snapshots_->quiesce(reader_index_);
    {
        for (const ChannelEntry& channel : channels) {
            ChannelAddress entry;
            entry.channel_id = channel.id;
            if (!base_url_parse(channel.base_url, entry.url, entry.error)) {
                entries.push_back(std::move(entry));
                continue;
            }
            addrinfo hints{};
            hints.ai_socktype = SOCK_STREAM;
            hints.ai_family = AF_UNSPEC;
            addrinfo* found = nullptr;
            const std::string port = std::to_string(entry.url.port);
            const int rc = getaddrinfo(entry.url.host.c_str(), port.c_str(), &hints, &found);
            if (rc != 0 || found == nullptr) {
                entry.error =
                    std::string("cannot resolve ") + entry.url.host + ": " + gai_strerror(rc);
            } else {
                std::memcpy(&entry.address, found->ai_addr, found->ai_addrlen);
                entry.address_bytes = found->ai_addrlen;
                freeaddrinfo(found);
                const AddressClass kind = address_classify(entry.address);
                if (kind == AddressClass::link_local || kind == AddressClass::unspecified) {
                    entry.error = "refused: " + entry.url.host +
                                  " resolves to a link-local or unspecified address";
                } else if (kind != AddressClass::public_ && !channel.allow_private_network) {
                    entry.error = "refused: " + entry.url.host +
                                  " resolves to a private or loopback address (set "
                                  "allow_private_network on the channel to allow it)";
                } else {
                    entry.is_usable = true;
                }
                if (entry.is_usable && entry.url.is_tls) {
                    entry.tls_context = tls_context_for(channel.ca_file, entry.error);
                    entry.is_usable = entry.tls_context != nullptr;
                }
            }
            if (!entry.is_usable) {
                RW_LOG_WARN("event=channel_address_unusable channel_id=%ld reason=\"%s\"",
                            static_cast<long>(channel.id), entry.error.c_str());
            }
            entries.push_back(std::move(entry));
        }
    }
    std::sort(entries.begin(), entries.end(), [](const ChannelAddress& a, const ChannelAddress& b) {
        return a.channel_id < b.channel_id;
    });
    auto book = std::make_unique<AddressBook>(std::move(entries));
    book->snapshot_epoch = epoch;
    const uint64_t now = steady_ms();
    current_.store(book.get(), std::memory_order_release);
    if (owned_) {
        retired_.emplace_back(now, std::move(owned_));
    }
    owned_ = std::move(book);
    std::erase_if(retired_,
                  [now](const auto& item) { return now - item.first > resolver_retire_delay_ms; });
    {
        std::lock_guard lock(mutex_);  // A waiter between its check and its wait sees this.
    }
    published_.notify_all();
}

}  // namespace rw
