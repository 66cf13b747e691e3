// The one-shot reader: runs the database's one-shot autocommit `exec` reads with no
// session: in place on SQLite's reader shelf, or as an engine read.
//
// A one-shot `exec` spawned a session per request: a spawn, two monitors, and an actor's
// teardown, which wakes CAF's clock thread, all for a read of a few microseconds (a
// quarter of the CPU of a one-shot read went to waking threads). The database keeps
// readers that live as long as it does, each handed a request only when free: on
// SQLite one per scheduler thread a read in place may block (the shelf's
// scheduler_limit); on PostgreSQL one per pooled connection, each on a thread of its
// own, running any autocommit statement on the shared shelf as a blocking client does
// (client → database → reader → client instead of six hops through an engine and a
// connection). With a read replica (no shelf) a few readers that never block take
// read-only requests in turn and pass them to the engine.
//
//   free ── the database hands it a request (busy = true) ──► running in place
//     ▲                                                          │
//     │                                   ran: the answer goes to the client
//     └──────────── busy = false ◄───────────────────────────────┤
//                                         did not run in place:
//                                         ├ a read-only request the engine may read
//                                         │ (as a read-only session's: no setting, no
//                                         │ escape): sent to the engine, whose answer
//                                         │ goes to the client (the reader is free
//                                         │ meanwhile)
//                                         └ anything else (it may write, change a
//                                           setting, hold a NUL): back to the
//                                           database, which answers it through a
//                                           one-shot session
//
// Invariants:
// 1. At most one read in place at a time: the database hands a request to a reader of
//    the shelf only when it is free, so no request waits behind another's read.
// 2. A read runs under a session's rules: in place, in_place::exec with verify (SQLite's
//    prepared statement says it writes nothing and changes no setting; read-only as
//    asked), or on PostgreSQL the text checks of a session and the blocking client's
//    handling (read-only set as asked, session reset, commit_in_doubt), within the
//    session's request deadline; on the engine, the checks and the
//    path of a read-only session's autocommit exec (read_router::route). Anything else
//    goes the session's way, and is answered as a session answers it.
// 3. The only blocking is the statement in place: bounded by its deadline, and on
//    SQLite by the shelf's scheduler_limit (a read in place never takes the last
//    scheduler thread); PostgreSQL's readers block threads of their own only.
// 4. `in_flight` counts the engine reads not yet answered: the database's stop waits
//    for them as it waits for sessions, so a graceful stop answers them with their rows.
#include "actors/one_shot_reader.hpp"

#include <optional>
#include <string>

#include <caf/all.hpp>

#include "actors/session.hpp"
#include "cafdb/error.hpp"
#include "log.hpp"
#include "pool/in_place_shelf.hpp"
#include "session/in_place_read.hpp"
#include "session/read_router.hpp"
#include "sql_text.hpp"
#include "timeouts.hpp"

namespace cafdb {

namespace {

struct one_shot_reader_state {
  static inline const char* name = "cafdb.one_shot_reader";
};

using reader_pointer = one_shot_reader_actor::stateful_pointer<one_shot_reader_state>;

/// Runs `stmt` in place. On SQLite's reader shelf only what the prepared statement says
/// changes nothing runs; on PostgreSQL's shared shelf any autocommit statement the text
/// checks let through, on the reader's own thread (as a blocking client's call).
std::optional<outcome<result_set>> run_in_place(pool::in_place_shelf& shelf, const config& cfg,
                                                spdlog::logger& sql_log, const statement& stmt,
                                                const session_options& options) {
  bool shared = shelf.kind() == pool::in_place_shelf::pool_kind::shared;
  if (shared) {
    if (auto refused = refused_sql_here(stmt.sql, cfg.engine, options.read_only))
      return outcome<result_set>{std::move(*refused)};
  } else if (stmt.sql.find('\0') != std::string::npos) {
    return std::nullopt; // the session refuses it, and says why
  }
  return in_place::exec(shelf, cfg, sql_log, stmt, request_deadline(options.request_timeout, cfg),
                        in_place::how{!shared, options.read_only, shared});
}

/// Whether a read-only session would send this autocommit exec to the engine (not
/// refused, changes no setting): the reader then may too.
bool engine_may_read(const statement& stmt, const session_options& options, const config& cfg) {
  read_router::read_request request;
  request.read_only = options.read_only;
  request.changes_session = session_changes_here(stmt.sql, cfg.engine) != 0;
  return read_router::route(request, false) == read_router::read_path::engine_read;
}

one_shot_reader_actor::behavior_type
one_shot_reader_behavior(reader_pointer self, caf::actor_addr db,
                         std::shared_ptr<pool::in_place_shelf> shelf,
                         std::shared_ptr<const config> cfg, std::shared_ptr<std::atomic<bool>> busy,
                         std::shared_ptr<std::atomic<size_t>> in_flight) {
  auto sql_log = log::get("sql");
  return {
      [=](exec_atom atom, statement& stmt, session_options& options,
          engine_actor& engine) -> caf::result<result_set> {
        auto rows = shelf ? run_in_place(*shelf, *cfg, *sql_log, stmt, options) : std::nullopt;
        // Free for the next request: what is left below never blocks.
        busy->store(false, std::memory_order_release);
        if (rows) {
          if (*rows)
            return std::move(**rows);
          return to_caf_error(std::move(rows->error()));
        }
        if (options.read_only) {
          if (auto refused = refused_sql_here(stmt.sql, cfg->engine, true))
            return to_caf_error(std::move(*refused));
          if (engine && engine_may_read(stmt, options, *cfg)) {
            auto rp = self->make_response_promise<result_set>();
            in_flight->fetch_add(1, std::memory_order_relaxed);
            // No timer of our own, as a session's read: the engine answers every read.
            self->request(engine, caf::duration{caf::infinite}, read_atom::value, std::move(stmt),
                          checkout_wait_of(options, *cfg),
                          request_deadline(options.request_timeout, *cfg))
                .then(
                    [=](result_set& answer) mutable {
                      in_flight->fetch_sub(1, std::memory_order_release);
                      rp.deliver(std::move(answer));
                    },
                    [=](caf::error& err) mutable {
                      in_flight->fetch_sub(1, std::memory_order_release);
                      rp.deliver(explain_engine_failure(std::move(err), "a read"));
                    });
            return rp;
          }
        }
        auto target = caf::actor_cast<database_actor>(db);
        if (!target)
          return make_error(errc::shutting_down, "the database is stopping and takes no new work");
        auto rp = self->make_response_promise<result_set>();
        self->request(target, caf::duration{caf::infinite}, atom, std::move(stmt),
                      std::move(options))
            .then([rp](result_set& answer) mutable { rp.deliver(std::move(answer)); },
                  [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
  };
}

} // namespace

one_shot_reader_actor spawn_one_shot_reader(caf::actor_system& sys, caf::actor_addr db,
                                            std::shared_ptr<pool::in_place_shelf> shelf,
                                            std::shared_ptr<const config> cfg,
                                            std::shared_ptr<std::atomic<bool>> busy,
                                            std::shared_ptr<std::atomic<size_t>> in_flight) {
  // On PostgreSQL's shared shelf a read in place waits on the network: the reader gets a
  // thread of its own, as a connection does, and never holds a scheduler thread.
  if (shelf && shelf->kind() == pool::in_place_shelf::pool_kind::shared)
    return sys.spawn<caf::detached>(one_shot_reader_behavior, std::move(db), std::move(shelf),
                                    std::move(cfg), std::move(busy), std::move(in_flight));
  return sys.spawn(one_shot_reader_behavior, std::move(db), std::move(shelf), std::move(cfg),
                   std::move(busy), std::move(in_flight));
}

} // namespace cafdb
