// The schema model: the JSON format, validation, dependency order and DDL per engine.
#include <nlohmann/json.hpp>

#include "schema_sql.hpp"
#include "support/fixture.hpp"
#include "support/schemas.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

schema_def must_parse(const char* text) {
  auto schema = schema_from_json(nlohmann::json::parse(text));
  INFO((schema ? std::string{"ok"} : schema.error().message));
  REQUIRE(schema);
  return std::move(*schema);
}

// The error schema_from_json gives for one table object.
db_error table_error(const std::string& table_json) {
  auto schema = schema_from_json(nlohmann::json::parse(R"({"tables": [)" + table_json + "]}"));
  REQUIRE(!schema);
  return schema.error();
}

std::vector<std::string> names_in_order(const schema_def& schema) {
  auto order = dependency_order(schema);
  REQUIRE(order);
  std::vector<std::string> out;
  for (auto table : *order)
    out.push_back(table->name);
  return out;
}

std::string all_sql(const schema_def& schema, engine_kind dialect) {
  auto order = dependency_order(schema);
  REQUIRE(order);
  std::string out;
  for (auto& stmt : create_statements(*order, dialect))
    out += stmt.sql + ";\n";
  return out;
}

bool contains(const std::string& text, const std::string& part) {
  INFO(text);
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("a JSON schema parses into tables, keys, references and the mixin", "[schema]") {
  auto schema = must_parse(full_schema_json);
  REQUIRE(schema.tables.size() == 4);
  auto users = schema.table("users");
  REQUIRE(users);
  CHECK(has_mixin(*users));
  CHECK(users->primary_key == std::vector<std::string>{"pkid"});
  CHECK(users->column("email")->type == column_type::varchar);
  CHECK(users->column("email")->length == 255);
  CHECK(users->column("email")->unique);
  CHECK(users->column("status")->default_sql == "'new'");
  auto posts = schema.table("posts");
  CHECK(posts->column("title")->length == 200);
  CHECK(posts->column("draft")->default_sql == "TRUE");
  REQUIRE(posts->foreign_keys.size() == 1);
  CHECK(posts->foreign_keys[0].ref_columns == std::vector<std::string>{"pkid"});
  CHECK(posts->foreign_keys[0].on_delete == on_delete_action::cascade);
  auto memberships = schema.table("memberships");
  CHECK(memberships->primary_key == std::vector<std::string>{"user_id", "team_id"});
  CHECK(!memberships->column("team_id")->nullable);
}

TEST_CASE("tables are ordered after the tables they reference", "[schema]") {
  auto order = names_in_order(must_parse(full_schema_json));
  auto at = [&](const std::string& name) {
    return std::find(order.begin(), order.end(), name) - order.begin();
  };
  CHECK(at("users") < at("posts"));
  CHECK(at("users") < at("memberships"));
  CHECK(at("teams") < at("memberships"));
}

TEST_CASE("a reference cycle is refused, a self-reference is not", "[schema]") {
  auto cycle = schema_from_json(nlohmann::json::parse(R"({"tables": [
    {"name": "a", "columns": [{"name": "id", "type": "integer", "primary_key": true},
                              {"name": "b_id", "type": "integer", "references": "b"}]},
    {"name": "b", "columns": [{"name": "id", "type": "integer", "primary_key": true},
                              {"name": "a_id", "type": "integer", "references": "a"}]}]})"));
  REQUIRE(!cycle);
  CHECK(cycle.error().code == errc::invalid_argument);
  CHECK(contains(cycle.error().message, "cycle"));
  must_parse(R"({"tables": [
    {"name": "node", "columns": [{"name": "id", "type": "integer", "primary_key": true},
                                 {"name": "parent", "type": "integer", "references": "node"}]}]})");
}

TEST_CASE("bad declarations are refused with the table and column named", "[schema]") {
  auto err = table_error(R"({"name": "t", "columns": [{"name": "x", "type": "money"}]})");
  CHECK(err.code == errc::invalid_argument);
  CHECK(contains(err.message, "column 'x'"));
  CHECK(contains(err.message, "unknown type 'money'"));
  err = table_error(R"({"name": "t", "columns": [{"name": "x", "type": "varchar"}]})");
  CHECK(contains(err.message, "varchar needs a length"));
  err = table_error(R"({"name": "t", "columns": [{"name": "x", "type": "text", "colour": 1}]})");
  CHECK(contains(err.message, "unknown key 'colour'"));
  err = table_error(R"({"name": "t", "columns": [{"name": "x", "type": "text",
                        "primary_key": true, "autoincrement": true}]})");
  CHECK(contains(err.message, "autoincrement needs an integer or bigint"));
  err = table_error(R"({"name": "t", "columns": [{"name": "x", "type": "integer",
                        "references": "missing"}]})");
  CHECK(contains(err.message, "must name a column"));
  err = table_error(R"({"name": "t", "columns": [{"name": "x", "type": "text"}],
                        "indexes": [{"columns": ["y"]}]})");
  CHECK(contains(err.message, "names column 'y'"));
  err = table_error(R"({"name": "t", "columns": []})");
  CHECK(contains(err.message, "has no columns"));
}

TEST_CASE("names that are not identifiers never reach SQL", "[schema][injection]") {
  for (auto name : {"users; DROP TABLE users", "x\"y", "1abc", "a b", "", "names--"}) {
    nlohmann::json table = {{"name", name}, {"columns", {{{"name", "x"}, {"type", "text"}}}}};
    auto schema = schema_from_json(nlohmann::json{{"tables", {table}}});
    REQUIRE(!schema);
    CHECK(contains(schema.error().message, "is not a valid name"));
    nlohmann::json column = {{"name", "t"}, {"columns", {{{"name", name}, {"type", "text"}}}}};
    schema = schema_from_json(nlohmann::json{{"tables", {column}}});
    REQUIRE(!schema);
    CHECK(contains(schema.error().message, "is not a valid name"));
  }
  // Built in C++ too.
  auto built = table_builder{"t"}.column("x\"; DROP TABLE t; --", column_type::text).build();
  REQUIRE(!built);
  CHECK(built.error().code == errc::invalid_argument);
}

TEST_CASE("the builder makes the same table as JSON", "[schema]") {
  auto built = table_builder{"teams"}
                   .column("id", column_type::bigint)
                   .primary_key()
                   .autoincrement()
                   .column("name", column_type::text)
                   .not_null()
                   .unique_together({"name", "id"})
                   .build();
  REQUIRE(built);
  auto parsed = must_parse(full_schema_json);
  auto& json_table = *parsed.table("teams");
  CHECK(all_sql(schema_def{{*built}}, engine_kind::postgresql) ==
        all_sql(schema_def{{json_table}}, engine_kind::postgresql));
  auto mixin = table_builder{"things"}.with_mixin().build();
  REQUIRE(mixin);
  CHECK(has_mixin(*mixin));
}

TEST_CASE("DDL uses each engine's types and key syntax", "[schema]") {
  auto schema = must_parse(full_schema_json);
  auto sqlite = all_sql(schema, engine_kind::sqlite);
  CHECK(contains(sqlite, R"("id" INTEGER PRIMARY KEY AUTOINCREMENT)"));
  CHECK(contains(sqlite, R"("cover" BLOB)"));
  CHECK(contains(sqlite, R"("age" INT CHECK (age >= 0))"));
  CHECK(contains(sqlite, R"(CREATE INDEX IF NOT EXISTS "ix_posts_author_published")"));
  auto pg = all_sql(schema, engine_kind::postgresql);
  CHECK(contains(pg, R"("id" BIGINT GENERATED BY DEFAULT AS IDENTITY)"));
  CHECK(contains(pg, R"("cover" BYTEA)"));
  CHECK(contains(pg, R"("meta" JSONB)"));
  CHECK(contains(pg, R"(PRIMARY KEY ("user_id", "team_id"))"));
  CHECK(contains(pg, R"(FOREIGN KEY ("team_id") REFERENCES "teams" ("id") ON DELETE RESTRICT)"));
  for (auto* sql : {&sqlite, &pg})
    CHECK(contains(*sql, "CREATE TABLE IF NOT EXISTS \"users\""));
}
