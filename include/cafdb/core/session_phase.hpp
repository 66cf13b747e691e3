// The phases of a session's transaction state (src/session/transitions.hpp has the
// transition table).
#pragma once

#include <cstdint>
#include <string>

namespace cafdb {

enum class session_phase : uint8_t {
  /// No transaction open; the session holds no lease between requests.
  idle,
  /// A transaction is open on the session's leased connection.
  in_tx,
  /// A statement of the open transaction failed (or its connection was lost): only
  /// rollback (or rollback_to a savepoint) is accepted.
  failed,
  /// The last request's answer never came while it may have committed (commit_in_doubt):
  /// its outcome is unknown. The fact stays until the next unit of work starts or
  /// rollback acknowledges it; nothing is open.
  in_doubt,
  /// Closed: every request answers session_closed.
  closed,
};

std::string to_string(session_phase x);

} // namespace cafdb
