#include "cafdb/logging.hpp"

#include "log.hpp"

namespace cafdb {

void route_logs(std::vector<spdlog::sink_ptr> sinks) {
  log::route_to(std::move(sinks));
}

} // namespace cafdb
