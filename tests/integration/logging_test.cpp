// An application routes cafdb's log lines to its own spdlog sinks, with its own pattern,
// and back to stderr.
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>

#include "cafdb/logging.hpp"
#include "support/backends.hpp"

using namespace cafdb;
using namespace cafdb::test;

TEST_CASE("an application routes cafdb's logs to its own sinks and pattern", "[logging]") {
  std::ostringstream app_lines;
  auto app_sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(app_lines);
  app_sink->set_pattern("APP|%n|%l|%v");
  route_logs({app_sink});
  with_temp_dir where;
  auto cfg = sqlite_backend::make_config(where.dir);
  cfg.log_level = "info";
  {
    database_fixture fx{cfg};
    fx.require_ready();
    fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  }
  auto routed = app_lines.str();
  INFO(routed);
  // cafdb's lines arrived, in the application's pattern (cafdb's own creates no logger
  // that overrides it).
  CHECK(routed.find("APP|cafdb.") != std::string::npos);
  CHECK(routed.find("|info|") != std::string::npos);
  CHECK(routed.find(" [cafdb.") == std::string::npos);
  // Back to stderr: the application's sink sees no more lines.
  route_logs({});
  auto before = app_lines.str().size();
  {
    database_fixture fx{cfg};
    fx.require_ready();
  }
  CHECK(app_lines.str().size() == before);
}
