// How the values and schema types of the public headers travel in messages: their
// `inspect` overloads, which need CAF (cafdb/core/value.hpp and cafdb/core/schema.hpp stay
// CAF-free for the drivers and the rest of the CAF-free core).
#pragma once

#include <caf/meta/type_name.hpp>

#include "cafdb/core/schema.hpp"
#include "cafdb/core/value.hpp"

namespace cafdb {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, value& x) {
  return f(caf::meta::type_name("cafdb::value"), x.type_, x.integer_, x.real_, x.bytes_);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, statement& x) {
  return f(caf::meta::type_name("cafdb::statement"), x.sql, x.params);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bulk_statement& x) {
  return f(caf::meta::type_name("cafdb::bulk_statement"), x.sql, x.values, x.ends);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, result_set& x) {
  return f(caf::meta::type_name("cafdb::result_set"), x.columns, x.column_types, x.rows,
           x.affected_rows, x.last_insert_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, column_def& x) {
  return f(caf::meta::type_name("cafdb::column_def"), x.name, x.type, x.length, x.nullable,
           x.primary_key, x.unique, x.autoincrement, x.default_sql, x.check, x.sql_type);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, foreign_key_def& x) {
  return f(caf::meta::type_name("cafdb::foreign_key_def"), x.columns, x.ref_table, x.ref_columns,
           x.on_delete);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_def& x) {
  return f(caf::meta::type_name("cafdb::index_def"), x.name, x.columns, x.unique);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, table_def& x) {
  return f(caf::meta::type_name("cafdb::table_def"), x.name, x.columns, x.primary_key, x.unique,
           x.checks, x.indexes, x.foreign_keys);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, schema_def& x) {
  return f(caf::meta::type_name("cafdb::schema_def"), x.tables);
}

} // namespace cafdb
