// Readiness: a real slow start (the database file appears only later), subscribers,
// await_ready and requests held until ready.
#include <fstream>

#include "support/fixture.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

// `mode=rw`: setup keeps retrying until the file exists.
config waiting_config(const temp_dir& dir, std::chrono::milliseconds setup_timeout) {
  auto cfg = must_config("sqlite:///" + dir.file("late.db") + "?mode=rw");
  cfg.setup_timeout = setup_timeout;
  cfg.log_level = "off";
  return cfg;
}

void create_file(const std::string& path) {
  std::ofstream out{path}; // an empty file is a valid, empty SQLite database
  REQUIRE(out.good());
}

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

TEST_CASE("await_ready times out with not_ready while setup cannot finish, and succeeds once "
          "it can",
          "[readiness]") {
  temp_dir dir;
  database_fixture fx{waiting_config(dir, 60s)};
  auto early = fx.cli->await_ready(300ms);
  REQUIRE(!early);
  INFO(text(early.error()));
  CHECK(is(early.error(), errc::not_ready));
  CHECK(describe(early.error()).message.find("connecting") != std::string::npos);
  create_file(dir.file("late.db"));
  auto later = fx.cli->await_ready(10s);
  INFO((later ? std::string{"ok"} : text(later.error())));
  REQUIRE(later);
  CHECK(later->state == readiness_state::ready);
}

TEST_CASE("a late subscriber gets the current state at once, then every change", "[readiness]") {
  temp_dir dir;
  database_fixture fx{waiting_config(dir, 60s)};
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
  create_file(dir.file("late.db"));
  CHECK(wait_for_event(subscriber, "database", readiness_state::ready));
  // Subscribing after ready replays "ready" at once.
  caf::scoped_actor late{fx.sys};
  auto now = fx.cli->subscribe(caf::actor_cast<caf::actor>(late));
  REQUIRE(now);
  CHECK(now->state == readiness_state::ready);
}

TEST_CASE("requests sent before ready are served after ready", "[readiness]") {
  temp_dir dir;
  database_fixture fx{waiting_config(dir, 60s)};
  caf::scoped_actor self{fx.sys};
  session_options options;
  options.wait_timeout = 20s;
  auto pending = self->request(fx.db, 30s, exec_atom::value, statement{"SELECT 40 + 2"}, options);
  // The status request leaves after the exec request, so the exec is already held.
  auto report = fx.cli->status();
  REQUIRE(report);
  CHECK(report->pending == 1);
  CHECK(report->state != readiness_state::ready);
  create_file(dir.file("late.db"));
  bool served = false;
  pending.receive([&](result_set& r) { served = r.rows.at(0).at(0) == value{42}; },
                  [&](caf::error& err) { FAIL(text(err)); });
  CHECK(served);
}

TEST_CASE("a request held too long answers not_ready; setup that cannot finish goes failed",
          "[readiness]") {
  temp_dir dir;
  database_fixture fx{waiting_config(dir, 600ms)};
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

TEST_CASE("a dead subscriber is dropped", "[readiness]") {
  temp_dir dir;
  database_fixture fx{waiting_config(dir, 60s)};
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
  create_file(dir.file("late.db"));
  CHECK(wait_for_event(live, "database", readiness_state::ready));
}

TEST_CASE("stop rolls back open sessions and refuses new work", "[readiness]") {
  temp_dir dir;
  database_fixture fx{file_config(dir)};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE s (x)"});
  auto s = fx.cli->open_session();
  REQUIRE(s);
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"INSERT INTO s VALUES (1)"}));
  caf::scoped_actor watcher{fx.sys};
  watcher->monitor(fx.db);
  REQUIRE(!fx.cli->stop());
  watcher->receive([](caf::down_msg&) {}, caf::after(10s) >> [] { FAIL("database still up"); });
  CHECK(is(s->commit(), errc::session_closed));
  // A fresh database on the same file shows the insert was rolled back.
  database_fixture again{file_config(dir)};
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

TEST_CASE("a crashed engine is restarted and the database serves again", "[supervision]") {
  temp_dir dir;
  database_fixture fx{file_config(dir)};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE r (x)"});
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

TEST_CASE("beyond the restart intensity the database goes failed and says why", "[supervision]") {
  temp_dir dir;
  auto cfg = file_config(dir);
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
