// core/alloc_wrap.cc — the C half of the counting allocator: with the linker's
// --wrap=malloc (and calloc, realloc, aligned_alloc, posix_memalign), every call to those
// from ringway's own objects and static libraries lands here, is counted for the calling
// shard, and goes on to the real allocator (mimalloc, which overrides malloc). Linked into
// the ringway executable only, together with the --wrap flags.
#include <cstddef>

#include "core/metrics.h"

extern "C" {
void* __real_malloc(size_t size);
void* __real_calloc(size_t count, size_t size);
void* __real_realloc(void* pointer, size_t size);
void* __real_aligned_alloc(size_t alignment, size_t size);
int __real_posix_memalign(void** out, size_t alignment, size_t size);

void* __wrap_malloc(size_t size) {
    rw::alloc_count_note();
    return __real_malloc(size);
}
void* __wrap_calloc(size_t count, size_t size) {
    rw::alloc_count_note();
    return __real_calloc(count, size);
}
void* __wrap_realloc(void* pointer, size_t size) {
    rw::alloc_count_note();
    return __real_realloc(pointer, size);
}
void* __wrap_aligned_alloc(size_t alignment, size_t size) {
    rw::alloc_count_note();
    return __real_aligned_alloc(alignment, size);
}
int __wrap_posix_memalign(void** out, size_t alignment, size_t size) {
    rw::alloc_count_note();
    return __real_posix_memalign(out, alignment, size);
}
}

