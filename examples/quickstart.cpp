// cafdb quickstart: start a database, wait until it is ready, create a table, write
// in a transaction, read, and watch a failed transaction roll back.
//
//   quickstart [database-url]        (default: sqlite:///quickstart.db)
#include <iostream>

#include "cafdb/database.hpp"
#include "cafdb/json.hpp"

using namespace std::chrono_literals;

namespace {

void step(const std::string& text) {
  std::cout << "\n== " << text << "\n";
}

// Prints a result as a small table.
void print(const cafdb::result_set& r) {
  for (auto& column : r.columns)
    std::cout << "   " << column;
  std::cout << "\n";
  for (auto& row : r.rows) {
    for (auto& v : row)
      std::cout << "   " << cafdb::to_string(v);
    std::cout << "\n";
  }
}

template <class T>
T must(caf::expected<T> x, const char* what) {
  if (!x) {
    std::cerr << what << " failed: " << cafdb::render(x.error()) << "\n";
    std::exit(1);
  }
  return std::move(*x);
}

void must(const caf::error& err, const char* what) {
  if (err) {
    std::cerr << what << " failed: " << cafdb::render(err) << "\n";
    std::exit(1);
  }
}

} // namespace

int main(int argc, char** argv) {
  auto url = argc > 1 ? argv[1] : "sqlite:///quickstart.db";
  auto cfg = cafdb::config_from_url(url);
  if (!cfg) {
    std::cerr << cfg.error().message << "\n";
    return 1;
  }

  step("1. Start the runtime (returns at once; setup connects in the background)");
  cafdb::runtime rt{*cfg};
  auto& db = rt.client();
  std::cout << "   database: " << cfg->redacted_url() << "\n";

  step("2. Wait until the database is ready (await_ready, bounded by a timeout)");
  auto ready = must(db.await_ready(10s), "await_ready");
  for (auto& component : ready.components)
    std::cout << "   " << component.component << ": " << cafdb::to_string(component.state) << " ("
              << component.detail << ")\n";

  step("3. Create a table (autocommit statements, one message each)");
  must(db.exec({"DROP TABLE IF EXISTS accounts"}), "drop");
  must(db.exec({"CREATE TABLE accounts (owner TEXT PRIMARY KEY, "
                "balance INTEGER NOT NULL CHECK (balance >= 0))"}),
       "create");
  std::cout << "   table 'accounts' created; balances may never go below zero\n";

  step("4. Insert in a transaction: begin, two inserts, commit");
  {
    auto s = must(db.open_session(), "open_session");
    must(s.begin(), "begin");
    for (auto& [owner, balance] : {std::pair{"alice", 100}, std::pair{"bob", 50}}) {
      auto r =
          must(s.exec({"INSERT INTO accounts (owner, balance) VALUES ($1, $2)", {owner, balance}}),
               "insert");
      std::cout << "   inserted " << owner << " (" << r.affected_rows << " row)\n";
    }
    must(s.commit(), "commit");
    std::cout << "   committed: both rows are now visible to every session\n";
  }

  step("5. Query");
  print(must(db.exec({"SELECT owner, balance FROM accounts ORDER BY owner"}), "select"));

  step("6. A transaction that fails rolls back: move 80 from bob (who has 50) to alice");
  {
    auto s = must(db.open_session(), "open_session");
    must(s.begin(), "begin");
    must(s.exec({"UPDATE accounts SET balance = balance + 80 WHERE owner = 'alice'"}), "credit");
    std::cout << "   credited alice inside the transaction\n";
    auto debit = s.exec({"UPDATE accounts SET balance = balance - 80 WHERE owner = 'bob'"});
    std::cout << "   debit bob -> " << (debit ? "ok" : cafdb::render(debit.error())) << "\n";
    auto more = s.exec({"SELECT 1"});
    std::cout << "   next statement -> " << (more ? "ok" : cafdb::render(more.error())) << "\n";
    must(s.rollback(), "rollback");
    std::cout << "   rolled back: alice's credit is undone too\n";
  }
  print(must(db.exec({"SELECT owner, balance FROM accounts ORDER BY owner"}), "select"));

  step("7. transact: several statements in one message, all-or-nothing");
  auto results =
      must(db.transact({{"UPDATE accounts SET balance = balance - 30 WHERE owner = $1", {"alice"}},
                        {"UPDATE accounts SET balance = balance + 30 WHERE owner = $1", {"bob"}}}),
           "transact");
  std::cout << "   " << results.size() << " statements committed together\n";
  print(must(db.exec({"SELECT owner, balance FROM accounts ORDER BY owner"}), "select"));

  step("8. exec_many: one INSERT run once per row (a bulk insert), in one transaction");
  cafdb::bulk_statement bulk{"INSERT INTO accounts (owner, balance) VALUES ($1, $2)"};
  for (auto owner : {"carol", "dave", "erin"})
    bulk.add_row({owner, 10});
  auto inserted = must(db.exec_many(std::move(bulk)), "exec_many");
  std::cout << "   " << inserted.affected_rows << " rows inserted, the statement prepared once\n";

  step("9. A session that is dropped without commit rolls back on its own");
  {
    auto s = must(db.open_session(), "open_session");
    must(s.begin(), "begin");
    must(s.exec({"DELETE FROM accounts"}), "delete");
    std::cout << "   deleted every row inside a transaction, then dropped the session\n";
  }
  auto left = must(db.exec({"SELECT count(*) FROM accounts"}), "count");
  std::cout << "   rows still there: " << left.rows.at(0).at(0).as_int() << "\n";

  step("10. Status (as JSON; no secrets in it)");
  auto status = must(db.status(), "status");
  std::cout << nlohmann::json(status).dump(2) << "\n";

  step("11. Stop: open sessions roll back, connections close, actors exit");
  must(rt.stop(), "stop");
  std::cout << "   stopped cleanly\n";
  return 0;
}
