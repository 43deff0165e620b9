# tests/unit/proxy/admin.cmake — in-process tests of the admin API (real sockets on
# 127.0.0.1:0, real SQLite in a temp dir, a real Writer thread) and of the CLI's pure
# helpers. Included by tests/unit/proxy/CMakeLists.txt; paths are relative to this file.
include(${CMAKE_SOURCE_DIR}/proxy/admin.cmake)
rw_unit_test(admin_server_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/admin_server_test.cc
    LIBS rw_admin simdjson::simdjson)
rw_unit_test(admin_cli_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/admin_cli_test.cc
    LIBS rw_admin)
