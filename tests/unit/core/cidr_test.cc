// tests/unit/core/cidr_test.cc — core/cidr.h: addresses and CIDR blocks parsed (IPv4, IPv6,
// IPv4-mapped, /0, /32, /128, bad input refused with a reason), matched across the two
// spellings of an IPv4 client, and the X-Forwarded-For walk behind trusted proxies.
#include "core/cidr.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>
#include <vector>

namespace rw {
namespace {

IpAddress ip(std::string_view text) {
    IpAddress address;
    EXPECT_TRUE(ip_parse(text, address)) << text;
    return address;
}

Cidr cidr(std::string_view text) {
    Cidr block;
    std::string_view why;
    EXPECT_TRUE(cidr_parse(text, block, &why)) << text << ": " << why;
    return block;
}

// The reason a bad block is refused (empty when it parsed).
std::string refusal(std::string_view text) {
    Cidr block;
    std::string_view why;
    return cidr_parse(text, block, &why) ? std::string() : std::string(why);
}

std::vector<Cidr> list(std::string_view text) {
    std::vector<Cidr> out;
    std::string error;
    EXPECT_TRUE(cidr_list_parse(text, out, error)) << text << ": " << error;
    return out;
}

TEST(CidrTest, ParsesIpv4Blocks) {
    const Cidr ten = cidr("10.0.0.0/8");
    EXPECT_TRUE(ten.network.is_v4);
    EXPECT_EQ(cidr_text(ten), "10.0.0.0/8");
    EXPECT_TRUE(cidr_contains(ten, ip("10.0.0.1")));
    EXPECT_TRUE(cidr_contains(ten, ip("10.255.255.255")));
    EXPECT_FALSE(cidr_contains(ten, ip("11.0.0.0")));
    EXPECT_FALSE(cidr_contains(ten, ip("9.255.255.255")));

    const Cidr host = cidr("127.0.0.2/32");
    EXPECT_TRUE(cidr_contains(host, ip("127.0.0.2")));
    EXPECT_FALSE(cidr_contains(host, ip("127.0.0.1")));
    EXPECT_FALSE(cidr_contains(host, ip("127.0.0.3")));
    EXPECT_EQ(cidr_text(cidr("192.0.2.7")), "192.0.2.7/32");  // A bare address is one host.
    EXPECT_EQ(cidr_text(cidr("172.16.0.0/12")), "172.16.0.0/12");
}

TEST(CidrTest, ParsesIpv6Blocks) {
    const Cidr doc = cidr("2001:db8::/32");
    EXPECT_FALSE(doc.network.is_v4);
    EXPECT_EQ(cidr_text(doc), "2001:db8::/32");
    EXPECT_TRUE(cidr_contains(doc, ip("2001:db8::1")));
    EXPECT_TRUE(cidr_contains(doc, ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(cidr_contains(doc, ip("2001:db9::")));

    const Cidr host = cidr("2001:db8::7/128");
    EXPECT_TRUE(cidr_contains(host, ip("2001:DB8:0:0:0:0:0:7")));
    EXPECT_FALSE(cidr_contains(host, ip("2001:db8::8")));
    EXPECT_EQ(cidr_text(cidr("::1")), "::1/128");
    // A prefix past 64 bits splits the low word.
    const Cidr deep = cidr("2001:db8:0:0:8000::/65");
    EXPECT_TRUE(cidr_contains(deep, ip("2001:db8::8000:0:0:1")));
    EXPECT_FALSE(cidr_contains(deep, ip("2001:db8::7fff:0:0:1")));
}

TEST(CidrTest, PrefixZeroMatchesItsWholeFamilyOnly) {
    const Cidr any_v4 = cidr("0.0.0.0/0");
    const Cidr any_v6 = cidr("::/0");
    EXPECT_TRUE(cidr_contains(any_v4, ip("203.0.113.9")));
    EXPECT_TRUE(cidr_contains(any_v4, ip("::ffff:203.0.113.9")));
    EXPECT_FALSE(cidr_contains(any_v4, ip("2001:db8::1")));
    EXPECT_TRUE(cidr_contains(any_v6, ip("2001:db8::1")));
    EXPECT_TRUE(cidr_contains(any_v6, ip("::1")));
    EXPECT_FALSE(cidr_contains(any_v6, ip("203.0.113.9")));
    EXPECT_EQ(cidr_text(any_v4), "0.0.0.0/0");
    EXPECT_EQ(cidr_text(any_v6), "::/0");
}

TEST(CidrTest, MappedClientsMatchIpv4Rules) {
    const IpAddress mapped = ip("::ffff:10.1.2.3");
    EXPECT_TRUE(mapped.is_v4);
    EXPECT_EQ(mapped, ip("10.1.2.3"));
    EXPECT_EQ(ip("::ffff:a01:203"), ip("10.1.2.3"));  // The same address in hex groups.
    EXPECT_EQ(ip_text(mapped), "10.1.2.3");
    EXPECT_TRUE(cidr_contains(cidr("10.0.0.0/8"), mapped));
    // A mapped block is the IPv4 block.
    const Cidr mapped_block = cidr("::ffff:10.0.0.0/104");
    EXPECT_TRUE(mapped_block.network.is_v4);
    EXPECT_EQ(cidr_text(mapped_block), "10.0.0.0/8");
    EXPECT_TRUE(cidr_contains(mapped_block, ip("10.9.9.9")));
    // An IPv4-compatible (not mapped) address stays IPv6.
    EXPECT_FALSE(ip("::10.1.2.3").is_v4);

    // The socket spellings: sockaddr_in and sockaddr_in6 with a mapped address agree.
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    ASSERT_EQ(inet_pton(AF_INET, "10.1.2.3", &v4.sin_addr), 1);
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    ASSERT_EQ(inet_pton(AF_INET6, "::ffff:10.1.2.3", &v6.sin6_addr), 1);
    IpAddress from_v4;
    IpAddress from_v6;
    ASSERT_TRUE(ip_from_sockaddr(&v4, sizeof(v4), from_v4));
    ASSERT_TRUE(ip_from_sockaddr(&v6, sizeof(v6), from_v6));
    EXPECT_EQ(from_v4, from_v6);
    EXPECT_EQ(from_v4, ip("10.1.2.3"));
    sockaddr unix_family{};
    unix_family.sa_family = AF_UNIX;
    EXPECT_FALSE(ip_from_sockaddr(&unix_family, sizeof(unix_family), from_v4));
}

TEST(CidrTest, RefusesBadInputWithAReason) {
    EXPECT_EQ(refusal(""), "not an IPv4 or IPv6 address");
    EXPECT_EQ(refusal("10.0.0.300/8"), "not an IPv4 or IPv6 address");
    EXPECT_EQ(refusal("10.1/16"), "not an IPv4 or IPv6 address");
    EXPECT_EQ(refusal("010.0.0.0/8"), "not an IPv4 or IPv6 address");  // Octal-looking.
    EXPECT_EQ(refusal("example.com/8"), "not an IPv4 or IPv6 address");
    EXPECT_EQ(refusal("fe80::1%eth0/64"), "not an IPv4 or IPv6 address");
    EXPECT_EQ(refusal("[2001:db8::]/32"), "not an IPv4 or IPv6 address");
    EXPECT_EQ(refusal(" 10.0.0.0/8"), "not an IPv4 or IPv6 address");  // Lists trim, not here.
    EXPECT_EQ(refusal("10.0.0.0/33"), "prefix must be 0..32 for IPv4");
    EXPECT_EQ(refusal("10.0.0.0/"), "prefix must be 0..32 for IPv4");
    EXPECT_EQ(refusal("10.0.0.0/-1"), "prefix must be 0..32 for IPv4");
    EXPECT_EQ(refusal("10.0.0.0/08"), "prefix must be 0..32 for IPv4");
    EXPECT_EQ(refusal("10.0.0.0/8/8"), "prefix must be 0..32 for IPv4");
    EXPECT_EQ(refusal("2001:db8::/129"), "prefix must be 0..128 for IPv6");
    EXPECT_EQ(refusal("2001:db8::/1000"), "prefix must be 0..128 for IPv6");
    EXPECT_EQ(refusal("10.1.2.3/8"),
              "address has bits set past the prefix (write the network address)");
    EXPECT_EQ(refusal("2001:db8::1/32"),
              "address has bits set past the prefix (write the network address)");
    EXPECT_EQ(refusal("::ffff:10.0.0.0/64"), "an IPv4-mapped block needs a prefix of at least 96");
}

TEST(CidrTest, ListsNameTheBadEntry) {
    const std::vector<Cidr> blocks = list("10.0.0.0/8, 2001:db8::/32 ,127.0.0.1/32");
    ASSERT_EQ(blocks.size(), 3u);
    EXPECT_EQ(cidr_text(blocks[1]), "2001:db8::/32");
    EXPECT_TRUE(cidr_list_contains(blocks, ip("127.0.0.1")));
    EXPECT_TRUE(cidr_list_contains(blocks, ip("2001:db8::5")));
    EXPECT_FALSE(cidr_list_contains(blocks, ip("192.0.2.1")));
    EXPECT_TRUE(list("").empty());
    EXPECT_TRUE(list("  ").empty());
    EXPECT_FALSE(cidr_list_contains({}, ip("127.0.0.1")));

    std::vector<Cidr> out;
    std::string error;
    EXPECT_FALSE(cidr_list_parse("10.0.0.0/8,10.0.0.300/8", out, error));
    EXPECT_EQ(error, "\"10.0.0.300/8\": not an IPv4 or IPv6 address");
    EXPECT_FALSE(cidr_list_parse("10.0.0.0/8,,127.0.0.1", out, error));
    EXPECT_EQ(error, "empty entry in the list");
    EXPECT_FALSE(cidr_list_parse("10.0.0.0/8,", out, error));
    std::string many;
    for (uint32_t i = 0; i <= cidr_list_entries_max; i++) {
        many += (i == 0 ? "" : ",") + std::string("10.0.0.") + std::to_string(i % 250);
    }
    EXPECT_FALSE(cidr_list_parse(many, out, error));
    EXPECT_EQ(error, "more than 64 entries");
}

// ---- the X-Forwarded-For walk ----------------------------------------------------------

class ForwardedTest : public ::testing::Test {
protected:
    IpAddress client(std::string_view peer, std::vector<std::string_view> headers) {
        return forwarded_client(ip(peer), headers, trusted_);
    }
    std::vector<Cidr> trusted_ = list("127.0.0.1/32, 10.0.0.0/8, 2001:db8::/32");
};

TEST_F(ForwardedTest, BelievedOnlyFromATrustedPeer) {
    EXPECT_EQ(client("127.0.0.1", {"192.0.2.1"}), ip("192.0.2.1"));
    EXPECT_EQ(client("::ffff:127.0.0.1", {"192.0.2.1"}), ip("192.0.2.1"));  // Mapped peer.
    EXPECT_EQ(client("2001:db8::9", {"192.0.2.1"}), ip("192.0.2.1"));
    EXPECT_EQ(client("198.51.100.1", {"192.0.2.1"}), ip("198.51.100.1"));  // Not trusted.
    EXPECT_EQ(client("127.0.0.1", {}), ip("127.0.0.1"));                   // No header.
    EXPECT_EQ(client("127.0.0.1", {"", "  "}), ip("127.0.0.1"));           // Empty headers.
    EXPECT_EQ(forwarded_client(ip("127.0.0.1"), std::vector<std::string_view>{"192.0.2.1"}, {}),
              ip("127.0.0.1"));  // No trusted proxies at all.
}

TEST_F(ForwardedTest, WalksFromTheRightSkippingTrustedHops) {
    // A spoofed left entry is never reached: the first untrusted from the right is the client.
    EXPECT_EQ(client("127.0.0.1", {"10.9.9.9, 192.0.2.7"}), ip("192.0.2.7"));
    EXPECT_EQ(client("127.0.0.1", {"203.0.113.5, 192.0.2.7, 10.1.1.1"}), ip("192.0.2.7"));
    EXPECT_EQ(client("127.0.0.1", {"192.0.2.7,10.1.1.1,  10.2.2.2"}), ip("192.0.2.7"));
    // Every hop trusted: the leftmost.
    EXPECT_EQ(client("127.0.0.1", {"10.3.3.3, 10.1.1.1"}), ip("10.3.3.3"));
    // Several headers are one list, in arrival order.
    EXPECT_EQ(client("127.0.0.1", {"192.0.2.7", "10.1.1.1"}), ip("192.0.2.7"));
    EXPECT_EQ(client("127.0.0.1", {"198.51.100.4", "192.0.2.7"}), ip("192.0.2.7"));
    EXPECT_EQ(client("127.0.0.1", {"10.3.3.3", "", "10.1.1.1"}), ip("10.3.3.3"));
    // IPv6 and mapped entries.
    EXPECT_EQ(client("127.0.0.1", {"2001:db9::1"}), ip("2001:db9::1"));
    EXPECT_EQ(client("127.0.0.1", {"::ffff:192.0.2.7"}), ip("192.0.2.7"));
}

TEST_F(ForwardedTest, GarbageOnTheWalkMeansThePeer) {
    EXPECT_EQ(client("127.0.0.1", {"not-an-ip"}), ip("127.0.0.1"));
    EXPECT_EQ(client("127.0.0.1", {"192.0.2.7:4711"}), ip("127.0.0.1"));  // A port.
    EXPECT_EQ(client("127.0.0.1", {"[2001:db9::1]"}), ip("127.0.0.1"));   // Brackets.
    EXPECT_EQ(client("127.0.0.1", {"192.0.2.7, "}), ip("127.0.0.1"));     // Empty entry.
    EXPECT_EQ(client("127.0.0.1", {"192.0.2.7,,10.1.1.1"}), ip("127.0.0.1"));
    EXPECT_EQ(client("127.0.0.1", {"unknown, 10.1.1.1"}), ip("127.0.0.1"));
    // Garbage left of the client is the client's own text and never read.
    EXPECT_EQ(client("127.0.0.1", {"garbage, 192.0.2.7"}), ip("192.0.2.7"));
    // A chain longer than forwarded_entries_max of trusted hops is not walked to its end.
    std::string chain;
    for (uint32_t i = 0; i <= forwarded_entries_max; i++) {
        chain += (i == 0 ? "" : ",") + std::string("10.0.0.1");
    }
    EXPECT_EQ(client("127.0.0.1", {chain}), ip("127.0.0.1"));
}

}  // namespace
}  // namespace rw
