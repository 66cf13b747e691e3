// What every driver does the same way: a transaction as BEGIN, each statement, COMMIT;
// independent statements one after the other.
#include "backend/driver.hpp"

namespace cafdb {

outcome<std::vector<result_set>>
driver::execute_transaction(const std::vector<statement>& statements, bool read_only,
                            size_t& failed_at) {
  failed_at = statements.size();
  if (auto began = begin(read_only); !began)
    return began.error();
  std::vector<result_set> results;
  results.reserve(statements.size());
  for (size_t i = 0; i < statements.size(); ++i) {
    auto result = execute(statements[i]);
    if (!result) {
      failed_at = i;
      rollback(); // a failed rollback leaves in_transaction() true: the engine resets
      return result.error();
    }
    results.emplace_back(std::move(*result));
  }
  if (auto committed = commit(); !committed) {
    rollback();
    auto err = committed.error();
    err.message = "COMMIT failed, the transaction was rolled back: " + err.message;
    return err;
  }
  return results;
}

std::vector<outcome<result_set>> driver::execute_each(const std::vector<statement>& statements) {
  std::vector<outcome<result_set>> outcomes;
  outcomes.reserve(statements.size());
  for (auto& stmt : statements)
    outcomes.push_back(execute_unless_cancelled(stmt));
  return outcomes;
}

outcome<result_set> driver::execute_unless_cancelled(const statement& stmt) {
  if (!cancel_requested_.load())
    return execute(stmt);
  return db_error{errc::statement_timeout,
                  "the batch this statement belonged to passed its deadline and was cancelled "
                  "before the statement ran; retry it",
                  "", ""};
}

} // namespace cafdb
