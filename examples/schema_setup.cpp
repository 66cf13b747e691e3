// cafdb schema_setup: declare tables in a JSON schema file, start, watch the schema
// and the database become ready, and print the schema read back from the live catalog.
//
//   schema_setup [schema.json] [database-url]
//   (defaults: examples/shop_schema.json, sqlite:///schema_setup.db)
#include <iostream>

#include "cafdb/database.hpp"

using namespace std::chrono_literals;

namespace {

template <class T>
T must(caf::expected<T> x, const char* what) {
  if (!x) {
    std::cerr << what << " failed: " << cafdb::render(x.error()) << "\n";
    std::exit(1);
  }
  return std::move(*x);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (auto& name : names)
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

void print_table(const cafdb::table_def& table) {
  std::cout << "\n  " << table.name << "  (primary key: " << join(table.primary_key) << ")\n";
  for (auto& col : table.columns) {
    std::cout << "    " << col.name << "  " << cafdb::to_string(col.type) << " [" << col.sql_type
              << "]" << (col.nullable ? "" : " not null") << (col.primary_key ? " pk" : "")
              << (col.unique ? " unique" : "") << (col.autoincrement ? " autoincrement" : "")
              << (col.default_sql.empty() ? "" : " default " + col.default_sql) << "\n";
  }
  for (auto& group : table.unique)
    std::cout << "    unique (" << join(group) << ")\n";
  for (auto& fk : table.foreign_keys)
    std::cout << "    foreign key (" << join(fk.columns) << ") -> " << fk.ref_table << " ("
              << join(fk.ref_columns) << ") on delete " << cafdb::to_string(fk.on_delete) << "\n";
  for (auto& index : table.indexes)
    std::cout << "    " << (index.unique ? "unique index " : "index ") << index.name << " ("
              << join(index.columns) << ")\n";
}

} // namespace

int main(int argc, char** argv) {
  std::string schema_file = argc > 1 ? argv[1] : CAFDB_EXAMPLE_SCHEMA;
  std::string url = argc > 2 ? argv[2] : "sqlite:///schema_setup.db";

  // 1. The config: a URL plus the schema file (as CAFDB_SCHEMA_FILE would set it).
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
  std::cout << "schema file " << schema_file << ": " << cfg.schema.tables.size()
            << " table(s) declared\n";

  // 2. Start. The runtime returns at once; setup connects, runs create_all and reflects.
  cafdb::runtime rt{cfg};
  caf::scoped_actor watcher{rt.system()};
  auto first = must(rt.client().subscribe(caf::actor_cast<caf::actor>(watcher)), "subscribe");
  std::cout << "\nreadiness (database " << cafdb::to_string(first.state)
            << " when we subscribed):\n";
  auto ready = first.state == cafdb::readiness_state::ready;
  while (!ready) {
    bool timed_out = false;
    watcher->receive(
        [&](cafdb::readiness_event& ev) {
          std::cout << "  " << ev.component << ": " << cafdb::to_string(ev.state)
                    << (ev.detail.empty() ? "" : " (" + ev.detail + ")") << "\n";
          if (ev.component == "database")
            ready = ev.state == cafdb::readiness_state::ready;
          if (ev.component == "database" && ev.state == cafdb::readiness_state::failed)
            std::exit(1);
        },
        caf::after(30s) >> [&] { timed_out = true; });
    if (timed_out) {
      std::cerr << "the database did not become ready in 30 s\n";
      return 1;
    }
  }

  // 3. The live schema, read from the catalog: what create_all made.
  auto live = must(rt.client().reflect(), "reflect");
  std::cout << "\nreflected schema: " << live.tables.size() << " table(s)\n";
  for (auto& table : live.tables)
    print_table(table);

  // 4. create_all is idempotent: running it again changes nothing.
  if (auto err = rt.client().create_all()) {
    std::cerr << "create_all failed: " << cafdb::render(err) << "\n";
    return 1;
  }
  auto again = must(rt.client().reflect(), "reflect");
  std::cout << "\ncreate_all again: still " << again.tables.size() << " table(s)\n";
  return 0;
}
