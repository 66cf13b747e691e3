// An engine with the scripted driver under CAF's deterministic test coordinator: no
// threads of its own and no sleeps. The test sends from `self`, runs every message with
// `sched.run()` and fires timers with `sched.trigger_timeout()`; then it reads the answer
// waiting for it, the driver calls in order, and the timers the actors set.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/engine.hpp"
#include "log.hpp"
#include "pool/in_place_shelf.hpp"
#include "support/fake_driver.hpp"
#include "support/fixture.hpp"

namespace cafdb::test {

struct coordinator_config : caf::actor_system_config {
  coordinator_config() {
    add_types(*this);
    set("scheduler.policy", caf::atom("testing"));
  }
};

struct coordinator_fixture {
  /// With `shelf`, the engine's SQLite reader pool reads in place through it.
  explicit coordinator_fixture(config c, std::shared_ptr<pool::in_place_shelf> shelf = nullptr) {
    c.log_level = "off";
    log::configure(c); // the database would; there is none here
    cfg = std::make_shared<const config>(std::move(c));
    // No database: the engine's readiness events go nowhere (a send to no actor).
    engine = spawn_engine(sys, engine_role::writer, cfg, fake_factory(script), database_actor{},
                          std::move(shelf));
  }

  ~coordinator_fixture() {
    self->send_exit(engine, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// A PostgreSQL engine that never reaches a server (the scripted driver answers),
  /// with `size` connections and no overflow.
  static config pool_of(int size) {
    auto c = must_config("postgresql://cafdb@127.0.0.1:1/test");
    c.pool_size = size;
    c.max_overflow = 0;
    return c;
  }

  /// Runs every message the system has, then takes the one answer waiting for the
  /// test; fails if there is none or it is an error.
  template <class T>
  T answer() {
    sched.run();
    std::optional<T> out;
    self->receive([&](T& x) { out = std::move(x); },
                  [&](caf::error& err) { FAIL_CHECK("an error: " << render(err)); },
                  caf::after(std::chrono::seconds(0)) >> [] {});
    REQUIRE(out);
    return std::move(*out);
  }

  /// The error answer waiting for the test.
  caf::error error_answer() {
    sched.run();
    caf::error out;
    self->receive([&](caf::error& err) { out = std::move(err); },
                  caf::after(std::chrono::seconds(0)) >> [] {});
    REQUIRE(out);
    return out;
  }

  /// Whether an answer waits for the test.
  bool answered() {
    sched.run();
    return !self->mailbox().empty();
  }

  /// Connects the engine (opens its first connection).
  void connect() {
    self->send(engine, caf::connect_atom::value);
    answer<caf::ok_atom>();
  }

  /// The statistics of the engine's pool `index` (a SQLite engine has two: the writer
  /// and the reader pool).
  pool_stats stats(size_t index = 0) {
    self->send(engine, stats_atom::value);
    auto all = answer<std::vector<pool_stats>>();
    REQUIRE(all.size() > index);
    auto& s = all[index];
    // What a user can check from outside: every connection is in one state.
    CHECK(s.total == s.idle + s.in_use + s.opening + s.pinging + s.returning);
    return s;
  }

  /// How far ahead the next timer is.
  caf::timespan next_timer() {
    auto& schedule = sched.clock().schedule();
    REQUIRE_FALSE(schedule.empty());
    return schedule.begin()->first - sched.clock().now();
  }

  /// The driver calls so far, in order ("open", "begin", "exec SELECT 1", ...).
  std::vector<std::string> calls() { return script->snapshot(); }

  std::shared_ptr<fake_script> script = std::make_shared<fake_script>();
  std::shared_ptr<const config> cfg;
  coordinator_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  caf::scheduler::test_coordinator& sched =
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  caf::scoped_actor self{sys};
  engine_actor engine;
};

} // namespace cafdb::test
