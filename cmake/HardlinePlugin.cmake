# hardline_add_plugin(NAME SOURCES... [LIBS targets...] [NO_INSTALL])
#
# Builds the plugin NAME as NAME.so (no "lib" prefix), the form hlcore
# loads, with only the descriptor symbol exported: the plugin's sources
# are compiled with hidden visibility (HL_PLUGIN() marks the descriptor
# visible), and the symbols of static libraries linked in stay local
# (--exclude-libs), whatever flags those were built with. Shared by the
# plugins in this tree and by third-party plugins built against the
# installed SDK (find_package(Hardline)). NO_INSTALL leaves it out of
# `cmake --install` (test fixtures).
function(hardline_add_plugin name)
  cmake_parse_arguments(HLP "NO_INSTALL" "" "SOURCES;LIBS" ${ARGN})
  if(NOT HLP_SOURCES)
    set(HLP_SOURCES ${HLP_UNPARSED_ARGUMENTS})
  endif()
  add_library(${name} MODULE ${HLP_SOURCES})
  set_target_properties(${name} PROPERTIES PREFIX "" OUTPUT_NAME "${name}"
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(NOT APPLE)
    target_link_options(${name} PRIVATE "LINKER:--exclude-libs,ALL")
  endif()
  if(TARGET Hardline::plugin)
    target_link_libraries(${name} PRIVATE Hardline::plugin)
  endif()
  if(HLP_LIBS)
    target_link_libraries(${name} PRIVATE ${HLP_LIBS})
  endif()
  if(DEFINED HL_PLUGIN_BUILD_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${HL_PLUGIN_BUILD_DIR})
  endif()
  if(DEFINED HL_PLUGIN_INSTALL_DIR AND NOT HLP_NO_INSTALL)
    install(TARGETS ${name} LIBRARY DESTINATION ${HL_PLUGIN_INSTALL_DIR})
  endif()
endfunction()
