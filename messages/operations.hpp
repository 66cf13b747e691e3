// Operations protocol (docs/operations.md): ready-made reads and CRUD whose answers are
// JSON text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "session.hpp"
#include "values.hpp"

namespace cafdb {

enum class op_kind : uint8_t {
  /// statements[0] → the number of its rows.
  count,
  /// statements[0], page, page_size → {items, total, page, page_size, pages}.
  paginate,
  /// statements[0] → its first row, or null.
  read_one,
  /// statements[0] → every row.
  read_query,
  /// statements, names → {name: rows, ...}, all read in one snapshot.
  read_multi,
  /// statements[0] → {rowcount, last_insert_id, rows}.
  execute_one,
  /// statements → one summary each, in one transaction.
  execute_many,
  /// table, data (an object) → the stored row.
  create_one,
  /// table, data (an array of objects) → the stored rows, in one transaction.
  create_many,
  /// table, key, data (the changes) → the stored row; `not_found` if there is none.
  update_one,
  /// table, key → {deleted: 1}; `not_found` if there is none.
  delete_one,
  /// table, key (an array of keys) → {deleted: n}, in one transaction.
  delete_many,
  /// table, data, conflict_columns (default: the primary key) → the stored row.
  upsert,
};

/// "count", "paginate", ... as in docs/operations.md.
std::string to_string(op_kind x);

/// One operation. Which fields matter depends on `kind` (see op_kind).
struct operation {
  op_kind kind = op_kind::read_query;
  /// The SQL of the query kinds: one, or several for read_multi and execute_many.
  std::vector<statement> statements;
  /// read_multi: the name of each statement's rows in the answer.
  std::vector<std::string> names;
  /// The table of the CRUD kinds; checked against the live schema, then quoted.
  std::string table;
  /// JSON text: the row (create_one, upsert), rows (create_many), changes (update_one).
  std::string data;
  /// JSON text: a primary key (a value, or an object for composite keys); an array of
  /// them for delete_many.
  std::string key;
  /// upsert: the unique columns that decide a conflict; empty means the primary key.
  std::vector<std::string> conflict_columns;
  /// paginate: the page (from 1) and its size (1 .. 10000).
  int64_t page = 1;
  int64_t page_size = 0;
  /// Session options; `read_only` sends reads to the reader engine, if there is one.
  session_options options;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, operation& x) {
  return f(caf::meta::type_name("cafdb::operation"), x.kind, x.statements, x.names, x.table, x.data,
           x.key, x.conflict_columns, x.page, x.page_size, x.options);
}

} // namespace cafdb
