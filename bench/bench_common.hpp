// What every bench/ program shares: pgbench's tables and transaction, the run clock,
// and one way of summarising latencies, so that the figures of cafdb and of the raw
// driver loops are computed the same way and can be put side by side.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace bench {

// -- pgbench's data set (pgbench -i: 1 branch, 10 tellers, 100000 accounts per scale) --

constexpr int64_t accounts_per_branch = 100000;
constexpr int64_t tellers_per_branch = 10;

/// DDL and data for pgbench's four tables at `scale`, for PostgreSQL or SQLite. The
/// same statements pgbench -i would leave behind (primary keys included).
inline std::vector<std::string> pgbench_init_sql(bool postgres, int64_t scale) {
  std::vector<std::string> sql = {
      "DROP TABLE IF EXISTS pgbench_history",
      "DROP TABLE IF EXISTS pgbench_tellers",
      "DROP TABLE IF EXISTS pgbench_accounts",
      "DROP TABLE IF EXISTS pgbench_branches",
      "CREATE TABLE pgbench_branches (bid int NOT NULL PRIMARY KEY, bbalance int, "
      "filler char(88))",
      "CREATE TABLE pgbench_tellers (tid int NOT NULL PRIMARY KEY, bid int, tbalance int, "
      "filler char(84))",
      "CREATE TABLE pgbench_accounts (aid int NOT NULL PRIMARY KEY, bid int, abalance int, "
      "filler char(84))",
      "CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, "
      "filler char(22))",
  };
  // A row source 1..n: generate_series on PostgreSQL, a recursive CTE on SQLite.
  auto fill = [&](const std::string& table, int64_t n, const std::string& columns) {
    auto count = std::to_string(n);
    if (postgres)
      return "INSERT INTO " + table + " SELECT " + columns + " FROM generate_series(1, " + count +
             ") AS s(x)";
    return "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < " + count +
           ") INSERT INTO " + table + " SELECT " + columns + " FROM s";
  };
  sql.push_back(fill("pgbench_branches", scale, "x, 0, ''"));
  sql.push_back(fill("pgbench_tellers", scale * tellers_per_branch,
                     "x, (x - 1) / " + std::to_string(tellers_per_branch) + " + 1, 0, ''"));
  sql.push_back(fill("pgbench_accounts", scale * accounts_per_branch,
                     "x, (x - 1) / " + std::to_string(accounts_per_branch) + " + 1, 0, ''"));
  sql.push_back("ANALYZE");
  return sql;
}

/// pgbench -S: one point select by a random aid.
constexpr const char* select_sql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

/// pgbench's TPC-B-like transaction ($1 aid, $2 bid, $3 tid, $4 delta), in its order.
inline std::vector<std::string> tpcb_sql() {
  return {
      "UPDATE pgbench_accounts SET abalance = abalance + $2 WHERE aid = $1",
      "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
      "UPDATE pgbench_tellers SET tbalance = tbalance + $2 WHERE tid = $1",
      "UPDATE pgbench_branches SET bbalance = bbalance + $2 WHERE bid = $1",
      "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
      "VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
  };
}

/// The row the insert workload writes (into pgbench_history).
constexpr const char* insert_sql =
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, "
    "CURRENT_TIMESTAMP)";

/// pgbench's random choices for one TPC-B-like transaction.
struct tpcb_draw {
  int64_t aid, bid, tid, delta;
};

inline tpcb_draw draw_tpcb(std::mt19937_64& rng, int64_t scale) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>{lo, hi}(rng);
  };
  return {pick(1, scale * accounts_per_branch), pick(1, scale), pick(1, scale * tellers_per_branch),
          pick(-5000, 5000)};
}

// -- the options every bench program takes ------------------------------------------

struct run_options {
  double duration_s = 10;
  double warmup_s = 2;
  int64_t scale = 1;
  bool json = false;
  bool quiet = false;

  void add_run_options(CLI::App& app) {
    app.add_option("--duration", duration_s, "Measured seconds")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--warmup", warmup_s, "Warm-up seconds")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--scale", scale, "pgbench scale factor (100000 accounts each)")
        ->check(CLI::Range(int64_t{1}, int64_t{10000}))
        ->capture_default_str();
    app.add_flag("--json", json, "Print the summary as one JSON line");
    app.add_flag("--quiet", quiet, "No progress line");
  }
};

// -- the run clock: warm-up, then the measured interval, then stop ------------------

enum class phase : int { warmup, measuring, stopped };

/// Shared by the workers of a run; the main thread moves it on.
struct run_clock {
  std::atomic<phase> now{phase::warmup};
  /// Operations finished in any phase, for the progress line.
  std::atomic<uint64_t> completed{0};
  /// The process's CPU time (user + system, every thread) in the measured interval.
  double cpu_seconds = 0;

  /// The process's CPU time so far, in seconds.
  static double process_cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
  }

  /// Runs warm-up and the measured interval, printing a progress line to stderr once a
  /// second unless `quiet`. Returns the measured interval's length in seconds.
  double run(std::chrono::milliseconds warmup, std::chrono::milliseconds duration, bool quiet) {
    using clock = std::chrono::steady_clock;
    auto tick = [&](const char* what, clock::time_point until) {
      auto last_count = completed.load();
      auto last_time = clock::now();
      while (clock::now() < until) {
        auto step = std::min<clock::duration>(std::chrono::seconds(1), until - clock::now());
        std::this_thread::sleep_for(step);
        auto count = completed.load();
        auto at = clock::now();
        double rate = static_cast<double>(count - last_count) /
                      std::chrono::duration<double>(at - last_time).count();
        if (!quiet)
          std::fprintf(stderr, "\r  %-9s %12.0f ops/s   ", what, rate);
        last_count = count;
        last_time = at;
      }
    };
    tick("warm-up", clock::now() + warmup);
    now = phase::measuring;
    auto start = clock::now();
    auto cpu_start = process_cpu_seconds();
    tick("measuring", start + duration);
    now = phase::stopped;
    cpu_seconds = process_cpu_seconds() - cpu_start;
    auto seconds = std::chrono::duration<double>(clock::now() - start).count();
    if (!quiet)
      std::fprintf(stderr, "\n");
    return seconds;
  }

  double run(const run_options& opt) {
    auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
    return run(ms(opt.warmup_s), ms(opt.duration_s), opt.quiet);
  }
};

/// What one worker (thread or client actor) measured.
struct tally {
  std::vector<uint32_t> latencies_us;
  uint64_t operations = 0;
  uint64_t rows = 0;
  /// Failed operations by error kind.
  std::map<std::string, uint64_t> errors;

  void add(std::chrono::steady_clock::duration latency, uint64_t row_count) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(latency).count();
    latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    operations += 1;
    rows += row_count;
  }
};

inline uint64_t peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss);
}

/// Percentile by nearest rank of sorted values; 0 when empty.
inline double percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty())
    return 0;
  auto rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.5);
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

/// The summary every bench program prints: throughput, latency percentiles, and the
/// process's CPU time per operation (`cpu_seconds` of the measured interval: all of the
/// program's threads, the database server's processes not included).
inline nlohmann::json summarize(const std::string& program, const std::string& workload,
                                std::vector<tally>& tallies, double seconds,
                                nlohmann::json settings, double cpu_seconds) {
  std::vector<uint32_t> all;
  uint64_t operations = 0, rows = 0;
  nlohmann::json errors = nlohmann::json::object();
  uint64_t error_count = 0;
  for (auto& t : tallies) {
    all.insert(all.end(), t.latencies_us.begin(), t.latencies_us.end());
    operations += t.operations;
    rows += t.rows;
    for (auto& [kind, n] : t.errors) {
      errors[kind] = errors.value(kind, uint64_t{0}) + n;
      error_count += n;
    }
  }
  std::sort(all.begin(), all.end());
  nlohmann::json out = {
      {"program", program},
      {"workload", workload},
      {"settings", std::move(settings)},
      {"seconds", seconds},
      {"operations", operations},
      {"ops_per_s", static_cast<double>(operations) / seconds},
      {"rows_per_s", static_cast<double>(rows) / seconds},
      {"p50_us", percentile(all, 50)},
      {"p95_us", percentile(all, 95)},
      {"p99_us", percentile(all, 99)},
      {"errors", errors},
      {"error_count", error_count},
      {"peak_rss_mib", static_cast<double>(peak_rss_kib()) / 1024.0},
      {"cpu_us_per_op", operations > 0 ? cpu_seconds * 1e6 / static_cast<double>(operations) : 0.0},
  };
  return out;
}

/// Prints a summary as one JSON line, or as a few readable lines.
inline void print(const nlohmann::json& summary, bool json) {
  if (json) {
    std::printf("%s\n", summary.dump().c_str());
    return;
  }
  std::printf("%s %s: %.0f ops/s, %.0f rows/s over %.1f s (%llu operations)\n",
              summary["program"].get<std::string>().c_str(),
              summary["workload"].get<std::string>().c_str(), summary["ops_per_s"].get<double>(),
              summary["rows_per_s"].get<double>(), summary["seconds"].get<double>(),
              static_cast<unsigned long long>(summary["operations"].get<uint64_t>()));
  std::printf(
      "  latency p50 %.0f us, p95 %.0f us, p99 %.0f us; peak RSS %.1f MiB; CPU %.1f us/op\n",
      summary["p50_us"].get<double>(), summary["p95_us"].get<double>(),
      summary["p99_us"].get<double>(), summary["peak_rss_mib"].get<double>(),
      summary["cpu_us_per_op"].get<double>());
  std::printf("  settings %s\n", summary["settings"].dump().c_str());
  if (summary["error_count"].get<uint64_t>() > 0)
    std::printf("  errors %s\n", summary["errors"].dump().c_str());
}

} // namespace bench
