// Converts cafdb values and results to and from nlohmann::json (CAF-free).
//
// value:  null/bool/int/double/text map to the JSON scalars; blobs become
//         {"$base64": "..."}; JSON objects and arrays become text holding their dump.
// result: {"columns": [...], "rows": [[...]], "affected_rows": n, "last_insert_id": n}.
#pragma once

#include <nlohmann/json.hpp>

#include "cafdb/core/value.hpp"

namespace cafdb {

void to_json(nlohmann::json& out, const value& x);
void from_json(const nlohmann::json& in, value& x);

void to_json(nlohmann::json& out, const statement& x);
void from_json(const nlohmann::json& in, statement& x);

void to_json(nlohmann::json& out, const result_set& x);
void from_json(const nlohmann::json& in, result_set& x);

/// Rows as objects keyed by column name: what most JSON APIs want to return.
nlohmann::json rows_as_objects(const result_set& x);

} // namespace cafdb
