# proxy/admin.cmake — the admin API server, its operator CLI and the first-start channel
# bootstrap: control plane only, its own library so its tests link it without the rest
# of proxy/. Included by proxy/CMakeLists.txt (which leaves these sources out of its glob).
include_guard(GLOBAL)
add_library(rw_admin STATIC
    ${CMAKE_CURRENT_LIST_DIR}/admin_server.cc
    ${CMAKE_CURRENT_LIST_DIR}/admin_cli.cc)
target_link_libraries(rw_admin PUBLIC rw_flags rw_core rw_storage simdjson::simdjson
                      OpenSSL::Crypto)

# Every header compiles on its own (STYLE §2).
set(RW_ADMIN_HEADER_TUS)
foreach(stem admin_server admin_cli)
    set(tu ${CMAKE_BINARY_DIR}/proxy/header_check/${stem}_h.cc)
    file(CONFIGURE OUTPUT ${tu} CONTENT "#include \"proxy/${stem}.h\"\n")
    list(APPEND RW_ADMIN_HEADER_TUS ${tu})
endforeach()
add_library(rw_admin_header_check OBJECT ${RW_ADMIN_HEADER_TUS})
target_link_libraries(rw_admin_header_check PRIVATE rw_flags rw_core rw_storage)
