# AffiliateEmbedSchema.cmake - turns a store backend's migration steps
# (schema/NNNN_*.sql) into a C array at build time, one script for both
# backends:
#
#   cmake -DDIR=<schema dir> -DOUT=<file.c> -DPREFIX=<store_sqlite|store_pg>
#         -DHEADER=<private header> -DLINES=<JOIN|KEEP> -P AffiliateEmbedSchema.cmake
#
# which writes PREFIX_schema_steps[] and PREFIX_schema_version, the file
# including HEADER (where they are declared).
#
# The steps are applied in file-name order, step i taking the schema
# version (SQLite's user_version, PostgreSQL's affiliate_schema row) from
# i - 1 to i and meaning the same on both backends, so the names must
# number 0001, 0002, ... without a gap or a repeat (checked here: a
# misnamed file fails the build rather than migrating out of order), and
# both folders must hold as many (checked by test_store_pg).
#
# "--" comments (to the end of the line: no string literal in the schema
# holds "--") and the spaces ending a line are taken out. Then:
#   LINES=JOIN (SQLite): the line breaks go too. SQLite keeps the text of
#     every CREATE statement in sqlite_master as it was given; this keeps
#     that text what it was when the steps were C strings, so a database
#     made today has the same schema, byte for byte, as one made by an
#     earlier build.
#   LINES=KEEP (PostgreSQL): the line breaks stay. PostgreSQL does not keep
#     the text, but a joined line must not glue two words (function bodies).
if(NOT DIR OR NOT OUT OR NOT PREFIX OR NOT HEADER)
  message(FATAL_ERROR
    "AffiliateEmbedSchema.cmake: -DDIR= -DOUT= -DPREFIX= -DHEADER= required")
endif()
if(NOT LINES STREQUAL "JOIN" AND NOT LINES STREQUAL "KEEP")
  message(FATAL_ERROR "AffiliateEmbedSchema.cmake: -DLINES=JOIN or KEEP")
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
  # between them (JOIN), or with the "\n" written at the end of each.
  if(LINES STREQUAL "JOIN")
    string(REPLACE "\n" "\"\n\t    \"" sql "${sql}")
  else()
    string(REPLACE "\n" "\\n\"\n\t    \"" sql "${sql}")
  endif()
  string(APPEND body "\t/* ${name} */\n\t\"${sql}\",\n")
endforeach()
if(n EQUAL 0)
  message(FATAL_ERROR "AffiliateEmbedSchema.cmake: no schema steps in ${DIR}")
endif()

set(c "/* Generated from ${DIR}/NNNN_name.sql by\n")
string(APPEND c " * AffiliateEmbedSchema.cmake at build time: do not edit, do not commit. */\n")
string(APPEND c "#include \"${HEADER}\"\n\n")
string(APPEND c "const char *const ${PREFIX}_schema_steps[] = {\n${body}};\n\n")
string(APPEND c "const int ${PREFIX}_schema_version = ${n};\n")

# Rewritten only when it changes, so that a reconfigure rebuilds nothing.
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL c)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${c}")
