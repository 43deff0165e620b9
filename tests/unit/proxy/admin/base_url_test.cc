// tests/unit/proxy/admin/base_url_test.cc — the channel base_url policy: schemes, hosts,
// ports, user info and queries; private ranges only with allow_private_network; link-local,
// metadata and non-unicast hosts never, however the address is spelled.
#include "proxy/admin/base_url.h"

#include <gtest/gtest.h>

namespace rw {
namespace {

TEST(AdminBaseUrl, Policy) {
    EXPECT_EQ(admin_base_url_check("https://api.openai.com", false), "");
    EXPECT_EQ(admin_base_url_check("https://api.openai.com:8443/v1", false), "");
    EXPECT_EQ(admin_base_url_check("http://[2001:db8::1]:8080", false), "");
    EXPECT_NE(admin_base_url_check("ftp://api.openai.com", false), "");
    EXPECT_NE(admin_base_url_check("file:///etc/passwd", true), "");
    EXPECT_NE(admin_base_url_check("https://", false), "");
    EXPECT_NE(admin_base_url_check("https://user:pw@api.openai.com", false), "");
    EXPECT_NE(admin_base_url_check("https://api.openai.com:0", false), "");
    EXPECT_NE(admin_base_url_check("https://api.openai.com:65536", false), "");
    EXPECT_NE(admin_base_url_check("https://api.openai.com/?x=1", false), "");
    EXPECT_NE(admin_base_url_check("https://api openai.com", false), "");
    // Private ranges need the flag; link-local and metadata never pass.
    for (const char* url :
         {"http://127.0.0.1:8000", "http://10.1.2.3", "http://192.168.1.1", "http://172.20.0.1",
          "http://100.64.0.1", "http://localhost:11434", "http://[::1]:8000", "http://[fd12::1]",
          "http://0x7f.1", "http://2130706433", "http://0.0.0.0"}) {
        EXPECT_NE(admin_base_url_check(url, false), "") << url;
        EXPECT_EQ(admin_base_url_check(url, true), "") << url;
    }
    for (const char* url :
         {"http://169.254.169.254", "http://2852039166", "http://0xa9.0xfe.0xa9.0xfe",
          "http://[::ffff:169.254.169.254]", "http://[fe80::1]", "http://[fd00:ec2::254]",
          "http://metadata.google.internal", "http://224.0.0.1", "http://1.2.3.4.5"}) {
        EXPECT_NE(admin_base_url_check(url, true), "") << url;
    }
}

}  // namespace
}  // namespace rw
