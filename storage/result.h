// storage/result.h — the small error-carrying return types of storage/. No exceptions
// anywhere (STYLE §4): a failure is a value with one human-readable line in `error`.
// Control plane only (startup, admin, queries); the data plane never sees these.
// Invariant: ok() == error.empty().
#pragma once

#include <string>
#include <utility>

namespace rw {

// A value and a failure that can both travel. `value` is default-constructed on failure.
template <class T>
struct Result {
    T value{};
    std::string error;  // Empty on success; one line, no secrets.

    [[nodiscard]] bool ok() const { return error.empty(); }

    static Result success(T v) {
        Result r;
        r.value = std::move(v);
        return r;
    }
    static Result failure(std::string message) {
        Result r;
        r.error = message.empty() ? std::string("unknown error") : std::move(message);
        return r;
    }
};

}  // namespace rw
