// transaction_control: which statements of a script are transaction control, read the
// way each engine's lexer reads literals, quoted names and comments.
#include <catch2/catch.hpp>

#include "backend/driver.hpp"

using namespace cafdb;

namespace {

std::string found(const std::string& sql, engine_kind dialect) {
  auto keyword = transaction_control(sql, dialect);
  return keyword ? *keyword : std::string{};
}

} // namespace

TEST_CASE("transaction control starting any statement of a script is found", "[sql_text]") {
  for (auto dialect : {engine_kind::sqlite, engine_kind::postgresql}) {
    CHECK(found("BEGIN", dialect) == "BEGIN");
    CHECK(found("  begin deferred transaction", dialect) == "BEGIN");
    CHECK(found("SELECT 1; BEGIN", dialect) == "BEGIN");
    CHECK(found("SELECT 1;COMMIT", dialect) == "COMMIT");
    CHECK(found("select 1;\n-- note\nend", dialect) == "END");
    CHECK(found("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", dialect) == "START");
    CHECK(found("SELECT 1; ROLLBACK TO x", dialect) == "ROLLBACK");
    CHECK(found("ABORT", dialect) == "ABORT");
    CHECK(found("SELECT 1; SAVEPOINT s1", dialect) == "SAVEPOINT");
    CHECK(found("RELEASE s1", dialect) == "RELEASE");
    CHECK(found("PREPARE TRANSACTION 'gid'", dialect) == "PREPARE TRANSACTION");
    CHECK(found("COMMIT PREPARED 'gid'", dialect) == "COMMIT");
    CHECK(found("/* lead */ COMMIT", dialect) == "COMMIT");
    CHECK(found("SELECT 'a'; /* x */ ;; COMMIT", dialect) == "COMMIT");
  }
}

TEST_CASE("keywords inside literals, names and comments, and mid-statement, are not "
          "transaction control",
          "[sql_text]") {
  for (auto dialect : {engine_kind::sqlite, engine_kind::postgresql}) {
    CHECK(found("SELECT 'x; COMMIT'", dialect).empty());
    CHECK(found("SELECT 'it''s; COMMIT'", dialect).empty());
    CHECK(found("SELECT \"begin\" FROM t", dialect).empty());
    CHECK(found("SELECT \"a\"\"; COMMIT\" FROM t", dialect).empty());
    CHECK(found("SELECT 1 -- ; COMMIT", dialect).empty());
    CHECK(found("SELECT 1 /* ; COMMIT */", dialect).empty());
    CHECK(found("SELECT CASE WHEN a THEN 1 END FROM t", dialect).empty());
    CHECK(found("UPDATE t SET begin_at = 1; SELECT end_at FROM t", dialect).empty());
    CHECK(found("PREPARE q AS SELECT 1", dialect).empty());
    CHECK(found("", dialect).empty());
  }
  // PostgreSQL: dollar quotes, E'' strings with backslash escapes, BEGIN ATOMIC bodies;
  // $1 is a parameter, not a dollar quote.
  auto pg = engine_kind::postgresql;
  CHECK(found("SELECT $$; COMMIT$$", pg).empty());
  CHECK(found("SELECT $tag$ ; COMMIT $tag$", pg).empty());
  CHECK(found("DO $$BEGIN PERFORM 1; END$$", pg).empty());
  CHECK(found("SELECT E'\\'; COMMIT'", pg).empty());
  CHECK(found("SELECT $1; COMMIT", pg) == "COMMIT");
  // Names that look like block syntax (AS case, t.end, a column named begin) do not
  // hide what follows the body.
  CHECK(found("CREATE FUNCTION fc() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS case; "
              "END; COMMIT AND CHAIN; SELECT 1 AS end",
              pg) == "COMMIT");
  CHECK(found("CREATE FUNCTION fc() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t.case FROM t; "
              "END; COMMIT",
              pg) == "COMMIT");
  CHECK(found("CREATE FUNCTION fc() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT begin FROM t; "
              "END; COMMIT",
              pg) == "COMMIT");
  CHECK(found("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1 AS begin; END; COMMIT",
              engine_kind::sqlite) == "COMMIT");
  // PostgreSQL ends a line comment at a carriage return as well; SQLite does not.
  CHECK(found("SELECT 1; -- note\rCOMMIT", pg) == "COMMIT");
  CHECK(found("SELECT 1; -- note\rCOMMIT", engine_kind::sqlite).empty());
  CHECK(found("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; COMMIT",
              pg) == "COMMIT");
  CHECK(found("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true "
              "THEN 1 END; END",
              pg)
            .empty());
  // With standard_conforming_strings off (any session may SET it), a backslash
  // escapes the quote: this text hides COMMIT; BEGIN under one reading, not the other.
  CHECK(found("SELECT '\\' AS a, ' ; COMMIT; BEGIN; SELECT 1 AS b --'", pg) == "COMMIT");
  // A $ inside a name is no dollar quote.
  CHECK(found("SELECT 1 AS a$q$; COMMIT; SELECT 2 AS b$q$", pg) == "COMMIT");
  // PostgreSQL comments nest: the COMMIT is still inside.
  CHECK(found("SELECT 1 /* a /* b */ ; COMMIT */", pg).empty());
  // SQLite: [names] and `names`, trigger bodies; comments do not nest, so the COMMIT
  // after the first */ is a statement.
  auto lite = engine_kind::sqlite;
  CHECK(found("SELECT [x; COMMIT] FROM t", lite).empty());
  CHECK(found("SELECT `x; COMMIT` FROM t", lite).empty());
  CHECK(found("CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET v = 1; END", lite).empty());
  CHECK(found("CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET v = 1; END; END", lite) ==
        "END");
  CHECK(found("SELECT 1 /* a /* b */ ; COMMIT */", lite) == "COMMIT");
}

namespace {

unsigned changes(const std::string& sql, engine_kind dialect) {
  return session_changes(sql, dialect);
}

} // namespace

TEST_CASE("statements that change the session beyond their transaction are found", "[sql_text]") {
  auto pg = engine_kind::postgresql;
  auto lite = engine_kind::sqlite;
  CHECK(changes("SET search_path = other", pg) == session_settings);
  CHECK(changes("select 1; set TimeZone to 'Asia/Tokyo'", pg) == session_settings);
  CHECK(changes("SET SESSION AUTHORIZATION other", pg) == session_settings);
  CHECK(changes("SET ROLE other", pg) == session_settings);
  CHECK(changes("RESET ALL", pg) == session_settings);
  CHECK(changes("SELECT set_config('search_path', 'x', false)", pg) == session_settings);
  CHECK(changes("CREATE TEMP TABLE x (a int)", pg) == session_temp_objects);
  CHECK(changes("create or replace temporary view v as select 1", pg) == session_temp_objects);
  CHECK(changes("CREATE GLOBAL TEMPORARY TABLE x (a int)", pg) == session_temp_objects);
  CHECK(changes("SELECT 1 AS a INTO TEMP t", pg) == session_temp_objects);
  CHECK(changes("LISTEN channel", pg) == session_listen);
  CHECK(changes("PREPARE q AS SELECT 1", pg) == session_prepared);
  CHECK(changes("DEALLOCATE ALL", pg) == session_prepared);
  CHECK(changes("SELECT pg_advisory_lock(1)", pg) == session_advisory_locks);
  CHECK(changes("DECLARE c CURSOR WITH HOLD FOR SELECT 1", pg) == session_cursors);
  CHECK(changes("SET search_path = a; CREATE TEMP TABLE t (a int)", pg) ==
        (session_settings | session_temp_objects));

  CHECK(changes("PRAGMA foreign_keys = OFF", lite) == session_pragmas);
  CHECK(changes("PRAGMA \"foreign_keys\" = OFF", lite) == session_pragmas);
  CHECK(changes("SELECT \"set_config\"('search_path', 'x', false)", pg) == session_settings);
  CHECK((changes("DO $$ BEGIN SET ROLE weak; END $$", pg) & session_settings) != 0);
  CHECK(changes("pragma main.recursive_triggers = 1", lite) == session_pragmas);
  CHECK(changes("PRAGMA cache_size(100)", lite) == session_pragmas);
  CHECK(changes("PRAGMA foreign_keys=0", lite) == session_pragmas);
  // EXPLAIN compiles the PRAGMA, which acts then (found from outside).
  CHECK(changes("EXPLAIN PRAGMA foreign_keys = OFF", lite) == session_pragmas);
  CHECK(changes("explain query plan pragma query_only(0)", lite) == session_pragmas);
  CHECK(changes("SELECT 1; EXPLAIN PRAGMA cache_size = 5", lite) == session_pragmas);
  CHECK(changes("EXPLAIN QUERY PLAN SELECT * FROM t", lite) == 0);
  CHECK(changes("EXPLAIN SELECT 1", pg) == 0);
  CHECK(changes("PRAGMA main.foreign_keys = 0", lite) == session_pragmas);
  CHECK(changes("ATTACH DATABASE 'x.db' AS x", lite) == session_pragmas);
  CHECK(changes("DETACH x", lite) == session_pragmas);
  CHECK(changes("CREATE TEMP TABLE x (a)", lite) == session_temp_objects);
  CHECK(changes("CREATE TEMPORARY VIEW v AS SELECT 1", lite) == session_temp_objects);
  // SQLite takes a '...' literal where a name belongs (found from outside: these
  // reached the next reader).
  CHECK(changes("PRAGMA 'cache_size' = 7", lite) == session_pragmas);
  CHECK(changes("PRAGMA main.'cache_size' = 9", lite) == session_pragmas);
  CHECK(changes("PRAGMA 'cache_size'(7)", lite) == session_pragmas);
  // A temporary object named by its schema.
  CHECK(changes("CREATE TABLE temp.x (a)", lite) == session_temp_objects);
  CHECK(changes("CREATE TABLE 'temp'.x (a)", lite) == session_temp_objects);
  CHECK(changes("CREATE VIEW \"temp\".v AS SELECT 1", lite) == session_temp_objects);
  CHECK(changes("CREATE TABLE pg_temp.x (a int)", pg) == session_temp_objects);
  CHECK(changes("CREATE TABLE pg_temp_3.x (a int)", pg) == session_temp_objects);
}

TEST_CASE("statements that end with their transaction, or only read, change no session",
          "[sql_text]") {
  auto pg = engine_kind::postgresql;
  auto lite = engine_kind::sqlite;
  CHECK(changes("SET LOCAL search_path = other", pg) == 0);
  CHECK(changes("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", pg) == 0);
  CHECK(changes("SET CONSTRAINTS ALL DEFERRED", pg) == 0);
  CHECK(changes("SELECT pg_advisory_xact_lock(1)", pg) == 0);
  CHECK(changes("UPDATE t SET a = 1", pg) == 0);
  CHECK(changes("SELECT 'SET search_path = x'", pg) == 0);
  CHECK(changes("SELECT 1 -- ; SET search_path = x", pg) == 0);
  CHECK(changes("CREATE TABLE temp (a int)", pg) == 0);
  CHECK(changes("CREATE TABLE t (temp int)", pg) == 0);
  CHECK(changes("DECLARE c CURSOR FOR SELECT 1", pg) == 0);
  CHECK(changes("PREPARE TRANSACTION 'gid'", pg) == 0);

  CHECK(changes("PRAGMA table_info(t)", lite) == 0);
  CHECK(changes("PRAGMA main.table_info(t)", lite) == 0);
  CHECK(changes("PRAGMA main.table_info = 1", lite) == 0);
  CHECK(changes("PRAGMA foreign_keys", lite) == 0);
  CHECK(changes("PRAGMA integrity_check", lite) == 0);
  CHECK(changes("SELECT 'PRAGMA foreign_keys = OFF'", lite) == 0);
  CHECK(changes("CREATE TABLE temp (a)", lite) == 0);
  CHECK(changes("SET search_path = x", lite) == 0);
  CHECK(changes("PRAGMA 'table_info'('t')", lite) == 0);
  CHECK(changes("PRAGMA 'cache_size'", lite) == 0);
  CHECK(changes("SELECT 'temp'.x FROM t", lite) == 0);
  CHECK(changes("INSERT INTO t VALUES ('temp')", lite) == 0);
  CHECK(changes("CREATE TABLE main.x (a)", lite) == 0);
  CHECK(changes("CREATE TABLE IF NOT EXISTS temp.x (a)", lite) == session_temp_objects);
  CHECK(changes("CREATE TABLE copy AS SELECT a, b, c, d FROM temp.x", lite) == 0);
  CHECK(changes("CREATE TABLE public.x (a int)", pg) == 0);
}

TEST_CASE("what would lift a read-only session's protection is found", "[sql_text]") {
  auto pg = engine_kind::postgresql;
  auto lite = engine_kind::sqlite;
  auto escape = [](const std::string& sql, engine_kind dialect) {
    auto found = read_only_escape(sql, dialect);
    return found ? *found : std::string{};
  };
  CHECK(escape("SET default_transaction_read_only = off", pg) == "default_transaction_read_only");
  CHECK(escape("SELECT set_config('transaction_read_only', 'off', true)", pg) == "set_config");
  CHECK(escape("SET TRANSACTION READ WRITE", pg) == "READ WRITE");
  CHECK(escape("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", pg) == "READ WRITE");
  CHECK(escape("RESET ALL", pg) == "RESET ALL");
  CHECK(escape("SELECT 1; DISCARD ALL", pg) == "DISCARD");
  CHECK(escape("PRAGMA query_only = 0", lite) == "query_only");
  // Quoted names are names too; DO blocks and escaped names can hide anything.
  CHECK(escape("SELECT \"set_config\"('default_transaction_read_only', 'off', false)", pg) ==
        "set_config");
  CHECK(escape("SELECT U&\"set!005fconfig\" UESCAPE '!' ('a', 'b', false)", pg) ==
        "U&\"...\" names");
  CHECK(escape("DO $$ BEGIN PERFORM set_config('x', 'y', false); END $$", pg) == "DO");
  // A procedure may COMMIT and then lift it (found from outside).
  CHECK(escape("CALL p_def()", pg) == "CALL");
  CHECK(escape("SELECT 1; call p()", pg) == "CALL");
  CHECK(escape("SELECT 'call'", pg).empty());
  CHECK(escape("PRAGMA \"query_only\" = 0", lite) == "query_only");
  CHECK(escape("PRAGMA [query_only] = 0", lite) == "query_only");
  CHECK(escape("PRAGMA `query_only` = 0", lite) == "query_only");
  CHECK(escape("SELECT 'query_only'", lite).empty());
  // SQLite takes a '...' literal as a PRAGMA's name (found from outside: it turned
  // read-only sessions into writers).
  CHECK(escape("PRAGMA 'query_only' = 0", lite) == "query_only");
  CHECK(escape("PRAGMA main.'QUERY_ONLY' = 0", lite) == "query_only");
  CHECK(escape("PRAGMA 'query_only'(0)", lite) == "query_only");
  CHECK(escape("SELECT x FROM t WHERE y = 'query_only'", lite).empty());
  // A column or a table of that name is only a name (found from outside).
  CHECK(escape("SELECT query_only FROM t", lite).empty());
  CHECK(escape("SELECT \"query_only\" FROM query_only", lite).empty());
  CHECK(escape("SELECT 1; PRAGMA query_only = 0", lite) == "query_only");
  CHECK(escape("EXPLAIN PRAGMA query_only = 0", lite) == "query_only");
  CHECK(escape("SELECT read, write FROM t", pg).empty());
  CHECK(escape("SELECT x FROM t", pg).empty());
  // PostgreSQL writes large objects in a read-only transaction (found from outside).
  CHECK(escape("SELECT lo_put(4242, 0, 'XX')", pg) == "lo_put");
  CHECK(escape("SELECT LO_UNLINK(4242)", pg) == "lo_unlink");
  CHECK(escape("SELECT lo_from_bytea(0, 'x')", pg) == "lo_from_bytea");
  CHECK(escape("SELECT \"lo_create\"(0)", pg) == "lo_create");
  CHECK(escape("SELECT lo_get(4242)", pg).empty());
  CHECK(escape("SELECT 'lo_put'", pg).empty());
}

TEST_CASE("COPY with the client's stream is refused on PostgreSQL, with what to do instead",
          "[sql_text]") {
  auto pg = cafdb::engine_kind::postgresql;
  for (auto sql :
       {"COPY (SELECT 1) TO STDOUT", "copy t FROM stdin", "COPY t TO STDOUT (FORMAT csv)"}) {
    INFO(sql);
    auto refused = cafdb::refused_sql(sql, pg, false);
    REQUIRE(refused);
    CHECK(refused->code == cafdb::errc::invalid_argument);
    CHECK(refused->message.find("exec_many") != std::string::npos);
  }
  CHECK_FALSE(cafdb::refused_sql("COPY t TO '/tmp/t.csv'", pg, false));
  CHECK_FALSE(cafdb::refused_sql("SELECT 'copy to stdout'", pg, false));
}

TEST_CASE("the remembered verdicts are the verdicts: per text, dialect and read-only",
          "[sql_text]") {
  const std::vector<std::string> texts = {
      "SELECT 1",
      "SET default_transaction_read_only = off",
      "PRAGMA query_only = 0",
      "BEGIN",
      "SELECT 1; COMMIT",
      "SET search_path = other",
      "PRAGMA cache_size = 10",
      std::string{"SELECT 1\0; DELETE FROM t", 24},
      "",
  };
  // Round after round, in every order of dialect and read-only, the remembered answer
  // is the one reading the text gives: a text that passed read-write is still refused
  // read-only, and one that passed on one engine is read again on the other.
  for (int round = 0; round < 3; ++round)
    for (auto dialect : {engine_kind::postgresql, engine_kind::sqlite})
      for (bool read_only : {false, true})
        for (auto& sql : texts) {
          INFO(sql << (read_only ? " (read-only)" : "") << ", round " << round);
          CHECK(refused_sql_here(sql, dialect, read_only).has_value() ==
                refused_sql(sql, dialect, read_only).has_value());
          CHECK(session_changes_here(sql, dialect) == session_changes(sql, dialect));
        }
  // More texts than it remembers: the oldest are read again, with the same answers.
  for (int i = 0; i < 40; ++i) {
    auto sql = "SELECT " + std::to_string(i);
    CHECK_FALSE(refused_sql_here(sql, engine_kind::postgresql, true));
  }
  CHECK(refused_sql_here("BEGIN", engine_kind::postgresql, false));
  CHECK(refused_sql_here("SET default_transaction_read_only = off", engine_kind::postgresql, true));
}
