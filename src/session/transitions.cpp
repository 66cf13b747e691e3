#include "session/transitions.hpp"

namespace cafdb::session_model {

namespace {

bool open(session_phase phase) {
  return phase == session_phase::in_tx || phase == session_phase::failed;
}

std::string needs_transaction(const char* what) {
  return std::string{what} + " needs an open transaction; send begin first";
}

} // namespace

std::optional<refusal> admit(session_phase phase, request req, bool holds_lease) {
  if (phase == session_phase::closed)
    return refusal{errc::session_closed,
                   "this session is closed; open a new session from the database"};
  if (phase == session_phase::failed && req != request::rollback && req != request::rollback_to)
    return refusal{errc::transaction_failed,
                   "an earlier statement in this transaction failed; send rollback (or "
                   "rollback_to a savepoint) before anything else"};
  switch (req) {
  case request::begin:
    if (phase == session_phase::in_tx)
      return refusal{errc::invalid_argument,
                     "a transaction is already open; use savepoint to nest"};
    return std::nullopt;
  case request::commit:
    if (phase != session_phase::in_tx)
      return refusal{errc::invalid_argument, needs_transaction("commit")};
    return std::nullopt;
  case request::nested:
    if (phase != session_phase::in_tx)
      return refusal{errc::invalid_argument, needs_transaction("savepoint / release")};
    return std::nullopt;
  case request::rollback_to:
    if (!open(phase))
      return refusal{errc::invalid_argument, needs_transaction("rollback_to")};
    if (!holds_lease)
      return refusal{errc::transaction_failed,
                     "the transaction is gone (its connection was lost or reclaimed, or the "
                     "database rolled it back) and its savepoints with it; send rollback"};
    return std::nullopt;
  case request::rollback:
  case request::statement:
  case request::batch:
    return std::nullopt;
  }
  return std::nullopt;
}

bool needs_server(session_phase phase, request req, bool holds_lease) {
  if (req != request::rollback)
    return true;
  // A second rollback is a no-op (libpqxx: "quietly accept multiple aborts"); so is
  // one whose connection, and the transaction with it, is already gone.
  return open(phase) && holds_lease;
}

transition next(session_phase phase, request req, outcome result) {
  using p = session_phase;
  using a = lease_action;
  if (phase == p::closed)
    return {p::closed, a::give_back_clean, "closed: nothing changes", false};
  if (result == outcome::in_doubt)
    return {p::in_doubt, a::give_back_unknown,
            "the answer never came while it may have committed: its outcome is unknown", true};
  if (result == outcome::rolled_back) {
    if (open(phase))
      return {p::failed, a::give_back_rollback,
              "the server rolled back the whole transaction with the failed request: nothing "
              "of it is kept, rollback settles it",
              true};
    result = outcome::refused; // nothing was open to lose
  }
  bool in_tx = phase == p::in_tx;
  switch (req) {
  case request::begin:
    switch (result) {
    case outcome::ok:
      return {p::in_tx, a::keep, "BEGIN ran: a transaction is open", false};
    case outcome::refused:
      return {p::idle, a::give_back_rollback, "BEGIN was refused: nothing is open", false};
    default:
      return {p::idle, a::give_back_unknown, "the connection failed during BEGIN", false};
    }
  case request::commit:
    switch (result) {
    case outcome::ok:
      return {p::idle, a::give_back_clean, "COMMIT ran: the transaction is done", true};
    case outcome::refused:
      return {p::failed, a::keep,
              "COMMIT was refused (the server rolled the transaction back): rollback settles it",
              false};
    default:
      // A commit whose answer never came may have committed.
      return {p::in_doubt, a::give_back_unknown, "the connection failed during COMMIT", true};
    }
  case request::rollback:
    switch (result) {
    case outcome::ok:
      return {p::idle, a::give_back_clean, "rolled back (or nothing was open)", true};
    default:
      // The transaction is gone either way; the connection cannot be trusted.
      return {p::idle, a::give_back_unknown, "ROLLBACK failed: the connection is discarded", true};
    }
  case request::nested:
  case request::rollback_to:
    switch (result) {
    case outcome::ok:
      return {p::in_tx, a::keep,
              req == request::rollback_to ? "rolled back to the savepoint: the transaction goes on"
                                          : "the savepoint command ran",
              false};
    case outcome::refused:
      return {p::failed, a::keep, "a savepoint command was refused: the transaction failed", false};
    default:
      return {p::failed, a::give_back_unknown,
              "the connection failed in the transaction: it is lost, rollback settles it", false};
    }
  case request::statement:
  case request::batch:
    if (!in_tx) {
      // Autocommit (from idle, or the next unit of work after an answer in doubt).
      switch (result) {
      case outcome::ok:
        return {p::idle, a::give_back_clean, "autocommit request done", false};
      case outcome::refused:
        return {p::idle, a::give_back_clean, "autocommit request refused: nothing changed", false};
      default:
        return {p::idle, a::give_back_unknown,
                "the connection failed during an autocommit request that could not commit", false};
      }
    }
    switch (result) {
    case outcome::ok:
      return {p::in_tx, a::keep, "the request ran in the open transaction", false};
    case outcome::refused:
      if (req == request::batch)
        return {p::in_tx, a::keep,
                "the batch failed and its savepoint undid it: the transaction goes on", false};
      return {p::failed, a::keep, "a statement failed: the transaction failed", false};
    default:
      return {p::failed, a::give_back_unknown,
              "the connection failed in the transaction: it is lost, rollback settles it", false};
    }
  }
  return {phase, a::keep, "no change", false};
}

transition next(session_phase phase, happening what) {
  using p = session_phase;
  using a = lease_action;
  switch (what) {
  case happening::lease_revoked:
    return {open(phase) ? p::failed : phase, a::give_back_rollback,
            "the engine reclaimed the lease past lease_timeout: any transaction is lost", false};
  case happening::engine_replaced:
    return {open(phase) ? p::failed : phase, a::forget,
            "the engine was replaced: the lease is gone, and any transaction with it", false};
  case happening::closed:
    return {p::closed, a::give_back_clean, "closed", true};
  }
  return {phase, a::keep, "no change", false};
}

const char* to_string(request x) {
  switch (x) {
  case request::begin:
    return "begin";
  case request::commit:
    return "commit";
  case request::rollback:
    return "rollback";
  case request::nested:
    return "savepoint/release";
  case request::rollback_to:
    return "rollback_to";
  case request::statement:
    return "statement";
  case request::batch:
    return "batch";
  }
  return "unknown";
}

const char* to_string(outcome x) {
  switch (x) {
  case outcome::ok:
    return "ok";
  case outcome::refused:
    return "refused";
  case outcome::lost:
    return "lost";
  case outcome::in_doubt:
    return "in_doubt";
  case outcome::rolled_back:
    return "rolled_back";
  }
  return "unknown";
}

const char* to_string(lease_action x) {
  switch (x) {
  case lease_action::keep:
    return "keep";
  case lease_action::give_back_clean:
    return "give_back_clean";
  case lease_action::give_back_rollback:
    return "give_back_rollback";
  case lease_action::give_back_unknown:
    return "give_back_unknown";
  case lease_action::forget:
    return "forget";
  }
  return "unknown";
}

} // namespace cafdb::session_model

namespace cafdb {

std::string to_string(session_phase x) {
  switch (x) {
  case session_phase::idle:
    return "idle";
  case session_phase::in_tx:
    return "in_tx";
  case session_phase::failed:
    return "failed";
  case session_phase::in_doubt:
    return "in_doubt";
  case session_phase::closed:
    return "closed";
  }
  return "unknown";
}

} // namespace cafdb
