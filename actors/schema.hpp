// Spawns the schema actor: declared tables, DDL and the catalog of one database.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>

#include "cafdb/core/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

/// Spawns schema; it publishes `schema` readiness to `db` while it prepares.
schema_actor spawn_schema(caf::actor_system& sys, database_actor db,
                          std::shared_ptr<const config> cfg);

} // namespace cafdb
