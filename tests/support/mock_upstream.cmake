# tests/support/mock_upstream.cmake — the mock LLM upstream used by e2e tests and the
# "direct" baseline of bench/load. Included by tests/support/CMakeLists.txt. One source
# file; links only OpenSSL and threads (plus rw_base for RW_ASSERT).
add_executable(mock_upstream ${CMAKE_CURRENT_LIST_DIR}/mock_upstream.cc)
target_link_libraries(mock_upstream PRIVATE rw_flags rw_base OpenSSL::SSL OpenSSL::Crypto
    Threads::Threads)
