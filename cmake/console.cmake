# console.cmake — embeds the web console (src/http/console/*) into the
# keyward program: a generated C file of byte arrays (see embed.cmake),
# regenerated whenever a console file changes.
file(GLOB KW_CONSOLE_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/http/console/*)
set(KW_CONSOLE_C ${CMAKE_BINARY_DIR}/generated/console_files.c)
add_custom_command(
  OUTPUT ${KW_CONSOLE_C}
  COMMAND ${CMAKE_COMMAND} -DDIR=${CMAKE_SOURCE_DIR}/src/http/console -DOUT=${KW_CONSOLE_C}
          -P ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
  DEPENDS ${KW_CONSOLE_FILES} ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
  COMMENT "Embedding the web console"
  VERBATIM)
target_sources(keyward PRIVATE ${KW_CONSOLE_C})
