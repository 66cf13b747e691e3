// Every typed actor interface of cafdb, and the actor handles that travel in messages.
//
// One header on purpose: typed interfaces are expensive to compile, and each actor
// needs to see the handles of its peers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "type_ids.hpp"

namespace cafdb {

/// One driver handle on its own thread (actors/connection.cpp). Reached only by its
/// engine and by the session holding its lease.
using connection_actor = caf::typed_actor<
    // Opens the driver handle. Runs in: connection. Errors: connect_failed, invalid_config.
    caf::replies_to<caf::connect_atom>::with<caf::ok_atom>,
    // Runs a batch. Runs in: connection. Errors: every statement error of errc.
    caf::replies_to<exec_atom, exec_request>::with<std::vector<result_set>>,
    // Runs independent autocommit reads of several sessions, read-only, each with its
    // own outcome. Runs in: connection. Error: the connection is unusable.
    caf::replies_to<read_atom, std::vector<statement>>::with<std::vector<read_outcome>>,
    // Transaction control. Runs in: connection.
    caf::replies_to<tx_atom, tx_command>::with<caf::ok_atom>,
    // Rolls back whatever is open. Runs in: connection. Error: the connection is unusable.
    caf::replies_to<caf::reset_atom>::with<caf::ok_atom>,
    // A round trip to the server (pool_pre_ping). Error: the connection is dead.
    caf::replies_to<ping_atom>::with<caf::ok_atom>>;

/// A checked-out connection: the proof that a session owns it until check-in.
struct lease {
  uint64_t id = 0;
  connection_actor connection;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease& x) {
  return f(caf::meta::type_name("cafdb::lease"), x.id, x.connection);
}

/// The pool of one engine role (actors/engine.cpp).
using engine_actor = caf::typed_actor<
    // Opens the first connection: setup's connectivity check. Runs in: engine.
    caf::replies_to<caf::connect_atom>::with<caf::ok_atom>,
    // Leases a connection. Runs in: engine. Errors: pool_timeout, pool_overloaded,
    // connect_failed, shutting_down.
    caf::replies_to<checkout_atom, checkout_request>::with<lease>,
    // Gives a lease back. Runs in: engine.
    caf::reacts_to<checkin_atom, uint64_t, connection_condition>,
    // An autocommit read on any connection of the read pool, sent together with other
    // sessions' reads that are waiting (docs/benchmarks.md). The timespans: how long it
    // may wait for a connection (zero: pool_timeout), and its deadline on the
    // connection. Runs in: engine. Errors: those of checkout and every statement error.
    caf::replies_to<read_atom, statement, caf::timespan, caf::timespan>::with<result_set>,
    // Pool counters. Runs in: engine.
    caf::replies_to<stats_atom>::with<std::vector<pool_stats>>,
    // From a session's thread: a connection of the in-place shelf came back from its
    // borrower, recalled (usable) or in an unknown state (false). Runs in: engine.
    caf::reacts_to<shelf_atom, uint64_t, bool>,
    // Internal: a queued checkout reached its deadline.
    caf::reacts_to<expire_atom, uint64_t>,
    // Internal: the earliest deadline of the queued reads has come.
    caf::reacts_to<expire_atom>,
    // Internal: housekeeping (recycle, idle reaping, leases, min_idle, stats log).
    caf::reacts_to<tick_atom>,
    // Internal: the reconnect backoff elapsed while the server is unreachable.
    caf::reacts_to<retry_atom>,
    // From the database when shutdown_timeout passed: cancel every running statement.
    caf::reacts_to<shutdown_atom>,
    // Internal: the server-full backoff passed; open what the pools need.
    caf::reacts_to<caf::open_atom>>;

/// One client's unit of work (actors/session.cpp).
using session_actor = caf::typed_actor<
    caf::replies_to<exec_atom, statement>::with<result_set>,
    caf::replies_to<transact_atom, std::vector<statement>>::with<std::vector<result_set>>,
    caf::replies_to<exec_many_atom, bulk_statement>::with<result_set>,
    caf::replies_to<begin_atom>::with<caf::ok_atom>,
    caf::replies_to<begin_atom, tx_options>::with<caf::ok_atom>,
    caf::replies_to<commit_atom>::with<caf::ok_atom>,
    caf::replies_to<rollback_atom>::with<caf::ok_atom>,
    caf::replies_to<savepoint_atom, std::string>::with<caf::ok_atom>,
    caf::replies_to<release_atom, std::string>::with<caf::ok_atom>,
    caf::replies_to<rollback_to_atom, std::string>::with<caf::ok_atom>,
    caf::replies_to<caf::close_atom>::with<caf::ok_atom>,
    caf::replies_to<caf::get_atom>::with<session_info>,
    // From its blocking owner, in the same process: what it needs to run the session's
    // autocommit calls in place (null shelf: it never does).
    caf::replies_to<in_place_atom>::with<in_place_access>,
    // From the database's stop: close now if idle, else after the open transaction ends;
    // with `true` (shutdown_timeout passed): roll back and close now.
    caf::reacts_to<shutdown_atom, bool>,
    // From the database: the engine was restarted; use this one from now on.
    caf::reacts_to<engine_atom, engine_actor>,
    // From the engine: the lease was held past lease_timeout and is taken back.
    caf::reacts_to<revoke_atom, uint64_t>,
    // From the database's idle sweep: close if no request came for the idle timeout.
    caf::reacts_to<tick_atom>>;

/// Runs the database's one-shot autocommit `exec` reads without a session
/// (actors/one_shot_reader.cpp): in place on SQLite's reader shelf, on a scheduler
/// thread, or as an engine read on the engine it is given. The database delegates to
/// it, so the answer goes straight to the client.
using one_shot_reader_actor = caf::typed_actor<
    caf::replies_to<exec_atom, statement, session_options, engine_actor>::with<result_set>>;

/// Declared tables, DDL and the catalog (actors/schema.cpp). Every request names the
/// engine to use, so that schema never holds an engine the database has replaced.
using schema_actor = caf::typed_actor<
    // Start-up: create the declared tables (as configured), reflect; publishes `schema`.
    caf::replies_to<prepare_atom, engine_actor>::with<caf::ok_atom>,
    // CREATE TABLE IF NOT EXISTS in dependency order, in one transaction.
    caf::replies_to<create_all_atom, schema_def, engine_actor>::with<caf::ok_atom>,
    // DROP TABLE IF EXISTS in reverse dependency order, in one transaction.
    caf::replies_to<drop_all_atom, schema_def, engine_actor>::with<caf::ok_atom>,
    // The live schema, read from the catalog in one snapshot.
    caf::replies_to<reflect_atom, engine_actor>::with<schema_def>>;

/// Ready-made reads and CRUD answered as JSON text (actors/operations.cpp). Reached
/// through the database, which delegates `op_atom` requests to it.
using operations_actor = caf::typed_actor<
    // Runs one operation. Errors: invalid_argument, not_found and every statement
    // error; with the `json_errors` option they arrive as {"error", "details"} text.
    caf::replies_to<op_atom, operation>::with<std::string>,
    // From the database: DDL ran (create_all, drop_all); read the catalog again.
    caf::reacts_to<caf::reset_atom>>;

/// The start-up sequence (actors/setup.cpp).
// The database replaces setup whenever it restarts an engine, so setup never
// outlives the engines it was given.
using setup_actor = caf::typed_actor<
    // Internal: the backoff timer fired.
    caf::reacts_to<retry_atom>>;

/// The supervisor and the entry point of every application (actors/database.cpp).
using database_actor = caf::typed_actor<
    // Opens a session bound to the sender. Held until ready. Errors: not_ready,
    // pool_overloaded, shutting_down, connect_failed.
    caf::replies_to<caf::open_atom, session_options>::with<session_actor>,
    // One autocommit statement in a throwaway session.
    caf::replies_to<exec_atom, statement, session_options>::with<result_set>,
    // Statements in one transaction, all-or-nothing, in a throwaway session.
    caf::replies_to<transact_atom, std::vector<statement>,
                    session_options>::with<std::vector<result_set>>,
    // One statement run once per row, in one transaction, in a throwaway session.
    caf::replies_to<exec_many_atom, bulk_statement, session_options>::with<result_set>,
    // Subscribes an actor to readiness events; answers the current state at once.
    caf::replies_to<caf::subscribe_atom, caf::actor>::with<readiness_snapshot>,
    // Answers when ready, or `not_ready` after the given time.
    caf::replies_to<await_atom, caf::timespan>::with<readiness_snapshot>,
    caf::replies_to<status_atom>::with<status_report>,
    // Local only: what the blocking client needs to read in place on its own thread.
    caf::replies_to<in_place_atom>::with<in_place_access>,
    // The declared schema (config `schema_file`), or the given one: create / drop.
    caf::replies_to<create_all_atom>::with<caf::ok_atom>,
    caf::replies_to<create_all_atom, schema_def>::with<caf::ok_atom>,
    caf::replies_to<drop_all_atom>::with<caf::ok_atom>,
    caf::replies_to<drop_all_atom, schema_def>::with<caf::ok_atom>,
    // The live schema of the writer's database.
    caf::replies_to<reflect_atom>::with<schema_def>,
    // An operation of docs/operations.md; answers JSON text.
    caf::replies_to<op_atom, operation>::with<std::string>,
    // Introspection: the current engine (for tools and fault tests).
    caf::replies_to<caf::get_atom, engine_atom>::with<engine_actor>,
    // Graceful stop; answers when every child is gone.
    caf::replies_to<stop_atom>::with<caf::ok_atom>,
    // From setup and engines: a component changed state.
    caf::reacts_to<readiness_event>,
    // Internal: a held request (or an await_ready) reached its deadline.
    caf::reacts_to<expire_atom, uint64_t>,
    // Internal, while stopping: shutdown_timeout passed; what still runs is cancelled.
    caf::reacts_to<drain_over_atom>,
    // Internal, while stopping: the cancelled work had connect_timeout; stop now.
    caf::reacts_to<stop_now_atom>,
    // Internal: time to sweep the sessions for idle timeouts.
    caf::reacts_to<tick_atom>>;

} // namespace cafdb

// Handles and structs holding handles get a block of their own: they can only be
// named once the interfaces above exist.
CAF_BEGIN_TYPE_ID_BLOCK(cafdb_handles, caf::id_block::cafdb::end)
CAF_ADD_TYPE_ID(cafdb_handles, (cafdb::connection_actor))
CAF_ADD_TYPE_ID(cafdb_handles, (cafdb::lease))
CAF_ADD_TYPE_ID(cafdb_handles, (cafdb::engine_actor))
CAF_ADD_TYPE_ID(cafdb_handles, (cafdb::session_actor))
CAF_ADD_TYPE_ID(cafdb_handles, (cafdb::schema_actor))
CAF_ADD_TYPE_ID(cafdb_handles, (cafdb::operations_actor))
CAF_ADD_TYPE_ID(cafdb_handles, (cafdb::database_actor))
CAF_END_TYPE_ID_BLOCK(cafdb_handles)
