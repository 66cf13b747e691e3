// SQLite-specific bad input (the conformance suite covers what every engine shares).
#include "support/bad_input.hpp"

using namespace cafdb;
using namespace cafdb::test;

using bad_input = bad_input_fixture<sqlite_backend>;

TEST_CASE_METHOD(bad_input, "SQLite: placeholders other than $N are refused with the syntax to use",
                 "[bad_input]") {
  auto foreign = cli->exec({"SELECT ?", {1}});
  REQUIRE(!foreign);
  CHECK(is(foreign.error(), errc::invalid_argument));
  CHECK(describe(foreign.error()).message.find("$1, $2") != std::string::npos);
  auto named = cli->exec({"SELECT :name", {1}});
  REQUIRE(!named);
  CHECK(is(named.error(), errc::invalid_argument));
  still_serving();
}

TEST_CASE("an unwritable database path fails setup with connect_failed naming the path",
          "[bad_input]") {
  auto cfg = must_config("sqlite:////nonexistent-cafdb-dir/sub/app.db");
  cfg.setup_timeout = std::chrono::milliseconds(300);
  cfg.log_level = "off";
  database_fixture broken{cfg};
  auto ready = broken.cli->await_ready(10s);
  REQUIRE(!ready);
  INFO(text(ready.error()));
  CHECK(is(ready.error(), errc::connect_failed));
  CHECK(describe(ready.error()).message.find("/nonexistent-cafdb-dir/sub/app.db") !=
        std::string::npos);
  // Another database in the same actor system keeps serving.
  temp_dir dir;
  auto good = spawn_database(broken.sys, file_config(dir));
  client other{broken.sys, good, 10s};
  REQUIRE(other.await_ready(10s));
  REQUIRE(other.exec({"SELECT 1"}));
  REQUIRE(!other.stop());
}

TEST_CASE("unknown config keys and malformed URLs are rejected with the key named", "[bad_input]") {
  auto unknown = config_from_json(nlohmann::json{{"url", "sqlite::memory:"}, {"pool_sise", 3}});
  REQUIRE(!unknown);
  CHECK(unknown.error().code == errc::invalid_config);
  CHECK(unknown.error().message.find("'pool_sise'") != std::string::npos);
  CHECK(unknown.error().message.find("pool_size") != std::string::npos);
  auto malformed = config_from_url("sqlite:/relative.db");
  REQUIRE(!malformed);
  CHECK(malformed.error().code == errc::invalid_config);
  CHECK(malformed.error().message.find("three slashes") != std::string::npos);
  auto no_scheme = config_from_url("just-a-file.db");
  REQUIRE(!no_scheme);
  CHECK(no_scheme.error().message.find("no scheme") != std::string::npos);
  auto bad_value = config_from_url("sqlite:///x.db?pool_size=0");
  REQUIRE(!bad_value);
  CHECK(bad_value.error().message.find("'pool_size'") != std::string::npos);
}
