// One spdlog logger per actor role, named `cafdb.<role>`, all writing to stderr.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "cafdb/config.hpp"

namespace cafdb::log {

/// Returns the logger `cafdb.<role>`, creating it on first use.
std::shared_ptr<spdlog::logger> get(const std::string& role);

/// Sets the level of every cafdb logger from `cfg.log_level`; `echo` raises
/// `cafdb.sql` to info.
void configure(const config& cfg);

} // namespace cafdb::log
