// Converts cafdb values, results and status to and from nlohmann::json: the values'
// conversions (cafdb/core/value_json.hpp) and those of readiness events, pool statistics
// and status reports.
#pragma once

#include <nlohmann/json.hpp>

#include "cafdb/core/value_json.hpp"
#include "cafdb/messages/readiness.hpp"

namespace cafdb {

void to_json(nlohmann::json& out, const readiness_event& x);
void to_json(nlohmann::json& out, const pool_stats& x);
void to_json(nlohmann::json& out, const status_report& x);

} // namespace cafdb
