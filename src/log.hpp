// One spdlog logger per actor role, named `cafdb.<role>`, all writing to stderr.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "backend/driver.hpp"
#include "cafdb/config.hpp"

namespace cafdb::log {

/// Returns the logger `cafdb.<role>`, creating it on first use.
std::shared_ptr<spdlog::logger> get(const std::string& role);

/// Logs `sql` with its parameters (already rendered) and the handle it runs on, on
/// `cafdb.sql` (the `echo` option). Cheap when echo is off.
void echo(spdlog::logger& sql_log, const std::string& sql, const std::string& params,
          const driver& on);

/// `echo` for one statement: parameter values with `echo_params`, else `?` each.
void echo(spdlog::logger& sql_log, const config& cfg, const statement& stmt, const driver& on);

/// Sets the level of every cafdb logger from `cfg.log_level`; `echo` raises
/// `cafdb.sql` to info.
void configure(const config& cfg);

} // namespace cafdb::log
