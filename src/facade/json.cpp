#include "cafdb/json.hpp"

#include <chrono>

namespace cafdb {

namespace {

std::string iso8601(caf::timestamp ts) {
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(ts);
  auto t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

} // namespace

void to_json(nlohmann::json& out, const readiness_event& x) {
  out = nlohmann::json{{"component", x.component},
                       {"state", to_string(x.state)},
                       {"detail", x.detail},
                       {"attempt", x.attempt},
                       {"since", iso8601(x.since)}};
}

void to_json(nlohmann::json& out, const pool_stats& x) {
  out = nlohmann::json{{"engine", x.engine},
                       {"pool", x.pool},
                       {"size", x.size},
                       {"max", x.max},
                       {"total", x.total},
                       {"idle", x.idle},
                       {"in_use", x.in_use},
                       {"opening", x.opening},
                       {"pinging", x.pinging},
                       {"returning", x.returning},
                       {"waiting", x.waiting},
                       {"checkouts", x.checkouts},
                       {"timeouts", x.timeouts},
                       {"discarded", x.discarded},
                       {"opened", x.opened},
                       {"cancelled", x.cancelled},
                       {"server_full", x.server_full}};
}

void to_json(nlohmann::json& out, const status_report& x) {
  out = nlohmann::json{{"state", to_string(x.state)},
                       {"url", x.url},
                       {"components", x.components},
                       {"pools", x.pools},
                       {"sessions", x.sessions},
                       {"pending", x.pending},
                       {"restarts", x.restarts},
                       {"read_handles", x.read_handles},
                       {"reads_in_place", x.reads_in_place},
                       {"subscribers", x.subscribers}};
}

} // namespace cafdb
