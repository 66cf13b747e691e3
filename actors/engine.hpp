// Spawns an engine actor: the connection pool of one engine role ("writer").
#pragma once

#include <memory>
#include <string>

#include <caf/actor_system.hpp>

#include "backend/driver.hpp"
#include "cafdb/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

/// Spawns the engine for `role`. It publishes its readiness (`engine:<role>`) to `db`.
engine_actor spawn_engine(caf::actor_system& sys, std::string role,
                          std::shared_ptr<const config> cfg, driver_factory factory,
                          database_actor db);

/// The drivers a config asks for, for the engine of `role` ("writer" or "reader").
driver_factory default_driver_factory(std::shared_ptr<const config> cfg, const std::string& role);

} // namespace cafdb
