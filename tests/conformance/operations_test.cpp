// Conformance: the operations API (docs/operations.md) on every engine. Each operation's
// success and error paths, the mixin's maintenance, all-or-nothing batches, snapshots,
// the json_errors shape, and refused identifier injection.
#include <nlohmann/json.hpp>

#include "support/backends.hpp"

using namespace cafdb;
using namespace cafdb::test;
using json = nlohmann::json;

namespace {

constexpr const char* shop_schema_json = R"json({
  "tables": [
    {"name": "users", "mixin": true,
     "columns": [
       {"name": "email", "type": "varchar(40)", "nullable": false, "unique": true},
       {"name": "age", "type": "integer"},
       {"name": "active", "type": "boolean"},
       {"name": "profile", "type": "json"}]},
    {"name": "items",
     "columns": [
       {"name": "id", "type": "bigint", "primary_key": true, "autoincrement": true},
       {"name": "name", "type": "text", "nullable": false},
       {"name": "price", "type": "double"}]},
    {"name": "stock", "primary_key": ["shop", "item"],
     "columns": [
       {"name": "shop", "type": "text"},
       {"name": "item", "type": "bigint", "references": "items", "on_delete": "cascade"},
       {"name": "qty", "type": "integer", "nullable": false, "default": 0}]}
  ]})json";

config shop_config(config cfg) {
  auto schema = schema_from_json(json::parse(shop_schema_json));
  REQUIRE(schema);
  cfg.schema = std::move(*schema);
  return cfg;
}

template <class Backend>
struct shop : with_temp_dir, database_fixture {
  shop() : database_fixture(shop_config(Backend::make_config(dir))) { require_ready(); }

  json must(caf::expected<json> x) {
    INFO((x ? std::string{} : text(x.error())));
    REQUIRE(x);
    return std::move(*x);
  }

  /// Requires the error `code` and returns its message.
  std::string must_fail(caf::expected<json> x, errc code) {
    INFO((x ? "answered " + x->dump() : text(x.error())));
    REQUIRE(!x);
    CHECK(is(x.error(), code));
    return describe(x.error()).message;
  }

  int64_t rows(const std::string& query) {
    json n = must(cli->count({query}));
    return n.get<int64_t>();
  }

  json add_items(int n) {
    auto batch = json::array();
    for (int i = 1; i <= n; ++i)
      batch.push_back({{"name", "item" + std::string(i < 10 ? "0" : "") + std::to_string(i)},
                       {"price", i * 1.5}});
    return must(cli->create_many("items", batch));
  }
};

template <class Backend>
struct shop_json_errors : with_temp_dir, database_fixture {
  shop_json_errors() : database_fixture(make(dir)) { require_ready(); }
  static config make(const temp_dir& dir) {
    auto cfg = shop_config(Backend::make_config(dir));
    cfg.json_errors = true;
    return cfg;
  }
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEMPLATE_TEST_CASE_METHOD(shop, "create, read, update and delete a row as JSON", "[operations]",
                          sqlite_backend, pg_backend) {
  auto profile = json{{"city", "Oslo"}, {"tags", {"a", "b"}}};
  auto user = this->must(this->cli->create_one(
      "users",
      {{"email", "ada@example.com"}, {"age", 36}, {"active", true}, {"profile", profile}}));
  // The mixin: a generated UUID key and both timestamps set.
  auto pkid = user.at("pkid").template get<std::string>();
  CHECK(pkid.size() == 36);
  CHECK(pkid[14] == '4');
  CHECK(user.at("date_created").is_string());
  CHECK(user.at("email") == "ada@example.com");
  CHECK(user.at("age") == 36);
  CHECK(user.at("active") == true);     // a boolean on both engines
  CHECK(user.at("profile") == profile); // JSON in, the same JSON out

  auto read = this->must(this->cli->read_one(
      {"SELECT pkid, email, active, profile FROM users WHERE pkid = $1", {pkid}}));
  CHECK(read.at("email") == "ada@example.com");
  CHECK(read.at("active") == true);
  CHECK(read.at("profile") == profile);

  auto updated = this->must(this->cli->update_one("users", pkid, {{"age", 37}, {"active", false}}));
  CHECK(updated.at("age") == 37);
  CHECK(updated.at("active") == false);
  CHECK(updated.at("pkid") == pkid);
  // date_updated moved past date_created; date_created stayed.
  CHECK(this->rows("SELECT pkid FROM users WHERE date_updated > date_created") == 1);

  CHECK(this->must(this->cli->delete_one("users", pkid)) == json{{"deleted", 1}});
  CHECK(this->rows("SELECT * FROM users") == 0);
  CHECK(this->must(this->cli->read_one({"SELECT * FROM users"})).is_null());
}

TEMPLATE_TEST_CASE_METHOD(shop, "CRUD refuses bad input with a clear error and changes nothing",
                          "[operations]", sqlite_backend, pg_backend) {
  auto user = this->must(this->cli->create_one("users", {{"email", "bob@example.com"}}));
  auto pkid = user.at("pkid");
  std::string msg;

  // Wrong types are refused the same way on both engines (SQLite alone would store them).
  msg =
      this->must_fail(this->cli->create_one("users", {{"email", "x@example.com"}, {"age", "old"}}),
                      errc::invalid_argument);
  CHECK(contains(msg, "column 'age' of table 'users' takes an integer; got a string"));
  msg = this->must_fail(this->cli->create_one("users", {{"email", std::string(41, 'x')}}),
                        errc::invalid_argument);
  CHECK(contains(msg, "at most 40 characters"));
  msg = this->must_fail(this->cli->create_one("users", {{"email", "y@example.com"}, {"nick", 1}}),
                        errc::invalid_argument);
  CHECK(contains(msg, "has no column 'nick'"));
  this->must_fail(this->cli->create_one("users", json::array()), errc::invalid_argument);
  this->must_fail(this->cli->create_one("users", {{"email", "bob@example.com"}}),
                  errc::constraint_violation);
  CHECK(this->rows("SELECT * FROM users") == 1);

  // update_one: key immutable, mixin maintained by cafdb, unknown columns, missing rows.
  msg = this->must_fail(
      this->cli->update_one("users", pkid, {{"pkid", "0f8e9a0c-1b2c-4d3e-8f40-123456789abc"}}),
      errc::invalid_argument);
  CHECK(contains(msg, "cannot be changed"));
  msg = this->must_fail(this->cli->update_one("users", pkid, {{"date_created", "2020-01-01"}}),
                        errc::invalid_argument);
  CHECK(contains(msg, "maintained by cafdb"));
  this->must_fail(this->cli->update_one("users", pkid, {{"nick", "b"}}), errc::invalid_argument);
  this->must_fail(this->cli->update_one("users", pkid, json::object()), errc::invalid_argument);
  msg = this->must_fail(
      this->cli->update_one("users", "0f8e9a0c-1b2c-4d3e-8f40-123456789abc", {{"age", 1}}),
      errc::not_found);
  CHECK(contains(msg, "no row of table 'users'"));
  this->must_fail(this->cli->update_one("users", "not-a-uuid", {{"age", 1}}),
                  errc::invalid_argument);
  CHECK(this->must(this->cli->read_one({"SELECT age FROM users"})).at("age").is_null());

  // delete_one of a row that is not there.
  this->must_fail(this->cli->delete_one("users", "0f8e9a0c-1b2c-4d3e-8f40-123456789abc"),
                  errc::not_found);
  CHECK(this->rows("SELECT * FROM users") == 1);
}

TEMPLATE_TEST_CASE_METHOD(shop, "create_many, delete_many and composite keys", "[operations]",
                          sqlite_backend, pg_backend) {
  auto items = this->add_items(3);
  REQUIRE(items.size() == 3);
  auto first = items[0].at("id").template get<int64_t>();
  CHECK(items[1].at("id").template get<int64_t>() > first); // assigned by the database
  CHECK(items[2].at("name") == "item03");

  // All-or-nothing: the second row breaks NOT NULL, the first is not kept either.
  this->must_fail(this->cli->create_many("items", json::array({{{"name", "ok"}}, {{"price", 1}}})),
                  errc::constraint_violation);
  CHECK(this->rows("SELECT * FROM items") == 3);
  CHECK(this->must(this->cli->create_many("items", json::array())) == json::array());
  this->must_fail(this->cli->create_many("items", {{"name", "x"}}), errc::invalid_argument);

  // Composite keys are objects; a bare value is refused.
  this->must(
      this->cli->create_many("stock", json::array({{{"shop", "north"}, {"item", first}, {"qty", 5}},
                                                   {{"shop", "south"}, {"item", first}}})));
  auto north = json{{"shop", "north"}, {"item", first}};
  CHECK(this->must(this->cli->update_one("stock", north, {{"qty", 7}})).at("qty") == 7);
  auto msg = this->must_fail(this->cli->update_one("stock", "north", {{"qty", 1}}),
                             errc::invalid_argument);
  CHECK(contains(msg, "composite primary key"));
  this->must_fail(this->cli->delete_one("stock", json{{"shop", "north"}}), errc::invalid_argument);

  auto deleted = this->must(this->cli->delete_many(
      "stock",
      json::array(
          {north, {{"shop", "south"}, {"item", first}}, {{"shop", "west"}, {"item", first}}})));
  CHECK(deleted == json{{"deleted", 2}}); // the missing key is not an error
  deleted =
      this->must(this->cli->delete_many("items", json::array({first, items[1].at("id"), 999999})));
  CHECK(deleted == json{{"deleted", 2}});
  CHECK(this->rows("SELECT * FROM items") == 1);
  CHECK(this->must(this->cli->delete_many("items", json::array())) == json{{"deleted", 0}});
  this->must_fail(this->cli->delete_many("items", 5), errc::invalid_argument);
}

TEMPLATE_TEST_CASE_METHOD(shop, "upsert inserts, then updates on the key or a unique column",
                          "[operations]", sqlite_backend, pg_backend) {
  auto row =
      this->must(this->cli->upsert("users", {{"email", "cy@example.com"}, {"age", 20}}, {"email"}));
  auto pkid = row.at("pkid");
  auto created = this->must(this->cli->read_one(
      {"SELECT date_created FROM users WHERE pkid = $1", {pkid.template get<std::string>()}}));
  auto again =
      this->must(this->cli->upsert("users", {{"email", "cy@example.com"}, {"age", 21}}, {"email"}));
  CHECK(again.at("pkid") == pkid); // the stored key, not the newly generated one
  CHECK(again.at("age") == 21);
  CHECK(again.at("date_created") == created.at("date_created"));
  CHECK(this->rows("SELECT * FROM users") == 1);
  // Only the conflict column given: the stored row comes back unchanged.
  CHECK(
      this->must(this->cli->upsert("users", {{"email", "cy@example.com"}}, {"email"})).at("age") ==
      21);

  // On the primary key (the default target).
  auto item = this->add_items(1)[0];
  auto id = item.at("id");
  auto changed = this->must(this->cli->upsert("items", {{"id", id}, {"name", "renamed"}}));
  CHECK(changed.at("name") == "renamed");
  CHECK(changed.at("price") == item.at("price"));
  auto fresh = this->must(this->cli->upsert("items", {{"id", 4242}, {"name", "new"}}));
  CHECK(fresh.at("id") == 4242);
  CHECK(this->rows("SELECT * FROM items") == 2);

  auto msg = this->must_fail(this->cli->upsert("users", {{"email", "d@e.f"}, {"age", 1}}, {"age"}),
                             errc::invalid_argument);
  CHECK(contains(msg, "primary key or unique"));
  this->must_fail(this->cli->upsert("items", {{"name", "no key"}}), errc::invalid_argument);
}

TEMPLATE_TEST_CASE_METHOD(shop, "count, paginate and the read queries", "[operations]",
                          sqlite_backend, pg_backend) {
  this->add_items(25);
  CHECK(this->rows("SELECT * FROM items;") == 25);
  CHECK(this->must(this->cli->count({"SELECT * FROM items WHERE price > $1", {30.0}})) == 5);

  statement ordered{"SELECT id, name FROM items ORDER BY name"};
  auto page = this->must(this->cli->paginate(ordered, 2, 10));
  CHECK(page.at("total") == 25);
  CHECK(page.at("page") == 2);
  CHECK(page.at("page_size") == 10);
  CHECK(page.at("pages") == 3);
  REQUIRE(page.at("items").size() == 10);
  CHECK(page.at("items")[0].at("name") == "item11");
  CHECK(this->must(this->cli->paginate(ordered, 3, 10)).at("items").size() == 5);
  CHECK(this->must(this->cli->paginate(ordered, 4, 10)).at("items").empty());
  auto filtered = this->must(
      this->cli->paginate({"SELECT name FROM items WHERE price > $1 ORDER BY name", {30.0}}, 1, 2));
  CHECK(filtered.at("total") == 5);
  CHECK(filtered.at("pages") == 3);
  CHECK(filtered.at("items")[0].at("name") == "item21");
  auto msg = this->must_fail(this->cli->paginate(ordered, 0, 10), errc::invalid_argument);
  CHECK(contains(msg, "page starts at 1"));
  this->must_fail(this->cli->paginate(ordered, 1, 0), errc::invalid_argument);
  this->must_fail(this->cli->paginate(ordered, 1, 10001), errc::invalid_argument);
  this->must_fail(this->cli->count({"SELECT 1; DELETE FROM items"}), errc::invalid_argument);
  CHECK(this->rows("SELECT * FROM items") == 25);

  auto cheap = this->must(
      this->cli->read_query({"SELECT name, price FROM items WHERE price < $1 ORDER BY id", {4.0}}));
  CHECK(cheap ==
        json::array({{{"name", "item01"}, {"price", 1.5}}, {{"name", "item02"}, {"price", 3.0}}}));
  CHECK(this->must(this->cli->read_one(
                       {"SELECT name FROM items WHERE price > $1 ORDER BY id", {30.0}}))
            .at("name") == "item21");
  this->must_fail(this->cli->read_query({"SELEC nothing"}), errc::syntax_error);

  auto both =
      this->must(this->cli->read_multi({{"cheap", {"SELECT name FROM items WHERE price < 2"}},
                                        {"total", {"SELECT COUNT(*) AS n FROM items"}}}));
  CHECK(both.at("cheap").size() == 1);
  CHECK(both.at("total")[0].at("n") == 25);
  this->must_fail(this->cli->read_multi({{"a", {"SELECT 1"}}, {"a", {"SELECT 2"}}}),
                  errc::invalid_argument);
  this->must_fail(this->cli->read_multi({}), errc::invalid_argument);
}

TEMPLATE_TEST_CASE_METHOD(shop, "execute_one and execute_many", "[operations]", sqlite_backend,
                          pg_backend) {
  this->add_items(3);
  auto changed = this->must(this->cli->execute_one({"UPDATE items SET price = price * 2"}));
  CHECK(changed.at("rowcount") == 3);
  CHECK(changed.at("rows").empty());
  auto inserted = this->must(this->cli->execute_one(
      {"INSERT INTO items (name, price) VALUES ($1, $2) RETURNING id, name", {"extra", 9.5}}));
  CHECK(inserted.at("rowcount") == 1);
  REQUIRE(inserted.at("rows").size() == 1);
  CHECK(inserted.at("rows")[0].at("name") == "extra");
  if (TestType::has_last_insert_id)
    CHECK(inserted.at("last_insert_id") == inserted.at("rows")[0].at("id"));

  auto many =
      this->must(this->cli->execute_many({{"UPDATE items SET price = 0 WHERE name = $1", {"extra"}},
                                          {"DELETE FROM items WHERE price = 0"}}));
  REQUIRE(many.size() == 2);
  CHECK(many[0].at("rowcount") == 1);
  CHECK(many[1].at("rowcount") == 1);
  // All-or-nothing: the second statement fails, the first is rolled back.
  this->must_fail(
      this->cli->execute_many({{"DELETE FROM items"}, {"INSERT INTO nowhere VALUES (1)"}}),
      errc::syntax_error);
  CHECK(this->rows("SELECT * FROM items") == 3);
  this->must_fail(this->cli->execute_many({}), errc::invalid_argument);
}

TEMPLATE_TEST_CASE_METHOD(shop, "identifier injection through operations is refused",
                          "[operations][injection]", sqlite_backend, pg_backend) {
  this->add_items(1);
  auto msg = this->must_fail(this->cli->create_one("items; DROP TABLE items; --", {{"name", "x"}}),
                             errc::not_found);
  CHECK(contains(msg, "there is no table"));
  this->must_fail(this->cli->delete_many("items\" WHERE 1=1; --", json::array({1})),
                  errc::not_found);
  this->must_fail(this->cli->create_one("ITEMS", {{"name", "x"}}), errc::not_found);
  this->must_fail(
      this->cli->create_one("items", {{"name\") VALUES ('x'); DROP TABLE items; --", 1}}),
      errc::invalid_argument);
  this->must_fail(this->cli->update_one("items", 1, {{"name\" = 'x', \"price", 1}}),
                  errc::invalid_argument);
  this->must_fail(this->cli->upsert("items", {{"id", 1}, {"name", "x"}},
                                    {"id) DO NOTHING; DROP TABLE items; --"}),
                  errc::invalid_argument);
  // Values are always bound: SQL in a value is just text.
  auto row = this->must(this->cli->create_one("items", {{"name", "x'); DROP TABLE items; --"}}));
  CHECK(row.at("name") == "x'); DROP TABLE items; --");
  CHECK(this->rows("SELECT * FROM items") == 2);
}

TEMPLATE_TEST_CASE_METHOD(shop, "tables and columns created after start-up are found",
                          "[operations]", sqlite_backend, pg_backend) {
  this->add_items(1); // the operations actor has read the catalog by now
  this->must(this->cli->execute_one({"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"}));
  auto note = this->must(this->cli->create_one("notes", {{"id", 1}, {"body", "hi"}}));
  CHECK(note.at("body") == "hi");
  this->must(this->cli->execute_one({"ALTER TABLE notes ADD COLUMN tag TEXT"}));
  CHECK(this->must(this->cli->update_one("notes", 1, {{"tag", "t"}})).at("tag") == "t");
  // drop_all through the database forgets the old catalog: the tables are gone.
  REQUIRE(!this->cli->drop_all());
  this->must_fail(this->cli->create_one("items", {{"name", "x"}}), errc::not_found);
}

TEMPLATE_TEST_CASE_METHOD(shop_json_errors,
                          "json_errors answers {error, details}; actors send op_atom",
                          "[operations]", sqlite_backend, pg_backend) {
  auto missing =
      this->cli->update_one("users", "0f8e9a0c-1b2c-4d3e-8f40-123456789abc", {{"age", 1}});
  REQUIRE(missing);
  CHECK(missing->at("error") == "not_found");
  CHECK(contains(missing->at("details").template get<std::string>(), "no row of table 'users'"));
  auto bad_page = this->cli->paginate({"SELECT * FROM items"}, 0, 10);
  REQUIRE(bad_page);
  CHECK(bad_page->at("error") == "invalid_argument");
  auto bad_sql = this->cli->read_query({"SELEC nothing"});
  REQUIRE(bad_sql);
  CHECK(*bad_sql == json({{"error", "syntax_error"}, {"details", bad_sql->at("details")}}));

  // The message form, as an actor sends it: the answer is JSON text.
  caf::scoped_actor self{this->sys};
  operation op;
  op.kind = op_kind::create_one;
  op.table = "items";
  op.data = R"({"name": "sent", "price": 2.5})";
  std::string answer;
  self->request(this->db, std::chrono::seconds(10), op_atom::value, op)
      .receive([&](std::string& text) { answer = text; },
               [&](caf::error& err) { FAIL(cafdb::test::text(err)); });
  auto row = json::parse(answer);
  CHECK(row.at("name") == "sent");
  CHECK(row.at("price") == 2.5);
}
