// PostgreSQL-specific behaviour against the throwaway server scripts/test.sh starts:
// type mapping, SQLSTATE mapping, reader routing on a real streaming standby,
// connection failures, server-side statement timeouts, secrets and env configuration.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "backend/pg_driver.hpp"
#include "cafdb/json.hpp"
#include "support/backends.hpp"
#include "support/captured_log.hpp"
#include "support/joined_threads.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

// The test server's password, to prove it never shows up anywhere.
std::string server_password() {
  auto url = pg_url();
  auto start = url.find(':', url.find("://") + 3) + 1;
  return url.substr(start, url.find('@') - start);
}

struct pg_database : with_temp_dir, database_fixture {
  pg_database() : database_fixture(pg_backend::make_config(dir)) { require_ready(); }
};

// A database that cannot start: `url` points somewhere that fails.
caf::error start_failure(const std::string& url) {
  auto cfg = must_config(url);
  cfg.setup_timeout = std::chrono::milliseconds(300);
  cfg.connect_timeout = std::chrono::milliseconds(2000);
  cfg.log_level = "off";
  database_fixture fx{cfg};
  auto ready = fx.cli->await_ready(20s);
  REQUIRE(!ready);
  return ready.error();
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + 1))
    text.replace(pos, from.size(), to);
  return text;
}

} // namespace

TEST_CASE("SQLSTATEs map onto cafdb error codes", "[pg]") {
  CHECK(pg_errc("23505") == errc::constraint_violation);
  CHECK(pg_errc("23503") == errc::constraint_violation);
  CHECK(pg_errc("40001") == errc::serialization_failure);
  CHECK(pg_errc("40P01") == errc::deadlock);
  CHECK(pg_errc("57014") == errc::statement_timeout);
  CHECK(pg_errc("08006") == errc::connection_lost);
  CHECK(pg_errc("57P01") == errc::connection_lost);
  CHECK(pg_errc("42601") == errc::syntax_error);
  CHECK(pg_errc("42P01") == errc::syntax_error);
  CHECK(pg_errc("25006") == errc::read_only_violation);
  CHECK(pg_errc("22P02") == errc::invalid_argument);
  CHECK(pg_errc("XX000") == errc::database_error);
}

TEST_CASE_METHOD(pg_database, "PostgreSQL types map both ways", "[pg]") {
  must_exec({"CREATE TABLE kinds (i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, "
             "b bool, t text, v varchar(10), by bytea, d date, ts timestamp, tz timestamptz, "
             "j json, jb jsonb, u uuid)"});
  blob bytes{0, 1, 2, 254, 255};
  must_exec({"INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
             "$14, $15, $16)",
             {7, 70000, int64_t{9007199254740993}, 1.5, 2.25, "12345.6789", true, "héllo", "short",
              bytes, "2026-11-22", "2026-11-22 10:11:12", "2026-11-22 10:11:12+00",
              R"({"a": [1, 2]})", R"({"b": true})", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}});
  must_exec({"INSERT INTO kinds (i4) VALUES ($1)", {nullptr}});
  auto r = must_exec({"SELECT * FROM kinds ORDER BY i4 NULLS LAST"});
  REQUIRE(r.rows.size() == 2);
  auto& row = r.rows[0];
  CHECK(r.column_types.at(2) == "int8");
  CHECK(row[0] == value{7});
  CHECK(row[1] == value{70000});
  CHECK(row[2].as_int() == 9007199254740993);
  CHECK(row[3].as_double() == 1.5);
  CHECK(row[4].as_double() == 2.25);
  CHECK(row[5] == value{"12345.6789"}); // numeric stays exact, as text
  CHECK(row[6] == value{true});
  CHECK(row[7] == value{"héllo"});
  CHECK(row[9].as_blob() == bytes);
  CHECK(row[10] == value{"2026-11-22"});
  CHECK(row[11] == value{"2026-11-22 10:11:12"});
  CHECK(row[12].as_text().find("2026-11-22 10:11:12") == 0);
  CHECK(nlohmann::json::parse(row[13].as_text())["a"][1] == 2);
  CHECK(nlohmann::json::parse(row[14].as_text())["b"] == true);
  CHECK(row[15] == value{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"});
  CHECK(r.rows[1][1].is_null());
  // RETURNING rows come back like any query.
  auto ret = must_exec({"INSERT INTO kinds (i4) VALUES ($1) RETURNING i4 * 2 AS doubled", {21}});
  CHECK(ret.rows.at(0).at(0) == value{42});
  CHECK(ret.affected_rows == 1);
}

TEST_CASE("read-only sessions go to the standby, writes to the primary", "[pg]") {
  temp_dir dir;
  pg_schema schema;
  auto cfg = must_config(with_schema(pg_url(), schema.name));
  REQUIRE(apply_option(cfg, "read_url", nlohmann::json(pg_read_url())));
  cfg.log_level = "off";
  database_fixture fx{cfg};
  fx.require_ready();
  session_options ro;
  ro.read_only = true;
  auto on_reader = fx.cli->exec({"SELECT pg_is_in_recovery()"}, ro);
  REQUIRE(on_reader);
  CHECK(on_reader->rows.at(0).at(0) == value{true});
  auto on_writer = fx.cli->exec({"SELECT pg_is_in_recovery()"});
  REQUIRE(on_writer);
  CHECK(on_writer->rows.at(0).at(0) == value{false});
  auto write = fx.cli->exec({"CREATE TABLE nope (x int)"}, ro);
  REQUIRE(!write);
  INFO(text(write.error()));
  CHECK(is(write.error(), errc::read_only_violation));
  CHECK(describe(write.error()).message.find("read-only") != std::string::npos);
  auto report = fx.cli->status();
  REQUIRE(report);
  bool reader_ready = false;
  for (auto& c : report->components)
    reader_ready =
        reader_ready || (c.component == "engine:reader" && c.state == readiness_state::ready);
  CHECK(reader_ready);
  bool has_reader_pool = false;
  for (auto& p : report->pools)
    has_reader_pool = has_reader_pool || (p.engine == "reader" && p.checkouts >= 1);
  CHECK(has_reader_pool);
}

TEST_CASE("connection failures are typed, name the cause, and never show the password", "[pg]") {
  auto base = pg_url();
  auto password = server_password();
  auto port =
      base.substr(base.rfind(':') + 1, base.find('/', base.rfind(':')) - base.rfind(':') - 1);
  SECTION("wrong password") {
    auto err = start_failure(replace_all(base, ":" + password + "@", ":wrong-secret@"));
    CHECK(is(err, errc::connect_failed));
    CHECK(describe(err).message.find("password authentication failed") != std::string::npos);
    CHECK(render(err).find("wrong-secret") == std::string::npos);
    // The code (28P01: retrying cannot fix it) comes from the server's message, not
    // from its English text; the message shows neither the code nor the server's source
    // location.
    INFO(render(err));
    CHECK(describe(err).message.find("retrying cannot fix this") != std::string::npos);
    CHECK(describe(err).message.find("LOCATION") == std::string::npos);
    CHECK(describe(err).message.find("28P01:") == std::string::npos);
  }
  SECTION("missing database") {
    auto err = start_failure(replace_all(base, "/postgres", "/no_such_db"));
    CHECK(is(err, errc::connect_failed));
    CHECK(describe(err).message.find("no_such_db") != std::string::npos);
    CHECK(render(err).find(password) == std::string::npos);
    CHECK(describe(err).message.find("retrying cannot fix this") != std::string::npos);
  }
  SECTION("refused port") {
    auto err = start_failure(replace_all(base, ":" + port + "/", ":1/"));
    CHECK(is(err, errc::connect_failed));
    CHECK(describe(err).message.find("refused") != std::string::npos);
    CHECK(render(err).find(password) == std::string::npos);
  }
  SECTION("unknown host") {
    auto err = start_failure(replace_all(base, "@127.0.0.1:", "@no-such-host.invalid:"));
    CHECK(is(err, errc::connect_failed));
    CHECK(describe(err).message.find("no-such-host.invalid") != std::string::npos);
    CHECK(render(err).find(password) == std::string::npos);
  }
  SECTION("bad sslmode is refused at load time") {
    auto cfg = config_from_url(base + "?sslmode=sometimes");
    REQUIRE(!cfg);
    CHECK(cfg.error().code == errc::invalid_config);
    CHECK(cfg.error().message.find("sslmode") != std::string::npos);
    CHECK(cfg.error().message.find(password) == std::string::npos);
  }
}

TEST_CASE("statement_timeout is enforced by the server and the connection is reused", "[pg]") {
  temp_dir dir;
  auto cfg = pg_backend::make_config(dir);
  cfg.statement_timeout = std::chrono::milliseconds(300);
  database_fixture fx{cfg};
  fx.require_ready();
  auto slow = fx.cli->exec({"SELECT pg_sleep(5)"});
  REQUIRE(!slow);
  INFO(text(slow.error()));
  CHECK(is(slow.error(), errc::statement_timeout));
  CHECK(describe(slow.error()).driver_code == "57014");
  auto next = fx.cli->exec({"SELECT 1"});
  REQUIRE(next);
  auto pool = fx.stats("shared");
  CHECK(pool.discarded == 0);
  CHECK(pool.total == 1);
}

TEST_CASE("a request past its deadline is cancelled on the server, not left running", "[pg]") {
  temp_dir dir;
  auto cfg = pg_backend::make_config(dir);
  cfg.pool_size = 1;
  cfg.max_overflow = 0;
  database_fixture fx{cfg};
  fx.require_ready();
  session_options options;
  options.request_timeout = std::chrono::milliseconds(300);
  auto s = fx.cli->open_session(options);
  REQUIRE(s);
  auto pid = s->exec({"SELECT pg_backend_pid()"});
  REQUIRE(pid);
  auto slow = s->exec({"SELECT pg_sleep(600) AS cafdb_cancel_probe"});
  REQUIRE(!slow);
  CHECK(is(slow.error(), errc::statement_timeout));
  // Served by the same backend once the cancelled query has ended: nothing of it runs.
  auto after = s->exec({"SELECT pg_backend_pid(), (SELECT count(*) FROM pg_stat_activity WHERE "
                        "state = 'active' AND query LIKE '%AS cafdb_cancel_probe')"});
  REQUIRE(after);
  CHECK(after->rows.at(0).at(0).as_int() == pid->rows.at(0).at(0).as_int());
  // (The pattern must match at the end, so this query's own text does not count.)
  CHECK(after->rows.at(0).at(1).as_int() == 0);
  CHECK(fx.stats("shared").cancelled == 1);
}

TEST_CASE_METHOD(pg_database,
                 "transact goes out as one pipeline: any length, a failure at any position "
                 "undoes all of it, the connection is reused",
                 "[pg]") {
  must_exec({"CREATE TABLE piped (id int PRIMARY KEY, note text)"});
  auto batch = [](int first, int count) {
    std::vector<statement> stmts;
    for (int i = 0; i < count; ++i)
      stmts.push_back({"INSERT INTO piped VALUES ($1, $2) RETURNING id", {first + i, "row"}});
    return stmts;
  };
  auto rows = [&] { return must_exec({"SELECT count(*) FROM piped"}).rows.at(0).at(0).as_int(); };

  // Longer than one chunk of the pipeline: every result comes back, in order.
  auto done = cli->transact(batch(1, 500));
  REQUIRE(done);
  REQUIRE(done->size() == 500);
  CHECK(done->front().rows.at(0).at(0).as_int() == 1);
  CHECK(done->back().rows.at(0).at(0).as_int() == 500);
  CHECK(rows() == 500);

  // A duplicate key in the first statement, inside a chunk, at chunk edges, last.
  for (size_t failing : {0, 10, 63, 64, 65, 200, 499}) {
    auto stmts = batch(1000, 500);
    stmts[failing] = {"INSERT INTO piped VALUES ($1, $2)", {1, "duplicate"}};
    auto failed = cli->transact(stmts);
    REQUIRE(!failed);
    CHECK(is(failed.error(), errc::constraint_violation));
    CHECK_THAT(describe(failed.error()).message,
               Catch::Contains("statement " + std::to_string(failing + 1) + " of 500"));
    CHECK(rows() == 500);
  }

  // A parameter count that does not fit is refused before anything is sent.
  auto mismatch = cli->transact({{"INSERT INTO piped VALUES ($1, $2)", {2000, "ok"}},
                                 {"INSERT INTO piped VALUES ($1, $2)", {2001}}});
  REQUIRE(!mismatch);
  CHECK(is(mismatch.error(), errc::invalid_argument));
  CHECK(rows() == 500);

  // A read-only transaction refuses the write and ends cleanly.
  session_options read_only;
  read_only.read_only = true;
  auto refused = cli->transact(batch(3000, 3), read_only);
  REQUIRE(!refused);
  CHECK(is(refused.error(), errc::read_only_violation));

  // Scripts take the statement-by-statement path inside the same transaction.
  auto mixed = cli->transact({{"INSERT INTO piped VALUES (4000, 'a'); INSERT INTO piped VALUES "
                               "(4001, 'b')"},
                              {"INSERT INTO piped VALUES ($1, $2)", {4002, "c"}}});
  REQUIRE(mixed);
  CHECK(rows() == 503);

  auto pool = stats("shared");
  CHECK(pool.discarded == 0);
  CHECK(pool.in_use == 0);
}

TEST_CASE("the password appears in no log line, error or status", "[pg]") {
  captured_log captured;
  std::string errors;
  temp_dir dir;
  auto cfg = pg_backend::make_config(dir);
  cfg.log_level = "debug";
  cfg.echo = true;
  std::string status_json;
  {
    database_fixture fx{cfg};
    fx.require_ready();
    fx.must_exec({"SELECT 1"});
    auto bad = fx.cli->exec({"SELEC 1"});
    REQUIRE(!bad);
    errors += render(bad.error());
    auto report = fx.cli->status();
    REQUIRE(report);
    status_json = nlohmann::json(*report).dump();
    CHECK(status_json.find("***") != std::string::npos);
    fx.cli->stop();
  }
  auto failure = start_failure(replace_all(pg_url(), "/postgres", "/no_such_db"));
  errors += render(failure);
  auto password = server_password();
  CHECK_FALSE(captured.text().empty());
  CHECK_FALSE(errors.empty());
  CHECK_FALSE(captured.contains(password));
  CHECK(errors.find(password) == std::string::npos);
  CHECK(status_json.find(password) == std::string::npos);
}

TEST_CASE("DB_* variables and a .env file configure PostgreSQL, whatever the password holds",
          "[pg]") {
  // A role whose password has every character that breaks hand-built URLs.
  std::string password = "p@ss:w/rd% x'\"y";
  pg_admin("DROP ROLE IF EXISTS cafdb_special");
  pg_admin("CREATE ROLE cafdb_special LOGIN PASSWORD 'p@ss:w/rd% x''\"y'");
  auto base = pg_url();
  auto host_start = base.find('@') + 1;
  auto host = base.substr(host_start, base.find(':', host_start) - host_start);
  auto port_start = base.find(':', host_start) + 1;
  auto port = base.substr(port_start, base.find('/', port_start) - port_start);
  ::unsetenv("CAFDB_URL");
  SECTION("from the environment") {
    ::setenv("DB_USERNAME", "cafdb_special", 1);
    ::setenv("DB_PASSWORD", password.c_str(), 1);
    ::setenv("DB_HOST", host.c_str(), 1);
    ::setenv("DB_PORT", port.c_str(), 1);
    ::setenv("DB_NAME", "postgres", 1);
    auto cfg = config_from_env();
    INFO((cfg ? std::string{} : cfg.error().message));
    REQUIRE(cfg);
    CHECK(cfg->redacted_url().find("p@ss") == std::string::npos);
    cfg->log_level = "off";
    database_fixture fx{*cfg};
    fx.require_ready();
    auto who = fx.must_exec({"SELECT current_user"});
    CHECK(who.rows.at(0).at(0) == value{"cafdb_special"});
    ::unsetenv("DB_PASSWORD");
    auto missing = config_from_env();
    REQUIRE(!missing);
    CHECK(missing.error().message.find("DB_PASSWORD is not set") != std::string::npos);
    CHECK(missing.error().message.find("None") == std::string::npos);
    for (auto name : {"DB_USERNAME", "DB_HOST", "DB_PORT", "DB_NAME"})
      ::unsetenv(name);
  }
  SECTION("from a .env file") {
    temp_dir dir;
    {
      std::ofstream out{dir.file(".env")};
      out << "# database settings\nDB_USERNAME=cafdb_special\nDB_PASSWORD='" << password
          << "'\nDB_HOST=" << host << "\nexport DB_PORT=" << port << "\nDB_NAME=postgres\n"
          << "CAFDB_POOL_SIZE=3\n";
    }
    auto cfg = config_from_env(dir.file(".env"));
    INFO((cfg ? std::string{} : cfg.error().message));
    REQUIRE(cfg);
    CHECK(cfg->pool_size == 3);
    cfg->log_level = "off";
    database_fixture fx{*cfg};
    fx.require_ready();
    CHECK(fx.must_exec({"SELECT current_user"}).rows.at(0).at(0) == value{"cafdb_special"});
  }
  SECTION("from a percent-encoded URL") {
    auto url = "postgresql://cafdb_special:p%40ss%3Aw%2Frd%25%20x%27%22y@" + host + ":" + port +
               "/postgres?application_name=cafdb-test&pool_size=2";
    auto cfg = config_from_url(url);
    REQUIRE(cfg);
    CHECK(cfg->pool_size == 2);
    CHECK(cfg->redacted_url().find("p%40ss") == std::string::npos);
    cfg->log_level = "off";
    database_fixture fx{*cfg};
    fx.require_ready();
    auto app = fx.must_exec({"SELECT current_setting('application_name')"});
    CHECK(app.rows.at(0).at(0) == value{"cafdb-test"});
  }
  SECTION("from a libpq keyword/value connection string") {
    // The quote in the password is escaped, as libpq reads it; cafdb's options mix in.
    auto conninfo = "user=cafdb_special password='p@ss:w/rd% x\\'\"y' host=" + host +
                    " port=" + port + " dbname=postgres application_name=cafdb-kv pool_size=2";
    auto cfg = config_from_url(conninfo);
    INFO((cfg ? std::string{} : cfg.error().message));
    REQUIRE(cfg);
    CHECK(cfg->pool_size == 2);
    CHECK(cfg->redacted_url().find("p@ss") == std::string::npos);
    cfg->log_level = "off";
    database_fixture fx{*cfg};
    fx.require_ready();
    auto who = fx.must_exec({"SELECT current_user, current_setting('application_name')"});
    CHECK(who.rows.at(0).at(0) == value{"cafdb_special"});
    CHECK(who.rows.at(0).at(1) == value{"cafdb-kv"});
  }
  pg_admin("DROP ROLE IF EXISTS cafdb_special");
}

namespace {

// A database whose pool holds one connection: every call uses the same one.
struct pg_one_connection : with_temp_dir, database_fixture {
  static config one_connection(const temp_dir& dir) {
    auto cfg = pg_backend::make_config(dir);
    cfg.pool_size = 1;
    cfg.max_overflow = 0;
    return cfg;
  }
  pg_one_connection() : database_fixture(one_connection(dir)) { require_ready(); }
};

// Calls the blocking client ran on a pooled connection on its own thread so far.
int64_t calls_in_place(database_fixture& fx) {
  auto report = fx.cli->status();
  REQUIRE(report);
  return report->reads_in_place;
}

// The shelf fills once a blocking client asks for it: the first calls go through the
// engine and leave their connection there.
void await_shelf(database_fixture& fx) {
  auto before = calls_in_place(fx);
  REQUIRE(eventually([&] {
    auto probe = fx.cli->exec({"SELECT 1"});
    return probe && calls_in_place(fx) > before;
  }));
}

} // namespace

TEST_CASE_METHOD(pg_database,
                 "PostgreSQL: a blocking client's call runs on a pooled connection on its own "
                 "thread, and keeps every rule the engine's path keeps",
                 "[pg][in_place]") {
  must_exec({"CREATE TABLE placed (id int PRIMARY KEY, note text)"});
  await_shelf(*this);

  // A write runs in place and is committed: a session sees it.
  auto before = calls_in_place(*this);
  auto inserted = cli->exec({"INSERT INTO placed VALUES ($1, $2)", {value{1}, value{"one"}}});
  INFO((inserted ? std::string{"ok"} : text(inserted.error())));
  REQUIRE(inserted);
  CHECK(inserted->affected_rows == 1);
  CHECK(calls_in_place(*this) == before + 1);
  auto s = cli->open_session(session_options{});
  REQUIRE(s);
  auto seen = s->exec({"SELECT note FROM placed WHERE id = 1"});
  REQUIRE(seen);
  CHECK(seen->rows.at(0).at(0) == value{std::string{"one"}});

  // A read-only call is read-only on the connection, and the next read-write call on it
  // is not: one connection serves both, one after the other.
  session_options read_only;
  read_only.read_only = true;
  for (int round = 0; round < 3; ++round) {
    auto refused = cli->exec({"INSERT INTO placed VALUES (2, 'two')"}, read_only);
    REQUIRE(!refused);
    INFO(text(refused.error()));
    CHECK(is(refused.error(), errc::read_only_violation));
    auto allowed = cli->exec({"UPDATE placed SET note = 'uno' WHERE id = 1"});
    INFO((allowed ? std::string{"ok"} : text(allowed.error())));
    REQUIRE(allowed);
    CHECK(allowed->affected_rows == 1);
  }
  CHECK(count("placed") == 1);

  // Transaction control, in a script too, and lifting read-only: refused, nothing ran.
  for (auto sql : {"BEGIN", "SELECT 1; COMMIT", "COMMIT"}) {
    INFO(sql);
    auto refused = cli->exec({sql});
    REQUIRE(!refused);
    CHECK(is(refused.error(), errc::invalid_argument));
  }
  auto escape = cli->exec({"SET default_transaction_read_only = off"}, read_only);
  REQUIRE(!escape);
  CHECK(is(escape.error(), errc::read_only_violation));
  auto no_nul = cli->exec({std::string{"DELETE FROM placed\0 WHERE id = 2", 33}});
  REQUIRE(!no_nul);
  CHECK(is(no_nul.error(), errc::invalid_argument));
  CHECK(count("placed") == 1);

  // A setting a call changes never reaches the next call, on any connection.
  REQUIRE(cli->exec({"SET TimeZone = 'Pacific/Auckland'"}));
  for (int i = 0; i < 6; ++i) {
    auto zone = cli->exec({"SHOW TimeZone"});
    REQUIRE(zone);
    CHECK(zone->rows.at(0).at(0) == value{std::string{"UTC"}});
  }
  CHECK(stats("shared").discarded == 0);
}

TEST_CASE_METHOD(
    pg_one_connection,
    "PostgreSQL: a blocking call in place past its deadline is cancelled on the server, "
    "and its connection serves the next call",
    "[pg][in_place]") {
  database_fixture& fx = *this;
  await_shelf(fx);
  auto pid = fx.cli->exec({"SELECT pg_backend_pid()"});
  REQUIRE(pid);
  session_options options;
  options.request_timeout = std::chrono::milliseconds(300);
  auto before = calls_in_place(fx);
  auto slow = fx.cli->exec({"SELECT pg_sleep(600) AS cafdb_in_place_probe"}, options);
  REQUIRE(!slow);
  INFO(text(slow.error()));
  CHECK(is(slow.error(), errc::statement_timeout));
  CHECK(calls_in_place(fx) == before + 1);
  auto after = fx.cli->exec({"SELECT pg_backend_pid(), (SELECT count(*) FROM pg_stat_activity "
                             "WHERE state = 'active' AND query LIKE '%AS cafdb_in_place_probe')"});
  REQUIRE(after);
  CHECK(after->rows.at(0).at(0).as_int() == pid->rows.at(0).at(0).as_int());
  CHECK(after->rows.at(0).at(1).as_int() == 0);
  CHECK(fx.stats("shared").cancelled == 1);

  // The client's own timeout, shorter than the request's: request_timeout, and the
  // statement was cancelled all the same.
  client impatient{fx.sys, fx.db, std::chrono::milliseconds(300)};
  auto cut = impatient.exec({"SELECT pg_sleep(600) AS cafdb_in_place_probe"});
  REQUIRE(!cut);
  INFO(text(cut.error()));
  CHECK(is(cut.error(), errc::request_timeout));
  auto quiet = fx.cli->exec({"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                             "query LIKE '%AS cafdb_in_place_probe'"});
  REQUIRE(quiet);
  CHECK(quiet->rows.at(0).at(0).as_int() == 0);
}

TEST_CASE_METHOD(pg_one_connection,
                 "PostgreSQL: a write in place whose connection dies is in doubt, and the pool "
                 "replaces the connection",
                 "[pg][in_place]") {
  database_fixture& fx = *this;
  fx.must_exec({"CREATE TABLE doubted (x int)"});
  await_shelf(fx);
  // The write runs on a thread of its own (which asserts nothing); this one kills the
  // backend that runs it, once it runs, until the write has answered.
  auto before = calls_in_place(fx);
  std::atomic<bool> answered{false};
  caf::expected<result_set> write{caf::error{}};
  std::thread writer{[&] {
    write = fx.cli->exec(
        {"INSERT INTO doubted SELECT 1 FROM (SELECT pg_sleep(30)) AS cafdb_doubt_probe"});
    answered = true;
  }};
  bool killed = eventually([&] {
    pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'active' "
             "AND query LIKE '%AS cafdb_doubt_probe'");
    return answered.load();
  });
  writer.join();
  REQUIRE(killed);
  REQUIRE(!write);
  INFO(text(write.error()));
  CHECK(is(write.error(), errc::commit_in_doubt));
  CHECK(calls_in_place(fx) == before + 1);
  REQUIRE(eventually([&] { return static_cast<bool>(fx.cli->exec({"SELECT 1"})); }));
  CHECK(fx.stats("shared").discarded >= 1);
  CHECK(fx.count("doubted") == 0);
}

TEST_CASE_METHOD(pg_database,
                 "PostgreSQL: a blocking session's autocommit calls run in place; a transaction's "
                 "run on its lease",
                 "[pg][in_place][blocking_session]") {
  must_exec({"CREATE TABLE sessioned (x int)"});
  await_shelf(*this);
  auto s = cli->open_session(session_options{});
  REQUIRE(s);
  auto before = calls_in_place(*this);
  REQUIRE(s->exec({"INSERT INTO sessioned VALUES (1)"}));
  CHECK(calls_in_place(*this) == before + 1);
  CHECK(count("sessioned") == 1);
  // In a transaction: on the session's lease, undone by its rollback, never in place.
  REQUIRE_FALSE(s->begin());
  before = calls_in_place(*this);
  REQUIRE(s->exec({"INSERT INTO sessioned VALUES (2)"}));
  auto inside = s->exec({"SELECT count(*) FROM sessioned"});
  REQUIRE(inside);
  CHECK(inside->rows.at(0).at(0).as_int() == 2);
  CHECK(calls_in_place(*this) == before);
  REQUIRE_FALSE(s->rollback());
  CHECK(count("sessioned") == 1);
  // Refused as the session refuses it.
  auto refused = s->exec({"COMMIT"});
  REQUIRE(!refused);
  CHECK(is(refused.error(), errc::invalid_argument));
  session_options read_only;
  read_only.read_only = true;
  auto reader = cli->open_session(read_only);
  REQUIRE(reader);
  auto write = reader->exec({"INSERT INTO sessioned VALUES (3)"});
  REQUIRE(!write);
  CHECK(is(write.error(), errc::read_only_violation));
  auto seen = reader->exec({"SELECT count(*) FROM sessioned"});
  REQUIRE(seen);
  CHECK(seen->rows.at(0).at(0).as_int() == 1);
}

TEST_CASE_METHOD(pg_one_connection,
                 "PostgreSQL: stop lets a blocking call in place finish until shutdown_timeout, "
                 "and cancels it after",
                 "[pg][in_place]") {
  must_exec({"CREATE TABLE stopped (x int)"});
  await_shelf(*this);
  // Found from outside: stop cancelled calls in place at once ("shutdown_timeout
  // passed"), where it lets a session's request finish. The call runs on a thread of
  // its own (which asserts nothing); this one stops the database once it borrowed.
  auto before = calls_in_place(*this);
  std::atomic<bool> answered{false};
  caf::expected<result_set> write{caf::error{}};
  std::thread writer{[&] {
    write = cli->exec({"INSERT INTO stopped SELECT 1 FROM pg_sleep(1) AS cafdb_stop_probe"});
    answered = true;
  }};
  bool seen = eventually([&] { return calls_in_place(*this) > before; });
  auto stopped = seen ? cli->stop() : caf::error{};
  bool answered_before_stop_returned = answered.load();
  writer.join();
  REQUIRE(seen);
  CHECK_FALSE(stopped);
  CHECK(answered_before_stop_returned);
  INFO((write ? std::string{"ok"} : text(write.error())));
  REQUIRE(write);
  CHECK(write->affected_rows == 1);
  // Stopped: a new call is refused.
  auto refused = cli->exec({"SELECT 1"});
  REQUIRE(!refused);
  CHECK(is(refused.error(), errc::shutting_down));
}

TEST_CASE("PostgreSQL: a blocking call in place still running at shutdown_timeout is "
          "cancelled and answers shutting_down",
          "[pg][in_place]") {
  temp_dir dir;
  auto cfg = pg_one_connection::one_connection(dir);
  cfg.shutdown_timeout = std::chrono::milliseconds(300);
  database_fixture fx{cfg};
  fx.require_ready();
  await_shelf(fx);
  std::atomic<bool> answered{false};
  caf::expected<result_set> slow{caf::error{}};
  auto before = calls_in_place(fx);
  std::thread caller{[&] {
    slow = fx.cli->exec({"SELECT pg_sleep(600) AS cafdb_shutdown_probe"});
    answered = true;
  }};
  bool seen = eventually([&] { return calls_in_place(fx) > before; });
  auto started = std::chrono::steady_clock::now();
  auto stopped = seen ? fx.cli->stop() : caf::error{};
  auto took = std::chrono::steady_clock::now() - started;
  caller.join();
  REQUIRE(seen);
  CHECK_FALSE(stopped);
  REQUIRE(!slow);
  INFO(text(slow.error()));
  CHECK(is(slow.error(), errc::shutting_down));
  CHECK(took < std::chrono::seconds(10));
}

TEST_CASE_METHOD(pg_one_connection,
                 "PostgreSQL: COPY with the client's stream is refused, or fails, and never "
                 "spins; the pool serves on",
                 "[pg][in_place]") {
  must_exec({"CREATE TABLE copied (x int)"});
  // Found from outside: libpq hands out the COPY result forever, and the call spun.
  for (auto sql : {"COPY (SELECT 1) TO STDOUT", "COPY copied FROM STDIN"}) {
    INFO(sql);
    auto refused = cli->exec({sql});
    REQUIRE(!refused);
    CHECK(is(refused.error(), errc::invalid_argument));
  }
  // Past the text check, inside a script: the connection goes, the call answers.
  auto hidden = cli->exec({"SELECT 1; COPY (SELECT 1) TO STDOUT"});
  REQUIRE(!hidden);
  INFO(text(hidden.error()));
  auto next = cli->exec({"SELECT count(*) FROM copied"});
  INFO((next ? std::string{"ok"} : text(next.error())));
  REQUIRE(eventually([&] { return static_cast<bool>(cli->exec({"SELECT 1"})); }));
}

TEST_CASE_METHOD(pg_database,
                 "PostgreSQL: an actor's one-shot exec needs no session, keeps a session's rules, "
                 "and a stop answers it with its rows",
                 "[pg][one_shot]") {
  database_fixture& fx = *this;
  fx.must_exec({"CREATE TABLE t (x int)"});
  fx.must_exec({"INSERT INTO t VALUES (7)"});
  session_options read_only;
  read_only.read_only = true;
  session_options read_write;
  auto one_shot = [&](caf::scoped_actor& self, statement stmt, bool writes = false) {
    caf::expected<result_set> out{caf::error{}};
    self->request(fx.db, 60s, exec_atom::value, std::move(stmt), writes ? read_write : read_only)
        .receive([&](result_set& rows) { out = std::move(rows); },
                 [&](caf::error& err) { out = std::move(err); });
    return out;
  };
  caf::scoped_actor self{fx.sys};
  for (int i = 0; i < 20; ++i) {
    auto got = one_shot(self, {"SELECT x FROM t"});
    INFO((got ? std::string{"ok"} : text(got.error())));
    REQUIRE(got);
    CHECK(got->rows.at(0).at(0).as_int() == 7);
  }
  // A read-only session's rules, with its words: a write is refused by the server, ...
  auto write = one_shot(self, {"INSERT INTO t VALUES (8)"});
  REQUIRE(!write);
  CHECK(is(write.error(), errc::read_only_violation));
  // ... transaction control, an escape from read-only and a NUL before it, ...
  auto begin = one_shot(self, {"BEGIN"});
  REQUIRE(!begin);
  CHECK(is(begin.error(), errc::invalid_argument));
  auto escape = one_shot(self, {"SET default_transaction_read_only = off"});
  REQUIRE(!escape);
  CHECK(is(escape.error(), errc::read_only_violation));
  // PostgreSQL itself writes large objects in a read-only transaction (found from outside:
  // lo_from_bytea, lo_put and lo_unlink were kept from read-only calls).
  auto large_object =
      one_shot(self, {"SELECT lo_from_bytea(4242424, 'written by a read-only call')"});
  REQUIRE(!large_object);
  CHECK(is(large_object.error(), errc::read_only_violation));
  CHECK(fx.cli->exec({"SELECT count(*) FROM pg_largeobject_metadata WHERE oid = 4242424"})
            ->rows.at(0)
            .at(0)
            .as_int() == 0);
  auto nul = one_shot(self, {std::string{"SELECT 1\0; DELETE FROM t", 24}});
  REQUIRE(!nul);
  CHECK(is(nul.error(), errc::invalid_argument));
  CHECK(fx.count("t") == 1);
  // ... a setting one request changes never reaches the next, ...
  auto changed = one_shot(self, {"SET statement_timeout = '123s'"});
  INFO((changed ? std::string{"ok"} : text(changed.error())));
  REQUIRE(changed);
  for (int i = 0; i < 10; ++i) {
    auto shown = one_shot(self, {"SHOW statement_timeout"});
    REQUIRE(shown);
    CHECK(shown->rows.at(0).at(0).as_text() != "123s");
  }
  // ... and a statement's error is its own; the next read is served.
  auto bad = one_shot(self, {"SELECT no_such_column FROM t"});
  REQUIRE(!bad);
  CHECK(is(bad.error(), errc::syntax_error));
  REQUIRE(one_shot(self, {"SELECT x FROM t"}));

  // Read-write one-shots run in place on pooled connections, as a blocking client's
  // calls do (counted as loans of the shelf), with a session's checks: a write is
  // kept, transaction control is refused, and a setting never reaches the next request.
  auto loans_before = fx.cli->status()->reads_in_place;
  for (int i = 0; i < 10; ++i) {
    auto wrote = one_shot(self, {"INSERT INTO t VALUES ($1)", {100 + i}}, true);
    INFO((wrote ? std::string{"ok"} : text(wrote.error())));
    REQUIRE(wrote);
  }
  auto rw_begin = one_shot(self, {"BEGIN"}, true);
  REQUIRE(!rw_begin);
  CHECK(is(rw_begin.error(), errc::invalid_argument));
  REQUIRE(one_shot(self, {"SET statement_timeout = '124s'"}, true));
  for (int i = 0; i < 10; ++i) {
    auto shown = one_shot(self, {"SHOW statement_timeout"}, true);
    REQUIRE(shown);
    CHECK(shown->rows.at(0).at(0).as_text() != "124s");
  }
  auto rw_read_only = one_shot(self, {"SHOW transaction_read_only"}, true);
  REQUIRE(rw_read_only);
  CHECK(rw_read_only->rows.at(0).at(0).as_text() == "off");
  CHECK(fx.count("t") == 11);
  CHECK(fx.cli->status()->reads_in_place > loans_before + 1);

  // A read in flight has no session of its own, and the stop waits for its rows.
  std::atomic<bool> done{false};
  caf::expected<result_set> slow{caf::error{}};
  joined_threads reader;
  reader.start([&] {
    caf::scoped_actor own{fx.sys};
    slow = one_shot(own, {"SELECT 5 AS cafdb_one_shot_probe FROM pg_sleep(1.5)"});
    done = true;
  });
  REQUIRE(eventually([&] {
    auto running = fx.cli->exec({"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                                 "query LIKE '%AS cafdb_one_shot_probe FROM%'"});
    return running && running->rows.at(0).at(0).as_int() == 1;
  }));
  auto report = fx.cli->status();
  REQUIRE(report);
  CHECK(report->sessions == 0);
  REQUIRE(!done);
  CHECK(!fx.cli->stop());
  reader.join();
  INFO((slow ? std::string{"ok"} : text(slow.error())));
  REQUIRE(slow);
  CHECK(slow->rows.at(0).at(0).as_int() == 5);
}

namespace {

size_t thread_count() {
  size_t n = 0;
  for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator{"/proc/self/task"})
    ++n;
  return n;
}

} // namespace

TEST_CASE("PostgreSQL: a database that stopped leaves no thread behind (one-shot readers, "
          "connections), however many were started in one actor system",
          "[pg][one_shot]") {
  with_temp_dir tmp;
  auto cfg = pg_backend::make_config(tmp.dir);
  cfg.pool_size = 6;
  system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto run_one = [&] {
    auto db = spawn_database(sys, cfg);
    client cli{sys, db, std::chrono::seconds(30)};
    REQUIRE(cli.await_ready(std::chrono::seconds(10)));
    caf::scoped_actor self{sys};
    for (int i = 0; i < 20; ++i) {
      bool ok = false;
      self->request(db, std::chrono::seconds(30), exec_atom::value, statement{"SELECT 1"},
                    session_options{})
          .receive([&](result_set&) { ok = true; }, [&](caf::error& err) { INFO(text(err)); });
      REQUIRE(ok);
    }
    REQUIRE(!cli.stop());
  };
  run_one();
  // What CAF starts once (scheduler, clock) is there now; each database's own threads
  // (one per connection, one per one-shot reader) must end with it.
  auto threads_after_first = thread_count();
  for (int round = 0; round < 5; ++round)
    run_one();
  size_t now = 0;
  bool settled = eventually(
      [&] {
        now = thread_count();
        return now <= threads_after_first;
      },
      10s);
  INFO("threads after the first database: " << threads_after_first << ", after six: " << now);
  CHECK(settled);
}
