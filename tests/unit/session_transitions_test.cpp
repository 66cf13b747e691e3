// The session's transition table without actors: which requests each phase admits,
// every (phase, request, outcome) and every happening, and the facts that must hold
// for all of them.
#include <catch2/catch.hpp>

#include "session/read_router.hpp"
#include "session/transitions.hpp"
#include "support/fixture.hpp"

using cafdb::errc;
using cafdb::session_phase;
using namespace cafdb::session_model;

namespace {

const session_phase all_phases[] = {session_phase::idle, session_phase::in_tx,
                                    session_phase::failed, session_phase::in_doubt,
                                    session_phase::closed};
const request all_requests[] = {request::begin,  request::commit,      request::rollback,
                                request::nested, request::rollback_to, request::statement,
                                request::batch};
const outcome all_outcomes[] = {outcome::ok, outcome::refused, outcome::lost, outcome::in_doubt,
                                outcome::rolled_back};

bool open(session_phase phase) {
  return phase == session_phase::in_tx || phase == session_phase::failed;
}

} // namespace

TEST_CASE("session transitions: what each phase admits", "[session_model]") {
  struct row {
    session_phase phase;
    request req;
    bool holds_lease;
    std::optional<errc> refused;
  };
  const row rows[] = {
      {session_phase::idle, request::begin, false, std::nullopt},
      {session_phase::idle, request::commit, false, errc::invalid_argument},
      {session_phase::idle, request::rollback, false, std::nullopt}, // a no-op
      {session_phase::idle, request::nested, false, errc::invalid_argument},
      {session_phase::idle, request::rollback_to, false, errc::invalid_argument},
      {session_phase::idle, request::statement, false, std::nullopt},
      {session_phase::idle, request::batch, false, std::nullopt},
      {session_phase::in_tx, request::begin, true, errc::invalid_argument},
      {session_phase::in_tx, request::commit, true, std::nullopt},
      {session_phase::in_tx, request::nested, true, std::nullopt},
      {session_phase::in_tx, request::rollback_to, true, std::nullopt},
      {session_phase::in_tx, request::statement, true, std::nullopt},
      {session_phase::failed, request::statement, true, errc::transaction_failed},
      {session_phase::failed, request::batch, true, errc::transaction_failed},
      {session_phase::failed, request::commit, true, errc::transaction_failed},
      {session_phase::failed, request::begin, true, errc::transaction_failed},
      {session_phase::failed, request::rollback, true, std::nullopt},
      {session_phase::failed, request::rollback, false, std::nullopt},
      {session_phase::failed, request::rollback_to, true, std::nullopt},
      {session_phase::failed, request::rollback_to, false, errc::transaction_failed},
      {session_phase::in_doubt, request::begin, false, std::nullopt},
      {session_phase::in_doubt, request::statement, false, std::nullopt},
      {session_phase::in_doubt, request::commit, false, errc::invalid_argument},
      {session_phase::in_doubt, request::rollback, false, std::nullopt}, // acknowledges
  };
  for (auto& r : rows) {
    INFO(to_string(r.phase) << " " << to_string(r.req) << " lease " << r.holds_lease);
    auto no = admit(r.phase, r.req, r.holds_lease);
    REQUIRE(no.has_value() == r.refused.has_value());
    if (no) {
      CHECK(no->code == *r.refused);
      CHECK_FALSE(no->message.empty());
    }
  }
  for (auto req : all_requests) {
    auto no = admit(session_phase::closed, req, false);
    REQUIRE(no);
    CHECK(no->code == errc::session_closed);
  }
}

TEST_CASE("session transitions: a rollback needs the server only for an open transaction on "
          "a held connection",
          "[session_model]") {
  CHECK(needs_server(session_phase::in_tx, request::rollback, true));
  CHECK(needs_server(session_phase::failed, request::rollback, true));
  CHECK_FALSE(needs_server(session_phase::failed, request::rollback, false));
  CHECK_FALSE(needs_server(session_phase::idle, request::rollback, false));
  CHECK_FALSE(needs_server(session_phase::in_doubt, request::rollback, false));
  CHECK(needs_server(session_phase::idle, request::statement, false));
}

TEST_CASE("session transitions: the table", "[session_model]") {
  using p = session_phase;
  using a = lease_action;
  struct row {
    p from;
    request req;
    outcome result;
    p to;
    a lease;
  };
  const row rows[] = {
      // begin
      {p::idle, request::begin, outcome::ok, p::in_tx, a::keep},
      {p::idle, request::begin, outcome::refused, p::idle, a::give_back_rollback},
      {p::idle, request::begin, outcome::lost, p::idle, a::give_back_unknown},
      {p::in_doubt, request::begin, outcome::ok, p::in_tx, a::keep},
      // commit
      {p::in_tx, request::commit, outcome::ok, p::idle, a::give_back_clean},
      {p::in_tx, request::commit, outcome::refused, p::failed, a::keep},
      {p::in_tx, request::commit, outcome::lost, p::in_doubt, a::give_back_unknown},
      {p::in_tx, request::commit, outcome::in_doubt, p::in_doubt, a::give_back_unknown},
      // rollback
      {p::in_tx, request::rollback, outcome::ok, p::idle, a::give_back_clean},
      {p::failed, request::rollback, outcome::ok, p::idle, a::give_back_clean},
      {p::failed, request::rollback, outcome::refused, p::idle, a::give_back_unknown},
      {p::in_tx, request::rollback, outcome::lost, p::idle, a::give_back_unknown},
      {p::in_doubt, request::rollback, outcome::ok, p::idle, a::give_back_clean},
      // savepoint / release / rollback_to
      {p::in_tx, request::nested, outcome::ok, p::in_tx, a::keep},
      {p::in_tx, request::nested, outcome::refused, p::failed, a::keep},
      {p::in_tx, request::nested, outcome::lost, p::failed, a::give_back_unknown},
      {p::failed, request::rollback_to, outcome::ok, p::in_tx, a::keep},
      {p::failed, request::rollback_to, outcome::refused, p::failed, a::keep},
      {p::failed, request::rollback_to, outcome::lost, p::failed, a::give_back_unknown},
      // a statement
      {p::idle, request::statement, outcome::ok, p::idle, a::give_back_clean},
      {p::idle, request::statement, outcome::refused, p::idle, a::give_back_clean},
      {p::idle, request::statement, outcome::lost, p::idle, a::give_back_unknown},
      {p::idle, request::statement, outcome::in_doubt, p::in_doubt, a::give_back_unknown},
      {p::in_doubt, request::statement, outcome::ok, p::idle, a::give_back_clean},
      {p::in_tx, request::statement, outcome::ok, p::in_tx, a::keep},
      {p::in_tx, request::statement, outcome::refused, p::failed, a::keep},
      {p::in_tx, request::statement, outcome::lost, p::failed, a::give_back_unknown},
      {p::in_tx, request::statement, outcome::in_doubt, p::in_doubt, a::give_back_unknown},
      // transact / exec_many: atomic on their own
      {p::idle, request::batch, outcome::ok, p::idle, a::give_back_clean},
      {p::idle, request::batch, outcome::refused, p::idle, a::give_back_clean},
      {p::idle, request::batch, outcome::in_doubt, p::in_doubt, a::give_back_unknown},
      {p::in_tx, request::batch, outcome::ok, p::in_tx, a::keep},
      {p::in_tx, request::batch, outcome::refused, p::in_tx, a::keep},
      {p::in_tx, request::batch, outcome::lost, p::failed, a::give_back_unknown},
  };
  for (auto& r : rows) {
    INFO(to_string(r.from) << " + " << to_string(r.req) << " " << to_string(r.result));
    auto t = next(r.from, r.req, r.result);
    CHECK(t.phase == r.to);
    CHECK(to_string(t.lease) == std::string{to_string(r.lease)});
  }
}

TEST_CASE("session transitions: facts that hold for every admitted request and outcome",
          "[session_model]") {
  int walked = 0;
  for (auto from : all_phases)
    for (auto req : all_requests)
      for (auto result : all_outcomes) {
        if (admit(from, req, open(from)))
          continue; // never runs
        INFO(to_string(from) << " + " << to_string(req) << " " << to_string(result));
        auto t = next(from, req, result);
        walked += 1;
        CHECK(std::string{t.reason}.size() > 0);
        // An answer in doubt is kept as the session's state (libpqxx keeps in_doubt_error
        // as the transaction's), with nothing open and no lease.
        if (result == outcome::in_doubt)
          CHECK(t.phase == session_phase::in_doubt);
        // Phases that hold no lease never keep one.
        if (t.phase == session_phase::idle || t.phase == session_phase::in_doubt ||
            t.phase == session_phase::closed)
          CHECK(t.lease != lease_action::keep);
        // in_tx always holds its lease.
        if (t.phase == session_phase::in_tx)
          CHECK(t.lease == lease_action::keep);
        // Savepoints end with the transaction.
        if (!open(t.phase) && open(from))
          CHECK(t.clear_savepoints);
        // Nothing leaves a transaction silently for autocommit: from in_tx, only a
        // commit, a rollback or an answer in doubt end it.
        if (from == session_phase::in_tx && !open(t.phase))
          CHECK(
              (req == request::commit || req == request::rollback || result == outcome::in_doubt));
        // A connection in an unknown state is never kept.
        if (result == outcome::lost || result == outcome::in_doubt)
          CHECK(t.lease != lease_action::keep);
        // A transaction the database rolled back is over: failed, without its
        // savepoints or its lease, so that nothing after it commits on its own.
        if (result == outcome::rolled_back && open(from)) {
          CHECK(t.phase == session_phase::failed);
          CHECK(t.clear_savepoints);
          CHECK(t.lease == lease_action::give_back_rollback);
        }
      }
  CHECK(walked > 40);
}

TEST_CASE("session transitions: happenings", "[session_model]") {
  auto t = next(session_phase::in_tx, happening::lease_revoked);
  CHECK(t.phase == session_phase::failed);
  CHECK(t.lease == lease_action::give_back_rollback);
  CHECK(next(session_phase::idle, happening::lease_revoked).phase == session_phase::idle);
  t = next(session_phase::failed, happening::engine_replaced);
  CHECK(t.phase == session_phase::failed);
  CHECK(t.lease == lease_action::forget);
  CHECK(next(session_phase::idle, happening::engine_replaced).phase == session_phase::idle);
  for (auto from : all_phases) {
    t = next(from, happening::closed);
    CHECK(t.phase == session_phase::closed);
    CHECK(t.clear_savepoints);
  }
  CHECK(to_string(session_phase::in_doubt) == "in_doubt");
}

// The read router: which path each exec takes, and how the reads of a database are
// planned from its configuration.
TEST_CASE("read router: an autocommit exec reads in place; a read-write session's only if "
          "it reads",
          "[session_model]") {
  using cafdb::read_router::read_path;
  using cafdb::read_router::read_request;
  using cafdb::read_router::route;
  for (auto phase : all_phases) {
    INFO(to_string(phase));
    // A read-write session leases, unless SQLite's reader connection finds that its
    // autocommit statement changes nothing.
    CHECK(route(read_request{false, phase, false, false}, false) == read_path::leased);
    CHECK(route(read_request{false, phase, true, false}, true) == read_path::leased);
    CHECK(route(read_request{false, phase, false, true}, true) == read_path::leased);
    CHECK(route(read_request{false, phase, false, false}, true) ==
          (open(phase) ? read_path::leased : read_path::in_place_if_read));
    // A lease held (a transaction) keeps the read on its connection.
    CHECK(route(read_request{true, phase, true, false}, true) == read_path::leased);
    // A read that changes its connection's session gets a connection of its own: in
    // place or batched, it would reach the next reader.
    CHECK(route(read_request{true, phase, false, true}, true) == read_path::leased);
    CHECK(route(read_request{true, phase, false, true}, false) == read_path::leased);
    if (open(phase)) {
      CHECK(route(read_request{true, phase, false, false}, true) == read_path::leased);
    } else {
      CHECK(route(read_request{true, phase, false, false}, true) == read_path::in_place);
      CHECK(route(read_request{true, phase, false, false}, false) == read_path::engine_read);
    }
  }
  CHECK(to_string(read_path::engine_read) == "engine_read");
  CHECK(to_string(read_path::in_place_if_read) == "in_place_if_read");
}

TEST_CASE("read router: reads in place and lent scheduler threads exclude each other",
          "[session_model]") {
  using cafdb::read_router::plan;
  auto file = cafdb::test::must_config("sqlite:///tmp/cafdb-router-test.db");
  // Reads in place: all scheduler threads but one, none lent to reader connections.
  // Every reader connection may sit on the shelf; sessions may hold all scheduler
  // threads but one.
  file.pool_size = 10;
  file.max_overflow = 2;
  auto in_place = plan(file, 8);
  CHECK(in_place.shelf == 12);
  CHECK(in_place.scheduler_borrowers == 7);
  CHECK(in_place.lendable_threads == 0);
  // With one scheduler thread there is none to spare for reads in place.
  CHECK(plan(file, 1).shelf == 0);
  CHECK(plan(file, 1).scheduler_borrowers == 0);
  CHECK(plan(file, 2).scheduler_borrowers == 1);
  // The shelf holds connections of the reader pool: never more than its max.
  file.pool_size = 2;
  file.max_overflow = 1;
  CHECK(plan(file, 8).shelf == 3);
  CHECK(plan(file, 8).scheduler_borrowers == 3);
  // Without: half the threads may run reader connections.
  file.read_in_place = false;
  auto pooled = plan(file, 8);
  CHECK(pooled.shelf == 0);
  CHECK(pooled.lendable_threads == 4);
  // :memory: neither reads in place nor lends threads.
  auto memory = plan(cafdb::test::must_config("sqlite::memory:"), 8);
  CHECK(memory.shelf == 0);
  CHECK(memory.lendable_threads == 0);
  // PostgreSQL: the one pool's every connection may sit on the shelf, for blocking
  // clients only (no session blocks a scheduler thread on the network); none with a
  // read replica (read-only calls belong to it) or with read_in_place off.
  auto pg = cafdb::test::must_config("postgresql://u@127.0.0.1:1/db");
  pg.pool_size = 8;
  pg.max_overflow = 2;
  auto shared = plan(pg, 8);
  CHECK(shared.shelf == 10);
  CHECK(shared.shared_pool);
  CHECK(shared.scheduler_borrowers == 0);
  CHECK(shared.lendable_threads == 0);
  CHECK(plan(pg, 1).shelf == 10);
  auto replica = pg;
  replica.read_url = "postgresql://u@127.0.0.1:2/db";
  CHECK(plan(replica, 8).shelf == 0);
  pg.read_in_place = false;
  CHECK(plan(pg, 8).shelf == 0);
}
