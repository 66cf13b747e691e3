#include "log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace cafdb::log {

namespace {

std::mutex mtx;
spdlog::level::level_enum current_level = spdlog::level::warn;
bool echo_enabled = false;

} // namespace

std::shared_ptr<spdlog::logger> get(const std::string& role) {
  auto name = "cafdb." + role;
  std::lock_guard<std::mutex> guard{mtx};
  if (auto existing = spdlog::get(name))
    return existing;
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e [%n] %l: %v");
  logger->set_level(role == "sql" && echo_enabled ? spdlog::level::info : current_level);
  return logger;
}

void configure(const config& cfg) {
  {
    std::lock_guard<std::mutex> guard{mtx};
    current_level = spdlog::level::from_str(cfg.log_level);
    echo_enabled = cfg.echo;
  }
  for (auto role : {"database", "engine", "connection", "session", "setup", "sql"})
    get(role)->set_level(std::string{role} == "sql" && cfg.echo
                             ? spdlog::level::info
                             : spdlog::level::from_str(cfg.log_level));
}

void echo(spdlog::logger& sql_log, const std::string& sql, const std::string& params,
          const driver& on) {
  if (sql_log.should_log(spdlog::level::info))
    sql_log.info("{} [{}] ({})", sql, params, on.describe());
}

void echo(spdlog::logger& sql_log, const config& cfg, const statement& stmt, const driver& on) {
  if (!sql_log.should_log(spdlog::level::info))
    return;
  std::string params;
  for (auto& param : stmt.params) {
    if (!params.empty())
      params += ", ";
    params += cfg.echo_params ? to_string(param) : "?";
  }
  echo(sql_log, stmt.sql, params, on);
}

} // namespace cafdb::log
