// Unit: which transaction options each engine honours, and the BEGIN that asks for them.
#include <catch2/catch.hpp>

#include "tx_begin.hpp"

using namespace cafdb;

namespace {

tx_options make(isolation_level isolation, bool read_only = false, bool deferrable = false,
                sqlite_lock lock = sqlite_lock::engine_default) {
  tx_options out;
  out.isolation = isolation;
  out.read_only = read_only;
  out.deferrable = deferrable;
  out.lock = lock;
  return out;
}

void check_refused(engine_kind engine, const tx_options& options, bool session_read_only,
                   const std::string& says) {
  auto refused = refuse_tx_options(engine, options, session_read_only);
  REQUIRE(refused);
  INFO(refused->message);
  CHECK(refused->code == errc::invalid_argument);
  CHECK(refused->message.find(says) != std::string::npos);
}

} // namespace

TEST_CASE("PostgreSQL: BEGIN carries the isolation level, READ ONLY and DEFERRABLE",
          "[tx_options]") {
  CHECK(pg_begin_sql({}) == "BEGIN");
  CHECK(pg_begin_sql(make(isolation_level::read_committed)) ==
        "BEGIN ISOLATION LEVEL READ COMMITTED");
  CHECK(pg_begin_sql(make(isolation_level::repeatable_read, true)) ==
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  CHECK(pg_begin_sql(make(isolation_level::serializable, true, true)) ==
        "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE");
  auto pg = engine_kind::postgresql;
  CHECK_FALSE(refuse_tx_options(pg, make(isolation_level::serializable, true, true), false));
  // A read-only session makes every transaction read-only.
  CHECK_FALSE(refuse_tx_options(pg, make(isolation_level::serializable, false, true), true));
  check_refused(pg, make(isolation_level::repeatable_read, true, true), false, "serializable");
  check_refused(pg, make(isolation_level::serializable, false, true), false, "read-only");
  check_refused(pg, make(isolation_level::server_default, false, false, sqlite_lock::exclusive),
                false, "SQLite's");
}

TEST_CASE("SQLite: the lock a transaction takes first, and what SQLite cannot honour",
          "[tx_options]") {
  CHECK(sqlite_begin_sql({}, true) == "BEGIN IMMEDIATE");
  CHECK(sqlite_begin_sql({}, false) == "BEGIN DEFERRED");
  CHECK(sqlite_begin_sql(make(isolation_level::server_default, false, false, sqlite_lock::deferred),
                         true) == "BEGIN DEFERRED");
  CHECK(
      sqlite_begin_sql(make(isolation_level::server_default, false, false, sqlite_lock::exclusive),
                       true) == "BEGIN EXCLUSIVE");
  auto lite = engine_kind::sqlite;
  // Every isolation level: SQLite is serializable, as strict as any.
  for (auto level : {isolation_level::read_committed, isolation_level::repeatable_read,
                     isolation_level::serializable})
    CHECK_FALSE(refuse_tx_options(lite, make(level), false));
  CHECK_FALSE(refuse_tx_options(lite, make(isolation_level::server_default, true), true));
  check_refused(lite, make(isolation_level::serializable, true, true), true, "PostgreSQL's");
  check_refused(lite, make(isolation_level::server_default, true), false, "read-only session");
  check_refused(lite, make(isolation_level::server_default, false, false, sqlite_lock::immediate),
                true, "write lock");
  CHECK(to_string(isolation_level::repeatable_read) == "repeatable_read");
  CHECK(to_string(sqlite_lock::exclusive) == "exclusive");
}
