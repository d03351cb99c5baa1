# affiliate_test(NAME SOURCES file.c ... [LIBS lib ...] [TIMEOUT seconds])
# One cmocka test: an executable, an add_test and a timeout (as NNG's
# nng_test()). Tests link the static libraries of the code under test, so
# internals are reachable.
# Under AddressSanitizer, known leaks inside NNG are suppressed (see
# tests/lsan.supp); everything else still fails the test.
set(AFFILIATE_TEST_ENV "AFFILIATE_BIN_DIR=${CMAKE_BINARY_DIR}/bin;AFFILIATE_SOURCE_DIR=${CMAKE_SOURCE_DIR};LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp")

function(affiliate_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} affiliate_testutil PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "${AFFILIATE_TEST_ENV}")
endfunction()

# affiliate_script_test(NAME script [TIMEOUT seconds]): a shell test that
# drives the real binaries.
function(affiliate_script_test name script)
  cmake_parse_arguments(T "" "TIMEOUT" "" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_test(NAME ${name} COMMAND bash ${script})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "${AFFILIATE_TEST_ENV}")
endfunction()
