// Every registered message type survives CAF's binary serialization (the actor handles
// of interfaces.hpp are references to local actors, not values, and are not checked
// here), errors classify by one table, and values and results convert to and from JSON.
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include "cafdb/json.hpp"
#include "support/fixture.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

template <class T>
std::vector<char> bytes_of(caf::actor_system& sys, const T& x);

template <class T>
T round_trip(caf::actor_system& sys, T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE(!sink(x));
  T y;
  caf::binary_deserializer source{sys, buf};
  REQUIRE(!source(y));
  return y;
}

template <class T>
std::vector<char> bytes_of(caf::actor_system& sys, const T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE(!sink(const_cast<T&>(x)));
  return buf;
}

// Serializes `sample`, reads it back and serializes that again: the bytes match when
// every field travels. A sample unlike the default proves the fields are written.
template <class T>
void check_round_trip(caf::actor_system& sys, const T& sample, const char* name) {
  INFO(name);
  auto bytes = bytes_of(sys, sample);
  T back{};
  caf::binary_deserializer source{sys, bytes};
  REQUIRE(!source(back));
  CHECK(bytes_of(sys, back) == bytes);
  CHECK(bytes != bytes_of(sys, T{}));
}

result_set sample_result() {
  result_set r;
  r.columns = {"id", "name", "data"};
  r.column_types = {"INTEGER", "TEXT", "BLOB"};
  r.rows = {{value{1}, value{"a"}, value{blob{1, 2, 3}}}, {value{2}, value{nullptr}, value{2.5}}};
  r.affected_rows = 2;
  r.last_insert_id = 7;
  return r;
}

} // namespace

TEST_CASE("messages survive a binary round trip", "[messages]") {
  system_config cfg;
  caf::actor_system sys{cfg};
  auto r = round_trip(sys, sample_result());
  CHECK(r.columns == sample_result().columns);
  CHECK(r.rows == sample_result().rows);
  CHECK(r.last_insert_id == 7);
  auto stmt = round_trip(sys, statement{"SELECT $1", {value{true}}});
  CHECK(stmt.sql == "SELECT $1");
  CHECK(stmt.params.at(0) == value{true});
  auto bulk =
      round_trip(sys, bulk_statement{"INSERT INTO t VALUES ($1)", {{value{1}}, {value{"x"}}}});
  CHECK(bulk.sql == "INSERT INTO t VALUES ($1)");
  REQUIRE(bulk.row_count() == 2);
  CHECK(bulk.well_formed());
  CHECK(*bulk.row_begin(1) == value{"x"});
  exec_request req;
  req.mode = batch_mode::transaction;
  req.bulk = bulk;
  auto req_back = round_trip(sys, req);
  CHECK(req_back.mode == batch_mode::transaction);
  CHECK(req_back.bulk.row_count() == 2);
  session_options options;
  options.read_only = true;
  options.wait_timeout = std::chrono::milliseconds(250);
  options.label = "report";
  auto o = round_trip(sys, options);
  CHECK(o.read_only);
  CHECK(o.wait_timeout == options.wait_timeout);
  CHECK(o.label == "report");
  auto ev = round_trip(
      sys, readiness_event{"setup", readiness_state::failed, "why", 3, caf::make_timestamp()});
  CHECK(ev.state == readiness_state::failed);
  CHECK(ev.attempt == 3);
  status_report report;
  report.pools.push_back(
      pool_stats{"writer", "reader", 4, 8, 3, 1, 2, 0, 0, 0, 0, 0, 10, 1, 0, 3, 2});
  auto back = round_trip(sys, report);
  REQUIRE(back.pools.size() == 1);
  CHECK(back.pools[0].in_use == 2);
  CHECK(back.pools[0].cancelled == 2);
  auto cmd = round_trip(sys, tx_command{tx_op::savepoint, "sp1", false});
  CHECK(cmd.op == tx_op::savepoint);
  CHECK(cmd.name == "sp1");
}

TEST_CASE("every registered message type round-trips", "[messages]") {
  system_config cfg;
  caf::actor_system sys{cfg};
  auto stmt = statement{"SELECT $1", {value{int64_t{42}}}};
  auto result = sample_result();
  auto bulk = bulk_statement{"INSERT INTO t VALUES ($1)", {{value{1}}, {value{"x"}}}};
  check_round_trip(sys, value{"text"}, "value");
  check_round_trip(sys, stmt, "statement");
  check_round_trip(sys, std::vector<statement>{stmt, stmt}, "vector<statement>");
  check_round_trip(sys, bulk, "bulk_statement");
  check_round_trip(sys, result, "result_set");
  check_round_trip(sys, std::vector<result_set>{result}, "vector<result_set>");
  session_options options;
  options.read_only = true;
  options.request_timeout = std::chrono::milliseconds(5);
  options.label = "report";
  check_round_trip(sys, options, "session_options");
  check_round_trip(sys, session_info{session_phase::in_doubt, true, 2, true}, "session_info");
  check_round_trip(sys, tx_command{tx_op::rollback_to, "sp", true}, "tx_command");
  check_round_trip(sys, checkout_request{true, std::chrono::seconds(1), "schema", true},
                   "checkout_request");
  check_round_trip(sys, connection_condition::running, "connection_condition");
  exec_request req;
  req.statements = {stmt};
  req.mode = batch_mode::savepoint;
  req.keep_session = true;
  req.deadline = std::chrono::milliseconds(7);
  check_round_trip(sys, req, "exec_request");
  read_outcome outcome{result, make_error(errc::busy, "locked")};
  check_round_trip(sys, outcome, "read_outcome");
  check_round_trip(sys, std::vector<read_outcome>{outcome}, "vector<read_outcome>");
  pool_stats stats{"writer", "reader", 4, 8, 3, 1, 2, 0, 0, 1, 0, 10, 1, 0, 3, 2};
  stats.wait_p99_us = 17;
  check_round_trip(sys, stats, "pool_stats");
  check_round_trip(sys, std::vector<pool_stats>{stats}, "vector<pool_stats>");
  readiness_event event{"engine:writer", readiness_state::degraded, "lost", 3,
                        caf::make_timestamp()};
  check_round_trip(sys, event, "readiness_event");
  check_round_trip(sys, readiness_snapshot{readiness_state::ready, {event}}, "readiness_snapshot");
  status_report report;
  report.state = readiness_state::degraded;
  report.components = {event};
  report.pools = {stats};
  check_round_trip(sys, report, "status_report");
  check_round_trip(sys, column_type::bigint, "column_type");
  check_round_trip(sys, on_delete_action::cascade, "on_delete_action");
  column_def column;
  column.name = "id";
  column.type = column_type::bigint;
  column.primary_key = true;
  check_round_trip(sys, column, "column_def");
  foreign_key_def key;
  key.columns = {"owner"};
  key.ref_table = "users";
  key.ref_columns = {"id"};
  check_round_trip(sys, key, "foreign_key_def");
  index_def index;
  index.columns = {"owner"};
  index.unique = true;
  check_round_trip(sys, index, "index_def");
  table_def table;
  table.name = "items";
  table.columns = {column};
  table.primary_key = {"id"};
  check_round_trip(sys, table, "table_def");
  check_round_trip(sys, schema_def{{table}}, "schema_def");
  check_round_trip(sys, op_kind::paginate, "op_kind");
  operation op;
  op.kind = op_kind::read_multi;
  op.statements = {stmt};
  op.names = {"first"};
  op.table = "items";
  check_round_trip(sys, op, "operation");
  // The byte comparison cannot see a field that inspect() leaves out on both sides:
  // the fields added last are checked one by one.
  auto req_back = round_trip(sys, req);
  CHECK(req_back.keep_session);
  CHECK(req_back.deadline == std::chrono::milliseconds(7));
  CHECK(round_trip(sys, session_info{session_phase::in_doubt, true, 2, true}).phase ==
        session_phase::in_doubt);
  auto checkout = round_trip(sys, checkout_request{true, std::chrono::seconds(1), "schema", true});
  CHECK(checkout.owner == "schema");
  CHECK(checkout.revocable);
  CHECK(round_trip(sys, stats).wait_p99_us == 17);
  CHECK(round_trip(sys, stats).returning == 1);
  CHECK(round_trip(sys, op).names == std::vector<std::string>{"first"});
  CHECK(round_trip(sys, options).request_timeout == std::chrono::milliseconds(5));
  CHECK(is(round_trip(sys, outcome).error, errc::busy));
}

TEST_CASE("every error classifies by one table", "[messages]") {
  CHECK(classify(make_error(errc::constraint_violation, "dup")) == failure_kind::refused);
  CHECK(classify(make_error(errc::statement_timeout, "slow")) == failure_kind::refused);
  CHECK(classify(make_error(errc::pool_timeout, "busy")) == failure_kind::refused);
  CHECK(classify(make_error(errc::connection_lost, "gone")) == failure_kind::lost);
  CHECK(classify(make_error(errc::unavailable, "down")) == failure_kind::lost);
  CHECK(classify(make_error(errc::commit_in_doubt, "?")) == failure_kind::in_doubt);
  CHECK(classify(caf::make_error(caf::sec::request_timeout)) == failure_kind::timed_out);
  CHECK(classify(caf::make_error(caf::sec::request_receiver_down)) == failure_kind::lost);
  CHECK(classify(caf::error{}) == failure_kind::refused);
  // The blocking client answers a cafdb request_timeout: it may still run.
  CHECK(classify(make_error(errc::request_timeout, "late")) == failure_kind::timed_out);
  CHECK(classify(errc::commit_in_doubt) == failure_kind::in_doubt);
  // The same failure classifies the same before and after as_cafdb_error (found from
  // outside: a session gone mid-request was lost raw and refused converted).
  for (auto sec : {caf::sec::request_timeout, caf::sec::request_receiver_down})
    CHECK(classify(as_cafdb_error(caf::make_error(sec))) == classify(caf::make_error(sec)));
  // No error is no failure.
  CHECK(to_db_error(caf::error{}).code == errc::none);
  CHECK(unknown_condition(failure_kind::timed_out) == connection_condition::running);
  CHECK(unknown_condition(failure_kind::lost) == connection_condition::broken);
  CHECK(unknown_condition(failure_kind::refused) == connection_condition::broken);
  CHECK(condition_after(failure_kind::refused) == connection_condition::clean);
  CHECK(condition_after(failure_kind::in_doubt) == connection_condition::broken);
  CHECK(to_string(failure_kind::in_doubt) == "in_doubt");
}

TEST_CASE("cafdb errors carry code, message and driver details through CAF", "[messages]") {
  system_config cfg;
  caf::actor_system sys{cfg};
  auto err = make_error(errc::constraint_violation, "dup key", "SQLITE_CONSTRAINT(2067)",
                        "UNIQUE constraint failed");
  auto copy = round_trip(sys, err);
  CHECK(is(copy, errc::constraint_violation));
  CHECK(copy == errc::constraint_violation);
  auto info = describe(copy);
  CHECK(info.message == "dup key");
  CHECK(info.driver_code == "SQLITE_CONSTRAINT(2067)");
  CHECK(sys.render(copy).find("constraint_violation") != std::string::npos);
}

TEST_CASE("values and results convert to and from JSON", "[messages]") {
  auto r = sample_result();
  nlohmann::json j = r;
  CHECK(j["rows"][0][2]["$base64"] == "AQID");
  CHECK(j["rows"][1][1].is_null());
  auto back = j.get<result_set>();
  CHECK(back.rows == r.rows);
  auto objects = rows_as_objects(r);
  CHECK(objects[0]["name"] == "a");
  auto stmt = nlohmann::json::parse(R"({"sql": "SELECT $1, $2", "params": [1, {"k": [1]}]})")
                  .get<statement>();
  CHECK(stmt.params.at(0) == value{1});
  CHECK(stmt.params.at(1) == value{R"({"k":[1]})"});
}

TEST_CASE("the status JSON carries every pool_stats field, under its own name", "[messages]") {
  pool_stats stats;
  stats.engine = "writer";
  stats.pool = "shared";
  // Each counter a value of its own, so a field shown under another's name would show.
  int64_t next = 1;
  auto set = [&](auto& field) { field = static_cast<std::decay_t<decltype(field)>>(next++); };
  set(stats.size);
  set(stats.max);
  set(stats.total);
  set(stats.idle);
  set(stats.in_use);
  set(stats.opening);
  set(stats.pinging);
  set(stats.returning);
  set(stats.in_place);
  set(stats.waiting);
  set(stats.checkouts);
  set(stats.timeouts);
  set(stats.discarded);
  set(stats.opened);
  set(stats.cancelled);
  set(stats.reconnects);
  set(stats.recycled);
  set(stats.ping_failures);
  set(stats.server_full);
  set(stats.leaks);
  set(stats.reclaimed);
  set(stats.wait_p50_us);
  set(stats.wait_p95_us);
  set(stats.wait_p99_us);
  status_report report;
  report.pools.push_back(stats);
  auto j = nlohmann::json(report)["pools"][0];
  CHECK(j.size() == 26);
  CHECK(j["engine"] == "writer");
  CHECK(j["pool"] == "shared");
  CHECK(j["size"] == 1);
  CHECK(j["returning"] == 8);
  CHECK(j["in_place"] == 9);
  CHECK(j["waiting"] == 10);
  CHECK(j["reconnects"] == 16);
  CHECK(j["recycled"] == 17);
  CHECK(j["ping_failures"] == 18);
  CHECK(j["server_full"] == 19);
  CHECK(j["leaks"] == 20);
  CHECK(j["reclaimed"] == 21);
  CHECK(j["wait_p50_us"] == 22);
  CHECK(j["wait_p95_us"] == 23);
  CHECK(j["wait_p99_us"] == 24);
}
