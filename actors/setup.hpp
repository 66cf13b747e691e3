// Spawns the setup actor: the start-up sequence of one database.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>

#include "cafdb/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

/// Spawns setup; it starts at once and publishes `setup` readiness to `db`.
setup_actor spawn_setup(caf::actor_system& sys, engine_actor engine, database_actor db,
                        std::shared_ptr<const config> cfg);

} // namespace cafdb
