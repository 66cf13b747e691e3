// Conformance: session semantics on every engine (SQLite file database, PostgreSQL):
// commit, rollback, savepoints, the failed state, and every automatic rollback path.
#include "support/backends.hpp"
#include <type_traits>

using namespace cafdb;
using namespace cafdb::test;

namespace {

template <class Backend>
struct session_fixture : with_temp_dir, database_fixture {
  session_fixture() : database_fixture(Backend::make_config(dir)) {
    require_ready();
    must_exec({std::string{"CREATE TABLE items (id "} + Backend::serial_pk +
               ", name TEXT NOT NULL UNIQUE)"});
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

TEMPLATE_TEST_CASE_METHOD(session_fixture, "a committed transaction is visible to other sessions",
                          "[session]", sqlite_backend, pg_backend) {
  auto writer = this->must_open();
  auto reader = this->must_open(true);
  require_ok(writer.begin());
  REQUIRE(writer.exec({"INSERT INTO items (name) VALUES ($1)", {"apple"}}));
  CHECK(this->count_named(writer, "apple") == 1);
  CHECK(this->count_named(reader, "apple") == 0); // not committed yet
  require_ok(writer.commit());
  CHECK(this->count_named(reader, "apple") == 1);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture, "a rolled back transaction is not visible", "[session]",
                          sqlite_backend, pg_backend) {
  auto s = this->must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"pear"}}));
  require_ok(s.rollback());
  CHECK(this->count("items") == 0);
  // A second rollback is a harmless no-op; commit without a transaction is an error.
  require_ok(s.rollback());
  auto err = s.commit();
  CHECK(is(err, errc::invalid_argument));
}

TEMPLATE_TEST_CASE_METHOD(session_fixture, "a savepoint rollback undoes only its part", "[session]",
                          sqlite_backend, pg_backend) {
  auto s = this->must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"one"}}));
  require_ok(s.savepoint("sp"));
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"two"}}));
  require_ok(s.rollback_to("sp"));
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"three"}}));
  require_ok(s.release("sp"));
  require_ok(s.commit());
  auto rows = this->must_exec({"SELECT name FROM items ORDER BY id"});
  REQUIRE(rows.rows.size() == 2);
  CHECK(rows.rows[0][0] == value{"one"});
  CHECK(rows.rows[1][0] == value{"three"});
}

TEMPLATE_TEST_CASE_METHOD(session_fixture,
                          "a failed statement fails the transaction until rollback", "[session]",
                          sqlite_backend, pg_backend) {
  auto s = this->must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"dup"}}));
  auto dup = s.exec({"INSERT INTO items (name) VALUES ($1)", {"dup"}});
  REQUIRE(!dup);
  CHECK(is(dup.error(), errc::constraint_violation));
  CHECK_FALSE(describe(dup.error()).driver_code.empty());
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
  CHECK(this->count("items") == 1);
  CHECK(this->count_named(s, "dup") == 0);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture, "rollback_to a savepoint recovers a failed transaction",
                          "[session]", sqlite_backend, pg_backend) {
  auto s = this->must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"kept"}}));
  require_ok(s.savepoint("before_bad"));
  REQUIRE(!s.exec({"INSERT INTO items (name) VALUES (NULL)"}));
  require_ok(s.rollback_to("before_bad"));
  require_ok(s.commit());
  CHECK(this->count("items") == 1);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture,
                          "closing a session with an open transaction rolls it back", "[session]",
                          sqlite_backend, pg_backend) {
  {
    auto s = this->must_open();
    require_ok(s.begin());
    REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"closed"}}));
    require_ok(s.close());
    CHECK(is(s.begin(), errc::session_closed));
  }
  {
    // The destructor does the same for a session that is simply dropped.
    auto s = this->must_open();
    require_ok(s.begin());
    REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"dropped"}}));
  }
  CHECK(this->count("items") == 0);
  auto writer = this->stats(TestType::rw_pool);
  CHECK(writer.in_use == 0);
  CHECK(writer.idle >= 1);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture, "the idle timeout rolls back and closes the session",
                          "[session]", sqlite_backend, pg_backend) {
  session_options options;
  options.idle_timeout = 200ms;
  auto s = this->cli->open_session(options);
  REQUIRE(s);
  require_ok(s->begin());
  REQUIRE(s->exec({"INSERT INTO items (name) VALUES ($1)", {"idle"}}));
  // Wait for the session actor to end on its own.
  caf::scoped_actor watcher{this->sys};
  watcher->monitor(s->handle());
  bool down = false;
  watcher->receive([&](caf::down_msg&) { down = true; },
                   caf::after(std::chrono::seconds(10)) >> [] {});
  REQUIRE(down);
  CHECK(this->count("items") == 0);
  CHECK(this->stats(TestType::rw_pool).in_use == 0);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture,
                          "a client killed mid-transaction is rolled back and its "
                          "connection serves the next session",
                          "[session]", sqlite_backend, pg_backend) {
  // The database comes in as an argument: CAF 0.17 trips UBSan on function actors
  // spawned without arguments.
  auto client = this->sys.spawn(
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
      this->db);
  caf::scoped_actor self{this->sys};
  bool in_tx = false;
  self->request(client, 10s, caf::ok_atom::value)
      .receive([&](caf::ok_atom) { in_tx = true; }, [&](caf::error& err) { FAIL(text(err)); });
  REQUIRE(in_tx);
  CHECK(this->stats(TestType::rw_pool).in_use == 1);
  self->monitor(client);
  self->send_exit(client, caf::exit_reason::kill);
  bool client_down = false;
  self->receive([&](caf::down_msg&) { client_down = true; }, caf::after(10s) >> [] {});
  REQUIRE(client_down);
  // On SQLite the single writer connection must come back for this session to begin.
  auto next = this->must_open();
  require_ok(next.begin());
  REQUIRE(next.exec({"INSERT INTO items (name) VALUES ($1)", {"next"}}));
  require_ok(next.commit());
  CHECK(this->count_named(next, "ghost") == 0);
  CHECK(this->count_named(next, "next") == 1);
  auto writer = this->stats(TestType::rw_pool);
  CHECK(writer.in_use == 0);
  CHECK(writer.total <= writer.max);
  CHECK(writer.discarded == 0);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture, "transact is all-or-nothing and answers every result",
                          "[session]", sqlite_backend, pg_backend) {
  auto ok = this->cli->transact({{"INSERT INTO items (name) VALUES ($1)", {"a"}},
                                 {"INSERT INTO items (name) VALUES ($1)", {"b"}},
                                 {"SELECT count(*) FROM items"}});
  INFO((ok ? std::string{"ok"} : text(ok.error())));
  REQUIRE(ok);
  REQUIRE(ok->size() == 3);
  CHECK((*ok)[0].affected_rows == 1);
  if (TestType::has_last_insert_id)
    CHECK((*ok)[1].last_insert_id == 2);
  CHECK((*ok)[2].rows[0][0] == value{2});
  auto bad = this->cli->transact({{"INSERT INTO items (name) VALUES ($1)", {"c"}},
                                  {"INSERT INTO items (name) VALUES ($1)", {"a"}}});
  REQUIRE(!bad);
  CHECK(is(bad.error(), errc::constraint_violation));
  CHECK(describe(bad.error()).message.find("statement 2 of 2") != std::string::npos);
  CHECK(this->count("items") == 2);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture, "transact inside a transaction acts as a savepoint",
                          "[session]", sqlite_backend, pg_backend) {
  auto s = this->must_open();
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
  CHECK(this->count("items") == 1);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture,
                          "an autocommit session holds no connection between requests", "[session]",
                          sqlite_backend, pg_backend) {
  auto s = this->must_open();
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
  CHECK(this->count("items") == 1);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture,
                          "exec_many runs one statement per row in one transaction and sums them",
                          "[session][exec_many]", sqlite_backend, pg_backend) {
  auto ok = this->cli->exec_many({"INSERT INTO items (name) VALUES ($1)", {{"a"}, {"b"}, {"c"}}});
  INFO((ok ? std::string{"ok"} : text(ok.error())));
  REQUIRE(ok);
  CHECK(ok->affected_rows == 3);
  CHECK(ok->rows.empty());
  if (TestType::has_last_insert_id)
    CHECK(ok->last_insert_id == 3);
  CHECK(this->count("items") == 3);

  // RETURNING: the rows of every run, in order.
  auto returned =
      this->cli->exec_many({"INSERT INTO items (name) VALUES ($1) RETURNING name", {{"d"}, {"e"}}});
  INFO((returned ? std::string{"ok"} : text(returned.error())));
  REQUIRE(returned);
  REQUIRE(returned->columns == std::vector<std::string>{"name"});
  REQUIRE(returned->rows.size() == 2);
  CHECK(returned->rows[0][0] == value{"d"});
  CHECK(returned->rows[1][0] == value{"e"});

  // All-or-nothing: the duplicate in row 2 undoes row 1, and the error names the row.
  auto bad = this->cli->exec_many({"INSERT INTO items (name) VALUES ($1)", {{"f"}, {"a"}}});
  REQUIRE(!bad);
  CHECK(is(bad.error(), errc::constraint_violation));
  CHECK(describe(bad.error()).message.find("row 2 of 2 failed") != std::string::npos);
  CHECK(this->count("items") == 5);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture, "exec_many inside a transaction acts as a savepoint",
                          "[session][exec_many]", sqlite_backend, pg_backend) {
  auto s = this->must_open();
  require_ok(s.begin());
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"outer"}}));
  auto bad = s.exec_many({"INSERT INTO items (name) VALUES ($1)", {{"inner"}, {"outer"}}});
  REQUIRE(!bad);
  CHECK(is(bad.error(), errc::constraint_violation));
  auto info = s.info();
  REQUIRE(info);
  CHECK(info->phase == session_phase::in_tx); // the transaction survives the batch
  auto good = s.exec_many({"INSERT INTO items (name) VALUES ($1)", {{"x"}, {"y"}}});
  INFO((good ? std::string{"ok"} : text(good.error())));
  REQUIRE(good);
  CHECK(good->affected_rows == 2);
  CHECK(this->count("items") == 0); // nothing is visible before the commit
  require_ok(s.commit());
  CHECK(this->count("items") == 3);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture,
                          "in_transaction commits on success, rolls back on an error or a throw",
                          "[session][in_transaction]", sqlite_backend, pg_backend) {
  // Success: committed, and the answer is what fn answered.
  auto inserted = this->cli->in_transaction([](session& s) -> caf::expected<int64_t> {
    auto a = s.exec({"INSERT INTO items (name) VALUES ($1)", {"kept-1"}});
    if (!a)
      return a.error();
    auto b = s.exec({"INSERT INTO items (name) VALUES ($1)", {"kept-2"}});
    if (!b)
      return b.error();
    return a->affected_rows + b->affected_rows;
  });
  INFO((inserted ? std::string{"ok"} : text(inserted.error())));
  REQUIRE(inserted);
  CHECK(*inserted == 2);
  CHECK(this->count("items") == 2);
  // An error answered by fn: everything fn did is undone, and that error is the answer.
  auto refused = this->cli->in_transaction([](session& s) -> caf::error {
    if (auto r = s.exec({"INSERT INTO items (name) VALUES ($1)", {"undone"}}); !r)
      return r.error();
    auto duplicate = s.exec({"INSERT INTO items (name) VALUES ($1)", {"kept-1"}});
    return duplicate ? caf::error{} : duplicate.error();
  });
  REQUIRE(refused);
  CHECK(is(refused, errc::constraint_violation));
  CHECK(this->count("items") == 2);
  // fn throws: rolled back, and the exception goes on to the caller.
  CHECK_THROWS_AS(this->cli->in_transaction([](session& s) -> caf::error {
    REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"thrown-away"}}));
    throw std::runtime_error{"the handler failed"};
  }),
                  std::runtime_error);
  CHECK(this->count("items") == 2);
  // A plain success with nothing to answer.
  auto plain = this->cli->in_transaction([](session& s) -> caf::error {
    auto r = s.exec({"DELETE FROM items WHERE name = $1", {"kept-2"}});
    return r ? caf::error{} : r.error();
  });
  CHECK(!plain);
  CHECK(this->count("items") == 1);
}

// -- transaction options ---------------------------------------------------------------

namespace {

tx_options isolation(isolation_level level, bool read_only = false) {
  tx_options out;
  out.isolation = level;
  out.read_only = read_only;
  return out;
}

// An option each engine cannot honour.
template <class Backend>
tx_options unsupported() {
  tx_options out;
  if constexpr (std::is_same_v<Backend, pg_backend>)
    out.lock = sqlite_lock::exclusive;
  else
    out.deferrable = true;
  return out;
}

} // namespace

TEMPLATE_TEST_CASE_METHOD(session_fixture,
                          "begin(tx_options): an option the engine cannot honour is refused "
                          "before anything begins, and the session goes on",
                          "[session][tx_options]", sqlite_backend, pg_backend) {
  auto s = this->must_open();
  auto refused = s.begin(unsupported<TestType>());
  INFO(text(refused));
  CHECK(is(refused, errc::invalid_argument));
  // Nothing began: commit has no transaction to end, and a plain begin works.
  CHECK(is(s.commit(), errc::invalid_argument));
  require_ok(s.begin(isolation(isolation_level::serializable)));
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"a"}}));
  require_ok(s.commit());
  CHECK(this->count_named(s, "a") == 1);
}

TEMPLATE_TEST_CASE_METHOD(session_fixture,
                          "in_transaction takes transaction options and commits under them",
                          "[session][tx_options]", sqlite_backend, pg_backend) {
  auto answer = this->cli->in_transaction(
      [](session& s) -> caf::expected<result_set> {
        return s.exec({"INSERT INTO items (name) VALUES ($1)", {"tx"}});
      },
      session_options{}, isolation(isolation_level::repeatable_read));
  INFO((answer ? std::string{"ok"} : text(answer.error())));
  REQUIRE(answer);
  CHECK(this->count("items") == 1);
  auto refused = this->cli->in_transaction([](session&) { return caf::error{}; }, session_options{},
                                           unsupported<TestType>());
  CHECK(is(refused, errc::invalid_argument));
}

TEST_CASE_METHOD(session_fixture<pg_backend>,
                 "PostgreSQL: begin(tx_options) sets the isolation level and read-only mode",
                 "[session][tx_options][postgres]") {
  auto s = must_open();
  auto setting = [&](const char* name) {
    auto r = s.exec({std::string{"SELECT current_setting('"} + name + "')"});
    REQUIRE(r);
    return *r->get<std::string>(0, "current_setting");
  };
  require_ok(s.begin(isolation(isolation_level::serializable)));
  CHECK(setting("transaction_isolation") == "serializable");
  require_ok(s.commit());
  require_ok(s.begin(isolation(isolation_level::repeatable_read, true)));
  CHECK(setting("transaction_isolation") == "repeatable read");
  CHECK(setting("transaction_read_only") == "on");
  auto write = s.exec({"INSERT INTO items (name) VALUES ($1)", {"no"}});
  REQUIRE_FALSE(write);
  CHECK(is(write.error(), errc::read_only_violation));
  require_ok(s.rollback());
  // The next transaction is back to the defaults.
  require_ok(s.begin());
  CHECK(setting("transaction_isolation") == "read committed");
  CHECK(setting("transaction_read_only") == "off");
  require_ok(s.rollback());
  // DEFERRABLE only with SERIALIZABLE READ ONLY.
  auto deferrable = isolation(isolation_level::serializable, true);
  deferrable.deferrable = true;
  require_ok(s.begin(deferrable));
  CHECK(setting("transaction_deferrable") == "on");
  require_ok(s.commit());
  deferrable.read_only = false;
  CHECK(is(s.begin(deferrable), errc::invalid_argument));
}

TEST_CASE_METHOD(session_fixture<sqlite_backend>,
                 "SQLite: begin(tx_options) takes the lock asked for; read-only transactions "
                 "need a read-only session",
                 "[session][tx_options][sqlite]") {
  auto s = must_open();
  tx_options exclusive;
  exclusive.lock = sqlite_lock::exclusive;
  require_ok(s.begin(exclusive));
  REQUIRE(s.exec({"INSERT INTO items (name) VALUES ($1)", {"x"}}));
  require_ok(s.commit());
  CHECK(count_named(s, "x") == 1);
  tx_options deferred;
  deferred.lock = sqlite_lock::deferred;
  require_ok(s.begin(deferred));
  require_ok(s.rollback());
  // A read-only transaction in a read-write session is refused, not run as a write.
  CHECK(is(s.begin(isolation(isolation_level::server_default, true)), errc::invalid_argument));
  auto reader = must_open(true);
  require_ok(reader.begin(isolation(isolation_level::serializable, true)));
  CHECK(count_named(reader, "x") == 1);
  require_ok(reader.commit());
  CHECK(is(reader.begin(exclusive), errc::invalid_argument));
}
