// Spawns a one-shot reader: a long-lived actor that runs the database's one-shot
// autocommit `exec` reads without a session, in place on SQLite's reader shelf or as
// engine reads.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>

#include "cafdb/core/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

namespace pool {
class in_place_shelf;
} // namespace pool

/// `shelf`: SQLite's reader shelf, where the reader reads in place (null: it never
/// does). `busy` is set by the database when it hands the reader a request and cleared
/// by the reader when it can take the next one. `in_flight` counts the engine reads the
/// reader waits for (the database's stop waits for them). `db` (weak: the database owns
/// its readers) gets the requests the reader can run neither way.
one_shot_reader_actor spawn_one_shot_reader(caf::actor_system& sys, caf::actor_addr db,
                                            std::shared_ptr<pool::in_place_shelf> shelf,
                                            std::shared_ptr<const config> cfg,
                                            std::shared_ptr<std::atomic<bool>> busy,
                                            std::shared_ptr<std::atomic<size_t>> in_flight);

} // namespace cafdb
