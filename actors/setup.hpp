// Spawns the setup actor: the start-up sequence of one database.
#pragma once

#include <memory>
#include <vector>

#include <caf/actor_system.hpp>

#include "cafdb/core/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

/// Spawns setup; it starts at once, connects every engine in order, prepares the
/// declared schema through `schema` (when there is one), and publishes `setup`
/// readiness to `db`.
setup_actor spawn_setup(caf::actor_system& sys, std::vector<engine_actor> engines,
                        schema_actor schema, database_actor db, std::shared_ptr<const config> cfg);

} // namespace cafdb
