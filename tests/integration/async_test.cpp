// The facades shared by threads, against a real SQLite database: one async_client for
// many threads, answers by future and by callback on cafdb threads, typed errors, async
// sessions that roll back when dropped, no actor left behind; one blocking client for
// many threads.
#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "cafdb/async.hpp"
#include "support/backends.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

struct async_database : file_database {
  async_database() {
    must_exec({"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE)"});
  }
  async_client adb{sys, db, std::chrono::seconds(60)};
};

// Waits for a future with a bound, failing the test instead of hanging it.
template <class T>
T must_wait(std::future<T> f, std::chrono::seconds bound = std::chrono::seconds(30)) {
  REQUIRE(f.wait_for(bound) == std::future_status::ready);
  return f.get();
}

} // namespace

TEST_CASE_METHOD(async_database,
                 "an async_client shared by many threads answers every request, by future "
                 "and by callback",
                 "[async]") {
  constexpr int threads = 8;
  // All in flight at once, within max_pending (1000): past it the answer is
  // pool_overloaded, which is right but not what this test is about.
  constexpr int per_thread = 100;
  session_options ro;
  ro.read_only = true;
  std::atomic<int> wrong{0};
  std::mutex first_mtx;
  std::string first_wrong;
  auto note_wrong = [&](const caf::expected<result_set>& r) {
    ++wrong;
    std::lock_guard<std::mutex> guard{first_mtx};
    if (first_wrong.empty())
      first_wrong = r ? "a wrong number" : render(r.error());
  };
  std::atomic<int> callbacks_left{threads * per_thread / 2};
  std::promise<void> all_called;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<std::pair<int64_t, std::future<caf::expected<result_set>>>> futures;
      for (int i = 0; i < per_thread; ++i) {
        int64_t n = t * 100000 + i;
        if (i % 2 == 0) {
          futures.emplace_back(n, adb.exec({"SELECT $1 AS n", {n}}, ro).future());
        } else {
          adb.exec({"SELECT $1 AS n", {n}}, ro).then([&, n](caf::expected<result_set> r) {
            if (!r || *r->get<int64_t>(0, "n") != n)
              note_wrong(r);
            if (--callbacks_left == 0)
              all_called.set_value();
          });
        }
      }
      for (auto& [n, f] : futures) {
        auto r = f.get();
        if (!r || *r->get<int64_t>(0, "n") != n)
          note_wrong(r);
      }
    });
  for (auto& t : pool)
    t.join();
  REQUIRE(all_called.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  INFO(first_wrong);
  CHECK(wrong == 0);
}

TEST_CASE_METHOD(async_database, "callbacks run on a cafdb thread, never the caller's", "[async]") {
  std::promise<std::thread::id> ran_on;
  adb.exec({"SELECT 1"}).then([&](caf::expected<result_set>) {
    ran_on.set_value(std::this_thread::get_id());
  });
  CHECK(must_wait(ran_on.get_future()) != std::this_thread::get_id());
}

TEST_CASE_METHOD(async_database,
                 "async answers carry typed errors: bad SQL, the client's timeout, a stopped "
                 "database",
                 "[async]") {
  auto bad = adb.exec({"SELEC 1"}).get();
  REQUIRE_FALSE(bad);
  CHECK(is(bad.error(), errc::syntax_error));

  async_client impatient{sys, db, std::chrono::milliseconds(200)};
  session_options patient;
  // The server cancels it after a second, so the writer is free again soon after.
  patient.request_timeout = std::chrono::seconds(1);
  auto late = must_wait(impatient.exec({sqlite_backend::endless_sql}, patient).future());
  REQUIRE_FALSE(late);
  INFO(render(late.error()));
  CHECK(is(late.error(), errc::request_timeout));

  // JSON operations work the same way.
  auto created = adb.create_one("notes", {{"body", "hello"}}).get();
  REQUIRE(created);
  CHECK((*created)["body"] == "hello");
  auto read = adb.read_query({"SELECT body FROM notes"}).get();
  REQUIRE(read);
  CHECK(read->size() == 1);

  CHECK_FALSE(adb.stop().get());
  auto after = adb.exec({"SELECT 1"}).get();
  REQUIRE_FALSE(after);
  INFO(render(after.error()));
  CHECK((is(after.error(), errc::shutting_down)));
}

TEST_CASE_METHOD(async_database,
                 "an async session commits a transaction, and rolls back when it is dropped",
                 "[async]") {
  {
    auto s = must_wait(adb.open_session().future());
    REQUIRE(s);
    CHECK_FALSE(s->begin().get());
    REQUIRE(s->exec({"INSERT INTO notes (body) VALUES ($1)", {"kept"}}).get());
    CHECK_FALSE(s->commit().get());
    CHECK_FALSE(s->close().get());
    auto closed = s->exec({"SELECT 1"}).get();
    REQUIRE_FALSE(closed);
    CHECK(is(closed.error(), errc::session_closed));
  }
  {
    auto s = must_wait(adb.open_session().future());
    REQUIRE(s);
    CHECK_FALSE(s->begin().get());
    REQUIRE(s->exec({"INSERT INTO notes (body) VALUES ($1)", {"dropped"}}).get());
    // Dropped with its transaction open (and SQLite's write lock held).
  }
  // The rollback gave the write lock back: the same row can be written at once.
  auto again = adb.exec({"INSERT INTO notes (body) VALUES ($1)", {"dropped"}}).get();
  INFO((again ? std::string{"ok"} : render(again.error())));
  REQUIRE(again);
  CHECK(count("notes") == 2);
}

TEST_CASE_METHOD(async_database,
                 "a dropped async_result sends nothing, and finished requests leave no actor "
                 "behind",
                 "[async]") {
  auto baseline = sys.registry().running();
  static_cast<void>(adb.exec({"INSERT INTO notes (body) VALUES ('never')"}));
  std::vector<std::future<caf::expected<result_set>>> answers;
  for (int i = 0; i < 500; ++i)
    answers.push_back(adb.exec({"SELECT $1", {i}}).future());
  for (auto& f : answers)
    REQUIRE(must_wait(std::move(f)));
  CHECK(eventually([&] { return sys.registry().running() <= baseline; }));
  CHECK(count("notes") == 0);
}

TEST_CASE_METHOD(async_database, "one blocking client serves many threads at once", "[async]") {
  std::atomic<int> wrong{0};
  std::vector<std::thread> pool;
  session_options ro;
  ro.read_only = true;
  for (int t = 0; t < 8; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        int64_t n = t * 1000 + i;
        auto r = cli->exec({"SELECT $1 AS n", {n}}, ro);
        if (!r || *r->get<int64_t>(0, "n") != n)
          ++wrong;
      }
    });
  for (auto& t : pool)
    t.join();
  CHECK(wrong == 0);
}
