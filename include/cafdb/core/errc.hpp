// Defines cafdb's error codes and the CAF-free error value that drivers return.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace cafdb {

/// Every way a cafdb request can fail. Travels as the code of a `caf::error` in the
/// `cafdb` category; `db_error` carries it inside CAF-free code (drivers, config).
enum class errc : uint8_t {
  none = 0,
  invalid_config,        ///< A configuration key or value is wrong.
  invalid_argument,      ///< A request is malformed (parameters, names, options).
  connect_failed,        ///< The engine could not open a connection.
  unavailable,           ///< The engine lost its server; retry later.
  not_ready,             ///< The database did not become ready in time.
  pool_timeout,          ///< No connection became free within `pool_timeout`.
  pool_overloaded,       ///< Too many requests are already waiting (`max_pending`).
  syntax_error,          ///< The SQL does not parse.
  constraint_violation,  ///< A UNIQUE, NOT NULL, CHECK or FOREIGN KEY constraint failed.
  serialization_failure, ///< A concurrent transaction conflicted; retry the transaction.
  deadlock,              ///< The server broke a deadlock by aborting this transaction.
  statement_timeout,     ///< The statement ran past its time limit and was cancelled.
  connection_lost,       ///< The link to the server broke; the connection was discarded.
  transaction_failed,    ///< An earlier statement failed; only rollback is accepted.
  commit_in_doubt,       ///< The link broke during COMMIT; the outcome is unknown.
  session_closed,        ///< The session was closed (by the client, a timeout or a stop).
  not_found,             ///< The requested row or object does not exist.
  shutting_down,         ///< The database is stopping and takes no new work.
  read_only_violation,   ///< A write was attempted in a read-only session.
  busy,                  ///< The database file stayed locked past `busy_timeout`.
  database_error,        ///< Any other error the server or driver reported.
  internal_error,        ///< A cafdb bug or an actor that died; the message says which.
  request_timeout,       ///< No answer within the caller's own request timeout.
  conversion_failed,     ///< A value cannot become the C++ type asked for without loss.
};

/// Returns the name of `x`, e.g. `"pool_timeout"`.
std::string to_string(errc x);

/// What a failed request says about the work and the connection it ran on. One table
/// for every kind of error, cafdb's and CAF's own (`classify` here and in
/// cafdb/error.hpp); sessions, the engine, the schema actor and applications that retry
/// read it the same way.
enum class failure_kind : uint8_t {
  /// Refused by the server or by cafdb; nothing ran that a retry would repeat, and the
  /// connection it ran on is fine.
  refused,
  /// No answer within the caller's timeout: it may still run.
  timed_out,
  /// The connection failed or went silent, or the actor asked is gone: what ran is
  /// unknown, the connection is not reused.
  lost,
  /// It may or may not have committed (commit_in_doubt): check before retrying.
  in_doubt,
};

/// The failure_kind of a cafdb code: commit_in_doubt is in_doubt; connection_lost,
/// unavailable and session_closed are lost; request_timeout is timed_out; every other
/// code is refused.
failure_kind classify(errc code);

std::string to_string(failure_kind x);

/// A failure as a plain value: what CAF-free code returns instead of throwing.
struct db_error {
  errc code = errc::none;
  /// What went wrong and what to do about it. Never holds credentials (passwords,
  /// connection strings); a server's error may quote the data a statement sent
  /// (PostgreSQL's DETAIL names a duplicate key's value), as the server's own log does.
  std::string message;
  /// The driver's own code: a SQLSTATE or an SQLite result code name, else empty.
  std::string driver_code;
  /// The driver's own message, verbatim.
  std::string driver_message;
};

/// Either a value or a `db_error`: the return type of every fallible CAF-free call.
template <class T>
class outcome {
 public:
  outcome(T value) : data_(std::move(value)) {}
  outcome(db_error err) : data_(std::move(err)) {}

  explicit operator bool() const noexcept { return data_.index() == 0; }
  T& operator*() { return std::get<0>(data_); }
  const T& operator*() const { return std::get<0>(data_); }
  T* operator->() { return &std::get<0>(data_); }
  const T* operator->() const { return &std::get<0>(data_); }
  const db_error& error() const { return std::get<1>(data_); }
  db_error& error() { return std::get<1>(data_); }

 private:
  std::variant<T, db_error> data_;
};

/// The success value of an `outcome` that has nothing else to say.
struct done {};

} // namespace cafdb
