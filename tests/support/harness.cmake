# tests/support/harness.cmake — rw_test_harness: the library every e2e test links
# (process spawning, raw HTTP client, metrics scraping). Included from
# tests/support/CMakeLists.txt. The paths of the binaries under test are compiled in by
# tests/e2e/CMakeLists.txt once every target exists (RW_RINGWAY_BIN, RW_MOCK_UPSTREAM_BIN).
add_library(rw_test_harness STATIC ${CMAKE_CURRENT_LIST_DIR}/harness.cc
    ${CMAKE_CURRENT_LIST_DIR}/pg_test.cc)
target_link_libraries(rw_test_harness PUBLIC rw_flags Threads::Threads PkgConfig::LIBPQ
    PRIVATE simdjson::simdjson)
