# proxy/tls.cmake — the TLS client engine (OpenSSL over memory BIOs) as its own small
# library, so its unit test and bench link it without the rest of proxy/. Included by
# proxy/CMakeLists.txt, which keeps tls.cc out of its glob.
add_library(rw_proxy_tls STATIC ${CMAKE_CURRENT_LIST_DIR}/tls.cc)
target_link_libraries(rw_proxy_tls PUBLIC rw_flags rw_base OpenSSL::SSL OpenSSL::Crypto)

# tls.h compiles on its own (STYLE §2).
set(RW_PROXY_TLS_HEADER_TU ${CMAKE_CURRENT_BINARY_DIR}/header_check/tls_h.cc)
file(CONFIGURE OUTPUT ${RW_PROXY_TLS_HEADER_TU} CONTENT "#include \"proxy/tls.h\"\n")
add_library(rw_proxy_tls_header_check OBJECT ${RW_PROXY_TLS_HEADER_TU})
target_link_libraries(rw_proxy_tls_header_check PRIVATE rw_flags OpenSSL::SSL)
