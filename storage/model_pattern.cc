// storage/model_pattern.cc — model name patterns (see model_pattern.h).
#include "storage/model_pattern.h"

namespace rw {

ModelPattern model_pattern_parse(std::string_view text) {
    ModelPattern pattern;
    pattern.is_prefix = text.ends_with('*');
    pattern.stem = text.substr(0, text.size() - (pattern.is_prefix ? 1 : 0));
    return pattern;
}

std::string model_pattern_check(std::string_view text, size_t bytes_max) {
    if (text.empty() || text.size() > bytes_max) {
        return "must be 1.." + std::to_string(bytes_max) + " bytes";
    }
    for (size_t i = 0; i < text.size(); i++) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f) {
            return "must not contain control characters";
        }
        if (c == '*' && i + 1 != text.size()) {
            return "may hold '*' only at its end (a prefix pattern)";
        }
    }
    return {};
}

std::string model_pattern_why(std::string_view name, std::string_view why) {
    // Appended piece by piece (GCC 12 -Wrestrict false positive, PR 105651).
    return std::string("\"").append(name.substr(0, 64)).append("\" ").append(why);
}

}  // namespace rw
