// Defines how a transaction begins: its isolation level, whether it only reads, and on
// SQLite which lock it takes first (SQLAlchemy's `isolation_level`, PostgreSQL's BEGIN
// modes, SQLite's BEGIN DEFERRED / IMMEDIATE / EXCLUSIVE).
#pragma once

#include <cstdint>
#include <string>

namespace cafdb {

/// The isolation a transaction asks for.
enum class isolation_level : uint8_t {
  /// The server's default (PostgreSQL: default_transaction_isolation, usually read
  /// committed; SQLite: serializable, as always).
  server_default,
  read_committed,
  repeatable_read,
  /// PostgreSQL's SERIALIZABLE; on SQLite every transaction is serializable already.
  serializable,
};

std::string to_string(isolation_level x);

/// The lock an SQLite transaction takes when it begins.
enum class sqlite_lock : uint8_t {
  /// cafdb's choice: IMMEDIATE on the writer (a transaction that reads and then writes
  /// cannot then fail with SQLITE_BUSY), DEFERRED on readers.
  engine_default,
  /// No lock until the first read or write.
  deferred,
  /// The write lock at once: other writers wait, readers go on.
  immediate,
  /// The write lock at once, and no other connection reads (in rollback-journal mode;
  /// under WAL it acts like IMMEDIATE).
  exclusive,
};

std::string to_string(sqlite_lock x);

/// Options of `session::begin(tx_options)`. What an engine cannot honour is refused
/// with `invalid_argument` before anything begins, never ignored.
struct tx_options {
  isolation_level isolation = isolation_level::server_default;
  /// A transaction that only reads. In a read-only session every transaction does.
  /// PostgreSQL: BEGIN READ ONLY. SQLite: only in a read-only session (its readers).
  bool read_only = false;
  /// PostgreSQL: SERIALIZABLE READ ONLY DEFERRABLE waits for a snapshot that can
  /// never fail with a serialization error (for long reports). Needs both.
  bool deferrable = false;
  /// SQLite only; PostgreSQL refuses anything but `engine_default`.
  sqlite_lock lock = sqlite_lock::engine_default;
};

} // namespace cafdb
