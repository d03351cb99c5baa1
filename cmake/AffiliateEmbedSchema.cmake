# AffiliateEmbedSchema.cmake - turns the schema's migration steps (schema/NNNN_*.sql)
# into a C array at build time: cmake -DDIR=<schema dir> -DOUT=<file.c> -P.
#
# The steps are applied in file-name order, step i taking user_version
# from i - 1 to i, so the names must number 0001, 0002, ... without a gap
# or a repeat (checked here: a misnamed file fails the build rather than
# migrating out of order).
#
# Each step is passed to sqlite3_exec as written, except that "--"
# comments (to the end of the line: no string literal in the schema
# holds "--"), the spaces ending a line and the line breaks are taken
# out. SQLite keeps the text of every CREATE statement in sqlite_master
# as it was given; this keeps that text what it was when the steps were
# C strings, so a database made today has the same schema, byte for byte,
# as one made by an earlier build.
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
  # One C literal per line of SQL: adjacent literals join with nothing
  # between them, which is the line break taken out.
  string(REPLACE "\n" "\"\n\t    \"" sql "${sql}")
  string(APPEND body "\t/* ${name} */\n\t\"${sql}\",\n")
endforeach()
if(n EQUAL 0)
  message(FATAL_ERROR "embed_schema.cmake: no schema steps in ${DIR}")
endif()

set(c "/* Generated from services/store/sqlite/schema/NNNN_name.sql by\n")
string(APPEND c " * embed_schema.cmake at build time: do not edit, do not commit. */\n")
string(APPEND c "#include \"sqlite/store_sqlite_private.h\"\n\n")
string(APPEND c "const char *const store_sqlite_schema_steps[] = {\n${body}};\n\n")
string(APPEND c "const int store_sqlite_schema_version = ${n};\n")

# Rewritten only when it changes, so that a reconfigure rebuilds nothing.
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL c)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${c}")
