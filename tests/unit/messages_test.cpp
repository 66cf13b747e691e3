// Every registered message type survives CAF's binary serialization, and values and
// results convert to and from JSON.
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include "cafdb/json.hpp"
#include "support/fixture.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

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
  report.pools.push_back(pool_stats{"writer", "reader", 4, 8, 3, 1, 2, 0, 10, 1, 0, 3, 2});
  auto back = round_trip(sys, report);
  REQUIRE(back.pools.size() == 1);
  CHECK(back.pools[0].in_use == 2);
  CHECK(back.pools[0].cancelled == 2);
  auto cmd = round_trip(sys, tx_command{tx_op::savepoint, "sp1", false});
  CHECK(cmd.op == tx_op::savepoint);
  CHECK(cmd.name == "sp1");
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
