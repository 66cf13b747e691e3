#include "session/in_place_read.hpp"

#include "backend/driver.hpp"
#include "log.hpp"
#include "pool/in_place_shelf.hpp"

namespace cafdb::in_place {

attempt read(pool::in_place_shelf& shelf, const config& cfg, spdlog::logger& sql_log,
             const statement& stmt, std::chrono::nanoseconds deadline, bool verify,
             bool own_thread) {
  auto lent = shelf.borrow(own_thread ? pool::in_place_shelf::borrower::own_thread
                                      : pool::in_place_shelf::borrower::scheduler);
  if (!lent)
    return {std::nullopt, declined::none_free};
  auto& conn = *lent.handle;
  if (verify && !conn.certainly_reads(stmt.sql)) {
    shelf.give_back_unused(std::move(lent)); // preparing changed nothing
    return {std::nullopt, declined::may_write};
  }
  conn.set_deadline(std::chrono::steady_clock::now() + deadline);
  log::echo(sql_log, cfg, stmt, conn);
  auto rows = conn.execute(stmt);
  conn.set_deadline(std::chrono::steady_clock::time_point::max());
  bool usable =
      rows || (rows.error().code != errc::connection_lost &&
               rows.error().code != errc::unavailable && rows.error().code != errc::internal_error);
  // State is checked, not assumed: a read must leave no transaction open on a
  // connection that the next reader borrows. Such a connection is closed, not lent again.
  if (conn.in_transaction()) {
    usable = false;
    rows = db_error{errc::invalid_argument,
                    "the read left a transaction open (transaction control inside the SQL?); "
                    "nothing it did was kept",
                    "", ""};
  }
  // A connection whose session the read changed (a pragma, a temporary table) is closed
  // too: nothing of one reader reaches the next.
  usable = usable && !conn.session_changed();
  if (!rows && rows.error().code == errc::statement_timeout && conn.stopping())
    rows = db_error{errc::shutting_down,
                    "the database is stopping (shutdown_timeout passed): the read was "
                    "cancelled",
                    rows.error().driver_code, rows.error().driver_message};
  shelf.give_back(std::move(lent), usable);
  return {std::move(rows), declined::none_free};
}

} // namespace cafdb::in_place
