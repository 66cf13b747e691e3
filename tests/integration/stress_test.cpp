// 200 client actors x 50 transactions on a file database with pool_size 4.
#include <atomic>

#include "support/fixture.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

constexpr int clients = 200;
constexpr int transactions = 50;

// One client: opens a session, runs `transactions` transactions one after another
// (each step is a message to itself), then reads its own rows back through a
// read-only one-shot statement and reports.
caf::behavior stress_client(caf::event_based_actor* self, database_actor db, int client_id,
                            caf::actor report_to) {
  auto failures = std::make_shared<int>(0);
  auto report = [=](int64_t rows) {
    self->anon_send(report_to, client_id, *failures, rows);
    self->quit();
  };
  self->request(db, 30s, caf::open_atom::value, session_options{})
      .then([=](session_actor s) { self->send(self, s, 0); },
            [=](caf::error&) {
              *failures = transactions;
              report(-1);
            });
  return {
      [=](session_actor s, int n) {
        if (n < transactions) {
          std::vector<statement> work{
              {"INSERT INTO ledger (client, seq, amount) VALUES ($1, $2, $3)",
               {client_id, n, n * 10}},
              {"UPDATE totals SET total = total + $1 WHERE id = 1", {n * 10}}};
          self->request(s, 30s, transact_atom::value, std::move(work))
              .then([=](std::vector<result_set>&) { self->send(self, s, n + 1); },
                    [=](caf::error&) {
                      *failures += 1;
                      self->send(self, s, n + 1);
                    });
          return;
        }
        self->request(s, 30s, caf::close_atom::value)
            .then(
                [=](caf::ok_atom) {
                  session_options ro;
                  ro.read_only = true;
                  self->request(
                          db, 30s, exec_atom::value,
                          statement{"SELECT count(*) FROM ledger WHERE client = $1", {client_id}},
                          ro)
                      .then([=](result_set& r) { report(r.rows.at(0).at(0).as_int()); },
                            [=](caf::error&) {
                              *failures += 1;
                              report(-1);
                            });
                },
                [=](caf::error&) {
                  *failures += 1;
                  report(-1);
                });
      },
  };
}

} // namespace

TEST_CASE("200 clients x 50 transactions: every committed row is there, no lease leaks",
          "[stress][load]") {
  temp_dir dir;
  auto cfg = file_config(dir);
  cfg.pool_size = 4;
  cfg.pool_timeout = std::chrono::milliseconds(30000);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE ledger (client INTEGER, seq INTEGER, amount INTEGER, "
                "PRIMARY KEY (client, seq))"});
  fx.must_exec({"CREATE TABLE totals (id INTEGER PRIMARY KEY, total INTEGER)"});
  fx.must_exec({"INSERT INTO totals VALUES (1, 0)"});
  caf::scoped_actor self{fx.sys};
  for (int i = 0; i < clients; ++i)
    fx.sys.spawn(stress_client, fx.db, i, caf::actor_cast<caf::actor>(self));
  int reported = 0;
  int failures = 0;
  int short_clients = 0;
  bool timed_out = false;
  while (reported < clients && !timed_out)
    self->receive(
        [&](int, int failed, int64_t rows) {
          ++reported;
          failures += failed;
          if (rows != transactions)
            ++short_clients;
        },
        caf::after(std::chrono::seconds(90)) >> [&] { timed_out = true; });
  REQUIRE_FALSE(timed_out);
  CHECK(failures == 0);
  CHECK(short_clients == 0);
  CHECK(fx.count("ledger") == clients * transactions);
  auto total = fx.must_exec({"SELECT total FROM totals WHERE id = 1"});
  // Each client adds 10 * (0 + 1 + ... + 49) = 12250.
  CHECK(total.rows.at(0).at(0).as_int() == int64_t{clients} * 12250);
  for (auto pool : {"writer", "reader"}) {
    auto stats = fx.stats(pool);
    INFO(pool);
    CHECK(stats.in_use == 0);
    CHECK(stats.waiting == 0);
    CHECK(stats.discarded == 0);
    CHECK(stats.total <= stats.max);
  }
}
