// The operations API's SQL and JSON (docs/operations.md): statements built from a
// table's reflected definition and JSON input, and results shaped as JSON. Pure
// functions, CAF-free; actors/operations.cpp runs them.
//
// Every table and column name in generated SQL is one the caller's table definition
// holds (read from the live catalog) and passes `is_identifier`, and it is quoted;
// every value is a bound parameter. Nothing from a request is spliced into SQL text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cafdb/core/config.hpp"
#include "cafdb/core/errc.hpp"
#include "cafdb/core/schema.hpp"
#include "cafdb/core/value.hpp"

namespace cafdb {

/// The largest `page_size` paginate accepts.
inline constexpr int64_t max_page_size = 10000;

/// One row as an object keyed by column name. Values are normalised so that both
/// engines answer alike: JSON columns are parsed, boolean columns are true/false.
nlohmann::json row_object(const result_set& rs, size_t row);

/// Every row of `rs` as `row_object`s.
nlohmann::json row_objects(const result_set& rs);

/// What execute_one answers: `{"rowcount", "last_insert_id" (null if none), "rows"}`.
nlohmann::json execution_summary(const result_set& rs);

/// `{"items", "total", "page", "page_size", "pages"}`.
nlohmann::json page_result(nlohmann::json items, int64_t total, int64_t page, int64_t page_size);

/// `{"error": kind, "details": message}`: the error shape of the `json_errors` option.
nlohmann::json error_object(const db_error& err);

/// `SELECT COUNT(*)` over `query`, which must be one SELECT (a trailing `;` is fine).
outcome<statement> count_statement(const statement& query);

/// The rows of page `page` (from 1) of `query`, `page_size` rows a page.
outcome<statement> page_statement(const statement& query, int64_t page, int64_t page_size);

/// At most the first row of `query`.
outcome<statement> first_row_statement(const statement& query);

/// Checks a table name from a request: an identifier naming a table of `schema`.
outcome<const table_def*> find_table(const schema_def& schema, const std::string& name);

/// INSERT of one JSON object, returning the stored row. With the mixin, a missing
/// `pkid` is generated and missing `date_created` / `date_updated` are set to `now`.
outcome<statement> insert_statement(const table_def& table, const nlohmann::json& row,
                                    const std::string& now);

/// INSERT ... ON CONFLICT (`conflict`, default: the primary key) DO UPDATE, returning
/// the stored row. `conflict` must be the primary key or a unique constraint or index.
/// On conflict the key columns and `date_created` keep their stored values.
outcome<statement> upsert_statement(const table_def& table, const nlohmann::json& row,
                                    const std::vector<std::string>& conflict,
                                    const std::string& now);

/// A condition that holds while `table`'s primary key is still the columns `table`
/// names, and fails its statement when not (the table was dropped and created anew with
/// another key): a stale copy of the schema can then never pick the wrong row. Appends
/// its values to `params`. The failure is recognised by `is_stale_key`.
std::string primary_key_guard(engine_kind dialect, const table_def& table,
                              std::vector<value>& params);

/// True if `err` is a primary_key_guard's failure.
bool is_stale_key(const db_error& err);

/// UPDATE of the row with primary key `key`, returning it. Key columns cannot change;
/// with the mixin, `date_updated` is set to `now` and the mixin columns are refused.
/// With `guard`, the row is found only while the key is the one `table` names.
outcome<statement> update_statement(const table_def& table, const nlohmann::json& key,
                                    const nlohmann::json& changes, const std::string& now,
                                    std::optional<engine_kind> guard = std::nullopt);

/// DELETE of the row with primary key `key` (`guard`: as for update_statement).
outcome<statement> delete_statement(const table_def& table, const nlohmann::json& key,
                                    std::optional<engine_kind> guard = std::nullopt);

/// DELETEs of every row whose primary key is in `keys` (a JSON array), a few hundred
/// keys per statement; run them in one transaction and sum their row counts.
outcome<std::vector<statement>>
delete_many_statements(const table_def& table, const nlohmann::json& keys,
                       std::optional<engine_kind> guard = std::nullopt);

/// A version 4 UUID in lower-case text, e.g. "0f8e...-4...".
std::string new_uuid();

/// The current UTC time as "YYYY-MM-DD HH:MM:SS.ffffff+00:00", which both engines read
/// as UTC and which sorts as text.
std::string utc_timestamp_now();

/// How deep JSON may nest before cafdb treats it as text: nlohmann's dump and
/// comparisons recurse once per level, so deeper values would overflow the stack.
constexpr int json_max_depth = 512;

/// Parses `text` as JSON; a discarded value when it is not JSON or nests deeper than
/// json_max_depth.
nlohmann::json parse_json_bounded(const std::string& text);

} // namespace cafdb
