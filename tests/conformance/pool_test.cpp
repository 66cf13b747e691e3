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

namespace {

// One connection serves read-write sessions, so a request that reaches it after a
// cancelled one proves the cancelled statement was drained first.
template <class Backend>
struct single_connection : with_temp_dir, database_fixture {
  single_connection() : database_fixture(make(dir)) {
    require_ready();
    must_exec({"CREATE TABLE t (x INTEGER)"});
  }
  static config make(const temp_dir& dir) {
    auto cfg = Backend::make_config(dir);
    cfg.pool_size = 1;
    cfg.max_overflow = 0;
    return cfg;
  }
  session open_with_deadline() {
    session_options options;
    options.request_timeout = std::chrono::milliseconds(300);
    auto s = cli->open_session(options);
    REQUIRE(s);
    return std::move(*s);
  }
  void require_cancelled(const caf::expected<result_set>& result) {
    REQUIRE(!result);
    INFO(text(result.error()));
    REQUIRE(is(result.error(), errc::statement_timeout));
    CHECK(describe(result.error()).message.find("cancelled on the server") != std::string::npos);
  }
};

} // namespace

TEMPLATE_TEST_CASE_METHOD(single_connection,
                          "a request past its deadline is cancelled and its connection reused",
                          "[pool][cancel]", sqlite_backend, pg_backend) {
  auto s = this->open_with_deadline();
  auto opened_before = this->stats(TestType::rw_pool).opened;
  this->require_cancelled(s.exec({TestType::endless_sql}));
  // The pool's only connection serves this once the cancelled statement has drained.
  auto again = s.exec({"SELECT 1"});
  INFO((again ? std::string{"ok"} : text(again.error())));
  REQUIRE(again);
  CHECK(again->rows.at(0).at(0).as_int() == 1);
  auto stats = this->stats(TestType::rw_pool);
  CHECK(stats.cancelled == 1);
  CHECK(stats.discarded == 0);
  CHECK(stats.opened == opened_before);
  CHECK(stats.in_use == 0);
}

TEMPLATE_TEST_CASE_METHOD(single_connection,
                          "a transaction whose request passed its deadline is rolled back",
                          "[pool][cancel]", sqlite_backend, pg_backend) {
  auto s = this->open_with_deadline();
  REQUIRE(!s.begin());
  REQUIRE(s.exec({"INSERT INTO t VALUES (1)"}));
  this->require_cancelled(s.exec({TestType::endless_sql}));
  // The transaction is gone; the session says so until the client acknowledges it.
  auto info = s.info();
  REQUIRE(info);
  CHECK(info->phase == session_phase::failed);
  CHECK(is(s.exec({"SELECT 1"}).error(), errc::transaction_failed));
  REQUIRE(!s.rollback());
  CHECK(this->count("t") == 0);
  REQUIRE(!s.begin());
  REQUIRE(s.exec({"INSERT INTO t VALUES (2)"}));
  REQUIRE(!s.commit());
  CHECK(this->count("t") == 1);
  CHECK(this->stats(TestType::rw_pool).discarded == 0);
}
