// Spawns the operations actor: ready-made reads and CRUD answered as JSON.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>

#include "cafdb/core/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

/// Spawns operations; it runs every statement through `db`, like any client.
operations_actor spawn_operations(caf::actor_system& sys, database_actor db,
                                  std::shared_ptr<const config> cfg);

} // namespace cafdb
