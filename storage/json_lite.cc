// storage/json_lite.cc — a strict recursive-descent reader for the two JSON shapes in
// json_lite.h. Bounded by the input length; allocates only the output strings.
#include "storage/json_lite.h"

#include <cstdint>

namespace rw {

namespace {

struct JsonReader {
    std::string_view text;
    size_t position = 0;

    void skip_space() {
        while (position < text.size()) {
            const char c = text[position];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            position++;
        }
    }
    bool consume(char c) {
        skip_space();
        if (position < text.size() && text[position] == c) {
            position++;
            return true;
        }
        return false;
    }
    bool at_end() {
        skip_space();
        return position == text.size();
    }
    bool read_hex4(uint32_t& value) {
        if (text.size() - position < 4) {
            return false;
        }
        value = 0;
        for (int index = 0; index < 4; index++) {
            const char c = text[position++];
            value <<= 4;
            if (c >= '0' && c <= '9') {
                value |= uint32_t(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                value |= uint32_t(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                value |= uint32_t(c - 'A' + 10);
            } else {
                return false;
            }
        }
        return true;
    }
    static void append_utf8(std::string& out, uint32_t code) {
        if (code < 0x80) {
            out.push_back(char(code));
        } else if (code < 0x800) {
            out.push_back(char(0xC0 | (code >> 6)));
            out.push_back(char(0x80 | (code & 0x3F)));
        } else if (code < 0x10000) {
            out.push_back(char(0xE0 | (code >> 12)));
            out.push_back(char(0x80 | ((code >> 6) & 0x3F)));
            out.push_back(char(0x80 | (code & 0x3F)));
        } else {
            out.push_back(char(0xF0 | (code >> 18)));
            out.push_back(char(0x80 | ((code >> 12) & 0x3F)));
            out.push_back(char(0x80 | ((code >> 6) & 0x3F)));
            out.push_back(char(0x80 | (code & 0x3F)));
        }
    }
    bool read_escape(std::string& out) {
        if (position >= text.size()) {
            return false;
        }
        const char c = text[position++];
        switch (c) {
            case '"': out.push_back('"'); return true;
            case '\\': out.push_back('\\'); return true;
            case '/': out.push_back('/'); return true;
            case 'b': out.push_back('\b'); return true;
            case 'f': out.push_back('\f'); return true;
            case 'n': out.push_back('\n'); return true;
            case 'r': out.push_back('\r'); return true;
            case 't': out.push_back('\t'); return true;
            case 'u': break;
            default: return false;
        }
        uint32_t code = 0;
        if (!read_hex4(code)) {
            return false;
        }
        if (code >= 0xDC00 && code <= 0xDFFF) {
            return false;  // Lone low surrogate.
        }
        if (code >= 0xD800 && code <= 0xDBFF) {
            uint32_t low = 0;
            if (text.substr(position, 2) != "\\u") {
                return false;
            }
            position += 2;
            if (!read_hex4(low) || low < 0xDC00 || low > 0xDFFF) {
                return false;
            }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, code);
        return true;
    }
    bool read_string(std::string& out) {
        out.clear();
        if (!consume('"')) {
            return false;
        }
        while (position < text.size()) {
            const char c = text[position++];
            if (c == '"') {
                return true;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                return false;  // Raw control char.
            }
            if (c == '\\') {
                if (!read_escape(out)) {
                    return false;
                }
            } else {
                out.push_back(c);
            }
        }
        return false;
    }
    // A non-negative integer up to 2^32 - 1.
    bool read_u32(int64_t& value) {
        skip_space();
        const size_t start = position;
        value = 0;
        while (position < text.size() && text[position] >= '0' && text[position] <= '9') {
            value = value * 10 + (text[position++] - '0');
            if (value > int64_t(UINT32_MAX)) {
                return false;
            }
        }
        return position > start && (position - start == 1 || text[start] != '0');
    }
    std::string where() const { return "invalid JSON at byte " + std::to_string(position); }
};

}  // namespace

namespace {

// The rest of a JSON array or object whose opening bracket was consumed: items separated by
// commas up to `close`, each read by read_item (which sets error itself on failure).
template <typename ReadItem>
bool read_items(JsonReader& reader, char close, std::string& error, ReadItem&& read_item) {
    if (reader.consume(close)) {
        return true;
    }
    for (;;) {
        if (!read_item()) {
            return false;
        }
        if (reader.consume(close)) {
            return true;
        }
        if (!reader.consume(',')) {
            error =
                reader.where() + (close == ']' ? ": expected ',' or ']'" : ": expected ',' or '}'");
            return false;
        }
    }
}

// A whole text holding one array or object: `open`, the items, `close`, nothing after.
template <typename ReadItem>
bool read_whole(std::string_view text, char open, std::string_view shape, std::string& error,
                ReadItem&& read_item) {
    JsonReader reader{text};
    if (!reader.consume(open)) {
        error = "expected a JSON " + std::string(shape);
        return false;
    }
    if (!read_items(reader, open == '[' ? ']' : '}', error, [&] { return read_item(reader); })) {
        return false;
    }
    if (!reader.at_end()) {
        error = reader.where() + ": trailing bytes";
        return false;
    }
    return true;
}

// {"rpm": N, "tpm": N}, both optional, each once.
bool read_model_limit(JsonReader& reader, ModelLimitSpec& limit, std::string& error) {
    if (!reader.consume('{')) {
        error = reader.where() + ": expected {\"rpm\": N, \"tpm\": N}";
        return false;
    }
    bool seen_rpm = false;
    bool seen_tpm = false;
    return read_items(reader, '}', error, [&] {
        std::string name;
        if (!reader.read_string(name) || !reader.consume(':')) {
            error = reader.where() + ": expected \"rpm\" or \"tpm\"";
            return false;
        }
        bool& seen = name == "rpm" ? seen_rpm : seen_tpm;
        if ((name != "rpm" && name != "tpm") || seen) {
            error = reader.where() + ": expected \"rpm\" or \"tpm\", each once";
            return false;
        }
        seen = true;
        if (!reader.read_u32(name == "rpm" ? limit.rpm : limit.tpm)) {
            error = reader.where() + ": expected an integer 0..4294967295";
            return false;
        }
        return true;
    });
}

}  // namespace

bool json_parse_string_array(std::string_view text, std::vector<std::string>& out,
                             std::string& error) {
    out.clear();
    return read_whole(text, '[', "array of strings", error, [&](JsonReader& reader) {
        std::string item;
        if (!reader.read_string(item)) {
            error = reader.where() + ": expected a string";
            return false;
        }
        out.push_back(std::move(item));
        return true;
    });
}

bool json_parse_string_map(std::string_view text,
                           std::vector<std::pair<std::string, std::string>>& out,
                           std::string& error) {
    out.clear();
    return read_whole(text, '{', "object of strings", error, [&](JsonReader& reader) {
        std::string key;
        std::string value;
        if (!reader.read_string(key) || !reader.consume(':') || !reader.read_string(value)) {
            error = reader.where() + ": expected \"name\": \"string\"";
            return false;
        }
        out.emplace_back(std::move(key), std::move(value));
        return true;
    });
}

bool json_parse_model_limits(std::string_view text, std::vector<ModelLimitSpec>& out,
                             std::string& error) {
    out.clear();
    return read_whole(text, '{', "object of model name -> {\"rpm\": N, \"tpm\": N}", error,
                      [&](JsonReader& reader) {
                          ModelLimitSpec limit;
                          if (!reader.read_string(limit.model) || !reader.consume(':')) {
                              error = reader.where() + ": expected \"model\": {...}";
                              return false;
                          }
                          for (const ModelLimitSpec& other : out) {
                              if (other.model == limit.model) {
                                  error =
                                      "model \"" + limit.model.substr(0, 100) + "\" is named twice";
                                  return false;
                              }
                          }
                          if (!read_model_limit(reader, limit, error)) {
                              return false;
                          }
                          out.push_back(std::move(limit));
                          return true;
                      });
}

}  // namespace rw
