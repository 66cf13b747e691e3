// Readiness protocol: component states, events, status and pool statistics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <caf/timestamp.hpp>

namespace cafdb {

/// The readiness state machine (docs/architecture.md, "Readiness"), shared by every component
/// and by the database as a whole.
enum class readiness_state : uint8_t {
  starting,
  connecting,
  migrating,
  ready,
  degraded,
  failed,
  stopping,
  stopped,
};

std::string to_string(readiness_state x);

/// One component's state, as published and as replayed to late subscribers.
/// Components: `database` (derived), `setup`, `engine:writer`.
struct readiness_event {
  /// Which component changed.
  std::string component;
  readiness_state state = readiness_state::starting;
  /// Why: the last error while retrying or failed, else a short note. No secrets.
  std::string detail;
  /// Connection attempts so far (setup and engines), else 0.
  int32_t attempt = 0;
  /// When the component entered `state`.
  caf::timestamp since;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, readiness_event& x) {
  return f(caf::meta::type_name("cafdb::readiness_event"), x.component, x.state, x.detail,
           x.attempt, x.since);
}

/// What `subscribe` answers at once: the current state of every component.
struct readiness_snapshot {
  /// The database's derived state.
  readiness_state state = readiness_state::starting;
  /// One event per component, the database's own first.
  std::vector<readiness_event> components;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, readiness_snapshot& x) {
  return f(caf::meta::type_name("cafdb::readiness_snapshot"), x.state, x.components);
}

/// Counters of one connection pool.
struct pool_stats {
  /// Engine role, e.g. "writer".
  std::string engine;
  /// Pool within the engine: "writer", "reader" or "shared" (one pool serves both).
  std::string pool;
  int32_t size = 0; ///< Configured pool_size.
  int32_t max = 0;  ///< pool_size + max_overflow.
  /// Connections open or opening: always idle + in_use + opening + pinging + returning.
  int32_t total = 0;
  int32_t idle = 0;      ///< Open and not leased.
  int32_t in_use = 0;    ///< Leased to a session, or running a batch of reads.
  int32_t opening = 0;   ///< Being opened.
  int32_t pinging = 0;   ///< Being checked by pool_pre_ping.
  int32_t returning = 0; ///< Back from a holder, being reset or drained before reuse.
  /// On the in-place shelf (SQLite readers that sessions borrow to read in place),
  /// counted in idle or, while lent, in_use.
  int32_t in_place = 0;
  int32_t waiting = 0; ///< Checkouts and reads queued.
  int64_t checkouts = 0;
  int64_t timeouts = 0;
  int64_t discarded = 0;     ///< Connections thrown away in an unknown state.
  int64_t opened = 0;        ///< Connections opened since start.
  int64_t cancelled = 0;     ///< Statements cancelled on the server past a request deadline.
  int64_t reconnects = 0;    ///< Times the engine got its server back after losing it.
  int64_t recycled = 0;      ///< Connections retired at pool_recycle or reaped at idle_timeout.
  int64_t ping_failures = 0; ///< Idle connections found dead by pool_pre_ping.
  int64_t server_full = 0;   ///< Connects the server refused as full (53300, too many clients).
  int64_t leaks = 0;         ///< Leases held past leak_threshold (warned once each).
  int64_t reclaimed = 0;     ///< Leases reclaimed past lease_timeout.
  /// Checkout wait over the last 1024 checkouts (0 for an idle connection), microseconds.
  int64_t wait_p50_us = 0;
  int64_t wait_p95_us = 0;
  int64_t wait_p99_us = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pool_stats& x) {
  return f(caf::meta::type_name("cafdb::pool_stats"), x.engine, x.pool, x.size, x.max, x.total,
           x.idle, x.in_use, x.opening, x.pinging, x.returning, x.in_place, x.waiting, x.checkouts,
           x.timeouts, x.discarded, x.opened, x.cancelled, x.reconnects, x.recycled,
           x.ping_failures, x.server_full, x.leaks, x.reclaimed, x.wait_p50_us, x.wait_p95_us,
           x.wait_p99_us);
}

/// The whole picture, as `status` answers it. Contains no secrets.
struct status_report {
  readiness_state state = readiness_state::starting;
  std::vector<readiness_event> components;
  std::vector<pool_stats> pools;
  /// The database URL with its password redacted.
  std::string url;
  int32_t sessions = 0; ///< Open session actors.
  int32_t pending = 0;  ///< Requests waiting for readiness.
  int32_t restarts = 0; ///< Child restarts since start.
  /// Reads that sessions ran in place on borrowed SQLite reader connections since
  /// start (read_in_place); the reader pool's figures, its shelf included, are in `pools`.
  int64_t reads_in_place = 0;
  int32_t subscribers = 0; ///< Actors subscribed to readiness events.
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, status_report& x) {
  return f(caf::meta::type_name("cafdb::status_report"), x.state, x.components, x.pools, x.url,
           x.sessions, x.pending, x.restarts, x.reads_in_place, x.subscribers);
}

} // namespace cafdb
