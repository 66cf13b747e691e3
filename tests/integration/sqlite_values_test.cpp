// SQLite-specific: typeless columns keep every value type as bound.
#include "support/fixture.hpp"

using namespace cafdb;
using namespace cafdb::test;

TEST_CASE_METHOD(file_database, "SQLite: values of every type survive a round trip", "[sqlite]") {
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
