// Unit tests of the operations API's pure part (src/operations_sql.cpp): the SQL it
// generates, the values it binds, and how results are shaped as JSON.
#include <regex>
#include <set>

#include <catch2/catch.hpp>

#include "operations_sql.hpp"

using namespace cafdb;
using json = nlohmann::json;

namespace {

table_def users() {
  auto table = table_builder{"users"}
                   .with_mixin()
                   .column("email", column_type::varchar, 20)
                   .not_null()
                   .unique()
                   .column("age", column_type::integer)
                   .build();
  REQUIRE(table);
  return *table;
}

table_def stock() {
  auto table = table_builder{"stock"}
                   .column("shop", column_type::text)
                   .column("item", column_type::bigint)
                   .column("qty", column_type::integer)
                   .composite_primary_key({"shop", "item"})
                   .build();
  REQUIRE(table);
  return *table;
}

const std::string now = "2026-01-02 03:04:05.000006+00:00";

} // namespace

TEST_CASE("insert quotes every name, binds every value and fills in the mixin",
          "[unit][operations]") {
  auto stmt = insert_statement(users(), {{"email", "a@b.c"}, {"age", 3}}, now);
  REQUIRE(stmt);
  CHECK(stmt->sql == "INSERT INTO \"users\" (\"age\", \"email\", \"pkid\", \"date_created\", "
                     "\"date_updated\") VALUES ($1, $2, $3, $4, $5) RETURNING *");
  REQUIRE(stmt->params.size() == 5);
  CHECK(stmt->params[0] == value{int64_t{3}});
  CHECK(stmt->params[1] == value{"a@b.c"});
  CHECK(stmt->params[3] == value{now});
  // A given key is kept; no columns at all means the defaults.
  auto keyed = insert_statement(
      users(), {{"email", "a@b.c"}, {"pkid", "0F8E9A0C-1B2C-4D3E-8F40-123456789ABC"}}, now);
  REQUIRE(keyed);
  CHECK(keyed->params.size() == 4);
  CHECK(keyed->params[1] == value{"0f8e9a0c-1b2c-4d3e-8f40-123456789abc"}); // normalised
  auto empty = insert_statement(stock(), json::object(), now);
  REQUIRE(empty);
  CHECK(empty->sql == "INSERT INTO \"stock\" DEFAULT VALUES RETURNING *");
}

TEST_CASE("upsert keeps key columns and date_created on conflict", "[unit][operations]") {
  auto stmt = upsert_statement(users(), {{"email", "a@b.c"}, {"age", 3}}, {"email"}, now);
  REQUIRE(stmt);
  CHECK(stmt->sql == "INSERT INTO \"users\" (\"age\", \"email\", \"pkid\", \"date_created\", "
                     "\"date_updated\") VALUES ($1, $2, $3, $4, $5) ON CONFLICT (\"email\") DO "
                     "UPDATE SET \"age\" = excluded.\"age\", \"date_updated\" = "
                     "excluded.\"date_updated\" RETURNING *");
  auto only_key = upsert_statement(stock(), {{"shop", "n"}, {"item", 1}}, {}, now);
  REQUIRE(only_key);
  CHECK(only_key->sql.find("DO UPDATE SET \"shop\" = excluded.\"shop\" RETURNING *") !=
        std::string::npos);
  CHECK(!upsert_statement(users(), {{"email", "a@b.c"}, {"age", 3}}, {"age"}, now));
  CHECK(!upsert_statement(stock(), {{"shop", "n"}}, {}, now)); // a conflict column is missing
}

TEST_CASE("update and delete find rows by their whole primary key", "[unit][operations]") {
  auto stmt = update_statement(stock(), {{"shop", "n"}, {"item", 7}}, {{"qty", 2}}, now);
  REQUIRE(stmt);
  CHECK(stmt->sql ==
        "UPDATE \"stock\" SET \"qty\" = $1 WHERE \"shop\" = $2 AND \"item\" = $3 RETURNING *");
  CHECK(stmt->params == std::vector<value>{value{int64_t{2}}, value{"n"}, value{int64_t{7}}});
  auto mixin = update_statement(users(), "0f8e9a0c-1b2c-4d3e-8f40-123456789abc", {{"age", 4}}, now);
  REQUIRE(mixin);
  CHECK(mixin->sql == "UPDATE \"users\" SET \"age\" = $1, \"date_updated\" = $2 WHERE \"pkid\" = "
                      "$3 RETURNING *");
  CHECK(!update_statement(stock(), "n", {{"qty", 2}}, now));
  CHECK(!update_statement(stock(), {{"shop", "n"}, {"item", nullptr}}, {{"qty", 2}}, now));
  CHECK(!update_statement(stock(), {{"shop", "n"}, {"item", 7}, {"qty", 1}}, {{"qty", 2}}, now));
  auto del = delete_statement(stock(), {{"item", 7}, {"shop", "n"}});
  REQUIRE(del);
  CHECK(del->sql == "DELETE FROM \"stock\" WHERE \"shop\" = $1 AND \"item\" = $2");
}

TEST_CASE("delete_many splits long key lists", "[unit][operations]") {
  auto keys = json::array();
  for (int i = 0; i < 1200; ++i)
    keys.push_back({{"shop", "s"}, {"item", i}});
  auto stmts = delete_many_statements(stock(), keys);
  REQUIRE(stmts);
  REQUIRE(stmts->size() == 3);
  CHECK((*stmts)[0].params.size() == 1000);
  CHECK((*stmts)[2].params.size() == 400);
  CHECK((*stmts)[2].sql.rfind("DELETE FROM \"stock\" WHERE ((\"shop\" = $1 AND \"item\" = $2) OR (",
                              0) == 0);
  // With a guard, it applies to every key of the statement.
  auto guarded = delete_many_statements(stock(), keys, engine_kind::sqlite);
  REQUIRE(guarded);
  CHECK((*guarded)[2].sql.find(") AND (SELECT CASE WHEN") != std::string::npos);
  CHECK((*guarded)[2].params.size() == 400 + 3);
}

TEST_CASE("queries are wrapped, paged and bounded", "[unit][operations]") {
  statement query{"SELECT * FROM t WHERE x = $1 ;\n", {1}};
  auto count = count_statement(query);
  REQUIRE(count);
  CHECK(count->sql ==
        "SELECT COUNT(*) AS count FROM (SELECT * FROM t WHERE x = $1\n) AS cafdb_count");
  auto page = page_statement(query, 3, 20);
  REQUIRE(page);
  CHECK(page->sql ==
        "SELECT * FROM (SELECT * FROM t WHERE x = $1\n) AS cafdb_page LIMIT $2 OFFSET $3");
  CHECK(page->params == std::vector<value>{value{1}, value{int64_t{20}}, value{int64_t{40}}});
  CHECK(!page_statement(query, 0, 20));
  CHECK(!page_statement(query, 1, max_page_size + 1));
  CHECK(!page_statement(query, INT64_MAX, max_page_size)); // the offset would overflow
  CHECK(!count_statement({"SELECT 1; SELECT 2"}));
  CHECK(!count_statement({" ;; "}));
}

TEST_CASE("results are shaped alike on both engines", "[unit][operations]") {
  result_set rs;
  rs.columns = {"flag", "doc", "broken", "n"};
  rs.column_types = {"BOOLEAN", "jsonb", "JSON", ""};
  rs.rows = {{value{1}, value{R"({"a": [1, 2]})"}, value{"not json"}, value{7}}};
  auto row = row_object(rs, 0);
  CHECK(row == json{{"flag", true}, {"doc", {{"a", {1, 2}}}}, {"broken", "not json"}, {"n", 7}});
  CHECK(page_result(json::array(), 0, 1, 10).at("pages") == 0);
  CHECK(page_result(json::array(), 21, 1, 10).at("pages") == 3);
  CHECK(error_object(db_error{errc::not_found, "gone", "", ""}) ==
        json{{"error", "not_found"}, {"details", "gone"}});
}

TEST_CASE("generated keys and timestamps", "[unit][operations]") {
  std::set<std::string> seen;
  std::regex v4{"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"};
  for (int i = 0; i < 1000; ++i) {
    auto id = new_uuid();
    CHECK(std::regex_match(id, v4));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
  std::regex stamp{R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00)"};
  CHECK(std::regex_match(utc_timestamp_now(), stamp));
}

TEST_CASE("JSON deeper than json_max_depth is not parsed; brackets in strings do not count",
          "[operations]") {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  CHECK(parse_json_bounded(nested(json_max_depth)).is_array());
  CHECK(parse_json_bounded(nested(json_max_depth + 1)).is_discarded());
  CHECK(parse_json_bounded("[\"" + std::string(5000, '[') + "\"]").is_array());
  CHECK(parse_json_bounded("[\"\\\"[[\"]").is_array());
  CHECK(parse_json_bounded("not json").is_discarded());
}
