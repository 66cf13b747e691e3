// Configuration loading: URLs, JSON, environment, durations and redaction.
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>

#include "support/fixture.hpp"

using namespace cafdb;
using namespace cafdb::test;

TEST_CASE("sqlite URLs follow SQLAlchemy's slashes", "[config]") {
  CHECK(must_config("sqlite:///relative/app.db").path == "relative/app.db");
  CHECK(must_config("sqlite:////abs/app.db").path == "/abs/app.db");
  CHECK(must_config("sqlite::memory:").in_memory());
  CHECK(must_config("sqlite://").in_memory());
  CHECK(must_config("sqlite:///with%20space.db").path == "with space.db");
  auto cfg = must_config("sqlite:///app.db?mode=rw&pool_size=7&pool_timeout=2s&echo=true");
  CHECK_FALSE(cfg.create_if_missing);
  CHECK(cfg.pool_size == 7);
  CHECK(cfg.pool_timeout == std::chrono::milliseconds(2000));
  CHECK(cfg.echo);
}

TEST_CASE("every option has its documented default", "[config]") {
  config cfg;
  CHECK(cfg.pool_size == 5);
  CHECK(cfg.max_overflow == 10);
  CHECK(cfg.pool_timeout == std::chrono::seconds(30));
  CHECK(cfg.max_pending == 1000);
  CHECK(cfg.statement_timeout == std::chrono::minutes(5));
  CHECK(cfg.session_idle_timeout == std::chrono::minutes(10));
  CHECK(cfg.setup_timeout == std::chrono::minutes(1));
  CHECK_FALSE(cfg.echo);
}

TEST_CASE("JSON configuration accepts durations as numbers or strings", "[config]") {
  auto cfg = config_from_json(nlohmann::json{{"url", "sqlite::memory:"},
                                             {"pool_timeout", "1500ms"},
                                             {"setup_timeout", "2m"},
                                             {"session_idle_timeout", "0"},
                                             {"echo_params", true}});
  INFO((cfg ? std::string{} : cfg.error().message));
  REQUIRE(cfg);
  CHECK(cfg->pool_timeout == std::chrono::milliseconds(1500));
  CHECK(cfg->setup_timeout == std::chrono::minutes(2));
  CHECK(cfg->session_idle_timeout.count() == 0);
  CHECK(cfg->echo_params);
  auto bad_unit =
      config_from_json(nlohmann::json{{"url", "sqlite::memory:"}, {"pool_timeout", "5 weeks"}});
  REQUIRE(!bad_unit);
  CHECK(bad_unit.error().message.find("'pool_timeout'") != std::string::npos);
  auto negative =
      config_from_json(nlohmann::json{{"url", "sqlite::memory:"}, {"max_overflow", -1}});
  REQUIRE(!negative);
  CHECK(negative.error().message.find("'max_overflow'") != std::string::npos);
  auto no_url = config_from_json(nlohmann::json{{"pool_size", 3}});
  REQUIRE(!no_url);
  CHECK(no_url.error().message.find("'url'") != std::string::npos);
}

TEST_CASE("a JSON configuration file is read, and a broken one is named", "[config]") {
  temp_dir dir;
  {
    std::ofstream out{dir.file("db.json")};
    out << R"({"url": "sqlite:///app.db", "pool_size": 3})";
  }
  auto cfg = config_from_json_file(dir.file("db.json"));
  REQUIRE(cfg);
  CHECK(cfg->pool_size == 3);
  {
    std::ofstream out{dir.file("broken.json")};
    out << "{not json";
  }
  auto broken = config_from_json_file(dir.file("broken.json"));
  REQUIRE(!broken);
  CHECK(broken.error().message.find("broken.json") != std::string::npos);
  auto missing = config_from_json_file(dir.file("missing.json"));
  REQUIRE(!missing);
  CHECK(missing.error().message.find("missing.json") != std::string::npos);
}

TEST_CASE("the environment supplies CAFDB_URL and CAFDB_<OPTION> values", "[config]") {
  ::unsetenv("CAFDB_URL");
  auto none = config_from_env();
  REQUIRE(!none);
  CHECK(none.error().message.find("CAFDB_URL") != std::string::npos);
  ::setenv("CAFDB_URL", "sqlite:///env.db", 1);
  ::setenv("CAFDB_POOL_SIZE", "9", 1);
  auto cfg = config_from_env();
  REQUIRE(cfg);
  CHECK(cfg->path == "env.db");
  CHECK(cfg->pool_size == 9);
  ::setenv("CAFDB_POOL_SIZE", "lots", 1);
  auto bad = config_from_env();
  REQUIRE(!bad);
  CHECK(bad.error().message.find("CAFDB_POOL_SIZE") != std::string::npos);
  ::unsetenv("CAFDB_URL");
  ::unsetenv("CAFDB_POOL_SIZE");
}

TEST_CASE("passwords never appear in a redacted URL or a URL error", "[config]") {
  config cfg;
  cfg.url = "postgresql://app:s3cr%40t@db.example:5432/app";
  CHECK(cfg.redacted_url() == "postgresql://app:***@db.example:5432/app");
  auto err = config_from_url("mysql://app:hunter2@host/db");
  REQUIRE(!err);
  CHECK(err.error().message.find("hunter2") == std::string::npos);
}

// -- loaders answer every input with an error, never an exception -----------------

namespace {

// The message of a loader's error, failing the test if the loader accepted the input.
template <class Outcome>
std::string error_of(const Outcome& result) {
  REQUIRE_FALSE(result);
  CHECK(result.error().code == errc::invalid_config);
  return result.error().message;
}

// Error messages travel as JSON (json_errors, status): they must be valid UTF-8.
bool dumps_as_json(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void unset_database_variables() {
  for (auto name : {"CAFDB_URL", "DB_USERNAME", "DB_PASSWORD", "DB_HOST", "DB_PORT", "DB_NAME",
                    "CAFDB_POOL_TIMEOUT", "CAFDB_POOL_SIZE", "DATABASE_URL", "CAFDB_POOL_SIZ",
                    "cafdb_pool_size"})
    ::unsetenv(name);
}

} // namespace

TEST_CASE("invalid UTF-8 in an option is an error naming the key", "[config]") {
  for (auto url : {"sqlite:///app.db?log_level=%9E", "sqlite:///app.db?echo=%FF",
                   "sqlite:///app.db?pool_timeout=%C3%28", "sqlite:///app.db?%FF=1"}) {
    INFO(url);
    std::optional<outcome<config>> cfg;
    REQUIRE_NOTHROW(cfg.emplace(config_from_url(url)));
    auto message = error_of(*cfg);
    CHECK(dumps_as_json(message));
  }
  CHECK(contains(error_of(config_from_url("sqlite:///app.db?log_level=%9E")), "'log_level'"));
  CHECK(contains(error_of(config_from_url("sqlite:///app.db?echo=%FF")), "'echo'"));
  // The same from a JSON object built in code, which nlohmann does not validate.
  std::optional<outcome<config>> cfg;
  REQUIRE_NOTHROW(cfg.emplace(
      config_from_json(nlohmann::json{{"url", "sqlite::memory:"}, {"echo", "\xff\xfe"}})));
  auto message = error_of(*cfg);
  CHECK(contains(message, "'echo'"));
  CHECK(dumps_as_json(message));
}

TEST_CASE("a directory given as a JSON, schema or .env file is an error", "[config]") {
  temp_dir dir;
  std::optional<outcome<config>> cfg;
  REQUIRE_NOTHROW(cfg.emplace(config_from_json_file(dir.path)));
  CHECK(contains(error_of(*cfg), "is a directory"));
  REQUIRE_NOTHROW(cfg.emplace(config_from_url("sqlite:///app.db?schema_file=" + dir.path)));
  auto message = error_of(*cfg);
  CHECK(contains(message, "'schema_file'"));
  CHECK(contains(message, "is a directory"));
  REQUIRE_NOTHROW(cfg.emplace(
      config_from_json(nlohmann::json{{"url", "sqlite::memory:"}, {"schema_file", dir.path}})));
  CHECK(contains(error_of(*cfg), "'schema_file'"));
  // A .env path given on purpose must be a file: a directory is not silently skipped.
  unset_database_variables();
  ::setenv("CAFDB_URL", "sqlite::memory:", 1);
  REQUIRE_NOTHROW(cfg.emplace(config_from_env(dir.path)));
  CHECK(contains(error_of(*cfg), "is a directory"));
  unset_database_variables();
}

TEST_CASE("a broken JSON file is reported by position, without its text", "[config]") {
  temp_dir dir;
  {
    std::ofstream out{dir.file("db.json")};
    out << "{\"url\": \"postgresql://app:hunter2@db/app\",\n \"pool_size\": 3,,\n}";
  }
  auto message = error_of(config_from_json_file(dir.file("db.json")));
  CHECK(contains(message, "line 2"));
  CHECK_FALSE(contains(message, "hunter2"));
}

TEST_CASE("durations refuse NaN, infinity, overflow and sub-millisecond zero", "[config]") {
  // Every duration option: a NaN used to pass the range check and become INT64_MIN ms.
  for (auto key :
       {"pool_timeout", "pool_recycle", "pre_ping_after", "idle_timeout", "leak_threshold",
        "lease_timeout", "stats_interval", "statement_timeout", "session_idle_timeout",
        "setup_timeout", "connect_timeout", "busy_timeout", "shutdown_timeout", "restart_window"}) {
    for (auto value : {"nan", "NaN", "inf", "-inf", "infinity", "nanms", "1e400", "1e400s", "8d",
                       "168h1", "-1", "604800001", "10081m", "99999999999999h"}) {
      INFO(key << "=" << value);
      auto message = error_of(config_from_url(std::string{"sqlite:///a.db?"} + key + "=" + value));
      CHECK(contains(message, std::string{"'"} + key + "'"));
    }
    INFO(key);
    auto from_json = config_from_json(nlohmann::json{
        {"url", "sqlite::memory:"}, {key, std::numeric_limits<double>::quiet_NaN()}});
    CHECK(contains(error_of(from_json), key));
    auto huge = config_from_json(nlohmann::json{{"url", "sqlite::memory:"}, {key, 1e300}});
    CHECK(contains(error_of(huge), key));
  }
  // The longest duration accepted converts to nanoseconds without overflow.
  auto week = must_config("sqlite:///a.db?pool_timeout=168h&statement_timeout=604800000ms");
  CHECK(week.pool_timeout == std::chrono::hours(168));
  CHECK(std::chrono::duration_cast<std::chrono::nanoseconds>(week.pool_timeout).count() > 0);
  CHECK(must_config("sqlite:///a.db?pool_timeout=1.5s").pool_timeout == 1500ms);
  CHECK(must_config("sqlite:///a.db?pool_timeout=2e3ms").pool_timeout == 2000ms);
  // Options that must be above 0 cannot become 0 by rounding.
  CHECK(contains(error_of(config_from_url("sqlite:///a.db?pool_timeout=0.4ms")), "pool_timeout"));
  ::setenv("CAFDB_URL", "sqlite::memory:", 1);
  ::setenv("CAFDB_POOL_TIMEOUT", "nan", 1);
  CHECK(contains(error_of(config_from_env()), "CAFDB_POOL_TIMEOUT"));
  unset_database_variables();
}

TEST_CASE("integer options report out-of-range values as given", "[config]") {
  auto huge = config_from_json(
      nlohmann::json{{"url", "sqlite::memory:"}, {"max_overflow", 18446744073709551615ull}});
  auto message = error_of(huge);
  CHECK(contains(message, "'max_overflow'"));
  CHECK(contains(message, "18446744073709551615"));
  message = error_of(config_from_url("sqlite:///a.db?pool_size=99999999999999999999"));
  CHECK(contains(message, "99999999999999999999"));
  CHECK(must_config("sqlite:///a.db?pool_size=+7").pool_size == 7);
}

TEST_CASE("connect_timeout in a PostgreSQL URL is libpq's, in seconds", "[config]") {
  auto cfg = must_config("postgresql://app:pw@db.example/app?connect_timeout=10&pool_size=2");
  CHECK(cfg.connect_timeout == std::chrono::seconds(10));
  CHECK(contains(cfg.conninfo, "connect_timeout='10'"));
  CHECK(cfg.pool_size == 2);
  // libpq waits at least 2 seconds, so cafdb does too.
  CHECK(must_config("postgresql://db/app?connect_timeout=1").connect_timeout ==
        std::chrono::seconds(2));
  // libpq takes whole seconds only; 0 means forever to libpq, which cafdb cannot bound.
  for (auto value : {"5s", "1.5", "abc", "0", "-3", "99999999999999999999", "604801"}) {
    INFO(value);
    auto message =
        error_of(config_from_url(std::string{"postgresql://db/app?connect_timeout="} + value));
    CHECK(contains(message, "connect_timeout"));
  }
  // An option given after the URL replaces the URL's value, for libpq too.
  auto json_cfg = config_from_json(
      nlohmann::json{{"url", "postgresql://db/app?connect_timeout=10"}, {"connect_timeout", "3s"}});
  REQUIRE(json_cfg);
  CHECK(json_cfg->connect_timeout == std::chrono::seconds(3));
  CHECK_FALSE(contains(json_cfg->conninfo, "connect_timeout"));
  // A replica's own connect_timeout reaches libpq, and cafdb waits at least as long.
  auto replica =
      must_config("postgresql://db/app?connect_timeout=5&read_url=" +
                  std::string{"postgresql%3A%2F%2Freplica%2Fapp%3Fconnect_timeout%3D30"});
  CHECK(contains(replica.read_conninfo, "connect_timeout='30'"));
  CHECK(replica.connect_timeout == std::chrono::seconds(30));
  // SQLite URLs have no libpq: there it stays cafdb's duration.
  CHECK(must_config("sqlite:///a.db?connect_timeout=250ms").connect_timeout == 250ms);
}

TEST_CASE("a libpq keyword/value connection string configures PostgreSQL like a URL", "[config]") {
  auto cfg = must_config("host=db.example port=5433 dbname=app user=me password='se cr\\'et' "
                         "sslmode=disable pool_size=4 pool_timeout = 2s connect_timeout=7");
  CHECK(cfg.engine == engine_kind::postgresql);
  CHECK(cfg.pool_size == 4);
  CHECK(cfg.pool_timeout == std::chrono::seconds(2));
  CHECK(cfg.connect_timeout == std::chrono::seconds(7));
  CHECK(cfg.display == "postgresql://me@db.example:5433/app");
  // libpq gets its keywords, quoted again; cafdb's options stay out.
  CHECK(contains(cfg.conninfo, "password='se cr\\'et'"));
  CHECK(contains(cfg.conninfo, "sslmode='disable'"));
  CHECK_FALSE(contains(cfg.conninfo, "pool_size"));
  CHECK_FALSE(contains(cfg.redacted_url(), "se cr"));
  // The same from the environment, and as a replica.
  auto replica =
      must_config("postgresql://db/app?read_url=" + std::string{"host%3Dreplica%20dbname%3Dapp"});
  CHECK(contains(replica.read_conninfo, "host='replica'"));
  // Unknown keys are refused with the known ones; SQLite's mode has no place here.
  auto unknown = error_of(config_from_url("host=db dbnmae=app"));
  CHECK(contains(unknown, "'dbnmae'"));
  CHECK(contains(unknown, "pool_size"));
  CHECK(contains(error_of(config_from_url("host=db mode=rw")), "SQLite"));
  CHECK(contains(error_of(config_from_url("host=db pool_size=0")), "pool_size"));
  CHECK(contains(error_of(config_from_url("host")), "no scheme"));
  // A replica as a URL inside the string; line breaks and tabs separate like spaces.
  auto with_url = must_config("host=db read_url='postgresql://r:pw@replica/app'\tdbname=app\n");
  CHECK(contains(with_url.read_conninfo, "host='replica'"));
  CHECK(contains(with_url.conninfo, "dbname='app'"));
  CHECK(contains(error_of(config_from_url(std::string{"host=db\x01"})), "control character"));
  // After a quoted password the next key is certain, so an unknown one is named.
  auto after_quoted = error_of(config_from_url("password='pw' bogus=1"));
  CHECK(contains(after_quoted, "'bogus'"));
  CHECK(contains(after_quoted, "pool_size"));
}

TEST_CASE("an IPv6 host may carry its zone", "[config]") {
  CHECK(must_config("postgresql://[fe80::1%25eth0]:5432/app").display ==
        "postgresql://[fe80::1%eth0]:5432/app");
}

TEST_CASE("a malformed PostgreSQL URL never shows its password", "[config]") {
  for (std::string url : {
           "postgresql://u:hunter2@[::1/db",             // libpq quotes the whole URL
           "postgresql://u:hunter2@[]/db",               //
           "postgresql://u:hunter2@[::1]x/db",           //
           "postgresql://u:hun%zzter2@db/app",           // libpq quotes the bad token
           "postgresql://u:hunter2%00@db/app",           //
           "postgresql://u:hunter2@db/app?PASSWORD=x",   // unknown keyword
           "postgresql://u:hunter2@db/app?sslmode=nope", //
           "postgresql://u:hun/ter2@db/app",             // '/' in the password
           "postgresql://u:12/hunter2@db/app",           //   ... that libpq takes as a port
           "postgresql://u:hun@ter2@db/app",             // '@' in the password
           "postgresql://u:hun?ter2@db/app",             // '?' before the '@'
           "postgresql://db/app?password=hun@ter2",      // '@' in a query value
           "postgresql://db/app?password=hunter2&x",     //
           "postgresql://db/app?password=hunter2&connect_timeout=x",
           "postgresql://u:hunter2@db:99999/app",          //
           "user:hunter2@db://app",                        // no scheme
           "postgresql://u:hunter2@db/app\n",              // a control character
           "host=db password='hunter2",                    // connection string: no closing quote
           "host=db password=hun ter2",                    //   a space in an unquoted password
           "host=db password=hun ter2=x",                  //   ... that reads as a key
           "host=db password=hunter2 sslmode=nope",        //
           "host=db password=hunter2 connect_timeout=x",   //
           "postgresql://[::1?x&password=hunter2]/app",    // a ']' past the query's '?'
           "log_level=x:hunter2@db/app",                   // a URL without its scheme
           "password=hun ter2 pool_size=ter2",             // an option after a secret
           "sqlite:///u:hunter2@db/app?pool_size=x",       // a changed scheme
           "postgresql://db/app?user=me?password=hunter2", // a second '?'
           "postgresql://db/app?password=hun&ter2=1",      // '&' in a query password
           "postgresql://db/app?password=hun&pool_size=ter2",
       }) {
    INFO(url);
    std::optional<outcome<config>> cfg;
    REQUIRE_NOTHROW(cfg.emplace(config_from_url(url)));
    auto message = error_of(*cfg);
    CHECK_FALSE(contains(message, "hunter2"));
    CHECK_FALSE(contains(message, "ter2"));
    CHECK(dumps_as_json(message));
  }
}

TEST_CASE("redaction follows the URL's structure, not patterns", "[config]") {
  config cfg;
  // The user info ends at the last '@': a '/' or '@' in an unencoded password stays hidden.
  cfg.url = "postgresql://app:se/cr@et@db.example:5432/app";
  CHECK(cfg.redacted_url() == "postgresql://app:***@db.example:5432/app");
  cfg.url = "postgresql://app:12/secret@db/app";
  CHECK_FALSE(contains(cfg.redacted_url(), "secret"));
  CHECK_FALSE(contains(cfg.redacted_url(), "12"));
  // Secret query parameters, whatever their case or encoding. What follows a secret is
  // hidden too: with an unencoded '&' or '?' in it, its rest looks like more parameters.
  for (std::string key :
       {"password", "PASSWORD", "Password", "sslpassword", "passfile", "pass%77ord"}) {
    cfg.url = "postgresql://db/app?sslmode=require&" + key + "=s1&cret&application_name=x";
    CHECK(cfg.redacted_url() == "postgresql://db/app?sslmode=require&" + key + "=***&***&***");
  }
  cfg.url = "postgresql://db/app?password=s1?read_url=cret";
  CHECK(cfg.redacted_url() == "postgresql://db/app?password=***?***");
  // An unknown key may be a piece of a mangled password: neither it nor its value shows.
  cfg.url = "postgresql://db/app?typo=s6&sslmode=require";
  CHECK(cfg.redacted_url() == "postgresql://db/app?***&sslmode=require");
  // A '?' inside the query separates too.
  cfg.url = "postgresql://db/app?user=me?password=s1";
  CHECK(cfg.redacted_url() == "postgresql://db/app?user=me?password=***");
  // A libpq keyword/value string (no scheme) is redacted pair by pair.
  cfg.url = "host=db password=s1 dbname=app";
  CHECK(cfg.redacted_url() == "host=db password=*** ***");
  // A replica URL inside the query is redacted in turn.
  cfg.url = "postgresql://db/app?read_url=postgresql%3A%2F%2Fr%3As7%40replica%2Fapp";
  CHECK_FALSE(contains(cfg.redacted_url(), "s7"));
  CHECK(contains(cfg.redacted_url(), "replica"));
  // An '@' after the query starts: the value holding it is a password's, so it is hidden.
  cfg.url = "postgresql://db:5432?password=me@work";
  CHECK_FALSE(contains(cfg.redacted_url(), "work"));
  CHECK_FALSE(contains(cfg.redacted_url(), "me"));
  // SQLite paths have no user info.
  cfg.url = "sqlite:///data/app.db?pool_size=3";
  CHECK(cfg.redacted_url() == "sqlite:///data/app.db?pool_size=3");
  // The result is valid UTF-8 (status reports it as JSON).
  cfg.url = std::string{"postgresql://u:p@db/\xff\x01"};
  CHECK(dumps_as_json(cfg.redacted_url()));
}

TEST_CASE("unencoded special characters in a password are refused at load", "[config]") {
  // libpq would read these with a piece of the password as host, port or database name,
  // show it in `display` and send it to a server.
  for (auto url : {"postgresql://app:p@ss@db/app", "postgresql://app:12/ss@db/app",
                   "postgresql://db:5432?password=me@work"}) {
    INFO(url);
    auto message = error_of(config_from_url(url));
    CHECK(contains(message, "percent-encode"));
  }
  // Encoded, they pass; libpq decodes them.
  auto cfg = must_config("postgresql://app:p%40s%2Fs%3Fx@db/app?application_name=me%40work");
  CHECK(cfg.display == "postgresql://app@db/app");
  CHECK(contains(cfg.conninfo, "password='p@s/s?x'"));
  CHECK(cfg.redacted_url() == "postgresql://app:***@db/app?application_name=me%40work");
  auto v6 = must_config("postgresql://[::1]:5433/app");
  CHECK(v6.display == "postgresql://[::1]:5433/app");
}

TEST_CASE("values that C APIs would cut short are refused", "[config]") {
  error_of(config_from_url(std::string{"sqlite:///a.db\0x", 16}));
  error_of(config_from_url("sqlite:///a%00b.db"));
  error_of(config_from_url("postgresql://db/app%00x"));
  error_of(config_from_json(
      nlohmann::json{{"url", "sqlite::memory:"}, {"migrations_dir", std::string{"m\0x", 3}}}));
  unset_database_variables();
  ::setenv("DB_USERNAME", "app", 1);
  ::setenv("DB_PASSWORD", "pw", 1);
  ::setenv("DB_HOST", "db", 1);
  ::setenv("DB_PORT", "99999", 1);
  ::setenv("DB_NAME", "app", 1);
  CHECK(contains(error_of(config_from_env()), "DB_PORT"));
  unset_database_variables();
}

TEST_CASE("a .env file with CRLF line ends keeps quoted values intact", "[config]") {
  unset_database_variables();
  temp_dir dir;
  {
    std::ofstream out{dir.file(".env"), std::ios::binary};
    out << "DB_USERNAME=app\r\nDB_PASSWORD=\"p w\"\r\nDB_HOST=db\r\nDB_PORT=5432\r\n"
        << "DB_NAME=app # the database\r\n";
  }
  auto cfg = config_from_env(dir.file(".env"));
  INFO((cfg ? std::string{} : cfg.error().message));
  REQUIRE(cfg);
  CHECK(contains(cfg->conninfo, "password='p w'"));
  CHECK(contains(cfg->conninfo, "dbname='app'"));
  CHECK_FALSE(contains(cfg->redacted_url(), "p%20w"));
}

TEST_CASE("a deeply nested option value is named, not dumped", "[config]") {
  // Dumping a value into a message recursed once per level and overflowed the stack.
  std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  auto object = nlohmann::json::parse(R"({"url": "sqlite::memory:", "pool_size": )" + deep + "}",
                                      nullptr, false);
  REQUIRE(object.is_object());
  auto message = error_of(config_from_json(object));
  CHECK(contains(message, "'pool_size'"));
  CHECK(contains(message, "an array"));
  CHECK(message.size() < 200);
}

TEST_CASE("a duration without a unit is refused, and the error says how to write it", "[config]") {
  // The option names are SQLAlchemy's, where pool_timeout=30 means 30 seconds; cafdb once
  // read it as 30 ms. Neither reading is guessed: every source refuses it.
  auto url = error_of(config_from_url("sqlite:///a.db?pool_timeout=30"));
  CHECK(contains(url, "'pool_timeout' needs a unit"));
  CHECK(contains(url, "30s"));
  CHECK(contains(url, "30ms"));
  auto number = error_of(
      config_from_json(nlohmann::json{{"url", "sqlite::memory:"}, {"statement_timeout", 250}}));
  CHECK(contains(number, "'statement_timeout' needs a unit"));
  CHECK(contains(number, "250s"));
  auto text = error_of(
      config_from_json(nlohmann::json{{"url", "sqlite::memory:"}, {"idle_timeout", " 1.5 "}}));
  CHECK(contains(text, "1.5ms"));
  // A negative number is not told to become "-1s", which is refused too.
  auto negative = error_of(config_from_url("sqlite:///a.db?statement_timeout=-1"));
  CHECK(contains(negative, "must not be negative"));
  CHECK_FALSE(contains(negative, "-1s"));
  // An in-memory database takes options like a file does.
  auto memory = must_config("sqlite::memory:?pool_size=1&pool_timeout=2s");
  CHECK(memory.in_memory());
  CHECK(memory.pool_timeout == std::chrono::seconds(2));
  unset_database_variables();
  ::setenv("CAFDB_URL", "sqlite::memory:", 1);
  ::setenv("CAFDB_POOL_TIMEOUT", "30", 1);
  auto env = error_of(config_from_env());
  CHECK(contains(env, "CAFDB_POOL_TIMEOUT"));
  CHECK(contains(env, "30s"));
  ::setenv("CAFDB_POOL_TIMEOUT", "30s", 1);
  auto fixed = config_from_env();
  REQUIRE(fixed);
  CHECK(fixed->pool_timeout == std::chrono::seconds(30));
  unset_database_variables();
  // Zero is zero in every unit: "off" needs none.
  CHECK(must_config("sqlite:///a.db?idle_timeout=0").idle_timeout == 0ms);
  CHECK(must_config("sqlite:///a.db?pool_recycle=0&idle_timeout=0ms").pool_recycle == 0ms);
  // libpq's own connect_timeout in a PostgreSQL URL stays whole seconds, as in every
  // PostgreSQL tool.
  CHECK(must_config("postgresql://db/app?connect_timeout=3").connect_timeout ==
        std::chrono::seconds(3));
}

TEST_CASE("DATABASE_URL configures like CAFDB_URL, which wins when both are set", "[config]") {
  unset_database_variables();
  ::setenv("DATABASE_URL", "sqlite:///from-platform.db", 1);
  auto platform = config_from_env();
  REQUIRE(platform);
  CHECK(contains(platform->url, "from-platform.db"));
  ::setenv("CAFDB_URL", "sqlite:///from-cafdb.db", 1);
  auto ours = config_from_env();
  REQUIRE(ours);
  CHECK(contains(ours->url, "from-cafdb.db"));
  ::unsetenv("CAFDB_URL");
  ::setenv("DATABASE_URL", "sqlite:///a.db?pool_size=x", 1);
  CHECK(contains(error_of(config_from_env()), "DATABASE_URL: "));
  unset_database_variables();
}

TEST_CASE("an unknown CAFDB_ variable is refused with the list of known ones", "[config]") {
  unset_database_variables();
  ::setenv("CAFDB_URL", "sqlite::memory:", 1);
  ::setenv("CAFDB_POOL_SIZ", "4", 1); // a typo would otherwise be ignored without a word
  auto typo = error_of(config_from_env());
  CHECK(contains(typo, "unknown variable CAFDB_POOL_SIZ"));
  CHECK(contains(typo, "CAFDB_POOL_SIZE"));
  CHECK(contains(typo, "CAFDB_POOL_TIMEOUT"));
  ::unsetenv("CAFDB_POOL_SIZ");
  ::setenv("cafdb_pool_size", "4", 1);
  CHECK(contains(error_of(config_from_env()), "did you mean CAFDB_POOL_SIZE?"));
  ::unsetenv("cafdb_pool_size");
  // The same in a .env file.
  temp_dir dir;
  {
    std::ofstream out{dir.file("app.env")};
    out << "CAFDB_URL=sqlite::memory:\nCAFDB_MAX_OVERFLOWS=2\n";
  }
  CHECK(contains(error_of(config_from_env(dir.file("app.env"))),
                 "unknown variable CAFDB_MAX_OVERFLOWS"));
  // A name that is not UTF-8 shows escaped: messages travel as JSON (the fuzzer found it).
  {
    std::ofstream out{dir.file("bytes.env")};
    out << "CAFDB_URL=sqlite::memory:\nCAFDB_P\xe5OL=2\n";
  }
  auto bytes = error_of(config_from_env(dir.file("bytes.env")));
  CHECK(contains(bytes, "CAFDB_P\\xe5OL"));
  CHECK(dumps_as_json(bytes));
  // Known ones pass.
  ::setenv("CAFDB_POOL_SIZE", "4", 1);
  auto fine = config_from_env();
  REQUIRE(fine);
  CHECK(fine->pool_size == 4);
  unset_database_variables();
}
