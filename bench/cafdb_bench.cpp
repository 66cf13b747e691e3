// cafdb_bench: cafdb's throughput and latency on pgbench's workloads, PostgreSQL or SQLite.
//
//   cafdb_bench --url postgresql://... --workload select --clients 8 --pool-size 8
//   cafdb_bench --url sqlite:///bench.db --init --scale 1 --workload tpcb
//
// Each client sends one request at a time, by the path --path names (the ways an
// application calls cafdb):
//   actor-session   an actor with a session of its own (the default)
//   actor-oneshot   an actor sending each request to the database (a throwaway session)
//   client-session  a thread with a blocking `session` of its own
//   client-exec     a thread calling the blocking `client::exec` / `transact`
// `select` is an autocommit `exec` in a read-only session, `tpcb` is one `transact` of
// pgbench's five statements, `insert` is one `exec_many` of --rows rows (or, with
// --per-statement, one `transact` of --rows INSERT statements; actor-session only).
// Warm-up first, then the measured interval; the summary gives throughput, latency percentiles,
// errors by kind, peak RSS and the process's CPU time per request. The exit status is non-zero when
// nothing was measured or an error other than a configured timeout occurred.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>

#include "bench/bench_common.hpp"
#include "cafdb/database.hpp"

namespace {

using namespace std::chrono_literals;

enum class workload { select, tpcb, insert };

enum class call_path { actor_session, actor_oneshot, client_session, client_exec };

struct options : bench::run_options {
  std::string url = "sqlite:///cafdb_bench.db";
  std::string workload_name = "select";
  workload kind = workload::select;
  std::string path_name = "actor-session";
  call_path path = call_path::actor_session;
  int clients = 8;
  int pool_size = 8;
  int rows = 1000;
  int pool_timeout_ms = 30'000;
  bool init = false;
  bool init_only = false;
  bool per_statement = false;
  /// Calls with default session options (read-write), as the README's first example.
  bool default_options = false;
};

struct client_state {
  static inline const char* name = "cafdb.bench_client";
  const options* opt = nullptr;
  bench::run_clock* clock = nullptr;
  bench::tally* out = nullptr;
  /// actor-session: the client's own session; actor-oneshot: none (requests go to `db`).
  cafdb::session_actor session;
  cafdb::database_actor db;
  std::mt19937_64 rng;
  std::chrono::steady_clock::time_point sent;
};

/// A point select by a random aid (pgbench -S).
cafdb::statement point_select(std::mt19937_64& rng, const options& opt) {
  std::uniform_int_distribution<int64_t> aid{1, opt.scale * bench::accounts_per_branch};
  return {bench::select_sql, {static_cast<long long>(aid(rng))}};
}

/// pgbench's TPC-B-like transaction with random choices.
std::vector<cafdb::statement> tpcb_statements(std::mt19937_64& rng, const options& opt) {
  static const auto sql = bench::tpcb_sql();
  auto d = bench::draw_tpcb(rng, opt.scale);
  using ll = long long;
  return {
      {sql[0], {ll{d.aid}, ll{d.delta}}},
      {sql[1], {ll{d.aid}}},
      {sql[2], {ll{d.tid}, ll{d.delta}}},
      {sql[3], {ll{d.bid}, ll{d.delta}}},
      {sql[4], {ll{d.tid}, ll{d.bid}, ll{d.aid}, ll{d.delta}}},
  };
}

/// The session options of a workload: point selects are reads (on SQLite they go to
/// the reader pool), unless the run asks for the defaults.
cafdb::session_options session_for(const options& opt) {
  cafdb::session_options session;
  session.read_only = opt.kind == workload::select && !opt.default_options;
  return session;
}

/// Records one finished request.
void count(bench::run_clock& clock, bench::tally& out, std::chrono::steady_clock::time_point sent,
           const caf::error& err, uint64_t rows) {
  clock.completed.fetch_add(1, std::memory_order_relaxed);
  if (clock.now.load(std::memory_order_relaxed) != bench::phase::measuring)
    return;
  if (err)
    out.errors[cafdb::to_string(cafdb::describe(err).code)] += 1;
  else
    out.add(std::chrono::steady_clock::now() - sent, rows);
}

using client_pointer = caf::stateful_actor<client_state>*;

void next_request(client_pointer self);

void finished(client_pointer self, const caf::error& err, uint64_t rows) {
  count(*self->state.clock, *self->state.out, self->state.sent, err, rows);
  next_request(self);
}

void next_request(client_pointer self) {
  auto& st = self->state;
  const auto& opt = *st.opt;
  if (st.clock->now.load(std::memory_order_relaxed) == bench::phase::stopped) {
    if (!st.session) {
      self->quit();
      return;
    }
    self->request(st.session, 10s, caf::close_atom::value)
        .then([=](caf::ok_atom) { self->quit(); }, [=](caf::error&) { self->quit(); });
    return;
  }
  st.sent = std::chrono::steady_clock::now();
  auto on_error = [=](caf::error& err) { finished(self, err, 0); };
  bool oneshot = opt.path == call_path::actor_oneshot;
  switch (opt.kind) {
  case workload::select: {
    auto on_rows = [=](cafdb::result_set& rs) { finished(self, {}, rs.rows.size()); };
    if (oneshot)
      self->request(st.db, caf::infinite, cafdb::exec_atom::value, point_select(st.rng, opt),
                    session_for(opt))
          .then(on_rows, on_error);
    else
      self->request(st.session, caf::infinite, cafdb::exec_atom::value, point_select(st.rng, opt))
          .then(on_rows, on_error);
    break;
  }
  case workload::tpcb: {
    auto on_done = [=](std::vector<cafdb::result_set>&) { finished(self, {}, 1); };
    if (oneshot)
      self->request(st.db, caf::infinite, cafdb::transact_atom::value, tpcb_statements(st.rng, opt),
                    session_for(opt))
          .then(on_done, on_error);
    else
      self->request(st.session, caf::infinite, cafdb::transact_atom::value,
                    tpcb_statements(st.rng, opt))
          .then(on_done, on_error);
    break;
  }
  case workload::insert: {
    using ll = long long;
    auto rows = static_cast<uint64_t>(opt.rows);
    if (opt.per_statement) {
      std::vector<cafdb::statement> stmts;
      stmts.reserve(rows);
      for (uint64_t i = 0; i < rows; ++i) {
        auto d = bench::draw_tpcb(st.rng, opt.scale);
        stmts.push_back({bench::insert_sql, {ll{d.tid}, ll{d.bid}, ll{d.aid}, ll{d.delta}}});
      }
      self->request(st.session, caf::infinite, cafdb::transact_atom::value, std::move(stmts))
          .then([=](std::vector<cafdb::result_set>&) { finished(self, {}, rows); }, on_error);
      break;
    }
    cafdb::bulk_statement bulk{bench::insert_sql};
    bulk.reserve(rows, 4);
    for (uint64_t i = 0; i < rows; ++i) {
      auto d = bench::draw_tpcb(st.rng, opt.scale);
      bulk.add_row({ll{d.tid}, ll{d.bid}, ll{d.aid}, ll{d.delta}});
    }
    self->request(st.session, caf::infinite, cafdb::exec_many_atom::value, std::move(bulk))
        .then([=](cafdb::result_set&) { finished(self, {}, rows); }, on_error);
    break;
  }
  }
}

caf::behavior bench_client(client_pointer self, cafdb::database_actor db, const options* opt,
                           bench::run_clock* clock, bench::tally* out, uint64_t seed) {
  self->state.opt = opt;
  self->state.clock = clock;
  self->state.out = out;
  self->state.rng.seed(seed);
  self->state.db = db;
  if (opt->path == call_path::actor_oneshot) {
    next_request(self);
    return {};
  }
  self->request(db, caf::infinite, caf::open_atom::value, session_for(*opt))
      .then(
          [=](cafdb::session_actor& opened) {
            self->state.session = opened;
            next_request(self);
          },
          [=](caf::error& err) {
            out->errors["open: " + cafdb::to_string(cafdb::describe(err).code)] += 1;
            self->quit();
          });
  return {};
}

/// A thread of the client-session and client-exec paths: blocking calls, one at a time.
void thread_client(cafdb::client& client, const options& opt, bench::run_clock& clock,
                   bench::tally& out, uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::optional<cafdb::session> own;
  if (opt.path == call_path::client_session) {
    auto opened = client.open_session(session_for(opt));
    if (!opened) {
      out.errors["open: " + cafdb::to_string(cafdb::describe(opened.error()).code)] += 1;
      return;
    }
    own = std::move(*opened);
  }
  while (clock.now.load(std::memory_order_relaxed) != bench::phase::stopped) {
    auto sent = std::chrono::steady_clock::now();
    caf::error err;
    uint64_t rows = 0;
    if (opt.kind == workload::select) {
      auto answer = own ? own->exec(point_select(rng, opt))
                        : client.exec(point_select(rng, opt), session_for(opt));
      if (answer)
        rows = answer->rows.size();
      else
        err = std::move(answer.error());
    } else {
      auto answer = own ? own->transact(tpcb_statements(rng, opt))
                        : client.transact(tpcb_statements(rng, opt), session_for(opt));
      if (answer)
        rows = 1;
      else
        err = std::move(answer.error());
    }
    count(clock, out, sent, err, rows);
  }
}

int run(const options& opt) {
  auto cfg = cafdb::config_from_url(opt.url);
  if (!cfg) {
    std::fprintf(stderr, "cafdb_bench: %s\n", cfg.error().message.c_str());
    return 2;
  }
  cfg->pool_size = opt.pool_size;
  cfg->max_overflow = 0;
  cfg->pool_timeout = std::chrono::milliseconds(opt.pool_timeout_ms);
  cfg->max_pending = std::max(cfg->max_pending, 2 * opt.clients);
  cfg->create_all = false;
  bool postgres = cfg->engine == cafdb::engine_kind::postgresql;

  cafdb::runtime rt{*cfg};
  auto& client = rt.client();
  if (auto ready = client.await_ready(60s); !ready) {
    std::fprintf(stderr, "cafdb_bench: %s\n", cafdb::render(ready.error()).c_str());
    return 1;
  }
  if (opt.init) {
    for (auto& sql : bench::pgbench_init_sql(postgres, opt.scale)) {
      if (auto done = client.exec({sql}); !done) {
        std::fprintf(stderr, "cafdb_bench: --init: %s\n", cafdb::render(done.error()).c_str());
        return 1;
      }
    }
  }
  if (opt.init_only)
    return 0;
  if (auto probe = client.exec({"SELECT count(*) FROM pgbench_branches"}); !probe) {
    std::fprintf(stderr,
                 "cafdb_bench: pgbench's tables are missing (%s): run with --init, or pgbench -i\n",
                 cafdb::render(probe.error()).c_str());
    return 1;
  }

  bench::run_clock clock;
  std::vector<bench::tally> tallies(static_cast<size_t>(opt.clients));
  caf::scoped_actor self{rt.system()};
  bool threads = opt.path == call_path::client_session || opt.path == call_path::client_exec;
  std::vector<std::thread> running;
  for (size_t i = 0; i < tallies.size(); ++i) {
    auto seed = 7919 * i + 1;
    if (threads) {
      running.emplace_back(thread_client, std::ref(client), std::cref(opt), std::ref(clock),
                           std::ref(tallies[i]), seed);
      continue;
    }
    auto c = rt.system().spawn(bench_client, rt.database(), &opt, &clock, &tallies[i], seed);
    self->monitor(c);
  }
  double seconds = clock.run(opt);
  int gone = 0;
  bool all_gone = true;
  if (threads) {
    for (auto& t : running)
      t.join(); // each call has the client's request timeout
  } else {
    self->receive_for(gone, opt.clients)(
        [](caf::down_msg&) {}, caf::after(std::chrono::seconds(120)) >> [&] { all_gone = false; });
  }
  if (!all_gone)
    std::fprintf(stderr, "cafdb_bench: %d clients did not finish within 120 s\n",
                 opt.clients - gone);

  nlohmann::json settings = {{"engine", postgres ? "postgresql" : "sqlite"},
                             {"path", opt.path_name},
                             {"clients", opt.clients},
                             {"pool_size", opt.pool_size},
                             {"scale", opt.scale},
                             {"warmup_s", opt.warmup_s}};
  if (opt.kind == workload::insert)
    settings["rows_per_transaction"] = opt.rows;
  if (opt.kind == workload::insert)
    settings["insert_as"] = opt.per_statement ? "transact" : "exec_many";
  if (opt.kind == workload::select)
    settings["session"] = opt.default_options ? "default" : "read_only";
  auto summary =
      bench::summarize("cafdb", opt.workload_name, tallies, seconds, settings, clock.cpu_seconds);
  bench::print(summary, opt.json);

  uint64_t unexpected = 0;
  for (auto& [kind, n] : summary["errors"].items())
    if (kind != cafdb::to_string(cafdb::errc::pool_timeout) &&
        kind != cafdb::to_string(cafdb::errc::pool_overloaded))
      unexpected += n.get<uint64_t>();
  if (summary["operations"].get<uint64_t>() == 0 || unexpected > 0 || !all_gone) {
    std::fprintf(stderr, "cafdb_bench: %s\n",
                 unexpected > 0 ? "errors other than configured timeouts occurred"
                                : "nothing was measured");
    return 1;
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"cafdb's throughput and latency on pgbench's workloads"};
  app.add_option("--url", opt.url, "Database URL (postgresql://... or sqlite:///file.db)")
      ->capture_default_str();
  app.add_option("--workload", opt.workload_name, "select, tpcb or insert")
      ->check(CLI::IsMember({"select", "tpcb", "insert"}))
      ->capture_default_str();
  app.add_option("--clients", opt.clients, "Client actors")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--pool-size", opt.pool_size, "Connections in the pool")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--rows", opt.rows, "Rows per transaction of the insert workload")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  app.add_option("--pool-timeout", opt.pool_timeout_ms, "pool_timeout in milliseconds")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  app.add_option("--path", opt.path_name,
                 "How clients call cafdb: actor-session, actor-oneshot, client-session or "
                 "client-exec")
      ->check(CLI::IsMember({"actor-session", "actor-oneshot", "client-session", "client-exec"}))
      ->capture_default_str();
  app.add_flag("--per-statement", opt.per_statement,
               "insert: one transact of single-row INSERTs instead of one exec_many");
  app.add_flag("--default-options", opt.default_options,
               "select: call with default (read-write) session options, as the README does");
  app.add_flag("--init", opt.init, "(Re)create and fill pgbench's tables at --scale first");
  app.add_flag("--init-only", opt.init_only, "With --init: fill the tables, then exit");
  opt.add_run_options(app);
  CLI11_PARSE(app, argc, argv);
  opt.kind = opt.workload_name == "tpcb"     ? workload::tpcb
             : opt.workload_name == "insert" ? workload::insert
                                             : workload::select;
  opt.path = opt.path_name == "actor-oneshot"    ? call_path::actor_oneshot
             : opt.path_name == "client-session" ? call_path::client_session
             : opt.path_name == "client-exec"    ? call_path::client_exec
                                                 : call_path::actor_session;
  if (opt.kind == workload::insert && opt.path != call_path::actor_session) {
    std::fprintf(stderr, "cafdb_bench: the insert workload runs on --path actor-session only\n");
    return 2;
  }
  return run(opt);
}
