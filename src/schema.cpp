// The schema model: builder, validation, dependency order and the JSON format.
#include "cafdb/core/schema.hpp"

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "backend/driver.hpp"

namespace cafdb {

namespace {

db_error invalid(std::string message) {
  return db_error{errc::invalid_argument, std::move(message), "", ""};
}

const std::pair<column_type, const char*> type_names[] = {
    {column_type::integer, "integer"},
    {column_type::bigint, "bigint"},
    {column_type::double_precision, "double"},
    {column_type::text, "text"},
    {column_type::varchar, "varchar"},
    {column_type::boolean, "boolean"},
    {column_type::blob, "blob"},
    {column_type::timestamp, "timestamp"},
    {column_type::json, "json"},
    {column_type::uuid, "uuid"},
    {column_type::other, "other"},
};

const std::pair<on_delete_action, const char*> action_names[] = {
    {on_delete_action::no_action, "no action"},     {on_delete_action::cascade, "cascade"},
    {on_delete_action::set_null, "set null"},       {on_delete_action::restrict, "restrict"},
    {on_delete_action::set_default, "set default"},
};

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (auto& name : names)
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

} // namespace

std::string to_string(column_type x) {
  for (auto& [type, name] : type_names)
    if (type == x)
      return name;
  return "other";
}

std::string to_string(on_delete_action x) {
  for (auto& [action, name] : action_names)
    if (action == x)
      return name;
  return "no action";
}

const column_def* table_def::column(const std::string& name) const {
  for (auto& col : columns)
    if (col.name == name)
      return &col;
  return nullptr;
}

const table_def* schema_def::table(const std::string& name) const {
  for (auto& t : tables)
    if (t.name == name)
      return &t;
  return nullptr;
}

bool has_mixin(const table_def& table) {
  return table.column(mixin_key) && table.column(mixin_created) && table.column(mixin_updated);
}

// -- builder -------------------------------------------------------------------

table_builder::table_builder(std::string name) {
  table_.name = std::move(name);
}

column_def& table_builder::last() {
  if (table_.columns.empty()) {
    // Keeps the builder usable; build() reports the mistake.
    problem_ = "a column modifier was used before any column was added";
    table_.columns.emplace_back();
  }
  return table_.columns.back();
}

table_builder& table_builder::column(std::string name, column_type type, int32_t length) {
  column_def col;
  col.name = std::move(name);
  col.type = type;
  col.length = length;
  table_.columns.push_back(std::move(col));
  return *this;
}

table_builder& table_builder::not_null() {
  last().nullable = false;
  return *this;
}

table_builder& table_builder::primary_key() {
  auto& col = last();
  col.primary_key = true;
  col.nullable = false;
  table_.primary_key.push_back(col.name);
  return *this;
}

table_builder& table_builder::unique() {
  last().unique = true;
  return *this;
}

table_builder& table_builder::autoincrement() {
  last().autoincrement = true;
  return *this;
}

table_builder& table_builder::default_sql(std::string expression) {
  last().default_sql = std::move(expression);
  return *this;
}

table_builder& table_builder::check(std::string expression) {
  last().check = std::move(expression);
  return *this;
}

table_builder& table_builder::references(std::string table, std::string column,
                                         on_delete_action on_delete) {
  table_.foreign_keys.push_back(
      foreign_key_def{{last().name}, std::move(table), {std::move(column)}, on_delete});
  return *this;
}

table_builder& table_builder::composite_primary_key(std::vector<std::string> columns) {
  table_.primary_key = std::move(columns);
  for (auto& col : table_.columns)
    if (std::find(table_.primary_key.begin(), table_.primary_key.end(), col.name) !=
        table_.primary_key.end()) {
      col.primary_key = true;
      col.nullable = false;
    }
  return *this;
}

table_builder& table_builder::unique_together(std::vector<std::string> columns) {
  table_.unique.push_back(std::move(columns));
  return *this;
}

table_builder& table_builder::table_check(std::string expression) {
  table_.checks.push_back(std::move(expression));
  return *this;
}

table_builder& table_builder::index(std::vector<std::string> columns, bool unique,
                                    std::string name) {
  table_.indexes.push_back(index_def{std::move(name), std::move(columns), unique});
  return *this;
}

namespace {

std::vector<column_def> mixin_columns() {
  column_def key;
  key.name = mixin_key;
  key.type = column_type::uuid;
  key.nullable = false;
  key.primary_key = true;
  column_def created;
  created.name = mixin_created;
  created.type = column_type::timestamp;
  created.nullable = false;
  created.default_sql = "CURRENT_TIMESTAMP";
  auto updated = created;
  updated.name = mixin_updated;
  return {key, created, updated};
}

} // namespace

table_builder& table_builder::with_mixin() {
  for (auto& col : mixin_columns())
    table_.columns.push_back(col);
  table_.primary_key = {mixin_key};
  return *this;
}

namespace {
outcome<done> validate_table(const schema_def* schema, const table_def& table);
} // namespace

outcome<table_def> table_builder::build() const {
  if (!problem_.empty())
    return invalid("table '" + table_.name + "': " + problem_);
  // References to other tables are checked when the whole schema is validated.
  if (auto ok = validate_table(nullptr, table_); !ok)
    return ok.error();
  return table_;
}

// -- validation ----------------------------------------------------------------

namespace {

outcome<done> check_name(const std::string& what, const std::string& name) {
  if (!is_identifier(name))
    return invalid(what + " '" + name.substr(0, 64) +
                   "' is not a valid name: use letters, digits and _ (at most 63, not starting "
                   "with a digit)");
  return done{};
}

outcome<done> check_columns(const table_def& table, const std::string& what,
                            const std::vector<std::string>& names) {
  if (names.empty())
    return invalid("table '" + table.name + "': " + what + " names no column");
  for (auto& name : names)
    if (!table.column(name))
      return invalid("table '" + table.name + "': " + what + " names column '" + name +
                     "', which the table does not have");
  return done{};
}

// With `schema`, foreign keys must reference its tables; without, they are not checked.
outcome<done> validate_table(const schema_def* schema, const table_def& table) {
  if (auto ok = check_name("table", table.name); !ok)
    return ok;
  if (table.columns.empty())
    return invalid("table '" + table.name + "' has no columns");
  std::set<std::string> seen;
  for (auto& col : table.columns) {
    if (auto ok = check_name("table '" + table.name + "': column", col.name); !ok)
      return ok;
    if (!seen.insert(col.name).second)
      return invalid("table '" + table.name + "': column '" + col.name + "' is declared twice");
    if (col.type == column_type::other)
      return invalid("table '" + table.name + "', column '" + col.name +
                     "': declare one of the portable types (integer, bigint, double, text, "
                     "varchar, boolean, blob, timestamp, json, uuid)");
    if (col.type == column_type::varchar && col.length <= 0)
      return invalid("table '" + table.name + "', column '" + col.name +
                     "': varchar needs a length, e.g. varchar(255)");
    if (col.autoincrement &&
        (table.primary_key != std::vector<std::string>{col.name} ||
         (col.type != column_type::integer && col.type != column_type::bigint)))
      return invalid("table '" + table.name + "', column '" + col.name +
                     "': autoincrement needs an integer or bigint column that is the whole "
                     "primary key");
  }
  if (!table.primary_key.empty())
    if (auto ok = check_columns(table, "the primary key", table.primary_key); !ok)
      return ok;
  for (auto& group : table.unique)
    if (auto ok = check_columns(table, "a unique constraint", group); !ok)
      return ok;
  for (auto& ix : table.indexes) {
    if (!ix.name.empty())
      if (auto ok = check_name("table '" + table.name + "': index", ix.name); !ok)
        return ok;
    if (auto ok = check_columns(table, "an index", ix.columns); !ok)
      return ok;
  }
  for (auto& fk : table.foreign_keys) {
    if (auto ok = check_columns(table, "a foreign key", fk.columns); !ok)
      return ok;
    if (auto ok = check_name("table '" + table.name + "': a foreign key's target", fk.ref_table);
        !ok)
      return ok;
    if (fk.ref_columns.size() != fk.columns.size())
      return invalid("table '" + table.name + "': the foreign key (" + join(fk.columns) +
                     ") must name as many referenced columns as it has columns");
    if (!schema)
      continue;
    auto target = schema->table(fk.ref_table);
    if (!target)
      return invalid("table '" + table.name + "': a foreign key references table '" + fk.ref_table +
                     "', which the schema does not declare");
    for (auto& ref : fk.ref_columns)
      if (!target->column(ref))
        return invalid("table '" + table.name + "': a foreign key references " + fk.ref_table +
                       "." + ref + ", which does not exist");
  }
  return done{};
}

} // namespace

outcome<done> validate(const schema_def& schema) {
  std::set<std::string> names;
  for (auto& table : schema.tables) {
    if (!names.insert(table.name).second)
      return invalid("table '" + table.name + "' is declared twice");
    if (auto ok = validate_table(&schema, table); !ok)
      return ok;
  }
  return done{};
}

outcome<std::vector<const table_def*>> dependency_order(const schema_def& schema) {
  std::vector<const table_def*> ordered;
  std::map<std::string, int> state; // 0 new, 1 visiting, 2 done
  std::vector<std::string> path;
  std::function<outcome<done>(const table_def&)> visit;
  visit = [&](const table_def& table) -> outcome<done> {
    auto& mark = state[table.name];
    if (mark == 2)
      return done{};
    if (mark == 1)
      return invalid("the foreign keys form a cycle: " + join(path) + ", " + table.name +
                     "; break it with a nullable key added by a migration");
    mark = 1;
    path.push_back(table.name);
    for (auto& fk : table.foreign_keys)
      if (fk.ref_table != table.name)
        if (auto target = schema.table(fk.ref_table))
          if (auto ok = visit(*target); !ok)
            return ok;
    path.pop_back();
    state[table.name] = 2;
    ordered.push_back(&table);
    return done{};
  };
  for (auto& table : schema.tables)
    if (auto ok = visit(table); !ok)
      return ok.error();
  return ordered;
}

// -- JSON ------------------------------------------------------------------------

namespace {

using nlohmann::json;

outcome<column_type> parse_type(const std::string& where, std::string text, int32_t& length) {
  text = to_lower(std::move(text));
  // "varchar(255)" shorthand.
  if (auto open = text.find('('); open != std::string::npos && text.back() == ')') {
    auto digits = text.substr(open + 1, text.size() - open - 2);
    if (digits.empty() || digits.size() > 6 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      return invalid(where + ": bad length in type '" + text + "'");
    length = std::stoi(digits);
    text = text.substr(0, open);
  }
  for (auto& [type, name] : type_names)
    if (text == name && type != column_type::other)
      return type;
  if (text == "double precision" || text == "float" || text == "real")
    return column_type::double_precision;
  if (text == "int")
    return column_type::integer;
  if (text == "bool")
    return column_type::boolean;
  if (text == "bytea")
    return column_type::blob;
  return invalid(where + ": unknown type '" + text +
                 "'; use integer, bigint, double, text, varchar(n), boolean, blob, timestamp, "
                 "json or uuid");
}

// An SQL literal for a JSON default: strings are quoted, numbers and booleans written
// as they are; {"sql": "CURRENT_TIMESTAMP"} is an expression taken as written.
outcome<std::string> parse_default(const std::string& where, const json& in) {
  if (in.is_object() && in.size() == 1 && in.contains("sql") && in["sql"].is_string())
    return in["sql"].get<std::string>();
  if (in.is_string()) {
    std::string out = "'";
    for (char c : in.get<std::string>())
      out += c == '\'' ? std::string{"''"} : std::string(1, c);
    return out + "'";
  }
  if (in.is_boolean())
    return std::string{in.get<bool>() ? "TRUE" : "FALSE"};
  if (in.is_number())
    return in.dump();
  if (in.is_null())
    return std::string{"NULL"};
  return invalid(where + ": a default is a string, number, boolean, null or {\"sql\": \"...\"}");
}

template <class T>
outcome<T> get(const json& in, const std::string& key, const std::string& where, T fallback) {
  if (!in.contains(key))
    return fallback;
  try {
    return in.at(key).get<T>();
  } catch (const json::exception&) {
    return invalid(where + ": '" + key + "' has the wrong type");
  }
}

outcome<std::vector<std::string>> get_names(const json& in, const std::string& key,
                                            const std::string& where) {
  return get<std::vector<std::string>>(in, key, where, {});
}

outcome<done> check_keys(const json& in, const std::string& where,
                         std::initializer_list<const char*> known) {
  if (!in.is_object())
    return invalid(where + " must be a JSON object");
  for (auto& item : in.items())
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return item.key() == k; }))
      return invalid(where + ": unknown key '" + item.key() + "'");
  return done{};
}

outcome<on_delete_action> parse_action(const std::string& where, const std::string& text) {
  for (auto& [action, name] : action_names)
    if (text == name)
      return action;
  return invalid(where +
                 ": on_delete must be 'no action', 'cascade', 'set null', 'restrict' or "
                 "'set default', not '" +
                 text + "'");
}

#define CAFDB_TRY(var, expr)                                                                       \
  auto var = (expr);                                                                               \
  if (!var)                                                                                        \
    return var.error();

outcome<column_def> parse_column(const std::string& table, const json& in) {
  auto name = in.is_object() && in.contains("name") && in["name"].is_string()
                  ? in["name"].get<std::string>()
                  : std::string{"?"};
  auto where = "table '" + table + "', column '" + name + "'";
  if (auto ok = check_keys(in, where,
                           {"name", "type", "length", "nullable", "primary_key", "unique",
                            "autoincrement", "default", "check", "references", "on_delete"});
      !ok)
    return ok.error();
  column_def col;
  col.name = name;
  CAFDB_TRY(type, get<std::string>(in, "type", where, ""));
  if (type->empty())
    return invalid(where + ": 'type' is required");
  CAFDB_TRY(parsed, parse_type(where, *type, col.length));
  col.type = *parsed;
  CAFDB_TRY(length, get<int32_t>(in, "length", where, col.length));
  col.length = *length;
  CAFDB_TRY(pk, get<bool>(in, "primary_key", where, false));
  col.primary_key = *pk;
  CAFDB_TRY(nullable, get<bool>(in, "nullable", where, !col.primary_key));
  col.nullable = *nullable;
  CAFDB_TRY(unique, get<bool>(in, "unique", where, false));
  col.unique = *unique;
  CAFDB_TRY(autoinc, get<bool>(in, "autoincrement", where, false));
  col.autoincrement = *autoinc;
  if (in.contains("default")) {
    CAFDB_TRY(def, parse_default(where, in["default"]));
    col.default_sql = *def;
  }
  CAFDB_TRY(check, get<std::string>(in, "check", where, ""));
  col.check = *check;
  return col;
}

outcome<table_def> parse_table(const json& in) {
  auto name = in.is_object() && in.contains("name") && in["name"].is_string()
                  ? in["name"].get<std::string>()
                  : std::string{"?"};
  auto where = "table '" + name + "'";
  if (auto ok = check_keys(in, where,
                           {"name", "columns", "primary_key", "unique", "checks", "indexes",
                            "foreign_keys", "mixin"});
      !ok)
    return ok.error();
  table_def table;
  table.name = name;
  CAFDB_TRY(mixin, get<bool>(in, "mixin", where, false));
  if (*mixin) {
    table.columns = mixin_columns();
    table.primary_key = {mixin_key};
  }
  if (!in.contains("columns") || !in["columns"].is_array())
    return invalid(where + ": 'columns' must be an array of column objects");
  for (auto& c : in["columns"]) {
    CAFDB_TRY(col, parse_column(name, c));
    if (col->primary_key && *mixin)
      return invalid(where + ": a table with the mixin already has its key 'pkid'");
    if (col->primary_key)
      table.primary_key.push_back(col->name);
    if (c.contains("references")) {
      CAFDB_TRY(ref, get<std::string>(c, "references", where, ""));
      // "table" or "table.column" (the column defaults to the target's key).
      auto dot = ref->find('.');
      foreign_key_def fk;
      fk.columns = {col->name};
      fk.ref_table = ref->substr(0, dot);
      fk.ref_columns = {dot == std::string::npos ? std::string{} : ref->substr(dot + 1)};
      CAFDB_TRY(action, get<std::string>(c, "on_delete", where, "no action"));
      CAFDB_TRY(parsed, parse_action(where, *action));
      fk.on_delete = *parsed;
      table.foreign_keys.push_back(std::move(fk));
    }
    table.columns.push_back(std::move(*col));
  }
  if (in.contains("primary_key")) {
    if (!table.primary_key.empty())
      return invalid(where + ": declare the key either on columns or as 'primary_key', not both");
    CAFDB_TRY(pk, get_names(in, "primary_key", where));
    table.primary_key = *pk;
    for (auto& col : table.columns)
      if (std::find(pk->begin(), pk->end(), col.name) != pk->end()) {
        col.primary_key = true;
        col.nullable = false;
      }
  }
  CAFDB_TRY(unique, (get<std::vector<std::vector<std::string>>>(in, "unique", where, {})));
  table.unique = *unique;
  CAFDB_TRY(checks, get_names(in, "checks", where));
  table.checks = *checks;
  if (in.contains("indexes")) {
    if (!in["indexes"].is_array())
      return invalid(where + ": 'indexes' must be an array");
    for (auto& ix : in["indexes"]) {
      if (auto ok = check_keys(ix, where + ", index", {"name", "columns", "unique"}); !ok)
        return ok.error();
      index_def def;
      CAFDB_TRY(ix_name, get<std::string>(ix, "name", where, ""));
      def.name = *ix_name;
      CAFDB_TRY(cols, get_names(ix, "columns", where + ", index"));
      def.columns = *cols;
      CAFDB_TRY(uniq, get<bool>(ix, "unique", where, false));
      def.unique = *uniq;
      table.indexes.push_back(std::move(def));
    }
  }
  if (in.contains("foreign_keys")) {
    if (!in["foreign_keys"].is_array())
      return invalid(where + ": 'foreign_keys' must be an array");
    for (auto& f : in["foreign_keys"]) {
      auto fwhere = where + ", foreign key";
      if (auto ok = check_keys(f, fwhere, {"columns", "references", "ref_columns", "on_delete"});
          !ok)
        return ok.error();
      foreign_key_def fk;
      CAFDB_TRY(cols, get_names(f, "columns", fwhere));
      fk.columns = *cols;
      CAFDB_TRY(ref, get<std::string>(f, "references", fwhere, ""));
      fk.ref_table = *ref;
      CAFDB_TRY(ref_cols, get_names(f, "ref_columns", fwhere));
      fk.ref_columns = *ref_cols;
      CAFDB_TRY(action, get<std::string>(f, "on_delete", fwhere, "no action"));
      CAFDB_TRY(parsed, parse_action(fwhere, *action));
      fk.on_delete = *parsed;
      table.foreign_keys.push_back(std::move(fk));
    }
  }
  return table;
}

#undef CAFDB_TRY

} // namespace

outcome<schema_def> schema_from_json(const json& in) {
  if (auto ok = check_keys(in, "the schema", {"tables"}); !ok)
    return ok.error();
  if (!in.contains("tables") || !in["tables"].is_array())
    return invalid("the schema needs 'tables': an array of table objects");
  schema_def schema;
  for (auto& t : in["tables"]) {
    auto table = parse_table(t);
    if (!table)
      return table.error();
    schema.tables.push_back(std::move(*table));
  }
  // A reference without a column names the target's (single-column) primary key.
  for (auto& table : schema.tables)
    for (auto& fk : table.foreign_keys)
      for (auto& ref : fk.ref_columns)
        if (ref.empty()) {
          auto target = schema.table(fk.ref_table);
          if (target && target->primary_key.size() == 1)
            ref = target->primary_key.front();
          else
            return invalid("table '" + table.name + "': the reference to '" + fk.ref_table +
                           "' must name a column ('" + fk.ref_table +
                           ".column'): that table has no single-column primary key");
        }
  if (auto ok = validate(schema); !ok)
    return ok.error();
  if (auto order = dependency_order(schema); !order)
    return order.error();
  return schema;
}

outcome<schema_def> schema_from_json_file(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return db_error{errc::invalid_config,
                    "cannot read the schema file '" + path + "': check the path and permissions",
                    "", ""};
  json parsed = json::parse(in, nullptr, false);
  if (parsed.is_discarded())
    return db_error{errc::invalid_config, "the schema file '" + path + "' is not valid JSON", "",
                    ""};
  auto schema = schema_from_json(parsed);
  if (!schema) {
    auto err = schema.error();
    err.code = errc::invalid_config;
    err.message = "schema file '" + path + "': " + err.message;
    return err;
  }
  return schema;
}

void to_json(json& out, const schema_def& x) {
  out = json::object();
  auto& tables = out["tables"] = json::array();
  for (auto& t : x.tables) {
    json table{{"name", t.name},
               {"primary_key", t.primary_key},
               {"unique", t.unique},
               {"checks", t.checks}};
    auto& columns = table["columns"] = json::array();
    for (auto& c : t.columns) {
      json col{{"name", c.name},
               {"type", to_string(c.type)},
               {"sql_type", c.sql_type},
               {"nullable", c.nullable},
               {"primary_key", c.primary_key},
               {"unique", c.unique},
               {"autoincrement", c.autoincrement},
               {"default", c.default_sql.empty() ? json() : json(c.default_sql)}};
      if (c.length > 0)
        col["length"] = c.length;
      if (!c.check.empty())
        col["check"] = c.check;
      columns.push_back(std::move(col));
    }
    auto& indexes = table["indexes"] = json::array();
    for (auto& ix : t.indexes)
      indexes.push_back({{"name", ix.name}, {"columns", ix.columns}, {"unique", ix.unique}});
    auto& fks = table["foreign_keys"] = json::array();
    for (auto& fk : t.foreign_keys)
      fks.push_back({{"columns", fk.columns},
                     {"references", fk.ref_table},
                     {"ref_columns", fk.ref_columns},
                     {"on_delete", to_string(fk.on_delete)}});
    tables.push_back(std::move(table));
  }
}

} // namespace cafdb
