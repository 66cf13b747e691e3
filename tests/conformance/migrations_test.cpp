// Conformance: versioned migrations on every engine. Each file is applied once, in
// version order, in its own transaction; a failed one leaves the version where it was
// and the database failed with the reason; on PostgreSQL, databases starting together
// apply each migration exactly once.
#include <filesystem>
#include <fstream>

#include <spawn.h>
#include <sys/wait.h>

#include "support/backends.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

template <class Backend>
struct with_migrations : with_temp_dir {
  with_migrations() {
    cfg = Backend::make_config(dir);
    cfg.migrations_dir = dir.file("migrations");
    std::filesystem::create_directory(cfg.migrations_dir);
    write("001_accounts.sql", "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT);\n"
                              "CREATE INDEX ix_accounts_owner ON accounts (owner);\n");
    // Not idempotent on purpose: a second run would add a second row.
    write("002_seed.sql", "INSERT INTO accounts (id, owner) VALUES (1, 'alice');");
    write("README.txt", "not a migration");
  }
  void write(const std::string& name, const std::string& sql) {
    std::ofstream out{cfg.migrations_dir + "/" + name};
    out << sql;
    REQUIRE(out.good());
  }
  std::string schema_detail(database_fixture& fx) {
    auto report = fx.cli->status();
    REQUIRE(report);
    for (auto& ev : report->components)
      if (ev.component == "schema")
        return to_string(ev.state) + ": " + ev.detail;
    return "no schema component";
  }
  config cfg;
};

} // namespace

TEMPLATE_TEST_CASE_METHOD(with_migrations, "migrations apply once, in order, and record versions",
                          "[migrations]", sqlite_backend, pg_backend) {
  {
    database_fixture fx{this->cfg};
    fx.require_ready();
    CHECK(this->schema_detail(fx).find("ready: version 2") == 0);
    auto versions = fx.must_exec({"SELECT version, name FROM cafdb_schema_version ORDER BY 1"});
    REQUIRE(versions.rows.size() == 2);
    CHECK(versions.rows[1].at(1).as_text() == "seed");
    CHECK(fx.count("accounts") == 1);
  }
  // A restart re-runs nothing; a new file is applied on top.
  this->write("003_more.sql", "INSERT INTO accounts (id, owner) VALUES (2, 'bob');");
  database_fixture again{this->cfg};
  again.require_ready();
  CHECK(this->schema_detail(again).find("ready: version 3") == 0);
  CHECK(again.count("accounts") == 2);
  CHECK(again.count("cafdb_schema_version") == 3);
}

TEMPLATE_TEST_CASE_METHOD(with_migrations,
                          "a failed migration is rolled back, keeps the version, fails start-up",
                          "[migrations]", sqlite_backend, pg_backend) {
  this->write("003_broken.sql", "CREATE TABLE half (x INTEGER);\nSELEC nonsense;");
  database_fixture fx{this->cfg};
  auto ready = fx.cli->await_ready(20s);
  REQUIRE(!ready);
  auto message = describe(ready.error()).message;
  INFO(message);
  CHECK(message.find("migration 3 (broken) failed and was rolled back; the schema stays at "
                     "version 2") != std::string::npos);
  CHECK(this->schema_detail(fx).find("failed: migration 3") == 0);
  // The earlier migrations stay; nothing of the broken one does.
  auto cfg = this->cfg;
  cfg.migrations_dir.clear();
  database_fixture plain{cfg};
  plain.require_ready();
  CHECK(plain.count("cafdb_schema_version") == 2);
  auto half = plain.cli->exec({"SELECT count(*) FROM half"});
  CHECK(!half);
}

TEST_CASE("databases starting together apply each PostgreSQL migration once", "[migrations][pg]") {
  with_migrations<pg_backend> setup;
  for (int i = 3; i < 10; ++i)
    setup.write("00" + std::to_string(i) + "_row.sql",
                "INSERT INTO accounts (id, owner) VALUES (" + std::to_string(i) + ", 'x');");
  // Four runtimes against one server: the same race as four processes.
  std::vector<std::unique_ptr<database_fixture>> runtimes;
  for (int i = 0; i < 4; ++i)
    runtimes.push_back(std::make_unique<database_fixture>(setup.cfg));
  for (auto& fx : runtimes)
    fx->require_ready();
  CHECK(runtimes[0]->count("cafdb_schema_version") == 9);
  CHECK(runtimes[0]->count("accounts") == 8); // 002 plus 003..009, each once
}

// Run by the next test in child processes: starts a database from CAFDB_CHILD_URL with the
// migrations in CAFDB_CHILD_MIGRATIONS and exits once it is ready. Hidden ("[.]").
TEST_CASE("child process: start a database with migrations", "[.][child]") {
  auto url = std::getenv("CAFDB_CHILD_URL");
  auto dir = std::getenv("CAFDB_CHILD_MIGRATIONS");
  REQUIRE(url);
  REQUIRE(dir);
  auto cfg = must_config(url);
  cfg.migrations_dir = dir;
  cfg.log_level = "off";
  database_fixture fx{cfg};
  fx.require_ready();
}

TEST_CASE("two processes starting together apply each PostgreSQL migration once",
          "[migrations][pg]") {
  with_migrations<pg_backend> setup;
  for (int i = 3; i < 10; ++i)
    setup.write("00" + std::to_string(i) + "_row.sql",
                "INSERT INTO accounts (id, owner) VALUES (" + std::to_string(i) + ", 'x');");
  // The children inherit the environment plus their two variables.
  std::vector<std::string> env_text{"CAFDB_CHILD_URL=" + setup.cfg.url,
                                    "CAFDB_CHILD_MIGRATIONS=" + setup.cfg.migrations_dir};
  std::vector<char*> envp;
  for (auto& var : env_text)
    envp.push_back(var.data());
  for (char** var = environ; *var; ++var)
    envp.push_back(*var);
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe", name = "child process: start a database with migrations";
  std::vector<char*> argv{self.data(), name.data(), nullptr};
  std::vector<pid_t> children;
  for (int i = 0; i < 2; ++i) {
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), envp.data()) == 0);
    children.push_back(pid);
  }
  for (auto pid : children) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  // Without migrations of its own: what it finds, the children applied.
  auto reader = setup.cfg;
  reader.migrations_dir.clear();
  database_fixture fx{reader};
  fx.require_ready();
  CHECK(fx.count("cafdb_schema_version") == 9);
  CHECK(fx.count("accounts") == 8); // 002 plus 003..009, each once
}
