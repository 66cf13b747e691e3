// SQLite-specific pool behaviour: writer serialization, overflow, in-memory sharing
// (the conformance suite covers exhaustion on every engine).
#include <algorithm>
#include <thread>
#include <vector>

#include <caf/defaults.hpp>

#include "support/backends.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

struct small_pool : with_temp_dir, database_fixture {
  small_pool() : database_fixture(make(dir)) {
    require_ready();
    must_exec({"CREATE TABLE t (x INTEGER)"});
  }
  static config make(const temp_dir& dir) {
    auto cfg = file_config(dir);
    cfg.pool_size = 2;
    cfg.max_overflow = 0;
    cfg.pool_timeout = std::chrono::milliseconds(300);
    return cfg;
  }
  session open(bool read_only) {
    session_options options;
    options.read_only = read_only;
    auto s = cli->open_session(options);
    REQUIRE(s);
    return std::move(*s);
  }
};

} // namespace

TEST_CASE_METHOD(small_pool, "SQLite: write transactions queue for the single writer", "[pool]") {
  auto a = open(false);
  auto b = open(false);
  REQUIRE(!a.begin());
  REQUIRE(!a.exec({"INSERT INTO t VALUES (1)"}).error());
  // b waits for the writer; a's transaction holds it past b's pool_timeout.
  auto err = b.begin();
  REQUIRE(is(err, errc::pool_timeout));
  CHECK(describe(err).message.find("writer pool") != std::string::npos);
  REQUIRE(!a.commit());
  REQUIRE(!b.begin());
  REQUIRE(!b.exec({"INSERT INTO t VALUES (2)"}).error());
  REQUIRE(!b.commit());
  CHECK(count("t") == 2);
}

TEST_CASE("SQLite: overflow reader connections open under load and close when given back",
          "[pool]") {
  temp_dir dir;
  auto cfg = file_config(dir);
  cfg.pool_size = 1;
  cfg.max_overflow = 2;
  database_fixture fx{cfg};
  fx.require_ready();
  session_options ro;
  ro.read_only = true;
  std::vector<session> held;
  for (int i = 0; i < 3; ++i) {
    auto s = fx.cli->open_session(ro);
    REQUIRE(s);
    REQUIRE(!s->begin());
    held.push_back(std::move(*s));
  }
  auto reader = fx.stats("reader");
  CHECK(reader.total == 3);
  CHECK(reader.in_use == 3);
  for (auto& s : held)
    REQUIRE(!s.rollback());
  reader = fx.stats("reader");
  CHECK(reader.total == 1);
  CHECK(reader.idle == 1);
  CHECK(reader.opened == 3);
}

TEST_CASE("SQLite: an in-memory database shares one connection across sessions", "[pool]") {
  auto cfg = must_config("sqlite::memory:");
  cfg.log_level = "off";
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE m (x)"});
  fx.must_exec({"INSERT INTO m VALUES (42)"});
  CHECK(fx.count("m") == 1);
  auto shared = fx.stats("shared");
  CHECK(shared.total == 1);
  CHECK(shared.max == 1);
}

TEST_CASE("SQLite: read-only sessions read in place and see the latest commit", "[pool][read]") {
  for (bool in_place : {true, false}) {
    DYNAMIC_SECTION("read_in_place = " << in_place) {
      temp_dir dir;
      auto cfg = file_config(dir);
      cfg.read_in_place = in_place;
      database_fixture fx{cfg};
      fx.require_ready();
      fx.must_exec({"CREATE TABLE t (x INTEGER)"});
      session_options ro;
      ro.read_only = true;
      auto reader = fx.cli->open_session(ro);
      REQUIRE(reader);
      for (int i = 1; i <= 3; ++i) {
        fx.must_exec({"INSERT INTO t VALUES ($1)", {i}});
        auto n = reader->exec({"SELECT count(*) FROM t"});
        INFO((n ? std::string{"ok"} : text(n.error())));
        REQUIRE(n);
        CHECK(n->rows.at(0).at(0).as_int() == i); // each read is a fresh snapshot
      }
      auto write = reader->exec({"INSERT INTO t VALUES (9)"});
      REQUIRE(!write);
      CHECK(is(write.error(), errc::read_only_violation));
      // In place, none of it went through the reader pool; status counts it.
      CHECK(fx.stats("reader").checkouts == (in_place ? 0 : 4));
      auto status = fx.cli->status();
      REQUIRE(status);
      CHECK(status->reads_in_place == (in_place ? 4 : 0));
      CHECK(status->read_handles == (in_place ? 1 : 0)); // one at a time: one handle
    }
  }
}

TEST_CASE("SQLite: a read in place past its deadline stops, and its handle serves again",
          "[pool][read]") {
  file_database fx;
  auto slow = fx.read_as_new_client({sqlite_backend::endless_sql}, std::chrono::milliseconds(300));
  REQUIRE(!slow);
  INFO(text(slow.error()));
  CHECK(is(slow.error(), errc::statement_timeout));
  auto quick = fx.read_as_new_client({"SELECT 42"}, std::chrono::seconds(5));
  REQUIRE(quick);
  CHECK(quick->rows.at(0).at(0) == value{42});
  CHECK(fx.stats("reader").checkouts == 0); // both ran in place
}

TEST_CASE("SQLite: long reads on every handle and reader connection leave the runtime serving",
          "[pool][read]") {
  // Reads in place, and readers on the scheduler, block scheduler threads, but never all
  // of them: with every reader handle and connection stuck in a long read, the engine,
  // the writer and the sessions still run, and every read stops at its deadline.
  for (bool in_place : {true, false}) {
    DYNAMIC_SECTION("read_in_place = " << in_place) {
      temp_dir dir;
      auto cfg = file_config(dir);
      cfg.read_in_place = in_place;
      // More readers than in-place handles (all scheduler threads but one), whatever
      // the machine's thread count, so that some reads go to the reader pool.
      const int workers = static_cast<int>(test_worker_count());
      const int readers = std::max(8, workers + 1);
      cfg.pool_size = readers;
      cfg.max_overflow = 0;
      // Open and idle before the reads come, so that each read the pool takes gets a
      // connection of its own (reads that find none wait and go out together).
      cfg.min_idle = readers;
      database_fixture fx{cfg};
      fx.require_ready();
      fx.must_exec({"CREATE TABLE t (x INTEGER)"});
      REQUIRE(eventually([&] { return fx.stats("reader").idle == readers; }));
      // In place, the first reads take the handles (all scheduler threads but one); the
      // rest go to the reader pool.
      int handles = in_place ? static_cast<int>(fx.sys.scheduler().num_workers()) - 1 : 0;
      REQUIRE(handles < readers);
      int pooled = readers - handles;

      // Catch2 assertions stay on this thread: the others only store their answers.
      std::vector<caf::expected<result_set>> answers(readers, caf::error{});
      std::vector<std::thread> threads;
      for (int i = 0; i < readers; ++i)
        threads.emplace_back([&, i] {
          answers[i] =
              fx.read_as_new_client({sqlite_backend::endless_sql}, std::chrono::seconds(3));
        });
      bool all_running = eventually([&] { return fx.stats("reader").in_use == pooled; });

      // Served while every reader is busy: a write, a count on the writer, the stats.
      // (No REQUIRE before the joins: a failed one would leave the threads running.)
      auto inserted = fx.cli->exec({"INSERT INTO t VALUES (1)"});
      auto writer = fx.cli->open_session(session_options{});
      auto counted = writer ? writer->exec({"SELECT count(*) FROM t"})
                            : caf::expected<result_set>{writer.error()};
      for (auto& t : threads)
        t.join();

      CHECK(all_running);
      CHECK(inserted);
      REQUIRE(counted);
      CHECK(counted->rows.at(0).at(0).as_int() == 1);
      for (auto& answer : answers) {
        REQUIRE(!answer);
        INFO(text(answer.error()));
        CHECK(is(answer.error(), errc::statement_timeout));
      }
      auto reader = fx.stats("reader");
      CHECK(reader.cancelled == pooled);
      CHECK(reader.discarded == 0);
      CHECK(reader.in_use == 0);
    }
  }
}
