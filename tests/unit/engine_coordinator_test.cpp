// The engine actor driven step by step by CAF's deterministic test coordinator, with
// the scripted driver: turn-taking between checkouts, the pre-ping retry and the
// reconnect backoff, asserted as the order of answers, the order of driver calls and
// the timers the engine sets. No threads of its own, no sleeps: the coordinator runs
// every message and fires every timer when the test says so.
#include "support/coordinator.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

using engine_under_test = coordinator_fixture;

checkout_request checkout() {
  checkout_request req;
  req.owner = "session 'coordinator'";
  req.revocable = true;
  return req;
}

} // namespace

TEST_CASE("coordinator: a second checkout waits for the first lease and gets its connection",
          "[coordinator]") {
  engine_under_test t{engine_under_test::pool_of(1)};
  t.connect();
  t.self->send(t.engine, checkout_atom::value, checkout());
  auto first = t.answer<lease>();
  t.self->send(t.engine, checkout_atom::value, checkout());
  CHECK_FALSE(t.answered()); // the pool's one connection is leased: the checkout waits
  CHECK(t.stats().waiting == 1);
  t.self->send(t.engine, checkin_atom::value, first.id, connection_condition::clean);
  auto second = t.answer<lease>();
  CHECK(second.connection == first.connection);
  CHECK(second.id != first.id);
  auto s = t.stats();
  CHECK(s.checkouts == 2);
  CHECK(s.in_use == 1);
  CHECK(s.waiting == 0);
  CHECK(s.opened == 1);
  CHECK(t.calls() == std::vector<std::string>{"open"});
}

TEST_CASE("coordinator: a checkout that finds a dead idle connection gets a new one after the "
          "pre-ping",
          "[coordinator]") {
  auto c = engine_under_test::pool_of(1);
  c.pool_pre_ping = true;
  c.pre_ping_after = millis{0};
  engine_under_test t{c};
  t.connect();
  t.script->failing_pings = 1;
  t.self->send(t.engine, checkout_atom::value, checkout());
  auto granted = t.answer<lease>();
  // The idle connection was pinged and found dead, then discarded; its replacement
  // opened and served the waiting checkout.
  CHECK(t.calls() == std::vector<std::string>{"open", "ping", "open"});
  auto s = t.stats();
  CHECK(s.ping_failures == 1);
  CHECK(s.discarded == 1);
  CHECK(s.opened == 2);
  CHECK(s.in_use == 1);
  CHECK(granted.connection);
}

TEST_CASE("coordinator: a lost server takes the engine down, and it reconnects with a doubling "
          "backoff",
          "[coordinator]") {
  engine_under_test t{engine_under_test::pool_of(1)};
  t.connect();
  t.self->send(t.engine, checkout_atom::value, checkout());
  auto held = t.answer<lease>();
  // The connection comes back broken; its replacement cannot reach the server.
  t.script->failing_opens = 2;
  t.self->send(t.engine, checkin_atom::value, held.id, connection_condition::broken);
  t.sched.run();
  // Down: checkouts are refused at once, and the first retry is 100 ms (+-20%) away.
  t.self->send(t.engine, checkout_atom::value, checkout());
  CHECK(is(t.error_answer(), errc::unavailable));
  auto first_wait = t.next_timer();
  CHECK(first_wait >= std::chrono::milliseconds(80));
  CHECK(first_wait <= std::chrono::milliseconds(120));
  // The first retry fails too: the next is twice as far.
  t.sched.trigger_timeout();
  t.sched.run();
  auto second_wait = t.next_timer();
  CHECK(second_wait >= std::chrono::milliseconds(160));
  CHECK(second_wait <= std::chrono::milliseconds(240));
  // The second retry reaches the server: the engine is up and serves checkouts again.
  t.sched.trigger_timeout();
  t.sched.run();
  t.self->send(t.engine, checkout_atom::value, checkout());
  auto again = t.answer<lease>();
  CHECK(again.connection != held.connection);
  auto s = t.stats();
  CHECK(s.reconnects == 1);
  CHECK(s.discarded == 1);
  CHECK(t.calls() == std::vector<std::string>{"open", "open", "open", "open"});
}

namespace {

/// A SQLite engine (the scripted driver stands in for SQLite) whose reader pool has one
/// connection and an in-place shelf for it.
config sqlite_pool_of_one() {
  auto c = must_config("sqlite:///tmp/cafdb-coordinator-never-opened.db");
  c.pool_size = 1;
  c.max_overflow = 0;
  return c;
}

constexpr size_t reader_pool = 1;

/// Runs one read through the engine: the reader pool opens its connection for it, and
/// the pool puts it on the shelf.
void fill_shelf(engine_under_test& t) {
  t.self->send(t.engine, read_atom::value, statement{"SELECT 1"}, caf::timespan{0},
               caf::timespan{std::chrono::seconds(1)});
  t.answer<result_set>();
}

} // namespace

TEST_CASE("coordinator: a shelved connection its borrower found unusable is discarded and "
          "replaced on the shelf",
          "[coordinator]") {
  auto shelf = std::make_shared<pool::in_place_shelf>(1);
  engine_under_test t{sqlite_pool_of_one(), shelf};
  fill_shelf(t);
  REQUIRE(shelf->available() == 1);
  CHECK(t.stats(reader_pool).in_place == 1);
  CHECK(t.stats(reader_pool).idle == 1);
  auto lent = shelf->borrow();
  REQUIRE(lent);
  CHECK(t.stats(reader_pool).in_use == 1);
  shelf->give_back(std::move(lent), false); // tells the engine (shelf_atom)
  t.sched.run();
  auto s = t.stats(reader_pool);
  CHECK(s.discarded == 1);
  CHECK(s.opened == 2); // the replacement, which went on the shelf
  CHECK(s.total == 1);
  CHECK(s.in_place == 1);
  CHECK(shelf->available() == 1);
}

TEST_CASE("coordinator: a checkout on a full pool takes the shelved connection, at once when it "
          "is free and when its borrower gives it back when it is lent",
          "[coordinator]") {
  auto shelf = std::make_shared<pool::in_place_shelf>(1);
  engine_under_test t{sqlite_pool_of_one(), shelf};
  fill_shelf(t);
  auto read_only = checkout();
  read_only.read_only = true;
  // Free on the shelf: taken back for the checkout at once.
  t.self->send(t.engine, checkout_atom::value, read_only);
  auto first = t.answer<lease>();
  CHECK(shelf->available() == 0);
  CHECK(t.stats(reader_pool).in_place == 0);
  t.self->send(t.engine, checkin_atom::value, first.id, connection_condition::clean);
  t.sched.run();
  REQUIRE(shelf->available() == 1); // free again: back on the shelf
  // Lent to a read in place: the checkout waits, and gets the connection when the
  // borrower gives it back (it is recalled, not lent again).
  auto lent = shelf->borrow();
  REQUIRE(lent);
  t.self->send(t.engine, checkout_atom::value, read_only);
  CHECK_FALSE(t.answered());
  shelf->give_back(std::move(lent), true);
  auto second = t.answer<lease>();
  CHECK(second.connection == first.connection);
  CHECK(shelf->available() == 0);
  auto s = t.stats(reader_pool);
  CHECK(s.in_use == 1);
  CHECK(s.opened == 1);
  CHECK(s.timeouts == 0);
}
