# Checks the layering that the include paths alone cannot enforce (CAF lives in
# /usr/include, on every include path). From the bottom up:
#
#   include/cafdb/core/  CAF-free vocabulary: errors, values, schema, configuration
#   src/ (not facade/)   the CAF-free core (cafdb_core): drivers, SQL, the models
#   messages/            what actors send: CAF and cafdb/core/ only
#   actors/              the actors
#   include/cafdb/*.hpp  the facade, with its code in src/facade/
#
# Fails when a source of the CAF-free core reaches, directly or through any header, CAF,
# messages/, actors/ or the facade; when a header of messages/ reaches the facade,
# actors/ or src/; or when a source under src/ outside src/facade/ is not built into the
# core. It lists every header each file pulls in (-M) and looks.
#
#   cmake -DROOT=... -DCOMPILER=... -DINCLUDES="a;b" -DSOURCES="x.cpp;y.cpp" -P layering.cmake

# The headers `file` pulls in, as a list of absolute paths.
function(headers_of file out)
  set(flags -std=c++17 -M -x c++)
  foreach(dir IN LISTS INCLUDES)
    list(APPEND flags "-I${dir}")
  endforeach()
  execute_process(COMMAND "${COMPILER}" ${flags} "${file}" OUTPUT_VARIABLE deps
                  ERROR_VARIABLE errors RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${file}: does not preprocess: ${errors}")
  endif()
  string(REGEX MATCHALL "[^ \\\\\n]+\\.h(pp)?" found "${deps}")
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

# The first of `headers` that lies in one of the forbidden places, or "".
function(first_forbidden headers out)
  set(${out} "" PARENT_SCOPE)
  foreach(header IN LISTS headers)
    get_filename_component(header "${header}" ABSOLUTE)
    foreach(place IN LISTS ARGN)
      if(place STREQUAL "facade")
        get_filename_component(dir "${header}" DIRECTORY)
        set(hit "")
        if(dir STREQUAL "${ROOT}/include/cafdb")
          set(hit 1)
        endif()
      elseif(place STREQUAL "caf")
        string(REGEX MATCH "/caf/" hit "${header}")
      else()
        string(FIND "${header}" "${ROOT}/${place}/" at)
        set(hit "")
        if(at EQUAL 0)
          set(hit 1)
        endif()
      endif()
      if(hit)
        set(${out} "${header} (${place})" PARENT_SCOPE)
        return()
      endif()
    endforeach()
  endforeach()
endfunction()

set(failures "")

foreach(source IN LISTS SOURCES)
  headers_of("${source}" headers)
  first_forbidden("${headers}" bad caf messages actors facade src/facade)
  if(bad)
    string(APPEND failures "core source ${source} reaches ${bad}\n")
  endif()
endforeach()

file(GLOB message_headers "${ROOT}/messages/*.hpp")
file(GLOB core_headers "${ROOT}/include/cafdb/core/*.hpp")
foreach(header IN LISTS message_headers)
  headers_of("${header}" headers)
  first_forbidden("${headers}" bad actors facade src)
  if(bad)
    string(APPEND failures "message header ${header} reaches ${bad}\n")
  endif()
endforeach()
foreach(header IN LISTS core_headers)
  headers_of("${header}" headers)
  first_forbidden("${headers}" bad caf messages actors facade src)
  if(bad)
    string(APPEND failures "core header ${header} reaches ${bad}\n")
  endif()
endforeach()

file(GLOB_RECURSE all_sources "${ROOT}/src/*.cpp")
foreach(source IN LISTS all_sources)
  string(FIND "${source}" "${ROOT}/src/facade/" at)
  list(FIND SOURCES "${source}" listed)
  if(NOT at EQUAL 0 AND listed EQUAL -1)
    string(APPEND failures "${source} is outside src/facade/ but not in the CAF-free core\n")
  endif()
endforeach()

if(failures)
  message(FATAL_ERROR "The layering is broken:\n${failures}")
endif()
list(LENGTH SOURCES n_sources)
list(LENGTH message_headers n_messages)
list(LENGTH core_headers n_core)
message(STATUS "layering holds: ${n_sources} core sources, ${n_core} core headers, "
               "${n_messages} message headers")
