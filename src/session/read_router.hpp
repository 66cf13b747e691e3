// Where a read runs: the one place that decides it, without actors.
//
// A database answers reads on one of three paths:
//
//   in place     a read-only session's autocommit exec on a SQLite file database runs in
//                the session itself, on a reader handle it borrows (read_handles):
//                client -> session -> client. Bounded by the request deadline, and by
//                the handles' capacity: all scheduler threads but one.
//   engine read  a read-only session's autocommit exec otherwise (and when no handle is
//                free): the engine runs it on any connection of its reader pool,
//                batched with other reads that wait at the same time. No lease.
//   leased       everything else (writes, transactions, batches): a lease on one
//                connection, checked out from the engine.
//
// The reader handles and the engine's reader pool serve the same reads in two access
// modes, so `plan` sizes them together: while sessions may block scheduler threads in
// reads in place, reader connections get threads of their own; otherwise up to half
// the scheduler's threads are lent to reader connections.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cafdb/core/config.hpp"
#include "cafdb/core/session_phase.hpp"

namespace cafdb::read_router {

/// How one database serves its reads, decided once from its configuration.
struct read_plan {
  /// Reader handles that sessions may borrow at once to read in place; 0: no reads
  /// in place (PostgreSQL, `:memory:`, or `read_in_place=false`).
  size_t handles = 0;
  /// Reader-pool connections that may run on scheduler threads instead of threads of
  /// their own; 0 when reads in place may already hold those threads.
  size_t lendable_threads = 0;
};

/// The plan for `cfg` on a scheduler of `workers` threads.
read_plan plan(const config& cfg, size_t workers);

enum class read_path : uint8_t { in_place, engine_read, leased };

std::string to_string(read_path x);

/// The path of one exec request of a session: `read_only` session, its `phase`,
/// whether it holds a lease, and whether the database lends reader handles. A session
/// routed in place that finds every handle lent takes the engine read instead.
read_path route(bool read_only, session_phase phase, bool holds_lease, bool handles);

} // namespace cafdb::read_router
