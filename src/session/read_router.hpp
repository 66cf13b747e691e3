// Where a read runs: the one place that decides it, without actors.
//
// A database answers reads on one of three paths:
//
//   in place     a read-only session's autocommit exec on a SQLite file database runs in
//                the session itself, on a connection of the reader pool that it borrows
//                from the pool's shelf (pool/in_place_shelf.hpp): client -> session ->
//                client. Bounded by the request deadline, and by the shelf's size: all
//                scheduler threads but one, and never more than the pool's max.
//   in place if it reads
//                a read-write session's autocommit exec (one-shot exec included) on a
//                SQLite file database: it borrows a reader connection from the shelf,
//                and SQLite says whether the prepared statement changes nothing
//                (sqlite3_stmt_readonly). If it does, it reads in place like the above,
//                on a reader connection, which sees every commit before it (WAL);
//                if not, or if no connection is free on the shelf, it is leased on the
//                writer: a statement that may write never waits behind readers, nor
//                runs inside the reader pool's batches (VACUUM cannot). The reader pool
//                opens one shelf connection at start for that reason.
//   engine read  a read-only session's autocommit exec otherwise (and when no handle is
//                free): the engine runs it on any connection of its reader pool,
//                batched with other reads that wait at the same time. No lease.
//   leased       everything else (writes, transactions, batches): a lease on one
//                connection, checked out from the engine.
//
// Reading in place and the engine's reads are two access modes of one reader pool, so
// `plan` sizes them together: while sessions may block scheduler threads in reads in
// place, reader connections get threads of their own; otherwise up to half the
// scheduler's threads are lent to reader connections.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cafdb/core/config.hpp"
#include "cafdb/core/session_phase.hpp"

namespace cafdb::read_router {

/// How one database serves its reads, decided once from its configuration.
struct read_plan {
  /// Connections that the pool puts on its shelf to be borrowed for statements in
  /// place; 0: none (`:memory:`, a PostgreSQL read replica, or `read_in_place=false`).
  size_t shelf = 0;
  /// Of those, how many sessions may hold at once: each blocks a scheduler thread.
  /// Blocking clients read on their own threads and may borrow every one.
  size_t scheduler_borrowers = 0;
  /// Reader-pool connections that may run on scheduler threads instead of threads of
  /// their own; 0 when reads in place may already hold those threads.
  size_t lendable_threads = 0;
  /// PostgreSQL: the shelf belongs to the one pool that runs everything, and only
  /// blocking clients borrow from it (a session would block a scheduler thread on the
  /// network). A borrower runs any autocommit statement there, reads and writes, as a
  /// caller of a classic pool does; the shelf fills once the first one asks.
  bool shared_pool = false;
};

/// The plan for `cfg` on a scheduler of `workers` threads.
read_plan plan(const config& cfg, size_t workers);

enum class read_path : uint8_t { in_place, in_place_if_read, engine_read, leased };

std::string to_string(read_path x);

/// One exec request of a session, as the router sees it.
struct read_request {
  bool read_only = false;
  session_phase phase = session_phase::idle;
  bool holds_lease = false;
  /// The SQL changes the connection's session (a setting, a pragma, a temporary
  /// object, ATTACH: session_changes in sql_text.hpp).
  bool changes_session = false;
};

/// The path of one exec request; `shelf`: its reader pool has an in-place shelf. A
/// session routed in place that finds no connection on the shelf takes the engine read
/// instead; one routed in place if it reads takes the lease instead, as it does when
/// its statement may write.
read_path route(const read_request& request, bool shelf);

} // namespace cafdb::read_router
