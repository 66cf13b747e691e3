// The operations actor: ready-made reads and CRUD (docs/operations.md) answered as JSON.
//
// State machine of its copy of the live schema (used to check table and column names):
//
//   unknown ──table op──► reflecting ──schema──► known ──reset (create_all/drop_all ran)──► unknown
//                             ▲   │                 │
//                             │   └──error──► unknown (the waiting ops get the error)
//                             └──── a table op names a table or column the copy lacks
//
// Invariants:
// 1. Every request is answered exactly once: JSON text, or a typed error (with the
//    `json_errors` option, its {"error", "details"} form as the answer instead).
// 2. SQL text comes only from src/operations_sql.cpp: identifiers the live schema holds,
//    checked and quoted, and the caller's own SQL for the query kinds; values are
//    always bound parameters.
// 3. Statements run through the database (exec / transact) like any client's, so they
//    obey readiness, pool limits and deadlines; an operation of several statements runs
//    in one transaction (read_multi and paginate in one snapshot).
// 4. A request the copy refuses (a name it lacks, a value that does not fit a
//    column's type) triggers one reflect before it is refused, so tables and columns
//    created, changed or re-created since start-up are found.
// 5. A write by primary key (update_one, delete_one, delete_many) never picks a row by
//    a key the table no longer has: its statement carries a guard that fails it when
//    the table's key columns are not the copy's, and the operation runs again after
//    one reflect.
#include "actors/operations.hpp"

#include <functional>
#include <optional>
#include <set>

#include <caf/all.hpp>

#include "cafdb/error.hpp"
#include "log.hpp"
#include "operations_sql.hpp"

namespace cafdb {

namespace {

using json = nlohmann::json;
using reply = caf::typed_response_promise<std::string>;

struct operations_state {
  static inline const char* name = "cafdb.operations";
  database_actor db;
  std::shared_ptr<const config> cfg;
  std::shared_ptr<spdlog::logger> log;
  /// The live schema as last reflected; empty while unknown.
  std::optional<schema_def> schema;
  /// Table operations waiting for the reflect under way; called with its error, if any.
  std::vector<std::function<void(std::optional<db_error>)>> waiting;
  bool reflecting = false;
};

using operations_pointer = operations_actor::stateful_pointer<operations_state>;

db_error invalid(std::string message) {
  return db_error{errc::invalid_argument, std::move(message), "", ""};
}

// Text from the database need not be valid UTF-8 (SQLite stores any bytes).
std::string dump(const json& x) {
  return x.dump(-1, ' ', false, json::error_handler_t::replace);
}

void answer(operations_pointer self, reply rp, outcome<json> out) {
  if (out)
    rp.deliver(dump(*out));
  else if (self->state.cfg->json_errors)
    rp.deliver(dump(error_object(out.error())));
  else
    rp.deliver(to_caf_error(std::move(out.error())));
}

/// Sends a request to the database; `then` gets its answer or the error as an outcome.
template <class Result, class Then, class... Ts>
void ask_database(operations_pointer self, Then then, Ts&&... xs) {
  // The database answers every request within its own deadlines (held, pool, statement).
  self->request(self->state.db, caf::duration{caf::infinite}, std::forward<Ts>(xs)...)
      .then([=](Result& out) mutable { then(outcome<Result>{std::move(out)}); },
            [=](caf::error& err) mutable { then(outcome<Result>{to_db_error(err)}); });
}

/// Runs one statement; `shape` turns its result into the answer.
/// What a table operation does when its statement found the table's key changed
/// (is_stale_key): reflects and tries again, once.
using on_stale_key = std::function<void()>;

template <class Shape>
void run_one(operations_pointer self, reply rp, const operation& op, outcome<statement> stmt,
             Shape shape, on_stale_key stale = nullptr) {
  if (!stmt)
    return answer(self, rp, stmt.error());
  ask_database<result_set>(
      self,
      [=](outcome<result_set> rs) mutable {
        if (!rs && stale && is_stale_key(rs.error()))
          return stale();
        if (!rs)
          return answer(self, rp, rs.error());
        answer(self, rp, shape(*rs));
      },
      exec_atom::value, std::move(*stmt), op.options);
}

/// Runs statements in one transaction; `shape` gets the results of `stmts` only. With
/// `snapshot`, every statement sees the same data (REPEATABLE READ on PostgreSQL;
/// an SQLite transaction always reads one snapshot).
template <class Shape>
void run_all(operations_pointer self, reply rp, const operation& op,
             outcome<std::vector<statement>> stmts, bool snapshot, Shape shape,
             on_stale_key stale = nullptr) {
  if (!stmts)
    return answer(self, rp, stmts.error());
  size_t skip = 0;
  if (snapshot && self->state.cfg->engine == engine_kind::postgresql) {
    stmts->insert(stmts->begin(), statement{"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"});
    skip = 1;
  }
  ask_database<std::vector<result_set>>(
      self,
      [=](outcome<std::vector<result_set>> results) mutable {
        if (!results && stale && is_stale_key(results.error()))
          return stale();
        if (!results)
          return answer(self, rp, results.error());
        results->erase(results->begin(), results->begin() + static_cast<std::ptrdiff_t>(skip));
        answer(self, rp, shape(*results));
      },
      transact_atom::value, std::move(*stmts), op.options);
}

outcome<statement> the_statement(const operation& op) {
  if (op.statements.size() != 1)
    return invalid(to_string(op.kind) + " takes exactly one statement; got " +
                   std::to_string(op.statements.size()));
  return op.statements.front();
}

outcome<std::vector<statement>> some_statements(const operation& op) {
  if (op.statements.empty())
    return invalid(to_string(op.kind) + " takes at least one statement");
  return op.statements;
}

int64_t first_integer(const result_set& rs) {
  return rs.rows.empty() || rs.rows.front().empty() ? 0 : rs.rows.front().front().as_int();
}

void run_query(operations_pointer self, reply rp, const operation& op) {
  switch (op.kind) {
  case op_kind::count: {
    auto query = the_statement(op);
    run_one(self, rp, op, query ? count_statement(*query) : query,
            [](const result_set& rs) -> outcome<json> { return json(first_integer(rs)); });
    break;
  }
  case op_kind::paginate: {
    auto query = the_statement(op);
    if (!query)
      return answer(self, rp, query.error());
    auto page = page_statement(*query, op.page, op.page_size);
    if (!page)
      return answer(self, rp, page.error());
    auto count = count_statement(*query);
    auto page_no = op.page, page_size = op.page_size;
    run_all(self, rp, op, std::vector<statement>{*count, *page}, true,
            [=](const std::vector<result_set>& rs) -> outcome<json> {
              return page_result(row_objects(rs[1]), first_integer(rs[0]), page_no, page_size);
            });
    break;
  }
  case op_kind::read_one: {
    auto query = the_statement(op);
    run_one(self, rp, op, query ? first_row_statement(*query) : query,
            [](const result_set& rs) -> outcome<json> {
              return rs.rows.empty() ? json(nullptr) : row_object(rs, 0);
            });
    break;
  }
  case op_kind::read_query:
    run_one(self, rp, op, the_statement(op),
            [](const result_set& rs) -> outcome<json> { return row_objects(rs); });
    break;
  case op_kind::read_multi: {
    if (op.names.size() != op.statements.size())
      return answer(self, rp,
                    invalid("read_multi takes one name per statement; got " +
                            std::to_string(op.names.size()) + " name(s) for " +
                            std::to_string(op.statements.size()) + " statement(s)"));
    std::set<std::string> seen;
    for (auto& name : op.names)
      if (name.empty() || !seen.insert(name).second)
        return answer(
            self, rp,
            invalid("read_multi names must be non-empty and distinct; '" + name + "' is not"));
    auto names = op.names;
    run_all(self, rp, op, some_statements(op), true,
            [=](const std::vector<result_set>& rs) -> outcome<json> {
              auto out = json::object();
              for (size_t i = 0; i < names.size(); ++i)
                out[names[i]] = row_objects(rs[i]);
              return out;
            });
    break;
  }
  case op_kind::execute_one:
    run_one(self, rp, op, the_statement(op),
            [](const result_set& rs) -> outcome<json> { return execution_summary(rs); });
    break;
  case op_kind::execute_many:
    run_all(self, rp, op, some_statements(op), false,
            [](const std::vector<result_set>& rs) -> outcome<json> {
              auto out = json::array();
              for (auto& x : rs)
                out.push_back(execution_summary(x));
              return out;
            });
    break;
  default:
    answer(self, rp, db_error{errc::internal_error, "not a query operation", "", ""});
  }
}

// -- table operations ----------------------------------------------------------

/// The JSON inputs of a table operation, parsed once.
struct table_input {
  json data;
  json key;
};

outcome<json> parse_field(const std::string& text, const char* field, op_kind kind) {
  if (text.empty())
    return json(nullptr);
  auto parsed = parse_json_bounded(text);
  if (parsed.is_discarded())
    return invalid(to_string(kind) + ": '" + field + "' is not valid JSON (or nests deeper than " +
                   std::to_string(json_max_depth) + " levels)");
  return parsed;
}

// Every column name the request uses, for the staleness check of invariant 4.
std::vector<std::string> named_columns(const operation& op, const table_input& in) {
  std::vector<std::string> out = op.conflict_columns;
  auto add_keys = [&](const json& object) {
    if (object.is_object())
      for (auto& item : object.items())
        out.push_back(item.key());
  };
  add_keys(in.data);
  add_keys(in.key);
  if (in.data.is_array())
    for (auto& row : in.data)
      add_keys(row);
  return out;
}

bool knows_all(const table_def& table, const std::vector<std::string>& columns) {
  for (auto& name : columns)
    if (!table.column(name))
      return false;
  return true;
}

void refresh_schema(operations_pointer self, std::function<void(std::optional<db_error>)> then) {
  auto& st = self->state;
  st.waiting.push_back(std::move(then));
  if (st.reflecting)
    return;
  st.reflecting = true;
  ask_database<schema_def>(
      self,
      [=](outcome<schema_def> schema) {
        auto& st = self->state;
        st.reflecting = false;
        std::optional<db_error> err;
        if (schema)
          st.schema = std::move(*schema);
        else
          err = schema.error();
        auto waiting = std::move(st.waiting);
        st.waiting.clear();
        for (auto& waiter : waiting)
          waiter(err);
      },
      reflect_atom::value);
}

std::string key_text(const json& key) {
  auto text = dump(key);
  return text.size() > 100 ? text.substr(0, 100) + "..." : text;
}

db_error no_row(const table_def& table, const json& key) {
  return db_error{errc::not_found,
                  "no row of table '" + table.name + "' has the primary key " + key_text(key), "",
                  ""};
}

/// The statements of a table operation, checked against `table` (names and value
/// types); an empty list for a delete_many of no keys.
outcome<std::vector<statement>> table_statements(const operation& op, const table_def& table,
                                                 const table_input& in, engine_kind dialect) {
  auto now = utc_timestamp_now();
  auto one = [](outcome<statement> stmt) -> outcome<std::vector<statement>> {
    if (!stmt)
      return stmt.error();
    return std::vector<statement>{std::move(*stmt)};
  };
  switch (op.kind) {
  case op_kind::create_one:
    return one(insert_statement(table, in.data, now));
  case op_kind::create_many: {
    if (!in.data.is_array())
      return invalid("create_many takes a JSON array of row objects for table '" + table.name +
                     "'");
    std::vector<statement> stmts;
    for (auto& row : in.data) {
      auto stmt = insert_statement(table, row, now);
      if (!stmt)
        return stmt.error();
      stmts.push_back(std::move(*stmt));
    }
    return stmts;
  }
  case op_kind::update_one:
    return one(update_statement(table, in.key, in.data, now, dialect));
  case op_kind::delete_one:
    return one(delete_statement(table, in.key, dialect));
  case op_kind::delete_many:
    return delete_many_statements(table, in.key, dialect);
  case op_kind::upsert:
    return one(upsert_statement(table, in.data, op.conflict_columns, now));
  default:
    return db_error{errc::internal_error, "not a table operation", "", ""};
  }
}

/// Runs the statements of a table operation and shapes the answer.
void run_on_table(operations_pointer self, reply rp, const operation& op, const table_def& table,
                  const table_input& in, std::vector<statement> stmts, on_stale_key stale) {
  auto first_row = [](const result_set& rs) -> outcome<json> {
    if (rs.rows.empty())
      return db_error{errc::internal_error, "the statement returned no row; please report this", "",
                      ""};
    return row_object(rs, 0);
  };
  switch (op.kind) {
  case op_kind::create_one:
  case op_kind::upsert:
    run_one(self, rp, op, std::move(stmts.front()), first_row);
    break;
  case op_kind::create_many:
    if (stmts.empty())
      return answer(self, rp, json::array());
    run_all(self, rp, op, std::move(stmts), false,
            [](const std::vector<result_set>& rs) -> outcome<json> {
              auto out = json::array();
              for (auto& x : rs)
                if (!x.rows.empty())
                  out.push_back(row_object(x, 0));
              return out;
            });
    break;
  case op_kind::update_one: {
    auto key = in.key;
    run_one(
        self, rp, op, std::move(stmts.front()),
        [=](const result_set& rs) -> outcome<json> {
          if (rs.rows.empty())
            return no_row(table, key);
          return row_object(rs, 0);
        },
        stale);
    break;
  }
  case op_kind::delete_one: {
    auto key = in.key;
    run_one(
        self, rp, op, std::move(stmts.front()),
        [=](const result_set& rs) -> outcome<json> {
          if (rs.affected_rows == 0)
            return no_row(table, key);
          return json{{"deleted", rs.affected_rows}};
        },
        stale);
    break;
  }
  case op_kind::delete_many:
    if (stmts.empty())
      return answer(self, rp, json{{"deleted", 0}});
    run_all(
        self, rp, op, std::move(stmts), false,
        [](const std::vector<result_set>& rs) -> outcome<json> {
          int64_t deleted = 0;
          for (auto& x : rs)
            deleted += x.affected_rows;
          return json{{"deleted", deleted}};
        },
        stale);
    break;
  default:
    answer(self, rp, db_error{errc::internal_error, "not a table operation", "", ""});
  }
}

bool try_table_op(operations_pointer self, reply rp, const operation& op, const table_input& in,
                  const std::vector<std::string>& columns, bool fresh);

// Reflects, then runs the operation with the fresh copy.
void reflect_then_try(operations_pointer self, reply rp, operation op, table_input in,
                      std::vector<std::string> columns) {
  refresh_schema(self, [=](std::optional<db_error> err) {
    if (err)
      answer(self, rp, std::move(*err));
    else
      try_table_op(self, rp, op, in, columns, true);
  });
}

// Runs the operation with the copy of the schema. Not `fresh`: false, and nothing run,
// when the copy refuses it (invariant 4); a statement that found the table's key
// changed (its guard failed, changing nothing) reflects and runs again too.
bool try_table_op(operations_pointer self, reply rp, const operation& op, const table_input& in,
                  const std::vector<std::string>& columns, bool fresh) {
  auto table = find_table(*self->state.schema, op.table);
  if (!fresh && (!table || !knows_all(**table, columns)))
    return false;
  if (!table) {
    answer(self, rp, table.error());
    return true;
  }
  auto stmts = table_statements(op, **table, in, self->state.cfg->engine);
  if (!stmts && !fresh && stmts.error().code == errc::invalid_argument)
    return false;
  if (!stmts) {
    answer(self, rp, stmts.error());
    return true;
  }
  on_stale_key stale;
  if (!fresh)
    stale = [=] { reflect_then_try(self, rp, op, in, columns); };
  run_on_table(self, rp, op, **table, in, std::move(*stmts), std::move(stale));
  return true;
}

void run_table_op(operations_pointer self, reply rp, operation op) {
  auto data = parse_field(op.data, "data", op.kind);
  if (!data)
    return answer(self, rp, data.error());
  auto key = parse_field(op.key, "key", op.kind);
  if (!key)
    return answer(self, rp, key.error());
  auto in = table_input{std::move(*data), std::move(*key)};
  auto columns = named_columns(op, in);
  // Invariant 4: a request the copy refuses (a name it lacks, a value that does not fit
  // a column's type: the table may have been dropped and created anew since) is tried
  // again after one reflect. After a fresh reflect the copy is as good as it gets: a
  // refusal is the caller's.
  if (!self->state.schema || !try_table_op(self, rp, op, in, columns, false))
    reflect_then_try(self, rp, op, in, columns);
}

bool is_table_op(op_kind kind) {
  switch (kind) {
  case op_kind::create_one:
  case op_kind::create_many:
  case op_kind::update_one:
  case op_kind::delete_one:
  case op_kind::delete_many:
  case op_kind::upsert:
    return true;
  default:
    return false;
  }
}

operations_actor::behavior_type operations_behavior(operations_pointer self, database_actor db,
                                                    std::shared_ptr<const config> cfg) {
  auto& st = self->state;
  st.db = std::move(db);
  st.cfg = std::move(cfg);
  st.log = log::get("operations");
  return {
      [=](op_atom, operation& op) -> caf::result<std::string> {
        auto rp = self->make_response_promise<std::string>();
        if (is_table_op(op.kind))
          run_table_op(self, rp, std::move(op));
        else
          run_query(self, rp, op);
        return rp;
      },
      [=](caf::reset_atom) { self->state.schema.reset(); },
  };
}

} // namespace

operations_actor spawn_operations(caf::actor_system& sys, database_actor db,
                                  std::shared_ptr<const config> cfg) {
  return sys.spawn(operations_behavior, std::move(db), std::move(cfg));
}

std::string to_string(op_kind x) {
  switch (x) {
  case op_kind::count:
    return "count";
  case op_kind::paginate:
    return "paginate";
  case op_kind::read_one:
    return "read_one";
  case op_kind::read_query:
    return "read_query";
  case op_kind::read_multi:
    return "read_multi";
  case op_kind::execute_one:
    return "execute_one";
  case op_kind::execute_many:
    return "execute_many";
  case op_kind::create_one:
    return "create_one";
  case op_kind::create_many:
    return "create_many";
  case op_kind::update_one:
    return "update_one";
  case op_kind::delete_one:
    return "delete_one";
  case op_kind::delete_many:
    return "delete_many";
  default:
    return "upsert";
  }
}

} // namespace cafdb
