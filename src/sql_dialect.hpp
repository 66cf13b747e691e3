// Which SQL an engine speaks: DDL types, catalog queries, and how its lexer reads
// literals and comments (transaction_control).
#pragma once

#include <cstdint>

#include "cafdb/config.hpp"

namespace cafdb {

enum class sql_dialect : uint8_t { sqlite, postgresql };

inline sql_dialect dialect_of(const config& cfg) {
  return cfg.engine == engine_kind::postgresql ? sql_dialect::postgresql : sql_dialect::sqlite;
}

} // namespace cafdb
