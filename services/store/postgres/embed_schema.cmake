# embed_schema.cmake - the PostgreSQL schema's migration steps
# (schema/NNNN_*.sql) as a C array at build time:
# cmake -DDIR=<schema dir> -DOUT=<file.c> -P.
#
# The same numbering as the SQLite steps (services/store/sqlite/schema):
# step i takes the schema version from i - 1 to i and means the same on
# both backends, so the names must number 0001, 0002, ... without a gap
# or a repeat (checked here), and the count must match SQLite's (checked
# by test_store_pg). Each step goes to PQexec as written (line breaks
# kept: PostgreSQL does not keep the text, and function bodies need them
# no more than SQL does, but a joined line must not glue two words).
if(NOT DIR OR NOT OUT)
  message(FATAL_ERROR "embed_schema.cmake: -DDIR=... -DOUT=... required")
endif()

file(GLOB steps "${DIR}/*.sql")
list(SORT steps)
set(body "")
set(n 0)
foreach(f ${steps})
  math(EXPR n "${n} + 1")
  get_filename_component(name "${f}" NAME)
  if(NOT name MATCHES "^([0-9][0-9][0-9][0-9])_[a-z0-9_]+\\.sql$")
    message(FATAL_ERROR "schema step ${name}: not named NNNN_name.sql")
  endif()
  math(EXPR num "${CMAKE_MATCH_1}")
  if(NOT num EQUAL n)
    message(FATAL_ERROR "schema step ${name}: expected step ${n}")
  endif()
  file(READ "${f}" sql)
  string(REGEX REPLACE "--[^\n]*" "" sql "${sql}")
  string(REGEX REPLACE "[ \t\r]+\n" "\n" sql "${sql}")
  string(REGEX REPLACE "[ \t\r\n]+$" "" sql "${sql}")
  string(REGEX REPLACE "^\n+" "" sql "${sql}")
  string(REGEX REPLACE "\n+" "\n" sql "${sql}")
  string(REPLACE "\\" "\\\\" sql "${sql}")
  string(REPLACE "\"" "\\\"" sql "${sql}")
  string(REPLACE "\n" "\\n\"\n\t    \"" sql "${sql}")
  string(APPEND body "\t/* ${name} */\n\t\"${sql}\",\n")
endforeach()
if(n EQUAL 0)
  message(FATAL_ERROR "embed_schema.cmake: no schema steps in ${DIR}")
endif()

set(c "/* Generated from services/store/postgres/schema/NNNN_name.sql by\n")
string(APPEND c " * embed_schema.cmake at build time: do not edit, do not commit. */\n")
string(APPEND c "#include \"store_pg_private.h\"\n\n")
string(APPEND c "const char *const store_pg_schema_steps[] = {\n${body}};\n\n")
string(APPEND c "const int store_pg_schema_version = ${n};\n")

if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL c)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${c}")
