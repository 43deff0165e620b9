// tests/e2e/test_clock_test.cc — the test clock (RINGWAY_TEST_CLOCK_FILE) is the test
// binary's alone: build/tests/ringway-test moves its one wall clock by the file's
// milliseconds, build/ringway (what make install and make deb ship) ignores the variable.
// Seen through key expiry: a key that expires in an hour is expired for a clock two days
// ahead.
#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <string>

#include "tests/e2e/proxy_support.h"

namespace rw::test::proxy {
namespace {

// GET /v1/models with a key that expires in an hour, on `program` with the clock file
// two days ahead: the status.
int models_status_two_days_ahead(const std::string& program) {
    TempDir dir;
    const std::string clock_file = dir.path() + "/clock";
    std::ofstream(clock_file, std::ios::trunc) << 2 * 86400 * 1000;
    Gateway gateway;
    gateway.ringway().set_program(program);
    gateway.start({{"RINGWAY_TEST_CLOCK_FILE", clock_file}});
    if (::testing::Test::HasFatalFailure()) {
        return -1;
    }
    const int64_t expires_at = int64_t(std::time(nullptr)) + 3600;
    const Key key =
        gateway.create_key(R"({"name":"hour","expires_at":)" + std::to_string(expires_at) + "}");
    return gateway.call(get_with_key("/v1/models", key.secret)).status;
}

TEST(TestClock, OnlyTheTestBinaryHonoursTheClockFile) {
    EXPECT_EQ(models_status_two_days_ahead(ringway_path()), 401);
    const std::string release = ringway_release_path();
    ASSERT_FALSE(release.empty()) << "build/ringway was not built";
    EXPECT_EQ(models_status_two_days_ahead(release), 200);
}

}  // namespace
}  // namespace rw::test::proxy
