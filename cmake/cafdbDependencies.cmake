# The libraries cafdb is built on, found the same way when cafdb is built and when an
# application finds an installed cafdb (cafdbConfig.cmake includes this file). Every one
# is a Debian package; see scripts/install-deps.sh.
include(CMakeFindDependencyMacro)

# CAF 0.17 ships no CMake config files: define its imported targets by hand, once.
if(NOT TARGET CAF::core)
  find_path(CAF_INCLUDE_DIR caf/all.hpp)
  find_library(CAF_CORE_LIBRARY NAMES caf_core)
  find_library(CAF_IO_LIBRARY NAMES caf_io)
  if(NOT CAF_INCLUDE_DIR OR NOT CAF_CORE_LIBRARY OR NOT CAF_IO_LIBRARY)
    message(FATAL_ERROR "cafdb needs CAF 0.17: apt-get install libcaf-dev")
  endif()
  find_dependency(Threads)
  add_library(CAF::core UNKNOWN IMPORTED)
  set_target_properties(CAF::core PROPERTIES IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES Threads::Threads)
  add_library(CAF::io UNKNOWN IMPORTED)
  set_target_properties(CAF::io PROPERTIES IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
    INTERFACE_LINK_LIBRARIES CAF::core)
endif()

find_dependency(Threads)
find_dependency(spdlog)
find_dependency(nlohmann_json 3)
find_dependency(SQLite3)
if(NOT TARGET PostgreSQL::PostgreSQL)
  find_package(PostgreSQL QUIET)
  if(NOT PostgreSQL_FOUND)
    find_dependency(PkgConfig)
    pkg_check_modules(CAFDB_LIBPQ REQUIRED IMPORTED_TARGET libpq)
    add_library(PostgreSQL::PostgreSQL INTERFACE IMPORTED)
    set_target_properties(PostgreSQL::PostgreSQL PROPERTIES
      INTERFACE_LINK_LIBRARIES PkgConfig::CAFDB_LIBPQ)
  endif()
endif()
