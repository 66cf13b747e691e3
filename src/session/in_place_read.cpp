#include "session/in_place_read.hpp"

#include "backend/driver.hpp"
#include "log.hpp"
#include "pool/in_place_shelf.hpp"

namespace cafdb::in_place {

namespace {

using clock = std::chrono::steady_clock;

bool connection_failed(const db_error& err) {
  return err.code == errc::connection_lost || err.code == errc::unavailable ||
         err.code == errc::internal_error;
}

/// A shared pool's connection gets ready for the call: checked when it sat idle past
/// pre_ping_after (pool_pre_ping), set read-only or not. False: it is not usable.
bool prepare_shared(driver& conn, const config& cfg, clock::time_point idle_since, bool read_only) {
  if (cfg.pool_pre_ping && clock::now() - idle_since >= cfg.pre_ping_after && !conn.ping()) {
    conn.count_ping_failure();
    return false;
  }
  return static_cast<bool>(conn.set_read_only(read_only));
}

} // namespace

std::optional<outcome<result_set>> exec(pool::in_place_shelf& shelf, const config& cfg,
                                        spdlog::logger& sql_log, const statement& stmt,
                                        std::chrono::nanoseconds deadline, how mode,
                                        bool* may_write) {
  // The connection this thread had last on this shelf, if it is free (in_place_shelf::
  // borrow): keys never repeat, so a stale one only finds nothing.
  thread_local std::pair<const pool::in_place_shelf*, uint64_t> last{nullptr, 0};
  auto lent = shelf.borrow(mode.own_thread ? pool::in_place_shelf::borrower::own_thread
                                           : pool::in_place_shelf::borrower::scheduler,
                           last.first == &shelf ? last.second : 0);
  if (!lent)
    return std::nullopt;
  last = {&shelf, lent.key};
  auto& conn = *lent.handle;
  bool shared = shelf.kind() == pool::in_place_shelf::pool_kind::shared;
  if (mode.verify && !conn.certainly_reads(stmt.sql)) {
    shelf.give_back_unused(std::move(lent)); // preparing changed nothing
    if (may_write)
      *may_write = true;
    return std::nullopt;
  }
  if (shared && !prepare_shared(conn, cfg, lent.since, mode.read_only)) {
    // Dead (the server restarted, the link broke): the engine replaces it, and the
    // caller's request takes the engine's path, which finds or opens a live one.
    shelf.give_back(std::move(lent), false);
    return std::nullopt;
  }
  log::echo(sql_log, cfg, stmt, conn);
  auto rows = within_deadline(conn, deadline, false, [&] { return conn.execute(stmt); });
  bool usable = rows || !connection_failed(rows.error());
  // State is checked, not assumed: no transaction may stay open on a connection that
  // the next caller borrows.
  if (usable)
    if (auto mismatch = check_transaction_state(conn, false)) {
      rows = std::move(*mismatch);
      usable = rows.error().code != errc::connection_lost;
    }
  // Nothing of one caller's session reaches the next: a shared pool's connection is
  // reset; a SQLite reader (its pragmas, its temporary objects) is closed instead.
  if (usable && conn.session_changed())
    usable = shared && conn.reset_session();
  if (!rows && rows.error().code == errc::statement_timeout && conn.stopping())
    rows = db_error{errc::shutting_down,
                    "the database is stopping (shutdown_timeout passed): the statement was "
                    "cancelled and nothing it did was kept",
                    rows.error().driver_code, rows.error().driver_message};
  // A statement that may have written, whose answer never came, may have committed.
  if (!rows && connection_failed(rows.error()) && shared && !mode.read_only &&
      may_change_data(stmt.sql, cfg.engine)) {
    auto& err = rows.error();
    rows = db_error{errc::commit_in_doubt,
                    "the connection failed during the statement (" +
                        (err.driver_message.empty() ? err.message : err.driver_message) +
                        "): it may or may not have been applied; check before retrying. The "
                        "connection is discarded",
                    err.driver_code, err.driver_message};
  }
  shelf.give_back(std::move(lent), usable);
  return rows;
}

} // namespace cafdb::in_place
