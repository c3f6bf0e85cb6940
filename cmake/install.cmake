# install.cmake — what `cmake --install` lays out and `cpack -G DEB` packs:
# bin/keyward; a man page per command, generated at build time from the
# program's own --help (cmake/manpages.sh), so the text has one source;
# the configuration file (every line a comment: the defaults); and a
# hardened systemd unit serving from its state directory.  A package is
# built with -DCMAKE_INSTALL_PREFIX=/usr (docs/install.md).
include(GNUInstallDirs)
install(TARGETS keyward RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Man pages.  The binary runs at build time; under AddressSanitizer its
# leak report at exit must not fail the build.
set(KW_MAN_DIR ${CMAKE_BINARY_DIR}/man)
add_custom_command(
  OUTPUT ${KW_MAN_DIR}/keyward.1.gz
  COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
          sh ${CMAKE_SOURCE_DIR}/cmake/manpages.sh $<TARGET_FILE:keyward> ${KW_MAN_DIR}
  DEPENDS keyward ${CMAKE_SOURCE_DIR}/cmake/manpages.sh
  COMMENT "Man pages from keyward --help"
  VERBATIM)
add_custom_target(manpages ALL DEPENDS ${KW_MAN_DIR}/keyward.1.gz)
install(DIRECTORY ${KW_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
        FILES_MATCHING PATTERN "*.1.gz")

# The configuration file `keyward serve` reads by default, and the unit.
# Debian's units live in /lib/systemd/system; another prefix keeps its own.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(KW_UNIT_DIR_DEFAULT /lib/systemd/system)
else()
  set(KW_UNIT_DIR_DEFAULT ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(KW_SYSTEMD_UNIT_DIR ${KW_UNIT_DIR_DEFAULT} CACHE PATH "Where the systemd unit is installed")
set(KW_CONFIG_DIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/keyward)
configure_file(${CMAKE_SOURCE_DIR}/packaging/keyward.service.in ${CMAKE_BINARY_DIR}/keyward.service @ONLY)
configure_file(${CMAKE_SOURCE_DIR}/packaging/keyward.conf.in ${CMAKE_BINARY_DIR}/keyward.conf @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/keyward.service DESTINATION ${KW_SYSTEMD_UNIT_DIR})
install(FILES ${CMAKE_BINARY_DIR}/keyward.conf DESTINATION ${KW_CONFIG_DIR})
install(FILES ${CMAKE_SOURCE_DIR}/docs/install.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The Debian package: `cpack -G DEB` in the build directory.  Depends from
# dpkg-shlibdeps; maintainer scripts in packaging/debian/ (enable and start
# the unit only where systemd runs; stop, disable and, on purge, remove the
# state directory).
file(STRINGS ${CMAKE_SOURCE_DIR}/include/keyward/keyward.h KW_VERSION_LINE REGEX "#define KW_VERSION ")
string(REGEX REPLACE ".*\"(.*)\".*" "\\1" KW_VERSION_STRING "${KW_VERSION_LINE}")
configure_file(${CMAKE_SOURCE_DIR}/packaging/debian/conffiles.in ${CMAKE_BINARY_DIR}/debian/conffiles @ONLY)
foreach(script postinst prerm postrm)
  configure_file(${CMAKE_SOURCE_DIR}/packaging/debian/${script} ${CMAKE_BINARY_DIR}/debian/${script}
                 COPYONLY)
endforeach()
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME keyward)
set(CPACK_PACKAGE_VERSION ${KW_VERSION_STRING})
set(KW_PACKAGE_MAINTAINER "keyward maintainers <keyward@localhost>" CACHE STRING
    "The .deb's Maintainer: field (name <address>)")
set(CPACK_PACKAGE_CONTACT ${KW_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "self-hosted API-key service and secret-leak toolkit")
set(CPACK_PACKAGE_DESCRIPTION "keyward issues, stores (hashed), verifies and enforces scoped API
keys over an HTTP API compatible with PostHog's key API, with a leak
scanner, a git pre-commit hook, a log redaction filter and a web console.
This package runs it as a hardened systemd service on SQLite in
/var/lib/keyward.")
set(CPACK_STRIP_FILES TRUE)
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_BINARY_DIR}/debian/conffiles ${CMAKE_BINARY_DIR}/debian/postinst
  ${CMAKE_BINARY_DIR}/debian/prerm ${CMAKE_BINARY_DIR}/debian/postrm)
include(CPack)
