// Many client actors run transactions at once against one database; a summary shows
// what committed, what failed and why, and that money was neither made nor lost.
//
//   concurrent_sessions [clients] [transfers-per-client] [database-url]
#include <iostream>
#include <map>
#include <random>

#include <caf/all.hpp>

#include "cafdb/database.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int accounts = 20;
constexpr int64_t opening_balance = 1000;

struct client_report {
  int committed = 0;
  std::map<std::string, int> failures; // by error code
};

// One client: `transfers` random transfers, each one `transact` (one transaction).
// Each step is a message the client sends itself, so the client stays responsive.
caf::behavior transfer_client(caf::event_based_actor* self, cafdb::database_actor db, int id,
                              int transfers, caf::actor report_to) {
  auto report = std::make_shared<client_report>();
  auto rng = std::make_shared<std::mt19937>(id);
  self->send(self, 0);
  return {
      [=](int n) {
        if (n == transfers) {
          std::string failures;
          for (auto& [code, count] : report->failures)
            failures += code + "=" + std::to_string(count) + " ";
          self->anon_send(report_to, report->committed, failures);
          self->quit();
          return;
        }
        std::uniform_int_distribution<int> pick(1, accounts);
        std::uniform_int_distribution<int> amount(1, 400);
        int from = pick(*rng);
        int to = pick(*rng);
        int sum = amount(*rng);
        std::vector<cafdb::statement> transfer{
            {"UPDATE accounts SET balance = balance - $1 WHERE id = $2", {sum, from}},
            {"UPDATE accounts SET balance = balance + $1 WHERE id = $2", {sum, to}},
            {"INSERT INTO transfers (client, src, dst, amount) VALUES ($1, $2, $3, $4)",
             {id, from, to, sum}}};
        self->request(db, 60s, cafdb::transact_atom::value, std::move(transfer),
                      cafdb::session_options{})
            .then(
                [=](std::vector<cafdb::result_set>&) {
                  report->committed += 1;
                  self->send(self, n + 1);
                },
                [=](caf::error& err) {
                  report->failures[cafdb::to_string(cafdb::describe(err).code)] += 1;
                  self->send(self, n + 1);
                });
      },
  };
}

} // namespace

int main(int argc, char** argv) {
  int clients = argc > 1 ? std::atoi(argv[1]) : 100;
  int transfers = argc > 2 ? std::atoi(argv[2]) : 20;
  auto url = argc > 3 ? argv[3] : "sqlite:///concurrent.db";
  auto cfg = cafdb::config_from_url(url);
  if (!cfg || clients <= 0 || transfers <= 0) {
    std::cerr << (cfg ? "clients and transfers must be positive" : cfg.error().message) << "\n";
    return 1;
  }
  cfg->pool_size = 4;
  cafdb::runtime rt{*cfg};
  auto& db = rt.client();
  if (auto ready = db.await_ready(10s); !ready) {
    std::cerr << cafdb::render(ready.error()) << "\n";
    return 1;
  }
  for (auto sql : {"DROP TABLE IF EXISTS transfers", "DROP TABLE IF EXISTS accounts",
                   "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL "
                   "CHECK (balance >= 0))",
                   "CREATE TABLE transfers (client INTEGER, src INTEGER, dst INTEGER, amount "
                   "INTEGER)"})
    if (auto r = db.exec({sql}); !r) {
      std::cerr << cafdb::render(r.error()) << "\n";
      return 1;
    }
  std::vector<cafdb::statement> seed;
  for (int i = 1; i <= accounts; ++i)
    seed.push_back({"INSERT INTO accounts (id, balance) VALUES ($1, $2)", {i, opening_balance}});
  if (auto r = db.transact(seed); !r) {
    std::cerr << cafdb::render(r.error()) << "\n";
    return 1;
  }
  std::cout << clients << " client actors x " << transfers << " transfers each, " << accounts
            << " accounts of " << opening_balance << ", balances may not go negative\n";
  auto start = std::chrono::steady_clock::now();
  int committed = 0;
  std::map<std::string, int> failures;
  {
    caf::scoped_actor self{rt.system()};
    for (int i = 0; i < clients; ++i)
      rt.system().spawn(transfer_client, rt.database(), i, transfers,
                        caf::actor_cast<caf::actor>(self));
    for (int reported = 0; reported < clients;) {
      bool timed_out = false;
      self->receive(
          [&](int ok, std::string& failed) {
            ++reported;
            committed += ok;
            // "code=count code=count "
            size_t pos = 0;
            while ((pos = failed.find('=')) != std::string::npos) {
              auto end = failed.find(' ', pos);
              failures[failed.substr(0, pos)] += std::stoi(failed.substr(pos + 1, end - pos - 1));
              failed.erase(0, end + 1);
            }
          },
          caf::after(120s) >> [&] { timed_out = true; });
      if (timed_out) {
        std::cerr << "timed out waiting for clients\n";
        return 1;
      }
    }
  }
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start);
  auto total = db.exec({"SELECT sum(balance), (SELECT count(*) FROM transfers) FROM accounts"});
  if (!total) {
    std::cerr << cafdb::render(total.error()) << "\n";
    return 1;
  }
  auto money = total->rows[0][0].as_int();
  auto logged = total->rows[0][1].as_int();
  std::cout << "committed: " << committed << " transfers in " << elapsed.count() << " s ("
            << static_cast<int>(committed / elapsed.count()) << " transactions/s)\n";
  for (auto& [code, count] : failures)
    std::cout << "rolled back: " << count << " x " << code
              << (code == "constraint_violation" ? " (would have overdrawn an account)" : "")
              << "\n";
  std::cout << "money in the bank: " << money << " (expected " << accounts * opening_balance
            << ")\n";
  std::cout << "transfer log rows: " << logged << " (expected " << committed << ")\n";
  if (auto status = db.status())
    for (auto& p : status->pools)
      std::cout << "pool " << p.pool << ": " << p.checkouts << " checkouts, " << p.total
                << " connections, " << p.in_use << " in use, " << p.timeouts << " timeouts\n";
  bool consistent = money == accounts * opening_balance && logged == committed;
  std::cout << (consistent ? "consistent: every committed transfer is there, nothing else"
                           : "INCONSISTENT")
            << "\n";
  return consistent ? 0 : 1;
}
