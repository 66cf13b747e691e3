#include "support/backends.hpp"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <random>
#include <unistd.h>
#include <vector>

#include <libpq-fe.h>

namespace cafdb::test {

config sqlite_backend::make_config(const temp_dir& dir) {
  return file_config(dir);
}

std::string pg_url() {
  auto url = std::getenv("CAFDB_TEST_PG_URL");
  if (!url || !*url)
    FAIL("CAFDB_TEST_PG_URL is not set: the PostgreSQL tests need a server. Run "
         "scripts/test.sh, which starts a throwaway one.");
  return url;
}

std::string pg_read_url() {
  auto url = std::getenv("CAFDB_TEST_PG_READ_URL");
  if (!url || !*url)
    FAIL("CAFDB_TEST_PG_READ_URL is not set: run scripts/test.sh, which starts a standby.");
  return url;
}

namespace {

// Runs `sql` on the test server; returns libpq's error text, or "" on success.
std::string try_admin(const char* url, const std::string& sql) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn{PQconnectdb(url), &PQfinish};
  if (PQstatus(conn.get()) != CONNECTION_OK)
    return PQerrorMessage(conn.get());
  std::unique_ptr<PGresult, decltype(&PQclear)> res{PQexec(conn.get(), sql.c_str()), &PQclear};
  auto status = PQresultStatus(res.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    return PQerrorMessage(conn.get());
  return {};
}

} // namespace

void pg_admin(const std::string& sql) {
  auto failure = try_admin(pg_url().c_str(), sql);
  INFO(sql << ": " << failure);
  REQUIRE(failure.empty());
}

std::string with_schema(const std::string& url, const std::string& schema) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
         schema;
}

pg_schema::pg_schema() {
  std::random_device rd;
  static int counter = 0;
  name = "cafdb_t" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" +
         std::to_string(rd() % 100000);
  pg_admin("CREATE SCHEMA " + name);
}

pg_schema::~pg_schema() {
  // Runs at exit too, outside any test: no assertions here.
  if (auto url = std::getenv("CAFDB_TEST_PG_URL"))
    try_admin(url, "DROP SCHEMA IF EXISTS " + name + " CASCADE");
}

config pg_backend::make_config(const temp_dir&) {
  // A schema per database. Never destroyed on purpose: at exit OpenSSL is already torn
  // down and libpq cannot connect to drop them; the test server is thrown away anyway.
  static auto* schemas = new std::vector<std::unique_ptr<pg_schema>>();
  schemas->push_back(std::make_unique<pg_schema>());
  auto cfg = must_config(with_schema(pg_url(), schemas->back()->name));
  cfg.pool_timeout = std::chrono::milliseconds(5000);
  cfg.statement_timeout = std::chrono::milliseconds(20000);
  cfg.log_level = std::getenv("CAFDB_TEST_LOG") ? std::getenv("CAFDB_TEST_LOG") : "off";
  return cfg;
}

} // namespace cafdb::test
