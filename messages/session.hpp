// Session protocol: options for opening a session and its transaction commands.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>
#include <caf/timestamp.hpp>

#include "cafdb/core/session_phase.hpp"
#include "cafdb/core/tx_options.hpp"

namespace cafdb {

/// How a client wants its session. Defaults give a read-write autocommit session.
struct session_options {
  /// Route to reader connections and refuse writes.
  bool read_only = false;
  /// How long an `open` may wait for readiness, and each checkout for a connection;
  /// zero means the database's `pool_timeout`.
  caf::timespan wait_timeout{0};
  /// Idle timeout for this session; zero means the database's `session_idle_timeout`.
  caf::timespan idle_timeout{0};
  /// Deadline of each request on its connection; zero means `statement_timeout` plus a
  /// second (the server cancels first). Past it, cafdb cancels the statement on the
  /// server and drains the connection before anyone uses it again.
  caf::timespan request_timeout{0};
  /// A label for logs (never SQL or secrets).
  std::string label;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_options& x) {
  return f(caf::meta::type_name("cafdb::session_options"), x.read_only, x.wait_timeout,
           x.idle_timeout, x.request_timeout, x.label);
}

/// What `get_atom` on a session answers: its state, for tools and tests.
struct session_info {
  session_phase phase = session_phase::idle;
  /// True while the session holds a connection lease.
  bool holds_lease = false;
  /// Open savepoints, innermost last.
  int32_t savepoints = 0;
  bool read_only = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_info& x) {
  return f(caf::meta::type_name("cafdb::session_info"), x.phase, x.holds_lease, x.savepoints,
           x.read_only);
}

/// Transaction control sent by a session to its leased connection.
enum class tx_op : uint8_t { begin, commit, rollback, savepoint, release, rollback_to };

std::string to_string(tx_op x);

struct tx_command {
  tx_op op = tx_op::begin;
  /// Savepoint name (already validated as an identifier) for the savepoint ops.
  std::string name;
  /// For `begin`: a read-only transaction.
  bool read_only = false;
  /// For `begin`: isolation, read only, deferrable, SQLite's lock; checked by the
  /// session against the engine before it is sent.
  tx_options options{};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tx_options& x) {
  return f(caf::meta::type_name("cafdb::tx_options"), x.isolation, x.read_only, x.deferrable,
           x.lock);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tx_command& x) {
  return f(caf::meta::type_name("cafdb::tx_command"), x.op, x.name, x.read_only, x.options);
}

/// How a connection wraps a batch of statements.
enum class batch_mode : uint8_t {
  /// Each statement on its own (autocommit outside a transaction).
  plain,
  /// BEGIN; statements; COMMIT; any failure rolls everything back.
  transaction,
  /// Inside an open transaction: SAVEPOINT; statements; RELEASE; failure rolls back to it.
  savepoint,
};

} // namespace cafdb
