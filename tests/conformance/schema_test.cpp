// Conformance: declared schemas on every engine. Start-up creates the tables and
// publishes `schema` ready before the database is ready; reflect reads back what
// create_all made; create_all is idempotent and all-or-nothing; drop_all undoes it.
#include <nlohmann/json.hpp>

#include "support/backends.hpp"
#include "support/schemas.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

schema_def full_schema() {
  auto schema = schema_from_json(nlohmann::json::parse(full_schema_json));
  REQUIRE(schema);
  return std::move(*schema);
}

template <class Backend>
struct declared_schema : with_temp_dir, database_fixture {
  declared_schema() : database_fixture(make(dir)) {}
  static config make(const temp_dir& dir) {
    auto cfg = Backend::make_config(dir);
    cfg.schema = full_schema();
    return cfg;
  }
};

template <class Backend>
struct fresh_dir : with_temp_dir {};

void require_ok(const caf::error& err) {
  INFO(text(err));
  REQUIRE(!err);
}

// The parts of a column that must survive create_all -> reflect on every engine.
void check_column(const table_def& declared, const column_def& want, const column_def& got) {
  INFO(declared.name << "." << want.name << " reflected as " << got.sql_type);
  CHECK(got.type == want.type);
  if (want.type == column_type::varchar)
    CHECK(got.length == want.length);
  CHECK(got.nullable == want.nullable);
  CHECK(got.primary_key == want.primary_key);
  CHECK(got.unique == want.unique);
  CHECK(got.autoincrement == want.autoincrement);
  CHECK(got.default_sql.empty() == want.default_sql.empty());
}

} // namespace

TEMPLATE_TEST_CASE_METHOD(declared_schema, "reflect reads back what create_all made", "[schema]",
                          sqlite_backend, pg_backend) {
  this->require_ready();
  auto live = this->cli->reflect();
  INFO((live ? std::string{"ok"} : text(live.error())));
  REQUIRE(live);
  auto declared = full_schema();
  REQUIRE(live->tables.size() == declared.tables.size());
  for (auto& want : declared.tables) {
    auto got = live->table(want.name);
    INFO(want.name);
    REQUIRE(got);
    REQUIRE(got->columns.size() == want.columns.size());
    for (size_t i = 0; i < want.columns.size(); ++i) {
      CHECK(got->columns[i].name == want.columns[i].name);
      check_column(want, want.columns[i], got->columns[i]);
    }
    CHECK(got->primary_key == want.primary_key);
    CHECK(got->unique == want.unique);
    REQUIRE(got->foreign_keys.size() == want.foreign_keys.size());
    for (auto& fk : want.foreign_keys) {
      auto match = std::find_if(got->foreign_keys.begin(), got->foreign_keys.end(),
                                [&](const foreign_key_def& x) { return x.columns == fk.columns; });
      REQUIRE(match != got->foreign_keys.end());
      CHECK(match->ref_table == fk.ref_table);
      CHECK(match->ref_columns == fk.ref_columns);
      CHECK(match->on_delete == fk.on_delete);
    }
    CHECK(got->indexes.size() == want.indexes.size());
  }
}

TEMPLATE_TEST_CASE_METHOD(declared_schema, "create_all twice changes nothing", "[schema]",
                          sqlite_backend, pg_backend) {
  this->require_ready();
  this->must_exec({"INSERT INTO teams (name) VALUES ($1)", {"red"}});
  auto before = this->cli->reflect();
  REQUIRE(before);
  require_ok(this->cli->create_all());
  require_ok(this->cli->create_all());
  auto after = this->cli->reflect();
  REQUIRE(after);
  nlohmann::json a = *before;
  nlohmann::json b = *after;
  CHECK(a == b);
  CHECK(this->count("teams") == 1);
}

TEMPLATE_TEST_CASE_METHOD(declared_schema, "drop_all removes the declared tables only", "[schema]",
                          sqlite_backend, pg_backend) {
  this->require_ready();
  this->must_exec({"CREATE TABLE unrelated (x INTEGER)"});
  require_ok(this->cli->drop_all());
  auto live = this->cli->reflect();
  REQUIRE(live);
  REQUIRE(live->tables.size() == 1);
  CHECK(live->tables[0].name == "unrelated");
  // And back again.
  require_ok(this->cli->create_all());
  live = this->cli->reflect();
  REQUIRE(live);
  CHECK(live->tables.size() == 5);
}

TEMPLATE_TEST_CASE_METHOD(fresh_dir, "the schema is ready before the database is", "[schema]",
                          sqlite_backend, pg_backend) {
  auto cfg = TestType::make_config(this->dir);
  cfg.schema = full_schema();
  database_fixture fx{cfg};
  caf::scoped_actor subscriber{fx.sys};
  auto first = fx.cli->subscribe(caf::actor_cast<caf::actor>(subscriber));
  REQUIRE(first);
  std::vector<std::string> seen; // "component:state", in arrival order
  bool ready = first->state == readiness_state::ready;
  while (!ready) {
    bool timed_out = false;
    subscriber->receive(
        [&](readiness_event& ev) {
          seen.push_back(ev.component + ":" + to_string(ev.state));
          ready = ev.component == "database" && ev.state == readiness_state::ready;
        },
        caf::after(std::chrono::seconds(10)) >> [&] { timed_out = true; });
    REQUIRE(!timed_out);
  }
  auto schema_ready = std::find(seen.begin(), seen.end(), "schema:ready");
  INFO(nlohmann::json(seen).dump());
  // Either seen before the database's ready, or already in the first snapshot.
  bool in_snapshot = false;
  for (auto& ev : first->components)
    in_snapshot = in_snapshot || (ev.component == "schema" && ev.state == readiness_state::ready);
  CHECK((schema_ready != seen.end() || in_snapshot));
  CHECK(std::find(seen.begin(), seen.end(), "database:migrating") != seen.end());
  auto report = fx.cli->status();
  REQUIRE(report);
  bool listed = false;
  for (auto& ev : report->components)
    listed = listed || (ev.component == "schema" && ev.state == readiness_state::ready);
  CHECK(listed);
}

TEMPLATE_TEST_CASE_METHOD(fresh_dir, "a failing create_all leaves nothing and fails start-up",
                          "[schema]", sqlite_backend, pg_backend) {
  auto cfg = TestType::make_config(this->dir);
  cfg.schema = full_schema();
  // The last table in dependency order has a CHECK that cannot compile.
  auto broken = table_builder{"zz_broken"}
                    .column("x", column_type::integer)
                    .check("no_such_column > 0")
                    .build();
  REQUIRE(broken);
  cfg.schema.tables.push_back(*broken);
  database_fixture fx{cfg};
  auto ready = fx.cli->await_ready(10s);
  REQUIRE(!ready);
  INFO(text(ready.error()));
  CHECK(describe(ready.error()).message.find("create_all failed, nothing was changed") !=
        std::string::npos);
  // Nothing was created: a plain database on the same storage shows no tables.
  cfg.schema = {};
  database_fixture plain{cfg};
  plain.require_ready();
  auto live = plain.cli->reflect();
  REQUIRE(live);
  CHECK(live->tables.empty());
}

TEMPLATE_TEST_CASE_METHOD(declared_schema, "create_all refuses names that are not identifiers",
                          "[schema][injection]", sqlite_backend, pg_backend) {
  this->require_ready();
  table_def evil;
  evil.name = "t\"; DROP TABLE users; --";
  evil.columns.push_back(column_def{});
  evil.columns.back().name = "x";
  auto err = this->cli->create_all(schema_def{{evil}});
  CHECK(is(err, errc::invalid_argument));
  CHECK(describe(err).message.find("is not a valid name") != std::string::npos);
  CHECK(this->count("users") == 0); // still there
}
