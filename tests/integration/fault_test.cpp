// Fault tests against real servers (docs/reliability.md names what each one proves):
// a PostgreSQL server stopped and restarted under load, a backend terminated mid-query,
// a dead idle connection caught by pool_pre_ping, clients killed mid-transaction,
// pool saturation, and an SQLite lock held past busy_timeout.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "support/backends.hpp"
#include "support/joined_threads.hpp"

using namespace cafdb;
using namespace cafdb::test;
using steady = std::chrono::steady_clock;

namespace {

int64_t scalar(database_fixture& fx, const statement& stmt) {
  auto r = fx.cli->exec(stmt);
  INFO((r ? std::string{} : text(r.error())));
  REQUIRE(r);
  return r->rows.at(0).at(0).as_int();
}

/// What the clients of a load test saw.
struct client_log {
  std::mutex mtx;
  std::condition_variable changed;
  std::set<int64_t> acknowledged;
  std::map<std::string, int> errors; // by cafdb code ("" for untyped errors)
  std::vector<std::string> untyped;
  steady::duration slowest{0};

  void record(int64_t tx, const caf::expected<std::vector<result_set>>& r, steady::duration took) {
    std::lock_guard<std::mutex> guard{mtx};
    slowest = std::max(slowest, took);
    if (r) {
      acknowledged.insert(tx);
    } else {
      auto info = describe(r.error());
      errors[info.code == errc::none ? std::string{} : to_string(info.code)] += 1;
      if (info.code == errc::none)
        untyped.push_back(render(r.error()));
    }
    changed.notify_all();
  }
  bool wait_for_acks(size_t n, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock{mtx};
    return changed.wait_for(lock, timeout, [&] { return acknowledged.size() >= n; });
  }
  size_t acks() {
    std::lock_guard<std::mutex> guard{mtx};
    return acknowledged.size();
  }
};

using pg_connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

/// `n` connections that hold as many of the server's slots until they are destroyed.
std::vector<pg_connection> hold_slots(const pg_server& server, int n) {
  std::vector<pg_connection> holders;
  for (int i = 0; i < n; ++i) {
    holders.emplace_back(PQconnectdb(server.url.c_str()), &PQfinish);
    REQUIRE(PQstatus(holders.back().get()) == CONNECTION_OK);
  }
  return holders;
}

} // namespace

TEST_CASE("the server stops and restarts under 50 clients: typed errors, degraded then ready, "
          "every acknowledged commit kept",
          "[fault][pg][load]") {
  pg_server server;
  auto cfg = must_config(server.url);
  cfg.pool_size = 10;
  cfg.max_overflow = 0;
  // Generous timeouts: under TSan on a busy two-core machine a connect or a queue wait
  // takes seconds, and a connect past connect_timeout while the pool grows counts as a
  // lost server. The server's stop is seen at once (connections refused, not silent).
  cfg.pool_timeout = std::chrono::milliseconds(5000);
  cfg.statement_timeout = std::chrono::milliseconds(5000);
  cfg.connect_timeout = std::chrono::milliseconds(10000);
  cfg.log_level = std::getenv("CAFDB_TEST_LOG") ? std::getenv("CAFDB_TEST_LOG") : "off";
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE ledger (tx BIGINT NOT NULL, part INT NOT NULL, "
                "PRIMARY KEY (tx, part))"});
  caf::scoped_actor watcher{fx.sys};
  REQUIRE(fx.cli->subscribe(caf::actor_cast<caf::actor>(watcher)));

  // 50 clients, each a thread with its own blocking client: a transaction of two rows
  // at a time; a call may take at most call_timeout (beyond it: a hang).
  constexpr auto call_timeout = std::chrono::seconds(20);
  client_log log;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> next_tx{1};
  std::vector<std::thread> clients;
  for (int i = 0; i < 50; ++i)
    clients.emplace_back([&] {
      client cli{fx.sys, fx.db, call_timeout};
      while (!stop) {
        auto tx = next_tx++;
        auto started = steady::now();
        auto r = cli.transact({{"INSERT INTO ledger VALUES ($1, 1)", {tx}},
                               {"INSERT INTO ledger VALUES ($1, 2)", {tx}}});
        log.record(tx, r, steady::now() - started);
        if (!r) // a client's pause before retrying, as an application would
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  auto finish = [&] {
    stop = true;
    for (auto& t : clients)
      if (t.joinable())
        t.join();
  };
  // A failed REQUIRE below leaves through an exception: the clients stop first.
  struct on_exit {
    std::function<void()> fn;
    ~on_exit() { fn(); }
  } joined{finish};
  auto outcome = [&] {
    std::lock_guard<std::mutex> guard{log.mtx};
    std::ostringstream out;
    out << log.acknowledged.size() << " acknowledged;";
    for (auto& [code, n] : log.errors)
      out << " " << (code.empty() ? "untyped" : code) << " x" << n;
    if (auto report = fx.cli->status())
      for (auto& pool : report->pools)
        out << "; " << pool.pool << " pool: " << pool.total << " open, " << pool.waiting
            << " waiting, " << pool.opened << " opened, " << pool.reconnects << " reconnects, "
            << pool.timeouts << " timeouts";
    return out.str();
  };

  // Load, not throughput, is what this test needs: a slow or busy machine (CI runs
  // tests two at a time) gets a minute to commit the first 50 transactions.
  bool loaded = log.wait_for_acks(50, std::chrono::seconds(60));
  INFO("before the outage: " << outcome());
  REQUIRE(loaded);
  server.stop_immediate();
  bool degraded = await_event(watcher, "database", readiness_state::degraded, 15s);
  auto status = fx.cli->status();
  server.start();
  auto restarted = steady::now();
  bool ready = await_event(watcher, "database", readiness_state::ready, 15s);
  // New work succeeds within 5 s of the restart.
  bool served = eventually([&] { return static_cast<bool>(fx.cli->exec({"SELECT 1"})); }, 5s);
  auto recovery = steady::now() - restarted;
  auto acks_after_restart = log.acks();
  bool progressing = log.wait_for_acks(acks_after_restart + 50, std::chrono::seconds(60));
  finish();

  CHECK(degraded);
  REQUIRE(status);
  CHECK(status->state == readiness_state::degraded);
  CHECK(ready);
  INFO("recovered in " << std::chrono::duration_cast<std::chrono::milliseconds>(recovery).count()
                       << " ms");
  CHECK(served);
  INFO("after the restart: " << outcome());
  CHECK(progressing);
  // Every client got an answer in time, and every error was a typed cafdb error.
  CHECK(log.slowest < call_timeout);
  INFO((log.untyped.empty() ? std::string{} : log.untyped.front()));
  CHECK(log.untyped.empty());
  CHECK(log.errors.size() >= 1); // the outage was seen

  // The ledger: every acknowledged transaction is there whole; no transaction is there
  // in part (an unacknowledged one may be there whole: its COMMIT reached the server).
  // Read as an application would after an outage: a transient error is retried (the
  // retry table of docs/errors.md); the last error says why if none succeeds.
  std::optional<result_set> rows;
  std::string last_error;
  bool read = eventually(
      [&] {
        auto r = fx.cli->exec({"SELECT tx, count(*) FROM ledger GROUP BY tx"});
        if (!r) {
          last_error = render(r.error());
          return false;
        }
        rows = std::move(*r);
        return true;
      },
      10s);
  INFO("reading the ledger: " << last_error);
  REQUIRE(read);
  std::map<int64_t, int64_t> parts;
  for (auto& row : rows->rows)
    parts[row.at(0).as_int()] = row.at(1).as_int();
  size_t missing = 0, partial = 0;
  for (auto tx : log.acknowledged)
    missing += parts.count(tx) && parts[tx] == 2 ? 0 : 1;
  for (auto& [tx, n] : parts)
    partial += n == 2 ? 0 : 1;
  CHECK(missing == 0);
  CHECK(partial == 0);
  auto stats = fx.stats("shared");
  CHECK(stats.reconnects >= 1);
  CHECK(stats.total <= 10);
}

TEST_CASE("a backend terminated mid-query: only its session sees connection_lost, the pool "
          "replaces the connection",
          "[fault][pg]") {
  with_temp_dir tmp;
  auto cfg = pg_backend::make_config(tmp.dir);
  cfg.pool_size = 3;
  cfg.max_overflow = 0;
  database_fixture fx{cfg};
  fx.require_ready();
  auto victim = fx.cli->open_session();
  auto bystander = fx.cli->open_session();
  REQUIRE(victim);
  REQUIRE(bystander);
  REQUIRE(!victim->begin());
  REQUIRE(!bystander->begin());
  auto pid = victim->exec({"SELECT pg_backend_pid()"})->rows.at(0).at(0).as_int();
  auto opened_before = fx.stats("shared").opened;

  caf::scoped_actor self{fx.sys};
  auto pending = self->request(victim->handle(), std::chrono::seconds(30), exec_atom::value,
                               statement{"SELECT pg_sleep(30)"});
  REQUIRE(eventually([&] {
    return scalar(fx, {"SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = "
                       "'active' AND query LIKE 'SELECT pg_sleep%'",
                       {pid}}) == 1;
  }));
  pg_admin("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  bool lost = false;
  pending.receive([&](result_set&) { FAIL("the terminated query answered"); },
                  [&](caf::error& err) {
                    INFO(text(err));
                    lost = is(err, errc::connection_lost);
                  });
  CHECK(lost);
  // The bystander's transaction never noticed.
  REQUIRE(bystander->exec({"SELECT 1"}));
  REQUIRE(!bystander->commit());
  // The victim's transaction is gone: failed until rollback, then a new connection.
  CHECK(is(victim->exec({"SELECT 1"}).error(), errc::transaction_failed));
  REQUIRE(!victim->rollback());
  REQUIRE(victim->exec({"SELECT 1"}));
  auto stats = fx.stats("shared");
  CHECK(stats.discarded == 1);
  CHECK(stats.opened == opened_before + 1);
  CHECK(stats.total <= 3);
  CHECK(stats.in_use == 0);
}

TEST_CASE("pool_pre_ping replaces an idle connection whose backend died", "[fault][pg]") {
  with_temp_dir tmp;
  auto cfg = pg_backend::make_config(tmp.dir);
  cfg.pool_size = 1;
  cfg.max_overflow = 0;
  cfg.pool_pre_ping = true;
  cfg.pre_ping_after = std::chrono::milliseconds(0);
  database_fixture fx{cfg};
  fx.require_ready();
  auto pid = scalar(fx, {"SELECT pg_backend_pid()"});
  pg_admin("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  REQUIRE(eventually([&] {
    return fx.stats("shared").idle == 1; // back in the pool, its backend gone
  }));
  // Without the ping this would be connection_lost (see the test above).
  auto again = fx.cli->exec({"SELECT pg_backend_pid()"});
  INFO((again ? std::string{} : text(again.error())));
  REQUIRE(again);
  CHECK(again->rows.at(0).at(0).as_int() != pid);
  auto stats = fx.stats("shared");
  CHECK(stats.ping_failures == 1);
  CHECK(stats.discarded == 1);
}

namespace {

// A client actor: opens a session, begins, inserts its row, reports (id, self) to
// `main` while the transaction is open, then commits when told (commit_atom).
caf::behavior tx_client(caf::event_based_actor* self, database_actor db, int id, caf::actor main) {
  self->request(db, std::chrono::seconds(30), caf::open_atom::value, session_options{})
      .then([=](session_actor s) {
        self->request(s, std::chrono::seconds(30), begin_atom::value).then([=](caf::ok_atom) {
          self->request(s, std::chrono::seconds(30), exec_atom::value,
                        statement{"INSERT INTO t VALUES ($1)", {id}})
              .then([=](result_set&) {
                self->send(main, id, caf::actor_cast<caf::actor>(self));
                self->become([=](commit_atom) {
                  self->request(s, std::chrono::seconds(30), commit_atom::value)
                      .then([=](caf::ok_atom) {
                        self->send(main, id);
                        self->quit();
                      });
                });
              });
        });
      });
  return {[](caf::ok_atom) {}};
}

} // namespace

TEMPLATE_TEST_CASE("client actors killed mid-transaction under load all roll back, no lease "
                   "leaks",
                   "[fault]", sqlite_backend, pg_backend) {
  with_temp_dir tmp;
  auto cfg = TestType::make_config(tmp.dir);
  cfg.pool_size = 5;
  cfg.max_overflow = 0;
  cfg.pool_timeout = std::chrono::milliseconds(20000);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (id INTEGER)"});
  caf::scoped_actor main{fx.sys};
  constexpr int clients = 40;
  for (int id = 0; id < clients; ++id)
    fx.sys.spawn(tx_client, fx.db, id, caf::actor_cast<caf::actor>(main));
  // Odd clients die holding their transaction; even ones commit.
  int killed = 0, committed = 0;
  bool timed_out = false;
  while (killed + committed < clients && !timed_out)
    main->receive(
        [&](int id, caf::actor& client) {
          if (id % 2 == 1) {
            main->send_exit(client, caf::exit_reason::kill);
            ++killed;
          } else {
            main->send(client, commit_atom::value);
          }
        },
        [&](int) { ++committed; },
        caf::after(std::chrono::seconds(60)) >> [&] { timed_out = true; });
  REQUIRE(!timed_out);
  CHECK(killed == clients / 2);
  CHECK(fx.count("t") == clients / 2);
  CHECK(scalar(fx, {"SELECT count(*) FROM t WHERE id % 2 = 1"}) == 0);
  auto pool = TestType::rw_pool;
  CHECK(eventually([&] {
    auto s = fx.stats(pool);
    return s.in_use == 0 && s.waiting == 0;
  }));
  auto stats = fx.stats(pool);
  CHECK(stats.total <= stats.max);
  CHECK(stats.discarded == 0); // rolled back cleanly, not thrown away
  auto report = fx.cli->status();
  REQUIRE(report);
  CHECK(eventually([&] { return fx.cli->status()->sessions == 0; }));
}

TEST_CASE("pool saturation: 10x more clients than connections, only typed and counted timeouts",
          "[fault][pg]") {
  with_temp_dir tmp;
  auto cfg = pg_backend::make_config(tmp.dir);
  cfg.pool_size = 4;
  cfg.max_overflow = 0;
  cfg.pool_timeout = std::chrono::milliseconds(100);
  database_fixture fx{cfg};
  fx.require_ready();
  std::atomic<int> served{0}, timeouts{0}, other{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 40; ++i)
    clients.emplace_back([&] {
      client cli{fx.sys, fx.db, std::chrono::seconds(30)};
      for (int n = 0; n < 15; ++n) {
        auto r = cli.exec({"SELECT pg_sleep(0.02)"});
        if (r)
          ++served;
        else if (is(r.error(), errc::pool_timeout))
          ++timeouts;
        else
          ++other;
      }
    });
  for (auto& t : clients)
    t.join();
  INFO(served << " served, " << timeouts << " pool_timeout, " << other << " other");
  CHECK(other == 0);
  CHECK(served > 0);
  CHECK(timeouts > 0);
  auto stats = fx.stats("shared");
  CHECK(stats.timeouts == timeouts);
  CHECK(stats.in_use == 0);
  CHECK(stats.total <= 4);
}

TEST_CASE("SQLite: a lock held past busy_timeout gives a typed busy error, not a hang",
          "[fault][sqlite]") {
  temp_dir dir;
  auto cfg = file_config(dir);
  cfg.busy_timeout = std::chrono::milliseconds(200);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  // Another process's writer, in effect: a connection of its own holding the write lock.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(dir.file("test.db").c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  auto started = steady::now();
  auto blocked = fx.cli->exec({"INSERT INTO t VALUES (1)"});
  auto took = steady::now() - started;
  REQUIRE(!blocked);
  INFO(text(blocked.error()));
  CHECK(is(blocked.error(), errc::busy));
  CHECK(took < std::chrono::seconds(3));
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  // The lock is gone: the same write goes through, on the same (reused) writer.
  REQUIRE(fx.cli->exec({"INSERT INTO t VALUES (1)"}));
  CHECK(fx.count("t") == 1);
  CHECK(fx.stats("writer").discarded == 0);
}

TEST_CASE("a full server (53300) is not a lost server: the connections that work serve, no "
          "flapping",
          "[fault][pg]") {
  pg_server server{6};
  // Take all but two of the server's connection slots.
  auto holders = hold_slots(server, 4);
  auto cfg = must_config(server.url);
  cfg.pool_size = 10;
  cfg.max_overflow = 0;
  cfg.min_idle = 10; // asks for more than the server has
  cfg.pool_timeout = std::chrono::milliseconds(10000);
  cfg.log_level = std::getenv("CAFDB_TEST_LOG") ? std::getenv("CAFDB_TEST_LOG") : "off";
  database_fixture fx{cfg};
  fx.require_ready();
  caf::scoped_actor watcher{fx.sys};
  REQUIRE(fx.cli->subscribe(caf::actor_cast<caf::actor>(watcher)));

  // Eight clients at once, on the connections the server allows.
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&] {
      client own{fx.sys, fx.db, std::chrono::seconds(30)};
      for (int n = 0; n < 25; ++n)
        if (!own.exec({"SELECT pg_sleep(0.002)"}))
          failures += 1;
    });
  for (auto& t : clients)
    t.join();
  CHECK(failures == 0);
  auto stats = fx.stats("shared");
  CHECK(stats.server_full >= 1);
  INFO("opened " << stats.opened << ", server_full " << stats.server_full << ", idle " << stats.idle
                 << ", in use " << stats.in_use);
  CHECK(stats.idle + stats.in_use <= 2); // total also counts a connect under way
  CHECK(stats.opened <= 2 + 2);          // the two that work, and perhaps a replacement each
  auto status = fx.cli->status();
  REQUIRE(status);
  CHECK(status->state == readiness_state::ready);
  // Never degraded: the first event after the snapshot is not a change of state.
  bool degraded =
      await_event(watcher, "database", readiness_state::degraded, std::chrono::milliseconds(200));
  CHECK_FALSE(degraded);
}

TEST_CASE("a full server: work that waits takes its connection back from blocking callers "
          "in place instead of waiting for pool_timeout",
          "[fault][pg][in_place]") {
  pg_server server{6};
  // Take all but two of the server's connection slots; one of them watches the server.
  auto holders = hold_slots(server, 4);
  auto sleeping = [&] {
    auto* r = PQexec(holders.front().get(), "SELECT count(*) FROM pg_stat_activity "
                                            "WHERE query LIKE 'SELECT pg_sleep(1)%'");
    int n = PQresultStatus(r) == PGRES_TUPLES_OK ? std::atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return n;
  };
  auto cfg = must_config(server.url);
  cfg.pool_size = 10;
  cfg.max_overflow = 0;
  cfg.min_idle = 10; // keeps asking the server for more: it answers 53300
  cfg.pool_timeout = std::chrono::milliseconds(4000);
  cfg.log_level = std::getenv("CAFDB_TEST_LOG") ? std::getenv("CAFDB_TEST_LOG") : "off";
  database_fixture fx{cfg};
  fx.require_ready();
  // A blocking call opens the shelf: both connections the server allows go there.
  REQUIRE(eventually([&] {
    auto probe = fx.cli->exec({"SELECT 1"});
    return probe && fx.stats("shared").in_place == 2;
  }));

  // Two blocking callers borrow both, in place, for a second.
  std::atomic<int> sleeper_failures{0};
  joined_threads sleepers;
  for (int i = 0; i < 2; ++i)
    sleepers.start([&] {
      client own{fx.sys, fx.db, std::chrono::seconds(30)};
      if (!own.exec({"SELECT pg_sleep(1)"}))
        sleeper_failures += 1;
    });
  REQUIRE(eventually([&] { return sleeping() == 2; }));

  // A session's checkout finds nothing free and no room on the server: it must take a
  // shelved connection back when its borrower is done, not wait out pool_timeout.
  auto s = fx.cli->open_session(session_options{});
  REQUIRE(s);
  auto r = s->exec({"SELECT 1"});
  INFO((r ? std::string{"ok"} : text(r.error())));
  CHECK(r);
  sleepers.join();
  CHECK(sleeper_failures == 0);
  CHECK(fx.stats("shared").timeouts == 0);
}
