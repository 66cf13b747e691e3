// Spawns an engine actor: the connection pools of one engine role.
#pragma once

#include <memory>
#include <string>

#include <caf/actor_system.hpp>

#include "backend/driver.hpp"
#include "cafdb/core/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

namespace pool {
class in_place_shelf;
} // namespace pool

/// Which engine: the writer (every database has one), or the reader of a read replica
/// (`read_url`).
enum class engine_role : uint8_t { writer, reader };

/// "writer" or "reader": readiness components are "engine:<role>".
std::string to_string(engine_role x);

/// Spawns the engine for `role`. It publishes its readiness (`engine:<role>`) to `db`.
/// With `shelf` (SQLite file databases that read in place), its reader pool puts
/// connections there for sessions to borrow.
engine_actor spawn_engine(caf::actor_system& sys, engine_role role,
                          std::shared_ptr<const config> cfg, driver_factory factory,
                          database_actor db, std::shared_ptr<pool::in_place_shelf> shelf = nullptr);

/// The drivers a config asks for, for the engine of `role`.
driver_factory default_driver_factory(std::shared_ptr<const config> cfg, engine_role role);

} // namespace cafdb
