// Conformance: pool exhaustion on every engine.
#include "support/backends.hpp"

using namespace cafdb;
using namespace cafdb::test;

namespace {

template <class Backend>
struct small_pool : with_temp_dir, database_fixture {
  small_pool() : database_fixture(make(dir)) {
    require_ready();
    must_exec({"CREATE TABLE t (x INTEGER)"});
  }
  static config make(const temp_dir& dir) {
    auto cfg = Backend::make_config(dir);
    cfg.pool_size = 2;
    cfg.max_overflow = 0;
    cfg.pool_timeout = std::chrono::milliseconds(300);
    return cfg;
  }
  // On SQLite read-only sessions use the reader pool (pool_size connections); the
  // single writer is covered by the SQLite pool tests.
  session open() {
    session_options options;
    options.read_only = std::string{Backend::name} == "sqlite";
    auto s = cli->open_session(options);
    REQUIRE(s);
    return std::move(*s);
  }
  const char* pool_name() const {
    return std::string{Backend::name} == "sqlite" ? Backend::ro_pool : Backend::rw_pool;
  }
};

} // namespace

TEMPLATE_TEST_CASE_METHOD(small_pool,
                          "the checkout past pool_size times out with the pool's counts", "[pool]",
                          sqlite_backend, pg_backend) {
  auto a = this->open();
  auto b = this->open();
  auto c = this->open();
  REQUIRE(!a.begin());
  REQUIRE(!b.begin());
  auto err = c.begin();
  INFO(text(err));
  REQUIRE(is(err, errc::pool_timeout));
  auto message = describe(err).message;
  CHECK(message.find("2 total, 2 in use, 0 idle, 1 waiting") != std::string::npos);
  CHECK(message.find("pool_size") != std::string::npos);
  auto stats = this->stats(this->pool_name());
  CHECK(stats.timeouts == 1);
  CHECK(stats.in_use == 2);
  // Once a lease comes back, the same request succeeds.
  REQUIRE(!a.rollback());
  REQUIRE(!c.begin());
  REQUIRE(!c.rollback());
  REQUIRE(!b.rollback());
  stats = this->stats(this->pool_name());
  CHECK(stats.in_use == 0);
  CHECK(stats.idle == 2);
}
