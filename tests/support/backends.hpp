// The engines the conformance suite runs against. Each backend says how to make a
// fresh, isolated database for one test and what differs in SQL between engines.
#pragma once

#include <string>

#include "support/fixture.hpp"

namespace cafdb::test {

struct sqlite_backend {
  static constexpr const char* name = "sqlite";
  /// A file database in `dir`.
  static config make_config(const temp_dir& dir);
  /// DDL for an auto-assigned integer key.
  static constexpr const char* serial_pk = "INTEGER PRIMARY KEY";
  /// The pool that serves read-write sessions, and the one for read-only sessions.
  static constexpr const char* rw_pool = "writer";
  static constexpr const char* ro_pool = "reader";
  /// True if `result_set::last_insert_id` is filled by INSERT.
  static constexpr bool has_last_insert_id = true;
  /// A query that never finishes by itself (interrupt() ends it).
  static constexpr const char* endless_sql =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
  /// A database that does not exist until `create()`: a file opened with `mode=rw`.
  struct late_database {
    explicit late_database(const temp_dir& dir);
    config make_config() const;
    void create();
    std::string path;
  };
};

/// PostgreSQL from `CAFDB_TEST_PG_URL` (scripts/test.sh starts a throwaway server);
/// every test gets a schema of its own, dropped afterwards.
struct pg_backend {
  static constexpr const char* name = "postgresql";
  static config make_config(const temp_dir& dir);
  static constexpr const char* serial_pk = "BIGSERIAL PRIMARY KEY";
  static constexpr const char* rw_pool = "shared";
  static constexpr const char* ro_pool = "shared";
  static constexpr bool has_last_insert_id = false;
  static constexpr const char* endless_sql = "SELECT pg_sleep(600)";
  /// A database that does not exist until `create()` runs CREATE DATABASE; dropped
  /// when this object goes (after the test's runtime has stopped).
  struct late_database {
    explicit late_database(const temp_dir& dir);
    ~late_database();
    config make_config() const;
    void create();
    std::string name;
  };
};

/// The URL of the test server; fails the test with instructions when it is not set.
std::string pg_url();

/// The URL of the test server's streaming standby.
std::string pg_read_url();

/// Runs SQL on the test server through plain libpq (set-up outside cafdb).
void pg_admin(const std::string& sql);

/// Appends `options=-csearch_path=<schema>` to a PostgreSQL URL.
std::string with_schema(const std::string& url, const std::string& schema);

/// A PostgreSQL server of one test's own, for fault tests that stop, restart or break
/// it: initialised in a temporary directory (as the `postgres` user when run as root)
/// with the binaries in CAFDB_TEST_PG_BIN, on a free port; stopped and removed with
/// this object.
struct pg_server {
  explicit pg_server(int max_connections = 100);
  ~pg_server();
  /// `pg_ctl stop -m immediate`: every backend dies at once, as in a crash.
  void stop_immediate();
  /// Starts it again on the same port (crash recovery runs first).
  void start();
  /// postgresql://postgres@127.0.0.1:<port>/postgres (trust authentication).
  std::string url;
  std::string dir;
  int port = 0;
};

/// Makes a schema for one test and drops it when destroyed.
struct pg_schema {
  pg_schema();
  ~pg_schema();
  std::string name;
};

} // namespace cafdb::test
