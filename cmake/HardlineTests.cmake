# The project's own test and fuzz executables (not installed with the SDK).

# hl_unit_test(NAME SOURCES... LIBS...): an executable in build/tests,
# registered as the test unit/NAME, with tests/unit on its include path
# (check.h).
function(hl_unit_test name)
  cmake_parse_arguments(HLT "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT HL_TESTS)
    return()
  endif()
  # Plugins are added before the top level enables testing.
  enable_testing()
  add_executable(${name} ${HLT_SOURCES})
  target_link_libraries(${name} PRIVATE ${HLT_LIBS})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit
    ${CMAKE_CURRENT_SOURCE_DIR})
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME unit/${name} COMMAND ${name})
  set_tests_properties(unit/${name} PROPERTIES
    ENVIRONMENT "HL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

# hl_fuzz_target(NAME SOURCES... LIBS...): a libFuzzer executable in
# build/fuzz (with HL_FUZZ), which test.sh runs with the seeds in
# tests/fuzz/corpus/<NAME without "fuzz-">/.
function(hl_fuzz_target name)
  cmake_parse_arguments(HLF "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT HL_FUZZ)
    return()
  endif()
  add_executable(${name} ${HLF_SOURCES})
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${HLF_LIBS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endfunction()
