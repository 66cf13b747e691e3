// Conformance: the pool's resilience options on every engine: min_idle, pool_recycle,
// idle_timeout, leak_threshold / lease_timeout, max_pending, wait percentiles and the
// periodic stats line. (pool_pre_ping needs a server whose backends can be killed:
// integration/fault_test.cpp.)
#include "log.hpp"
#include "support/backends.hpp"
#include "support/captured_log.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

template <class Backend>
struct pool_options : with_temp_dir {
  pool_options() {
    cfg = Backend::make_config(dir);
    cfg.pool_size = 4;
    cfg.max_overflow = 0;
  }
  /// The pool read-write sessions use on SQLite is the single writer, so tests that need
  /// several connections use read-only sessions there (the reader pool).
  static session_options several() {
    session_options options;
    options.read_only = std::string{Backend::name} == "sqlite";
    return options;
  }
  static const char* several_pool() {
    return std::string{Backend::name} == "sqlite" ? Backend::ro_pool : Backend::rw_pool;
  }
  config cfg;
};

} // namespace

TEMPLATE_TEST_CASE_METHOD(pool_options, "min_idle opens warm connections at start and keeps them",
                          "[pool][resilience]", sqlite_backend, pg_backend) {
  this->cfg.min_idle = 3;
  // Without idle_timeout, a SQLite reader pool that reads in place opens pool_size.
  this->cfg.idle_timeout = std::chrono::minutes(10);
  database_fixture fx{this->cfg};
  fx.require_ready();
  auto pool = this->several_pool();
  CHECK(eventually([&] { return fx.stats(pool).idle == 3; }));
  CHECK(fx.stats(pool).opened == 3);
}

TEMPLATE_TEST_CASE_METHOD(pool_options,
                          "pool_recycle retires idle connections but never a leased one",
                          "[pool][resilience]", sqlite_backend, pg_backend) {
  this->cfg.min_idle = 2;
  this->cfg.pool_recycle = std::chrono::milliseconds(300);
  database_fixture fx{this->cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  auto s = fx.cli->open_session();
  REQUIRE(s);
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"INSERT INTO t VALUES (1)"}));
  // Idle connections are retired and replaced (min_idle) while the transaction runs on.
  auto pool = this->several_pool();
  CHECK(eventually([&] { return fx.stats(pool).recycled >= 2; }));
  CHECK(eventually([&] { return fx.stats(pool).idle >= 1; })); // replaced
  // The leased connection lived through its expiry: the transaction is intact.
  REQUIRE(s->exec({"INSERT INTO t VALUES (2)"}));
  REQUIRE(!s->commit());
  CHECK(fx.count("t") == 2);
}

TEMPLATE_TEST_CASE_METHOD(pool_options, "idle_timeout closes idle connections beyond min_idle",
                          "[pool][resilience]", sqlite_backend, pg_backend) {
  this->cfg.min_idle = 1;
  this->cfg.idle_timeout = std::chrono::milliseconds(200);
  database_fixture fx{this->cfg};
  fx.require_ready();
  {
    std::vector<session> open;
    for (int i = 0; i < 3; ++i) {
      auto s = fx.cli->open_session(this->several());
      REQUIRE(s);
      REQUIRE(!s->begin());
      open.push_back(std::move(*s));
    }
    CHECK(fx.stats(this->several_pool()).total == 3);
  }
  auto pool = this->several_pool();
  CHECK(eventually([&] { return fx.stats(pool).total == 1; }));
  CHECK(fx.stats(pool).recycled >= 2);
}

TEMPLATE_TEST_CASE_METHOD(pool_options,
                          "a lease held too long is reported, then reclaimed and rolled back",
                          "[pool][resilience]", sqlite_backend, pg_backend) {
  this->cfg.leak_threshold = std::chrono::milliseconds(100);
  this->cfg.lease_timeout = std::chrono::milliseconds(400);
  this->cfg.log_level = "warn";
  database_fixture fx{this->cfg};
  fx.require_ready();
  captured_log engine_log;
  fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  auto pool = TestType::rw_pool;
  // On a loaded machine the CREATE TABLE itself may outlast leak_threshold and be
  // reported; count only what the leaky session adds.
  auto leaks_before = fx.stats(pool).leaks;
  session_options options;
  options.label = "leaky";
  auto s = fx.cli->open_session(options);
  REQUIRE(s);
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"INSERT INTO t VALUES (1)"}));
  REQUIRE(eventually([&] { return fx.stats(pool).reclaimed == 1; }));
  CHECK(fx.stats(pool).leaks == leaks_before + 1);
  CHECK(engine_log.contains("possible connection leak: session 'leaky'"));
  // The session learns it lost the transaction; the connection went back rolled back.
  REQUIRE(eventually([&] {
    auto info = s->info();
    return info && !info->holds_lease;
  }));
  CHECK(s->info()->phase == session_phase::failed);
  CHECK(is(s->exec({"SELECT 1"}).error(), errc::transaction_failed));
  REQUIRE(!s->rollback());
  CHECK(fx.count("t") == 0);
  CHECK(eventually([&] { return fx.stats(pool).in_use == 0; }));
  // The session goes on with a fresh transaction.
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"INSERT INTO t VALUES (2)"}));
  REQUIRE(!s->commit());
  CHECK(fx.count("t") == 1);
}

TEMPLATE_TEST_CASE_METHOD(pool_options, "beyond max_pending, checkouts are refused at once",
                          "[pool][resilience]", sqlite_backend, pg_backend) {
  this->cfg.pool_size = 1;
  this->cfg.max_pending = 1;
  this->cfg.pool_timeout = std::chrono::milliseconds(5000);
  database_fixture fx{this->cfg};
  fx.require_ready();
  auto holder = fx.cli->open_session(this->several());
  REQUIRE(holder);
  REQUIRE(!holder->begin());
  // One checkout waits (max_pending = 1) ...
  auto waiting = fx.cli->open_session(this->several());
  REQUIRE(waiting);
  caf::scoped_actor self{fx.sys};
  auto pending = self->request(waiting->handle(), std::chrono::seconds(10), begin_atom::value);
  auto pool = this->several_pool();
  REQUIRE(eventually([&] { return fx.stats(pool).waiting == 1; }));
  // ... the next is refused without waiting for pool_timeout.
  auto refused = fx.cli->open_session(this->several());
  REQUIRE(refused);
  auto started = std::chrono::steady_clock::now();
  auto err = refused->begin();
  INFO(text(err));
  CHECK(is(err, errc::pool_overloaded));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
  REQUIRE(!holder->rollback());
  bool began = false;
  pending.receive([&](caf::ok_atom) { began = true; },
                  [&](caf::error& e) { FAIL(cafdb::test::text(e)); });
  CHECK(began);
  REQUIRE(!waiting->rollback());
  auto stats = fx.stats(pool);
  CHECK(stats.wait_p99_us >= stats.wait_p50_us);
  CHECK(stats.wait_p99_us > 0); // the waiting checkout waited
}

TEMPLATE_TEST_CASE_METHOD(pool_options, "stats_interval logs every pool's counters",
                          "[pool][resilience]", sqlite_backend, pg_backend) {
  this->cfg.stats_interval = std::chrono::milliseconds(50);
  this->cfg.log_level = "info";
  database_fixture fx{this->cfg};
  captured_log engine_log;
  fx.require_ready();
  fx.must_exec({"SELECT 1"});
  CHECK(eventually([&] { return engine_log.contains("wait p50/p95/p99"); }));
  CHECK(engine_log.contains("checkouts"));
}

TEMPLATE_TEST_CASE_METHOD(pool_options,
                          "a connection actor that dies is replaced and never handed out again",
                          "[pool][resilience]", sqlite_backend, pg_backend) {
  database_fixture fx{this->cfg};
  fx.require_ready();
  caf::scoped_actor self{fx.sys};
  engine_actor engine;
  self->request(fx.db, std::chrono::seconds(5), caf::get_atom::value, engine_atom::value)
      .receive([&](engine_actor& e) { engine = e; },
               [&](caf::error& err) { FAIL(cafdb::test::text(err)); });
  auto checkout = [&] {
    lease out;
    self->request(engine, std::chrono::seconds(5), checkout_atom::value,
                  checkout_request{false, std::chrono::seconds(2), "test", false})
        .receive([&](lease& l) { out = l; },
                 [&](caf::error& err) { FAIL(cafdb::test::text(err)); });
    return out;
  };
  auto pool = TestType::rw_pool;
  // Dies while leased: even checked in as clean, it is discarded, not pooled.
  auto leased = checkout();
  self->send_exit(leased.connection, caf::exit_reason::kill);
  self->send(engine, checkin_atom::value, leased.id, connection_condition::clean);
  REQUIRE(eventually([&] { return fx.stats(pool).discarded == 1; }));
  fx.must_exec({"SELECT 1"});
  // Dies while idle: forgotten and replaced at once.
  auto idle = checkout();
  self->send(engine, checkin_atom::value, idle.id, connection_condition::clean);
  REQUIRE(eventually([&] { return fx.stats(pool).idle == 1; }));
  self->send_exit(idle.connection, caf::exit_reason::kill);
  REQUIRE(eventually([&] { return fx.stats(pool).discarded == 2; }));
  CHECK(eventually([&] { return fx.stats(pool).idle == 1; })); // the replacement
  auto again = checkout();
  CHECK(again.connection != idle.connection);
  self->send(engine, checkin_atom::value, again.id, connection_condition::clean);
  fx.must_exec({"SELECT 1"});
  CHECK(fx.stats(pool).in_use == 0);
}
