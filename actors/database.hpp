// Spawns the database actor: the supervisor every application talks to.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>

#include "actors/engine.hpp"
#include "backend/driver.hpp"
#include "cafdb/core/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

/// Makes the driver factory for the engine of a role.
using engine_factory = std::function<driver_factory(engine_role role)>;

/// Spawns the supervisor with its engines and setup. `factory` makes the drivers: tests
/// pass a scripted one; the facade's `spawn_database(sys, cfg)` (cafdb/database.hpp) is
/// this with `default_driver_factory`.
database_actor spawn_database(caf::actor_system& sys, std::shared_ptr<const config> cfg,
                              engine_factory factory);

} // namespace cafdb
