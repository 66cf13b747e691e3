// Conformance: readiness and supervision on every engine. A real slow start (the
// database appears only after start-up began: a file on SQLite, a database on
// PostgreSQL), subscribers, await_ready, requests held until ready, graceful stop,
// engine restarts.
#include "support/backends.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

// A database that does not exist yet: setup keeps retrying until `create()`.
template <class Backend>
struct late_start : with_temp_dir {
  typename Backend::late_database late{dir};
  config waiting_config(std::chrono::milliseconds setup_timeout) const {
    auto cfg = late.make_config();
    cfg.setup_timeout = setup_timeout;
    return cfg;
  }
};

template <class Backend>
struct fresh_dir : with_temp_dir {};

template <class Backend>
struct ready_database : with_temp_dir, database_fixture {
  ready_database() : database_fixture(Backend::make_config(dir)) { require_ready(); }
};

// Receives readiness events until `component` reaches `state` (or 10 s pass).
bool wait_for_event(caf::scoped_actor& self, const std::string& component, readiness_state state) {
  bool seen = false;
  bool timed_out = false;
  while (!seen && !timed_out)
    self->receive(
        [&](readiness_event& ev) { seen = ev.component == component && ev.state == state; },
        caf::after(std::chrono::seconds(10)) >> [&] { timed_out = true; });
  return seen;
}

} // namespace

TEMPLATE_TEST_CASE_METHOD(
    late_start,
    "await_ready times out with not_ready while setup cannot finish, and succeeds once "
    "it can",
    "[readiness]", sqlite_backend, pg_backend) {
  database_fixture fx{this->waiting_config(60s)};
  auto early = fx.cli->await_ready(300ms);
  REQUIRE(!early);
  INFO(text(early.error()));
  CHECK(is(early.error(), errc::not_ready));
  CHECK(describe(early.error()).message.find("connecting") != std::string::npos);
  this->late.create();
  auto later = fx.cli->await_ready(10s);
  INFO((later ? std::string{"ok"} : text(later.error())));
  REQUIRE(later);
  CHECK(later->state == readiness_state::ready);
}

TEMPLATE_TEST_CASE_METHOD(late_start,
                          "a late subscriber gets the current state at once, then every change",
                          "[readiness]", sqlite_backend, pg_backend) {
  database_fixture fx{this->waiting_config(60s)};
  caf::scoped_actor subscriber{fx.sys};
  auto snap = fx.cli->subscribe(caf::actor_cast<caf::actor>(subscriber));
  REQUIRE(snap);
  CHECK(snap->state != readiness_state::ready);
  REQUIRE(!snap->components.empty());
  CHECK(snap->components.front().component == "database");
  bool has_setup = false;
  for (auto& ev : snap->components)
    has_setup = has_setup || ev.component == "setup";
  CHECK(has_setup);
  this->late.create();
  CHECK(wait_for_event(subscriber, "database", readiness_state::ready));
  // Subscribing after ready replays "ready" at once.
  caf::scoped_actor late{fx.sys};
  auto now = fx.cli->subscribe(caf::actor_cast<caf::actor>(late));
  REQUIRE(now);
  CHECK(now->state == readiness_state::ready);
}

TEMPLATE_TEST_CASE_METHOD(late_start, "requests sent before ready are served after ready",
                          "[readiness]", sqlite_backend, pg_backend) {
  database_fixture fx{this->waiting_config(60s)};
  caf::scoped_actor self{fx.sys};
  session_options options;
  options.wait_timeout = 20s;
  auto pending = self->request(fx.db, 30s, exec_atom::value, statement{"SELECT 40 + 2"}, options);
  // The status request leaves after the exec request, so the exec is already held.
  auto report = fx.cli->status();
  REQUIRE(report);
  CHECK(report->pending == 1);
  CHECK(report->state != readiness_state::ready);
  this->late.create();
  bool served = false;
  pending.receive([&](result_set& r) { served = r.rows.at(0).at(0) == value{42}; },
                  [&](caf::error& err) { FAIL(text(err)); });
  CHECK(served);
}

TEMPLATE_TEST_CASE_METHOD(
    late_start, "a request held too long answers not_ready; setup that cannot finish goes failed",
    "[readiness]", sqlite_backend, pg_backend) {
  database_fixture fx{this->waiting_config(600ms)};
  session_options options;
  options.wait_timeout = 100ms;
  auto early = fx.cli->open_session(options);
  REQUIRE(!early);
  CHECK(is(early.error(), errc::not_ready));
  caf::scoped_actor subscriber{fx.sys};
  REQUIRE(fx.cli->subscribe(caf::actor_cast<caf::actor>(subscriber)));
  CHECK(wait_for_event(subscriber, "database", readiness_state::failed));
  auto after = fx.cli->open_session();
  REQUIRE(!after);
  INFO(text(after.error()));
  CHECK(is(after.error(), errc::connect_failed));
  CHECK(describe(after.error()).message.find("gave up after") != std::string::npos);
  auto report = fx.cli->status();
  REQUIRE(report);
  CHECK(report->state == readiness_state::failed);
}

TEMPLATE_TEST_CASE_METHOD(late_start, "a dead subscriber is dropped", "[readiness]", sqlite_backend,
                          pg_backend) {
  database_fixture fx{this->waiting_config(60s)};
  // A label argument: CAF 0.17 trips UBSan on function actors spawned without one.
  auto short_lived =
      fx.sys.spawn([](caf::event_based_actor*,
                      std::string) -> caf::behavior { return {[](readiness_event&) {}}; },
                   std::string{"short-lived subscriber"});
  REQUIRE(fx.cli->subscribe(caf::actor_cast<caf::actor>(short_lived)));
  caf::scoped_actor watcher{fx.sys};
  watcher->monitor(short_lived);
  caf::anon_send_exit(short_lived, caf::exit_reason::kill);
  watcher->receive([](caf::down_msg&) {}, caf::after(10s) >> [] { FAIL("no down_msg"); });
  short_lived = nullptr;
  // Events keep flowing to live subscribers; the database stays healthy.
  caf::scoped_actor live{fx.sys};
  REQUIRE(fx.cli->subscribe(caf::actor_cast<caf::actor>(live)));
  this->late.create();
  CHECK(wait_for_event(live, "database", readiness_state::ready));
}

TEMPLATE_TEST_CASE_METHOD(fresh_dir,
                          "stop refuses new work, lets open transactions finish until "
                          "shutdown_timeout and rolls back the rest",
                          "[readiness]", sqlite_backend, pg_backend) {
  auto cfg = TestType::make_config(this->dir);
  cfg.shutdown_timeout = std::chrono::milliseconds(1000);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE s (x INTEGER)"});
  auto idle = fx.cli->open_session();
  auto finisher = fx.cli->open_session();
  REQUIRE(idle);
  REQUIRE(finisher);
  REQUIRE(!finisher->begin());
  REQUIRE(finisher->exec({"INSERT INTO s VALUES (1)"}));
  caf::scoped_actor watcher{fx.sys};
  watcher->monitor(fx.db);
  caf::scoped_actor stopper{fx.sys};
  auto stopping = stopper->request(fx.db, 30s, stop_atom::value);
  // New work is refused at once; the idle session is closed.
  REQUIRE(eventually([&] {
    auto r = fx.cli->exec({"SELECT 1"});
    return !r && is(r.error(), errc::shutting_down);
  }));
  CHECK(eventually([&] {
    auto info = idle->info();
    return !info && is(info.error(), errc::session_closed);
  }));
  // The open transaction goes on and commits; then its session closes.
  auto second = finisher->exec({"INSERT INTO s VALUES (2)"});
  INFO((second ? std::string{"ok"} : text(second.error())));
  REQUIRE(second);
  REQUIRE(!finisher->commit());
  CHECK(eventually([&] {
    auto info = finisher->info();
    return !info && is(info.error(), errc::session_closed);
  }));
  bool stopped = false;
  stopping.receive([&](caf::ok_atom) { stopped = true; },
                   [&](caf::error& err) { FAIL(text(err)); });
  CHECK(stopped);
  watcher->receive([](caf::down_msg&) {}, caf::after(10s) >> [] { FAIL("database still up"); });
  database_fixture again{cfg};
  again.require_ready();
  CHECK(again.count("s") == 2);
}

TEMPLATE_TEST_CASE_METHOD(fresh_dir, "a transaction still open at shutdown_timeout is rolled back",
                          "[readiness]", sqlite_backend, pg_backend) {
  auto cfg = TestType::make_config(this->dir);
  cfg.shutdown_timeout = std::chrono::milliseconds(300);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE s (x INTEGER)"});
  auto s = fx.cli->open_session();
  REQUIRE(s);
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"INSERT INTO s VALUES (1)"}));
  caf::scoped_actor watcher{fx.sys};
  watcher->monitor(fx.db);
  REQUIRE(!fx.cli->stop());
  watcher->receive([](caf::down_msg&) {}, caf::after(10s) >> [] { FAIL("database still up"); });
  CHECK(is(s->commit(), errc::session_closed));
  // A fresh runtime on the same database shows the insert was rolled back.
  database_fixture again{cfg};
  again.require_ready();
  CHECK(again.count("s") == 0);
}

namespace {

engine_actor current_engine(database_fixture& fx, caf::scoped_actor& self) {
  engine_actor engine;
  self->request(fx.db, 10s, caf::get_atom::value, engine_atom::value)
      .receive([&](engine_actor& e) { engine = std::move(e); },
               [&](caf::error& err) { FAIL(text(err)); });
  return engine;
}

void kill_and_wait(caf::scoped_actor& self, const engine_actor& engine) {
  self->monitor(engine);
  self->send_exit(engine, caf::exit_reason::kill);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; }, caf::after(10s) >> [] {});
  REQUIRE(down);
}

} // namespace

TEMPLATE_TEST_CASE_METHOD(ready_database,
                          "a crashed engine is restarted and the database serves again",
                          "[supervision]", sqlite_backend, pg_backend) {
  auto& fx = *this;
  fx.must_exec({"CREATE TABLE r (x INTEGER)"});
  caf::scoped_actor self{fx.sys};
  caf::scoped_actor subscriber{fx.sys};
  REQUIRE(fx.cli->subscribe(caf::actor_cast<caf::actor>(subscriber)));
  auto first = current_engine(fx, self);
  kill_and_wait(self, first);
  // The replacement publishes its own way back to ready.
  REQUIRE(wait_for_event(subscriber, "engine:writer", readiness_state::connecting));
  REQUIRE(wait_for_event(subscriber, "database", readiness_state::ready));
  auto second = current_engine(fx, self);
  CHECK(second != first);
  fx.must_exec({"INSERT INTO r VALUES (1)"});
  CHECK(fx.count("r") == 1);
  auto report = fx.cli->status();
  REQUIRE(report);
  CHECK(report->restarts == 1);
}

TEMPLATE_TEST_CASE_METHOD(fresh_dir,
                          "beyond the restart intensity the database goes failed and says why",
                          "[supervision]", sqlite_backend, pg_backend) {
  auto cfg = TestType::make_config(this->dir);
  cfg.max_restarts = 1;
  cfg.restart_window = std::chrono::milliseconds(60000);
  database_fixture fx{cfg};
  fx.require_ready();
  caf::scoped_actor self{fx.sys};
  caf::scoped_actor subscriber{fx.sys};
  REQUIRE(fx.cli->subscribe(caf::actor_cast<caf::actor>(subscriber)));
  kill_and_wait(self, current_engine(fx, self));
  REQUIRE(wait_for_event(subscriber, "database", readiness_state::ready));
  kill_and_wait(self, current_engine(fx, self));
  REQUIRE(wait_for_event(subscriber, "database", readiness_state::failed));
  auto r = fx.cli->exec({"SELECT 1"});
  REQUIRE(!r);
  CHECK(is(r.error(), errc::connect_failed));
  CHECK(describe(r.error()).message.find("max_restarts") != std::string::npos);
}
