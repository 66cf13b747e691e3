// read_connect_failure: the SQLSTATE of a failed PostgreSQL connection attempt comes from
// the server's message, whatever language the server writes in (lc_messages).
#include <catch2/catch.hpp>

#include "backend/pg_driver.hpp"

using namespace cafdb;

TEST_CASE("a failed connect's SQLSTATE is read from the server's message in any language",
          "[sql_text]") {
  auto german = read_connect_failure(
      "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28P01: "
      "Passwort-Authentifizierung für Benutzer »app« fehlgeschlagen\n"
      "LOCATION:  auth_failed, auth.c:326\n");
  CHECK(german.sqlstate == "28P01");
  CHECK(german.message == "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  "
                          "Passwort-Authentifizierung für Benutzer »app« fehlgeschlagen");

  auto full = read_connect_failure("connection to server at \"::1\", port 5432 failed: FATAL:  "
                                   "53300: sorry, too many clients already\n"
                                   "LOCATION:  InitProcess, proc.c:364");
  CHECK(full.sqlstate == "53300");
  CHECK(full.message.find("53300") == std::string::npos);
  CHECK(full.message.find("LOCATION") == std::string::npos);

  // Two hosts tried: the first server's code counts.
  auto two = read_connect_failure(
      "connection to server at \"a\", port 1 failed: FATAL:  3D000: database \"x\" does not "
      "exist\nLOCATION:  InitPostgres, postinit.c:885\nconnection to server at \"b\", port 2 "
      "failed: Connection refused\n");
  CHECK(two.sqlstate == "3D000");
  CHECK(two.message.find("Connection refused") != std::string::npos);
}

TEST_CASE("failures libpq finds itself are classified from its text", "[sql_text]") {
  CHECK(read_connect_failure("connection to server at \"127.0.0.1\", port 1 failed: Connection "
                             "refused\n\tIs the server running on that host?")
            .sqlstate == "08001");
  CHECK(read_connect_failure("fe_sendauth: no password supplied").sqlstate == "28000");
  CHECK(read_connect_failure("").sqlstate == "08001");
}
