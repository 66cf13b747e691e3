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
  // The pools' connections are long-lived actors, and the reads below may open more:
  // they are not counted.
  auto others = [&] {
    auto report = cli->status();
    REQUIRE(report);
    int64_t connections = 0;
    for (auto& pool : report->pools)
      connections += pool.total;
    return static_cast<int64_t>(sys.registry().running()) - connections;
  };
  auto baseline = others();
  static_cast<void>(adb.exec({"INSERT INTO notes (body) VALUES ('never')"}));
  std::vector<std::future<caf::expected<result_set>>> answers;
  for (int i = 0; i < 500; ++i)
    answers.push_back(adb.exec({"SELECT $1", {i}}).future());
  for (auto& f : answers)
    REQUIRE(must_wait(std::move(f)));
  CHECK(eventually([&] { return others() <= baseline; }));
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

TEST_CASE_METHOD(async_database,
                 "async in_transaction commits on success, rolls back on an error or a throw",
                 "[async]") {
  auto insert = [](const char* body) {
    return [body](async_session& s) {
      return async_result<caf::error>{[&s, body](async_result<caf::error>::callback done) {
        s.exec({"INSERT INTO notes (body) VALUES ($1)", {body}})
            .then([done](caf::expected<result_set> r) {
              done(r ? caf::error{} : std::move(r.error()));
            });
      }};
    };
  };
  auto committed = must_wait(adb.in_transaction(insert("committed")).future());
  INFO(render(committed));
  CHECK_FALSE(committed);
  CHECK(count("notes") == 1);
  // The second insert breaks UNIQUE: the error is the answer, and nothing stays.
  auto twice = [&](async_session& s) {
    return async_result<caf::error>{[&s](async_result<caf::error>::callback done) {
      s.exec({"INSERT INTO notes (body) VALUES ('a')"}).then([&s, done](caf::expected<result_set>) {
        s.exec({"INSERT INTO notes (body) VALUES ('a')"}).then([done](caf::expected<result_set> r) {
          done(r ? caf::error{} : std::move(r.error()));
        });
      });
    }};
  };
  auto failed = must_wait(adb.in_transaction(twice).future());
  CHECK(is(failed, errc::constraint_violation));
  CHECK(count("notes") == 1);
  auto thrown = must_wait(adb.in_transaction([](async_session& s) -> async_result<caf::error> {
                               static_cast<void>(s.exec({"INSERT INTO notes (body) VALUES ('t')"}));
                               throw std::runtime_error("boom");
                             })
                              .future());
  INFO(render(thrown));
  CHECK(is(thrown, errc::transaction_failed));
  CHECK(describe(thrown).message.find("boom") != std::string::npos);
  CHECK(count("notes") == 1);
  // Options the engine cannot honour: refused before fn runs.
  tx_options deferrable;
  deferrable.deferrable = true;
  bool ran = false;
  auto refused = must_wait(adb.in_transaction(
                                  [&ran](async_session&) {
                                    ran = true;
                                    return async_result<caf::error>{
                                        [](async_result<caf::error>::callback done) { done({}); }};
                                  },
                                  session_options{}, deferrable)
                               .future());
  CHECK(is(refused, errc::invalid_argument));
  CHECK_FALSE(ran);
}

TEST_CASE_METHOD(async_database,
                 "an async session runs one thread's calls in the order they were made, even "
                 "when none waits for the one before",
                 "[async]") {
  auto s = must_wait(adb.open_session().future());
  REQUIRE(s);
  // begin, 300 inserts and commit all sent at once, then every answer awaited.
  auto began = s->begin().future();
  std::vector<std::future<caf::expected<result_set>>> inserts;
  for (int i = 0; i < 300; ++i)
    inserts.push_back(
        s->exec({"INSERT INTO notes (body) VALUES ($1)", {"n" + std::to_string(i)}}).future());
  auto committed = s->commit().future();
  CHECK_FALSE(must_wait(std::move(began)));
  for (auto& f : inserts)
    CHECK(must_wait(std::move(f)));
  auto commit_answer = must_wait(std::move(committed));
  INFO(render(commit_answer));
  CHECK_FALSE(commit_answer);
  // In call order: the ids rise with the numbers in the bodies.
  auto rows = must_exec({"SELECT body FROM notes ORDER BY id"});
  REQUIRE(rows.size() == 300);
  bool ordered = true;
  for (size_t i = 0; i < rows.size(); ++i)
    ordered = ordered && *rows.get<std::string>(i, "body") == "n" + std::to_string(i);
  CHECK(ordered);
  // Dropping the session with requests in flight: each still answers.
  auto last = s->exec({"SELECT count(*) FROM notes"}).future();
  { auto gone = std::move(*s); }
  CHECK(must_wait(std::move(last)));
  // Calls on the moved-from object answer session_closed at once.
  CHECK(is(must_wait(s->commit().future()), errc::session_closed));
}

TEST_CASE_METHOD(async_database,
                 "a blocking call inside an async callback is refused at once instead of "
                 "stopping the database",
                 "[async]") {
  // As many callbacks as scheduler threads, each trying to wait: without the check
  // they would all wait for answers that need one of those threads.
  auto workers = static_cast<int>(test_worker_count()) + 2;
  std::atomic<int> refused{0};
  std::atomic<int> left{workers};
  std::promise<void> all;
  for (int i = 0; i < workers; ++i)
    adb.exec({"SELECT 1"}).then([&](caf::expected<result_set>) {
      auto nested = adb.exec({"SELECT 2"}).get();
      auto blocking = cli->exec({"SELECT 3"});
      if (!nested && is(nested.error(), errc::invalid_argument) && !blocking &&
          is(blocking.error(), errc::invalid_argument))
        ++refused;
      if (--left == 0)
        all.set_value();
    });
  REQUIRE(all.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(refused == workers);
  // The database still answers.
  CHECK(must_wait(adb.exec({"SELECT 4"}).future()));
}
