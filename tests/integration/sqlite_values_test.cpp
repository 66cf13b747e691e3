// SQLite-specific: typeless columns keep every value type as bound.
#include "backend/sqlite_driver.hpp"
#include "session/read_classifier.hpp"
#include "support/fixture.hpp"

using namespace cafdb;
using namespace cafdb::test;

TEST_CASE_METHOD(file_database, "SQLite: values of every type survive a round trip", "[sqlite]") {
  must_exec({"CREATE TABLE kinds (n, b, i, r, t, x)"});
  blob bytes{0, 1, 2, 254, 255};
  must_exec({"INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6)",
             {nullptr, true, int64_t{9007199254740993}, 2.5, "héllo", bytes}});
  auto rows = must_exec({"SELECT n, b, i, r, t, x FROM kinds"});
  REQUIRE(rows.rows.size() == 1);
  auto& row = rows.rows[0];
  CHECK(row[0].is_null());
  CHECK(row[1].as_bool());
  CHECK(row[2].as_int() == 9007199254740993);
  CHECK(row[3].as_double() == 2.5);
  CHECK(row[4] == value{"héllo"});
  CHECK(row[5].as_blob() == bytes);
  // Placeholders can repeat and come in any order.
  auto swapped = must_exec({"SELECT $2 || $1 || $2", {"a", "b"}});
  CHECK(swapped.rows[0][0] == value{"bab"});
}

TEST_CASE("SQLite: a connection setting changed by one request never reaches the next, in "
          "memory or in a file",
          "[trust][sqlite]") {
  // Found from outside: on `sqlite::memory:` (one shared connection, never reopened)
  // these stuck to the connection for every later request.
  const std::vector<std::pair<std::string, std::string>> changes = {
      {"reverse_unordered_selects", "1"},
      {"recursive_triggers", "1"},
      {"automatic_index", "0"},
      {"cache_size", "5"},
      {"busy_timeout", "1"},
      {"defer_foreign_keys", "1"},
      {"ignore_check_constraints", "1"},
      {"legacy_alter_table", "1"},
      {"temp_store", "2"},
      {"cell_size_check", "1"},
  };
  for (bool in_memory : {true, false}) {
    // Named by kind, not by path: a section named after a fresh temp dir is a new
    // section on every run of the test case, which Catch2 then runs forever.
    DYNAMIC_SECTION((in_memory ? "in memory" : "in a file")) {
      temp_dir dir;
      auto url = in_memory ? std::string{"sqlite::memory:"} : "sqlite:///" + dir.file("s.db");
      auto cfg = must_config(url);
      cfg.log_level = "off";
      database_fixture fx{cfg};
      fx.require_ready();
      auto read = [&](const std::string& sql) {
        auto r = fx.cli->exec({sql});
        INFO(sql << ": " << (r ? std::string{"ok"} : text(r.error())));
        REQUIRE(r);
        REQUIRE(r->rows.size() == 1);
        return r->rows.at(0).at(0).as_text();
      };
      for (auto& [name, value] : changes) {
        INFO(name);
        auto before = read("PRAGMA " + name);
        fx.must_exec({"PRAGMA " + name + " = " + value});
        CHECK(read("PRAGMA " + name) == before);
      }
      // A write-only setting: seen through what it changes.
      fx.must_exec({"PRAGMA case_sensitive_like = 1"});
      CHECK(read("SELECT 'a' LIKE 'A'") == "1");
      // Lock waits still end at the request's deadline, not at busy_timeout's.
      fx.must_exec({"CREATE TABLE IF NOT EXISTS t (x)"});
      fx.must_exec({"INSERT INTO t VALUES (1)"});
      CHECK(read("SELECT count(*) FROM t") == "1");
    }
  }
}

TEST_CASE("SQLite: a cached statement whose table was dropped answers the statement's error, "
          "the first time as every time after",
          "[sqlite][trust]") {
  // Found from outside: after DROP TABLE, the first read on a connection that had the
  // read cached answered database_error, and the next ones syntax_error.
  temp_dir dir;
  sqlite_options options;
  options.path = dir.file("drop.db");
  sqlite_driver writer{options, connection_role::writer};
  sqlite_driver reader{options, connection_role::reader};
  REQUIRE(writer.open());
  REQUIRE(writer.execute({"CREATE TABLE t (x INTEGER)"}));
  REQUIRE(writer.execute({"INSERT INTO t VALUES (1)"}));
  REQUIRE(reader.open());
  for (int i = 0; i < 2; ++i) // cached on both connections
    for (auto* conn : {&writer, &reader})
      REQUIRE(conn->execute({"SELECT x FROM t"}));
  REQUIRE(writer.execute({"DROP TABLE t"}));
  for (int i = 0; i < 3; ++i)
    for (auto* conn : {&reader, &writer}) {
      auto gone = conn->execute({"SELECT x FROM t"});
      REQUIRE(!gone);
      INFO(gone.error().message);
      CHECK(gone.error().code == errc::syntax_error);
      CHECK(gone.error().message.find("no such table") != std::string::npos);
    }
  // A failure while a statement runs is still the run's.
  auto runtime = reader.execute({"SELECT abs(-9223372036854775807 - 1)"});
  REQUIRE(!runtime);
  CHECK(runtime.error().code == errc::database_error);
}

TEST_CASE("SQLite: the read classifier says 'reads' only of what certainly reads, prepares "
          "without running, and waits for a database it cannot open yet",
          "[sqlite][read]") {
  temp_dir dir;
  sqlite_options options;
  options.path = dir.file("classify.db");
  read_router::read_classifier classifier{
      [options] { return std::make_unique<sqlite_driver>(options, connection_role::reader); }};
  // No file yet: a reader never creates one, so nothing is certain.
  CHECK_FALSE(classifier.certainly_reads("SELECT 1"));
  sqlite_driver writer{options, connection_role::writer};
  REQUIRE(writer.open());
  REQUIRE(writer.execute({"CREATE TABLE t (x INTEGER)"}));
  CHECK(classifier.certainly_reads("SELECT 1"));
  CHECK(classifier.certainly_reads("SELECT x FROM t WHERE x > $1"));
  CHECK(classifier.certainly_reads("WITH c AS (SELECT x FROM t) SELECT count(*) FROM c"));
  for (auto* sql : {"INSERT INTO t VALUES (1)", "DELETE FROM t", "SELECT 1; DELETE FROM t",
                    "PRAGMA query_only = 0", "EXPLAIN PRAGMA query_only = 0", "BEGIN",
                    "SELECT last_insert_rowid()", "SELECT changes()", "CREATE TABLE u (y)",
                    "ATTACH ':memory:' AS other", "SELECT no_such FROM t", "VACUUM"}) {
    INFO(sql);
    CHECK_FALSE(classifier.certainly_reads(sql));
  }
  // Asking ran nothing.
  auto count = writer.execute({"SELECT count(*) FROM t"});
  REQUIRE(count);
  CHECK(count->rows.at(0).at(0).as_int() == 0);
}
