# tests/unit/proxy/tls.cmake — unit tests of proxy/tls.cc against a real in-memory OpenSSL
# server (no sockets, no network). Included by tests/unit/proxy/CMakeLists.txt.
rw_unit_test(tls_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_test.cc LIBS rw_proxy_tls)
