// Configuration loading: URLs, JSON, environment, durations and redaction.
#include <cstdlib>
#include <fstream>

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
                                             {"pool_timeout", 1500},
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
