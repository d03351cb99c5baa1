# affiliate_test(NAME SOURCES file.c ... [LIBS lib ...] [TIMEOUT seconds] [PG])
# One cmocka test: an executable, an add_test and a timeout (as NNG's
# nng_test()). Tests link the static libraries of the code under test, so
# internals are reachable.
# Under AddressSanitizer, known leaks inside NNG are suppressed (see
# tests/lsan.supp); everything else still fails the test.
set(AFFILIATE_TEST_ENV "AFFILIATE_BIN_DIR=${CMAKE_BINARY_DIR}/bin;AFFILIATE_SOURCE_DIR=${CMAKE_SOURCE_DIR};LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp")

# The backend matrix (issue 14). A test given PG is registered twice: NAME
# on SQLite, and NAME_pg with AFFILIATE_TEST_BACKEND=postgresql and the
# label pg, where the test starts its own PostgreSQL (tests/testutil_db.h,
# tests/backend.sh); `ctest -L pg` runs only those, `ctest -LE pg` only
# SQLite. A PostgreSQL variant exits 77 (ctest: skipped, not failed) when
# the build has no PostgreSQL store: AFFILIATE_TEST_PG=AUTO (the default)
# runs them when services/store/postgres/ has sources, ON always, OFF
# never.
set(AFFILIATE_TEST_PG AUTO CACHE STRING
  "Run the PostgreSQL variants of the tests (AUTO, ON, OFF)")
if(AFFILIATE_TEST_PG STREQUAL "AUTO")
  file(GLOB _affiliate_pg_store_sources
    ${CMAKE_SOURCE_DIR}/services/store/postgres/*.c)
  if(_affiliate_pg_store_sources)
    set(AFFILIATE_TEST_PG_STORE 1)
  else()
    set(AFFILIATE_TEST_PG_STORE 0)
  endif()
elseif(AFFILIATE_TEST_PG)
  set(AFFILIATE_TEST_PG_STORE 1)
else()
  set(AFFILIATE_TEST_PG_STORE 0)
endif()
# A test's own registration names its backend too, so that a caller's
# exported AFFILIATE_TEST_BACKEND (which the tests' environment cleaning
# keeps, as every AFFILIATE_TEST_* switch) cannot move it.
set(AFFILIATE_TEST_ENV_SQLITE "${AFFILIATE_TEST_ENV};AFFILIATE_TEST_BACKEND=sqlite")
message(STATUS "affiliate: PostgreSQL test variants "
  "${AFFILIATE_TEST_PG} (run: ${AFFILIATE_TEST_PG_STORE})")

# affiliate_test_pg_variant(NAME TIMEOUT COMMAND...): NAME_pg, as above.
# Its timeout has a minute more: initdb and the server's start.
function(affiliate_test_pg_variant name timeout)
  math(EXPR pg_timeout "${timeout} + 60")
  add_test(NAME ${name}_pg COMMAND ${ARGN})
  set_tests_properties(${name}_pg PROPERTIES TIMEOUT ${pg_timeout}
    LABELS pg SKIP_RETURN_CODE 77
    ENVIRONMENT "${AFFILIATE_TEST_ENV};AFFILIATE_TEST_BACKEND=postgresql;AFFILIATE_TEST_PG_STORE=${AFFILIATE_TEST_PG_STORE}")
endfunction()

function(affiliate_test name)
  cmake_parse_arguments(T "PG" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} affiliate_testutil PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "${AFFILIATE_TEST_ENV_SQLITE}")
  if(T_PG)
    affiliate_test_pg_variant(${name} ${T_TIMEOUT} ${name})
  endif()
endfunction()

# affiliate_script_test(NAME script [TIMEOUT seconds] [PG]): a shell test
# that drives the real binaries.
function(affiliate_script_test name script)
  cmake_parse_arguments(T "PG" "TIMEOUT" "" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_test(NAME ${name} COMMAND bash ${script})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "${AFFILIATE_TEST_ENV_SQLITE}")
  if(T_PG)
    affiliate_test_pg_variant(${name} ${T_TIMEOUT} bash ${script})
  endif()
endfunction()
