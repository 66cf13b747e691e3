#include "session/read_router.hpp"

#include <algorithm>

namespace cafdb::read_router {

read_plan plan(const config& cfg, size_t workers) {
  read_plan out;
  auto pool_max = static_cast<size_t>(std::max(1, cfg.pool_size + cfg.max_overflow));
  if (cfg.engine == engine_kind::postgresql) {
    // Connections wait on the network: threads of their own, and no session reads in
    // place. A blocking client's call runs on its own thread anyway: there it may use a
    // pooled connection itself. With a read replica, read-only calls belong to it: none.
    if (cfg.read_in_place && cfg.read_url.empty()) {
      out.shelf = pool_max;
      out.shared_pool = true;
    }
    return out;
  }
  if (cfg.in_memory())
    return out;
  if (cfg.read_in_place) {
    // All scheduler threads but one, so that the engine, the writer's sessions and the
    // database always have one to run on; none is left to lend to reader connections.
    // They are connections of the reader pool, so never more than it may open.
    // With one thread there is none to spare: a read in place would stop the database
    // until its deadline.
    if (workers <= 1)
      return out;
    auto threads = workers - 1;
    out.shelf = pool_max;
    out.scheduler_borrowers = std::min(threads, pool_max);
    return out;
  }
  // A point read costs a few microseconds and a hop to another thread more: reader
  // connections run on the scheduler, at most half of it.
  out.lendable_threads = workers / 2;
  return out;
}

std::string to_string(read_path x) {
  switch (x) {
  case read_path::in_place:
    return "in_place";
  case read_path::in_place_if_read:
    return "in_place_if_read";
  case read_path::engine_read:
    return "engine_read";
  case read_path::leased:
    return "leased";
  }
  return "unknown";
}

read_path route(const read_request& request, bool shelf) {
  // Inside a transaction (or holding a lease for any other reason) the read belongs to
  // that connection: its snapshot, its locks.
  bool autocommit = request.phase != session_phase::in_tx && request.phase != session_phase::failed;
  if (!autocommit || request.holds_lease)
    return read_path::leased;
  // A read that changes its connection's session gets a connection of its own, reset
  // before anyone else uses it: in a batch, the reads after it would see the change.
  if (request.changes_session)
    return read_path::leased;
  // What a read-write session sends may write: only the prepared statement can tell
  // that it does not, and only SQLite's reader connections ask it (the shelf).
  if (!request.read_only)
    return shelf ? read_path::in_place_if_read : read_path::leased;
  return shelf ? read_path::in_place : read_path::engine_read;
}

} // namespace cafdb::read_router
