# tests/e2e/admin.cmake — the admin API against the real binary. Included by
# tests/e2e/CMakeLists.txt; registered like the other e2e tests (one CTest test per case,
# 77 = skip) and, wherever the include sits, it depends on the binary it runs.
add_executable(admin_api_test ${CMAKE_CURRENT_LIST_DIR}/admin_api_test.cc)
target_link_libraries(admin_api_test PRIVATE rw_flags rw_test_harness simdjson::simdjson
    GTest::gtest GTest::gtest_main Threads::Threads)
gtest_discover_tests(admin_api_test DISCOVERY_TIMEOUT 120
    PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS e2e)
set_property(GLOBAL APPEND PROPERTY RW_E2E_TARGETS admin_api_test)
function(rw_admin_e2e_bind)
    if(TARGET ringway)
        add_dependencies(admin_api_test ringway)
    endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL rw_admin_e2e_bind)
