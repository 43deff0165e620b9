// tests/unit/proxy/resolver_test.cc — channel base URL parsing and the SSRF address
// classes. Odd spellings are resolved with getaddrinfo exactly as the resolver thread does
// (numeric forms only: no DNS), so 2852039166, 0xa9.0xfe.0xa9.0xfe and
// ::ffff:169.254.169.254 must all be judged as the metadata address they are.
#include "proxy/resolver.h"

#include <gtest/gtest.h>
#include <netdb.h>

#include <cstring>

namespace rw {
namespace {

TEST(BaseUrl, ParsesSchemeHostPortAndPath) {
    BaseUrl url;
    std::string error;
    ASSERT_TRUE(base_url_parse("https://api.openai.com", url, error)) << error;
    EXPECT_TRUE(url.is_tls);
    EXPECT_EQ(url.host, "api.openai.com");
    EXPECT_EQ(url.port, 443);
    EXPECT_EQ(url.path_prefix, "");
    EXPECT_EQ(url.host_header, "api.openai.com");

    ASSERT_TRUE(base_url_parse("http://127.0.0.1:8000/openai/v1/", url, error)) << error;
    EXPECT_FALSE(url.is_tls);
    EXPECT_EQ(url.port, 8000);
    EXPECT_EQ(url.path_prefix, "/openai/v1");  // Trailing slash dropped.
    EXPECT_EQ(url.host_header, "127.0.0.1:8000");

    ASSERT_TRUE(base_url_parse("https://[::1]:8443", url, error)) << error;
    EXPECT_EQ(url.host, "::1");
    EXPECT_EQ(url.port, 8443);
    EXPECT_EQ(url.host_header, "[::1]:8443");
}

TEST(BaseUrl, RefusesWhatIsNotAPlainHttpOrigin) {
    const char* const refused[] = {
        "ftp://example.com",
        "example.com",
        "https://",
        "https://:443",
        "https://user:pw@example.com",
        "http://example.com:0",
        "http://example.com:65536",
        "http://example.com:8o",
        "http://[::1",
        "http://example.com/a?b=c",
        "http://example.com/a#frag",
    };
    for (const char* text : refused) {
        BaseUrl url;
        std::string error;
        EXPECT_FALSE(base_url_parse(text, url, error)) << text;
        EXPECT_FALSE(error.empty()) << text;
    }
}

// getaddrinfo with AI_NUMERICHOST: the same parser the resolver uses, without DNS.
AddressClass classify(const char* host) {
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    EXPECT_EQ(getaddrinfo(host, "80", &hints, &found), 0) << host;
    sockaddr_storage address{};
    if (found != nullptr) {
        std::memcpy(&address, found->ai_addr, found->ai_addrlen);
        freeaddrinfo(found);
    }
    return address_classify(address);
}

TEST(AddressClass, ClassifiesEveryRangeTheRulesName) {
    EXPECT_EQ(classify("8.8.8.8"), AddressClass::public_);
    EXPECT_EQ(classify("2001:4860:4860::8888"), AddressClass::public_);
    EXPECT_EQ(classify("127.0.0.1"), AddressClass::loopback);
    EXPECT_EQ(classify("127.9.9.9"), AddressClass::loopback);
    EXPECT_EQ(classify("::1"), AddressClass::loopback);
    EXPECT_EQ(classify("10.1.2.3"), AddressClass::private_);
    EXPECT_EQ(classify("172.16.0.1"), AddressClass::private_);
    EXPECT_EQ(classify("172.31.255.255"), AddressClass::private_);
    EXPECT_EQ(classify("172.32.0.1"), AddressClass::public_);
    EXPECT_EQ(classify("192.168.1.1"), AddressClass::private_);
    EXPECT_EQ(classify("100.64.0.1"), AddressClass::private_);  // CGNAT.
    EXPECT_EQ(classify("100.128.0.1"), AddressClass::public_);
    EXPECT_EQ(classify("fd12:3456::1"), AddressClass::private_);  // ULA.
    EXPECT_EQ(classify("169.254.169.254"), AddressClass::link_local);
    EXPECT_EQ(classify("fe80::1"), AddressClass::link_local);
    EXPECT_EQ(classify("fd00:ec2::254"), AddressClass::link_local);  // AWS metadata (v6).
    EXPECT_EQ(classify("0.0.0.0"), AddressClass::unspecified);
    EXPECT_EQ(classify("::"), AddressClass::unspecified);
}

TEST(AddressClass, OddSpellingsAreJudgedAsWhatTheyResolveTo) {
    EXPECT_EQ(classify("2852039166"), AddressClass::link_local);  // 169.254.169.254
    EXPECT_EQ(classify("0xa9.0xfe.0xa9.0xfe"), AddressClass::link_local);
    EXPECT_EQ(classify("0x7f.1"), AddressClass::loopback);  // 127.0.0.1
    EXPECT_EQ(classify("::ffff:169.254.169.254"), AddressClass::link_local);
    EXPECT_EQ(classify("::ffff:127.0.0.1"), AddressClass::loopback);
    EXPECT_EQ(classify("::ffff:10.0.0.1"), AddressClass::private_);
}

}  // namespace
}  // namespace rw
