// Spawns a connection actor: one driver handle on its own thread.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>

#include "backend/driver.hpp"
#include "cafdb/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

/// Spawns a detached connection actor around `drv` (not yet opened: send `connect`).
connection_actor spawn_connection(caf::actor_system& sys, std::shared_ptr<driver> drv,
                                  std::shared_ptr<const config> cfg);

} // namespace cafdb
