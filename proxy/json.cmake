# proxy/json.cmake — the JSON side of proxy/: request fields + rewrite, usage extraction and
# the SSE usage scanner. Its own library so tests, fuzz targets and benches link it without
# the rest of proxy/ (rw_proxy includes this file and leaves these sources out of its glob).
# Paths are relative to this file, so any directory may include it; the guard makes a
# second include (proxy/ and tests/unit/proxy/ both do) a no-op.
include_guard(GLOBAL)
add_library(rw_proxy_json STATIC
    ${CMAKE_CURRENT_LIST_DIR}/json_fields.cc
    ${CMAKE_CURRENT_LIST_DIR}/usage.cc
    ${CMAKE_CURRENT_LIST_DIR}/sse_scan.cc
    ${CMAKE_CURRENT_LIST_DIR}/translate_request.cc
    ${CMAKE_CURRENT_LIST_DIR}/translate_response.cc
    ${CMAKE_CURRENT_LIST_DIR}/translate_stream.cc
    ${CMAKE_CURRENT_LIST_DIR}/translate_responses_request.cc
    ${CMAKE_CURRENT_LIST_DIR}/translate_responses_response.cc
    ${CMAKE_CURRENT_LIST_DIR}/translate_responses_stream.cc)
target_link_libraries(rw_proxy_json PUBLIC rw_flags rw_arena rw_base simdjson::simdjson)

# Every header compiles on its own (STYLE §2): one generated TU per header.
set(RW_PROXY_JSON_HEADER_TUS)
foreach(stem json_fields usage sse_scan translate translate_json translate_shared
             translate_responses)
    set(tu ${CMAKE_BINARY_DIR}/proxy/header_check/${stem}_h.cc)
    file(CONFIGURE OUTPUT ${tu} CONTENT "#include \"proxy/${stem}.h\"\n")
    list(APPEND RW_PROXY_JSON_HEADER_TUS ${tu})
endforeach()
add_library(rw_proxy_json_header_check OBJECT ${RW_PROXY_JSON_HEADER_TUS})
target_link_libraries(rw_proxy_json_header_check PRIVATE rw_flags rw_arena simdjson::simdjson)
