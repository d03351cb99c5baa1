# AFFILIATE_SANITIZER picks one sanitizer build for everything: none,
# address, undefined, or address+undefined (as NNG's CheckSanitizer.cmake).
set(AFFILIATE_SANITIZER "none" CACHE STRING
    "Sanitizer: none, address, undefined, address+undefined")
set_property(CACHE AFFILIATE_SANITIZER PROPERTY STRINGS
    none address undefined address+undefined)

if(AFFILIATE_SANITIZER STREQUAL "none")
  return()
elseif(AFFILIATE_SANITIZER STREQUAL "address")
  set(_san "address")
elseif(AFFILIATE_SANITIZER STREQUAL "undefined")
  set(_san "undefined")
elseif(AFFILIATE_SANITIZER STREQUAL "address+undefined")
  set(_san "address,undefined")
else()
  message(FATAL_ERROR "AFFILIATE_SANITIZER: unknown value '${AFFILIATE_SANITIZER}'")
endif()
add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer
                    -fno-sanitize-recover=all)
add_link_options(-fsanitize=${_san})
message(STATUS "Sanitizer: ${_san}")
