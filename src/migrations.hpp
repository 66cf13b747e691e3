// Versioned migration files: `<version>_<name>.sql` in one directory, applied in
// version order, each once. CAF-free; the schema actor runs them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cafdb/core/errc.hpp"

namespace cafdb {

struct migration {
  int64_t version = 0;
  std::string name;
  std::string sql;
};

/// Reads every `<digits>_<name>.sql` file of `dir`, sorted by version. Other files
/// are ignored; a duplicate version, an empty file or an unreadable directory is an
/// `invalid_config` error naming the file.
outcome<std::vector<migration>> load_migrations(const std::string& dir);

/// The table that records applied versions.
inline constexpr const char* migration_table = "cafdb_schema_version";

/// The PostgreSQL advisory lock key that serializes migration runs across processes.
inline constexpr int64_t migration_lock_key = 0x63616664'62000001; // "cafdb" + 1

} // namespace cafdb
