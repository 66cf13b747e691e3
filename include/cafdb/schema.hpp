// Declared tables: the model behind create_all / drop_all / reflect.
//
// A schema is declared in JSON (a schema file) or with `table_builder`, and the same
// model comes back from `reflect`, read from the live catalog. The SQL for each engine
// is generated from it in src/schema.cpp; names are checked identifiers and always
// quoted. Defaults and checks are SQL expressions written by the application's
// developer (like SQLAlchemy's `server_default`), never user input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <nlohmann/json_fwd.hpp>

#include "cafdb/errc.hpp"

namespace cafdb {

/// Portable column types; each maps to one type per engine (docs/schema.md).
enum class column_type : uint8_t {
  integer,
  bigint,
  double_precision,
  text,
  varchar,
  boolean,
  blob,
  timestamp,
  json,
  uuid,
  /// Reflected only: a type cafdb does not declare (see `column_def::sql_type`).
  other,
};

/// "integer", "bigint", "double", "text", "varchar", "boolean", "blob", "timestamp",
/// "json", "uuid", "other".
std::string to_string(column_type x);

/// What a foreign key does when the referenced row is deleted.
enum class on_delete_action : uint8_t { no_action, cascade, set_null, restrict, set_default };

/// "no action", "cascade", "set null", "restrict", "set default".
std::string to_string(on_delete_action x);

struct column_def {
  std::string name;
  column_type type = column_type::text;
  /// varchar(n): n.
  int32_t length = 0;
  bool nullable = true;
  /// Set for every column of the primary key (the table's `primary_key` is the order).
  bool primary_key = false;
  /// A single-column UNIQUE constraint.
  bool unique = false;
  /// An integer key the database assigns (SQLite rowid alias, PostgreSQL identity).
  bool autoincrement = false;
  /// SQL expression, empty for none: "0", "'draft'", "CURRENT_TIMESTAMP".
  std::string default_sql;
  /// SQL boolean expression for a column CHECK, empty for none.
  std::string check;
  /// The engine's own type name: filled by reflect (and by the DDL generator's caller).
  std::string sql_type;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, column_def& x) {
  return f(caf::meta::type_name("cafdb::column_def"), x.name, x.type, x.length, x.nullable,
           x.primary_key, x.unique, x.autoincrement, x.default_sql, x.check, x.sql_type);
}

struct foreign_key_def {
  std::vector<std::string> columns;
  std::string ref_table;
  std::vector<std::string> ref_columns;
  on_delete_action on_delete = on_delete_action::no_action;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, foreign_key_def& x) {
  return f(caf::meta::type_name("cafdb::foreign_key_def"), x.columns, x.ref_table, x.ref_columns,
           x.on_delete);
}

struct index_def {
  /// Empty: "ix_<table>_<columns>".
  std::string name;
  std::vector<std::string> columns;
  bool unique = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_def& x) {
  return f(caf::meta::type_name("cafdb::index_def"), x.name, x.columns, x.unique);
}

struct table_def {
  std::string name;
  std::vector<column_def> columns;
  /// Key columns in key order (composite keys have several).
  std::vector<std::string> primary_key;
  /// Multi-column UNIQUE constraints (single columns use `column_def::unique`).
  std::vector<std::vector<std::string>> unique;
  /// Table CHECK constraints (SQL boolean expressions).
  std::vector<std::string> checks;
  std::vector<index_def> indexes;
  std::vector<foreign_key_def> foreign_keys;

  /// The column named `name`, or null.
  const column_def* column(const std::string& name) const;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, table_def& x) {
  return f(caf::meta::type_name("cafdb::table_def"), x.name, x.columns, x.primary_key, x.unique,
           x.checks, x.indexes, x.foreign_keys);
}

struct schema_def {
  std::vector<table_def> tables;

  /// The table named `name`, or null.
  const table_def* table(const std::string& name) const;
  bool empty() const { return tables.empty(); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, schema_def& x) {
  return f(caf::meta::type_name("cafdb::schema_def"), x.tables);
}

/// Builds a table in C++:
///
///   auto users = table_builder{"users"}
///                    .column("id", column_type::bigint).primary_key().autoincrement()
///                    .column("email", column_type::varchar, 255).not_null().unique()
///                    .build();
///
/// Column modifiers apply to the column added last. `with_mixin` adds `pkid`,
/// `date_created` and `date_updated` (see docs/schema.md).
class table_builder {
 public:
  explicit table_builder(std::string name);

  table_builder& column(std::string name, column_type type, int32_t length = 0);
  table_builder& not_null();
  table_builder& primary_key();
  table_builder& unique();
  table_builder& autoincrement();
  table_builder& default_sql(std::string expression);
  table_builder& check(std::string expression);
  table_builder& references(std::string table, std::string column,
                            on_delete_action on_delete = on_delete_action::no_action);

  table_builder& composite_primary_key(std::vector<std::string> columns);
  table_builder& unique_together(std::vector<std::string> columns);
  table_builder& table_check(std::string expression);
  table_builder& index(std::vector<std::string> columns, bool unique = false,
                       std::string name = "");
  table_builder& with_mixin();

  /// The table, validated; `invalid_argument` names what is wrong.
  outcome<table_def> build() const;

 private:
  column_def& last();
  table_def table_;
  std::string problem_;
};

/// The mixin's columns: `pkid` (UUID text primary key, generated by cafdb),
/// `date_created` and `date_updated` (UTC, ISO-8601).
inline constexpr const char* mixin_key = "pkid";
inline constexpr const char* mixin_created = "date_created";
inline constexpr const char* mixin_updated = "date_updated";

/// True if the table has the mixin's three columns.
bool has_mixin(const table_def& table);

/// Checks names, types, keys and references; orders nothing.
outcome<done> validate(const schema_def& schema);

/// Tables ordered so that every table comes after the tables it references.
/// `invalid_argument` on a reference cycle (self-references are allowed).
outcome<std::vector<const table_def*>> dependency_order(const schema_def& schema);

/// Parses `{"tables": [...]}` (docs/schema.md) and validates it.
outcome<schema_def> schema_from_json(const nlohmann::json& in);
outcome<schema_def> schema_from_json_file(const std::string& path);

void to_json(nlohmann::json& out, const schema_def& x);

} // namespace cafdb
