// Where cafdb's log lines go. cafdb logs through spdlog loggers named cafdb.database,
// cafdb.engine, cafdb.connection, cafdb.session, cafdb.setup, cafdb.schema,
// cafdb.operations and cafdb.sql (the `echo` option), at the level of the `log_level`
// option; by default they write to stderr.
//
//   auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>("app.log");
//   file->set_pattern("%Y-%m-%d %H:%M:%S %n %l %v");  // the application's pattern
//   cafdb::route_logs({file});
#pragma once

#include <vector>

#include <spdlog/common.h>

namespace cafdb {

/// Sends every cafdb log line to `sinks` (with each sink's own pattern) instead of
/// stderr; an empty list sends them back to stderr. Lines never contain passwords.
/// Safe to call at any time, also while databases run.
void route_logs(std::vector<spdlog::sink_ptr> sinks);

} // namespace cafdb
