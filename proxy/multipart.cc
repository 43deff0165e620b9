// proxy/multipart.cc — the multipart/form-data scanner (see multipart.h).
#include "proxy/multipart.h"

namespace rw {
namespace {

constexpr size_t boundary_bytes_max = 70;  // RFC 2046 5.1.1.

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool starts_with_nocase(std::string_view text, std::string_view lowercase_prefix) {
    if (text.size() < lowercase_prefix.size()) {
        return false;
    }
    for (size_t i = 0; i < lowercase_prefix.size(); i++) {
        if (lower(text[i]) != lowercase_prefix[i]) {
            return false;
        }
    }
    return true;
}

// The value of parameter `name` (lower case) in a header value's ";"-separated list.
std::string_view header_param(std::string_view value, std::string_view name) {
    size_t at = value.find(';');
    while (at != std::string_view::npos) {
        size_t begin = at + 1;
        while (begin < value.size() && (value[begin] == ' ' || value[begin] == '\t')) {
            begin += 1;
        }
        const std::string_view rest = value.substr(begin);
        if (starts_with_nocase(rest, name) && rest.size() > name.size() &&
            rest[name.size()] == '=') {
            std::string_view param = rest.substr(name.size() + 1);
            if (!param.empty() && param[0] == '"') {
                const size_t close = param.find('"', 1);
                return close == std::string_view::npos ? std::string_view{}
                                                       : param.substr(1, close - 1);
            }
            const size_t end = param.find_first_of("; \t");
            return end == std::string_view::npos ? param : param.substr(0, end);
        }
        at = value.find(';', begin);
    }
    return {};
}

// Whether a part's header block (lines, CRLF-separated) names the part `name`.
bool part_is_named(std::string_view headers, std::string_view name) {
    size_t begin = 0;
    while (begin < headers.size()) {
        size_t end = headers.find("\r\n", begin);
        end = end == std::string_view::npos ? headers.size() : end;
        const std::string_view line = headers.substr(begin, end - begin);
        if (starts_with_nocase(line, "content-disposition:")) {
            return header_param(line, "name") == name;
        }
        begin = end + 2;
    }
    return false;
}

}  // namespace

std::string_view multipart_boundary(std::string_view content_type) {
    if (!starts_with_nocase(content_type, "multipart/form-data")) {
        return {};
    }
    const std::string_view boundary = header_param(content_type, "boundary");
    return boundary.size() > boundary_bytes_max ? std::string_view{} : boundary;
}

MultipartField multipart_find_field(std::string_view bytes, std::string_view boundary,
                                    std::string_view name) {
    MultipartField field{MultipartFind::need_more, 0, 0};
    if (boundary.empty()) {
        field.result = MultipartFind::malformed;
        return field;
    }
    // The first delimiter may follow a preamble; every later one follows a CRLF.
    size_t at = 0;
    const auto is_delimiter = [&](size_t pos) {
        return bytes.size() >= pos + 2 + boundary.size() && bytes[pos] == '-' &&
               bytes[pos + 1] == '-' && bytes.substr(pos + 2, boundary.size()) == boundary;
    };
    if (!is_delimiter(0)) {
        char needle_text[4 + boundary_bytes_max];
        const size_t needle_bytes = 4 + boundary.size();
        needle_text[0] = '\r';
        needle_text[1] = '\n';
        needle_text[2] = '-';
        needle_text[3] = '-';
        boundary.copy(needle_text + 4, boundary.size());
        const size_t found = bytes.find({needle_text, needle_bytes});
        if (found == std::string_view::npos) {
            return field;  // Still in the preamble (or too few bytes to tell).
        }
        at = found + 2;
    }
    while (true) {
        const size_t after = at + 2 + boundary.size();
        if (bytes.size() < after + 2) {
            return field;
        }
        if (bytes[after] == '-' && bytes[after + 1] == '-') {
            field.result = MultipartFind::absent;  // The close delimiter: no such part.
            return field;
        }
        // Transport padding (spaces, tabs) may follow a delimiter [RFC 2046 5.1.1].
        size_t line_end = after;
        while (line_end < bytes.size() && (bytes[line_end] == ' ' || bytes[line_end] == '\t')) {
            line_end += 1;
        }
        if (bytes.size() < line_end + 2) {
            return field;
        }
        if (bytes[line_end] != '\r' || bytes[line_end + 1] != '\n') {
            field.result = MultipartFind::malformed;
            return field;
        }
        const size_t headers_begin = line_end + 2;
        const size_t headers_end = bytes.find("\r\n\r\n", headers_begin);
        if (headers_end == std::string_view::npos) {
            return field;
        }
        const size_t content_begin = headers_end + 4;
        // The part ends at the next CRLF "--" boundary.
        size_t next = content_begin;
        while (true) {
            next = bytes.find("\r\n--", next);
            if (next == std::string_view::npos) {
                return field;  // The part's content continues past these bytes.
            }
            if (bytes.size() < next + 4 + boundary.size()) {
                return field;
            }
            if (bytes.substr(next + 4, boundary.size()) == boundary) {
                break;
            }
            next += 2;
        }
        if (part_is_named(bytes.substr(headers_begin, headers_end - headers_begin), name)) {
            field = {MultipartFind::found, content_begin, next};
            return field;
        }
        at = next + 2;
    }
}

}  // namespace rw
