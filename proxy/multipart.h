// proxy/multipart.h — the little of multipart/form-data [RFC 7578] ringway reads while it
// relays an upload: the boundary from Content-Type, and the value of one named part found
// in the buffered start of the body (the parts before it may be files; their bytes are
// skipped, never interpreted). Pure functions over views; any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace rw {

// The boundary parameter of a multipart/form-data Content-Type (quotes removed); empty
// when the type is not multipart/form-data or the boundary is missing or over 70 bytes.
[[nodiscard]] std::string_view multipart_boundary(std::string_view content_type);

enum class MultipartFind : unsigned char {
    found,      // value_begin..value_end is the part's content.
    need_more,  // The part may still come (or is not complete) past these bytes.
    absent,     // The body's closing delimiter came first.
    malformed,  // Not a multipart body with this boundary.
};

struct MultipartField {
    MultipartFind result;
    size_t value_begin;
    size_t value_end;
};

// Looks for the part whose Content-Disposition names `name` in `bytes`, the start of the
// body (a prefix that grows: call again with more bytes).
[[nodiscard]] MultipartField multipart_find_field(std::string_view bytes, std::string_view boundary,
                                                  std::string_view name);

}  // namespace rw
