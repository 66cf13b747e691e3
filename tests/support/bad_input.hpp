// The fixture of the bad-input tests: a ready database with table t (id, v) and a
// check that the database still serves after an error.
#pragma once

#include "support/backends.hpp"

namespace cafdb::test {

template <class Backend>
struct bad_input_fixture : with_temp_dir, database_fixture {
  bad_input_fixture() : database_fixture(Backend::make_config(dir)) {
    require_ready();
    must_exec({std::string{"CREATE TABLE t (id "} + Backend::serial_pk + ", v TEXT)"});
  }

  // After any error, the same database still answers a good request.
  void still_serving() {
    auto ok = cli->exec({"INSERT INTO t (v) VALUES ($1)", {"fine"}});
    INFO((ok ? std::string{"ok"} : text(ok.error())));
    REQUIRE(ok);
    CHECK(ok->affected_rows == 1);
  }
};

} // namespace cafdb::test
