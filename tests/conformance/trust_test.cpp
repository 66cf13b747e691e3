// Conformance: what a user must be able to trust, on every engine. Each case is the
// regression test of a failure found from outside: memory kept per request, smuggled
// transaction control, stale rows after a schema change, scripts that answered
// differently per engine, CAF's own errors reaching the caller.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>

#include <caf/detail/simple_actor_clock.hpp>
#include <sqlite3.h>

#include "cafdb/settled.hpp"
#include "support/backends.hpp"

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer's annotations (in libtsan).
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

using namespace cafdb;
using namespace cafdb::test;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// A file database's configuration whose stop() waits at most a second for open work.
config stopping_in_a_second(const temp_dir& dir) {
  auto cfg = file_config(dir);
  cfg.shutdown_timeout = std::chrono::milliseconds(1000);
  return cfg;
}

/// The configuration a test's database was made with, kept for a second runtime on
/// the same database. A base of its own: it must exist before the database.
struct with_config {
  config cfg;
};

template <class Backend>
struct trust : with_temp_dir, with_config, database_fixture {
  trust() : with_config{Backend::make_config(dir)}, database_fixture(cfg) {
    require_ready();
    must_exec({std::string{"CREATE TABLE t (id "} + Backend::serial_pk + ", v TEXT)"});
  }

  /// Timers and request timeouts waiting on CAF's clock. CAF offers no synchronised
  /// way to count them: the schedule belongs to the clock thread. The read is a probe
  /// of its size, only ever compared after the work settled, so ThreadSanitizer is told
  /// to ignore this one read instead of the test reporting a race it accepts.
  size_t clock_entries() {
    auto& clock = dynamic_cast<caf::detail::simple_actor_clock&>(sys.clock());
#if defined(__SANITIZE_THREAD__)
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
#endif
    auto n = clock.schedule().size();
#if defined(__SANITIZE_THREAD__)
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
    return n;
  }

  status_report status() {
    auto report = cli->status();
    REQUIRE(report);
    return *report;
  }

  /// A second runtime on the same database with a pool of one connection, ready: the
  /// next request certainly gets the connection the one before used.
  std::unique_ptr<database_fixture> one_connection() {
    auto single = cfg;
    single.pool_size = 1;
    single.max_overflow = 0;
    auto out = std::make_unique<database_fixture>(single);
    out->require_ready();
    return out;
  }

  /// The error of `stmt` sent as a statement; fails the test if it succeeded.
  caf::error refused(client& c, const std::string& sql) {
    auto r = c.exec({sql});
    INFO(sql);
    REQUIRE(!r);
    return r.error();
  }
};

} // namespace

// -- transaction control ---------------------------------------------------------

TEMPLATE_TEST_CASE_METHOD(trust, "transaction control is refused anywhere in a script", "[trust]",
                          sqlite_backend, pg_backend) {
  std::vector<std::pair<std::string, std::string>> smuggled = {
      {"SELECT 1; BEGIN", "BEGIN"},
      {"START TRANSACTION", "START"},
      {"select 1;commit", "COMMIT"},
      {"SELECT 1; -- comment\n END", "END"},
      {"/* lead */ SELECT 1; ROLLBACK", "ROLLBACK"},
      {"SELECT 1; ABORT", "ABORT"},
      {"SELECT 1; SAVEPOINT a", "SAVEPOINT"},
      {"SELECT 1; RELEASE a", "RELEASE"},
      {"PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"},
      {"SELECT 1; BEGIN IMMEDIATE TRANSACTION", "BEGIN"},
  };
  if (std::is_same_v<TestType, pg_backend>) { // PostgreSQL ends a line comment at \r too
    smuggled.emplace_back("SELECT 1; -- note\rCOMMIT", "COMMIT");
    smuggled.emplace_back("CREATE OR REPLACE FUNCTION fc() RETURNS int LANGUAGE sql BEGIN ATOMIC "
                          "SELECT 1 AS case; END; COMMIT AND CHAIN; SELECT 1 AS end",
                          "COMMIT");
  } else {
    // A name SQLite reads as a column, which a lexer could take for a block's BEGIN.
    smuggled.emplace_back("CREATE TRIGGER tr4 AFTER INSERT ON t BEGIN SELECT begin FROM (SELECT "
                          "1 AS begin); END; COMMIT; BEGIN; SELECT 1",
                          "COMMIT");
  }
  for (auto& [sql, keyword] : smuggled) {
    auto err = this->refused(*this->cli, sql);
    CHECK(is(err, errc::invalid_argument));
    CHECK(describe(err).message.find(keyword) != std::string::npos);
  }
  CHECK(this->count("t") == 0);
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "SQL text with a NUL is refused: the engine would run only the text "
                          "before it",
                          "[trust]", sqlite_backend, pg_backend) {
  this->must_exec({"INSERT INTO t (v) VALUES ('a'), ('b'), ('c')"});
  auto err = this->refused(*this->cli, std::string("DELETE FROM t\0 WHERE v = 'b'", 29));
  CHECK(is(err, errc::invalid_argument));
  CHECK(describe(err).message.find("NUL") != std::string::npos);
  CHECK(this->count("t") == 3);
}

TEMPLATE_TEST_CASE_METHOD(trust, "a read-only session cannot lift its own protection", "[trust]",
                          sqlite_backend, pg_backend) {
  bool pg = std::is_same_v<TestType, pg_backend>;
  session_options ro;
  ro.read_only = true;
  std::vector<std::string> escapes =
      pg ? std::vector<std::string>{"SET default_transaction_read_only = off",
                                    "SET TRANSACTION READ WRITE",
                                    "SELECT set_config('default_transaction_read_only', 'off', "
                                    "false)",
                                    "RESET ALL",
                                    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; "
                                    "INSERT INTO t (v) VALUES ('x')"}
         : std::vector<std::string>{"PRAGMA query_only = 0",
                                    "PRAGMA query_only = OFF; INSERT INTO t (v) VALUES ('x')"};
  auto s = this->cli->open_session(ro);
  REQUIRE(s);
  for (auto& sql : escapes) {
    INFO(sql);
    auto outside = s->exec({sql});
    REQUIRE(!outside);
    CHECK(is(outside.error(), errc::read_only_violation));
    REQUIRE(!s->begin());
    auto inside = s->exec({sql});
    REQUIRE(!inside);
    CHECK(is(inside.error(), errc::read_only_violation));
    REQUIRE(!s->rollback());
    auto one_shot = this->cli->exec({sql}, ro);
    REQUIRE(!one_shot);
    CHECK(is(one_shot.error(), errc::read_only_violation));
  }
  auto write = s->exec({"INSERT INTO t (v) VALUES ('x')"});
  REQUIRE(!write);
  CHECK(is(write.error(), errc::read_only_violation));
  if (pg) {
    // No SQL text shows it: a function turns the protection off. It is checked, not
    // assumed, before each read-only request.
    this->must_exec({"CREATE FUNCTION unlock() RETURNS text LANGUAGE sql AS "
                     "$$ SELECT set_config('default_transaction_read_only', 'off', false) $$"});
    for (int i = 0; i < 2; ++i) {
      REQUIRE(s->exec({"SELECT unlock()"}));
      auto after = s->exec({"INSERT INTO t (v) VALUES ('x')"});
      REQUIRE(!after);
      CHECK(is(after.error(), errc::read_only_violation));
      REQUIRE(this->cli->exec({"SELECT unlock()"}, ro));
      auto one_shot = this->cli->exec({"INSERT INTO t (v) VALUES ('x')"}, ro);
      REQUIRE(!one_shot);
      CHECK(is(one_shot.error(), errc::read_only_violation));
    }
  }
  CHECK(this->count("t") == 0);
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "keywords inside literals, names and comments are not "
                          "transaction control",
                          "[trust]", sqlite_backend, pg_backend) {
  auto r = this->cli->exec({"SELECT 'BEGIN; COMMIT' AS \"end\" /* ; ROLLBACK */"});
  REQUIRE(r);
  CHECK(r->rows.at(0).at(0).as_text() == "BEGIN; COMMIT");
  auto c = this->cli->exec({"SELECT CASE WHEN 1 = 1 THEN 'yes' ELSE 'no' END AS x"});
  REQUIRE(c);
  CHECK(c->rows.at(0).at(0).as_text() == "yes");
  // Bodies with BEGIN ... END blocks and `;` inside are one statement.
  if constexpr (std::is_same_v<TestType, sqlite_backend>) {
    REQUIRE(this->cli->exec({"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET v = "
                             "CASE WHEN NEW.v IS NULL THEN 'none' ELSE NEW.v END WHERE id = "
                             "NEW.id; END"}));
  } else {
    REQUIRE(this->cli->exec({"SELECT $$; COMMIT$$ AS x"}));
    REQUIRE(this->cli->exec({"CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC "
                             "SELECT 1; END"}));
  }
  REQUIRE(this->cli->exec({"INSERT INTO t (v) VALUES ($1)", {"kept"}}));
  CHECK(this->count("t") == 1);
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "a refused smuggle leaves the pooled connection clean: the next "
                          "client's write is durable",
                          "[trust]", sqlite_backend, pg_backend) {
  {
    auto one = this->one_connection();
    this->refused(*one->cli, "SELECT 1; BEGIN");
    this->refused(*one->cli, "START TRANSACTION");
    REQUIRE(one->cli->exec({"INSERT INTO t (v) VALUES ($1)", {"acknowledged"}}));
  }
  // A new runtime (new connections) sees the acknowledged row.
  database_fixture again{this->cfg};
  again.require_ready();
  CHECK(again.count("t") == 1);
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "COMMIT smuggled into a session transaction is refused and "
                          "rollback undoes the transaction",
                          "[trust]", sqlite_backend, pg_backend) {
  auto s = this->cli->open_session();
  REQUIRE(s);
  REQUIRE_FALSE(s->begin());
  REQUIRE(s->exec({"INSERT INTO t (v) VALUES ($1)", {"in tx"}}));
  for (auto sql : {"SELECT 1; COMMIT", "COMMIT", "END", "SELECT 1; END TRANSACTION"}) {
    auto r = s->exec({sql});
    INFO(sql);
    REQUIRE(!r);
    CHECK(is(r.error(), errc::invalid_argument));
  }
  auto info = s->info();
  REQUIRE(info);
  CHECK(info->phase == session_phase::in_tx); // a refusal runs nothing
  REQUIRE_FALSE(s->rollback());
  CHECK(this->count("t") == 0);
}

// -- scripts -----------------------------------------------------------------------

TEMPLATE_TEST_CASE_METHOD(trust,
                          "a script answers its last statement's result and is "
                          "all-or-nothing",
                          "[trust]", sqlite_backend, pg_backend) {
  auto r = this->cli->exec({"SELECT 1 AS a; SELECT 2 AS b"});
  REQUIRE(r);
  REQUIRE(r->columns == std::vector<std::string>{"b"});
  REQUIRE(r->rows.size() == 1);
  CHECK(r->rows[0][0].as_int() == 2);
  auto failed = this->cli->exec({"INSERT INTO t (v) VALUES ('a'); INSERT INTO missing VALUES (1)"});
  REQUIRE(!failed);
  CHECK(this->count("t") == 0);
  auto fine = this->cli->exec({"INSERT INTO t (v) VALUES ('a'); INSERT INTO t (v) VALUES ('b')"});
  REQUIRE(fine);
  CHECK(this->count("t") == 2);
}

// -- schema changes ----------------------------------------------------------------

// -- session state ---------------------------------------------------------------

namespace {

/// The first value of the only row of `sql`, as text.
std::string scalar(client& c, const std::string& sql) {
  auto r = c.exec({sql});
  INFO(sql << ": " << (r ? std::string{"ok"} : text(r.error())));
  REQUIRE(r);
  REQUIRE(r->rows.size() == 1);
  return r->rows.at(0).at(0).as_text();
}

} // namespace

TEMPLATE_TEST_CASE_METHOD(trust,
                          "what a request changes in the session never reaches the next user "
                          "of the pooled connection",
                          "[trust]", sqlite_backend, pg_backend) {
  auto one = this->one_connection();
  auto& c = *one->cli;
  bool pg = std::is_same_v<TestType, pg_backend>;
  auto setting = [&] { return scalar(c, pg ? "SHOW TimeZone" : "PRAGMA foreign_keys"); };
  auto original = setting();
  const char* change = pg ? "SET TimeZone = 'Asia/Tokyo'" : "PRAGMA foreign_keys = OFF";

  SECTION("a setting, in autocommit") {
    REQUIRE(c.exec({change}));
    CHECK(setting() == original);
    if (pg) {
      REQUIRE(c.exec({"SELECT set_config('TimeZone', 'Asia/Tokyo', false)"}));
      CHECK(setting() == original);
    }
  }
  SECTION("a setting lasts to the end of its own request") {
    auto both =
        c.exec({std::string{change} + "; " + (pg ? "SHOW TimeZone" : "PRAGMA foreign_keys")});
    REQUIRE(both);
    CHECK(both->rows.at(0).at(0).as_text() != original);
    CHECK(setting() == original);
  }
  SECTION("a setting, in a session's transaction, lasts to its end") {
    auto s = c.open_session();
    REQUIRE(s);
    REQUIRE(!s->begin());
    REQUIRE(s->exec({pg ? "SET search_path = nowhere" : "CREATE TEMP TABLE inside (a)"}));
    REQUIRE(s->exec({"SELECT 1"}));
    REQUIRE(!s->commit());
    REQUIRE(!s->close());
    if (pg)
      CHECK(scalar(c, "SHOW search_path").find("nowhere") == std::string::npos);
    else
      CHECK(!c.exec({"SELECT * FROM inside"}));
  }
  if (pg) {
    SECTION("a setting changed where no SQL text shows it: a function, a DO block") {
      REQUIRE(c.exec({"CREATE FUNCTION set_tz() RETURNS text LANGUAGE sql AS "
                      "$$ SELECT set_config('TimeZone', 'Asia/Tokyo', false) $$"}));
      REQUIRE(c.exec({"SELECT set_tz()"}));
      CHECK(setting() == original);
      REQUIRE(c.exec({"DO $$ BEGIN PERFORM set_config('search_path', 'nowhere', false); END $$"}));
      CHECK(scalar(c, "SHOW search_path").find("nowhere") == std::string::npos);
      REQUIRE(c.exec({"SELECT \"set_config\"('search_path', 'nowhere', false)"}));
      CHECK(scalar(c, "SHOW search_path").find("nowhere") == std::string::npos);
    }
  }
  SECTION("a temporary table") {
    REQUIRE(c.exec({"CREATE TEMP TABLE leak (a INT)"}));
    auto seen = c.exec({"SELECT * FROM leak"});
    REQUIRE(!seen);
    CHECK(is(seen.error(), errc::syntax_error));
    // And the name is free again.
    REQUIRE(c.exec({"CREATE TEMP TABLE leak (a INT)"}));
  }
  if (pg) {
    SECTION("a role, a session-level advisory lock, a prepared statement, a listen") {
      REQUIRE(c.exec({"SELECT pg_advisory_lock(4242)"}));
      CHECK(
          scalar(c, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242") ==
          "0");
      REQUIRE(c.exec({"PREPARE mine AS SELECT 1"}));
      REQUIRE(c.exec({"PREPARE mine AS SELECT 2"})); // the name is free again
      REQUIRE(c.exec({"LISTEN somewhere"}));
      CHECK(scalar(c, "SELECT count(*) FROM pg_listening_channels()") == "0");
      REQUIRE(c.exec({"SET ROLE NONE"}));
      REQUIRE(c.exec({"SET SESSION AUTHORIZATION DEFAULT"}));
      CHECK(scalar(c, "SELECT current_user = session_user") == "true");
      // Cached statements still serve after the resets.
      REQUIRE(c.exec({"INSERT INTO t (v) VALUES ($1)", {"after"}}));
      CHECK(scalar(c, "SELECT count(*) FROM t") == "1");
    }
  }
  // The resets cost no connection.
  CHECK(one->stats(TestType::rw_pool).discarded == 0);
}

TEMPLATE_TEST_CASE_METHOD(trust, "cached statements see ALTER TABLE and DROP / CREATE at once",
                          "[trust]", sqlite_backend, pg_backend) {
  // One connection: the statement cached before the change is the one used after it.
  auto one = this->one_connection();
  auto& db = *one->cli;
  REQUIRE(db.exec({"CREATE TABLE s (a INTEGER, b TEXT)"}));
  REQUIRE(db.exec({"INSERT INTO s VALUES (1, 'one')"}));
  auto before = db.exec({"SELECT * FROM s"});
  REQUIRE(before);
  CHECK(before->columns == std::vector<std::string>{"a", "b"});

  REQUIRE(db.exec({"ALTER TABLE s ADD COLUMN c INTEGER"}));
  auto added = db.exec({"SELECT * FROM s"});
  INFO((added ? std::string{"ok"} : text(added.error())));
  REQUIRE(added);
  CHECK(added->columns == std::vector<std::string>{"a", "b", "c"});
  CHECK(added->rows.at(0).size() == 3);

  REQUIRE(db.exec({"DROP TABLE s"}));
  REQUIRE(db.exec({"CREATE TABLE s (x TEXT, y INTEGER)"}));
  REQUIRE(db.exec({"INSERT INTO s VALUES ('ex', 42)"}));
  auto recreated = db.exec({"SELECT * FROM s"});
  INFO((recreated ? std::string{"ok"} : text(recreated.error())));
  REQUIRE(recreated);
  CHECK(recreated->columns == std::vector<std::string>{"x", "y"});
  CHECK(recreated->rows.at(0).at(0).as_text() == "ex");
  CHECK(recreated->rows.at(0).at(1).as_int() == 42);

  // Read-only sessions read on the same connection, through their own path.
  session_options ro;
  ro.read_only = true;
  REQUIRE(db.exec({"ALTER TABLE s ADD COLUMN z TEXT"}));
  auto read = db.exec({"SELECT * FROM s"}, ro);
  INFO((read ? std::string{"ok"} : text(read.error())));
  REQUIRE(read);
  CHECK(read->columns == std::vector<std::string>{"x", "y", "z"});
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "a table changed under a transaction's cached statement fails "
                          "that transaction only",
                          "[trust]", sqlite_backend, pg_backend) {
  auto one = this->one_connection();
  auto& db = *one->cli;
  REQUIRE(db.exec({"CREATE TABLE s (a INTEGER)"}));
  REQUIRE(db.exec({"SELECT * FROM s"}));
  REQUIRE(db.exec({"ALTER TABLE s ADD COLUMN b INTEGER"}));
  {
    auto s = db.open_session();
    REQUIRE(s);
    REQUIRE_FALSE(s->begin());
    // PostgreSQL refuses the stale plan inside a transaction (the transaction cannot
    // retry it); SQLite prepares it anew. Either way the answer is true.
    auto r = s->exec({"SELECT * FROM s"});
    if (r) {
      CHECK(r->columns.size() == 2);
    } else {
      // Retryable, and saying so: the transaction can simply run again.
      INFO(text(r.error()));
      CHECK(is(r.error(), errc::serialization_failure));
      CHECK(describe(r.error()).message.find("run it again") != std::string::npos);
    }
    REQUIRE_FALSE(s->rollback());
  }
  for (int i = 0; i < 3; ++i) {
    auto again = db.exec({"SELECT * FROM s"});
    INFO((again ? std::string{"ok"} : text(again.error())));
    REQUIRE(again);
    CHECK(again->columns.size() == 2);
  }
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "the operations API sees a table dropped and created with other "
                          "column types",
                          "[trust]", sqlite_backend, pg_backend) {
  auto& db = *this->cli;
  auto pk = std::string{"id "} + TestType::serial_pk;
  REQUIRE(db.exec({"CREATE TABLE p (" + pk + ", n INTEGER)"}));
  auto first = db.create_one("p", {{"n", 1}});
  INFO((first ? first->dump() : text(first.error())));
  REQUIRE(first);
  REQUIRE(db.exec({"DROP TABLE p"}));
  REQUIRE(db.exec({"CREATE TABLE p (" + pk + ", n TEXT)"}));
  auto second = db.create_one("p", {{"n", "text now"}});
  INFO((second ? second->dump() : text(second.error())));
  REQUIRE(second);
  CHECK((*second)["n"] == "text now");
}

// -- values ------------------------------------------------------------------------

TEMPLATE_TEST_CASE_METHOD(trust, "text with a NUL is stored whole or refused, never cut", "[trust]",
                          sqlite_backend, pg_backend) {
  std::string with_nul{"a\0b", 3};
  auto r = this->cli->exec({"INSERT INTO t (v) VALUES ($1)", {with_nul}});
  if constexpr (std::is_same_v<TestType, pg_backend>) {
    REQUIRE(!r);
    CHECK(is(r.error(), errc::invalid_argument));
    CHECK(describe(r.error()).message.find("NUL") != std::string::npos);
    CHECK(this->count("t") == 0);
  } else {
    REQUIRE(r);
    auto back = this->cli->exec({"SELECT v FROM t"});
    REQUIRE(back);
    CHECK(back->rows.at(0).at(0).as_text() == with_nul);
  }
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "affected_rows counts the statement's own changes: 0 for queries and "
                          "DDL",
                          "[trust]", sqlite_backend, pg_backend) {
  auto inserted = this->must_exec({"INSERT INTO t (v) VALUES ('a'), ('b'), ('c')"});
  CHECK(inserted.affected_rows == 3);
  CHECK(this->must_exec({"SELECT v FROM t"}).affected_rows == 0);
  CHECK(this->must_exec({"CREATE TABLE other (a INT)"}).affected_rows == 0);
  CHECK(this->must_exec({"DROP TABLE other"}).affected_rows == 0);
  auto returning = this->must_exec({"UPDATE t SET v = 'x' WHERE v <> 'c' RETURNING v"});
  CHECK(returning.affected_rows == 2);
  CHECK(returning.rows.size() == 2);
  CHECK(this->must_exec({"DELETE FROM t WHERE v = 'none'"}).affected_rows == 0);
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "comments are comments: a statement of comments only is empty, a "
                          "trailing comment in a query is fine",
                          "[trust]", sqlite_backend, pg_backend) {
  for (std::string sql : {"-- nothing", "/* nothing */", ";;;", " ; -- x\n ;"}) {
    auto r = this->cli->exec({sql});
    INFO(sql);
    REQUIRE(!r);
    CHECK(is(r.error(), errc::invalid_argument));
    CHECK(describe(r.error()).message.find("empty") != std::string::npos);
  }
  this->must_exec({"INSERT INTO t (v) VALUES ('a'), ('b')"});
  auto counted = this->cli->count({"SELECT * FROM t -- every row"});
  INFO((counted ? counted->dump() : text(counted.error())));
  REQUIRE(counted);
  CHECK(*counted == 2);
  auto first = this->cli->read_one({"SELECT v FROM t ORDER BY v -- first"});
  REQUIRE(first);
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "the operations API never picks a row by a key the table no longer "
                          "has",
                          "[trust]", sqlite_backend, pg_backend) {
  this->must_exec({"CREATE TABLE ops_t (id INTEGER PRIMARY KEY, v INTEGER, b INTEGER)"});
  REQUIRE(this->cli->create_one("ops_t", {{"id", 1}, {"v", 100}, {"b", 0}}));
  // Another client re-creates the table with another primary key.
  this->must_exec({"DROP TABLE ops_t"});
  this->must_exec({"CREATE TABLE ops_t (id INTEGER, v INTEGER PRIMARY KEY, b INTEGER)"});
  this->must_exec({"INSERT INTO ops_t VALUES (1, 100, 0), (100, 1, 0)"});
  // Key 1 is now v = 1: the row (100, 1, 0).
  auto updated = this->cli->update_one("ops_t", 1, {{"b", 7}});
  INFO((updated ? updated->dump() : text(updated.error())));
  REQUIRE(updated);
  CHECK(updated->at("id") == 100);
  auto deleted = this->cli->delete_one("ops_t", 1);
  REQUIRE(deleted);
  auto left = this->must_exec({"SELECT id, v FROM ops_t"});
  REQUIRE(left.rows.size() == 1);
  CHECK(left.rows.at(0).at(0).as_int() == 1);
  CHECK(left.rows.at(0).at(1).as_int() == 100);
  // Again for delete_many after one more re-creation.
  this->must_exec({"DROP TABLE ops_t"});
  this->must_exec({"CREATE TABLE ops_t (id INTEGER PRIMARY KEY, v INTEGER, b INTEGER)"});
  this->must_exec({"INSERT INTO ops_t VALUES (1, 100, 0), (100, 1, 0)"});
  REQUIRE(this->cli->delete_many("ops_t", nlohmann::json::array({100})));
  auto kept = this->must_exec({"SELECT id FROM ops_t"});
  REQUIRE(kept.rows.size() == 1);
  CHECK(kept.rows.at(0).at(0).as_int() == 1);
}

// -- errors the caller sees ----------------------------------------------------------

TEMPLATE_TEST_CASE_METHOD(trust,
                          "the caller's own timeout and a stopped database are cafdb "
                          "errors",
                          "[trust]", sqlite_backend, pg_backend) {
  client hasty{this->sys, this->db, std::chrono::milliseconds(100)};
  session_options opts;
  opts.request_timeout = std::chrono::milliseconds(500); // the server-side cancel
  auto slow = hasty.exec({TestType::endless_sql}, opts);
  REQUIRE(!slow);
  CHECK(is(slow.error(), errc::request_timeout));
  CHECK(describe(slow.error()).message.find("100 ms") != std::string::npos);
  REQUIRE_FALSE(this->cli->stop());
  auto after = this->cli->exec({"SELECT 1"});
  REQUIRE(!after);
  CHECK(is(after.error(), errc::shutting_down));
  auto session = this->cli->open_session();
  REQUIRE(!session);
  CHECK(is(session.error(), errc::shutting_down));
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "a session call past the caller's timeout: the late answer never "
                          "reaches a later call",
                          "[trust]", sqlite_backend, pg_backend) {
  client hasty{this->sys, this->db, std::chrono::milliseconds(100)};
  session_options opts;
  opts.request_timeout = std::chrono::milliseconds(400); // the session cancels it then
  auto s = hasty.open_session(opts);
  REQUIRE(s);
  auto slow = s->exec({TestType::endless_sql});
  REQUIRE(!slow);
  CHECK(is(slow.error(), errc::request_timeout));
  // The session answers the endless statement late (its own deadline): that answer
  // lands in the caller's mailbox while or after later calls wait, and must not be
  // taken for theirs.
  REQUIRE(eventually([&] { return static_cast<bool>(s->exec({"SELECT 1"})); }));
  for (int i = 2; i < 40; ++i) {
    auto r = s->exec({"SELECT " + std::to_string(i)});
    INFO((r ? std::string{} : render(r.error())));
    REQUIRE(r);
    CHECK(r->rows.at(0).at(0).as_int() == i);
  }
  CHECK_FALSE(s->close());
}

TEMPLATE_TEST_CASE_METHOD(trust,
                          "actors that send their own requests get cafdb errors through "
                          "as_cafdb_error",
                          "[trust]", sqlite_backend, pg_backend) {
  // What an actor's error handler receives for `request` sent to `dest`.
  auto error_of = [&](session_actor dest, statement stmt, caf::timespan timeout) {
    std::promise<caf::error> seen;
    auto answer = seen.get_future();
    // Spawn arguments, not captures: CAF 0.17 dereferences a null tuple for an actor
    // function that takes none (UBSan reports it).
    auto asker = [](caf::event_based_actor* self, std::promise<caf::error>* out, session_actor to,
                    statement what, caf::timespan limit) {
      then_settled(
          self->request(to, limit, exec_atom::value, what),
          [out](result_set&) { out->set_value(make_error(errc::none)); },
          [out](caf::error& err) { out->set_value(as_cafdb_error(err)); });
    };
    this->sys.spawn(asker, &seen, dest, stmt, timeout);
    REQUIRE(answer.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    return answer.get();
  };
  session_options opts;
  opts.request_timeout = std::chrono::milliseconds(1000);
  auto s = this->cli->open_session(opts);
  REQUIRE(s);
  auto handle = s->handle();

  auto timed_out = error_of(handle, {TestType::endless_sql}, std::chrono::milliseconds(100));
  INFO(render(timed_out));
  CHECK(is(timed_out, errc::request_timeout));

  REQUIRE_FALSE(s->close());
  auto gone = error_of(handle, {"SELECT 1"}, std::chrono::seconds(5));
  INFO(render(gone));
  CHECK(is(gone, errc::session_closed));
  CHECK(is(as_cafdb_error(caf::sec::request_receiver_down), errc::session_closed));
  CHECK(is(as_cafdb_error(caf::sec::unexpected_message), errc::unavailable));
  CHECK(is(as_cafdb_error(make_error(errc::busy)), errc::busy));
}

TEMPLATE_TEST_CASE_METHOD(trust, "timeouts of any size mean what they say, never overflow",
                          "[trust]", sqlite_backend, pg_backend) {
  for (auto forever : {caf::timespan::max(), caf::timespan::max() - std::chrono::seconds(1)}) {
    CHECK(this->cli->await_ready(forever));
    client patient{this->sys, this->db, forever};
    auto r = patient.exec({"SELECT 1"});
    INFO((r ? std::string{"ok"} : text(r.error())));
    CHECK(r);
    session_options opts;
    opts.request_timeout = forever;
    opts.wait_timeout = forever;
    auto s = patient.open_session(opts);
    REQUIRE(s);
    CHECK(s->exec({"SELECT 1"}));
    CHECK(patient.exec({"SELECT 1"}, opts));
    CHECK(patient.count({"SELECT 1"}, opts));
  }
  // Zero or less: no limit of the client's own.
  client unlimited{this->sys, this->db, caf::timespan::min()};
  CHECK(unlimited.exec({"SELECT 1"}));
  CHECK(this->cli->await_ready(caf::timespan::min())); // ready: answers at once
}

// -- bookkeeping -------------------------------------------------------------------

TEMPLATE_TEST_CASE_METHOD(trust,
                          "requests leave nothing behind: timers, sessions, leases and "
                          "subscribers return to their starting size",
                          "[trust]", sqlite_backend, pg_backend) {
  auto& db = *this->cli;
  REQUIRE(db.exec({"INSERT INTO t (v) VALUES ('warm up')"}));
  auto settled = [&] {
    auto report = this->status();
    for (auto& pool : report.pools)
      if (pool.in_use != 0 || pool.waiting != 0)
        return false;
    return report.sessions == 0 && report.pending == 0;
  };
  REQUIRE(eventually(settled));
  auto timers = this->clock_entries();
  auto actors = this->sys.registry().running();
  auto subscribers = this->status().subscribers;

  for (int i = 0; i < 500; ++i)
    REQUIRE(db.exec({"SELECT v FROM t WHERE id = $1", {1}}));
  for (int i = 0; i < 100; ++i) {
    auto s = db.open_session();
    REQUIRE(s);
    REQUIRE_FALSE(s->begin());
    REQUIRE(s->exec({"UPDATE t SET v = $1 WHERE id = 1", {std::to_string(i)}}));
    REQUIRE_FALSE(s->commit());
  }
  {
    // An actor that stays alive throughout: what the database keeps for it (monitors,
    // request timeouts) must go with each answer, not with the actor.
    caf::scoped_actor client_actor{this->sys};
    for (int i = 0; i < 2; ++i) {
      auto snapshot = db.subscribe(caf::actor_cast<caf::actor>(client_actor));
      REQUIRE(snapshot);
    }
    CHECK(this->status().subscribers == subscribers + 1); // subscribing twice is once
    for (int i = 0; i < 300; ++i) {
      bool answered = false;
      auto handle = client_actor->request(this->db, std::chrono::seconds(30), exec_atom::value,
                                          statement{"SELECT 1"}, session_options{});
      auto id = handle.id();
      handle.receive([&](result_set&) { answered = true; }, [&](caf::error&) {});
      forget_timeout(client_actor.ptr(), id);
      REQUIRE(answered);
    }
    // The one-shot sessions are gone although their client lives on.
    CHECK(eventually([&] { return this->sys.registry().running() <= actors + 1; }));
  }
  CHECK(eventually(settled));
  CHECK(eventually([&] { return this->status().subscribers == subscribers; }));
  CHECK(eventually([&] { return this->sys.registry().running() <= actors; }));
  // A sweep timer for idle sessions may be pending; nothing per request is.
  INFO("timers before: " << timers << ", after: " << this->clock_entries());
  CHECK(eventually([&] { return this->clock_entries() <= timers + 2; }));
}

// -- start-up failures retrying cannot fix -----------------------------------------

namespace {

/// Starts a database on `cfg` and returns how start-up ended, and how long it took.
std::pair<caf::expected<readiness_snapshot>, double> start_up(config cfg) {
  cfg.setup_timeout = std::chrono::milliseconds(30000);
  auto started = std::chrono::steady_clock::now();
  database_fixture fx{cfg};
  auto ready = fx.cli->await_ready(std::chrono::seconds(20));
  auto took = seconds_since(started);
  return {std::move(ready), took};
}

} // namespace

TEST_CASE("start-up fails at once on a database that does not exist (PostgreSQL) or a file "
          "that is not a database (SQLite)",
          "[trust]") {
  SECTION("postgresql: missing database") {
    auto url = pg_url();
    auto slash = url.find('/', url.find("://") + 3);
    auto query = url.find('?', slash);
    auto missing = url.substr(0, slash) + "/cafdb_no_such_database" +
                   (query == std::string::npos ? "" : url.substr(query));
    auto cfg = must_config(missing);
    cfg.log_level = "off";
    auto [ready, took] = start_up(cfg);
    REQUIRE(!ready);
    INFO(text(ready.error()));
    CHECK(is(ready.error(), errc::connect_failed));
    CHECK(describe(ready.error()).message.find("does not exist") != std::string::npos);
    CHECK(took < 10.0); // not setup_timeout (30 s)
  }
  SECTION("sqlite: not a database") {
    temp_dir dir;
    {
      std::ofstream out{dir.file("garbage.db")};
      out << std::string(8192, 'x');
    }
    auto cfg = must_config("sqlite:///" + dir.file("garbage.db"));
    cfg.log_level = "off";
    auto [ready, took] = start_up(cfg);
    REQUIRE(!ready);
    INFO(text(ready.error()));
    CHECK(is(ready.error(), errc::connect_failed));
    CHECK(took < 10.0);
  }
}

TEST_CASE("JSON nested too deep comes back as text, never a crash", "[trust]") {
  file_database fx;
  fx.must_exec({"CREATE TABLE dj (id INTEGER PRIMARY KEY, doc JSON)"});
  constexpr int depth = 200000;
  std::string deep = std::string(depth, '[') + std::string(depth, ']');
  fx.must_exec({"INSERT INTO dj VALUES (1, $1)", {deep}});
  fx.must_exec({"INSERT INTO dj VALUES (2, $1)", {"[[1], {\"a\": \"[[[\"}]"}});
  auto rows = fx.cli->read_query({"SELECT doc FROM dj ORDER BY id"});
  REQUIRE(rows);
  CHECK(rows->at(0).at("doc") == deep);
  CHECK(rows->at(1).at("doc").is_array()); // shallow JSON is still JSON
}

TEST_CASE("SQLite columns declared BOOLEAN give booleans back", "[trust]") {
  file_database fx;
  fx.must_exec({"CREATE TABLE flags (id INTEGER PRIMARY KEY, on_off BOOLEAN, n INTEGER)"});
  fx.must_exec({"INSERT INTO flags (on_off, n) VALUES ($1, 1), ($2, 0)", {true, false}});
  auto r = fx.cli->exec({"SELECT on_off, n FROM flags ORDER BY id"});
  REQUIRE(r);
  CHECK(r->rows.at(0).at(0).type() == value_type::boolean);
  CHECK(r->rows.at(0).at(0).as_bool());
  CHECK_FALSE(r->rows.at(1).at(0).as_bool());
  CHECK(r->rows.at(0).at(1).type() == value_type::integer); // undeclared: stays an integer
}

TEST_CASE("SQLite: last_insert_id is the request's own insert, never an earlier one", "[trust]") {
  file_database fx;
  fx.must_exec({"CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)"});
  CHECK(fx.must_exec({"INSERT INTO kv (id, v) VALUES (1, 'a')"}).last_insert_id == 1);
  CHECK(fx.must_exec({"INSERT INTO kv (id, v) VALUES (2, 'b')"}).last_insert_id == 2);
  // An upsert that updated inserted nothing: it must not report row 2.
  auto upsert = fx.must_exec(
      {"INSERT INTO kv (id, v) VALUES (1, 'c') ON CONFLICT(id) DO UPDATE SET v = excluded.v"});
  CHECK(upsert.affected_rows == 1);
  CHECK(upsert.last_insert_id == 0);
  auto ignored = fx.must_exec({"INSERT OR IGNORE INTO kv (id, v) VALUES (2, 'd')"});
  CHECK(ignored.last_insert_id == 0);
  // The same through exec_many: the rowid of one of its own inserts, or nothing.
  bulk_statement updates{"INSERT INTO kv (id, v) VALUES ($1, $2) ON CONFLICT(id) DO UPDATE SET "
                         "v = excluded.v",
                         {{1, "e"}, {2, "f"}}};
  auto many = fx.cli->exec_many(updates);
  REQUIRE(many);
  CHECK(many->affected_rows == 2);
  CHECK(many->last_insert_id == 0);
  CHECK(fx.must_exec({"INSERT INTO kv (v) VALUES ('g')"}).last_insert_id == 3);
}

TEST_CASE("SQLite: a write waiting for another process's lock ends with its request, and "
          "with stop(), not after busy_timeout",
          "[trust]") {
  temp_dir dir;
  auto cfg = stopping_in_a_second(dir);
  cfg.busy_timeout = std::chrono::seconds(60);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (id INTEGER PRIMARY KEY)"});
  // Another process's writer holds the file's write lock.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(cfg.path.c_str(), &other) == SQLITE_OK);
  auto hold_lock = [&] {
    REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  };
  hold_lock();

  session_options opts;
  opts.request_timeout = std::chrono::milliseconds(300);
  auto started = std::chrono::steady_clock::now();
  auto blocked = fx.cli->exec({"INSERT INTO t VALUES (1)"}, opts);
  auto took = seconds_since(started);
  REQUIRE(!blocked);
  INFO(render(blocked.error()) << " after " << took << " s");
  // Cancelled at its deadline, and the cancel confirmed: nothing was written.
  CHECK(is(blocked.error(), errc::statement_timeout));
  CHECK(took < 3.0);
  // The lock gone, the same writer connection serves at once: it was not stuck in the
  // wait, so nothing was discarded.
  REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
  auto next = fx.cli->exec({"INSERT INTO t VALUES (2)"}, opts);
  INFO((next ? std::string{"ok"} : render(next.error())));
  REQUIRE(next);
  CHECK(fx.stats("writer").discarded == 0);
  CHECK(fx.count("t") == 1); // the cancelled write was not applied

  // stop() while a write waits for the lock (with no deadline of its own that comes
  // sooner) ends within shutdown_timeout and answers it.
  hold_lock();
  caf::expected<result_set> waiting{caf::error{}};
  std::thread writer([&] {
    client own{fx.sys, fx.db, std::chrono::seconds(120)};
    session_options patient;
    patient.request_timeout = std::chrono::seconds(90);
    waiting = own.exec({"INSERT INTO t VALUES (3)"}, patient);
  });
  REQUIRE(eventually([&] { return fx.stats("writer").in_use == 1; }));
  started = std::chrono::steady_clock::now();
  REQUIRE_FALSE(fx.cli->stop());
  writer.join();
  took = seconds_since(started);
  INFO("stop took " << took << " s");
  CHECK(took < 1.0 + 2.0);
  REQUIRE(!waiting);
  CHECK(is(waiting.error(), errc::shutting_down));
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
}

TEST_CASE("stop on SQLite cancels reads running in place on borrowed connections", "[trust]") {
  temp_dir dir;
  auto cfg = stopping_in_a_second(dir);
  cfg.connect_timeout = std::chrono::milliseconds(1000);
  database_fixture fx{cfg};
  fx.require_ready();
  auto in_place = [&] {
    auto report = fx.cli->status();
    return report ? report->reads_in_place : int64_t{0};
  };
  // The first read opens the reader pool's connection; the pool shelves it for reads
  // in place.
  REQUIRE(fx.read_as_new_client({"SELECT 1"}, std::chrono::seconds(5)));
  auto before = in_place();
  constexpr int readers = 2; // one reads in place, one through the engine
  std::vector<caf::expected<result_set>> answers(readers, caf::error{});
  std::vector<std::thread> threads;
  for (int i = 0; i < readers; ++i)
    threads.emplace_back([&, i] {
      client own{fx.sys, fx.db, std::chrono::seconds(120)};
      session_options ro;
      ro.read_only = true;
      ro.request_timeout = std::chrono::seconds(90);
      // A reader that opens its session only as stop() begins is refused there: its
      // answer is that refusal.
      auto s = own.open_session(ro);
      answers[i] =
          s ? s->exec({sqlite_backend::endless_sql}) : caf::expected<result_set>{s.error()};
    });
  REQUIRE(eventually([&] { return in_place() >= before + 1; }));
  auto started = std::chrono::steady_clock::now();
  REQUIRE_FALSE(fx.cli->stop());
  for (auto& t : threads)
    t.join();
  auto took = seconds_since(started);
  INFO("stop took " << took << " s");
  CHECK(took < 1.0 + 1.0 + 2.0);
  for (auto& answer : answers) {
    REQUIRE(!answer);
    INFO(render(answer.error()));
    CHECK((is(answer.error(), errc::shutting_down) || is(answer.error(), errc::session_closed)));
  }
}

TEST_CASE("stop under load on SQLite returns within shutdown_timeout, and every request sent "
          "before it has its answer",
          "[trust]") {
  temp_dir dir;
  auto cfg = stopping_in_a_second(dir);
  cfg.pool_timeout = std::chrono::milliseconds(30000);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)"});
  constexpr int threads = 12;
  std::atomic<int> in_flight{0};
  std::atomic<int> started{0};
  std::atomic<int> untyped{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i)
    workers.emplace_back([&, i] {
      client own{fx.sys, fx.db, std::chrono::seconds(30)};
      auto s = own.open_session();
      if (!s)
        return;
      // One session at a time holds SQLite's writer; the others wait for it at begin.
      in_flight += 1;
      started += 1;
      auto err = s->begin();
      in_flight -= 1;
      for (int n = 0; !err; ++n) {
        in_flight += 1;
        auto r = s->exec({"INSERT INTO t (v) VALUES ($1)", {i * 100000 + n}});
        in_flight -= 1;
        if (!r)
          err = r.error();
      }
      if (describe(err).code == errc::none)
        untyped += 1;
    });
  REQUIRE(eventually([&] { return started == threads; }));
  auto begun = std::chrono::steady_clock::now();
  REQUIRE_FALSE(fx.cli->stop());
  auto took = seconds_since(begun);
  // Answers already sent may still be on their way to the threads' own mailboxes.
  CHECK(eventually([&] { return in_flight == 0; }, 1s));
  for (auto& t : workers)
    t.join();
  INFO("stop took " << took << " s");
  CHECK(took < 1.0 + 2.0);
  CHECK(untyped == 0);
  // No transaction committed: each was open when the database stopped.
  database_fixture again{cfg};
  again.require_ready();
  CHECK(again.count("t") == 0);
}

TEST_CASE("SQLite: a database file deleted or replaced while open is noticed before a write is "
          "acknowledged",
          "[trust]") {
  temp_dir dir;
  auto cfg = file_config(dir);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"});
  fx.must_exec({"INSERT INTO t (v) VALUES ('before')"});
  SECTION("deleted") {
    std::filesystem::remove(dir.file("test.db"));
  }
  SECTION("replaced") {
    std::filesystem::copy_file(dir.file("test.db"), dir.file("copy.db"));
    std::filesystem::rename(dir.file("copy.db"), dir.file("test.db"));
  }
  auto autocommit = fx.cli->exec({"INSERT INTO t (v) VALUES ('lost?')"});
  REQUIRE(!autocommit);
  INFO(text(autocommit.error()));
  CHECK(describe(autocommit.error()).message.find("deleted or replaced") != std::string::npos);
}

TEST_CASE("SQLite: a database file deleted while open never comes back as a new empty one, and "
          "readers do not go on reading the old one",
          "[trust]") {
  temp_dir dir;
  auto cfg = file_config(dir);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (id INTEGER PRIMARY KEY)"});
  fx.must_exec({"INSERT INTO t VALUES (1), (2), (3)"});
  session_options ro;
  ro.read_only = true;
  REQUIRE(fx.cli->exec({"SELECT count(*) FROM t"}, ro)); // readers open on the file
  for (auto suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(dir.file(std::string{"test.db"} + suffix));
  // Every write is refused, the first and the ones after the writer is replaced.
  for (int i = 0; i < 3; ++i) {
    auto write = fx.cli->exec({"INSERT INTO t VALUES (99)"});
    INFO(i << ": " << (write ? std::string{"ok"} : text(write.error())));
    CHECK(!write);
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("test.db")));
  // The engine says so: degraded, naming the file.
  CHECK(eventually([&] {
    auto report = fx.cli->status();
    return report && report->state == readiness_state::degraded;
  }));
  auto report = fx.cli->status();
  REQUIRE(report);
  std::string details;
  for (auto& c : report->components)
    details += c.component + ": " + c.detail + "\n";
  INFO(details);
  CHECK(details.find("test.db") != std::string::npos);
  // A reader never answers from the deleted file.
  auto read = fx.cli->exec({"SELECT count(*) FROM t"}, ro);
  INFO((read ? std::string{"rows: "} + read->rows.at(0).at(0).as_text() : text(read.error())));
  CHECK(!read);
}

TEST_CASE("PostgreSQL: a cached statement's own error is never run twice", "[trust][pg]") {
  temp_dir dir;
  database_fixture fx{pg_backend::make_config(dir)};
  fx.require_ready();
  fx.must_exec({"CREATE SEQUENCE s"});
  // Cached after the first run; the third fails with its own error (division by zero,
  // class 22), which a re-prepare would not change: it must not run again.
  for (int divisor : {1, 1})
    REQUIRE(fx.cli->exec({"SELECT nextval('s') / $1::int", {divisor}}));
  auto failed = fx.cli->exec({"SELECT nextval('s') / $1::int", {0}});
  REQUIRE(!failed);
  CHECK(describe(failed.error()).driver_code == "22012");
  auto last = fx.cli->exec({"SELECT last_value FROM s"});
  REQUIRE(last);
  CHECK(last->rows.at(0).at(0).as_int() == 3);
}

// Found from outside: SQLite rolls back the whole transaction on some failures (an
// interrupt, OR ROLLBACK, RAISE(ROLLBACK), a full disk), also inside the savepoint of a
// batch. The session stayed in_tx while SQLite was back in autocommit: the next
// statements committed on their own, and rollback answered ok without undoing them.
TEST_CASE("a failure that makes SQLite roll back the whole transaction fails the session's "
          "transaction; nothing after it commits on its own",
          "[trust][sqlite]") {
  file_database fx;
  fx.must_exec({"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"});
  fx.must_exec({"CREATE TABLE u (id INTEGER PRIMARY KEY ON CONFLICT ROLLBACK, v TEXT)"});
  fx.must_exec({"CREATE TRIGGER boom AFTER INSERT ON t WHEN new.v = 'boom' "
                "BEGIN SELECT RAISE(ROLLBACK, 'boom'); END"});
  fx.must_exec({"INSERT INTO u (id, v) VALUES (1, 'there')"});
  session_options options;
  options.request_timeout = 300ms;
  auto s = fx.cli->open_session(options);
  REQUIRE(s);
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"INSERT INTO t (id, v) VALUES (1, 'A')"}));
  REQUIRE(!s->savepoint("sp"));
  caf::error failure;
  auto how = GENERATE(as<std::string>{}, "transact with OR ROLLBACK",
                      "exec_many ON CONFLICT ROLLBACK", "transact with RAISE(ROLLBACK)",
                      "exec with RAISE(ROLLBACK)", "transact interrupted at the request deadline");
  INFO(how);
  if (how == "transact with OR ROLLBACK") {
    failure = s->transact({{"INSERT OR ROLLBACK INTO t (id, v) VALUES (1, 'dup')"}}).error();
  } else if (how == "exec_many ON CONFLICT ROLLBACK") {
    bulk_statement rows{"INSERT INTO u (id, v) VALUES ($1, $2)", {{2, "new"}, {1, "dup"}}};
    failure = s->exec_many(std::move(rows)).error();
  } else if (how == "transact with RAISE(ROLLBACK)") {
    failure = s->transact({{"INSERT INTO t (v) VALUES ('boom')"}}).error();
  } else if (how == "exec with RAISE(ROLLBACK)") {
    failure = s->exec({"INSERT INTO t (v) VALUES ('boom')"}).error();
  } else {
    failure = s->transact({{"INSERT INTO t (v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                            "SELECT x + 1 FROM c WHERE x < 2000000000) SELECT 'L' FROM c"}})
                  .error();
  }
  INFO(render(failure));
  CHECK(is(failure, errc::transaction_failed));
  CHECK(describe(failure).message.find("rolled back the whole transaction") != std::string::npos);
  auto info = s->info();
  REQUIRE(info);
  CHECK(info->phase == session_phase::failed);
  CHECK(info->savepoints == 0); // they went with the transaction
  CHECK_FALSE(info->holds_lease);
  // Nothing more runs in it; the savepoint is gone; rollback settles it.
  CHECK(is(s->exec({"INSERT INTO t (id, v) VALUES (2, 'B')"}).error(), errc::transaction_failed));
  CHECK(is(s->rollback_to("sp"), errc::transaction_failed));
  REQUIRE(!s->rollback());
  CHECK(s->info()->phase == session_phase::idle);
  CHECK(fx.count("t") == 0);
  CHECK(fx.count("u") == 1);
  // The session and the writer work on.
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"INSERT INTO t (id, v) VALUES (3, 'C')"}));
  REQUIRE(!s->commit());
  CHECK(fx.count("t") == 1);
}
