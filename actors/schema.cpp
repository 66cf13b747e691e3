// The schema actor: runs DDL and reads the catalog, one request at a time.
//
// State machine (the `schema` readiness component):
//
//   starting ──prepare──► migrating ──ok──► ready (detail: tables and version)
//                              │
//                              └── error ──► failed (detail: the reason; setup decides
//                                            whether to retry)
//
// Each request takes one connection lease from the engine it names, runs one batch
// on it, and gives the lease back before answering.
//
// Invariants:
// 1. DDL runs in one transaction per request (both engines have transactional DDL):
//    create_all and drop_all are all-or-nothing.
// 2. Requests are served one at a time (`await`), so two create_all never interleave.
// 3. A lease is always checked in: clean after success or a statement error, broken
//    when the connection itself failed.
// 4. SQL text holds only checked identifiers and the developer's declared defaults and
//    checks; no request value is spliced into it.
#include "actors/schema.hpp"

#include <caf/all.hpp>

#include "cafdb/error.hpp"
#include "log.hpp"
#include "schema_sql.hpp"

namespace cafdb {

namespace {

struct schema_state {
  static inline const char* name = "cafdb.schema";
  database_actor db;
  std::shared_ptr<const config> cfg;
  std::shared_ptr<spdlog::logger> log;
};

using schema_pointer = schema_actor::stateful_pointer<schema_state>;

sql_dialect dialect_of(const config& cfg) {
  return cfg.engine == engine_kind::postgresql ? sql_dialect::postgresql : sql_dialect::sqlite;
}

void publish(schema_pointer self, readiness_state state, std::string detail) {
  auto& st = self->state;
  st.log->info("schema {}: {}", to_string(state), detail);
  self->send(st.db, readiness_event{"schema", state, std::move(detail), 0, caf::make_timestamp()});
}

// A failure from CAF itself (engine or connection gone, a timeout) has no cafdb code.
db_error as_db_error(const caf::error& err) {
  auto info = describe(err);
  auto code = info.code == errc::none ? errc::unavailable : info.code;
  return db_error{code, info.message, info.driver_code, info.driver_message};
}

/// Runs `request` on one leased connection of `engine`, then calls `done` with the
/// results or the error.
template <class Done>
void run_on_engine(schema_pointer self, const engine_actor& engine, exec_request request,
                   Done done) {
  auto& cfg = *self->state.cfg;
  auto wait = caf::timespan{cfg.pool_timeout};
  self->request(engine, wait + std::chrono::seconds(1), checkout_atom::value,
                checkout_request{request.read_only, wait})
      .await(
          [=](lease& granted) mutable {
            auto deadline =
                caf::timespan{self->state.cfg->statement_timeout} + std::chrono::seconds(1);
            self->request(granted.connection, deadline, exec_atom::value, request)
                .await(
                    [=](std::vector<result_set>& results) mutable {
                      self->send(engine, checkin_atom::value, granted.id,
                                 connection_condition::clean);
                      done(outcome<std::vector<result_set>>{std::move(results)});
                    },
                    [=](caf::error& err) mutable {
                      bool ours = err.category() == error_category;
                      self->send(engine, checkin_atom::value, granted.id,
                                 ours ? connection_condition::clean
                                      : connection_condition::running);
                      done(outcome<std::vector<result_set>>{as_db_error(err)});
                    });
          },
          [=](caf::error& err) mutable {
            done(outcome<std::vector<result_set>>{as_db_error(err)});
          });
}

// create_all / drop_all: every statement in one transaction.
template <class MakeStatements>
caf::result<caf::ok_atom> run_ddl(schema_pointer self, const schema_def& schema,
                                  const engine_actor& engine, const char* what,
                                  MakeStatements make) {
  if (auto ok = validate(schema); !ok)
    return to_caf_error(ok.error());
  auto order = dependency_order(schema);
  if (!order)
    return to_caf_error(order.error());
  auto statements = make(*order);
  if (statements.empty())
    return caf::ok_atom::value;
  auto rp = self->make_response_promise<caf::ok_atom>();
  auto count = schema.tables.size();
  std::string name = what;
  run_on_engine(self, engine, exec_request{std::move(statements), batch_mode::transaction, false},
                [=](outcome<std::vector<result_set>> results) mutable {
                  if (!results) {
                    auto err = results.error();
                    err.message = name + " failed, nothing was changed: " + err.message;
                    rp.deliver(to_caf_error(std::move(err)));
                    return;
                  }
                  self->state.log->info("{}: {} table(s)", name, count);
                  rp.deliver(caf::ok_atom::value);
                });
  return rp;
}

template <class Done>
void reflect(schema_pointer self, const engine_actor& engine, Done done) {
  auto dialect = dialect_of(*self->state.cfg);
  // One read-only transaction: every catalog query sees the same snapshot.
  run_on_engine(self, engine,
                exec_request{reflect_statements(dialect), batch_mode::transaction, true},
                [=](outcome<std::vector<result_set>> results) mutable {
                  if (!results) {
                    done(outcome<schema_def>{results.error()});
                    return;
                  }
                  done(parse_reflection(dialect, *results));
                });
}

schema_actor::behavior_type schema_behavior(schema_pointer self, database_actor db,
                                            std::shared_ptr<const config> cfg) {
  auto& st = self->state;
  st.db = std::move(db);
  st.cfg = std::move(cfg);
  st.log = log::get("schema");
  auto dialect = dialect_of(*st.cfg);
  return {
      [=](prepare_atom, engine_actor& engine) -> caf::result<caf::ok_atom> {
        auto& cfg = *self->state.cfg;
        publish(self, readiness_state::migrating,
                cfg.create_all ? "creating the declared tables" : "reading the catalog");
        auto rp = self->make_response_promise<caf::ok_atom>();
        auto finish = [=](outcome<schema_def> live) mutable {
          if (!live) {
            publish(self, readiness_state::failed, live.error().message);
            rp.deliver(to_caf_error(live.error()));
            return;
          }
          // Every declared table must exist now, whoever created it.
          std::string missing;
          for (auto& table : self->state.cfg->schema.tables)
            if (!live->table(table.name))
              missing += (missing.empty() ? "" : ", ") + table.name;
          if (!missing.empty()) {
            auto err = db_error{errc::not_found,
                                "declared table(s) missing from the database: " + missing +
                                    " (create_all is off: create them, or turn it on)",
                                "", ""};
            publish(self, readiness_state::failed, err.message);
            rp.deliver(to_caf_error(err));
            return;
          }
          publish(self, readiness_state::ready, std::to_string(live->tables.size()) + " table(s)");
          rp.deliver(caf::ok_atom::value);
        };
        auto after_create = [=](outcome<std::vector<result_set>> created) mutable {
          if (!created) {
            auto err = created.error();
            err.message = "create_all failed, nothing was changed: " + err.message;
            publish(self, readiness_state::failed, err.message);
            rp.deliver(to_caf_error(err));
            return;
          }
          reflect(self, engine, finish);
        };
        if (!cfg.create_all || cfg.schema.empty()) {
          reflect(self, engine, finish);
          return rp;
        }
        auto order = dependency_order(cfg.schema);
        if (!order) {
          after_create(order.error());
          return rp;
        }
        run_on_engine(
            self, engine,
            exec_request{create_statements(*order, dialect), batch_mode::transaction, false},
            after_create);
        return rp;
      },
      [=](create_all_atom, const schema_def& schema,
          engine_actor& engine) -> caf::result<caf::ok_atom> {
        return run_ddl(self, schema, engine, "create_all",
                       [=](const std::vector<const table_def*>& order) {
                         return create_statements(order, dialect);
                       });
      },
      [=](drop_all_atom, const schema_def& schema,
          engine_actor& engine) -> caf::result<caf::ok_atom> {
        return run_ddl(
            self, schema, engine, "drop_all",
            [](const std::vector<const table_def*>& order) { return drop_statements(order); });
      },
      [=](reflect_atom, engine_actor& engine) -> caf::result<schema_def> {
        auto rp = self->make_response_promise<schema_def>();
        reflect(self, engine, [=](outcome<schema_def> live) mutable {
          if (live)
            rp.deliver(std::move(*live));
          else
            rp.deliver(to_caf_error(live.error()));
        });
        return rp;
      },
  };
}

} // namespace

schema_actor spawn_schema(caf::actor_system& sys, database_actor db,
                          std::shared_ptr<const config> cfg) {
  return sys.spawn(schema_behavior, std::move(db), std::move(cfg));
}

} // namespace cafdb
