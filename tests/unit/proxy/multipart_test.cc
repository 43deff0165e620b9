// tests/unit/proxy/multipart_test.cc — the multipart scanner (proxy/multipart.h): the
// boundary from Content-Type, and the model part found in a growing prefix of the body,
// whatever byte the prefix ends at.
#include "proxy/multipart.h"

#include <gtest/gtest.h>

#include <string>

namespace rw {
namespace {

constexpr std::string_view boundary = "XyZ123";

std::string body_with(std::string_view first_name, std::string_view first_value,
                      std::string_view second_name, std::string_view second_value) {
    std::string out = "--XyZ123\r\nContent-Disposition: form-data; name=\"";
    out += first_name;
    out += "\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    out += first_value;
    out += "\r\n--XyZ123\r\nContent-Disposition: form-data; name=\"";
    out += second_name;
    out += "\"\r\n\r\n";
    out += second_value;
    out += "\r\n--XyZ123--\r\n";
    return out;
}

TEST(MultipartTest, BoundaryFromContentType) {
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc"), "abc");
    EXPECT_EQ(multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\""), "a b");
    EXPECT_EQ(multipart_boundary("multipart/form-data;boundary=x;foo=1"), "x");
    EXPECT_EQ(multipart_boundary("application/json"), "");
    EXPECT_EQ(multipart_boundary("multipart/form-data"), "");
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'a')), "");
}

// The file part holds "\r\n--" and a fake "name=\"model\"": neither is taken for the part.
TEST(MultipartTest, ModelFoundAtEveryPrefixLength) {
    const std::string file = "abc\r\n--XyZ12 name=\"model\"\r\n\r\nnot-it\r\n--Xy";
    const std::string body = body_with("file", file, "model", "whisper-1");
    const size_t value_at = body.find("whisper-1");
    for (size_t size = 0; size <= body.size(); size++) {
        const MultipartField field =
            multipart_find_field(std::string_view(body).substr(0, size), boundary, "model");
        // The value is complete once the CRLF and the next delimiter follow it.
        if (size < value_at + 9 + 4 + boundary.size()) {
            EXPECT_EQ(field.result, MultipartFind::need_more) << size;
        } else {
            ASSERT_EQ(field.result, MultipartFind::found) << size;
            EXPECT_EQ(body.substr(field.value_begin, field.value_end - field.value_begin),
                      "whisper-1");
        }
    }
}

TEST(MultipartTest, AbsentAndMalformed) {
    const std::string body = body_with("file", "data", "prompt", "hi");
    EXPECT_EQ(multipart_find_field(body, boundary, "model").result, MultipartFind::absent);
    EXPECT_EQ(multipart_find_field("--XyZ123junk\r\n", boundary, "model").result,
              MultipartFind::malformed);
    EXPECT_EQ(multipart_find_field(body, "", "model").result, MultipartFind::malformed);
    // A preamble before the first delimiter is skipped.
    const std::string preamble = "ignored\r\n" + body_with("model", "m1", "file", "x");
    const MultipartField field = multipart_find_field(preamble, boundary, "model");
    ASSERT_EQ(field.result, MultipartFind::found);
    EXPECT_EQ(preamble.substr(field.value_begin, field.value_end - field.value_begin), "m1");
}

}  // namespace
}  // namespace rw
