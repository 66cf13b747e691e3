// The registry: every atom and message type of the cafdb protocol, in one place.
//
// Adding a message means: a documented struct with `inspect()` in one of the area
// headers, a line here (or in the handle block of interfaces.hpp for actor handles),
// and a row in docs/protocol.md. Types are registered under their qualified names,
// so both ends of a network link agree on them.
#pragma once

#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include "operations.hpp"
#include "pool.hpp"
#include "readiness.hpp"
#include "session.hpp"
#include "values.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(cafdb, caf::first_custom_type_id)

// -- atoms: sessions and statements ------------------------------------------
// Also used, from CAF: open_atom, close_atom, get_atom, subscribe_atom,
// connect_atom, reset_atom, ok_atom.

CAF_ADD_ATOM(cafdb, cafdb, exec_atom, "exec")
CAF_ADD_ATOM(cafdb, cafdb, transact_atom, "transact")
CAF_ADD_ATOM(cafdb, cafdb, exec_many_atom, "execmany")
CAF_ADD_ATOM(cafdb, cafdb, begin_atom, "begin")
CAF_ADD_ATOM(cafdb, cafdb, commit_atom, "commit")
CAF_ADD_ATOM(cafdb, cafdb, rollback_atom, "rollback")
CAF_ADD_ATOM(cafdb, cafdb, savepoint_atom, "savepoint")
CAF_ADD_ATOM(cafdb, cafdb, release_atom, "release")
CAF_ADD_ATOM(cafdb, cafdb, rollback_to_atom, "rollbackto")
CAF_ADD_ATOM(cafdb, cafdb, tx_atom, "tx")

// -- atoms: pool ---------------------------------------------------------------

CAF_ADD_ATOM(cafdb, cafdb, checkout_atom, "checkout")
CAF_ADD_ATOM(cafdb, cafdb, checkin_atom, "checkin")
CAF_ADD_ATOM(cafdb, cafdb, stats_atom, "stats")
CAF_ADD_ATOM(cafdb, cafdb, engine_atom, "engine")
CAF_ADD_ATOM(cafdb, cafdb, ping_atom, "ping")
CAF_ADD_ATOM(cafdb, cafdb, revoke_atom, "revoke")
CAF_ADD_ATOM(cafdb, cafdb, tick_atom, "tick")
CAF_ADD_ATOM(cafdb, cafdb, read_atom, "read")
CAF_ADD_ATOM(cafdb, cafdb, shelf_atom, "shelf")

// -- atoms: lifecycle and readiness ------------------------------------------

CAF_ADD_ATOM(cafdb, cafdb, await_atom, "await")
CAF_ADD_ATOM(cafdb, cafdb, status_atom, "status")
CAF_ADD_ATOM(cafdb, cafdb, in_place_atom, "inplace")
CAF_ADD_ATOM(cafdb, cafdb, stop_atom, "stop")
CAF_ADD_ATOM(cafdb, cafdb, shutdown_atom, "shutdown")
CAF_ADD_ATOM(cafdb, cafdb, retry_atom, "retry")
CAF_ADD_ATOM(cafdb, cafdb, expire_atom, "expire")
CAF_ADD_ATOM(cafdb, cafdb, drain_over_atom, "drainover")
CAF_ADD_ATOM(cafdb, cafdb, stop_now_atom, "stopnow")

// -- atoms: schema -----------------------------------------------------------------

CAF_ADD_ATOM(cafdb, cafdb, create_all_atom, "createall")
CAF_ADD_ATOM(cafdb, cafdb, drop_all_atom, "dropall")
CAF_ADD_ATOM(cafdb, cafdb, reflect_atom, "reflect")
CAF_ADD_ATOM(cafdb, cafdb, prepare_atom, "prepare")

// -- atoms: operations ------------------------------------------------------------

CAF_ADD_ATOM(cafdb, cafdb, op_atom, "op")

// -- values ----------------------------------------------------------------------

CAF_ADD_TYPE_ID(cafdb, (cafdb::value))
CAF_ADD_TYPE_ID(cafdb, (cafdb::statement))
CAF_ADD_TYPE_ID(cafdb, (std::vector<cafdb::statement>))
CAF_ADD_TYPE_ID(cafdb, (cafdb::bulk_statement))
CAF_ADD_TYPE_ID(cafdb, (cafdb::result_set))
CAF_ADD_TYPE_ID(cafdb, (std::vector<cafdb::result_set>))

// -- sessions --------------------------------------------------------------------

CAF_ADD_TYPE_ID(cafdb, (cafdb::session_options))
CAF_ADD_TYPE_ID(cafdb, (cafdb::session_info))
CAF_ADD_TYPE_ID(cafdb, (cafdb::tx_command))
CAF_ADD_TYPE_ID(cafdb, (cafdb::isolation_level))
CAF_ADD_TYPE_ID(cafdb, (cafdb::sqlite_lock))
CAF_ADD_TYPE_ID(cafdb, (cafdb::tx_options))

// -- pool ------------------------------------------------------------------------

CAF_ADD_TYPE_ID(cafdb, (cafdb::checkout_request))
CAF_ADD_TYPE_ID(cafdb, (cafdb::connection_condition))
CAF_ADD_TYPE_ID(cafdb, (cafdb::exec_request))
CAF_ADD_TYPE_ID(cafdb, (cafdb::read_outcome))
CAF_ADD_TYPE_ID(cafdb, (std::vector<cafdb::read_outcome>))
CAF_ADD_TYPE_ID(cafdb, (cafdb::pool_stats))
CAF_ADD_TYPE_ID(cafdb, (std::vector<cafdb::pool_stats>))

// -- readiness -------------------------------------------------------------------

CAF_ADD_TYPE_ID(cafdb, (cafdb::readiness_event))
CAF_ADD_TYPE_ID(cafdb, (cafdb::readiness_snapshot))
CAF_ADD_TYPE_ID(cafdb, (cafdb::status_report))

// -- schema ------------------------------------------------------------------------

CAF_ADD_TYPE_ID(cafdb, (cafdb::column_type))
CAF_ADD_TYPE_ID(cafdb, (cafdb::on_delete_action))
CAF_ADD_TYPE_ID(cafdb, (cafdb::column_def))
CAF_ADD_TYPE_ID(cafdb, (cafdb::foreign_key_def))
CAF_ADD_TYPE_ID(cafdb, (cafdb::index_def))
CAF_ADD_TYPE_ID(cafdb, (cafdb::table_def))
CAF_ADD_TYPE_ID(cafdb, (cafdb::schema_def))

// -- operations --------------------------------------------------------------------

CAF_ADD_TYPE_ID(cafdb, (cafdb::op_kind))
CAF_ADD_TYPE_ID(cafdb, (cafdb::operation))

CAF_END_TYPE_ID_BLOCK(cafdb)
