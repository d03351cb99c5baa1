# affiliate_proto_library(TARGET PROTO_ROOT dir PROTOS a.proto ...)
# Runs protoc-c on each .proto (paths relative to PROTO_ROOT) into the build
# folder and makes a static library of the generated code. Generated code is
# never written into the source tree.
find_program(PROTOC_C protoc-c REQUIRED)

function(affiliate_proto_library target)
  cmake_parse_arguments(P "" "PROTO_ROOT" "PROTOS" ${ARGN})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/gen)
  set(srcs)
  foreach(proto ${P_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    set(c ${out}/${base}.pb-c.c)
    set(h ${out}/${base}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
      COMMAND ${PROTOC_C} --proto_path=${P_PROTO_ROOT} --c_out=${out} ${proto}
      DEPENDS ${P_PROTO_ROOT}/${proto}
      WORKING_DIRECTORY ${P_PROTO_ROOT}
      COMMENT "protoc-c ${proto}"
      VERBATIM)
    list(APPEND srcs ${c} ${h})
  endforeach()
  add_library(${target} STATIC ${srcs})
  target_include_directories(${target} PUBLIC ${out})
  target_link_libraries(${target} PUBLIC PkgConfig::PROTOBUFC)
  # Generated code is not ours to warn about.
  target_compile_options(${target} PRIVATE -w)
endfunction()
