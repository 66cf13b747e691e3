// Defines `cafdb::config` and the sources it loads from: URL, JSON, environment.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "cafdb/core/errc.hpp"
#include "cafdb/core/schema.hpp"

namespace cafdb {

using millis = std::chrono::milliseconds;

/// Which driver an engine uses, and so which SQL it speaks (DDL types, catalog queries,
/// how its lexer reads literals and comments).
enum class engine_kind : uint8_t { sqlite, postgresql };

/// Everything a database needs to start. Each field documents its default; the
/// loaders reject unknown keys and out-of-range values, naming the key.
/// docs/configuration.md lists every option.
struct config {
  // -- where -------------------------------------------------------------------

  /// The connection URL as given (contains the password for PostgreSQL: never log it).
  std::string url;
  engine_kind engine = engine_kind::sqlite;
  /// SQLite: file path, or ":memory:".
  std::string path;
  /// SQLite: false (URL `mode=rw`) means the file must already exist.
  bool create_if_missing = true;
  /// PostgreSQL: the libpq keyword=value string parsed from the URL (holds the password).
  std::string conninfo;
  /// What logs and errors may show of the endpoint: "postgresql://user@host:port/db".
  std::string display;

  /// A second engine for read-only sessions (e.g. a streaming replica); empty: none.
  std::string read_url;
  std::string read_conninfo;
  std::string read_display;

  // -- pool --------------------------------------------------------------------

  /// Connections kept open per pool. SQLite file databases: reader connections (the
  /// single writer connection is separate); `:memory:` always uses one connection.
  int pool_size = 5;
  /// Extra connections opened under load and closed when given back.
  int max_overflow = 10;
  /// How long a checkout may wait for a free connection.
  millis pool_timeout{30'000};
  /// Requests allowed to wait (for readiness, or for a connection) before new ones
  /// are refused with `pool_overloaded`.
  int max_pending = 1000;
  /// Connections opened at start and kept open, however idle (at most pool_size).
  int min_idle = 0;
  /// Longest a connection lives (less up to 10% jitter, so they do not all go at once);
  /// a leased connection is retired when it comes back. 0: forever.
  millis pool_recycle{0};
  /// Check a connection that sat idle longer than `pre_ping_after` with a round trip
  /// before handing it out; a dead one is discarded and the next one tried.
  bool pool_pre_ping = false;
  millis pre_ping_after{1'000};
  /// Idle connections beyond min_idle are closed after this long; 0: never.
  millis idle_timeout{0};
  /// A lease held longer than this logs a warning naming its holder; 0: never.
  millis leak_threshold{0};
  /// A lease held longer than this is reclaimed: the session is told, gives the
  /// connection back when its current request ends (at the latest at that request's
  /// deadline), the transaction is rolled back and the session answers
  /// transaction_failed until rollback. 0: never.
  millis lease_timeout{0};
  /// Logs every pool's statistics this often (logger cafdb.engine, level info); 0: never.
  millis stats_interval{0};

  // -- timeouts ----------------------------------------------------------------

  /// Longest a single statement (or `transact`) may run.
  millis statement_timeout{300'000};
  /// A session with no request for this long rolls back and closes; 0 disables.
  millis session_idle_timeout{600'000};
  /// How long setup keeps retrying before the database goes `failed`.
  millis setup_timeout{60'000};
  /// Longest one connection attempt may take.
  millis connect_timeout{10'000};
  /// SQLite: how long a statement waits for a lock before failing with `busy`.
  millis busy_timeout{5'000};
  /// How long `stop` lets open sessions finish before rolling them back.
  millis shutdown_timeout{5'000};

  // -- supervision -------------------------------------------------------------

  /// Child restarts allowed within `restart_window` before the database goes `failed`.
  int max_restarts = 5;
  millis restart_window{10'000};

  // -- schema ------------------------------------------------------------------

  /// Tables declared for create_all / drop_all; from `schema_file` or set in code.
  schema_def schema;
  /// Where `schema` was read from (for messages); empty when set in code.
  std::string schema_file;
  /// Create the declared tables at start-up (before `ready`).
  bool create_all = true;
  /// A directory of `<version>_<name>.sql` files applied at start-up, before
  /// create_all, each once and in its own transaction; empty: none.
  std::string migrations_dir;

  // -- operations --------------------------------------------------------------

  /// Operations answer errors as `{"error": kind, "details": message}` JSON (the shape
  /// Python helpers return) instead of failing the request.
  bool json_errors = false;

  /// True if start-up has schema work to do (migrations or declared tables).
  bool has_schema_work() const { return !migrations_dir.empty() || !schema.empty(); }

  /// SQLite file databases: a session runs an autocommit read itself, on a reader
  /// handle it borrows, instead of sending it to the engine's reader pool
  /// (docs/architecture.md). A read-write session's statement (one-shot `exec`
  /// included) runs there only if SQLite says it changes nothing; anything else goes
  /// to the writer. PostgreSQL without read_url: the blocking client's `exec` runs any
  /// autocommit statement on a pooled connection on its own thread. Off: read-only
  /// sessions read through the reader pool, a read-write session's statements all go to
  /// the writer, and PostgreSQL calls go through the engine.
  bool read_in_place = true;

  /// Start-up keeps retrying (until setup_timeout) failures that retrying cannot fix by
  /// itself: authentication, a database that does not exist, a file that is not a
  /// database. Off (the default): start-up fails at once on them. On, for a database
  /// that a provisioning step creates after the application starts.
  bool retry_unfixable = false;

  // -- logging -----------------------------------------------------------------

  /// Log every statement (logger `cafdb.sql`, level info).
  bool echo = false;
  /// With `echo`, also log parameter values (off: they show as `?`).
  bool echo_params = false;
  /// spdlog level for every `cafdb.*` logger: trace, debug, info, warn, error, off.
  std::string log_level = "warn";

  /// True for an SQLite in-memory database.
  bool in_memory() const { return engine == engine_kind::sqlite && path == ":memory:"; }

  /// The URL with any password replaced by `***`, for logs and status.
  std::string redacted_url() const;
};

/// Parses a URL (`sqlite:///relative.db`, `sqlite:////abs/app.db`, `sqlite::memory:`,
/// `postgresql://user:pass@host:5432/db?sslmode=require`), with cafdb options as query
/// parameters (`?pool_size=4`). PostgreSQL URLs go through libpq's own parser; every
/// libpq keyword in the query passes through to libpq.
outcome<config> config_from_url(const std::string& url);

/// Reads a JSON object: `url` plus any option; durations in milliseconds or as
/// strings like "250ms", "5s", "2m".
outcome<config> config_from_json(const nlohmann::json& object);

/// Reads a JSON file (see `config_from_json`).
outcome<config> config_from_json_file(const std::string& path);

/// Reads the environment: `CAFDB_URL`, or else the FastAPI-style `DB_USERNAME`,
/// `DB_PASSWORD`, `DB_HOST`, `DB_PORT`, `DB_NAME` (PostgreSQL; all five required), then
/// `CAFDB_<OPTION>` for any option (e.g. `CAFDB_POOL_SIZE`, `CAFDB_READ_URL`).
/// A `.env` file fills in variables the environment lacks: `dotenv_path`, or `.env`
/// in the working directory when the path is empty. Real variables take precedence.
outcome<config> config_from_env(const std::string& dotenv_path = "");

/// Applies one option by name, as the loaders do: exposed for tools and tests.
outcome<done> apply_option(config& cfg, const std::string& key, const nlohmann::json& value);

} // namespace cafdb
