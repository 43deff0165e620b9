// core/alloc_count.cc — the counting allocator that proves the data plane allocates
// nothing per request. Every heap allocation made on a thread that bound a counter
// (the shards) adds one to it; /metrics shows the sums as ringway_heap_allocations_total.
// C++ allocations are caught by replacing the global operator new family (the
// executable's definitions win over every shared library's); C allocations from
// ringway's own objects by alloc_wrap.cc, linked into the binary only, with the linker's
// --wrap=malloc,… (see core/CMakeLists.txt). Memory itself still comes from mimalloc.
#if !defined(RW_SANITIZED)
#include <mimalloc.h>
#else
// Sanitizer builds own malloc; the counted operators go through it instead of mimalloc.
#include <cstdlib>
namespace {
inline void* mi_new(size_t size) {
    return std::malloc(size);
}
inline void* mi_new_nothrow(size_t size) {
    return std::malloc(size);
}
inline void* mi_new_aligned(size_t size, size_t alignment) {
    return std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}
inline void mi_free(void* pointer) {
    std::free(pointer);
}
}  // namespace
#endif

#include <cstddef>
#include <cstdlib>
#include <new>

#include "core/metrics.h"

namespace rw {
namespace {

thread_local Counter* thread_alloc_counter = nullptr;

inline void count_one() {
    if (thread_alloc_counter != nullptr) {
        thread_alloc_counter->add();
    }
}

}  // namespace

void alloc_count_bind_thread(Counter* counter) {
    thread_alloc_counter = counter;
}

void alloc_count_note() {
    count_one();
}

}  // namespace rw

// Global operator new/delete through mimalloc, counted. With -fno-exceptions a failed
// allocation aborts inside mi_new (Envoy's "OOM is fatal").
void* operator new(size_t size) {
    rw::count_one();
    return mi_new(size);
}
void* operator new[](size_t size) {
    rw::count_one();
    return mi_new(size);
}
void* operator new(size_t size, std::align_val_t alignment) {
    rw::count_one();
    return mi_new_aligned(size, static_cast<size_t>(alignment));
}
void* operator new[](size_t size, std::align_val_t alignment) {
    rw::count_one();
    return mi_new_aligned(size, static_cast<size_t>(alignment));
}
void* operator new(size_t size, const std::nothrow_t&) noexcept {
    rw::count_one();
    return mi_new_nothrow(size);
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
    rw::count_one();
    return mi_new_nothrow(size);
}
void operator delete(void* pointer) noexcept {
    mi_free(pointer);
}
void operator delete[](void* pointer) noexcept {
    mi_free(pointer);
}
void operator delete(void* pointer, size_t) noexcept {
    mi_free(pointer);
}
void operator delete[](void* pointer, size_t) noexcept {
    mi_free(pointer);
}
void operator delete(void* pointer, std::align_val_t) noexcept {
    mi_free(pointer);
}
void operator delete[](void* pointer, std::align_val_t) noexcept {
    mi_free(pointer);
}
void operator delete(void* pointer, size_t, std::align_val_t) noexcept {
    mi_free(pointer);
}
void operator delete[](void* pointer, size_t, std::align_val_t) noexcept {
    mi_free(pointer);
}
