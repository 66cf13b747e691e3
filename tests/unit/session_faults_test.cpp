// Actor logic against a scripted driver: the fault paths real SQLite cannot be made
// to take on demand (a link that breaks during COMMIT or ROLLBACK).
#include <sstream>

#include <spdlog/spdlog.h>

#include "actors/database.hpp"
#include "support/captured_log.hpp"
#include "support/fake_driver.hpp"
#include "support/fixture.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

struct fake_database {
  fake_database() {
    auto cfg = must_config("sqlite::memory:");
    cfg.log_level = "off";
    db = spawn_database(sys, std::make_shared<const config>(cfg),
                        [this](engine_role) { return fake_factory(script); });
    cli = std::make_unique<client>(sys, db, 10s);
    REQUIRE(cli->await_ready(10s));
  }
  ~fake_database() {
    cli->stop();
    cli.reset();
    db = nullptr;
  }
  pool_stats shared_pool() {
    auto report = cli->status();
    REQUIRE(report);
    REQUIRE(report->pools.size() == 1);
    return report->pools[0];
  }

  std::shared_ptr<fake_script> script = std::make_shared<fake_script>();
  system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  database_actor db;
  std::unique_ptr<client> cli;
};

} // namespace

TEST_CASE("a link broken during COMMIT answers commit_in_doubt and the connection is "
          "discarded",
          "[faults]") {
  fake_database fx;
  auto s = fx.cli->open_session();
  REQUIRE(s);
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"UPDATE t SET x = 1"}));
  fx.script->lose_connection_on_commit = true;
  auto err = s->commit();
  INFO(text(err));
  REQUIRE(is(err, errc::commit_in_doubt));
  CHECK(describe(err).message.find("may or may not") != std::string::npos);
  // The session keeps the fact: its last commit's outcome is unknown, nothing is open.
  auto info = s->info();
  REQUIRE(info);
  CHECK(info->phase == session_phase::in_doubt);
  CHECK_FALSE(info->holds_lease);
  CHECK(fx.shared_pool().discarded == 1);
  // The pool replaces the connection for the next request; the session's next unit of
  // work starts afresh and ends the in-doubt phase.
  fx.script->lose_connection_on_commit = false;
  REQUIRE(fx.cli->exec({"SELECT 1"}));
  CHECK(fx.shared_pool().total == 1);
  CHECK(fx.script->opened == 2);
  REQUIRE(!s->begin());
  CHECK(s->info()->phase == session_phase::in_tx);
  REQUIRE(!s->commit());
  CHECK(s->info()->phase == session_phase::idle);
}

TEST_CASE("an autocommit write whose answer never came leaves the session in doubt until "
          "rollback acknowledges it",
          "[faults]") {
  fake_database fx;
  auto s = fx.cli->open_session();
  REQUIRE(s);
  fx.script->lose_connection_on_exec = true;
  auto r = s->exec({"UPDATE t SET x = 1"});
  REQUIRE(!r);
  INFO(text(r.error()));
  CHECK(is(r.error(), errc::commit_in_doubt));
  CHECK(s->info()->phase == session_phase::in_doubt);
  fx.script->lose_connection_on_exec = false;
  REQUIRE(!s->rollback());
  CHECK(s->info()->phase == session_phase::idle);
  REQUIRE(s->exec({"SELECT 1"}));
}

TEST_CASE("a connection whose ROLLBACK fails is discarded, never pooled", "[faults]") {
  fake_database fx;
  auto s = fx.cli->open_session();
  REQUIRE(s);
  REQUIRE(!s->begin());
  fx.script->lose_connection_on_rollback = true;
  auto err = s->rollback();
  CHECK(is(err, errc::connection_lost));
  CHECK(fx.shared_pool().discarded == 1);
  fx.script->lose_connection_on_rollback = false;
  REQUIRE(!s->begin());
  REQUIRE(!s->commit());
  CHECK(fx.shared_pool().in_use == 0);
}

TEST_CASE("a request that leaves a transaction open fails, and the connection is rolled back "
          "before anyone else gets it",
          "[faults]") {
  fake_database fx;
  fx.script->opens_transaction = "SELECT opens_a_transaction()";
  auto r = fx.cli->exec({"SELECT opens_a_transaction()"});
  REQUIRE(!r);
  CHECK(is(r.error(), errc::invalid_argument));
  CHECK(describe(r.error()).message.find("left a transaction open") != std::string::npos);
  auto calls = fx.script->snapshot();
  REQUIRE(calls.size() >= 2);
  CHECK(calls.back() == "rollback");
  // The next holder starts with no transaction: its begin and commit are its own.
  auto s = fx.cli->open_session();
  REQUIRE(s);
  REQUIRE(!s->begin());
  REQUIRE(!s->commit());
  CHECK(fx.shared_pool().discarded == 0);
}

TEST_CASE("a request that ends the session's transaction behind its back answers "
          "commit_in_doubt",
          "[faults]") {
  fake_database fx;
  fx.script->ends_transaction = "SELECT ends_the_transaction()";
  auto s = fx.cli->open_session();
  REQUIRE(s);
  REQUIRE(!s->begin());
  auto r = s->exec({"SELECT ends_the_transaction()"});
  REQUIRE(!r);
  CHECK(is(r.error(), errc::commit_in_doubt));
  auto info = s->info();
  REQUIRE(info);
  // The transaction ended on the server in a way nobody confirmed: in doubt, with
  // nothing open; rollback acknowledges it.
  CHECK(info->phase == session_phase::in_doubt);
  CHECK_FALSE(info->holds_lease);
  REQUIRE(!s->rollback());
  CHECK(s->info()->phase == session_phase::idle);
  REQUIRE(fx.cli->exec({"SELECT 1"}));
}

TEST_CASE("transact runs begin, every statement and commit on one connection", "[faults]") {
  fake_database fx;
  REQUIRE(fx.cli->transact({{"INSERT 1"}, {"INSERT 2"}}));
  auto calls = fx.script->snapshot();
  std::vector<std::string> expected{"begin", "exec INSERT 1", "exec INSERT 2", "commit"};
  REQUIRE(calls.size() >= expected.size());
  CHECK(std::vector<std::string>(calls.end() - 4, calls.end()) == expected);
  CHECK(fx.shared_pool().checkouts == 1);
}

TEST_CASE("echo logs statements with parameters redacted unless echo_params is set", "[logging]") {
  captured_log captured;
  temp_dir dir;
  auto cfg = file_config(dir);
  cfg.echo = true;
  {
    database_fixture fx{cfg};
    fx.require_ready();
    fx.must_exec({"SELECT $1 AS secret", {"hunter2"}});
    fx.cli->stop();
  }
  auto text_out = captured.text();
  CHECK(text_out.find("SELECT $1 AS secret") != std::string::npos);
  CHECK(text_out.find("hunter2") == std::string::npos);
  captured.clear();
  cfg.echo_params = true;
  {
    database_fixture fx{cfg};
    fx.require_ready();
    fx.must_exec({"SELECT $1 AS shown", {"visible-value"}});
    fx.cli->stop();
  }
  CHECK(captured.contains("'visible-value'"));
}
