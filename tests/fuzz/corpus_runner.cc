// tests/fuzz/corpus_runner.cc — replays a fuzz corpus through LLVMFuzzerTestOneInput so
// every fuzz target also runs as a plain CTest test with any compiler. Usage: runner DIR...
// Fails when a directory holds no file, so a lost corpus does not pass silently.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool read_file(const std::filesystem::path& path, std::vector<uint8_t>& bytes) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return false;
    }
    bytes.clear();
    uint8_t block[4096];
    size_t count = 0;
    while ((count = std::fread(block, 1, sizeof(block), file)) > 0) {
        bytes.insert(bytes.end(), block, block + count);
    }
    const bool is_ok = std::ferror(file) == 0;
    std::fclose(file);
    return is_ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
        return 2;
    }
    std::vector<uint8_t> bytes;
    for (int arg_index = 1; arg_index < argc; arg_index += 1) {
        std::error_code error;
        uint64_t file_count = 0;
        for (const auto& entry : std::filesystem::directory_iterator(argv[arg_index], error)) {
            if (!entry.is_regular_file()) {
                continue;
            }
            if (!read_file(entry.path(), bytes)) {
                std::fprintf(stderr, "cannot read %s\n", entry.path().c_str());
                return 1;
            }
            LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
            file_count += 1;
        }
        if (error || file_count == 0) {
            std::fprintf(stderr, "no corpus files in %s\n", argv[arg_index]);
            return 1;
        }
        std::printf("%s: %llu inputs replayed\n", argv[arg_index],
                    static_cast<unsigned long long>(file_count));
    }
    return 0;
}
