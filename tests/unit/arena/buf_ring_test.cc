// tests/unit/arena/buf_ring_test.cc — the provided buffer ring against a real io_uring:
// registration, a real recv selecting a buffer, the owner transitions, and give-back
// making the buffer selectable again, publication that follows the recvs' demand (the rest
// spare, newest given back on top) and spare buffers the app takes itself. Skips (77)
// where io_uring is unavailable.
#include "arena/buf_ring.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace rw {
namespace {

class BufRingTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (io_uring_queue_init(8, &ring_, 0) < 0) {
            GTEST_SKIP() << "io_uring unavailable";
        }
        is_ring_ready_ = true;
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
    }
    void TearDown() override {
        if (fds_[0] >= 0) {
            ::close(fds_[0]);
            ::close(fds_[1]);
        }
    }

    // One recv on fds_[0] with buffer select; returns the CQE's (res, bid).
    std::pair<int, uint16_t> recv_once(BufRing& ring) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_recv(sqe, fds_[0], nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = ring.group_id();
        io_uring_submit(&ring_);
        io_uring_cqe* cqe = nullptr;
        EXPECT_EQ(io_uring_wait_cqe(&ring_, &cqe), 0);
        const int res = cqe->res;
        const auto bid = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        io_uring_cqe_seen(&ring_, cqe);
        return {res, bid};
    }

    io_uring ring_{};
    bool is_ring_ready_ = false;
    int fds_[2] = {-1, -1};

public:
    ~BufRingTest() override {
        // BufRing members of tests are destroyed before this runs.
        if (is_ring_ready_) {
            io_uring_queue_exit(&ring_);
        }
    }
};

TEST_F(BufRingTest, RecvSelectsABufferAndGiveBackReturnsIt) {
    BufRing ring;
    const int rc = ring.init(&ring_, 3, 2, 4096);
    if (rc == -EINVAL) {
        GTEST_SKIP() << "provided buffer rings unsupported";
    }
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(::write(fds_[1], "hello", 5), 5);
    auto [res, bid] = recv_once(ring);
    ASSERT_EQ(res, 5);
    auto bytes = ring.take(bid, 5);
    EXPECT_EQ(std::memcmp(bytes.data(), "hello", 5), 0);
    EXPECT_EQ(ring.owner(bid), BufOwner::app);
    ring.lend_to_send(bid);
    EXPECT_EQ(ring.owner(bid), BufOwner::send);
    EXPECT_EQ(ring.in_app_count(), 1u);

    // Drain the other buffer, then the ring is empty: the next recv gets -ENOBUFS.
    ASSERT_EQ(::write(fds_[1], "x", 1), 1);
    auto [res2, bid2] = recv_once(ring);
    ASSERT_EQ(res2, 1);
    ring.take(bid2, 1);
    ASSERT_EQ(::write(fds_[1], "y", 1), 1);
    auto [res3, bid3] = recv_once(ring);
    EXPECT_EQ(res3, -ENOBUFS);
    (void)bid3;

    // Give one back and publish it: the pending byte can be received again.
    ring.give_back(bid);
    ring.flush();
    EXPECT_EQ(ring.owner(bid), BufOwner::kernel);
    auto [res4, bid4] = recv_once(ring);
    EXPECT_EQ(res4, 1);
    EXPECT_EQ(bid4, bid);
    ring.take(bid4, 1);
    ring.give_back(bid4);
    ring.give_back(bid2);
    ring.flush();
    EXPECT_EQ(ring.in_app_count(), 0u);
}

// Only the floor is published at first; a turn that used many buffers doubles the target,
// a quiet one lowers it slowly; give-backs are spare until published, newest on top.
TEST_F(BufRingTest, PublishesWhatTheRecvsUseAndKeepsTheRestSpare) {
    constexpr uint16_t count = 256;
    BufRing ring;
    const int rc = ring.init(&ring_, 5, count, 1024);
    if (rc == -EINVAL) {
        GTEST_SKIP() << "provided buffer rings unsupported";
    }
    ASSERT_EQ(rc, 0);
    EXPECT_EQ(ring.published_count(), BufRing::published_floor);
    EXPECT_EQ(ring.spare_count(), count - BufRing::published_floor);

    constexpr uint32_t used = 60;
    std::vector<uint16_t> taken;
    for (uint32_t index = 0; index < used; index++) {
        ASSERT_EQ(::write(fds_[1], "m", 1), 1);
        auto [res, bid] = recv_once(ring);
        ASSERT_EQ(res, 1);
        ring.take(bid, 1);
        taken.push_back(bid);
    }
    EXPECT_EQ(ring.published_count(), BufRing::published_floor - used);
    ring.flush();  // 60 handed out this turn: 120 wanted.
    EXPECT_EQ(ring.published_target(), 2 * used);
    EXPECT_EQ(ring.published_count(), 2 * used);
    EXPECT_EQ(ring.spare_count(), count - 2 * used - used);

    for (uint16_t bid : taken) {
        ring.give_back(bid);
        EXPECT_EQ(ring.owner(bid), BufOwner::spare);
    }
    ring.flush();  // A quiet turn: the target falls by a 1024th of the gap, nothing unpublished.
    EXPECT_LT(ring.published_target(), 2 * used);
    EXPECT_GE(ring.published_target(), BufRing::published_floor);
    EXPECT_EQ(ring.published_count(), 2 * used);
    EXPECT_EQ(ring.in_app_count(), 0u);

    // The app's own buffer comes from the top of the spare stack: the newest given back.
    const uint16_t spare = ring.take_spare();
    EXPECT_EQ(spare, taken.back());
    EXPECT_EQ(ring.owner(spare), BufOwner::app);
    EXPECT_EQ(ring.in_app_count(), 1u);
    ring.give_back(spare);
    EXPECT_EQ(ring.take_spare(), spare);
    ring.give_back(spare);
}

// Every buffer published or held: take_spare has none to give.
TEST_F(BufRingTest, TakeSpareIsEmptyWhenEveryBufferIsPublished) {
    BufRing ring;
    const int rc = ring.init(&ring_, 6, 2, 1024);
    if (rc == -EINVAL) {
        GTEST_SKIP() << "provided buffer rings unsupported";
    }
    ASSERT_EQ(rc, 0);
    EXPECT_EQ(ring.published_count(), 2u);  // A ring below the floor publishes all.
    EXPECT_EQ(ring.take_spare(), no_bid);
}

TEST_F(BufRingTest, DoubleGiveBackAborts) {
    BufRing ring;
    const int rc = ring.init(&ring_, 4, 2, 1024);
    if (rc == -EINVAL) {
        GTEST_SKIP() << "provided buffer rings unsupported";
    }
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(::write(fds_[1], "z", 1), 1);
    auto [res, bid] = recv_once(ring);
    ASSERT_EQ(res, 1);
    ring.take(bid, 1);
    ring.give_back(bid);
    EXPECT_DEATH(ring.give_back(bid), "assertion failed");
}

}  // namespace
}  // namespace rw
