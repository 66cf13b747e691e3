# Fails when a source of the CAF-free core includes, directly or through any header,
# a CAF header or a file of messages/ or actors/. CAF lives in /usr/include, which is on
# every include path, so the compiler alone cannot refuse <caf/...>: this lists every
# header each source pulls in (-MM) and looks.
#
#   cmake -DCOMPILER=... -DINCLUDES="a;b" -DSOURCES="x.cpp;y.cpp" -P caf_free_core.cmake
set(failures "")
foreach(source IN LISTS SOURCES)
  set(flags -std=c++17 -M)
  foreach(dir IN LISTS INCLUDES)
    list(APPEND flags "-I${dir}")
  endforeach()
  execute_process(COMMAND "${COMPILER}" ${flags} "${source}"
                  OUTPUT_VARIABLE deps ERROR_VARIABLE errors RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(APPEND failures "${source}: does not preprocess: ${errors}\n")
    continue()
  endif()
  string(REGEX MATCHALL "[^ \\\\\n]*/(caf|messages|actors)/[^ \\\\\n]*" reached "${deps}")
  if(reached)
    list(GET reached 0 first)
    string(APPEND failures "${source}: reaches ${first}\n")
  endif()
endforeach()
if(failures)
  message(FATAL_ERROR "The CAF-free core includes CAF or actor code:\n${failures}")
endif()
list(LENGTH SOURCES n)
message(STATUS "${n} sources of the CAF-free core include no CAF header")
