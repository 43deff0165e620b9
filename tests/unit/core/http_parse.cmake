# tests/unit/core/http_parse.cmake — unit tests of core/http_parse.cc. Included by
# tests/unit/core/CMakeLists.txt.
rw_unit_test(http_parse_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/http_parse_test.cc
    LIBS rw_http_parse rw_arena)
