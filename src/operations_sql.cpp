#include "operations_sql.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <set>

#include "backend/driver.hpp"
#include "cafdb/core/value_json.hpp"

namespace cafdb {

namespace {

db_error invalid(std::string message) {
  return db_error{errc::invalid_argument, std::move(message), "", ""};
}

std::string in_quotes(const std::string& text) {
  return "'" + text + "'";
}

// The JSON type of `x` for messages (values themselves may be private data).
std::string json_kind(const nlohmann::json& x) {
  switch (x.type()) {
  case nlohmann::json::value_t::null:
    return "null";
  case nlohmann::json::value_t::boolean:
    return "a boolean";
  case nlohmann::json::value_t::number_integer:
  case nlohmann::json::value_t::number_unsigned:
    return "an integer";
  case nlohmann::json::value_t::number_float:
    return "a number with a fraction";
  case nlohmann::json::value_t::string:
    return "a string";
  case nlohmann::json::value_t::array:
    return "an array";
  default:
    return "an object";
  }
}

bool is_boolean_type(const std::string& engine_type) {
  auto t = to_lower(engine_type);
  return t == "boolean" || t == "bool";
}

bool is_json_type(const std::string& engine_type) {
  auto t = to_lower(engine_type);
  return t == "json" || t == "jsonb";
}

// Characters, not bytes: what PostgreSQL's varchar(n) counts.
size_t utf8_length(const std::string& text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char ch) { return (ch & 0xC0) != 0x80; }));
}

bool is_uuid_text(const std::string& text) {
  if (text.size() != 36)
    return false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i])))
      return false;
  }
  return true;
}

bool looks_like_timestamp(const std::string& text) {
  // YYYY-MM-DD, then optionally a time; the engine checks the rest.
  if (text.size() < 10)
    return false;
  for (size_t i = 0; i < 10; ++i)
    if (i == 4 || i == 7 ? text[i] != '-' : !std::isdigit(static_cast<unsigned char>(text[i])))
      return false;
  return true;
}

std::string column_ref(const table_def& table, const column_def& col) {
  return "column '" + col.name + "' of table '" + table.name + "'";
}

// Converts a JSON input for `col` into the bound value, checking its type the same way
// on both engines (SQLite alone would store anything anywhere).
outcome<value> column_value(const table_def& table, const column_def& col,
                            const nlohmann::json& in) {
  if (in.is_null())
    return value{};
  auto wrong = [&](const char* wanted) {
    return invalid(column_ref(table, col) + " takes " + wanted + "; got " + json_kind(in));
  };
  switch (col.type) {
  case column_type::integer:
  case column_type::bigint:
    if (in.is_number_unsigned() && in.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      return invalid(column_ref(table, col) + ": the integer is larger than a 64-bit integer");
    if (!in.is_number_integer())
      return wrong("an integer");
    return value{in.get<int64_t>()};
  case column_type::double_precision:
    if (!in.is_number())
      return wrong("a number");
    return value{in.get<double>()};
  case column_type::boolean:
    if (in.is_boolean())
      return value{in.get<bool>()};
    if (in.is_number_integer() && (in.get<int64_t>() == 0 || in.get<int64_t>() == 1))
      return value{in.get<int64_t>() == 1};
    return wrong("a boolean");
  case column_type::text:
  case column_type::varchar: {
    if (!in.is_string())
      return wrong("a string");
    auto text = in.get<std::string>();
    if (col.type == column_type::varchar && col.length > 0 &&
        utf8_length(text) > static_cast<size_t>(col.length))
      return invalid(column_ref(table, col) + " holds at most " + std::to_string(col.length) +
                     " characters; got " + std::to_string(utf8_length(text)));
    return value{std::move(text)};
  }
  case column_type::uuid: {
    if (!in.is_string() || !is_uuid_text(in.get<std::string>()))
      return invalid(column_ref(table, col) +
                     " takes a UUID string like \"123e4567-e89b-42d3-a456-426614174000\"; got " +
                     json_kind(in));
    return value{to_lower(in.get<std::string>())};
  }
  case column_type::timestamp:
    if (!in.is_string() || !looks_like_timestamp(in.get<std::string>()))
      return invalid(column_ref(table, col) +
                     " takes an ISO-8601 string like \"2026-01-31 12:00:00+00:00\"; got " +
                     json_kind(in));
    return value{in.get<std::string>()};
  case column_type::json:
    return value{in.dump()};
  case column_type::blob:
    if (!(in.is_object() && in.size() == 1 && in.contains("$base64")))
      return wrong("{\"$base64\": \"...\"}");
    [[fallthrough]];
  default:
    try {
      return in.get<value>();
    } catch (const nlohmann::json::exception&) {
      return invalid(column_ref(table, col) + ": cannot bind " + json_kind(in) +
                     " (base64 text must use A-Z a-z 0-9 + /)");
    }
  }
}

std::string known_columns(const table_def& table) {
  std::string out;
  for (auto& col : table.columns)
    out += (out.empty() ? "" : ", ") + col.name;
  return out;
}

outcome<const column_def*> find_column(const table_def& table, const std::string& name) {
  auto col = is_identifier(name) ? table.column(name) : nullptr;
  if (!col)
    return invalid("table '" + table.name + "' has no column " + in_quotes(name) +
                   " (its columns: " + known_columns(table) + ")");
  return col;
}

bool in_key(const table_def& table, const std::string& column) {
  return std::find(table.primary_key.begin(), table.primary_key.end(), column) !=
         table.primary_key.end();
}

std::string placeholder(size_t n) {
  return "$" + std::to_string(n);
}

// `"a" = $n AND "b" = $n+1` for the primary key `key`; appends the values to `params`.
outcome<std::string> key_condition(const table_def& table, const nlohmann::json& key,
                                   std::vector<value>& params) {
  if (table.primary_key.empty())
    return invalid("table '" + table.name +
                   "' has no primary key; use execute_one with your own WHERE clause");
  nlohmann::json parts = nlohmann::json::object();
  if (key.is_object()) {
    parts = key;
  } else if (table.primary_key.size() == 1) {
    parts[table.primary_key.front()] = key;
  } else {
    return invalid("table '" + table.name +
                   "' has a composite primary key: give the key as an "
                   "object with each of its columns");
  }
  if (parts.size() != table.primary_key.size())
    return invalid("the key of table '" + table.name + "' is exactly its primary key columns (" +
                   [&] {
                     std::string out;
                     for (auto& c : table.primary_key)
                       out += (out.empty() ? "" : ", ") + c;
                     return out;
                   }() +
                   ")");
  std::string sql;
  for (auto& column : table.primary_key) {
    if (!parts.contains(column) || parts[column].is_null())
      return invalid("the key of table '" + table.name + "' needs a non-null value for " +
                     in_quotes(column));
    auto val = column_value(table, *table.column(column), parts[column]);
    if (!val)
      return val.error();
    params.push_back(std::move(*val));
    sql += (sql.empty() ? "" : " AND ") + quote_identifier(column) + " = " +
           placeholder(params.size());
  }
  return sql;
}

// The columns and values of an INSERT from `row`, mixin columns filled in.
struct insert_parts {
  std::vector<std::string> columns;
  std::vector<value> params;
};

outcome<insert_parts> insert_values(const table_def& table, const nlohmann::json& row,
                                    const std::string& now) {
  if (!row.is_object())
    return invalid("a row for table '" + table.name + "' is a JSON object of column values; got " +
                   json_kind(row));
  insert_parts out;
  for (auto& [name, input] : row.items()) {
    auto col = find_column(table, name);
    if (!col)
      return col.error();
    auto val = column_value(table, **col, input);
    if (!val)
      return val.error();
    out.columns.push_back(name);
    out.params.push_back(std::move(*val));
  }
  if (has_mixin(table)) {
    auto fill = [&](const char* column, std::string generated) {
      if (!row.contains(column)) {
        out.columns.emplace_back(column);
        out.params.emplace_back(std::move(generated));
      }
    };
    fill(mixin_key, new_uuid());
    fill(mixin_created, now);
    fill(mixin_updated, now);
  }
  return out;
}

std::string insert_sql(const table_def& table, const insert_parts& parts) {
  auto sql = "INSERT INTO " + quote_identifier(table.name);
  if (parts.columns.empty())
    return sql + " DEFAULT VALUES";
  std::string names, placeholders;
  for (size_t i = 0; i < parts.columns.size(); ++i) {
    names += (i ? ", " : "") + quote_identifier(parts.columns[i]);
    placeholders += (i ? ", " : "") + placeholder(i + 1);
  }
  return sql + " (" + names + ") VALUES (" + placeholders + ")";
}

// A single SELECT usable as a subquery: trailing semicolons and space removed.
outcome<std::string> subquery_text(const statement& query) {
  auto sql = query.sql;
  while (!sql.empty() &&
         (std::isspace(static_cast<unsigned char>(sql.back())) || sql.back() == ';'))
    sql.pop_back();
  if (sql.find_first_not_of(" \t\r\n") == std::string::npos)
    return invalid("the query is empty; pass one SELECT statement");
  if (sql.find(';') != std::string::npos)
    return invalid("the query holds more than one statement; count, paginate and read_one take "
                   "one SELECT (pass values as $N parameters, not inside the SQL)");
  return sql;
}

outcome<statement> wrapped(const statement& query, const std::string& before,
                           const std::string& after, std::vector<value> extra) {
  auto sql = subquery_text(query);
  if (!sql)
    return sql.error();
  // A line break before what follows: a trailing `-- comment` would swallow it.
  statement out{before + *sql + "\n" + after, query.params};
  for (auto& x : extra)
    out.params.push_back(std::move(x));
  return out;
}

bool same_columns(std::vector<std::string> x, std::vector<std::string> y) {
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x == y;
}

bool is_unique_target(const table_def& table, const std::vector<std::string>& columns) {
  if (same_columns(columns, table.primary_key))
    return true;
  if (columns.size() == 1)
    if (auto col = table.column(columns.front()); col && col->unique)
      return true;
  for (auto& group : table.unique)
    if (same_columns(columns, group))
      return true;
  for (auto& index : table.indexes)
    if (index.unique && same_columns(columns, index.columns))
      return true;
  return false;
}

} // namespace

nlohmann::json row_object(const result_set& rs, size_t row) {
  auto object = nlohmann::json::object();
  auto& cells = rs.rows[row];
  for (size_t c = 0; c < rs.columns.size() && c < cells.size(); ++c) {
    auto& cell = cells[c];
    auto type = c < rs.column_types.size() ? rs.column_types[c] : std::string{};
    auto& slot = object[rs.columns[c]];
    if (cell.type() == value_type::integer && is_boolean_type(type)) {
      slot = cell.as_bool();
    } else if (cell.type() == value_type::text && is_json_type(type)) {
      slot = parse_json_bounded(cell.bytes());
      if (slot.is_discarded()) // not JSON, or too deep to handle: the text as it is
        slot = cell.bytes();
    } else {
      slot = cell;
    }
  }
  return object;
}

nlohmann::json row_objects(const result_set& rs) {
  auto out = nlohmann::json::array();
  for (size_t r = 0; r < rs.rows.size(); ++r)
    out.push_back(row_object(rs, r));
  return out;
}

nlohmann::json execution_summary(const result_set& rs) {
  return nlohmann::json{
      {"rowcount", rs.affected_rows},
      {"last_insert_id", rs.last_insert_id != 0 ? nlohmann::json(rs.last_insert_id) : nullptr},
      {"rows", row_objects(rs)}};
}

nlohmann::json page_result(nlohmann::json items, int64_t total, int64_t page, int64_t page_size) {
  auto pages = page_size > 0 ? (total + page_size - 1) / page_size : 0;
  return nlohmann::json{{"items", std::move(items)},
                        {"total", total},
                        {"page", page},
                        {"page_size", page_size},
                        {"pages", pages}};
}

nlohmann::json error_object(const db_error& err) {
  return nlohmann::json{{"error", to_string(err.code)}, {"details", err.message}};
}

outcome<statement> count_statement(const statement& query) {
  return wrapped(query, "SELECT COUNT(*) AS count FROM (", ") AS cafdb_count", {});
}

outcome<statement> page_statement(const statement& query, int64_t page, int64_t page_size) {
  if (page < 1)
    return invalid("page starts at 1; got " + std::to_string(page));
  if (page_size < 1 || page_size > max_page_size)
    return invalid("page_size must be between 1 and " + std::to_string(max_page_size) + "; got " +
                   std::to_string(page_size));
  if (page - 1 > INT64_MAX / page_size)
    return invalid("page " + std::to_string(page) + " is beyond any table");
  auto n = query.params.size();
  return wrapped(query, "SELECT * FROM (",
                 ") AS cafdb_page LIMIT " + placeholder(n + 1) + " OFFSET " + placeholder(n + 2),
                 {value{page_size}, value{(page - 1) * page_size}});
}

outcome<statement> first_row_statement(const statement& query) {
  return wrapped(query, "SELECT * FROM (", ") AS cafdb_first LIMIT 1", {});
}

outcome<const table_def*> find_table(const schema_def& schema, const std::string& name) {
  auto table = is_identifier(name) ? schema.table(name) : nullptr;
  if (!table)
    return db_error{errc::not_found,
                    "there is no table " + in_quotes(name) +
                        " in the database (create it with create_all or a migration)",
                    "", ""};
  return table;
}

outcome<statement> insert_statement(const table_def& table, const nlohmann::json& row,
                                    const std::string& now) {
  auto parts = insert_values(table, row, now);
  if (!parts)
    return parts.error();
  return statement{insert_sql(table, *parts) + " RETURNING *", std::move(parts->params)};
}

outcome<statement> upsert_statement(const table_def& table, const nlohmann::json& row,
                                    const std::vector<std::string>& conflict,
                                    const std::string& now) {
  auto target = conflict.empty() ? table.primary_key : conflict;
  if (target.empty())
    return invalid("table '" + table.name +
                   "' has no primary key: name the unique columns to upsert on");
  for (auto& name : target)
    if (auto col = find_column(table, name); !col)
      return col.error();
  if (!is_unique_target(table, target))
    return invalid("upsert needs conflict columns that are the primary key or unique (a unique "
                   "constraint or index) of table '" +
                   table.name + "'");
  auto parts = insert_values(table, row, now);
  if (!parts)
    return parts.error();
  auto has = [&](const std::string& name) {
    return std::find(parts->columns.begin(), parts->columns.end(), name) != parts->columns.end();
  };
  for (auto& name : target)
    if (!has(name))
      return invalid("upsert on table '" + table.name + "' needs a value for the conflict column " +
                     in_quotes(name));
  std::string targets, updates;
  for (auto& name : target)
    targets += (targets.empty() ? "" : ", ") + quote_identifier(name);
  bool mixin = has_mixin(table);
  for (auto& name : parts->columns) {
    bool kept = std::find(target.begin(), target.end(), name) != target.end() ||
                in_key(table, name) || (mixin && name == mixin_created);
    if (!kept)
      updates += (updates.empty() ? "" : ", ") + quote_identifier(name) + " = excluded." +
                 quote_identifier(name);
  }
  // Nothing to change: a no-op update still makes RETURNING give the stored row.
  if (updates.empty())
    updates = quote_identifier(target.front()) + " = excluded." + quote_identifier(target.front());
  return statement{insert_sql(table, *parts) + " ON CONFLICT (" + targets + ") DO UPDATE SET " +
                       updates + " RETURNING *",
                   std::move(parts->params)};
}

outcome<statement> update_statement(const table_def& table, const nlohmann::json& key,
                                    const nlohmann::json& changes, const std::string& now,
                                    std::optional<engine_kind> guard) {
  if (!changes.is_object() || changes.empty())
    return invalid("update_one takes a non-empty JSON object of the columns to change");
  bool mixin = has_mixin(table);
  std::vector<value> params;
  std::string sets;
  auto add = [&](const std::string& name, value val) {
    params.push_back(std::move(val));
    sets +=
        (sets.empty() ? "" : ", ") + quote_identifier(name) + " = " + placeholder(params.size());
  };
  for (auto& [name, input] : changes.items()) {
    auto col = find_column(table, name);
    if (!col)
      return col.error();
    if (in_key(table, name))
      return invalid("primary key column " + in_quotes(name) + " of table '" + table.name +
                     "' cannot be changed; delete the row and create a new one");
    if (mixin && (name == mixin_created || name == mixin_updated))
      return invalid(in_quotes(name) + " of table '" + table.name + "' is maintained by cafdb");
    auto val = column_value(table, **col, input);
    if (!val)
      return val.error();
    add(name, std::move(*val));
  }
  if (mixin)
    add(mixin_updated, value{now});
  auto where = key_condition(table, key, params);
  if (!where)
    return where.error();
  if (guard)
    *where = "(" + *where + ") AND " + primary_key_guard(*guard, table, params);
  return statement{"UPDATE " + quote_identifier(table.name) + " SET " + sets + " WHERE " + *where +
                       " RETURNING *",
                   std::move(params)};
}

outcome<statement> delete_statement(const table_def& table, const nlohmann::json& key,
                                    std::optional<engine_kind> guard) {
  std::vector<value> params;
  auto where = key_condition(table, key, params);
  if (!where)
    return where.error();
  if (guard)
    *where = "(" + *where + ") AND " + primary_key_guard(*guard, table, params);
  return statement{"DELETE FROM " + quote_identifier(table.name) + " WHERE " + *where,
                   std::move(params)};
}

std::string primary_key_guard(engine_kind dialect, const table_def& table,
                              std::vector<value>& params) {
  std::string columns;
  for (auto& c : table.primary_key)
    columns += (columns.empty() ? "" : ",") + c;
  if (dialect == engine_kind::postgresql) {
    params.emplace_back(quote_identifier(table.name));
    auto name = placeholder(params.size());
    params.emplace_back(columns);
    auto expected = placeholder(params.size());
    // Evaluated once per statement (an uncorrelated subquery); 1 / 0 fails it (22012).
    return "(SELECT 1 / (CASE WHEN (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) "
           "FROM pg_index x CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) "
           "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
           "WHERE x.indrelid = to_regclass(" +
           name + "::text) AND x.indisprimary) = " + expected + "::text THEN 1 ELSE 0 END)) = 1";
  }
  params.emplace_back(table.name);
  auto name = placeholder(params.size());
  params.emplace_back(columns);
  auto expected = placeholder(params.size());
  params.emplace_back(int64_t{1});
  auto one = placeholder(params.size());
  // abs() of the smallest integer fails the statement ("integer overflow"); a bound 1
  // keeps SQLite from computing it before it is needed.
  return "(SELECT CASE WHEN (SELECT group_concat(name, ',') FROM (SELECT name FROM "
         "pragma_table_info(" +
         name + ") WHERE pk > 0 ORDER BY pk)) = " + expected +
         " THEN 1 ELSE abs(-9223372036854775807 - " + one + ") END) = 1";
}

bool is_stale_key(const db_error& err) {
  return err.driver_code == "22012" ||
         err.driver_message.find("integer overflow") != std::string::npos;
}

outcome<std::vector<statement>> delete_many_statements(const table_def& table,
                                                       const nlohmann::json& keys,
                                                       std::optional<engine_kind> guard) {
  if (!keys.is_array())
    return invalid("delete_many takes a JSON array of primary keys; got " + json_kind(keys));
  // Few enough parameters for any engine (SQLite allows 32766, PostgreSQL 65535).
  constexpr size_t keys_per_statement = 500;
  std::vector<statement> out;
  for (size_t first = 0; first < keys.size(); first += keys_per_statement) {
    statement stmt{"DELETE FROM " + quote_identifier(table.name) + " WHERE "};
    auto last = std::min(keys.size(), first + keys_per_statement);
    for (size_t i = first; i < last; ++i) {
      auto where = key_condition(table, keys[i], stmt.params);
      if (!where)
        return where.error();
      stmt.sql += (i == first ? "((" : " OR (") + *where + ")";
    }
    stmt.sql += ")";
    if (guard)
      stmt.sql += " AND " + primary_key_guard(*guard, table, stmt.params);
    out.push_back(std::move(stmt));
  }
  return out;
}

std::string new_uuid() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  uint64_t high = random(), low = random();
  high = (high & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull; // version 4
  low = (low & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;   // RFC 4122 variant
  char text[37];
  std::snprintf(text, sizeof text, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(high >> 32),
                static_cast<unsigned>((high >> 16) & 0xFFFF), static_cast<unsigned>(high & 0xFFFF),
                static_cast<unsigned>(low >> 48),
                static_cast<unsigned long long>(low & 0xFFFFFFFFFFFFull));
  return text;
}

std::string utc_timestamp_now() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now - secs).count();
  auto t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
  char text[48];
  std::snprintf(text, sizeof text, "%s.%06lld+00:00", date, static_cast<long long>(micros));
  return text;
}

nlohmann::json parse_json_bounded(const std::string& text) {
  // The deepest nesting, counted outside strings, before anything is built.
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > json_max_depth)
        return nlohmann::json::value_t::discarded;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return nlohmann::json::parse(text, nullptr, false);
}

} // namespace cafdb
