# core/http_parse.cmake — the client request parser (llhttp adapter). Included by
# core/CMakeLists.txt. llhttp is linked PUBLIC because http_parse.h embeds an llhttp_t.
add_library(rw_http_parse STATIC ${CMAKE_CURRENT_SOURCE_DIR}/http_parse.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/http_syntax.cc)
target_link_libraries(rw_http_parse PUBLIC rw_flags rw_arena llhttp)
