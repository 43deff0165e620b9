// core/alloc_wrap.cc — the C half of the counting allocator: the ringway executable
// defines the malloc family itself. Executable symbols take precedence over every shared
// library's, so every heap allocation in the process (ringway's code, libstdc++,
// OpenSSL, simdjson, SQLite, glibc) lands here, is counted for the calling shard thread,
// and is served by mimalloc (mi_*), the process allocator. Linked into the executable
// only; sanitizer builds leave malloc to the sanitizer and do not link this file.
#include <mimalloc.h>

#include <cerrno>
#include <cstddef>

#include "core/metrics.h"

extern "C" {

void* malloc(size_t size) {
    rw::alloc_count_note();
    return mi_malloc(size);
}
void* calloc(size_t count, size_t size) {
    rw::alloc_count_note();
    return mi_calloc(count, size);
}
void* realloc(void* pointer, size_t size) {
    rw::alloc_count_note();
    return mi_realloc(pointer, size);
}
void* reallocarray(void* pointer, size_t count, size_t size) {
    rw::alloc_count_note();
    return mi_reallocarray(pointer, count, size);
}
void free(void* pointer) {
    mi_free(pointer);
}
void* aligned_alloc(size_t alignment, size_t size) {
    rw::alloc_count_note();
    return mi_aligned_alloc(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) {
    rw::alloc_count_note();
    return mi_posix_memalign(out, alignment, size);
}
void* memalign(size_t alignment, size_t size) {
    rw::alloc_count_note();
    return mi_memalign(alignment, size);
}
void* valloc(size_t size) {
    rw::alloc_count_note();
    return mi_valloc(size);
}
void* pvalloc(size_t size) {
    rw::alloc_count_note();
    return mi_pvalloc(size);
}
size_t malloc_usable_size(void* pointer) {
    return mi_usable_size(pointer);
}
}
