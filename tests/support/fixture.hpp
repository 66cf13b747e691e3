// Shared test fixtures: a temp directory, an actor system with cafdb's types, and a
// database that is stopped before the system goes away.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include "cafdb/database.hpp"

namespace cafdb::test {

using namespace std::chrono_literals;

/// A fresh directory under /tmp, removed with everything in it.
struct temp_dir {
  temp_dir();
  ~temp_dir();
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

/// A config from a URL, failing the test if the URL is rejected.
config must_config(const std::string& url);

/// A config for a file database in `dir` with quiet logging and short timeouts.
config file_config(const temp_dir& dir, const std::string& name = "test.db");

/// An actor system config with cafdb's types. CAFDB_TEST_WORKERS, when set, forces the
/// scheduler's worker count, so that one machine can prove the suite passes with as
/// many workers as a larger one would start (scripts/test.sh runs a build with 16).
struct system_config : caf::actor_system_config {
  system_config();
  /// Exactly `workers` scheduler threads, whatever CAFDB_TEST_WORKERS says.
  explicit system_config(size_t workers);
};

/// The scheduler's worker count in the tests' actor systems: CAFDB_TEST_WORKERS, or
/// CAF's default for this machine.
size_t test_worker_count();

/// An actor system plus one database on `url` (options applied on top).
struct database_fixture {
  explicit database_fixture(config cfg);
  /// On a scheduler of exactly `workers` threads.
  database_fixture(config cfg, size_t workers);
  ~database_fixture();

  /// Waits until ready; fails the test if that takes longer than 10 s.
  void require_ready();
  /// Runs a one-shot statement and fails the test on error.
  result_set must_exec(const statement& stmt);
  /// Counts rows of `table` through a fresh read-only one-shot statement.
  int64_t count(const std::string& table);
  /// The pool statistics of the given pool ("writer", "reader" or "shared").
  pool_stats stats(const std::string& pool);
  /// Runs `stmt` in a read-only session of a client of its own, with `deadline` as the
  /// session's request_timeout (zero: none). Safe on any thread: it asserts nothing, so
  /// that many reads can be started at once from threads of their own.
  caf::expected<result_set> read_as_new_client(const statement& stmt,
                                               std::chrono::milliseconds deadline = 0ms);

  system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  database_actor db;
  std::unique_ptr<client> cli;
};

/// Holds the temp directory; listed first among base classes so it exists before
/// the database that lives in it, and is removed after.
struct with_temp_dir {
  temp_dir dir;
};

/// A file database in a fresh directory, ready when the constructor returns.
struct file_database : with_temp_dir, database_fixture {
  file_database() : database_fixture(file_config(dir)) { require_ready(); }
};

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it
/// held. For states with no event to wait on (pool counters that settle asynchronously).
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

/// Waits for a readiness event of `component` in `state` at `subscriber`; false after
/// `timeout`.
bool await_event(caf::scoped_actor& subscriber, const std::string& component, readiness_state state,
                 std::chrono::milliseconds timeout);

/// Renders an error for test failure messages.
std::string text(const caf::error& err);

} // namespace cafdb::test
