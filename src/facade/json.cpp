#include "cafdb/json.hpp"

#include <chrono>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

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

// Collects a message's fields in the order its `inspect` lists them, so that the JSON
// of a message cannot drop a field that travels in it.
struct field_collector {
  using result_type = void;
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;

  std::vector<nlohmann::json> values;

  template <class... Ts>
  void operator()(Ts&&... xs) {
    (add(xs), ...);
  }

  void add(const caf::meta::type_name_t&) {
    // the type's name is not a field
  }

  template <class T>
  void add(const T& x) {
    values.emplace_back(x);
  }
};

// The JSON names of pool_stats' fields, in the order of its inspect().
constexpr const char* pool_stats_names[] = {
    "engine",      "pool",          "size",        "max",       "total",     "idle",
    "in_use",      "opening",       "pinging",     "returning", "in_place",  "waiting",
    "checkouts",   "timeouts",      "discarded",   "opened",    "cancelled", "reconnects",
    "recycled",    "ping_failures", "server_full", "leaks",     "reclaimed", "wait_p50_us",
    "wait_p95_us", "wait_p99_us"};

} // namespace

void to_json(nlohmann::json& out, const readiness_event& x) {
  out = nlohmann::json{{"component", x.component},
                       {"state", to_string(x.state)},
                       {"detail", x.detail},
                       {"attempt", x.attempt},
                       {"since", iso8601(x.since)}};
}

void to_json(nlohmann::json& out, const pool_stats& x) {
  field_collector fields;
  inspect(fields, const_cast<pool_stats&>(x)); // reads only: writes_state is false
  constexpr auto names = std::size(pool_stats_names);
  if (fields.values.size() != names)
    throw std::logic_error("pool_stats has " + std::to_string(fields.values.size()) +
                           " fields but its JSON names " + std::to_string(names) +
                           ": add the new field's name to pool_stats_names");
  out = nlohmann::json::object();
  for (size_t i = 0; i < names; ++i)
    out[pool_stats_names[i]] = std::move(fields.values[i]);
}

void to_json(nlohmann::json& out, const status_report& x) {
  out = nlohmann::json{{"state", to_string(x.state)}, {"url", x.url},
                       {"components", x.components},  {"pools", x.pools},
                       {"sessions", x.sessions},      {"pending", x.pending},
                       {"restarts", x.restarts},      {"reads_in_place", x.reads_in_place},
                       {"subscribers", x.subscribers}};
}

} // namespace cafdb
