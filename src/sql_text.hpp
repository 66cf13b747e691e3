// Reading SQL text as the engines' lexers read it (literals, quoted names, comments,
// dollar quotes): transaction control, session changes, read-only escapes and the
// leading keyword; and identifiers. CAF-free; used by the drivers, the session and
// the schema and operations SQL.
#pragma once

#include <optional>
#include <string>

#include "cafdb/core/config.hpp"
#include "cafdb/core/errc.hpp"

namespace cafdb {

/// `"name"`, for SQL text; `name` must already pass `is_identifier`.
std::string quote_identifier(const std::string& name);

/// True if `name` is `[A-Za-z_][A-Za-z0-9_]*` and at most 63 characters long.
bool is_identifier(const std::string& name);

/// `text` in ASCII lower case.
std::string to_lower(std::string text);

/// Returns N for a placeholder name `$N` (N >= 1), else 0.
int placeholder_number(const char* name);

/// The transaction-control command (BEGIN, START, COMMIT, END, ROLLBACK, ABORT,
/// SAVEPOINT, RELEASE, PREPARE TRANSACTION), in upper case, that starts any statement
/// of `sql` (a statement or a script), or nothing. Literals, quoted names and comments
/// are skipped, so a keyword inside them is not one; the dialect says how its lexer
/// reads them (comments nest and dollar quotes exist on PostgreSQL; SQLite also quotes
/// names with [] and ``).
std::optional<std::string> transaction_control(const std::string& sql, engine_kind dialect);

/// What a statement can change in the connection's session, beyond its transaction:
/// state that would otherwise reach the next user of the pooled connection. Bits.
enum session_change : unsigned {
  /// SET (not LOCAL), RESET, set_config(), SET ROLE / SESSION AUTHORIZATION.
  session_settings = 1u << 0,
  /// CREATE TEMP ..., SELECT ... INTO TEMP.
  session_temp_objects = 1u << 1,
  /// LISTEN (PostgreSQL).
  session_listen = 1u << 2,
  /// PREPARE / DEALLOCATE of named statements (PostgreSQL).
  session_prepared = 1u << 3,
  /// Session-level advisory locks (PostgreSQL).
  session_advisory_locks = 1u << 4,
  /// DECLARE ... WITH HOLD cursors (PostgreSQL).
  session_cursors = 1u << 5,
  /// PRAGMA settings, ATTACH / DETACH (SQLite).
  session_pragmas = 1u << 6,
};

/// The session_change bits of `sql` (a statement or a script), read as
/// transaction_control reads it. Errs towards finding a change: the price of a false
/// find is one reset of the connection, of a miss state leaking to the next user.
unsigned session_changes(const std::string& sql, engine_kind dialect);

/// True if `sql` holds a word outside literals and comments: a statement to run, not
/// only blanks, comments and `;`.
bool has_statement(const std::string& sql, engine_kind dialect);

/// What in `sql` would lift a read-only session's protection (PostgreSQL:
/// default_transaction_read_only, transaction_read_only, READ WRITE, RESET ALL,
/// DISCARD; SQLite: query_only), or nothing. Read as transaction_control reads it.
std::optional<std::string> read_only_escape(const std::string& sql, engine_kind dialect);

/// The first word of the statement text (after blanks and comments), in lower case;
/// words longer than 16 characters are cut there.
std::string leading_keyword(const std::string& sql);

/// Whether a statement can change data (what may have changed and may have committed
/// is in doubt when its answer never came). On PostgreSQL a SELECT (or VALUES) can call
/// a function, or read a view that calls one, that writes: only SHOW and TABLE certainly
/// do not. SQLite's SQL functions cannot write.
bool may_change_data(const std::string& sql, engine_kind dialect);

/// SQL refused before it reaches a connection, with why and what to do:
/// - a NUL character: the engines stop reading the text there, so another statement
///   than the one checked would run ("DELETE FROM t\0 WHERE id = 2");
/// - transaction control, which belongs to the session's own messages, so that the
///   session always knows whether a transaction is open. Every statement of a script
///   is checked, not only the first: "SELECT 1; COMMIT" would commit behind its back;
/// - with `read_only`, anything that would lift the read-only protection.
std::optional<db_error> refused_sql(const std::string& sql, engine_kind dialect, bool read_only);

/// refused_sql and session_changes, remembering their verdicts for the last few texts
/// on this thread: applications repeat a handful of statements, and reading one anew
/// cost more CPU than libpq's whole round trip, or a tenth of a read in place on SQLite.
/// A verdict depends only on the text, the dialect and read-only.
std::optional<db_error> refused_sql_here(const std::string& sql, engine_kind dialect,
                                         bool read_only);
unsigned session_changes_here(const std::string& sql, engine_kind dialect);

} // namespace cafdb
