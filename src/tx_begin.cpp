#include "tx_begin.hpp"

namespace cafdb {

std::string to_string(isolation_level x) {
  switch (x) {
  case isolation_level::server_default:
    return "server_default";
  case isolation_level::read_committed:
    return "read_committed";
  case isolation_level::repeatable_read:
    return "repeatable_read";
  case isolation_level::serializable:
    return "serializable";
  }
  return "unknown";
}

std::string to_string(sqlite_lock x) {
  switch (x) {
  case sqlite_lock::engine_default:
    return "engine_default";
  case sqlite_lock::deferred:
    return "deferred";
  case sqlite_lock::immediate:
    return "immediate";
  case sqlite_lock::exclusive:
    return "exclusive";
  }
  return "unknown";
}

namespace {

db_error refusal(std::string message) {
  return db_error{errc::invalid_argument, "begin(tx_options): " + std::move(message), "", ""};
}

} // namespace

std::optional<db_error> refuse_tx_options(engine_kind engine, const tx_options& options,
                                          bool session_read_only) {
  bool read_only = options.read_only || session_read_only;
  if (engine == engine_kind::postgresql) {
    if (options.lock != sqlite_lock::engine_default)
      return refusal("lock = " + to_string(options.lock) +
                     " is SQLite's; PostgreSQL locks rows and tables as statements need them "
                     "(SELECT ... FOR UPDATE, LOCK TABLE): leave lock at engine_default");
    if (options.deferrable && !(options.isolation == isolation_level::serializable && read_only))
      return refusal("deferrable needs isolation = serializable and a read-only transaction; "
                     "PostgreSQL ignores it otherwise");
    return std::nullopt;
  }
  if (options.deferrable)
    return refusal("deferrable is PostgreSQL's (SERIALIZABLE READ ONLY DEFERRABLE); SQLite "
                   "transactions are serializable and never wait for a safe snapshot");
  if (options.read_only && !session_read_only)
    return refusal("on SQLite a read-only transaction needs a read-only session "
                   "(session_options::read_only = true), which runs on the read connections");
  if (session_read_only &&
      (options.lock == sqlite_lock::immediate || options.lock == sqlite_lock::exclusive))
    return refusal("lock = " + to_string(options.lock) +
                   " takes the write lock, which a read-only session never does; use deferred "
                   "or a read-write session");
  // Every isolation level is accepted: SQLite transactions are serializable, at least as
  // strict as any level asked for (as PostgreSQL runs READ UNCOMMITTED as READ COMMITTED).
  return std::nullopt;
}

std::string pg_begin_sql(const tx_options& options) {
  std::string sql = "BEGIN";
  switch (options.isolation) {
  case isolation_level::server_default:
    break;
  case isolation_level::read_committed:
    sql += " ISOLATION LEVEL READ COMMITTED";
    break;
  case isolation_level::repeatable_read:
    sql += " ISOLATION LEVEL REPEATABLE READ";
    break;
  case isolation_level::serializable:
    sql += " ISOLATION LEVEL SERIALIZABLE";
    break;
  }
  if (options.read_only)
    sql += " READ ONLY";
  if (options.deferrable)
    sql += " DEFERRABLE";
  return sql;
}

std::string sqlite_begin_sql(const tx_options& options, bool writer) {
  if (!writer)
    return "BEGIN DEFERRED";
  switch (options.lock) {
  case sqlite_lock::deferred:
    return "BEGIN DEFERRED";
  case sqlite_lock::exclusive:
    return "BEGIN EXCLUSIVE";
  default:
    // A writer takes the write lock up front: a deferred transaction that reads first
    // and writes later can fail with SQLITE_BUSY no busy_timeout can fix.
    return "BEGIN IMMEDIATE";
  }
}

} // namespace cafdb
