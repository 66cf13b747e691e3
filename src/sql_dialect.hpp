// Which SQL an engine speaks: DDL types, catalog queries, and how its lexer reads
// literals and comments (transaction_control).
#pragma once

#include <cstdint>

#include "cafdb/core/config.hpp"

namespace cafdb {

/// The SQL an engine speaks is named by the engine: one enum for both.
using sql_dialect = engine_kind;

inline sql_dialect dialect_of(const config& cfg) {
  return cfg.engine;
}

} // namespace cafdb
