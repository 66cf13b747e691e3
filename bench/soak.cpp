// Memory over time: N requests in a row, RSS sampled at every step.
//
// A runtime that keeps anything per request (a timer, a map entry, a dead actor held
// by a pending message) grows without bound under a steady load. This program sends
// `--requests` requests one after the other and prints the resident set size every
// `--step` requests; it fails (exit 1) when RSS grew by more than `--max-growth-mb`
// between the first sample and the last.
//
//   soak --url sqlite:///soak.db --path client   --requests 1000000
//   soak --url "$CAFDB_TEST_PG_URL" --path actor  --requests 1000000
//
// Paths: `client` (the blocking client's exec), `session` (open_session, exec, close
// through the blocking client), `actor` (an actor sends exec_atom to the database and
// waits for each answer before sending the next).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>

#include "cafdb/database.hpp"
#include "cafdb/settled.hpp"

namespace {

/// Resident set size in KiB (Linux /proc/self/statm).
long rss_kib() {
  std::ifstream statm{"/proc/self/statm"};
  long pages = 0;
  long resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

struct run_options {
  std::string url;
  std::string path = "client";
  int64_t requests = 1'000'000;
  int64_t step = 100'000;
  double max_growth_mb = 5.0;
};

/// Runs `one(i)` `requests` times, printing RSS every `step`. Returns false on the
/// first failed request or when memory grew past the limit.
template <class F>
bool soak(const run_options& opt, F one) {
  std::vector<long> samples;
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < opt.requests; ++i) {
    if (!one(i))
      return false;
    if ((i + 1) % opt.step == 0) {
      samples.push_back(rss_kib());
      auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%s %lld requests: rss %.1f MiB (%.0f/s)\n", opt.path.c_str(),
                  static_cast<long long>(i + 1), samples.back() / 1024.0, (i + 1) / secs);
      std::fflush(stdout);
    }
  }
  if (samples.size() < 2) {
    std::printf("too few samples to judge growth: raise --requests or lower --step\n");
    return true;
  }
  double growth = (samples.back() - samples.front()) / 1024.0;
  std::printf("growth after the first %lld requests: %.2f MiB (limit %.1f)\n",
              static_cast<long long>(opt.step), growth, opt.max_growth_mb);
  return growth <= opt.max_growth_mb;
}

/// The actor path: one actor, one request in flight at a time. Each batch of `step`
/// requests is one actor's run; RSS is sampled between batches.
bool actor_path(cafdb::runtime& rt, const run_options& opt) {
  struct batch_end {
    std::mutex mtx;
    std::condition_variable cv;
    bool done = false;
    bool failed = false;
    void finish(bool ok) {
      std::lock_guard<std::mutex> guard{mtx};
      done = true;
      failed = !ok;
      cv.notify_all();
    }
  };
  auto db = rt.database();
  auto step = opt.step;
  int64_t sent = 0;
  return soak(opt, [&](int64_t) {
    // The blocking loop counts one request per call; the actor sends a whole batch.
    if (sent++ % step != 0)
      return true;
    auto end = std::make_shared<batch_end>();
    auto client = rt.system().spawn([db, end](caf::event_based_actor* self) -> caf::behavior {
      return {[=](int64_t left) {
        if (left == 0) {
          end->finish(true);
          self->quit();
          return;
        }
        // then_settled: CAF would keep each request's 30 s timeout on its clock.
        cafdb::then_settled(
            self->request(db, std::chrono::seconds(30), cafdb::exec_atom::value,
                          cafdb::statement{"SELECT 1"}, cafdb::session_options{}),
            [=](cafdb::result_set&) { self->send(self, left - 1); },
            [=](caf::error& err) {
              std::fprintf(stderr, "request failed: %s\n", cafdb::render(err).c_str());
              end->finish(false);
              self->quit();
            });
      }};
    });
    caf::anon_send(client, step);
    std::unique_lock<std::mutex> lock{end->mtx};
    end->cv.wait(lock, [&] { return end->done; });
    return !end->failed;
  });
}

} // namespace

int main(int argc, char** argv) {
  run_options opt;
  CLI::App app{"cafdb's memory over a long run of requests"};
  app.add_option("--url", opt.url, "database URL")->required();
  app.add_option("--path", opt.path, "client, session or actor")
      ->check(CLI::IsMember({"client", "session", "actor"}));
  app.add_option("--requests", opt.requests, "requests in all")->check(CLI::Range(1, 100'000'000));
  app.add_option("--step", opt.step, "requests between RSS samples")
      ->check(CLI::Range(1, 100'000'000));
  app.add_option("--max-growth-mb", opt.max_growth_mb,
                 "fail when RSS grew more than this after the first step");
  CLI11_PARSE(app, argc, argv);

  auto cfg = cafdb::config_from_url(opt.url);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 2;
  }
  cafdb::runtime rt{std::move(*cfg)};
  auto& db = rt.client();
  if (auto ready = db.await_ready(std::chrono::seconds(30)); !ready) {
    std::fprintf(stderr, "not ready: %s\n", cafdb::render(ready.error()).c_str());
    return 2;
  }
  auto fail = [](const caf::error& err) {
    std::fprintf(stderr, "request failed: %s\n", cafdb::render(err).c_str());
    return false;
  };
  bool ok = false;
  if (opt.path == "client") {
    ok = soak(opt, [&](int64_t) {
      auto rows = db.exec({"SELECT 1"});
      return rows ? true : fail(rows.error());
    });
  } else if (opt.path == "session") {
    ok = soak(opt, [&](int64_t) {
      auto s = db.open_session();
      if (!s)
        return fail(s.error());
      auto rows = s->exec({"SELECT 1"});
      if (!rows)
        return fail(rows.error());
      auto err = s->close();
      return err ? fail(err) : true;
    });
  } else {
    ok = actor_path(rt, opt);
  }
  rt.stop();
  return ok ? 0 : 1;
}
