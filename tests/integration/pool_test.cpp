// SQLite-specific pool behaviour: writer serialization, overflow, in-memory sharing
// (the conformance suite covers exhaustion on every engine).
#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include <caf/defaults.hpp>

#include "support/backends.hpp"
#include "support/joined_threads.hpp"

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
      // Setting up may use the reader pool: only the reads below are counted.
      auto setup = fx.stats("reader");
      auto status = fx.cli->status();
      REQUIRE(status);
      auto reads_before = status->reads_in_place;
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
      // In place, no read went through the engine.
      auto reader_pool = fx.stats("reader");
      CHECK(reader_pool.checkouts - setup.checkouts == (in_place ? 0 : 3));
      // In place the pool opens pool_size connections at start, all for the shelf (the
      // reads above may come before the last of them is open); one at a time through
      // the engine needs one connection.
      CHECK(eventually([&] {
        reader_pool = fx.stats("reader");
        return reader_pool.total == (in_place ? cfg.pool_size : 1) &&
               reader_pool.in_place == (in_place ? cfg.pool_size : 0);
      }));
      CHECK(reader_pool.total == (in_place ? cfg.pool_size : 1));
      status = fx.cli->status();
      REQUIRE(status);
      CHECK(status->reads_in_place - reads_before == (in_place ? 3 : 0));
      auto write = reader->exec({"INSERT INTO t VALUES (9)"});
      REQUIRE(!write);
      CHECK(is(write.error(), errc::read_only_violation));
      CHECK(fx.count("t") == 3);
    }
  }
}

TEST_CASE("SQLite: a read-write call's autocommit read runs in place; anything that may write "
          "goes to the writer and is kept",
          "[pool][read]") {
  temp_dir dir;
  database_fixture fx{file_config(dir)};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  auto in_place = [&] { return fx.cli->status()->reads_in_place; };
  auto writer_checkouts = [&] { return fx.stats("writer").checkouts; };
  auto one_shot_count = [&] {
    auto n = fx.cli->exec({"SELECT count(*) FROM t"}); // read-write options
    INFO((n ? std::string{"ok"} : text(n.error())));
    REQUIRE(n);
    return n->rows.at(0).at(0).as_int();
  };
  CHECK(one_shot_count() == 0); // the reader pool's first read opens it and shelves it
  auto reads_before = in_place();
  auto checkouts_before = writer_checkouts();
  CHECK(one_shot_count() == 0);
  CHECK(in_place() == reads_before + 1);
  CHECK(writer_checkouts() == checkouts_before); // the writer never saw the read

  // Each of these may write: none runs in place, each is kept, and the read after it
  // (in place) sees it.
  const std::vector<std::string> writes = {
      "INSERT INTO t VALUES (1)", "WITH v(x) AS (SELECT 2) INSERT INTO t SELECT x FROM v",
      "INSERT INTO t VALUES (3) RETURNING x",
      "SELECT 1; INSERT INTO t VALUES (4)", // a read first, then a write
  };
  int64_t expected = 0;
  for (auto& sql : writes) {
    INFO(sql);
    reads_before = in_place();
    checkouts_before = writer_checkouts();
    auto done = fx.cli->exec({sql});
    INFO((done ? std::string{"ok"} : text(done.error())));
    REQUIRE(done);
    CHECK(in_place() == reads_before);
    CHECK(writer_checkouts() > checkouts_before);
    expected += 1;
    CHECK(one_shot_count() == expected);
  }

  // A pragma that writes the file's header, then read back in place.
  REQUIRE(fx.cli->exec({"PRAGMA user_version = 7"}));
  auto version = fx.cli->exec({"PRAGMA user_version"});
  REQUIRE(version);
  CHECK(version->rows.at(0).at(0).as_int() == 7);

  // A schema change under the reader's cached statement: the next read sees the new
  // column, not the old shape.
  auto before = fx.cli->exec({"SELECT * FROM t"});
  REQUIRE(before);
  CHECK(before->columns.size() == 1);
  REQUIRE(fx.cli->exec({"ALTER TABLE t ADD COLUMN y TEXT DEFAULT 'new'"}));
  reads_before = in_place();
  auto after = fx.cli->exec({"SELECT * FROM t"});
  REQUIRE(after);
  CHECK(in_place() == reads_before + 1);
  REQUIRE(after->columns.size() == 2);
  CHECK(after->rows.at(0).at(1) == value{std::string{"new"}});

  // An actor's one-shot exec takes the same path, on one of the database's one-shot readers.
  {
    caf::scoped_actor self{fx.sys};
    reads_before = in_place();
    caf::expected<result_set> got{caf::error{}};
    self->request(fx.db, std::chrono::seconds(10), exec_atom::value,
                  statement{"SELECT count(*) FROM t"}, session_options{})
        .receive([&](result_set& rows) { got = std::move(rows); },
                 [&](caf::error& err) { got = std::move(err); });
    REQUIRE(got);
    CHECK(got->rows.at(0).at(0).as_int() == expected);
    CHECK(in_place() == reads_before + 1);
  }

  // An open read-write session reads in place between its own writes and sees them.
  auto s = fx.cli->open_session();
  REQUIRE(s);
  REQUIRE(s->exec({"INSERT INTO t (x) VALUES (5)"}));
  reads_before = in_place();
  auto n = s->exec({"SELECT count(*) FROM t"});
  REQUIRE(n);
  CHECK(n->rows.at(0).at(0).as_int() == expected + 1);
  CHECK(in_place() == reads_before + 1);
  // Inside its transaction it reads on its own connection: its uncommitted row.
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"INSERT INTO t (x) VALUES (6)"}));
  reads_before = in_place();
  n = s->exec({"SELECT count(*) FROM t"});
  REQUIRE(n);
  CHECK(n->rows.at(0).at(0).as_int() == expected + 2);
  CHECK(in_place() == reads_before);
  REQUIRE(!s->rollback());
  CHECK(one_shot_count() == expected + 1);

  // A temp table lasts for its transaction (docs/protocol.md), and reads of it stay on
  // the transaction's connection; after it, no reader ever has it.
  REQUIRE(!s->begin());
  REQUIRE(s->exec({"CREATE TEMP TABLE scratch (v INTEGER)"}));
  auto put = s->exec({"INSERT INTO scratch VALUES (41), (42)"});
  INFO((put ? std::string{"ok"} : text(put.error())));
  REQUIRE(put);
  auto scratch = s->exec({"SELECT max(v) FROM scratch"});
  REQUIRE(scratch);
  CHECK(scratch->rows.at(0).at(0).as_int() == 42);
  REQUIRE(!s->commit());
  auto gone = fx.cli->exec({"SELECT max(v) FROM scratch"});
  REQUIRE(!gone);
  CHECK(is(gone.error(), errc::syntax_error));
}

TEST_CASE("SQLite: a read-write call never waits for a reader, and a read never holds up the "
          "writer: writes and VACUUM go through while every reader is busy and a read queues",
          "[pool][read]") {
  temp_dir dir;
  auto cfg = file_config(dir);
  cfg.pool_size = 2;
  cfg.max_overflow = 0;
  cfg.pool_timeout = std::chrono::milliseconds(1000);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)"});
  // Both reader connections busy with long reads (in place, or through the engine).
  session_options report;
  report.read_only = true;
  report.request_timeout = std::chrono::seconds(4);
  std::vector<caf::expected<result_set>> long_reads(2, caf::expected<result_set>{caf::error{}});
  session_options read_write;
  read_write.request_timeout = std::chrono::seconds(4);
  caf::expected<result_set> queued{caf::error{}};
  std::vector<std::thread> readers;
  for (size_t i = 0; i < long_reads.size(); ++i)
    readers.emplace_back(
        [&, i] { long_reads[i] = fx.cli->exec({sqlite_backend::endless_sql}, report); });
  struct join_all {
    std::vector<std::thread>& threads;
    ~join_all() {
      for (auto& t : threads)
        t.join();
    }
  } joined{readers};
  REQUIRE(eventually([&] { return fx.stats("reader").in_use == 2; }));
  // A long read sent by a read-write call finds no reader free either. SQLite says it
  // only reads: it queues for a reader, and never takes the writer (found from outside:
  // there, long reads held up every write for seconds while readers came free).
  readers.emplace_back([&] { queued = fx.cli->exec({sqlite_backend::endless_sql}, read_write); });
  REQUIRE(eventually([&] { return fx.stats("reader").waiting == 1; }));
  auto started = std::chrono::steady_clock::now();
  auto inserted = fx.cli->exec({"INSERT INTO t (x) VALUES ('while busy') RETURNING id"});
  INFO((inserted ? std::string{"ok"} : text(inserted.error())));
  REQUIRE(inserted);
  CHECK(inserted->rows.at(0).at(0).as_int() == 1);
  auto vacuum = fx.cli->exec({"VACUUM"});
  INFO((vacuum ? std::string{"ok"} : text(vacuum.error())));
  REQUIRE(vacuum);
  // What asks for the connection's own state stays on the writer, and sees the row.
  auto on_writer = fx.cli->exec({"SELECT x, changes() FROM t WHERE id = 1"});
  REQUIRE(on_writer);
  CHECK(on_writer->rows.at(0).at(0) == value{std::string{"while busy"}});
  // None of them waited for pool_timeout.
  CHECK(std::chrono::steady_clock::now() - started < cfg.pool_timeout);
  // The queued read got no reader in time: pool_timeout, with the pool's figures.
  REQUIRE(eventually([&] { return fx.stats("reader").waiting == 0; }));
  CHECK(fx.stats("reader").timeouts >= 1);
  // The session answers of the connection's own state stay on the writer.
  auto s = fx.cli->open_session();
  REQUIRE(s);
  REQUIRE(s->exec({"INSERT INTO t (x) VALUES ('second')"}));
  auto own = s->exec({"SELECT last_insert_rowid(), changes()"});
  REQUIRE(own);
  CHECK(own->rows.at(0).at(0).as_int() == 2);
  CHECK(own->rows.at(0).at(1).as_int() == 1);
}

TEST_CASE("SQLite: checking whether a statement reads never runs it: a PRAGMA that acts when "
          "prepared never reaches a reader",
          "[pool][read]") {
  // Found by the suite: asking SQLite whether a statement writes means preparing it,
  // and `PRAGMA query_only = 0` acts while it is prepared. Prepared on a reader by a
  // read-write client's exec, it lifted that reader's protection.
  temp_dir dir;
  auto cfg = file_config(dir);
  database_fixture fx{cfg};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  // EXPLAIN compiles the PRAGMA too, and SQLite calls it a read (found from outside).
  for (auto* sql : {"PRAGMA query_only = 0", "PRAGMA query_only = OFF", "pragma QUERY_ONLY=false",
                    "PRAGMA foreign_keys = OFF", "EXPLAIN PRAGMA query_only = 0",
                    "explain query plan pragma query_only(0)", "EXPLAIN PRAGMA foreign_keys = OFF"})
    fx.must_exec({sql}); // on the writer, whose session is reset after
  session_options ro;
  ro.read_only = true;
  // Every reader connection, several times over: none lets a write through.
  for (int i = 0; i < 3 * cfg.pool_size; ++i) {
    auto write = fx.cli->exec({"INSERT INTO t VALUES (1)"}, ro);
    REQUIRE(!write);
    CHECK(is(write.error(), errc::read_only_violation));
    auto keys = fx.cli->exec({"SELECT 1 FROM pragma_foreign_keys WHERE foreign_keys = 1"});
    REQUIRE(keys);
    CHECK(keys->rows.size() == 1);
  }
  CHECK(fx.count("t") == 0);
}

TEST_CASE("SQLite: a read in place past its deadline stops, and its connection serves again",
          "[pool][read]") {
  file_database fx;
  // The reader pool opens its connections at start and shelves them; a read that
  // comes before they are shelved goes through the engine (a slow machine, TSan).
  REQUIRE(eventually([&] {
    auto pool = fx.stats("reader");
    return pool.total > 0 && pool.opening == 0 && pool.in_place == pool.total;
  }));
  auto checkouts_before = fx.stats("reader").checkouts;
  REQUIRE(fx.read_as_new_client({"SELECT 1"}, std::chrono::seconds(5)));
  auto slow = fx.read_as_new_client({sqlite_backend::endless_sql}, std::chrono::milliseconds(300));
  REQUIRE(!slow);
  INFO(text(slow.error()));
  CHECK(is(slow.error(), errc::statement_timeout));
  auto quick = fx.read_as_new_client({"SELECT 42"}, std::chrono::seconds(5));
  REQUIRE(quick);
  CHECK(quick->rows.at(0).at(0) == value{42});
  auto reader = fx.stats("reader");
  CHECK(reader.checkouts == checkouts_before); // all three ran in place
  CHECK(reader.discarded == 0);
  CHECK(reader.in_place == reader.total); // the timed-out one serves again
}

namespace {

config shelf_config(const temp_dir& dir, int pool_size) {
  auto cfg = file_config(dir);
  cfg.read_in_place = true;
  cfg.pool_size = pool_size;
  cfg.max_overflow = 0;
  cfg.pool_timeout = std::chrono::milliseconds(2000);
  return cfg;
}

/// A ready SQLite file database with table t, reading in place, without overflow.
struct shelf_pool : with_temp_dir, database_fixture {
  explicit shelf_pool(int pool_size) : database_fixture(shelf_config(dir, pool_size)) {
    require_ready();
    must_exec({"CREATE TABLE t (x INTEGER)"});
  }
};

int64_t reads_in_place(database_fixture& fx) {
  auto report = fx.cli->status();
  REQUIRE(report);
  return report->reads_in_place;
}

} // namespace

TEST_CASE("SQLite: reads in place use the reader pool's own connections: pool_size bounds both "
          "modes",
          "[pool][read]") {
  shelf_pool fx{2};
  fx.must_exec({"INSERT INTO t VALUES (7)"});
  // Setting up may have used the reader pool (a write first tried there, then kept by
  // the writer): only the reads below are counted.
  auto reads_before = reads_in_place(fx);
  auto checkouts_before = fx.stats("reader").checkouts;
  // Many readers at once, each its own session: some read in place, some through the
  // engine, and together they never have more than pool_size reader connections.
  constexpr int threads = 6;
  constexpr int reads_each = 40;
  std::vector<int> failures(threads, 0);
  std::vector<std::thread> running;
  for (int i = 0; i < threads; ++i)
    running.emplace_back([&, i] {
      for (int n = 0; n < reads_each; ++n) {
        auto rows = fx.read_as_new_client({"SELECT x FROM t"}, std::chrono::seconds(10));
        if (!rows || rows->rows.at(0).at(0).as_int() != 7)
          failures[i] += 1;
      }
    });
  for (auto& t : running)
    t.join();
  for (int i = 0; i < threads; ++i)
    CHECK(failures[i] == 0);
  auto reader = fx.stats("reader");
  CHECK(reader.opened <= 2);
  CHECK(reader.total <= 2);
  CHECK(reader.in_place >= 1);
  CHECK(reader.in_use == 0);
  CHECK(reader.discarded == 0);
  CHECK(reads_in_place(fx) > reads_before);
  CHECK(reads_in_place(fx) - reads_before + reader.checkouts - checkouts_before ==
        threads * reads_each);
}

TEST_CASE("SQLite: work that needs a lease takes back the connection the shelf holds when the "
          "pool is full",
          "[pool][read]") {
  shelf_pool fx{1};
  REQUIRE(fx.read_as_new_client({"SELECT 1"}, std::chrono::seconds(5)));
  auto reader = fx.stats("reader");
  REQUIRE(reader.total == 1);
  REQUIRE(reader.in_place == 1); // the pool's only connection is on the shelf
  // A read-only transaction needs a lease: without a recall it would wait for
  // pool_timeout and fail.
  session_options ro;
  ro.read_only = true;
  auto s = fx.cli->open_session(ro);
  REQUIRE(s);
  auto began = s->begin();
  INFO((began ? text(began) : std::string{"ok"}));
  REQUIRE(!began);
  auto rows = s->exec({"SELECT count(*) FROM t"});
  REQUIRE(rows);
  reader = fx.stats("reader");
  CHECK(reader.in_use == 1);
  CHECK(reader.in_place == 0);
  CHECK(reader.total == 1);
  REQUIRE(!s->commit());
  // Free again, it goes back on the shelf and serves reads in place.
  auto before = reads_in_place(fx);
  REQUIRE(fx.read_as_new_client({"SELECT 2"}, std::chrono::seconds(5)));
  CHECK(reads_in_place(fx) == before + 1);
  reader = fx.stats("reader");
  CHECK(reader.in_place == 1);
  CHECK(reader.timeouts == 0);
  // Lent to a long read in place when the lease is asked for: the connection is
  // recalled, comes back to the engine when the read ends, and serves the lease.
  // Catch2 assertions stay on this thread: the others only store their answers.
  caf::expected<result_set> long_answer{caf::error{}};
  std::thread long_read([&] {
    long_answer =
        fx.read_as_new_client({sqlite_backend::endless_sql}, std::chrono::milliseconds(800));
  });
  REQUIRE(eventually([&] { return reads_in_place(fx) == before + 2; }));
  auto waiting = fx.cli->open_session(ro);
  REQUIRE(waiting);
  auto took = waiting->begin(); // waits for the long read's end, not for pool_timeout
  long_read.join();
  CHECK(!long_answer);
  INFO((took ? text(took) : std::string{"ok"}));
  REQUIRE(!took);
  CHECK(fx.stats("reader").in_place == 0);
  REQUIRE(!waiting->rollback());
  reader = fx.stats("reader");
  CHECK(reader.in_place == 1);
  CHECK(reader.timeouts == 0);
  CHECK(reader.discarded == 0);
}

TEST_CASE("SQLite: a read that changes its session takes a connection of its own, never the "
          "shelf's",
          "[pool][read]") {
  shelf_pool fx{2};
  REQUIRE(fx.read_as_new_client({"SELECT 1"}, std::chrono::seconds(5)));
  // Both connections opened at start (no idle_timeout) and go on the shelf (the first
  // read may have come before them).
  REQUIRE(eventually([&] { return fx.stats("reader").in_place == 2; }));
  auto before = reads_in_place(fx);
  auto changed = fx.read_as_new_client({"PRAGMA cache_size = 123"}, std::chrono::seconds(5));
  INFO((changed ? std::string{"ok"} : text(changed.error())));
  REQUIRE(changed);
  CHECK(reads_in_place(fx) == before); // leased, and reset before anyone else used it
  // The next readers never see the changed setting, in place or not.
  for (int i = 0; i < 4; ++i) {
    auto size = fx.read_as_new_client({"PRAGMA cache_size"}, std::chrono::seconds(5));
    REQUIRE(size);
    CHECK(size->rows.at(0).at(0).as_int() != 123);
  }
  CHECK(reads_in_place(fx) == before + 4);
  auto reader = fx.stats("reader");
  CHECK(reader.total <= 2);
  CHECK(reader.in_place == 2);
  CHECK(reader.discarded == 0);
}

TEST_CASE("SQLite: a PRAGMA name in quotes neither lifts read-only protection nor reaches the "
          "next session",
          "[pool][read]") {
  // Found from outside: SQLite takes a '...' literal as a PRAGMA's name, and such a
  // statement passed both the read-only check and the session-change check.
  shelf_pool fx{1};
  REQUIRE(fx.read_as_new_client({"SELECT 1"}, std::chrono::seconds(5)));
  session_options ro;
  ro.read_only = true;
  auto s1 = fx.cli->open_session(ro);
  auto s2 = fx.cli->open_session(ro);
  REQUIRE(s1);
  REQUIRE(s2);
  auto cache_size = [&](session& s) {
    auto r = s.exec({"PRAGMA cache_size"});
    REQUIRE(r);
    return r->rows.at(0).at(0).as_int();
  };
  auto standard = cache_size(*s2);
  REQUIRE(standard != 7);
  REQUIRE(s1->exec({"PRAGMA 'cache_size' = 7"}));
  CHECK(cache_size(*s2) == standard);
  REQUIRE(s1->exec({"PRAGMA main.'cache_size' = 9"}));
  CHECK(cache_size(*s2) == standard);
  auto lift = s1->exec({"PRAGMA 'query_only' = 0"});
  REQUIRE_FALSE(lift);
  CHECK(is(lift.error(), errc::read_only_violation));
  auto write = s2->exec({"INSERT INTO t VALUES (666)"});
  REQUIRE_FALSE(write);
  CHECK(is(write.error(), errc::read_only_violation));
  CHECK(fx.count("t") == 0);
  // A writer's temporary table named by a quoted schema goes with its session too.
  auto w1 = fx.cli->open_session(session_options{});
  REQUIRE(w1);
  REQUIRE(w1->exec({"CREATE TABLE 'temp'.leak (a)"}));
  auto w2 = fx.cli->open_session(session_options{});
  REQUIRE(w2);
  auto seen = w2->exec({"SELECT count(*) FROM temp.sqlite_master WHERE name = 'leak'"});
  REQUIRE(seen);
  CHECK(seen->rows.at(0).at(0).as_int() == 0);
}

TEST_CASE("SQLite: a read that changes its connection's session is never batched with the "
          "next reader's",
          "[pool][read]") {
  // Found from outside: reads queued together ran on one connection, and the second saw
  // the first one's PRAGMA.
  for (bool in_place : {true, false}) {
    DYNAMIC_SECTION("read_in_place = " << in_place) {
      temp_dir dir;
      auto cfg = shelf_config(dir, 1);
      cfg.read_in_place = in_place;
      database_fixture fx{cfg};
      fx.require_ready();
      session_options ro;
      ro.read_only = true;
      auto a = fx.cli->open_session(ro);
      auto b = fx.cli->open_session(ro);
      REQUIRE(a);
      REQUIRE(b);
      auto standard = b->exec({"PRAGMA cache_size"});
      REQUIRE(standard);
      // The pool's one connection is busy in a long read, so the next two wait.
      // Catch2 assertions stay on this thread: the others only store their answers.
      caf::expected<result_set> busy_answer{caf::error{}};
      std::thread busy([&] {
        busy_answer = fx.read_as_new_client({sqlite_backend::endless_sql}, std::chrono::seconds(1));
      });
      REQUIRE(eventually([&] { return fx.stats("reader").in_use == 1; }));
      caf::expected<result_set> changed{caf::error{}};
      caf::expected<result_set> seen{caf::error{}};
      std::thread first([&] { changed = a->exec({"PRAGMA cache_size = 11"}); });
      bool queued_first = eventually([&] { return fx.stats("reader").waiting == 1; });
      std::thread second([&] { seen = b->exec({"PRAGMA cache_size"}); });
      bool queued_both = eventually([&] { return fx.stats("reader").waiting == 2; });
      busy.join();
      first.join();
      second.join();
      CHECK(!busy_answer);
      CHECK(queued_first);
      CHECK(queued_both);
      REQUIRE(changed);
      REQUIRE(seen);
      CHECK(seen->rows.at(0).at(0) == standard->rows.at(0).at(0));
    }
  }
}

TEST_CASE("SQLite: with one scheduler thread no read runs in place, and a long read stops "
          "nothing else",
          "[pool][read]") {
  // Found from outside: one thread was lent to reads in place, so a long read held the
  // whole database until its deadline.
  temp_dir dir;
  database_fixture fx{shelf_config(dir, 2), 1};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  REQUIRE(fx.read_as_new_client({"SELECT 1"}, std::chrono::seconds(5)));
  CHECK(fx.stats("reader").in_place == 0);
  // Catch2 assertions stay on this thread: the other only stores its answer.
  caf::expected<result_set> slow_answer{caf::error{}};
  std::thread slow([&] {
    slow_answer = fx.read_as_new_client({sqlite_backend::endless_sql}, std::chrono::seconds(20));
  });
  REQUIRE(eventually([&] { return fx.stats("reader").in_use == 1; }));
  // Answered while the read runs (the client's own timeout is 30 s; the read's 20 s).
  auto started = std::chrono::steady_clock::now();
  fx.must_exec({"INSERT INTO t VALUES (1)"});
  auto status = fx.cli->status();
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(status);
  CHECK(took < std::chrono::seconds(10));
  auto reads = fx.cli->status();
  REQUIRE(reads);
  CHECK(reads->reads_in_place == 0);
  // The read ends at its deadline; stop() would cancel it sooner, so end it that way.
  auto stopped = fx.cli->stop();
  slow.join();
  CHECK_FALSE(stopped);
  CHECK(!slow_answer);
}

TEST_CASE("SQLite: long reads on every reader connection leave the runtime serving",
          "[pool][read]") {
  // Reads in place, and readers on the scheduler, block scheduler threads, but never all
  // of them: with every reader connection stuck in a long read, the engine,
  // the writer and the sessions still run, and every read stops at its deadline.
  for (bool in_place : {true, false}) {
    DYNAMIC_SECTION("read_in_place = " << in_place) {
      temp_dir dir;
      auto cfg = file_config(dir);
      cfg.read_in_place = in_place;
      // More readers than the shelf holds (all scheduler threads but one), whatever
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
      REQUIRE(eventually([&] {
        auto reader = fx.stats("reader");
        return reader.idle == readers && reader.in_place == (in_place ? readers : 0);
      }));
      // In place, every idle reader connection is on the shelf, but sessions borrow at
      // most all scheduler threads but one; the rest of the reads go through the engine.
      int shelved = in_place ? static_cast<int>(fx.sys.scheduler().num_workers()) - 1 : 0;
      REQUIRE(shelved < readers);
      CHECK(fx.stats("reader").in_place == (in_place ? readers : 0));

      // Catch2 assertions stay on this thread: the others only store their answers.
      std::vector<caf::expected<result_set>> answers(readers, caf::error{});
      std::vector<std::thread> threads;
      for (int i = 0; i < readers; ++i)
        threads.emplace_back([&, i] {
          answers[i] =
              fx.read_as_new_client({sqlite_backend::endless_sql}, std::chrono::seconds(3));
        });
      // Lent shelved connections count as in use, like the engine's.
      bool all_running = eventually([&] { return fx.stats("reader").in_use == readers; });

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
      // Every read was cancelled at its deadline, in place or in the reader pool.
      auto reader = fx.stats("reader");
      CHECK(reader.cancelled == readers);
      CHECK(reader.discarded == 0);
      CHECK(reader.in_use == 0);
    }
  }
}

TEST_CASE("SQLite: a blocking session runs its autocommit reads in place, and everything in a "
          "transaction through the session",
          "[pool][read][blocking_session]") {
  temp_dir dir;
  database_fixture fx{file_config(dir)};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  auto in_place = [&] { return fx.cli->status()->reads_in_place; };
  // The reader pool opens its connections at start; reads count once they are shelved.
  REQUIRE(eventually([&] { return fx.stats("reader").in_place == fx.stats("reader").size; }));
  auto s = fx.cli->open_session(session_options{});
  REQUIRE(s);
  auto count = [&] {
    auto n = s->exec({"SELECT count(*) FROM t"});
    INFO((n ? std::string{"ok"} : text(n.error())));
    REQUIRE(n);
    return n->rows.at(0).at(0).as_int();
  };
  CHECK(count() == 0);
  auto before = in_place();
  CHECK(count() == 0);
  CHECK(in_place() == before + 1);

  // In a transaction every call goes to the session: it sees its own uncommitted row,
  // which no reader connection could.
  REQUIRE_FALSE(s->begin());
  REQUIRE(s->exec({"INSERT INTO t VALUES (1)"}));
  before = in_place();
  CHECK(count() == 1);
  CHECK(in_place() == before);
  CHECK(fx.count("t") == 0); // another connection does not see it
  REQUIRE_FALSE(s->rollback());
  before = in_place();
  CHECK(count() == 0);
  CHECK(in_place() == before + 1);

  // After a commit, in place again, and the commit is seen.
  REQUIRE_FALSE(s->begin());
  REQUIRE(s->exec({"INSERT INTO t VALUES (2)"}));
  REQUIRE_FALSE(s->commit());
  before = in_place();
  CHECK(count() == 1);
  CHECK(in_place() == before + 1);
  auto info = s->info();
  REQUIRE(info);
  CHECK(info->phase == session_phase::idle);
  CHECK_FALSE(info->holds_lease);
}

TEST_CASE("SQLite: a blocking session that reads in place stays open past its idle timeout, "
          "and one that stops calling closes",
          "[pool][read][blocking_session]") {
  temp_dir dir;
  database_fixture fx{file_config(dir)};
  fx.require_ready();
  session_options options;
  options.read_only = true;
  options.idle_timeout = std::chrono::milliseconds(200);
  auto s = fx.cli->open_session(options);
  REQUIRE(s);
  // Reads in place for several idle timeouts: each counts as a request. (The reader
  // pool opens its connections at start: a read before they are shelved goes through
  // the engine.)
  REQUIRE(eventually([&] { return fx.stats("reader").in_place == fx.stats("reader").size; }));
  auto before = fx.cli->status()->reads_in_place;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  int64_t reads = 0;
  while (std::chrono::steady_clock::now() < until) {
    auto one = s->exec({"SELECT 1"});
    INFO((one ? std::string{"ok"} : text(one.error())));
    REQUIRE(one);
    reads += 1;
  }
  CHECK(fx.cli->status()->reads_in_place - before == reads);
  CHECK(fx.cli->status()->sessions == 1);
  // Left alone, it closes at its idle timeout (the database's status says so without
  // calling it); then a call answers session_closed, in place or not.
  CHECK(eventually([&] { return fx.cli->status()->sessions == 0; }));
  auto late = s->exec({"SELECT 1"});
  REQUIRE(!late);
  INFO(text(late.error()));
  CHECK(is(late.error(), errc::session_closed));
}

namespace {

/// An actor's one-shot exec, and which actor answered it.
struct one_shot_answer {
  caf::expected<result_set> rows{caf::error{}};
  caf::actor_id answered_by = 0;
};

/// A read that runs for a second or two (far longer under sanitizers, which slow SQLite's
/// progress handler), answering 2,000,000.
const statement long_read{"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                          "WHERE x < 2000000) SELECT count(*) FROM c"};

/// A deadline that leaves room for long_read under sanitizers.
session_options patient() {
  session_options options;
  options.request_timeout = std::chrono::seconds(120);
  return options;
}

one_shot_answer one_shot_exec(database_fixture& fx, caf::scoped_actor& self, statement stmt,
                              session_options options = {}) {
  one_shot_answer out;
  self->request(fx.db, std::chrono::seconds(60), exec_atom::value, std::move(stmt),
                std::move(options))
      .receive(
          [&](result_set& rows) {
            out.rows = std::move(rows);
            out.answered_by = self->current_sender() ? self->current_sender()->id() : 0;
          },
          [&](caf::error& err) { out.rows = std::move(err); });
  return out;
}

} // namespace

TEST_CASE("SQLite: an actor's one-shot reads run in place on a few long-lived readers, not an "
          "actor per request, under every rule a session keeps",
          "[pool][read][one_shot]") {
  shelf_pool fx{3};
  fx.must_exec({"INSERT INTO t VALUES (7)"});
  REQUIRE(eventually([&] { return fx.stats("reader").in_place == 3; }));
  caf::scoped_actor self{fx.sys};
  auto before = reads_in_place(fx);
  auto checkouts = fx.stats("reader").checkouts;
  std::set<caf::actor_id> answered_by;
  for (int i = 0; i < 20; ++i) {
    auto got = one_shot_exec(fx, self, {"SELECT x FROM t"});
    INFO((got.rows ? std::string{"ok"} : text(got.rows.error())));
    REQUIRE(got.rows);
    CHECK(got.rows->rows.at(0).at(0).as_int() == 7);
    answered_by.insert(got.answered_by);
  }
  CHECK(reads_in_place(fx) == before + 20);
  CHECK(fx.stats("reader").checkouts == checkouts);
  // At most one reader per scheduler thread a read may block (all but one).
  CHECK(answered_by.size() <= std::max<size_t>(1, fx.sys.scheduler().num_workers() - 1));

  // What cannot run on a reader goes the session's way, and is answered as a session
  // answers it: a write commits (on the writer), ...
  auto wrote = one_shot_exec(fx, self, {"INSERT INTO t VALUES (8)"});
  INFO((wrote.rows ? std::string{"ok"} : text(wrote.rows.error())));
  REQUIRE(wrote.rows);
  CHECK(wrote.rows->affected_rows == 1);
  CHECK(fx.count("t") == 2);
  // ... a write in a read-only request is refused, and changes nothing, ...
  session_options read_only;
  read_only.read_only = true;
  auto refused = one_shot_exec(fx, self, {"INSERT INTO t VALUES (9)"}, read_only);
  REQUIRE_FALSE(refused.rows);
  CHECK(is(refused.rows.error(), errc::read_only_violation));
  CHECK(fx.count("t") == 2);
  // ... transaction control and a NUL are refused with the session's words, ...
  auto begin = one_shot_exec(fx, self, {"BEGIN"});
  REQUIRE_FALSE(begin.rows);
  CHECK(is(begin.rows.error(), errc::invalid_argument));
  auto nul = one_shot_exec(fx, self, {std::string{"SELECT 1\0; DELETE FROM t", 24}});
  REQUIRE_FALSE(nul.rows);
  CHECK(is(nul.rows.error(), errc::invalid_argument));
  CHECK(fx.count("t") == 2);
  // ... and a setting one request changes never reaches the next.
  auto changed = one_shot_exec(fx, self, {"PRAGMA cache_size = 123"});
  INFO((changed.rows ? std::string{"ok"} : text(changed.rows.error())));
  REQUIRE(changed.rows);
  for (int i = 0; i < 6; ++i) {
    auto size = one_shot_exec(fx, self, {"PRAGMA cache_size"});
    REQUIRE(size.rows);
    CHECK(size.rows->rows.at(0).at(0).as_int() != 123);
  }
  // A statement error is the statement's, and the reader serves on.
  auto bad = one_shot_exec(fx, self, {"SELECT no_such_column FROM t"});
  REQUIRE_FALSE(bad.rows);
  CHECK((is(bad.rows.error(), errc::syntax_error) || is(bad.rows.error(), errc::database_error)));
  CHECK(one_shot_exec(fx, self, {"SELECT x FROM t"}).rows);
}

TEST_CASE("SQLite: while every one-shot reader runs a long read, other one-shot requests are "
          "answered at once, never queued behind them",
          "[pool][read][one_shot]") {
  with_temp_dir dir;
  auto cfg = shelf_config(dir.dir, 4);
  // Three scheduler threads: two one-shot readers (a read in place never takes the last).
  database_fixture fx{cfg, 3};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  fx.must_exec({"INSERT INTO t VALUES (7)"});
  REQUIRE(eventually([&] { return fx.stats("reader").in_place == 4; }));

  std::atomic<int> long_done{0};
  std::vector<caf::expected<result_set>> long_answers(2, caf::error{});
  joined_threads long_reads;
  for (int i = 0; i < 2; ++i)
    long_reads.start([&, i] {
      caf::scoped_actor own{fx.sys};
      long_answers[i] = one_shot_exec(fx, own, long_read, patient()).rows;
      long_done += 1;
    });
  // Both run in place: two of the reader pool's connections are lent.
  REQUIRE(eventually([&] { return fx.stats("reader").in_use == 2 || long_done > 0; }));
  REQUIRE(long_done == 0);

  caf::scoped_actor self{fx.sys};
  for (int i = 0; i < 3; ++i) {
    auto quick = one_shot_exec(fx, self, {"SELECT x FROM t"});
    INFO((quick.rows ? std::string{"ok"} : text(quick.rows.error())));
    REQUIRE(quick.rows);
    CHECK(quick.rows->rows.at(0).at(0).as_int() == 7);
  }
  auto written = one_shot_exec(fx, self, {"INSERT INTO t VALUES (8)"});
  CHECK(written.rows);
  CHECK(long_done == 0); // answered while both long reads still ran
  long_reads.join();
  for (auto& answer : long_answers) {
    INFO((answer ? std::string{"ok"} : text(answer.error())));
    REQUIRE(answer);
    CHECK(answer->rows.at(0).at(0).as_int() == 2000000);
  }
}

TEST_CASE("SQLite: a database killed while one-shot reads run, in place and handed back to a "
          "session, still answers every one of them",
          "[pool][read][one_shot]") {
  with_temp_dir dir;
  auto cfg = shelf_config(dir.dir, 1); // one reader connection: the second read is handed back
  database_fixture fx{cfg, 3};
  fx.require_ready();
  fx.must_exec({"CREATE TABLE t (x INTEGER)"});
  REQUIRE(eventually([&] { return fx.stats("reader").in_place == 1; }));

  std::atomic<int> answered{0};
  joined_threads reads;
  for (int i = 0; i < 2; ++i)
    reads.start([&] {
      caf::scoped_actor own{fx.sys};
      // Any answer will do (a count, or shutting_down): none may go missing.
      own->request(fx.db, std::chrono::seconds(60), exec_atom::value, long_read, patient())
          .receive([&](result_set&) { answered += 1; },
                   [&](caf::error& err) {
                     if (err != caf::sec::request_timeout)
                       answered += 1;
                   });
    });
  // One runs in place on the reader connection; the other was handed back to a session,
  // which queues it for the reader (SQLite says it only reads).
  REQUIRE(eventually(
      [&] { return fx.stats("reader").in_use == 1 && fx.stats("reader").waiting == 1; }));
  REQUIRE(answered == 0);
  caf::anon_send_exit(fx.db, caf::exit_reason::user_shutdown);
  reads.join();
  CHECK(answered == 2);
}
