// tests/unit/proxy/rewrite_test.cc — the upstream request's pure pieces (proxy/rewrite.h):
// the client's query string as the upstream gets it.
#include "proxy/rewrite.h"

#include <gtest/gtest.h>

#include <string>

namespace rw {
namespace {

std::string filtered(std::string_view query) {
    std::string out(query.size(), '\0');
    out.resize(upstream_query_filter(query, out.data()));
    return out;
}

TEST(UpstreamQuery, KeptAsSentWithoutCredentialNamedParameters) {
    EXPECT_EQ(filtered("beta=true"), "beta=true");
    EXPECT_EQ(filtered("beta=true&limit=2&x"), "beta=true&limit=2&x");
    EXPECT_EQ(filtered("api_key=sk-rw-x&beta=true"), "beta=true");
    EXPECT_EQ(filtered("beta=true&Access_Token=t&AUTH=1&client_secret=s&key=k"), "beta=true");
    EXPECT_EQ(filtered("key=only"), "");
    EXPECT_EQ(filtered("&&beta=true&&"), "beta=true");
    EXPECT_EQ(filtered(""), "");
    EXPECT_EQ(filtered(std::string(100, 'a') + "=1&b=2"), "b=2");  // Too long to judge.
}

}  // namespace
}  // namespace rw
