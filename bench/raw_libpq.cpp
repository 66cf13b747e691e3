// raw_libpq: the baseline a plain libpq program sets for pgbench's point select.
//
//   raw_libpq --url postgresql://... --threads 8 --duration 10
//
// One connection per thread, the statement prepared once, then PQexecPrepared in a
// loop with a random aid: the least a client can do per query.
#include <libpq-fe.h>

#include <cstdio>
#include <memory>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>

#include "bench/bench_common.hpp"

namespace {

struct options : bench::run_options {
  std::string url;
  int threads = 8;
};

struct pg_conn_closer {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct pg_result_clearer {
  void operator()(PGresult* r) const { PQclear(r); }
};
using conn_ptr = std::unique_ptr<PGconn, pg_conn_closer>;
using result_ptr = std::unique_ptr<PGresult, pg_result_clearer>;

void worker(const options& opt, PGconn* conn, bench::run_clock& clock, bench::tally& out,
            uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::uniform_int_distribution<int64_t> aid{1, opt.scale * bench::accounts_per_branch};
  while (clock.now.load(std::memory_order_relaxed) != bench::phase::stopped) {
    auto text = std::to_string(aid(rng));
    const char* values[] = {text.c_str()};
    auto sent = std::chrono::steady_clock::now();
    result_ptr res{PQexecPrepared(conn, "select", 1, values, nullptr, nullptr, 0)};
    bool ok = PQresultStatus(res.get()) == PGRES_TUPLES_OK;
    clock.completed.fetch_add(1, std::memory_order_relaxed);
    if (clock.now.load(std::memory_order_relaxed) != bench::phase::measuring)
      continue;
    if (ok)
      out.add(std::chrono::steady_clock::now() - sent, static_cast<uint64_t>(PQntuples(res.get())));
    else
      out.errors[PQresultErrorField(res.get(), PG_DIAG_SQLSTATE) ? "sqlstate" : "connection"] += 1;
  }
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"A plain libpq loop of pgbench's point select, one connection per thread"};
  app.add_option("--url", opt.url, "PostgreSQL URL or conninfo")->required();
  app.add_option("--threads", opt.threads, "Threads (one connection each)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  opt.add_run_options(app);
  CLI11_PARSE(app, argc, argv);

  std::vector<conn_ptr> conns;
  for (int i = 0; i < opt.threads; ++i) {
    conn_ptr conn{PQconnectdb(opt.url.c_str())};
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      std::fprintf(stderr, "raw_libpq: cannot connect: %s", PQerrorMessage(conn.get()));
      return 1;
    }
    result_ptr prepared{PQprepare(conn.get(), "select", bench::select_sql, 0, nullptr)};
    if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
      std::fprintf(stderr, "raw_libpq: prepare failed (are pgbench's tables there?): %s",
                   PQerrorMessage(conn.get()));
      return 1;
    }
    conns.push_back(std::move(conn));
  }

  bench::run_clock clock;
  std::vector<bench::tally> tallies(conns.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < conns.size(); ++i)
    threads.emplace_back(worker, std::cref(opt), conns[i].get(), std::ref(clock),
                         std::ref(tallies[i]), 7919 * i + 1);
  double seconds = clock.run(opt);
  for (auto& t : threads)
    t.join();
  auto summary =
      bench::summarize("raw_libpq", "select", tallies, seconds,
                       {{"engine", "postgresql"}, {"threads", opt.threads}}, clock.cpu_seconds);
  bench::print(summary, opt.json);
  return summary["error_count"].get<uint64_t>() == 0 && summary["operations"].get<uint64_t>() > 0
             ? 0
             : 1;
}
