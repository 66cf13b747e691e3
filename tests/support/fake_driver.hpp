// A scripted driver for unit tests of actor logic: records every call and fails the
// calls a test asks it to fail. Never used where real SQLite can run the scenario.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/driver.hpp"

namespace cafdb::test {

/// Shared between a test and every fake driver a factory makes.
struct fake_script {
  std::mutex mtx;
  std::vector<std::string> calls;
  /// COMMIT fails as if the link broke mid-commit.
  bool lose_connection_on_commit = false;
  /// ROLLBACK fails as if the link broke.
  bool lose_connection_on_rollback = false;
  /// Every statement fails as if the link broke while it ran.
  bool lose_connection_on_exec = false;
  /// The next this many opens fail as if the server were unreachable.
  int failing_opens = 0;
  /// The next this many pings fail as if the link were dead.
  int failing_pings = 0;
  /// Statement texts that open or end a transaction behind the session's back, as a
  /// server-side function could: what the connection's state check must catch.
  std::string opens_transaction;
  std::string ends_transaction;
  /// A statement text the server refuses (a syntax error): the connection stays fine.
  std::string refuses;
  int opened = 0;

  void record(std::string call) {
    std::lock_guard<std::mutex> guard{mtx};
    calls.push_back(std::move(call));
  }
  std::vector<std::string> snapshot() {
    std::lock_guard<std::mutex> guard{mtx};
    return calls;
  }
};

class fake_driver final : public driver {
 public:
  explicit fake_driver(std::shared_ptr<fake_script> script) : script_(std::move(script)) {}

  outcome<done> open() override {
    std::lock_guard<std::mutex> guard{script_->mtx};
    script_->calls.push_back("open");
    if (script_->failing_opens > 0) {
      script_->failing_opens -= 1;
      return db_error{errc::connect_failed, "fake: the server is unreachable", "08001",
                      "fake: connection refused"};
    }
    script_->opened += 1;
    return done{};
  }
  outcome<done> ping() override {
    std::lock_guard<std::mutex> guard{script_->mtx};
    script_->calls.push_back("ping");
    if (script_->failing_pings > 0) {
      script_->failing_pings -= 1;
      return lost("a ping");
    }
    return done{};
  }
  bool may_block() const override { return false; }
  outcome<result_set> execute(const statement& stmt) override {
    script_->record("exec " + stmt.sql);
    if (script_->lose_connection_on_exec)
      return lost("a statement");
    if (stmt.sql == script_->refuses)
      return db_error{errc::syntax_error, "fake: the statement does not parse", "42601",
                      "fake: syntax error"};
    session_changes_ |= session_changes(stmt.sql, engine_kind::sqlite);
    if (stmt.sql == script_->opens_transaction)
      in_tx_ = true;
    if (stmt.sql == script_->ends_transaction)
      in_tx_ = false;
    result_set r;
    r.columns = {"x"};
    r.rows = {{value{1}}};
    return r;
  }
  outcome<done> begin(bool read_only, const tx_options& options) override {
    // Options other than the defaults show in the call: "begin serializable".
    auto call = std::string{read_only ? "begin ro" : "begin"};
    if (options.isolation != isolation_level::server_default)
      call += " " + to_string(options.isolation);
    if (options.lock != sqlite_lock::engine_default)
      call += " " + to_string(options.lock);
    script_->record(std::move(call));
    in_tx_ = true;
    return done{};
  }
  outcome<done> commit() override {
    script_->record("commit");
    if (script_->lose_connection_on_commit)
      return lost("COMMIT");
    in_tx_ = false;
    return done{};
  }
  outcome<done> rollback() override {
    script_->record("rollback");
    if (script_->lose_connection_on_rollback)
      return lost("ROLLBACK");
    in_tx_ = false;
    return done{};
  }
  outcome<done> savepoint(const std::string& name) override {
    script_->record("savepoint " + name);
    return done{};
  }
  outcome<done> release(const std::string& name) override {
    script_->record("release " + name);
    return done{};
  }
  outcome<done> rollback_to(const std::string& name) override {
    script_->record("rollback_to " + name);
    return done{};
  }
  outcome<done> set_read_only(bool) override { return done{}; }
  bool in_transaction() const override { return in_tx_; }
  outcome<done> reset_session() override {
    if (session_changes_ != 0)
      script_->record("reset session");
    session_changes_ = 0;
    return done{};
  }
  void interrupt() noexcept override {}
  std::string describe() const override { return "fake"; }

 protected:
  outcome<done> run_control(const std::string& sql) override {
    script_->record(sql);
    return done{};
  }

 private:
  static db_error lost(const char* during) {
    return db_error{errc::connection_lost, std::string{"link broke during "} + during, "08006",
                    "fake: server closed the connection"};
  }
  std::shared_ptr<fake_script> script_;
  bool in_tx_ = false;
};

inline driver_factory fake_factory(std::shared_ptr<fake_script> script) {
  return [script](connection_role) { return std::make_unique<fake_driver>(script); };
}

} // namespace cafdb::test
