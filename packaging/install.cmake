# packaging/install.cmake — `make install` (cmake --install, PREFIX and DESTDIR) and
# `make deb` (CPack DEB). Installed: PREFIX/bin/ringway (0755), the systemd unit in
# PREFIX/lib/systemd/system with ExecStart pointing at that binary (0644), the example
# environment file in PREFIX/share/doc/ringway (0644), and RW_SYSCONFDIR/ringway/ringway.env
# (0600) only when no such file exists yet: an operator's settings are never overwritten.
# The Debian package (prefix /usr) marks that file a conffile and enables the unit without
# starting it (packaging/debian/postinst).
include(GNUInstallDirs)
# cpack and `cmake --install` install what is built; they never start a build of every
# target (tests included) themselves. `make install` / `make deb` build first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)
set(RW_SYSCONFDIR "/etc" CACHE PATH "Where ringway/ringway.env is installed (not under PREFIX)")

install(TARGETS ringway RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                    WORLD_READ WORLD_EXECUTE)
install(FILES systemd/ringway.env DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/ringway
        RENAME ringway.env.example PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# Written at install time so `cmake --install --prefix X` (make install PREFIX=X) puts X's
# binary path in ExecStart, not the configure-time prefix.
install(CODE "
    set(rw_root \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
    file(READ \"${CMAKE_SOURCE_DIR}/systemd/ringway.service\" rw_unit)
    string(REPLACE \"/usr/local/bin/ringway\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/ringway\"
           rw_unit \"\${rw_unit}\")
    file(MAKE_DIRECTORY \"\${rw_root}/lib/systemd/system\")
    file(WRITE \"\${rw_root}/lib/systemd/system/ringway.service\" \"\${rw_unit}\")
    file(CHMOD \"\${rw_root}/lib/systemd/system/ringway.service\"
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    message(STATUS \"Installing: \${rw_root}/lib/systemd/system/ringway.service\")
    set(rw_env \"\$ENV{DESTDIR}${RW_SYSCONFDIR}/ringway/ringway.env\")
    if(EXISTS \"\${rw_env}\")
        message(STATUS \"Keeping: \${rw_env} (exists; the new defaults are in ringway.env.example)\")
    else()
        file(MAKE_DIRECTORY \"\$ENV{DESTDIR}${RW_SYSCONFDIR}/ringway\")
        file(CHMOD \"\$ENV{DESTDIR}${RW_SYSCONFDIR}/ringway\" PERMISSIONS OWNER_READ OWNER_WRITE
             OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)
        file(COPY_FILE \"${CMAKE_SOURCE_DIR}/systemd/ringway.env\" \"\${rw_env}\")
        file(CHMOD \"\${rw_env}\" PERMISSIONS OWNER_READ OWNER_WRITE)
        message(STATUS \"Installing: \${rw_env}\")
    endif()
")

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "ringway")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "ringway maintainers <ringway@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OpenAI-compatible LLM API gateway (io_uring, SQLite)")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: from the binary's libraries (dpkg-shlibdeps).
# libpq is dlopen'd for a postgres:// RINGWAY_DB only (storage/pg_lib.h): dpkg-shlibdeps does
# not see it, and a SQLite gateway does not need it.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libpq5")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/debian/conffiles;${CMAKE_SOURCE_DIR}/packaging/debian/postinst;${CMAKE_SOURCE_DIR}/packaging/debian/prerm;${CMAKE_SOURCE_DIR}/packaging/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
