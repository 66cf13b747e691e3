// cafdb crud: every operation of the operations API once, with what it answers.
// Tables come from the JSON schema file; rows go in and come out as JSON.
//
//   crud [database-url] [schema.json]
//   (defaults: sqlite:///crud.db, examples/shop_schema.json)
#include <iostream>

#include "cafdb/database.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

int step_no = 0;

// Prints one operation and its answer; stops the example if it failed unexpectedly.
json show(const std::string& what, caf::expected<json> answer) {
  std::cout << "\n== " << ++step_no << ". " << what << "\n";
  if (!answer) {
    std::cerr << "   failed: " << cafdb::render(answer.error()) << "\n";
    std::exit(1);
  }
  std::cout << answer->dump(2) << "\n";
  return std::move(*answer);
}

// Prints an operation that is meant to fail, and its typed error.
void show_error(const std::string& what, caf::expected<json> answer) {
  std::cout << "\n== " << ++step_no << ". " << what << "\n";
  if (answer) {
    std::cerr << "   unexpectedly answered " << answer->dump() << "\n";
    std::exit(1);
  }
  std::cout << "   " << cafdb::render(answer.error()) << "\n";
}

} // namespace

int main(int argc, char** argv) {
  std::string url = argc > 1 ? argv[1] : "sqlite:///crud.db";
  std::string schema_file = argc > 2 ? argv[2] : CAFDB_EXAMPLE_SCHEMA;
  auto parsed = cafdb::config_from_url(url);
  if (!parsed) {
    std::cerr << parsed.error().message << "\n";
    return 1;
  }
  auto cfg = *parsed;
  if (auto applied = cafdb::apply_option(cfg, "schema_file", schema_file); !applied) {
    std::cerr << applied.error().message << "\n";
    return 1;
  }
  cafdb::runtime rt{cfg};
  auto& db = rt.client();
  if (auto ready = db.await_ready(30s); !ready) {
    std::cerr << "not ready: " << cafdb::render(ready.error()) << "\n";
    return 1;
  }
  // Start from empty tables, so every run prints the same story.
  if (auto err = db.drop_all(); err || (err = db.create_all())) {
    std::cerr << "reset failed: " << cafdb::render(err) << "\n";
    return 1;
  }

  auto ada = show("create_one: a customer (the mixin fills pkid, date_created, date_updated)",
                  db.create_one("customers", {{"email", "ada@example.com"},
                                              {"name", "Ada"},
                                              {"preferences", {{"newsletter", true}}}}));
  auto ada_key = ada.at("pkid");

  show("create_many: three products in one transaction (ids assigned by the database)",
       db.create_many("products",
                      json::array({{{"sku", "TEA-1"}, {"title", "Green tea"}, {"price", 4.5}},
                                   {{"sku", "TEA-2"}, {"title", "Black tea"}, {"price", 3.9}},
                                   {{"sku", "MUG-1"}, {"title", "Mug"}, {"price", 12.0}}})));

  show("update_one: by primary key; date_updated moves",
       db.update_one("customers", ada_key, {{"vip", true}}));

  show("upsert: on the unique sku, an existing product is updated",
       db.upsert("products", {{"sku", "TEA-2"}, {"title", "Black tea"}, {"price", 4.2}}, {"sku"}));

  show("upsert: a new sku is inserted",
       db.upsert("products", {{"sku", "POT-1"}, {"title", "Tea pot"}, {"price", 25.0}}, {"sku"}));

  auto order = show("execute_one: any statement; RETURNING rows come back",
                    db.execute_one({"INSERT INTO orders (customer) VALUES ($1) RETURNING id",
                                    {ada_key.get<std::string>()}}));
  auto order_id = order.at("rows")[0].at("id").get<int64_t>();

  show("execute_many: statements in one transaction, all-or-nothing",
       db.execute_many(
           {{"INSERT INTO order_lines (order_id, product, quantity) VALUES ($1, 1, 2)", {order_id}},
            {"INSERT INTO order_lines (order_id, product, quantity) VALUES ($1, 3, 1)",
             {order_id}}}));

  show("count: rows of a query", db.count({"SELECT * FROM products WHERE price < $1", {10.0}}));

  show("paginate: page 2 of the products, 2 a page",
       db.paginate({"SELECT sku, title, price FROM products ORDER BY sku"}, 2, 2));

  show("read_one: the first row, or null",
       db.read_one({"SELECT email, vip, preferences FROM customers WHERE email = $1",
                    {"ada@example.com"}}));

  show("read_query: every row",
       db.read_query({"SELECT p.title, l.quantity FROM order_lines l JOIN products p "
                      "ON p.id = l.product WHERE l.order_id = $1 ORDER BY p.title",
                      {order_id}}));

  show("read_multi: several queries in one snapshot",
       db.read_multi({{"customers", {"SELECT COUNT(*) AS n FROM customers"}},
                      {"lines", {"SELECT COUNT(*) AS n FROM order_lines"}}}));

  show("delete_one: by a composite key",
       db.delete_one("order_lines", {{"order_id", order_id}, {"product", 3}}));

  show("delete_many: by a list of keys (a missing key is not an error)",
       db.delete_many("products", json::array({2, 5, 99})));

  show_error("update_one of a row that is not there",
             db.update_one("customers", "00000000-0000-4000-8000-000000000000", {{"vip", false}}));
  show_error("create_one with a value of the wrong type",
             db.create_one("products", {{"sku", "X"}, {"title", "X"}, {"price", "free"}}));
  show_error("a table name that is not in the schema",
             db.create_one("products; DROP TABLE products", {{"sku", "X"}}));
  show_error("paginate with page 0", db.paginate({"SELECT * FROM products"}, 0, 10));

  // The same errors as JSON, the shape Python helpers return: config option json_errors.
  rt.stop();
  cfg.json_errors = true;
  cafdb::runtime json_rt{cfg};
  show("with json_errors: errors are answered as {\"error\", \"details\"}",
       json_rt.client().update_one("customers", "00000000-0000-4000-8000-000000000000",
                                   {{"vip", false}}));
  return 0;
}
