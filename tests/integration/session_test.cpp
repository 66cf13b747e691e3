// Session semantics on a real SQLite file database: commit, rollback, savepoints,
// the failed state, and every automatic rollback path.
#include "support/fixture.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

struct session_fixture : file_database {
  session_fixture() {
    must_exec({"CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"});
  }

  session must_open(bool read_only = false) {
    session_options options;
    options.read_only = read_only;
    auto s = cli->open_session(options);
    INFO((s ? std::string{"ok"} : text(s.error())));
    REQUIRE(s);
    return std::move(*s);
  }

  int64_t count_named(session& s, const std::string& name) {
    auto result = s.exec({"SELECT count(*) FROM items WHERE name = $1", {name}});
    INFO((result ? std::string{"ok"} : text(result.error())));
    REQUIRE(result);
    return result->rows.at(0).at(0).as_int();
  }
};

void require_ok(const caf::error& err) {
  INFO(text(err));
  REQUIRE(!err);
}

} // namespace

TEST_CASE_METHOD(session_fixture, "a committed transaction is visible to other sessions",
                 "[session]") {
  auto writer = must_open();
  auto reader = must_open(true);
  require_ok(writer.begin());
  REQUIRE(writer.exec({"INSERT INTO items (name) VALUES ($1)", {"apple"}}));
  CHECK(count_named(writer, "apple") == 1);
  CHECK(count_named(reader, "apple") == 0); // not committed yet
  require_ok(writer.commit());
  CHECK(count_named(reader, "apple") == 1);
}

TEST_CASE_METHOD(session_fixture, "a rolled back transaction is not visible", "[session]") {
  auto s = must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"pear"}}));
  require_ok(s.rollback());
  CHECK(count("items") == 0);
  // A second rollback is a harmless no-op; commit without a transaction is an error.
  require_ok(s.rollback());
  auto err = s.commit();
  CHECK(is(err, errc::invalid_argument));
}

TEST_CASE_METHOD(session_fixture, "a savepoint rollback undoes only its part", "[session]") {
  auto s = must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"one"}}));
  require_ok(s.savepoint("sp"));
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"two"}}));
  require_ok(s.rollback_to("sp"));
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"three"}}));
  require_ok(s.release("sp"));
  require_ok(s.commit());
  auto rows = must_exec({"SELECT name FROM items ORDER BY id"});
  REQUIRE(rows.rows.size() == 2);
  CHECK(rows.rows[0][0] == value{"one"});
  CHECK(rows.rows[1][0] == value{"three"});
}

TEST_CASE_METHOD(session_fixture, "a failed statement fails the transaction until rollback",
                 "[session]") {
  auto s = must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"dup"}}));
  auto dup = s.exec({"INSERT INTO items (name) VALUES ($1)", {"dup"}});
  REQUIRE(!dup);
  CHECK(is(dup.error(), errc::constraint_violation));
  CHECK(describe(dup.error()).driver_code.find("SQLITE_CONSTRAINT") == 0);
  auto next = s.exec({"SELECT 1"});
  REQUIRE(!next);
  CHECK(is(next.error(), errc::transaction_failed));
  CHECK(is(s.commit(), errc::transaction_failed));
  auto info = s.info();
  REQUIRE(info);
  CHECK(info->phase == session_phase::failed);
  require_ok(s.rollback());
  // The session works afterwards, and the first insert was rolled back with the rest.
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"after"}}));
  CHECK(count("items") == 1);
  CHECK(count_named(s, "dup") == 0);
}

TEST_CASE_METHOD(session_fixture, "rollback_to a savepoint recovers a failed transaction",
                 "[session]") {
  auto s = must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"kept"}}));
  require_ok(s.savepoint("before_bad"));
  REQUIRE(!s.exec({"INSERT INTO items (name) VALUES (NULL)"}));
  require_ok(s.rollback_to("before_bad"));
  require_ok(s.commit());
  CHECK(count("items") == 1);
}

TEST_CASE_METHOD(session_fixture, "closing a session with an open transaction rolls it back",
                 "[session]") {
  {
    auto s = must_open();
    require_ok(s.begin());
    REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"closed"}}));
    require_ok(s.close());
    CHECK(is(s.begin(), errc::session_closed));
  }
  {
    // The destructor does the same for a session that is simply dropped.
    auto s = must_open();
    require_ok(s.begin());
    REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"dropped"}}));
  }
  CHECK(count("items") == 0);
  auto writer = stats("writer");
  CHECK(writer.in_use == 0);
  CHECK(writer.idle == 1);
}

TEST_CASE_METHOD(session_fixture, "the idle timeout rolls back and closes the session",
                 "[session]") {
  session_options options;
  options.idle_timeout = 200ms;
  auto s = cli->open_session(options);
  REQUIRE(s);
  require_ok(s->begin());
  REQUIRE(s->exec({"INSERT INTO items (name) VALUES ($1)", {"idle"}}));
  // Wait for the session actor to end on its own.
  caf::scoped_actor watcher{sys};
  watcher->monitor(s->handle());
  bool down = false;
  watcher->receive([&](caf::down_msg&) { down = true; },
                   caf::after(std::chrono::seconds(10)) >> [] {});
  REQUIRE(down);
  CHECK(count("items") == 0);
  CHECK(stats("writer").in_use == 0);
}

TEST_CASE_METHOD(session_fixture,
                 "a client killed mid-transaction is rolled back and its "
                 "connection serves the next session",
                 "[session]") {
  // The database comes in as an argument: CAF 0.17 trips UBSan on function actors
  // spawned without arguments.
  auto client = sys.spawn(
      [](caf::event_based_actor* self, database_actor db_handle) -> caf::behavior {
        return {
            [=](caf::ok_atom) -> caf::result<caf::ok_atom> {
              auto rp = self->make_response_promise<caf::ok_atom>();
              self->request(db_handle, 10s, caf::open_atom::value, session_options{})
                  .then([=](session_actor s) mutable {
                    self->request(s, 10s, begin_atom::value).then([=](caf::ok_atom) mutable {
                      self->request(s, 10s, exec_atom::value,
                                    statement{"INSERT INTO items (name) VALUES ($1)", {"ghost"}})
                          .then([=](result_set&) mutable { rp.deliver(caf::ok_atom::value); });
                    });
                  });
              return rp;
            },
        };
      },
      db);
  caf::scoped_actor self{sys};
  bool in_tx = false;
  self->request(client, 10s, caf::ok_atom::value)
      .receive([&](caf::ok_atom) { in_tx = true; }, [&](caf::error& err) { FAIL(text(err)); });
  REQUIRE(in_tx);
  CHECK(stats("writer").in_use == 1);
  self->monitor(client);
  self->send_exit(client, caf::exit_reason::kill);
  bool client_down = false;
  self->receive([&](caf::down_msg&) { client_down = true; }, caf::after(10s) >> [] {});
  REQUIRE(client_down);
  // The single writer connection must come back for this session to begin at all.
  auto next = must_open();
  require_ok(next.begin());
  REQUIRE(next.exec({"INSERT INTO items (name) VALUES ($1)", {"next"}}));
  require_ok(next.commit());
  CHECK(count_named(next, "ghost") == 0);
  CHECK(count_named(next, "next") == 1);
  auto writer = stats("writer");
  CHECK(writer.in_use == 0);
  CHECK(writer.total == 1);
  CHECK(writer.discarded == 0);
}

TEST_CASE_METHOD(session_fixture, "transact is all-or-nothing and answers every result",
                 "[session]") {
  auto ok = cli->transact({{"INSERT INTO items (name) VALUES ($1)", {"a"}},
                           {"INSERT INTO items (name) VALUES ($1)", {"b"}},
                           {"SELECT count(*) FROM items"}});
  INFO((ok ? std::string{"ok"} : text(ok.error())));
  REQUIRE(ok);
  REQUIRE(ok->size() == 3);
  CHECK((*ok)[0].affected_rows == 1);
  CHECK((*ok)[1].last_insert_id == 2);
  CHECK((*ok)[2].rows[0][0] == value{2});
  auto bad = cli->transact({{"INSERT INTO items (name) VALUES ($1)", {"c"}},
                            {"INSERT INTO items (name) VALUES ($1)", {"a"}}});
  REQUIRE(!bad);
  CHECK(is(bad.error(), errc::constraint_violation));
  CHECK(describe(bad.error()).message.find("statement 2 of 2") != std::string::npos);
  CHECK(count("items") == 2);
}

TEST_CASE_METHOD(session_fixture, "transact inside a transaction acts as a savepoint",
                 "[session]") {
  auto s = must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"outer"}}));
  auto bad = s.transact({{"INSERT INTO items (name) VALUES ($1)", {"inner"}},
                         {"INSERT INTO items (name) VALUES ($1)", {"outer"}}});
  REQUIRE(!bad);
  // The outer transaction survives; only the batch was undone.
  auto info = s.info();
  REQUIRE(info);
  CHECK(info->phase == session_phase::in_tx);
  require_ok(s.commit());
  CHECK(count("items") == 1);
}

TEST_CASE_METHOD(session_fixture, "an autocommit session holds no connection between requests",
                 "[session]") {
  auto s = must_open();
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"auto"}}));
  auto info = s.info();
  REQUIRE(info);
  CHECK_FALSE(info->holds_lease);
  CHECK(info->phase == session_phase::idle);
  require_ok(s.begin());
  info = s.info();
  REQUIRE(info);
  CHECK(info->holds_lease);
  require_ok(s.rollback());
  CHECK(count("items") == 1);
}

TEST_CASE_METHOD(session_fixture, "values of every type survive a round trip", "[session]") {
  must_exec({"CREATE TABLE kinds (n, b, i, r, t, x)"});
  blob bytes{0, 1, 2, 254, 255};
  must_exec({"INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6)",
             {nullptr, true, int64_t{9007199254740993}, 2.5, "héllo", bytes}});
  auto rows = must_exec({"SELECT n, b, i, r, t, x FROM kinds"});
  REQUIRE(rows.rows.size() == 1);
  auto& row = rows.rows[0];
  CHECK(row[0].is_null());
  CHECK(row[1].as_bool());
  CHECK(row[2].as_int() == 9007199254740993);
  CHECK(row[3].as_double() == 2.5);
  CHECK(row[4] == value{"héllo"});
  CHECK(row[5].as_blob() == bytes);
  // Placeholders can repeat and come in any order.
  auto swapped = must_exec({"SELECT $2 || $1 || $2", {"a", "b"}});
  CHECK(swapped.rows[0][0] == value{"bab"});
}
