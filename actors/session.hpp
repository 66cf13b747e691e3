// Spawns a session actor: one client's transaction state and at most one lease.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/error.hpp>

#include "cafdb/core/config.hpp"
#include "messages/interfaces.hpp"

namespace cafdb {

namespace pool {
class in_place_shelf;
} // namespace pool

namespace read_router {
class read_classifier;
} // namespace read_router

/// Spawns a session bound to `client` (it rolls back and closes when the client goes
/// down). With `one_shot`, it closes itself after its first `exec` or `transact`. With
/// `shelf`, a read-only session runs its autocommit reads in place on a reader
/// connection it borrows there whenever one is free; `classifier` then tells which of
/// a read-write session's statements only read when none is free.
session_actor spawn_session(caf::actor_system& sys, engine_actor engine,
                            caf::strong_actor_ptr client, session_options options,
                            std::shared_ptr<const config> cfg, bool one_shot,
                            std::shared_ptr<pool::in_place_shelf> shelf = nullptr,
                            std::shared_ptr<read_router::read_classifier> classifier = nullptr);

/// How long a request may wait for a connection: its own wait_timeout, else the
/// configured pool_timeout.
caf::timespan checkout_wait_of(const session_options& options, const config& cfg);

/// What a client is told when the engine did not answer at all (it is gone, or being
/// replaced): unavailable, naming `what` was asked. Other errors pass unchanged.
caf::error explain_engine_failure(caf::error err, const char* what);

/// How long a session may stay without a request before it closes (zero: never):
/// its own option, else the configured session_idle_timeout.
caf::timespan idle_timeout_of(const session_options& options, const config& cfg);

} // namespace cafdb
