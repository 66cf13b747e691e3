// Conformance: pool exhaustion on every engine.
#include <thread>

#include "support/backends.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

template <class Backend>
struct small_pool : with_temp_dir, database_fixture {
  small_pool() : database_fixture(make(dir)) {
    require_ready();
    must_exec({"CREATE TABLE t (x INTEGER)"});
  }
  static config make(const temp_dir& dir) {
    auto cfg = Backend::make_config(dir);
    cfg.pool_size = 2;
    cfg.max_overflow = 0;
    cfg.pool_timeout = std::chrono::milliseconds(300);
    // These tests are about the pool: SQLite's reads in place would pass it by (they are
    // covered in integration/pool_test.cpp).
    cfg.read_in_place = false;
    return cfg;
  }
  // On SQLite read-only sessions use the reader pool (pool_size connections); the
  // single writer is covered by the SQLite pool tests.
  session open() {
    session_options options;
    options.read_only = std::string{Backend::name} == "sqlite";
    auto s = cli->open_session(options);
    REQUIRE(s);
    return std::move(*s);
  }
  const char* pool_name() const {
    return std::string{Backend::name} == "sqlite" ? Backend::ro_pool : Backend::rw_pool;
  }
};

} // namespace

TEMPLATE_TEST_CASE_METHOD(small_pool,
                          "the checkout past pool_size times out with the pool's counts", "[pool]",
                          sqlite_backend, pg_backend) {
  auto a = this->open();
  auto b = this->open();
  auto c = this->open();
  REQUIRE(!a.begin());
  REQUIRE(!b.begin());
  auto err = c.begin();
  INFO(text(err));
  REQUIRE(is(err, errc::pool_timeout));
  auto message = describe(err).message;
  CHECK(message.find("2 total, 2 in use, 0 idle, 1 waiting") != std::string::npos);
  CHECK(message.find("pool_size") != std::string::npos);
  auto stats = this->stats(this->pool_name());
  CHECK(stats.timeouts == 1);
  CHECK(stats.in_use == 2);
  // Once a lease comes back, the same request succeeds.
  REQUIRE(!a.rollback());
  REQUIRE(!c.begin());
  REQUIRE(!c.rollback());
  REQUIRE(!b.rollback());
  stats = this->stats(this->pool_name());
  CHECK(stats.in_use == 0);
  CHECK(stats.idle == 2);
}

TEMPLATE_TEST_CASE_METHOD(small_pool,
                          "a read that finds every connection leased times out with the pool's "
                          "counts, then is served",
                          "[pool][read]", sqlite_backend, pg_backend) {
  auto a = this->open();
  auto b = this->open();
  REQUIRE(!a.begin());
  REQUIRE(!b.begin());
  session_options ro;
  ro.read_only = true;
  auto reader = this->cli->open_session(ro);
  REQUIRE(reader);
  auto read = reader->exec({"SELECT 1"});
  REQUIRE(!read);
  INFO(text(read.error()));
  REQUIRE(is(read.error(), errc::pool_timeout));
  CHECK(describe(read.error()).message.find("2 in use, 0 idle, 1 waiting") != std::string::npos);
  auto stats = this->stats(this->pool_name());
  CHECK(stats.timeouts == 1);
  CHECK(stats.waiting == 0);
  REQUIRE(!a.rollback());
  auto again = reader->exec({"SELECT 1"});
  REQUIRE(again);
  CHECK(again->rows.at(0).at(0).as_int() == 1);
  REQUIRE(!b.rollback());
}

namespace {

// One connection serves read-write sessions, so a request that reaches it after a
// cancelled one proves the cancelled statement was drained first.
template <class Backend>
struct single_connection : with_temp_dir, database_fixture {
  single_connection() : database_fixture(make(dir)) {
    require_ready();
    must_exec({"CREATE TABLE t (x INTEGER)"});
  }
  static config make(const temp_dir& dir) {
    auto cfg = Backend::make_config(dir);
    cfg.pool_size = 1;
    cfg.max_overflow = 0;
    cfg.read_in_place = false; // about the pool, as small_pool
    return cfg;
  }
  session open_with_deadline(bool read_only = false,
                             std::chrono::milliseconds deadline = std::chrono::milliseconds(300)) {
    session_options options;
    options.read_only = read_only;
    options.request_timeout = deadline;
    auto s = cli->open_session(options);
    REQUIRE(s);
    return std::move(*s);
  }
  // Keeps the pool's only connection busy with an endless read (in a client of its own)
  // until `deadline` cancels it; the returned thread stores the read's answer.
  std::thread block_with_endless_read(const char* pool, std::chrono::milliseconds deadline,
                                      caf::expected<result_set>& answer) {
    std::thread blocker([this, deadline, &answer] {
      answer = read_as_new_client({Backend::endless_sql}, deadline);
    });
    CHECK(eventually([&] { return stats(pool).in_use == 1; }));
    return blocker;
  }
  // After `cancelled` statements were cancelled, the pool serves `s` again, on the same
  // connections: none was discarded, none is left in use.
  void require_served_again(session& s, const char* pool, int64_t cancelled) {
    auto again = s.exec({"SELECT 1"});
    INFO((again ? std::string{"ok"} : text(again.error())));
    REQUIRE(again);
    CHECK(again->rows.at(0).at(0).as_int() == 1);
    auto after = stats(pool);
    CHECK(after.cancelled == cancelled);
    CHECK(after.discarded == 0);
    CHECK(after.in_use == 0);
  }
  void require_cancelled(const caf::expected<result_set>& result) {
    REQUIRE(!result);
    INFO(text(result.error()));
    REQUIRE(is(result.error(), errc::statement_timeout));
    // "cancelled on the server" where a session waited for the server to confirm it;
    // "cafdb is cancelling it on the server" for reads, which changed nothing.
    auto message = describe(result.error()).message;
    CHECK((message.find("cancelled on the server") != std::string::npos ||
           message.find("cancelling it on the server") != std::string::npos));
  }
};

} // namespace

TEMPLATE_TEST_CASE_METHOD(single_connection,
                          "a request past its deadline is cancelled and its connection reused",
                          "[pool][cancel]", sqlite_backend, pg_backend) {
  auto s = this->open_with_deadline();
  auto opened_before = this->stats(TestType::rw_pool).opened;
  this->require_cancelled(s.exec({TestType::endless_sql}));
  // The pool's only connection serves this once the cancelled statement has drained.
  this->require_served_again(s, TestType::rw_pool, 1);
  CHECK(this->stats(TestType::rw_pool).opened == opened_before);
}

TEMPLATE_TEST_CASE_METHOD(single_connection,
                          "a transaction whose request passed its deadline is rolled back",
                          "[pool][cancel]", sqlite_backend, pg_backend) {
  auto s = this->open_with_deadline();
  REQUIRE(!s.begin());
  REQUIRE(s.exec({"INSERT INTO t VALUES (1)"}));
  this->require_cancelled(s.exec({TestType::endless_sql}));
  // The transaction is gone; the session says so until the client acknowledges it.
  auto info = s.info();
  REQUIRE(info);
  CHECK(info->phase == session_phase::failed);
  CHECK(is(s.exec({"SELECT 1"}).error(), errc::transaction_failed));
  REQUIRE(!s.rollback());
  CHECK(this->count("t") == 0);
  REQUIRE(!s.begin());
  REQUIRE(s.exec({"INSERT INTO t VALUES (2)"}));
  REQUIRE(!s.commit());
  CHECK(this->count("t") == 1);
  CHECK(this->stats(TestType::rw_pool).discarded == 0);
}

TEMPLATE_TEST_CASE_METHOD(single_connection,
                          "a read-only session's read past its deadline is cancelled and its "
                          "connection reused",
                          "[pool][cancel][read]", sqlite_backend, pg_backend) {
  // Read-only sessions' autocommit statements are reads the engine runs without a lease.
  auto s = this->open_with_deadline(true);
  const char* pool =
      std::string{TestType::name} == "sqlite" ? TestType::ro_pool : TestType::rw_pool;
  REQUIRE(s.exec({"SELECT 1"})); // SQLite opens its reader connections on first use
  auto opened_before = this->stats(pool).opened;
  this->require_cancelled(s.exec({TestType::endless_sql}));
  this->require_served_again(s, pool, 1);
  CHECK(this->stats(pool).opened == opened_before);
}

TEMPLATE_TEST_CASE_METHOD(single_connection,
                          "reads that wait together go to the connection as one batch, each "
                          "with its own outcome",
                          "[pool][read]", sqlite_backend, pg_backend) {
  this->must_exec({"INSERT INTO t VALUES (1), (2), (3), (4), (5), (6)"});
  bool sqlite = std::string{TestType::name} == "sqlite";
  const char* pool = sqlite ? TestType::ro_pool : TestType::rw_pool;
  // Fails while it runs (not when prepared), so on PostgreSQL it aborts the reads sent
  // after it in the same pipeline, which must then still get their own answers.
  statement failing = sqlite ? statement{"SELECT abs(-9223372036854775807 - $1)", {1}}
                             : statement{"SELECT 1 / (x - 3) FROM t WHERE x = $1", {3}};

  // The only reader connection is busy until this read's deadline cancels it...
  // (Catch2 assertions stay on this thread: the others only store their answers.)
  caf::expected<result_set> blocked_answer{caf::error{}};
  auto blocked =
      this->block_with_endless_read(pool, std::chrono::milliseconds(1500), blocked_answer);

  // ...so these six wait for it together, then go out in one batch.
  constexpr int readers = 6;
  std::vector<caf::expected<result_set>> answers(readers, caf::error{});
  std::vector<std::thread> threads;
  for (int i = 0; i < readers; ++i)
    threads.emplace_back([&, i] {
      answers[i] = this->read_as_new_client(
          i == 2 ? failing : statement{"SELECT x FROM t WHERE x = $1", {i + 1}});
    });
  bool all_waiting = eventually([&] { return this->stats(pool).waiting == readers; });
  for (auto& t : threads)
    t.join();
  blocked.join();
  CHECK(all_waiting);
  this->require_cancelled(blocked_answer);

  for (int i = 0; i < readers; ++i) {
    INFO("read " << i << ": " << (answers[i] ? std::string{"ok"} : text(answers[i].error())));
    if (i == 2) {
      REQUIRE(!answers[i]);
      auto code = describe(answers[i].error()).code;
      CHECK(code != errc::connection_lost);
      CHECK(code != errc::none);
      continue;
    }
    REQUIRE(answers[i]);
    REQUIRE(answers[i]->rows.size() == 1);
    CHECK(answers[i]->rows.at(0).at(0).as_int() == i + 1);
  }
  auto stats = this->stats(pool);
  CHECK(stats.discarded == 0);
  CHECK(stats.in_use == 0);
  CHECK(stats.waiting == 0);

  // The batch ended with its answers (SQLite ran it in one read transaction): a later
  // read sees a later write, not the batch's snapshot.
  this->must_exec({"INSERT INTO t VALUES (7)"});
  auto reader = this->open_with_deadline(true, std::chrono::seconds(30));
  auto seen = reader.exec({"SELECT count(*) FROM t"});
  REQUIRE(seen);
  CHECK(seen->rows.at(0).at(0).as_int() == 7);
}

TEMPLATE_TEST_CASE_METHOD(single_connection,
                          "a batch of reads past its deadline is cancelled whole and its "
                          "connection reused",
                          "[pool][cancel][read]", sqlite_backend, pg_backend) {
  bool sqlite = std::string{TestType::name} == "sqlite";
  const char* pool = sqlite ? TestType::ro_pool : TestType::rw_pool;
  constexpr auto deadline = std::chrono::milliseconds(1000);
  // The only reader connection is busy until this read's deadline cancels it...
  // (Catch2 assertions stay on this thread: the others only store their answers.)
  caf::expected<result_set> blocked_answer{caf::error{}};
  auto blocked = this->block_with_endless_read(pool, deadline, blocked_answer);

  // ...so these two endless reads wait for it and then go out as one batch. Cancelling
  // the first must not leave the connection running the second.
  constexpr int queued = 2;
  std::vector<caf::expected<result_set>> answers(queued, caf::error{});
  std::vector<std::thread> threads;
  for (int i = 0; i < queued; ++i)
    threads.emplace_back(
        [&, i] { answers[i] = this->read_as_new_client({TestType::endless_sql}, deadline); });
  bool all_waiting = eventually([&] { return this->stats(pool).waiting == queued; });
  for (auto& t : threads)
    t.join();
  blocked.join();
  CHECK(all_waiting);
  this->require_cancelled(blocked_answer);
  for (auto& answer : answers) {
    REQUIRE(!answer);
    INFO(text(answer.error()));
    CHECK(is(answer.error(), errc::statement_timeout));
  }

  auto reader = this->open_with_deadline(true, std::chrono::seconds(30));
  this->require_served_again(reader, pool, queued);
}
