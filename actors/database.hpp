// Spawns the database actor: the supervisor every application talks to.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>

#include "backend/driver.hpp"
#include "cafdb/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

/// Spawns the supervisor with its engine and setup. `factory` makes the drivers
/// (tests pass a scripted one; applications use `default_driver_factory`).
database_actor spawn_database_actor(caf::actor_system& sys, std::shared_ptr<const config> cfg,
                                    driver_factory factory);

} // namespace cafdb
