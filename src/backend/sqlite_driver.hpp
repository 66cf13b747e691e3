// SQLite driver: one `sqlite3*` with a prepared-statement cache.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "backend/driver.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace cafdb {

struct sqlite_options {
  /// File path or ":memory:".
  std::string path;
  bool create_if_missing = true;
  /// Shared by every handle of one database: set once any of them opened the file.
  /// From then on a missing file is an error, never a new empty database (a file
  /// deleted while open would otherwise come back empty, and acknowledged writes
  /// would go to a file the readers never see).
  std::shared_ptr<std::atomic<bool>> opened_once = std::make_shared<std::atomic<bool>>(false);
  std::chrono::milliseconds busy_timeout{5000};
  /// Prepared statements kept per connection before the cache is cleared.
  size_t statement_cache_size = 256;
};

/// WAL, foreign keys on, `busy_timeout`; a writer begins with BEGIN IMMEDIATE, a
/// reader runs with `query_only`. Placeholders `$N` are bound by name.
class sqlite_driver final : public driver {
 public:
  sqlite_driver(sqlite_options options, connection_role role);
  ~sqlite_driver() override;

  sqlite_driver(const sqlite_driver&) = delete;
  sqlite_driver& operator=(const sqlite_driver&) = delete;

  outcome<done> open() override;
  outcome<result_set> execute(const statement& stmt) override;
  outcome<done> begin(bool read_only, const tx_options& options) override;
  outcome<done> commit() override;
  outcome<done> rollback() override;
  std::vector<outcome<result_set>> execute_each(const std::vector<statement>& statements) override;
  outcome<result_set> execute_many(const bulk_statement& bulk, size_t& failed_at) override;
  outcome<result_set> execute_many_transaction(const bulk_statement& bulk, bool read_only,
                                               size_t& failed_at) override;
  outcome<done> set_read_only(bool read_only) override;
  void set_deadline(std::chrono::steady_clock::time_point deadline) override;
  bool in_transaction() const override;
  outcome<done> reset_session() override;
  std::string describe() const override;
  /// SQLite itself tells: sqlite3_stmt_readonly of the prepared statement.
  bool certainly_reads(const std::string& sql) override;

 protected:
  void interrupt() noexcept override;
  outcome<done> run_control(const std::string& sql) override { return run_simple(sql.c_str()); }

 private:
  outcome<done> run_simple(const char* sql);
  outcome<result_set> run_script(const std::string& sql);
  /// The statements of a script one after the other; the last one's result.
  outcome<result_set> run_statements_of(const std::string& sql);
  /// A prepared statement and what is known of it.
  struct prepared {
    sqlite3_stmt* stmt = nullptr;
    /// Kept in the cache (reset, not finalized, after use).
    bool cached = false;
    /// More statements follow in the text (a script).
    bool has_tail = false;
    /// INSERT or REPLACE: it reports the rowid it wrote.
    bool inserts = false;
    /// What running it changes in the session (session_changes).
    unsigned changes = 0;
    /// It asks the connection's own state (last_insert_rowid(), changes()).
    bool connection_state = false;
    /// Transaction control anywhere in its text (transaction_control), which SQLite
    /// calls read-only.
    bool transaction_control = false;
    /// parameter_slots, worked out once for a cached statement; they fit exactly
    /// `parameters` values (any other count is checked, and refused, anew).
    std::vector<int> slots;
    size_t parameters = 0;
    bool slots_known = false;
  };
  /// The cache entry of `sql` (valid until the cache is cleared), or a statement of its
  /// own for a script.
  outcome<prepared*> prepare(const std::string& sql);
  /// `prepare`, but null for a script of several statements (its statement is
  /// finalized: scripts run through run_script, statement by statement).
  outcome<prepared*> prepare_single(const std::string& sql);
  /// Binds `count` parameters starting at `params`.
  outcome<done> bind(prepared& p, const value* params, size_t count);
  /// For each `?` slot of `stmt`, the index into the parameters (`$N` is N - 1).
  outcome<std::vector<int>> parameter_slots(sqlite3_stmt* stmt, size_t given) const;
  outcome<done> bind_slots(sqlite3_stmt* stmt, const value* params, const std::vector<int>& slots);
  void clear_cache() noexcept;
  outcome<result_set> step_all(sqlite3_stmt* stmt, bool inserts);
  /// The error of a step that failed with `rc`; `first`: the statement's first step.
  db_error step_error(int rc, sqlite3_stmt* stmt, bool first) const;
  db_error error_from(int code, const std::string& context) const;
  /// The busy handler: waits for a lock at most busy_timeout, and not past a cancel or
  /// the deadline.
  static int on_busy(void* self, int attempt);
  void close() noexcept;

  sqlite_options options_;
  connection_role role_;
  std::atomic<sqlite3*> db_{nullptr};
  std::unordered_map<std::string, prepared> cache_;
  /// The entry used last: a batch repeats one statement, and comparing its text is
  /// cheaper than hashing it.
  std::pair<const std::string, prepared>* last_ = nullptr;
  /// The statement of a script (not cached).
  prepared uncached_;
  /// The file opened (device, inode): a writer checks that the path still names it.
  std::optional<std::pair<uint64_t, uint64_t>> opened_file_;
  static std::optional<std::pair<uint64_t, uint64_t>> file_id(const std::string& path);
  /// Fails if the path no longer names the file opened (deleted or replaced).
  outcome<done> check_file() const;
  bool read_only_ = false;
  /// See set_deadline; checked by a progress handler, installed on first use.
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  bool deadline_watched_ = false;
  /// When the current wait for a lock began (on_busy).
  std::chrono::steady_clock::time_point busy_since_;
};

/// The name of an SQLite result code with its number, e.g. "SQLITE_CONSTRAINT(2067)".
std::string sqlite_code_name(int extended_code);

/// Maps an SQLite (extended) result code to a cafdb error code.
errc sqlite_errc(int extended_code, bool during_prepare);

} // namespace cafdb
