#include "log.hpp"

#include <mutex>
#include <vector>

#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace cafdb::log {

namespace {

std::mutex mtx;
spdlog::level::level_enum current_level = spdlog::level::warn;
bool echo_enabled = false;

// cafdb's own stderr output. The pattern is the sink's, not the loggers': a logger's
// set_pattern would overwrite the formatter of every sink an application routed in.
spdlog::sink_ptr make_stderr_sink() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e [%n] %l: %v");
  return sink;
}

// Where the lines go: stderr, or the application's sinks (route_to). Guarded by mtx.
std::vector<spdlog::sink_ptr>& outputs() {
  static std::vector<spdlog::sink_ptr> sinks{make_stderr_sink()};
  return sinks;
}

std::shared_ptr<spdlog::sinks::dist_sink_mt> fanout() {
  static auto sink = [] {
    auto out = std::make_shared<spdlog::sinks::dist_sink_mt>();
    for (auto& output : outputs())
      out->add_sink(output);
    return out;
  }();
  return sink;
}

} // namespace

std::shared_ptr<spdlog::logger> get(const std::string& role) {
  auto name = "cafdb." + role;
  std::lock_guard<std::mutex> guard{mtx};
  if (auto existing = spdlog::get(name))
    return existing;
  auto logger = std::make_shared<spdlog::logger>(name, fanout());
  spdlog::register_logger(logger);
  logger->set_level(role == "sql" && echo_enabled ? spdlog::level::info : current_level);
  return logger;
}

void configure(const config& cfg) {
  {
    std::lock_guard<std::mutex> guard{mtx};
    current_level = spdlog::level::from_str(cfg.log_level);
    echo_enabled = cfg.echo;
  }
  for (auto role :
       {"database", "engine", "connection", "session", "setup", "schema", "operations", "sql"})
    get(role)->set_level(std::string{role} == "sql" && cfg.echo
                             ? spdlog::level::info
                             : spdlog::level::from_str(cfg.log_level));
}

void route_to(std::vector<spdlog::sink_ptr> sinks) {
  auto out = fanout();
  std::lock_guard<std::mutex> guard{mtx};
  for (auto& old : outputs())
    out->remove_sink(old);
  outputs() = sinks.empty() ? std::vector<spdlog::sink_ptr>{make_stderr_sink()} : std::move(sinks);
  for (auto& output : outputs())
    out->add_sink(output);
}

void add_sink(spdlog::sink_ptr sink) {
  fanout()->add_sink(std::move(sink));
}

void remove_sink(const spdlog::sink_ptr& sink) {
  fanout()->remove_sink(sink);
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
