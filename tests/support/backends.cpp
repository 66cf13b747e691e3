#include "support/backends.hpp"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

namespace cafdb::test {

config sqlite_backend::make_config(const temp_dir& dir) {
  return file_config(dir);
}

sqlite_backend::late_database::late_database(const temp_dir& dir) : path(dir.file("late.db")) {}

config sqlite_backend::late_database::make_config() const {
  auto cfg = must_config("sqlite:///" + path + "?mode=rw");
  cfg.log_level = "off";
  cfg.retry_unfixable = true; // created after start-up, on purpose
  return cfg;
}

void sqlite_backend::late_database::create() {
  std::ofstream out{path}; // an empty file is a valid, empty SQLite database
  REQUIRE(out.good());
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
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr); // "skipping" notes
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

namespace {

// A name no other test (or test process) on the server uses.
std::string unique_name(const char* prefix) {
  std::random_device rd;
  static std::atomic<int> counter{0};
  return prefix + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" +
         std::to_string(rd() % 100000);
}

// The test server's URL with another database name.
std::string with_database(const std::string& url, const std::string& name) {
  auto path = url.find('/', url.find("://") + 3);
  auto end = url.find('?', path);
  return url.substr(0, path + 1) + name + (end == std::string::npos ? "" : url.substr(end));
}

} // namespace

pg_schema::pg_schema() : name(unique_name("cafdb_t")) {
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

pg_backend::late_database::late_database(const temp_dir&) : name(unique_name("cafdb_late")) {}

pg_backend::late_database::~late_database() {
  // FORCE: a connection still closing must not keep the database alive.
  if (auto url = std::getenv("CAFDB_TEST_PG_URL"))
    try_admin(url, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

config pg_backend::late_database::make_config() const {
  auto cfg = must_config(with_database(pg_url(), name));
  cfg.log_level = "off";
  cfg.retry_unfixable = true; // created after start-up, on purpose
  return cfg;
}

void pg_backend::late_database::create() {
  pg_admin("CREATE DATABASE " + name);
}

} // namespace cafdb::test

namespace cafdb::test {

namespace {

// Runs a shell command; the server tools must not run as root.
int run(const std::string& command) {
  auto as_owner = ::geteuid() == 0 ? "runuser -u postgres -- " + command : command;
  return std::system(as_owner.c_str());
}

std::string pg_bin() {
  auto bin = std::getenv("CAFDB_TEST_PG_BIN");
  if (!bin || !*bin)
    FAIL("CAFDB_TEST_PG_BIN is not set: the fault tests start servers of their own with the "
         "PostgreSQL binaries. Run scripts/test.sh, which sets it.");
  return bin;
}

bool port_is_free(int port) {
  auto fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return free;
}

} // namespace

pg_server::pg_server(int max_connections) {
  auto bin = pg_bin();
  char pattern[] = "/tmp/cafdb-fault.XXXXXX";
  REQUIRE(::mkdtemp(pattern));
  dir = pattern;
  ::chmod(dir.c_str(), 0755);
  if (::geteuid() == 0)
    if (auto pw = ::getpwnam("postgres"))
      REQUIRE(::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) == 0);
  // Below the ephemeral range, away from the shared test servers (25432 and up); the
  // process id spreads parallel test processes apart.
  for (int candidate = 27000 + (::getpid() % 400) * 5; candidate < 32000; ++candidate)
    if (port_is_free(candidate)) {
      port = candidate;
      break;
    }
  REQUIRE(port != 0);
  auto data = dir + "/data";
  INFO("initdb in " << data);
  REQUIRE(run(bin + "/initdb -D " + data + " -U postgres -A trust -N -E UTF8 > " + dir +
              "/initdb.log 2>&1") == 0);
  std::ofstream conf{data + "/postgresql.conf", std::ios::app};
  conf << "listen_addresses = '127.0.0.1'\nport = " << port << "\nunix_socket_directories = '"
       << dir << "'\nfsync = off\nmax_connections = " << max_connections
       << "\nsuperuser_reserved_connections = 0\n";
  conf.close();
  url = "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres";
  start();
}

pg_server::~pg_server() {
  run(std::getenv("CAFDB_TEST_PG_BIN") + std::string{"/pg_ctl -D "} + dir +
      "/data -m immediate -w stop > /dev/null 2>&1");
  std::filesystem::remove_all(dir);
}

void pg_server::stop_immediate() {
  REQUIRE(run(pg_bin() + "/pg_ctl -D " + dir + "/data -m immediate -w stop > /dev/null") == 0);
}

void pg_server::start() {
  INFO("see " << dir << "/server.log");
  REQUIRE(run(pg_bin() + "/pg_ctl -D " + dir + "/data -l " + dir + "/server.log -w start > " +
              "/dev/null") == 0);
}

} // namespace cafdb::test
