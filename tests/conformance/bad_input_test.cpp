// Conformance: bad input gets a typed error with a helpful message on every engine,
// and the database keeps serving.
#include "support/bad_input.hpp"

using namespace cafdb;
using namespace cafdb::test;

template <class Backend>
using bad_input = bad_input_fixture<Backend>;

TEMPLATE_TEST_CASE_METHOD(bad_input, "a syntax error is typed and names the problem", "[bad_input]",
                          sqlite_backend, pg_backend) {
  auto r = this->cli->exec({"SELEC 1"});
  REQUIRE(!r);
  CHECK(is(r.error(), errc::syntax_error));
  auto info = describe(r.error());
  CHECK(info.message.find("syntax error") != std::string::npos);
  CHECK_FALSE(info.driver_code.empty());
  CHECK_FALSE(info.driver_message.empty());
  this->still_serving();
}

TEMPLATE_TEST_CASE_METHOD(bad_input, "an unknown table is a typed error", "[bad_input]",
                          sqlite_backend, pg_backend) {
  auto r = this->cli->exec({"SELECT * FROM missing_table"});
  REQUIRE(!r);
  CHECK(is(r.error(), errc::syntax_error));
  CHECK(describe(r.error()).message.find("missing_table") != std::string::npos);
  this->still_serving();
}

TEMPLATE_TEST_CASE_METHOD(bad_input, "a wrong parameter count is refused before anything runs",
                          "[bad_input]", sqlite_backend, pg_backend) {
  auto too_few = this->cli->exec({"INSERT INTO t (id, v) VALUES ($1, $2)", {1}});
  REQUIRE(!too_few);
  CHECK(is(too_few.error(), errc::invalid_argument));
  CHECK(describe(too_few.error()).message.find("2 placeholder(s)") != std::string::npos);
  auto too_many = this->cli->exec({"SELECT CAST($1 AS TEXT)", {1, 2}});
  REQUIRE(!too_many);
  CHECK(is(too_many.error(), errc::invalid_argument));
  CHECK(this->count("t") == 0);
  this->still_serving();
}

TEMPLATE_TEST_CASE_METHOD(bad_input, "transaction control sent as SQL is refused", "[bad_input]",
                          sqlite_backend, pg_backend) {
  auto s = this->cli->open_session();
  REQUIRE(s);
  auto r = s->exec({"BEGIN"});
  REQUIRE(!r);
  CHECK(is(r.error(), errc::invalid_argument));
  CHECK(is(s->savepoint("bad name; DROP TABLE t"), errc::invalid_argument));
  CHECK(is(s->release("nope"), errc::invalid_argument)); // no transaction open
  this->still_serving();
}

TEMPLATE_TEST_CASE_METHOD(bad_input, "a write in a read-only session is refused", "[bad_input]",
                          sqlite_backend, pg_backend) {
  session_options ro;
  ro.read_only = true;
  auto r = this->cli->exec({"INSERT INTO t (v) VALUES ('x')"}, ro);
  REQUIRE(!r);
  CHECK(is(r.error(), errc::read_only_violation));
  // The same connection serves read-write work again afterwards.
  this->still_serving();
  CHECK(this->count("t") == 1);
}

TEMPLATE_TEST_CASE_METHOD(bad_input, "a constraint violation is typed and keeps the driver code",
                          "[bad_input]", sqlite_backend, pg_backend) {
  this->must_exec({"CREATE TABLE u (k INTEGER PRIMARY KEY)"});
  this->must_exec({"INSERT INTO u VALUES (1)"});
  auto r = this->cli->exec({"INSERT INTO u VALUES (1)"});
  REQUIRE(!r);
  CHECK(is(r.error(), errc::constraint_violation));
  CHECK_FALSE(describe(r.error()).driver_code.empty());
  this->still_serving();
}

TEMPLATE_TEST_CASE_METHOD(bad_input, "exec_many refuses bad batches and runs none of their rows",
                          "[bad_input][exec_many]", sqlite_backend, pg_backend) {
  auto no_rows = this->cli->exec_many({"INSERT INTO t (v) VALUES ($1)", {}});
  REQUIRE(!no_rows);
  CHECK(is(no_rows.error(), errc::invalid_argument));
  CHECK(describe(no_rows.error()).message.find("at least one row") != std::string::npos);

  // Row 2 has one value too many: the error names the row, and row 1 is undone.
  auto ragged = this->cli->exec_many({"INSERT INTO t (v) VALUES ($1)", {{"a"}, {"b", "c"}}});
  REQUIRE(!ragged);
  CHECK(is(ragged.error(), errc::invalid_argument));
  auto message = describe(ragged.error()).message;
  CHECK(message.find("row 2 of 2") != std::string::npos);
  CHECK(message.find("1 placeholder(s)") != std::string::npos);

  // Row ends that do not fit the values (as a message from elsewhere might carry).
  bulk_statement torn{"INSERT INTO t (v) VALUES ($1)", {{"a"}, {"b"}}};
  torn.ends.back() = 7;
  auto bad_ends = this->cli->exec_many(torn);
  REQUIRE(!bad_ends);
  CHECK(is(bad_ends.error(), errc::invalid_argument));
  CHECK(describe(bad_ends.error()).message.find("add_row") != std::string::npos);

  auto control = this->cli->exec_many({"COMMIT", {{}}});
  REQUIRE(!control);
  CHECK(is(control.error(), errc::invalid_argument));

  session_options ro;
  ro.read_only = true;
  auto read_only = this->cli->exec_many({"INSERT INTO t (v) VALUES ($1)", {{"ro"}}}, ro);
  REQUIRE(!read_only);
  CHECK(is(read_only.error(), errc::read_only_violation));

  CHECK(this->count("t") == 0);
  this->still_serving();
}
