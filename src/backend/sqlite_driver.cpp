#include "backend/sqlite_driver.hpp"

#include "tx_begin.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <iterator>
#include <thread>

#include <sqlite3.h>

namespace cafdb {

namespace {

const char* primary_code_name(int code) {
  switch (code & 0xff) {
  case SQLITE_OK:
    return "SQLITE_OK";
  case SQLITE_ERROR:
    return "SQLITE_ERROR";
  case SQLITE_INTERNAL:
    return "SQLITE_INTERNAL";
  case SQLITE_PERM:
    return "SQLITE_PERM";
  case SQLITE_ABORT:
    return "SQLITE_ABORT";
  case SQLITE_BUSY:
    return "SQLITE_BUSY";
  case SQLITE_LOCKED:
    return "SQLITE_LOCKED";
  case SQLITE_NOMEM:
    return "SQLITE_NOMEM";
  case SQLITE_READONLY:
    return "SQLITE_READONLY";
  case SQLITE_INTERRUPT:
    return "SQLITE_INTERRUPT";
  case SQLITE_IOERR:
    return "SQLITE_IOERR";
  case SQLITE_CORRUPT:
    return "SQLITE_CORRUPT";
  case SQLITE_NOTFOUND:
    return "SQLITE_NOTFOUND";
  case SQLITE_FULL:
    return "SQLITE_FULL";
  case SQLITE_CANTOPEN:
    return "SQLITE_CANTOPEN";
  case SQLITE_PROTOCOL:
    return "SQLITE_PROTOCOL";
  case SQLITE_SCHEMA:
    return "SQLITE_SCHEMA";
  case SQLITE_TOOBIG:
    return "SQLITE_TOOBIG";
  case SQLITE_CONSTRAINT:
    return "SQLITE_CONSTRAINT";
  case SQLITE_MISMATCH:
    return "SQLITE_MISMATCH";
  case SQLITE_MISUSE:
    return "SQLITE_MISUSE";
  case SQLITE_NOLFS:
    return "SQLITE_NOLFS";
  case SQLITE_AUTH:
    return "SQLITE_AUTH";
  case SQLITE_RANGE:
    return "SQLITE_RANGE";
  case SQLITE_NOTADB:
    return "SQLITE_NOTADB";
  default:
    return "SQLITE_UNKNOWN";
  }
}

bool is_blank(const char* text) {
  // Whitespace and SQL comments only.
  const char* p = text;
  while (*p) {
    if (std::isspace(static_cast<unsigned char>(*p))) {
      ++p;
    } else if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n')
        ++p;
    } else if (p[0] == '/' && p[1] == '*') {
      const char* end = std::strstr(p + 2, "*/");
      if (!end)
        return true;
      p = end + 2;
    } else {
      return false;
    }
  }
  return true;
}

// INSERT and REPLACE report the rowid they wrote; other statements leave SQLite's
// last rowid as an earlier statement set it, so it is read for these two only.
bool writes_rowid(const std::string& sql) {
  auto word = leading_keyword(sql);
  return word == "insert" || word == "replace";
}

// Calls a function that answers the connection's own state (last_insert_rowid(),
// changes(), total_changes()): on a reader connection it would answer that one's.
// Errs towards yes (a name in a literal counts too): the statement then stays on
// the writer, where it ran before reads went in place.
bool reads_connection_state(const std::string& sql) {
  auto text = to_lower(sql);
  if (text.find("last_insert_rowid") != std::string::npos)
    return true;
  for (auto at = text.find("changes"); at != std::string::npos; at = text.find("changes", at + 1)) {
    auto next = text.find_first_not_of(" \t\r\n", at + 7);
    if (next != std::string::npos && text[next] == '(')
      return true;
  }
  return false;
}

// A column declared BOOLEAN or BOOL (any case): SQLite keeps the declared type,
// though it stores the values as integers.
bool declares_boolean(const char* decl) {
  if (!decl)
    return false;
  auto type = to_lower(decl);
  return type == "boolean" || type == "bool";
}

// Finalizes a statement that is not kept in the cache when it goes out of scope.
struct stmt_guard {
  sqlite3_stmt* stmt;
  bool cached;
  ~stmt_guard() {
    if (!stmt)
      return;
    if (cached) {
      sqlite3_reset(stmt);
      sqlite3_clear_bindings(stmt);
    } else {
      sqlite3_finalize(stmt);
    }
  }
};

} // namespace

std::string sqlite_code_name(int extended_code) {
  return std::string{primary_code_name(extended_code)} + "(" + std::to_string(extended_code) + ")";
}

errc sqlite_errc(int extended_code, bool during_prepare) {
  switch (extended_code & 0xff) {
  case SQLITE_CONSTRAINT:
    return errc::constraint_violation;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return errc::busy;
  case SQLITE_READONLY:
    return errc::read_only_violation;
  case SQLITE_INTERRUPT:
    return errc::statement_timeout;
  case SQLITE_CANTOPEN:
  case SQLITE_NOTADB:
  case SQLITE_PERM:
  case SQLITE_AUTH:
    return errc::connect_failed;
  case SQLITE_RANGE:
  case SQLITE_TOOBIG:
  case SQLITE_MISMATCH:
    return errc::invalid_argument;
  case SQLITE_MISUSE:
  case SQLITE_INTERNAL:
    return errc::internal_error;
  case SQLITE_ERROR:
    return during_prepare ? errc::syntax_error : errc::database_error;
  default:
    return errc::database_error;
  }
}

sqlite_driver::sqlite_driver(sqlite_options options, connection_role role)
    : options_(std::move(options)), role_(role) {}

sqlite_driver::~sqlite_driver() {
  close();
}

void sqlite_driver::clear_cache() noexcept {
  for (auto& entry : cache_)
    sqlite3_finalize(entry.second.stmt);
  cache_.clear();
  last_ = nullptr;
}

void sqlite_driver::close() noexcept {
  clear_cache();
  if (auto db = db_.exchange(nullptr))
    sqlite3_close_v2(db);
  deadline_watched_ = false;
}

std::string sqlite_driver::describe() const {
  return "sqlite:" + options_.path + " (" + to_string(role_) + ")";
}

db_error sqlite_driver::error_from(int code, const std::string& context) const {
  auto db = db_.load();
  auto extended = db ? sqlite3_extended_errcode(db) : code;
  if ((extended & 0xff) != (code & 0xff))
    extended = code;
  bool during_prepare = context == "prepare";
  auto kind = sqlite_errc(extended, during_prepare);
  // A lock wait cut short by a cancel or the deadline (on_busy) is a timeout, not a
  // lock held past busy_timeout.
  if (kind == errc::busy && (cancelled() || std::chrono::steady_clock::now() >= deadline_))
    kind = errc::statement_timeout;
  std::string driver_message = db ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  std::string message;
  if (during_prepare)
    message = "the statement could not be prepared: ";
  else
    message = context + " failed: ";
  message += driver_message;
  message += " (";
  message += hint_for(kind);
  message += ")";
  return db_error{kind, std::move(message), sqlite_code_name(extended), driver_message};
}

outcome<done> sqlite_driver::open() {
  close();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options_.create_if_missing && role_ != connection_role::reader &&
      !options_.opened_once->load())
    flags |= SQLITE_OPEN_CREATE;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(options_.path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string driver_message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (db)
      sqlite3_close_v2(db);
    std::string message =
        "cannot open SQLite database '" + options_.path + "': " + driver_message + " (";
    if (!options_.create_if_missing)
      message += "mode=rw: the file must exist before the database can start; ";
    message += "check that the path exists and that its directory is writable)";
    return db_error{errc::connect_failed, std::move(message), sqlite_code_name(rc), driver_message};
  }
  db_.store(db);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_handler(db, &sqlite_driver::on_busy, this);
  std::string pragmas = "PRAGMA foreign_keys = ON;";
  if (options_.path != ":memory:" && role_ != connection_role::reader)
    pragmas += "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";
  if (role_ == connection_role::reader)
    pragmas += "PRAGMA query_only = ON;";
  char* err = nullptr;
  rc = sqlite3_exec(db, pragmas.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string driver_message = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    auto failure =
        db_error{errc::connect_failed,
                 "cannot configure SQLite database '" + options_.path + "': " + driver_message +
                     " (is it an SQLite file, and is its directory writable?)",
                 sqlite_code_name(rc), driver_message};
    close();
    return failure;
  }
  if (auto id = file_id(options_.path))
    opened_file_ = *id;
  options_.opened_once->store(true);
  read_only_ = false;
  session_changes_ = 0;
  return done{};
}

outcome<done> sqlite_driver::reset_session() {
  if (session_changes_ == 0)
    return done{};
  session_changes_ = 0;
  // A file database is opened anew: every pragma, temporary object and attached
  // database goes with the old handle. (Unless the file was replaced: opening the path
  // would hide that.)
  if (options_.path != ":memory:") {
    if (auto file = check_file(); !file)
      return file.error();
    return open();
  }
  // An in-memory database lives in its handle: what can be undone is undone, and the
  // driver's own pragmas set again.
  auto temp = run_statements_of("SELECT type, name FROM temp.sqlite_master WHERE type IN "
                                "('table', 'view') AND name NOT LIKE 'sqlite_%'");
  if (!temp)
    return temp.error();
  std::string sql;
  for (auto& row : temp->rows)
    sql += std::string{row.at(0).as_text() == "view" ? "DROP VIEW" : "DROP TABLE"} +
           " IF EXISTS temp." + quote_identifier(row.at(1).as_text()) + ";";
  auto attached = run_statements_of("SELECT name FROM pragma_database_list WHERE name NOT IN "
                                    "('main', 'temp')");
  if (!attached)
    return attached.error();
  for (auto& row : attached->rows)
    sql += "DETACH " + quote_identifier(row.at(0).as_text()) + ";";
  // The connection's own settings back to SQLite's defaults (found from outside: they
  // reached the next request on the one shared connection).
  sql += "PRAGMA case_sensitive_like = 0; PRAGMA reverse_unordered_selects = 0;"
         "PRAGMA recursive_triggers = 0; PRAGMA automatic_index = 1;"
         "PRAGMA cache_size = -2000;" // SQLite's default (SQLITE_DEFAULT_CACHE_SIZE)
         "PRAGMA defer_foreign_keys = 0; PRAGMA ignore_check_constraints = 0;"
         "PRAGMA legacy_alter_table = 0; PRAGMA temp_store = 0; PRAGMA cell_size_check = 0;"
         "PRAGMA locking_mode = NORMAL;";
  sql += "PRAGMA foreign_keys = ON;";
  sql += read_only_ ? "PRAGMA query_only = ON;" : "PRAGMA query_only = OFF;";
  if (auto undone = run_statements_of(sql); !undone)
    return undone.error();
  // PRAGMA busy_timeout replaces the busy handler that keeps lock waits within the
  // request's deadline.
  sqlite3_busy_handler(db_.load(), &sqlite_driver::on_busy, this);
  return done{};
}

std::optional<std::pair<uint64_t, uint64_t>> sqlite_driver::file_id(const std::string& path) {
  struct stat info {};
  if (path == ":memory:" || ::stat(path.c_str(), &info) != 0)
    return std::nullopt;
  return std::make_pair(static_cast<uint64_t>(info.st_dev), static_cast<uint64_t>(info.st_ino));
}

outcome<done> sqlite_driver::check_file() const {
  // Writers would lose what they acknowledge; readers would go on reading a file
  // nobody writes any more.
  if (!opened_file_)
    return done{};
  if (file_id(options_.path) == opened_file_)
    return done{};
  // Unavailable, not lost: nothing ran, so nothing is in doubt; the connection is
  // discarded all the same.
  return db_error{errc::unavailable,
                  "the database file '" + options_.path +
                      "' was deleted or replaced while it was open: nothing was run on it (a "
                      "write acknowledged now would be lost at the next start); the connection "
                      "is discarded and the path opened again, never created anew (restore the "
                      "file if it was deleted by mistake)",
                  "SQLITE_CANTOPEN", "database file replaced"};
}

outcome<sqlite_driver::prepared*> sqlite_driver::prepare(const std::string& sql) {
  if (last_ && last_->first == sql) {
    session_changes_ |= last_->second.changes;
    return &last_->second;
  }
  if (auto i = cache_.find(sql); i != cache_.end()) {
    last_ = &*i;
    session_changes_ |= i->second.changes;
    return &i->second;
  }
  auto db = db_.load();
  if (!db)
    return db_error{errc::connection_lost, "the SQLite connection is closed (reconnect)", "", ""};
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()) + 1,
                              SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return error_from(rc, "prepare");
  }
  if (!stmt)
    return db_error{errc::invalid_argument, "the statement is empty (send SQL text)", "", ""};
  prepared result;
  result.stmt = stmt;
  result.has_tail = tail && !is_blank(tail);
  result.cached = !result.has_tail;
  result.inserts = writes_rowid(sql);
  result.changes = session_changes(sql, engine_kind::sqlite);
  result.connection_state = reads_connection_state(sql);
  result.transaction_control = transaction_control(sql, engine_kind::sqlite).has_value();
  session_changes_ |= result.changes;
  if (!result.cached) {
    uncached_ = std::move(result);
    return &uncached_;
  }
  if (cache_.size() >= options_.statement_cache_size)
    clear_cache();
  auto entry = cache_.emplace(sql, std::move(result)).first;
  last_ = &*entry;
  return &entry->second;
}

outcome<std::vector<int>> sqlite_driver::parameter_slots(sqlite3_stmt* stmt, size_t given) const {
  int count = sqlite3_bind_parameter_count(stmt);
  std::vector<int> slots(static_cast<size_t>(count));
  int highest = 0;
  for (int i = 1; i <= count; ++i) {
    const char* name = sqlite3_bind_parameter_name(stmt, i);
    int number = name ? placeholder_number(name) : 0;
    if (number == 0)
      return db_error{errc::invalid_argument,
                      std::string{"unsupported placeholder '"} + (name ? name : "?") +
                          "': cafdb uses $1, $2, ... on every engine",
                      "", ""};
    slots[static_cast<size_t>(i - 1)] = number - 1;
    highest = std::max(highest, number);
  }
  if (static_cast<size_t>(highest) != given)
    return db_error{errc::invalid_argument,
                    "the statement uses " + std::to_string(highest) + " placeholder(s) ($1..$" +
                        std::to_string(highest) + ") but " + std::to_string(given) +
                        " parameter(s) were given; pass exactly one value per placeholder",
                    "", ""};
  return slots;
}

outcome<done> sqlite_driver::bind(prepared& p, const value* params, size_t count) {
  // The slots of a cached statement are worked out once. They fit exactly
  // `highest placeholder` parameters; any other count is checked (and refused) anew.
  if (p.slots_known && p.parameters == count)
    return bind_slots(p.stmt, params, p.slots);
  auto slots = parameter_slots(p.stmt, count);
  if (!slots)
    return slots.error();
  auto bound = bind_slots(p.stmt, params, *slots);
  if (p.cached) {
    p.slots = std::move(*slots);
    p.parameters = count;
    p.slots_known = true;
  }
  return bound;
}

outcome<done> sqlite_driver::bind_slots(sqlite3_stmt* stmt, const value* params,
                                        const std::vector<int>& slots) {
  for (int i = 1; i <= static_cast<int>(slots.size()); ++i) {
    auto& param = params[static_cast<size_t>(slots[static_cast<size_t>(i - 1)])];
    int rc = SQLITE_OK;
    switch (param.type()) {
    case value_type::null:
      rc = sqlite3_bind_null(stmt, i);
      break;
    case value_type::boolean:
    case value_type::integer:
      rc = sqlite3_bind_int64(stmt, i, param.as_int());
      break;
    case value_type::real:
      // SQLite stores a NaN as NULL: refused, not changed.
      if (std::isnan(param.as_double()))
        return db_error{errc::invalid_argument,
                        "parameter $" + std::to_string(slots[static_cast<size_t>(i - 1)] + 1) +
                            " is NaN, which SQLite would store as NULL; bind NULL (nullptr) if "
                            "that is what it means",
                        "", ""};
      rc = sqlite3_bind_double(stmt, i, param.as_double());
      break;
    case value_type::text:
      rc = sqlite3_bind_text64(stmt, i, param.bytes().data(), param.bytes().size(), SQLITE_STATIC,
                               SQLITE_UTF8);
      break;
    case value_type::blob:
      rc = sqlite3_bind_blob64(stmt, i, param.bytes().data(), param.bytes().size(), SQLITE_STATIC);
      break;
    }
    if (rc != SQLITE_OK)
      return error_from(rc, "binding parameter $" + std::to_string(i));
  }
  return done{};
}

// A cached statement whose tables changed (DROP, ALTER) is prepared again inside its
// first step, and when that fails the step answers the prepare's error. It is the
// statement's, as if prepared now: answered as such, not as a failure while it ran
// (found from outside: after DROP TABLE the first read answered database_error and the
// next ones syntax_error). Preparing the text once more tells the two apart, and only
// on this error path.
db_error sqlite_driver::step_error(int rc, sqlite3_stmt* stmt, bool first) const {
  // Read before preparing again, which sets the connection's error message anew.
  auto ran = error_from(rc, "executing the statement");
  if (first && (rc & 0xff) == SQLITE_ERROR) {
    sqlite3_stmt* again = nullptr;
    int prepared = sqlite3_prepare_v2(db_.load(), sqlite3_sql(stmt), -1, &again, nullptr);
    sqlite3_finalize(again);
    if (prepared != SQLITE_OK)
      return error_from(prepared, "prepare");
  }
  return ran;
}

outcome<result_set> sqlite_driver::step_all(sqlite3_stmt* stmt, bool inserts) {
  result_set result;
  int columns = 0;
  // sqlite3_changes64 keeps the last INSERT / UPDATE / DELETE's count through other
  // statements (DDL): it is this statement's only if the total moved.
  auto total_before = sqlite3_total_changes64(db_.load());
  // SQLite keeps the last rowid inserted on the handle, whoever inserted it: an upsert
  // that updated (or an INSERT OR IGNORE that ignored) would report an earlier
  // request's. Cleared first, it is this statement's insert or nothing.
  if (inserts)
    sqlite3_set_last_insert_rowid(db_.load(), 0);
  std::vector<bool> booleans;
  for (bool first = true;; first = false) {
    int rc = sqlite3_step(stmt);
    if (first) {
      // The columns are read after the first step, never before: a cached statement
      // whose tables changed (ALTER TABLE, DROP and CREATE) is prepared again inside
      // that step, and its columns may have changed with it.
      columns = sqlite3_column_count(stmt);
      result.columns.reserve(columns);
      result.column_types.reserve(columns);
      booleans.assign(static_cast<size_t>(columns), false);
      for (int c = 0; c < columns; ++c) {
        result.columns.emplace_back(sqlite3_column_name(stmt, c));
        const char* decl = sqlite3_column_decltype(stmt, c);
        result.column_types.emplace_back(decl ? decl : "");
        booleans[static_cast<size_t>(c)] = declares_boolean(decl);
      }
    }
    if (rc == SQLITE_DONE)
      break;
    if (rc != SQLITE_ROW)
      return step_error(rc, stmt, first);
    auto& row = result.rows.emplace_back();
    row.reserve(columns);
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
      case SQLITE_INTEGER: {
        auto number = sqlite3_column_int64(stmt, c);
        // SQLite stores booleans as 0 and 1; a column declared BOOLEAN gives them back
        // as booleans (any other integer stays what it is).
        if (booleans[static_cast<size_t>(c)] && (number == 0 || number == 1))
          row.emplace_back(number == 1);
        else
          row.emplace_back(number);
        break;
      }
      case SQLITE_FLOAT:
        row.emplace_back(sqlite3_column_double(stmt, c));
        break;
      case SQLITE_TEXT: {
        auto text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
        row.emplace_back(std::string(text, sqlite3_column_bytes(stmt, c)));
        break;
      }
      case SQLITE_BLOB: {
        auto data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt, c));
        row.emplace_back(blob(data, data + sqlite3_column_bytes(stmt, c)));
        break;
      }
      default:
        row.emplace_back(nullptr);
      }
    }
  }
  if (!sqlite3_stmt_readonly(stmt)) {
    auto db = db_.load();
    result.affected_rows = sqlite3_total_changes64(db) != total_before ? sqlite3_changes64(db) : 0;
    if (result.affected_rows > 0 && inserts)
      result.last_insert_id = sqlite3_last_insert_rowid(db);
  }
  return result;
}

// A script is all-or-nothing and answers its last statement's result, as on
// PostgreSQL (docs/protocol.md): it runs inside a savepoint, which outside a
// transaction is one of its own.
outcome<result_set> sqlite_driver::run_script(const std::string& sql) {
  return in_savepoint("cafdb_script", [&] { return run_statements_of(sql); });
}

outcome<result_set> sqlite_driver::run_statements_of(const std::string& sql) {
  auto db = db_.load();
  const char* next = sql.c_str();
  result_set last;
  while (next && !is_blank(next)) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, next, -1, &stmt, &next);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return error_from(rc, "prepare");
    }
    if (!stmt)
      continue;
    stmt_guard guard{stmt, false};
    // SQLite's own split of the script, so exact where the session's reading of the
    // text could be fooled (a trigger body using `begin` as a name).
    if (auto keyword = transaction_control(sqlite3_sql(stmt), engine_kind::sqlite))
      return db_error{errc::invalid_argument,
                      *keyword + " cannot be part of a script: it would change the transaction "
                                 "behind the session's back; use the session's begin / commit "
                                 "/ rollback messages",
                      "", ""};
    if (sqlite3_bind_parameter_count(stmt) > 0)
      return db_error{errc::invalid_argument,
                      "a script of several statements cannot take parameters; send the "
                      "statements one by one (or in a transact) to bind values",
                      "", ""};
    auto one = step_all(stmt, writes_rowid(sqlite3_sql(stmt)));
    if (!one)
      return one;
    last = std::move(*one);
  }
  return last;
}

outcome<sqlite_driver::prepared*> sqlite_driver::prepare_single(const std::string& sql) {
  auto prepared = prepare(sql);
  if (!prepared || !(*prepared)->has_tail)
    return prepared;
  sqlite3_finalize((*prepared)->stmt);
  (*prepared)->stmt = nullptr;
  return nullptr;
}

bool sqlite_driver::certainly_reads(const std::string& sql) {
  // Some PRAGMAs act when they are prepared, not when they run (PRAGMA query_only = 0
  // would lift a reader's protection right here): none is prepared to ask, and text
  // that reads as changing something is not prepared unless it was before (then the
  // cache holds what was learned).
  if (leading_keyword(sql) == "pragma")
    return false;
  bool known = (last_ && last_->first == sql) || cache_.count(sql) != 0;
  if (!known && (session_changes(sql, engine_kind::sqlite) != 0 ||
                 transaction_control(sql, engine_kind::sqlite) || reads_connection_state(sql)))
    return false;
  auto prepared = prepare_single(sql);
  if (!prepared || !*prepared)
    return false;
  auto& p = **prepared;
  return p.changes == 0 && !p.connection_state && !p.transaction_control &&
         sqlite3_stmt_readonly(p.stmt) != 0;
}

outcome<result_set> sqlite_driver::execute(const statement& request) {
  if (!in_transaction()) // an autocommit statement commits: check before
    if (auto file = check_file(); !file)
      return file.error();
  auto prepared = prepare_single(request.sql);
  if (!prepared)
    return prepared.error();
  if (!*prepared) {
    if (!request.params.empty())
      return db_error{errc::invalid_argument,
                      "a statement with parameters must be a single statement; split the script",
                      "", ""};
    return run_script(request.sql);
  }
  auto& p = **prepared;
  stmt_guard guard{p.stmt, p.cached};
  if (auto bound = bind(p, request.params.data(), request.params.size()); !bound)
    return bound.error();
  return step_all(p.stmt, p.inserts);
}

// One prepared statement, bound and stepped once per row: no statement object per row,
// and for a statement without result columns (a plain INSERT, UPDATE or DELETE) no
// result object either, only a count of changes.
outcome<result_set> sqlite_driver::execute_many(const bulk_statement& bulk, size_t& failed_at) {
  failed_at = bulk.row_count(); // no row to blame unless one fails
  auto prepared = prepare_single(bulk.sql);
  if (!prepared)
    return prepared.error();
  if (!*prepared)
    return db_error{errc::invalid_argument,
                    "exec_many takes a single statement, run once per row; split the script", "",
                    ""};
  auto& p = **prepared;
  auto db = db_.load();
  bool returns_rows = sqlite3_column_count(p.stmt) > 0;
  bool changes = !sqlite3_stmt_readonly(p.stmt);
  result_set total;
  if (p.inserts) // as in step_all: the rowid of one of these rows' inserts, or nothing
    sqlite3_set_last_insert_rowid(db, 0);
  // Every row binds every slot, so the bindings are cleared once, at the end.
  stmt_guard guard{p.stmt, p.cached};
  for (size_t i = 0; i < bulk.row_count(); ++i) {
    auto run = [&]() -> outcome<done> {
      if (cancelled())
        return cancelled_error();
      auto first = bulk.row_begin(i);
      if (auto bound = bind(p, first, static_cast<size_t>(bulk.row_end(i) - first)); !bound)
        return bound.error();
      if (returns_rows) {
        auto one = step_all(p.stmt, p.inserts);
        if (!one)
          return one.error();
        add_run(total, std::move(*one));
        return done{};
      }
      if (int rc = sqlite3_step(p.stmt); rc != SQLITE_DONE)
        return step_error(rc, p.stmt, true);
      if (changes)
        total.affected_rows += sqlite3_changes64(db);
      return done{};
    }();
    sqlite3_reset(p.stmt);
    if (!run) {
      failed_at = i;
      return run.error();
    }
  }
  if (!returns_rows && p.inserts && total.affected_rows > 0)
    total.last_insert_id = sqlite3_last_insert_rowid(db);
  return total;
}

outcome<result_set> sqlite_driver::execute_many_transaction(const bulk_statement& bulk,
                                                            bool read_only, size_t& failed_at) {
  failed_at = bulk.row_count();
  return all_or_nothing(read_only, [&] { return execute_many(bulk, failed_at); });
}

std::vector<outcome<result_set>>
sqlite_driver::execute_each(const std::vector<statement>& statements) {
  // A reader runs several reads in one read transaction: each autocommit read would
  // otherwise take and drop the file's shared lock (fcntl, fstat, a WAL index read)
  // on its own. They were sent together, so one snapshot, taken after all of them
  // were asked for, is as fresh as separate ones. A failing read does not end a
  // SQLite transaction; the others still get their own outcomes.
  if (statements.size() < 2 || role_ != connection_role::reader || in_transaction() ||
      !run_simple("BEGIN DEFERRED"))
    return driver::execute_each(statements);
  auto outcomes = driver::execute_each(statements);
  if (in_transaction() && !run_simple("COMMIT"))
    rollback();
  return outcomes;
}

outcome<done> sqlite_driver::run_simple(const char* sql) {
  auto result = execute(statement{sql});
  if (!result)
    return result.error();
  return done{};
}

outcome<done> sqlite_driver::begin(bool read_only, const tx_options& options) {
  bool writer = !read_only && role_ != connection_role::reader;
  return run_simple(sqlite_begin_sql(options, writer).c_str());
}

outcome<done> sqlite_driver::commit() {
  // The commit acknowledges the transaction: not into a file the path no longer names.
  if (auto file = check_file(); !file) {
    run_simple("ROLLBACK");
    return file.error();
  }
  return run_simple("COMMIT");
}

outcome<done> sqlite_driver::rollback() {
  // Some errors (SQLITE_FULL, IOERR, BUSY in a commit) roll back on their own.
  if (!in_transaction())
    return done{};
  return run_simple("ROLLBACK");
}

outcome<done> sqlite_driver::set_read_only(bool read_only) {
  // Readers are always query_only, and read-only sessions never reach the writer; only
  // the one shared connection of an in-memory database switches.
  if (role_ != connection_role::shared || read_only == read_only_)
    return done{};
  auto set = run_simple(read_only ? "PRAGMA query_only = ON" : "PRAGMA query_only = OFF");
  if (set)
    read_only_ = read_only;
  return set;
}

void sqlite_driver::set_deadline(std::chrono::steady_clock::time_point deadline) {
  deadline_ = deadline;
  auto db = db_.load();
  if (deadline_watched_ || !db || deadline == std::chrono::steady_clock::time_point::max())
    return;
  // Every 1000 virtual machine steps (microseconds): a point select rarely gets there.
  // A non-zero answer interrupts the statement (SQLITE_INTERRUPT: statement_timeout).
  // The stop is checked too: SQLite forgets a sqlite3_interrupt that lands before a
  // statement starts (cancel_for_shutdown racing a read that is about to run).
  sqlite3_progress_handler(
      db, 1000,
      [](void* self) -> int {
        auto& driver = *static_cast<sqlite_driver*>(self);
        return driver.stopping() || std::chrono::steady_clock::now() >= driver.deadline_ ? 1 : 0;
      },
      this);
  deadline_watched_ = true;
}

bool sqlite_driver::in_transaction() const {
  auto db = db_.load();
  return db && sqlite3_get_autocommit(db) == 0;
}

int sqlite_driver::on_busy(void* self, int attempt) {
  // sqlite3_busy_timeout's schedule (ms), but its wait ignores sqlite3_interrupt: this
  // one also gives up as soon as the request is cancelled (deadline, shutdown) or past
  // its deadline, so a statement waiting for a lock never outlives its request.
  static constexpr int delays[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
  auto& driver = *static_cast<sqlite_driver*>(self);
  auto now = std::chrono::steady_clock::now();
  if (attempt == 0)
    driver.busy_since_ = now;
  auto give_up_at = std::min(driver.busy_since_ + driver.options_.busy_timeout, driver.deadline_);
  if (driver.cancelled() || now >= give_up_at)
    return 0;
  auto step = std::chrono::milliseconds(delays[std::min<size_t>(attempt, std::size(delays) - 1)]);
  std::this_thread::sleep_for(
      std::min<std::chrono::steady_clock::duration>(step, give_up_at - now));
  return driver.cancelled() ? 0 : 1;
}

void sqlite_driver::interrupt() noexcept {
  if (auto db = db_.load())
    sqlite3_interrupt(db);
}

} // namespace cafdb
