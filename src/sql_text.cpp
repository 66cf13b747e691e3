// Reading SQL text as the engines' lexers read it (sql_text.hpp).
#include "sql_text.hpp"

#include <array>
#include <cctype>
#include <cstring>
#include <optional>
#include <utility>

namespace cafdb {

bool is_identifier(const std::string& name) {
  if (name.empty() || name.size() > 63)
    return false;
  auto first = static_cast<unsigned char>(name[0]);
  if (!std::isalpha(first) && first != '_')
    return false;
  for (auto ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_')
      return false;
  return true;
}

int placeholder_number(const char* name) {
  if (!name || name[0] != '$' || name[1] == '\0' || name[1] == '0')
    return 0;
  long number = 0;
  for (const char* p = name + 1; *p; ++p) {
    if (!std::isdigit(static_cast<unsigned char>(*p)))
      return 0;
    number = number * 10 + (*p - '0');
    if (number > 65535)
      return 0;
  }
  return static_cast<int>(number);
}

std::string quote_identifier(const std::string& name) {
  return "\"" + name + "\"";
}

std::string to_lower(std::string text) {
  for (auto& c : text)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string leading_keyword(const std::string& sql) {
  size_t i = 0;
  // Skip blanks and comments before the first word.
  while (i < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[i]))) {
      ++i;
    } else if (sql.compare(i, 2, "--") == 0) {
      i = sql.find('\n', i);
      if (i == std::string::npos)
        return {};
    } else if (sql.compare(i, 2, "/*") == 0) {
      i = sql.find("*/", i + 2);
      if (i == std::string::npos)
        return {};
      i += 2;
    } else {
      break;
    }
  }
  // Keywords are short: 16 characters tell them apart from any longer word, and the
  // result stays in the string's inline buffer (no allocation per statement).
  std::string word;
  for (; i < sql.size() && word.size() < 16 && std::isalnum(static_cast<unsigned char>(sql[i]));
       ++i)
    word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i]))));
  return word;
}

namespace {

/// Walks SQL text token by token, the way the server's lexer splits it: string
/// literals, quoted identifiers, dollar quotes and comments are skipped whole, so a
/// keyword inside them is never seen, and a `;` inside them ends nothing.
class sql_scanner {
 public:
  /// With `backslash_strings`, '...' literals take backslash escapes too (PostgreSQL
  /// with standard_conforming_strings off, which any session can SET).
  /// With `operators`, "=", "(", "." and "," are tokens too. With `names`, a quoted
  /// name is a word too (its text, lower case: `"set_config"` reads as set_config), a
  /// PostgreSQL U&"..." name, whose escapes can spell anything, reads as "u&", and a
  /// SQLite '...' literal is a word marked by its quote ('query_only reads as
  /// "'query_only"): SQLite takes a literal where a name is expected (PRAGMA
  /// 'query_only' = 0, CREATE TABLE 'temp'.t).
  sql_scanner(const std::string& sql, engine_kind dialect, bool backslash_strings,
              bool operators = false, bool names = false)
      : sql_(sql), dialect_(dialect), backslash_strings_(backslash_strings), operators_(operators),
        names_(names) {}

  /// The next word (lower case) or ";" ; empty at the end of the text. Other
  /// punctuation is skipped.
  std::string next() {
    while (pos_ < sql_.size()) {
      auto c = sql_[pos_];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (sql_.compare(pos_, 2, "--") == 0) {
        // PostgreSQL ends a line comment at \r too; SQLite only at \n.
        auto end = sql_.find_first_of(postgres() ? "\n\r" : "\n", pos_);
        pos_ = end == std::string::npos ? sql_.size() : end + 1;
      } else if (sql_.compare(pos_, 2, "/*") == 0) {
        skip_block_comment();
      } else if (names_ && (c == '"' || (c == '`' && sqlite()) || (c == '[' && sqlite()))) {
        auto start = pos_ + 1;
        skip_quoted(c == '[' ? ']' : c, false);
        auto text = sql_.substr(start, pos_ > start ? pos_ - start - 1 : 0);
        for (auto& ch : text)
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return text.empty() ? std::string{"\"\""} : text;
      } else if (names_ && c == '\'' && sqlite()) {
        auto start = pos_;
        skip_quoted('\'', false);
        auto text = sql_.substr(start, pos_ > start + 1 ? pos_ - start - 1 : 1);
        for (auto& ch : text)
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return text;
      } else if (c == '\'' || c == '"' || (c == '`' && sqlite()) || (c == '[' && sqlite())) {
        skip_quoted(c == '[' ? ']' : c, c == '\'' && backslash_strings_);
      } else if (c == '$' && postgres() && dollar_tag()) {
        skip_dollar_quote();
      } else if (c == ';' || (operators_ && (c == '=' || c == '(' || c == '.' || c == ','))) {
        ++pos_;
        return std::string(1, c);
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
                 static_cast<unsigned char>(c) >= 0x80) {
        // E'...' (PostgreSQL) takes backslash escapes; any other word is a word.
        if ((c == 'e' || c == 'E') && postgres() && pos_ + 1 < sql_.size() &&
            sql_[pos_ + 1] == '\'') {
          ++pos_;
          skip_quoted('\'', true);
          continue;
        }
        if (names_ && (c == 'u' || c == 'U') && postgres() &&
            sql_.compare(pos_ + 1, 2, "&\"") == 0) {
          pos_ += 2;
          skip_quoted('"', false);
          return "u&";
        }
        return word();
      } else {
        ++pos_;
      }
    }
    return {};
  }

 private:
  bool sqlite() const { return dialect_ == engine_kind::sqlite; }
  bool postgres() const { return dialect_ == engine_kind::postgresql; }

  std::string word() {
    std::string out;
    while (pos_ < sql_.size()) {
      auto c = static_cast<unsigned char>(sql_[pos_]);
      if (!std::isalnum(c) && c != '_' && c != '$' && c < 0x80)
        break;
      out.push_back(static_cast<char>(std::tolower(c)));
      ++pos_;
    }
    return out;
  }

  // PostgreSQL nests block comments; SQLite ends one at the first `*/`.
  void skip_block_comment() {
    int depth = 0;
    while (pos_ < sql_.size()) {
      if (sql_.compare(pos_, 2, "/*") == 0 && (depth == 0 || postgres())) {
        ++depth;
        pos_ += 2;
      } else if (sql_.compare(pos_, 2, "*/") == 0) {
        pos_ += 2;
        if (--depth == 0)
          return;
      } else {
        ++pos_;
      }
    }
  }

  // A doubled closing quote stands for itself; with `backslash`, \x escapes x.
  void skip_quoted(char close, bool backslash) {
    ++pos_;
    while (pos_ < sql_.size()) {
      auto c = sql_[pos_];
      if (backslash && c == '\\') {
        pos_ += 2;
      } else if (c == close) {
        if (pos_ + 1 < sql_.size() && sql_[pos_ + 1] == close) {
          pos_ += 2;
        } else {
          ++pos_;
          return;
        }
      } else {
        ++pos_;
      }
    }
  }

  // At `$`: true and `tag_` set if a dollar quote opens here ($$ or $name$); `$1`
  // is a parameter.
  bool dollar_tag() {
    size_t end = pos_ + 1;
    if (end < sql_.size() && std::isdigit(static_cast<unsigned char>(sql_[end])))
      return false;
    while (end < sql_.size() && (std::isalnum(static_cast<unsigned char>(sql_[end])) ||
                                 sql_[end] == '_' || static_cast<unsigned char>(sql_[end]) >= 0x80))
      ++end;
    if (end >= sql_.size() || sql_[end] != '$')
      return false;
    tag_ = sql_.substr(pos_, end - pos_ + 1);
    return true;
  }

  void skip_dollar_quote() {
    auto close = sql_.find(tag_, pos_ + tag_.size());
    pos_ = close == std::string::npos ? sql_.size() : close + tag_.size();
  }

  const std::string& sql_;
  engine_kind dialect_;
  bool backslash_strings_;
  bool operators_;
  bool names_;
  size_t pos_ = 0;
  std::string tag_;
};

bool is_transaction_keyword(const std::string& word) {
  for (auto keyword :
       {"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release"})
    if (word == keyword)
      return true;
  return false;
}

} // namespace

namespace {

std::optional<std::string> control_keyword(const std::string& sql, engine_kind dialect,
                                           bool backslash_strings) {
  sql_scanner scan{sql, dialect, backslash_strings, true};
  // Per statement: its first two words, and the BEGIN ... END blocks of a CREATE
  // TRIGGER (SQLite) or a BEGIN ATOMIC function body (PostgreSQL), whose `;` do not
  // end the statement. CASE ... END inside them is counted apart. A word after AS or
  // a `.` is a name (`SELECT 1 AS case`, `t.end`), never block syntax; on PostgreSQL
  // only BEGIN ATOMIC opens a block (`begin` may name a column there).
  std::string first;
  std::string second;
  std::string previous;
  int words = 0;
  int blocks = 0;
  int cases = 0;
  auto upper = [](std::string word) {
    for (auto& c : word)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return word;
  };
  bool pg = dialect == engine_kind::postgresql;
  for (auto token = scan.next(); !token.empty(); token = scan.next()) {
    auto before = std::exchange(previous, token);
    if (token == ";") {
      if (blocks == 0) {
        first.clear();
        second.clear();
        words = 0;
        cases = 0;
      }
      continue;
    }
    if (token == "=" || token == "(" || token == "." || token == ",")
      continue;
    ++words;
    if (words == 1) {
      first = token;
      if (is_transaction_keyword(first))
        return upper(first);
      continue;
    }
    if (words == 2) {
      second = token;
      if (first == "prepare" && second == "transaction")
        return std::string{"PREPARE TRANSACTION"};
    }
    if (first != "create" || before == "as" || before == ".")
      continue;
    if (token == "case") {
      ++cases;
    } else if (pg ? (token == "atomic" && before == "begin") : token == "begin") {
      ++blocks;
    } else if (token == "end") {
      if (cases > 0)
        --cases;
      else if (blocks > 0)
        --blocks;
    }
  }
  return std::nullopt;
}

} // namespace

// PostgreSQL reads '...' with or without backslash escapes depending on a setting that
// any session can change (standard_conforming_strings): text is read both ways, and
// what either reading finds counts.
template <class Find>
std::optional<std::string> find_either_way(const std::string& sql, engine_kind dialect, Find find) {
  if (auto found = find(sql, dialect, false))
    return found;
  if (dialect == engine_kind::postgresql)
    return find(sql, dialect, true);
  return std::nullopt;
}

std::optional<std::string> transaction_control(const std::string& sql, engine_kind dialect) {
  return find_either_way(sql, dialect, control_keyword);
}

namespace {

bool one_of(const std::string& word, std::initializer_list<const char*> words) {
  for (auto w : words)
    if (word == w)
      return true;
  return false;
}

/// A name as SQLite reads it: a '...' literal in a name's place is that name.
std::string unquoted(const std::string& word) {
  return !word.empty() && word.front() == '\'' ? word.substr(1) : word;
}

/// A schema whose objects are temporary: they last as long as the connection.
bool temp_schema(const std::string& name, bool pg) {
  if (pg)
    return name == "pg_temp" || name.rfind("pg_temp_", 0) == 0;
  return unquoted(name) == "temp";
}

/// SQLite pragmas that only read: running them changes nothing.
bool reading_pragma(const std::string& name) {
  return one_of(unquoted(name),
                {"table_info", "table_xinfo", "table_list", "index_list", "index_info",
                 "index_xinfo", "foreign_key_list", "foreign_key_check", "integrity_check",
                 "quick_check", "database_list", "collation_list", "function_list", "module_list",
                 "pragma_list", "compile_options", "data_version", "freelist_count", "page_count"});
}

/// The session_change bits one statement's words imply. `words` are the statement's
/// words so far; called once per word, with the newest last.
unsigned statement_changes(const std::vector<std::string>& words, engine_kind dialect) {
  auto& first = words.front();
  auto& word = words.back();
  auto n = words.size();
  bool pg = dialect == engine_kind::postgresql;
  // Anywhere: functions that change the session, and SELECT ... INTO TEMP.
  if (pg && word == "set_config")
    return session_settings;
  if (pg && one_of(word, {"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
                          "pg_try_advisory_lock_shared"}))
    return session_advisory_locks;
  if (n >= 2 && words[n - 2] == "into" && one_of(word, {"temp", "temporary"}))
    return session_temp_objects;
  // A DO block, or a name spelled with escapes, can change anything.
  if (pg && ((n == 1 && word == "do") || word == "u&"))
    return session_settings | session_temp_objects | session_listen | session_advisory_locks |
           session_cursors;
  if (n == 1) {
    if (pg && one_of(word, {"reset", "discard"}))
      return session_settings;
    if (pg && word == "listen")
      return session_listen;
    if (pg && word == "deallocate")
      return session_prepared;
    if (!pg && one_of(word, {"attach", "detach"}))
      return session_pragmas;
    return 0;
  }
  if (n == 2) {
    // SET LOCAL, SET TRANSACTION and SET CONSTRAINTS end with the transaction.
    if (pg && first == "set" && !one_of(word, {"local", "transaction", "constraints"}))
      return session_settings;
    if (pg && first == "prepare" && word != "transaction")
      return session_prepared;
  }
  if (pg && first == "declare" && word == "hold")
    return session_cursors;
  // CREATE ... temp.name (pg_temp.name): a temporary object named by its schema, which
  // comes by the eighth word (CREATE UNIQUE INDEX IF NOT EXISTS temp.i).
  if (first == "create" && n >= 3 && n <= 8 && word == "." && temp_schema(words[n - 2], pg))
    return session_temp_objects;
  // CREATE [OR REPLACE] [GLOBAL|LOCAL] TEMP[ORARY] ..., up to the kind of object.
  if (first == "create" && n <= 5 && one_of(word, {"temp", "temporary"})) {
    for (size_t i = 1; i + 1 < n; ++i)
      if (!one_of(words[i], {"or", "replace", "global", "local", "unlogged"}))
        return 0;
    return session_temp_objects;
  }
  // PRAGMA [schema.]name = value, PRAGMA [schema.]name(value): any but the ones that
  // only read. A bare PRAGMA name reads the setting.
  if (!pg && first == "pragma" && (word == "=" || word == "(") && (n == 3 || n == 5) &&
      !reading_pragma(words[n - 2]))
    return session_pragmas;
  return 0;
}

unsigned changes_read(const std::string& sql, engine_kind dialect, bool backslash_strings) {
  sql_scanner scan{sql, dialect, backslash_strings, true, true};
  unsigned changes = 0;
  std::vector<std::string> words;
  bool explain = false;
  for (auto token = scan.next(); !token.empty(); token = scan.next()) {
    if (token == ";") {
      words.clear();
      explain = false;
      continue;
    }
    // EXPLAIN [QUERY PLAN] compiles the statement it names, and a PRAGMA acts while
    // compiled: it changes what the statement would (found from outside).
    if (words.empty() &&
        (token == "explain" || (explain && (token == "query" || token == "plan")))) {
      explain = true;
      continue;
    }
    words.push_back(std::move(token));
    changes |= statement_changes(words, dialect);
  }
  return changes;
}

} // namespace

namespace {

/// A PostgreSQL function that writes a large object (or a server file from one).
bool is_large_object_write(const std::string& word) {
  static const char* const writers[] = {
      "lo_put",        "lo_unlink",   "lo_create",     "lo_creat", "lo_import", "lo_export",
      "lo_from_bytea", "lo_truncate", "lo_truncate64", "lowrite",  "lo_open"};
  for (auto name : writers)
    if (word == name)
      return true;
  return false;
}

std::optional<std::string> escape_read(const std::string& sql, engine_kind dialect,
                                       bool backslash_strings) {
  sql_scanner scan{sql, dialect, backslash_strings, true, true};
  std::string previous;
  size_t words = 0;
  std::string first;
  for (auto token = scan.next(); !token.empty(); previous = token, token = scan.next()) {
    if (token == ";") {
      words = 0;
      continue;
    }
    if (++words == 1)
      first = token;
    if (dialect == engine_kind::sqlite) {
      // Only a PRAGMA sets it (EXPLAIN PRAGMA too, to be safe: some pragmas act while
      // compiled), and a '...' literal may name it there. Elsewhere the word is only a
      // name or text (found from outside: `SELECT query_only FROM t` was refused).
      bool pragma = first == "pragma" || first == "explain";
      if (pragma && (token == "query_only" || token == "'query_only"))
        return std::string{"query_only"};
      continue;
    }
    if (token == "default_transaction_read_only" || token == "transaction_read_only")
      return token;
    // A DO block or a name spelled with escapes can hide any of these.
    if (words == 1 && first == "do")
      return std::string{"DO"};
    // A procedure called outside a transaction may COMMIT, then change any of these
    // (found from outside: a read-only call wrote through one).
    if (words == 1 && first == "call")
      return std::string{"CALL"};
    if (token == "u&")
      return std::string{"U&\"...\" names"};
    // Its setting's name is a literal: any use might be one.
    if (token == "set_config")
      return token;
    // PostgreSQL lets large objects be written in a read-only transaction (found from
    // outside: lo_put, lo_unlink and lo_from_bytea were kept from a read-only call).
    if (is_large_object_write(token))
      return token;
    if (previous == "read" && token == "write")
      return std::string{"READ WRITE"};
    // Both set default_transaction_read_only back to the server's default.
    if (words == 2 && first == "reset" && token == "all")
      return std::string{"RESET ALL"};
    if (words == 1 && first == "discard")
      return std::string{"DISCARD"};
  }
  return std::nullopt;
}

} // namespace

bool has_statement(const std::string& sql, engine_kind dialect) {
  sql_scanner scan{sql, dialect, false};
  for (auto token = scan.next(); !token.empty(); token = scan.next())
    if (token != ";")
      return true;
  return false;
}

std::optional<std::string> read_only_escape(const std::string& sql, engine_kind dialect) {
  return find_either_way(sql, dialect, escape_read);
}

unsigned session_changes(const std::string& sql, engine_kind dialect) {
  unsigned changes = changes_read(sql, dialect, false);
  if (dialect == engine_kind::postgresql)
    changes |= changes_read(sql, dialect, true);
  return changes;
}

bool may_change_data(const std::string& sql, engine_kind dialect) {
  auto word = leading_keyword(sql);
  if (word == "show" || word == "table")
    return false;
  if (dialect == engine_kind::postgresql)
    return true;
  if (word == "with") { // a CTE leads a read or a write: look for the write
    auto text = to_lower(sql);
    for (auto verb : {"insert", "update", "delete", "merge", "replace"})
      if (text.find(verb) != std::string::npos)
        return true;
    return false;
  }
  return word != "select" && word != "values";
}

std::optional<db_error> refused_sql(const std::string& sql, engine_kind dialect, bool read_only) {
  if (sql.find('\0') != std::string::npos)
    return db_error{errc::invalid_argument,
                    "the SQL text contains a NUL character, where the engine would stop "
                    "reading it; remove it (values go in parameters)",
                    "", ""};
  if (dialect == engine_kind::postgresql && leading_keyword(sql) == "copy") {
    auto text = to_lower(sql);
    if (text.find("stdin") != std::string::npos || text.find("stdout") != std::string::npos)
      return db_error{errc::invalid_argument,
                      "COPY ... FROM STDIN / TO STDOUT needs the copy protocol, which exec does "
                      "not speak: insert rows with exec_many, read them with SELECT (COPY to or "
                      "from a server file works)",
                      "", ""};
  }
  if (auto keyword = transaction_control(sql, dialect))
    return db_error{errc::invalid_argument,
                    *keyword +
                        " cannot be sent as SQL (not even inside a script): it would change "
                        "the transaction behind the session's back; use the session's begin / "
                        "commit / rollback / savepoint / release messages, or transact",
                    "", ""};
  if (read_only)
    if (auto escape = read_only_escape(sql, dialect))
      return db_error{errc::read_only_violation,
                      *escape + " cannot be used in a read-only session: it would make the "
                                "session able to write; open a read-write session to write",
                      "", ""};
  return std::nullopt;
}

namespace {

/// The last few texts a thread asked about, with what was found: a small ring, looked
/// through whole (eight string compares cost less than reading one statement).
template <class Verdict>
class recent_verdicts {
 public:
  const Verdict* find(const std::string& sql, engine_kind dialect, bool read_only) const {
    for (auto& entry : entries_)
      if (entry.used && entry.read_only == read_only && entry.dialect == dialect &&
          entry.sql == sql)
        return &entry.verdict;
    return nullptr;
  }
  void remember(const std::string& sql, engine_kind dialect, bool read_only, Verdict verdict) {
    entries_[next_] = entry{sql, dialect, read_only, std::move(verdict), true};
    next_ = (next_ + 1) % entries_.size();
  }

 private:
  struct entry {
    std::string sql;
    engine_kind dialect = engine_kind::sqlite;
    bool read_only = false;
    Verdict verdict{};
    bool used = false;
  };
  std::array<entry, 8> entries_;
  size_t next_ = 0;
};

} // namespace

std::optional<db_error> refused_sql_here(const std::string& sql, engine_kind dialect,
                                         bool read_only) {
  // Only texts that passed are remembered: a refusal is rare, and its message is built
  // anew each time.
  thread_local recent_verdicts<bool> passed;
  if (passed.find(sql, dialect, read_only))
    return std::nullopt;
  auto refused = refused_sql(sql, dialect, read_only);
  if (!refused)
    passed.remember(sql, dialect, read_only, true);
  return refused;
}

unsigned session_changes_here(const std::string& sql, engine_kind dialect) {
  thread_local recent_verdicts<unsigned> found;
  if (auto* changes = found.find(sql, dialect, false))
    return *changes;
  auto changes = session_changes(sql, dialect);
  found.remember(sql, dialect, false, changes);
  return changes;
}

} // namespace cafdb
