// arena/zero_pages.h — a fixed array of integers on anonymous zero pages. The per-key tables
// (quota, concurrency, budget words) are sized for every key slot (a million by default):
// allocated and zeroed from the heap they were ~29 MiB resident in an idle gateway; here
// they cost address space, and resident memory only for the pages of slots in use. Elements
// are read and written through std::atomic_ref by the classes that own them.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <type_traits>

#include "core/assert.h"

namespace rw {

template <class T>
class ZeroPages {
    static_assert(std::is_integral_v<T>, "zero pages hold integers (0 is their start value)");

public:
    explicit ZeroPages(size_t count) : count_(count) {
        RW_ASSERT(count > 0);
        void* pages = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        RW_ASSERT(pages != MAP_FAILED);  // Startup only: address space, not memory.
        data_ = static_cast<T*>(pages);
    }
    ~ZeroPages() { ::munmap(data_, bytes()); }
    ZeroPages(const ZeroPages&) = delete;
    ZeroPages& operator=(const ZeroPages&) = delete;

    [[nodiscard]] T& operator[](size_t index) const {
        RW_ASSERT(index < count_);
        return data_[index];
    }
    [[nodiscard]] size_t count() const { return count_; }

private:
    [[nodiscard]] size_t bytes() const { return count_ * sizeof(T); }
    T* data_ = nullptr;
    size_t count_;
};

}  // namespace rw
