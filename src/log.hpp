// One spdlog logger per actor role, named `cafdb.<role>`. All of them write to one
// fan-out sink that holds stderr, or the application's sinks (route_to); more sinks can
// be added to it while actors log (spdlog's logger::sinks() is not guarded, its
// dist_sink is).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "backend/driver.hpp"
#include "cafdb/core/config.hpp"

namespace cafdb::log {

/// Returns the logger `cafdb.<role>`, creating it on first use.
std::shared_ptr<spdlog::logger> get(const std::string& role);

/// Sends every line of every cafdb logger to `sinks` instead of stderr (empty: back to
/// stderr); sinks added by add_sink stay. Safe while actors log.
void route_to(std::vector<spdlog::sink_ptr> sinks);

/// Adds a sink that sees every line of every cafdb logger; safe while actors log.
void add_sink(spdlog::sink_ptr sink);

/// Removes a sink added by add_sink; safe while actors log.
void remove_sink(const spdlog::sink_ptr& sink);

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
