// The one-shot reader: runs the database's one-shot autocommit `exec` requests in place
// on SQLite's reader shelf, with no session.
//
// A one-shot `exec` spawned a session per request: a spawn, two monitors, and an actor's
// teardown, which wakes CAF's clock thread, all for a read of a few microseconds (a
// quarter of the CPU of a one-shot read went to waking threads). The database keeps one
// reader per scheduler thread a read in place may block (the shelf's scheduler_limit)
// and hands a request only to a free one.
//
//   free ── the database hands it a request (busy = true) ──► running in place
//     ▲                                                          │
//     │                                   ran: the answer goes to the client
//     └──────────── busy = false ◄───────────────────────────────┤
//                                         did not run (no connection free on the
//                                         shelf, it may write or change a setting,
//                                         a NUL): back to the database, which
//                                         answers it through a one-shot session
//
// Invariants:
// 1. At most one request at a time: the database hands one only to a free reader, so
//    no request waits behind another's read.
// 2. A read runs under a session's rules (in_place::exec with verify: SQLite's prepared
//    statement says it writes nothing and changes no setting; read-only as asked) and
//    within the session's request deadline. Anything else goes the session's way, and
//    is answered as a session answers it.
// 3. The only blocking is the read: bounded by its deadline, and by the shelf's
//    scheduler_limit (a read in place never takes the last scheduler thread).
#include "actors/one_shot_reader.hpp"

#include <optional>
#include <string>

#include <caf/all.hpp>

#include "cafdb/error.hpp"
#include "log.hpp"
#include "pool/in_place_shelf.hpp"
#include "session/in_place_read.hpp"
#include "timeouts.hpp"

namespace cafdb {

namespace {

struct one_shot_reader_state {
  static inline const char* name = "cafdb.one_shot_reader";
};

using reader_pointer = one_shot_reader_actor::stateful_pointer<one_shot_reader_state>;

std::optional<outcome<result_set>> run_in_place(pool::in_place_shelf& shelf, const config& cfg,
                                                spdlog::logger& sql_log, const statement& stmt,
                                                const session_options& options) {
  if (stmt.sql.find('\0') != std::string::npos)
    return std::nullopt; // the session refuses it, and says why
  return in_place::exec(shelf, cfg, sql_log, stmt, request_deadline(options.request_timeout, cfg),
                        in_place::how{true, options.read_only, false});
}

one_shot_reader_actor::behavior_type one_shot_reader_behavior(
    reader_pointer self, caf::actor_addr db, std::shared_ptr<pool::in_place_shelf> shelf,
    std::shared_ptr<const config> cfg, std::shared_ptr<std::atomic<bool>> busy) {
  auto sql_log = log::get("sql");
  return {
      [=](exec_atom atom, statement& stmt, session_options& options) -> caf::result<result_set> {
        auto rows = run_in_place(*shelf, *cfg, *sql_log, stmt, options);
        // Free for the next request: what is left below never blocks.
        busy->store(false, std::memory_order_release);
        if (rows) {
          if (*rows)
            return std::move(**rows);
          return to_caf_error(std::move(rows->error()));
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
                                            std::shared_ptr<std::atomic<bool>> busy) {
  return sys.spawn(one_shot_reader_behavior, std::move(db), std::move(shelf), std::move(cfg),
                   std::move(busy));
}

} // namespace cafdb
