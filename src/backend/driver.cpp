// What every driver does the same way: a transaction as BEGIN, each statement, COMMIT;
// independent statements one after the other.
#include "backend/driver.hpp"

#include <iterator>

namespace cafdb {

std::string to_string(connection_role x) {
  switch (x) {
  case connection_role::writer:
    return "writer";
  case connection_role::reader:
    return "reader";
  default:
    return "shared";
  }
}

const char* hint_for(errc code) {
  switch (code) {
  case errc::syntax_error:
    return "check the SQL text and the table and column names";
  case errc::constraint_violation:
    return "the data breaks a constraint; nothing was changed";
  case errc::busy:
    return "another connection held the lock past busy_timeout; keep write transactions "
           "short or raise busy_timeout";
  case errc::read_only_violation:
    return "this session is read-only; open a read-write session to write";
  case errc::statement_timeout:
    return "the statement was cancelled; raise statement_timeout or make it faster";
  case errc::connect_failed:
    return "check the path or server address, credentials and permissions";
  case errc::serialization_failure:
  case errc::deadlock:
    return "a concurrent transaction conflicted; retry the whole transaction";
  case errc::connection_lost:
    return "the connection was discarded; retry the transaction";
  case errc::transaction_failed:
    return "roll back before sending anything else";
  case errc::invalid_argument:
    return "check the parameters bound to the statement";
  default:
    return "see the driver message";
  }
}

outcome<std::vector<result_set>>
driver::execute_transaction(const std::vector<statement>& statements, bool read_only,
                            size_t& failed_at) {
  failed_at = statements.size();
  return all_or_nothing(read_only, [&]() -> outcome<std::vector<result_set>> {
    std::vector<result_set> results;
    results.reserve(statements.size());
    for (size_t i = 0; i < statements.size(); ++i) {
      auto result = execute(statements[i]);
      if (!result) {
        failed_at = i;
        return result.error();
      }
      results.emplace_back(std::move(*result));
    }
    return results;
  });
}

namespace {

statement row_statement(const bulk_statement& bulk, size_t i) {
  return statement{bulk.sql, std::vector<value>(bulk.row_begin(i), bulk.row_end(i))};
}

} // namespace

outcome<result_set> driver::execute_many(const bulk_statement& bulk, size_t& failed_at) {
  failed_at = bulk.row_count(); // no row to blame unless one fails
  result_set total;
  for (size_t i = 0; i < bulk.row_count(); ++i) {
    auto run = execute_unless_cancelled(row_statement(bulk, i));
    if (!run) {
      failed_at = i;
      return run.error();
    }
    add_run(total, std::move(*run));
  }
  return total;
}

outcome<result_set> driver::execute_many_transaction(const bulk_statement& bulk, bool read_only,
                                                     size_t& failed_at) {
  std::vector<statement> statements;
  statements.reserve(bulk.row_count());
  for (size_t i = 0; i < bulk.row_count(); ++i)
    statements.push_back(row_statement(bulk, i));
  auto results = execute_transaction(statements, read_only, failed_at);
  if (!results)
    return results.error();
  result_set total;
  for (auto& run : *results)
    add_run(total, std::move(run));
  return total;
}

void add_run(result_set& total, result_set&& run) {
  if (total.columns.empty() && !run.columns.empty()) {
    total.columns = std::move(run.columns);
    total.column_types = std::move(run.column_types);
  }
  if (total.rows.empty())
    total.rows = std::move(run.rows);
  else
    std::move(run.rows.begin(), run.rows.end(), std::back_inserter(total.rows));
  total.affected_rows += run.affected_rows;
  if (run.last_insert_id != 0)
    total.last_insert_id = run.last_insert_id;
}

std::vector<outcome<result_set>> driver::execute_each(const std::vector<statement>& statements) {
  std::vector<outcome<result_set>> outcomes;
  outcomes.reserve(statements.size());
  for (auto& stmt : statements)
    outcomes.push_back(execute_unless_cancelled(stmt));
  return outcomes;
}

outcome<result_set> driver::execute_unless_cancelled(const statement& stmt) {
  if (!cancelled())
    return execute(stmt);
  return cancelled_error();
}

db_error driver::cancelled_error() {
  return db_error{errc::statement_timeout,
                  "the batch this statement belonged to passed its deadline and was cancelled "
                  "before the statement ran; retry it",
                  "", ""};
}

std::optional<db_error> check_transaction_state(driver& drv, bool expected) {
  bool open = drv.in_transaction();
  if (open == expected)
    return std::nullopt;
  if (open) {
    auto rolled_back = drv.rollback();
    if (!rolled_back || drv.in_transaction())
      return db_error{errc::connection_lost,
                      "the request left a transaction open and it could not be rolled back; "
                      "the connection is discarded",
                      "", ""};
    return db_error{errc::invalid_argument,
                    "the request left a transaction open (transaction control inside the SQL?); "
                    "it was rolled back and nothing it did was kept. Use the session's begin / "
                    "commit messages",
                    "", ""};
  }
  return db_error{errc::commit_in_doubt,
                  "the request ended the session's transaction behind its back (transaction "
                  "control inside the SQL?): it may or may not have been committed; check "
                  "before retrying, and roll the session back",
                  "", ""};
}

} // namespace cafdb
