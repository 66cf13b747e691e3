#include "support/fixture.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace cafdb::test {

temp_dir::temp_dir() {
  char pattern[] = "/tmp/cafdb-test-XXXXXX";
  auto made = mkdtemp(pattern);
  REQUIRE(made != nullptr);
  path = made;
}

temp_dir::~temp_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

database_fixture::database_fixture(config cfg) {
  db = spawn_database(sys, std::move(cfg));
  cli = std::make_unique<client>(sys, db, 30s);
}

database_fixture::database_fixture(config cfg, size_t workers) : sys_cfg(workers) {
  db = spawn_database(sys, std::move(cfg));
  cli = std::make_unique<client>(sys, db, 30s);
}

database_fixture::~database_fixture() {
  if (auto err = cli->stop())
    caf::anon_send_exit(db, caf::exit_reason::kill);
  cli.reset();
  db = nullptr;
}

void database_fixture::require_ready() {
  auto ready = cli->await_ready(10s);
  INFO((ready ? std::string{"ready"} : text(ready.error())));
  REQUIRE(ready);
}

result_set database_fixture::must_exec(const statement& stmt) {
  auto result = cli->exec(stmt);
  INFO(stmt.sql << " -> " << (result ? std::string{"ok"} : text(result.error())));
  REQUIRE(result);
  return *result;
}

int64_t database_fixture::count(const std::string& table) {
  session_options ro;
  ro.read_only = true;
  auto result = cli->exec(statement{"SELECT count(*) FROM " + table}, ro);
  INFO((result ? std::string{"ok"} : text(result.error())));
  REQUIRE(result);
  return result->rows.at(0).at(0).as_int();
}

caf::expected<result_set> database_fixture::read_as_new_client(const statement& stmt,
                                                               std::chrono::milliseconds deadline) {
  client own{sys, db, std::chrono::seconds(30)};
  session_options ro;
  ro.read_only = true;
  ro.request_timeout = deadline;
  auto s = own.open_session(ro);
  if (!s)
    return s.error();
  return s->exec(stmt);
}

pool_stats database_fixture::stats(const std::string& pool) {
  auto report = cli->status();
  REQUIRE(report);
  for (auto& p : report->pools)
    if (p.pool == pool) {
      // One snapshot of the engine: every connection is in exactly one state.
      CHECK(p.total == p.idle + p.in_use + p.opening + p.pinging + p.returning);
      return p;
    }
  FAIL("no pool named " << pool);
  return {};
}

size_t test_worker_count() {
  auto text = std::getenv("CAFDB_TEST_WORKERS");
  if (text == nullptr || *text == '\0')
    return caf::defaults::scheduler::max_threads;
  char* end = nullptr;
  auto n = std::strtoul(text, &end, 10);
  if (*end != '\0' || n == 0 || n > 256) {
    std::fprintf(stderr, "CAFDB_TEST_WORKERS must be a number from 1 to 256, not '%s'\n", text);
    std::abort();
  }
  return n;
}

system_config::system_config() : system_config(test_worker_count()) {}

system_config::system_config(size_t workers) {
  add_types(*this);
  set("scheduler.max-threads", workers);
}

config must_config(const std::string& url) {
  auto cfg = config_from_url(url);
  INFO((cfg ? std::string{"ok"} : cfg.error().message));
  REQUIRE(cfg);
  return *cfg;
}

config file_config(const temp_dir& dir, const std::string& name) {
  auto cfg = must_config("sqlite:///" + dir.file(name));
  cfg.pool_timeout = std::chrono::milliseconds(5000);
  cfg.statement_timeout = std::chrono::milliseconds(20000);
  cfg.log_level = std::getenv("CAFDB_TEST_LOG") ? std::getenv("CAFDB_TEST_LOG") : "off";
  return cfg;
}

std::string text(const caf::error& err) {
  return render(err);
}

bool await_event(caf::scoped_actor& subscriber, const std::string& component, readiness_state state,
                 std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= left.zero())
      return false;
    bool seen = false, timed_out = false;
    subscriber->receive(
        [&](readiness_event& ev) { seen = ev.component == component && ev.state == state; },
        caf::after(std::chrono::duration_cast<caf::timespan>(left)) >> [&] { timed_out = true; });
    if (seen)
      return true;
    if (timed_out)
      return false;
  }
}

} // namespace cafdb::test
