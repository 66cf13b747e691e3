// Spawns a connection actor: one driver handle, on its own thread or on the scheduler.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>

#include "backend/driver.hpp"
#include "cafdb/core/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

/// Where a connection actor runs.
enum class connection_thread {
  /// On a thread of its own: for handles that wait on a network or on a lock.
  dedicated,
  /// On CAF's scheduler threads: for handles whose calls are short and never wait (SQLite
  /// WAL readers), where a thread hop per request would cost more than the work.
  scheduled,
};

/// Spawns a connection actor around `drv` (not yet opened: send `connect`).
connection_actor spawn_connection(caf::actor_system& sys, std::shared_ptr<driver> drv,
                                  std::shared_ptr<const config> cfg, connection_thread thread);

} // namespace cafdb
