// raw_sqlite: the baseline a plain sqlite3 program sets on pgbench's tables.
//
//   raw_sqlite --path bench.db --workload select --threads 4 --duration 10
//   raw_sqlite --path bench.db --workload insert --rows 1000
//
// select: one connection per thread, the point select prepared once, stepped in a
// loop with a random aid. insert: one connection, the INSERT prepared once, --rows
// rows per transaction, transactions in a loop. The same pragmas as cafdb's SQLite
// engine (WAL, synchronous=NORMAL, foreign_keys), so both write the same way.
#include <sqlite3.h>

#include <cstdio>
#include <memory>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>

#include "bench/bench_common.hpp"

namespace {

struct options : bench::run_options {
  std::string path = "cafdb_bench.db";
  std::string workload = "select";
  int threads = 4;
  int rows = 1000;
};

struct db_closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct stmt_finalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using db_ptr = std::unique_ptr<sqlite3, db_closer>;
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_finalizer>;

db_ptr open_database(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  db_ptr db{raw};
  if (rc != SQLITE_OK)
    return nullptr;
  sqlite3_busy_timeout(raw, 5000);
  sqlite3_exec(raw,
               "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
               nullptr, nullptr, nullptr);
  return db;
}

stmt_ptr prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK)
    return nullptr;
  return stmt_ptr{raw};
}

void select_worker(const options& opt, sqlite3* db, bench::run_clock& clock, bench::tally& out,
                   uint64_t seed) {
  auto stmt = prepare(db, bench::select_sql);
  std::mt19937_64 rng{seed};
  std::uniform_int_distribution<int64_t> aid{1, opt.scale * bench::accounts_per_branch};
  while (clock.now.load(std::memory_order_relaxed) != bench::phase::stopped) {
    auto sent = std::chrono::steady_clock::now();
    sqlite3_bind_int64(stmt.get(), 1, aid(rng));
    uint64_t rows = 0;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      (void)sqlite3_column_int64(stmt.get(), 0);
      rows += 1;
    }
    sqlite3_reset(stmt.get());
    clock.completed.fetch_add(1, std::memory_order_relaxed);
    if (clock.now.load(std::memory_order_relaxed) != bench::phase::measuring)
      continue;
    if (rc == SQLITE_DONE)
      out.add(std::chrono::steady_clock::now() - sent, rows);
    else
      out.errors[sqlite3_errstr(rc)] += 1;
  }
}

void insert_worker(const options& opt, sqlite3* db, bench::run_clock& clock, bench::tally& out,
                   uint64_t seed) {
  auto stmt = prepare(db, bench::insert_sql);
  std::mt19937_64 rng{seed};
  while (clock.now.load(std::memory_order_relaxed) != bench::phase::stopped) {
    auto sent = std::chrono::steady_clock::now();
    int rc = sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (int i = 0; i < opt.rows && rc == SQLITE_OK; ++i) {
      auto d = bench::draw_tpcb(rng, opt.scale);
      sqlite3_bind_int64(stmt.get(), 1, d.tid);
      sqlite3_bind_int64(stmt.get(), 2, d.bid);
      sqlite3_bind_int64(stmt.get(), 3, d.aid);
      sqlite3_bind_int64(stmt.get(), 4, d.delta);
      rc = sqlite3_step(stmt.get()) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
      sqlite3_reset(stmt.get());
    }
    rc = sqlite3_exec(db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", nullptr, nullptr, nullptr) ==
                 SQLITE_OK
             ? rc
             : sqlite3_errcode(db);
    clock.completed.fetch_add(1, std::memory_order_relaxed);
    if (clock.now.load(std::memory_order_relaxed) != bench::phase::measuring)
      continue;
    if (rc == SQLITE_OK)
      out.add(std::chrono::steady_clock::now() - sent, static_cast<uint64_t>(opt.rows));
    else
      out.errors[sqlite3_errstr(rc)] += 1;
  }
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"A plain sqlite3 loop on pgbench's tables"};
  app.add_option("--path", opt.path, "SQLite file holding pgbench's tables (cafdb_bench --init)")
      ->capture_default_str();
  app.add_option("--workload", opt.workload, "select or insert")
      ->check(CLI::IsMember({"select", "insert"}))
      ->capture_default_str();
  app.add_option("--threads", opt.threads, "Threads of the select workload (one connection each)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--rows", opt.rows, "Rows per transaction of the insert workload")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  opt.add_run_options(app);
  CLI11_PARSE(app, argc, argv);

  bool insert = opt.workload == "insert";
  int threads = insert ? 1 : opt.threads;
  std::vector<db_ptr> dbs;
  for (int i = 0; i < threads; ++i) {
    auto db = open_database(opt.path);
    if (!db || !prepare(db.get(), insert ? bench::insert_sql : bench::select_sql)) {
      std::fprintf(stderr, "raw_sqlite: cannot use %s (run cafdb_bench --init first): %s\n",
                   opt.path.c_str(), db ? sqlite3_errmsg(db.get()) : "cannot open");
      return 1;
    }
    dbs.push_back(std::move(db));
  }

  bench::run_clock clock;
  std::vector<bench::tally> tallies(dbs.size());
  std::vector<std::thread> workers;
  for (size_t i = 0; i < dbs.size(); ++i)
    workers.emplace_back(insert ? insert_worker : select_worker, std::cref(opt), dbs[i].get(),
                         std::ref(clock), std::ref(tallies[i]), 7919 * i + 1);
  double seconds = clock.run(opt);
  for (auto& w : workers)
    w.join();
  nlohmann::json settings = {{"engine", "sqlite"}, {"threads", threads}, {"scale", opt.scale}};
  if (insert)
    settings["rows_per_transaction"] = opt.rows;
  auto summary =
      bench::summarize("raw_sqlite", opt.workload, tallies, seconds, settings, clock.cpu_seconds);
  bench::print(summary, opt.json);
  return summary["error_count"].get<uint64_t>() == 0 && summary["operations"].get<uint64_t>() > 0
             ? 0
             : 1;
}
