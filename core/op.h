// core/op.h — the operation kinds a shard submits and the 64-bit user_data tag that
// comes back on their completions. The tag packs [op:8][gen:24][slot:32]: the slot
// indexes the shard's fixed connection array and the generation proves a completion
// belongs to the slot's current occupant (a slot is reused only after its last CQE).
#pragma once

#include <cstdint>

namespace rw {

enum class Op : uint8_t {
    accept = 1,     // Multishot accept on the shard's listener (no slot).
    wake,           // eventfd read: another thread asked this shard to look at its stop flag.
    recv,           // Multishot recv into the provided buffer ring.
    send,           // A response (head and body) from arena memory.
    send_continue,  // The static "100 Continue" interim response.
    cancel,         // Cancels every operation on a connection's fd.
    shutdown,       // Half-close (SHUT_WR) before a lingering close.
    close,          // Final close of a connection's fd.
    // Operations of the request handler (proxy/): their completions go to
    // RequestHandler::on_cqe, which owns the meaning of gen and slot.
    handler_connect,
    handler_send,
    handler_recv,
    handler_cancel,
    handler_close,
};

struct OpTag {
    Op op;
    uint32_t gen;
    uint32_t slot;
};

constexpr uint64_t tag_pack(OpTag tag) {
    return (uint64_t(tag.op) << 56) | (uint64_t(tag.gen & 0xFFFFFFu) << 32) | tag.slot;
}

constexpr OpTag tag_unpack(uint64_t value) {
    return {Op(value >> 56), uint32_t(value >> 32) & 0xFFFFFFu, uint32_t(value)};
}

static_assert(tag_unpack(tag_pack({Op::send, 7, 42})).slot == 42);
static_assert(tag_unpack(tag_pack({Op::send, 7, 42})).gen == 7);
static_assert(tag_unpack(tag_pack({Op::close, 0x1FFFFFF, 1})).gen == 0xFFFFFF);

}  // namespace rw
