// The session actor's failure paths under CAF's deterministic test coordinator, with
// the engine and the scripted driver: a commit in doubt, a refused statement in a
// transaction, the client dying mid-transaction, a rollback that fails, the database's
// stop while a transaction is open, a lease taken back. Asserted as the answers, the
// driver calls in order, and the pool's counts afterwards; no threads, no sleeps.
#include "actors/session.hpp"
#include "support/coordinator.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

using strings = std::vector<std::string>;

struct session_under_test : coordinator_fixture {
  explicit session_under_test(config c = pool_of(1)) : coordinator_fixture(std::move(c)) {
    connect();
  }

  /// A session whose client is `client` (the test itself when none is given).
  session_actor open(caf::strong_actor_ptr client = nullptr) {
    if (!client)
      client = caf::actor_cast<caf::strong_actor_ptr>(self);
    session_options options;
    options.label = "coordinator";
    return spawn_session(sys, engine, client, options, cfg, false);
  }

  template <class T = caf::ok_atom, class... Ts>
  T ask(const session_actor& s, Ts&&... xs) {
    self->send(s, std::forward<Ts>(xs)...);
    return answer<T>();
  }

  template <class... Ts>
  caf::error refused(const session_actor& s, Ts&&... xs) {
    self->send(s, std::forward<Ts>(xs)...);
    return error_answer();
  }

  session_info info(const session_actor& s) { return ask<session_info>(s, caf::get_atom::value); }

  /// Whether `s` has quit: a monitor of a terminated actor answers at once.
  bool gone(const session_actor& s) {
    self->monitor(s);
    sched.run();
    bool down = false;
    self->receive([&](caf::down_msg&) { down = true; },
                  caf::after(std::chrono::seconds(0)) >> [] {});
    self->demonitor(s.address());
    return down;
  }
};

/// A client actor that does nothing but live until killed. It takes an argument: CAF
/// 0.17 spawns a function without arguments through a null tuple (UBSan reports it).
caf::behavior idle_client(caf::event_based_actor*, int) {
  return {[](int) {}};
}

statement sql(std::string text) {
  return statement{std::move(text), {}};
}

} // namespace

TEST_CASE("coordinator: a session's transaction runs on one lease and commit checks it in clean",
          "[coordinator][session]") {
  session_under_test t;
  auto s = t.open();
  t.ask(s, begin_atom::value);
  CHECK(t.info(s).holds_lease);
  t.ask<result_set>(s, exec_atom::value, sql("UPDATE t SET x = 1"));
  t.ask<result_set>(s, exec_atom::value, sql("UPDATE t SET x = 2"));
  t.ask(s, commit_atom::value);
  CHECK(t.calls() ==
        strings{"open", "begin", "exec UPDATE t SET x = 1", "exec UPDATE t SET x = 2", "commit"});
  auto stats = t.stats();
  CHECK(stats.checkouts == 1); // one lease for the whole transaction
  CHECK(stats.in_use == 0);
  CHECK(stats.idle == 1);
  CHECK(stats.discarded == 0);
  CHECK_FALSE(t.info(s).holds_lease);
}

TEST_CASE("coordinator: a link broken during COMMIT leaves the session in doubt and the "
          "connection discarded",
          "[coordinator][session]") {
  session_under_test t;
  auto s = t.open();
  t.ask(s, begin_atom::value);
  t.ask<result_set>(s, exec_atom::value, sql("UPDATE t SET x = 1"));
  t.script->lose_connection_on_commit = true;
  CHECK(is(t.refused(s, commit_atom::value), errc::commit_in_doubt));
  auto info = t.info(s);
  CHECK(info.phase == session_phase::in_doubt);
  CHECK_FALSE(info.holds_lease);
  auto stats = t.stats();
  CHECK(stats.discarded == 1);
  CHECK(stats.in_use == 0);
  // The next unit of work takes a new connection and ends the in-doubt phase.
  t.script->lose_connection_on_commit = false;
  t.ask(s, begin_atom::value);
  CHECK(t.info(s).phase == session_phase::in_tx);
  CHECK(t.calls() ==
        strings{"open", "begin", "exec UPDATE t SET x = 1", "commit", "open", "begin"});
}

TEST_CASE("coordinator: a refused statement fails the transaction; only rollback reaches the "
          "server, and the connection is kept",
          "[coordinator][session]") {
  session_under_test t;
  auto s = t.open();
  t.script->refuses = "SELEC 1";
  t.ask(s, begin_atom::value);
  CHECK(is(t.refused(s, exec_atom::value, sql("SELEC 1")), errc::syntax_error));
  CHECK(t.info(s).phase == session_phase::failed);
  // Every request but rollback is answered by the session itself.
  CHECK(is(t.refused(s, exec_atom::value, sql("SELECT 2")), errc::transaction_failed));
  CHECK(is(t.refused(s, commit_atom::value), errc::transaction_failed));
  t.ask(s, rollback_atom::value);
  CHECK(t.info(s).phase == session_phase::idle);
  CHECK(t.calls() == strings{"open", "begin", "exec SELEC 1", "rollback"});
  auto stats = t.stats();
  CHECK(stats.discarded == 0);
  CHECK(stats.idle == 1);
  CHECK(stats.opened == 1);
}

TEST_CASE("coordinator: a client that dies mid-transaction gets its transaction rolled back "
          "and the session quits",
          "[coordinator][session]") {
  session_under_test t;
  auto client = t.sys.spawn(idle_client, 0);
  auto s = t.open(caf::actor_cast<caf::strong_actor_ptr>(client));
  t.ask(s, begin_atom::value);
  t.ask<result_set>(s, exec_atom::value, sql("UPDATE t SET x = 1"));
  bool rollback_fails = GENERATE(false, true);
  INFO("the ROLLBACK fails: " << rollback_fails);
  t.script->lose_connection_on_rollback = rollback_fails;
  t.self->send_exit(client, caf::exit_reason::kill);
  t.sched.run();
  CHECK(t.gone(s));
  auto stats = t.stats();
  CHECK(stats.in_use == 0);
  CHECK(stats.idle == 1);
  auto rolled_back = strings{"open", "begin", "exec UPDATE t SET x = 1", "rollback"};
  if (rollback_fails) {
    // Its state unknown, the connection is discarded, never pooled; the pool opens
    // its replacement.
    rolled_back.push_back("open");
    CHECK(stats.discarded == 1);
    CHECK(stats.opened == 2);
  } else {
    CHECK(stats.discarded == 0);
    CHECK(stats.opened == 1);
  }
  CHECK(t.calls() == rolled_back);
}

TEST_CASE("coordinator: a stop while a transaction is open lets it finish; a forced stop rolls "
          "it back",
          "[coordinator][session]") {
  session_under_test t{session_under_test::pool_of(2)};
  auto draining = t.open();
  auto forced = t.open();
  t.ask(draining, begin_atom::value);
  t.ask(forced, begin_atom::value);
  t.self->send(draining, shutdown_atom::value, false);
  t.sched.run();
  // Draining: the client still finishes its transaction, then the session closes.
  t.ask<result_set>(draining, exec_atom::value, sql("UPDATE t SET x = 1"));
  // A begin sent right behind the commit arrives before the session's close: it is
  // refused, not answered ok by a session that is about to quit (found from outside).
  t.self->send(draining, commit_atom::value);
  t.self->send(draining, begin_atom::value);
  t.answer<caf::ok_atom>();
  CHECK(is(t.error_answer(), errc::session_closed));
  CHECK(t.gone(draining));
  // Forced: rolled back at once.
  t.self->send(forced, shutdown_atom::value, true);
  t.sched.run();
  CHECK(t.gone(forced));
  auto calls = t.calls();
  CHECK(std::count(calls.begin(), calls.end(), "commit") == 1);
  CHECK(std::count(calls.begin(), calls.end(), "rollback") == 1);
  CHECK(calls.back() == "rollback");
  auto stats = t.stats();
  CHECK(stats.in_use == 0);
  CHECK(stats.discarded == 0);
}

TEST_CASE("coordinator: a lease taken back fails the transaction; rollback only acknowledges, "
          "and the next transaction gets a lease again",
          "[coordinator][session]") {
  session_under_test t;
  auto s = t.open();
  t.ask(s, begin_atom::value);
  t.ask<result_set>(s, exec_atom::value, sql("UPDATE t SET x = 1"));
  // A revoke of a lease the session does not hold changes nothing. The test does not
  // know the engine's lease ids: it revokes every small id, the session's among them.
  t.self->send(s, revoke_atom::value, uint64_t{1} << 40);
  t.sched.run();
  CHECK(t.info(s).phase == session_phase::in_tx);
  for (uint64_t id = 1; id <= 64; ++id)
    t.self->send(s, revoke_atom::value, id);
  t.sched.run();
  auto info = t.info(s);
  CHECK(info.phase == session_phase::failed);
  CHECK_FALSE(info.holds_lease);
  CHECK(is(t.refused(s, exec_atom::value, sql("SELECT 1")), errc::transaction_failed));
  // The engine rolled the connection back when it came in; the session's rollback only
  // acknowledges: no second ROLLBACK.
  t.ask(s, rollback_atom::value);
  CHECK(t.info(s).phase == session_phase::idle);
  auto calls = t.calls();
  CHECK(std::count(calls.begin(), calls.end(), "rollback") == 1);
  auto stats = t.stats();
  CHECK(stats.in_use == 0);
  CHECK(stats.discarded == 0);
  t.ask(s, begin_atom::value);
  CHECK(t.info(s).holds_lease);
}
