// The names of cafdb's error codes and the one table that says what each failure means
// for the work and the connection (failure_kind).
#include "cafdb/core/errc.hpp"

namespace cafdb {

std::string to_string(errc x) {
  switch (x) {
  case errc::none:
    return "none";
  case errc::invalid_config:
    return "invalid_config";
  case errc::invalid_argument:
    return "invalid_argument";
  case errc::connect_failed:
    return "connect_failed";
  case errc::unavailable:
    return "unavailable";
  case errc::not_ready:
    return "not_ready";
  case errc::pool_timeout:
    return "pool_timeout";
  case errc::pool_overloaded:
    return "pool_overloaded";
  case errc::syntax_error:
    return "syntax_error";
  case errc::constraint_violation:
    return "constraint_violation";
  case errc::serialization_failure:
    return "serialization_failure";
  case errc::deadlock:
    return "deadlock";
  case errc::statement_timeout:
    return "statement_timeout";
  case errc::connection_lost:
    return "connection_lost";
  case errc::transaction_failed:
    return "transaction_failed";
  case errc::commit_in_doubt:
    return "commit_in_doubt";
  case errc::session_closed:
    return "session_closed";
  case errc::not_found:
    return "not_found";
  case errc::shutting_down:
    return "shutting_down";
  case errc::read_only_violation:
    return "read_only_violation";
  case errc::busy:
    return "busy";
  case errc::database_error:
    return "database_error";
  case errc::request_timeout:
    return "request_timeout";
  case errc::internal_error:
    return "internal_error";
  case errc::conversion_failed:
    return "conversion_failed";
  }
  return "unknown";
}

failure_kind classify(errc code) {
  switch (code) {
  case errc::commit_in_doubt:
    return failure_kind::in_doubt;
  case errc::connection_lost:
  case errc::unavailable:
  // The session is gone: a request that was running in it when it ended (as_cafdb_error
  // answers CAF's receiver_down so) may have run or not.
  case errc::session_closed:
    return failure_kind::lost;
  case errc::request_timeout:
    return failure_kind::timed_out;
  default:
    return failure_kind::refused;
  }
}

std::string to_string(failure_kind x) {
  switch (x) {
  case failure_kind::refused:
    return "refused";
  case failure_kind::timed_out:
    return "timed_out";
  case failure_kind::lost:
    return "lost";
  case failure_kind::in_doubt:
    return "in_doubt";
  }
  return "unknown";
}

} // namespace cafdb
