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

#include <set>

#include <caf/all.hpp>

#include "cafdb/error.hpp"
#include "log.hpp"
#include "migrations.hpp"
#include "schema_sql.hpp"

namespace cafdb {

namespace {

struct schema_state {
  static inline const char* name = "cafdb.schema";
  database_actor db;
  std::shared_ptr<const config> cfg;
  std::shared_ptr<spdlog::logger> log;
  /// The highest applied migration version (0: none).
  int64_t version = 0;
};

using schema_pointer = schema_actor::stateful_pointer<schema_state>;

void publish(schema_pointer self, readiness_state state, std::string detail) {
  auto& st = self->state;
  st.log->info("schema {}: {}", to_string(state), detail);
  self->send(st.db, readiness_event{"schema", state, std::move(detail), 0, caf::make_timestamp()});
}

caf::timespan batch_deadline(const config& cfg) {
  return caf::timespan{cfg.statement_timeout} + std::chrono::seconds(1);
}

/// Leases a connection of `engine`; `on_error` gets a typed error.
template <class OnLease, class OnError>
void checkout(schema_pointer self, const engine_actor& engine, bool read_only, OnLease on_lease,
              OnError on_error) {
  auto wait = caf::timespan{self->state.cfg->pool_timeout};
  self->request(engine, wait + std::chrono::seconds(1), checkout_atom::value,
                checkout_request{read_only, wait, "schema", false})
      .await(std::move(on_lease), [=](caf::error& err) mutable { on_error(to_db_error(err)); });
}

/// Runs `request` on one leased connection of `engine`, then calls `then` with the
/// results or the error.
template <class Then>
void run_on_engine(schema_pointer self, const engine_actor& engine, exec_request request,
                   Then then) {
  using results = outcome<std::vector<result_set>>;
  checkout(
      self, engine, request.read_only,
      [=](lease& granted) mutable {
        self->request(granted.connection, batch_deadline(*self->state.cfg), exec_atom::value,
                      request)
            .await(
                [=](std::vector<result_set>& out) mutable {
                  self->send(engine, checkin_atom::value, granted.id, connection_condition::clean);
                  then(results{std::move(out)});
                },
                [=](caf::error& err) mutable {
                  self->send(engine, checkin_atom::value, granted.id,
                             condition_after(classify(err)));
                  then(results{to_db_error(err)});
                });
      },
      [=](db_error err) mutable { then(results{std::move(err)}); });
}

enum class ddl_kind { create_all, drop_all };

/// create_all / drop_all of `schema`: every statement in one transaction.
template <class Then>
void run_ddl(schema_pointer self, const schema_def& schema, const engine_actor& engine,
             ddl_kind kind, Then then) {
  if (auto ok = validate(schema); !ok) {
    then(std::move(ok));
    return;
  }
  auto order = dependency_order(schema);
  if (!order) {
    then(outcome<done>{order.error()});
    return;
  }
  auto statements = kind == ddl_kind::create_all
                        ? create_statements(*order, self->state.cfg->engine)
                        : drop_statements(*order);
  std::string name = kind == ddl_kind::create_all ? "create_all" : "drop_all";
  if (statements.empty()) {
    then(outcome<done>{done{}});
    return;
  }
  auto count = schema.tables.size();
  run_on_engine(self, engine,
                exec_request{std::move(statements), batch_mode::transaction, false, {}},
                [=](outcome<std::vector<result_set>> results) mutable {
                  if (!results) {
                    auto err = results.error();
                    err.message = name + " failed, nothing was changed: " + err.message;
                    then(outcome<done>{std::move(err)});
                    return;
                  }
                  self->state.log->info("{}: {} table(s)", name, count);
                  then(outcome<done>{done{}});
                });
}

// One migration run on one lease: the advisory lock (PostgreSQL) is held by the
// connection, so every step must run on it.
struct migration_run {
  engine_actor engine;
  lease held;
  std::vector<migration> pending;
  int64_t version = 0;
  bool locked = false;
  std::function<void(outcome<int64_t>)> done;
};

// Ends the run: unlock, give the lease back, report.
void finish_run(schema_pointer self, std::shared_ptr<migration_run> run, outcome<int64_t> result,
                connection_condition condition) {
  auto give_back = [=]() mutable {
    self->send(run->engine, checkin_atom::value, run->held.id, condition);
    run->done(std::move(result));
  };
  if (!run->locked || condition != connection_condition::clean) {
    give_back();
    return;
  }
  auto unlock = statement{"SELECT pg_advisory_unlock($1)", {migration_lock_key}};
  self->request(run->held.connection, batch_deadline(*self->state.cfg), exec_atom::value,
                exec_request{{unlock}, batch_mode::plain, false, {}})
      .await([=](std::vector<result_set>&) mutable { give_back(); },
             [=](caf::error&) mutable {
               condition = connection_condition::broken; // the lock is gone with it
               give_back();
             });
}

void apply_next(schema_pointer self, std::shared_ptr<migration_run> run, size_t index) {
  if (index == run->pending.size()) {
    finish_run(self, run, run->version, connection_condition::clean);
    return;
  }
  auto& m = run->pending[index];
  self->state.log->info("applying migration {} ({})", m.version, m.name);
  // The version row first: the same transaction records and applies it.
  auto record = statement{std::string{"INSERT INTO "} + migration_table +
                              " (version, name, applied_at) VALUES ($1, $2, CURRENT_TIMESTAMP)",
                          {m.version, m.name}};
  self->request(
          run->held.connection, batch_deadline(*self->state.cfg), exec_atom::value,
          exec_request{{record, statement{m.sql, {}}}, batch_mode::transaction, false, {}, true})
      .await(
          [=](std::vector<result_set>&) {
            run->version = run->pending[index].version;
            apply_next(self, run, index + 1);
          },
          [=](caf::error& err) {
            auto& failed = run->pending[index];
            auto problem = to_db_error(err);
            problem.message = "migration " + std::to_string(failed.version) + " (" + failed.name +
                              ") failed and was rolled back; the schema stays at version " +
                              std::to_string(run->version) + ": " + problem.message;
            finish_run(self, run, problem, condition_after(classify(err)));
          });
}

// Applies the migrations of `migrations_dir` that the version table does not list.
void migrate(schema_pointer self, const engine_actor& engine,
             std::function<void(outcome<int64_t>)> done) {
  auto& cfg = *self->state.cfg;
  if (cfg.migrations_dir.empty()) {
    done(int64_t{0});
    return;
  }
  auto files = load_migrations(cfg.migrations_dir);
  if (!files) {
    done(files.error());
    return;
  }
  auto run = std::make_shared<migration_run>();
  run->engine = engine;
  run->pending = std::move(*files);
  run->done = std::move(done);
  run->locked = cfg.engine == engine_kind::postgresql;
  checkout(
      self, engine, false,
      [=](lease& held) {
        run->held = held;
        // Waits for another process's run to finish: it holds the lock meanwhile.
        std::vector<statement> start;
        if (run->locked)
          start.push_back({"SELECT pg_advisory_lock($1)", {migration_lock_key}});
        start.push_back({std::string{"CREATE TABLE IF NOT EXISTS "} + migration_table +
                             " (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at "
                             "TEXT NOT NULL)",
                         {}});
        start.push_back({std::string{"SELECT version FROM "} + migration_table, {}});
        auto& cfg = *self->state.cfg;
        auto lock_wait = caf::timespan{cfg.setup_timeout} + batch_deadline(cfg);
        // The lock is the connection's session's: kept until the unlock.
        self->request(held.connection, lock_wait, exec_atom::value,
                      exec_request{start, batch_mode::plain, false, {}, true})
            .await(
                [=](std::vector<result_set>& results) {
                  std::set<int64_t> applied;
                  for (auto& row : results.back().rows)
                    applied.insert(row.at(0).as_int());
                  auto& pending = run->pending;
                  if (!applied.empty())
                    run->version = *applied.rbegin();
                  pending.erase(std::remove_if(pending.begin(), pending.end(),
                                               [&](const migration& m) {
                                                 return applied.count(m.version) > 0;
                                               }),
                                pending.end());
                  apply_next(self, run, 0);
                },
                [=](caf::error& err) {
                  // Whether the lock was taken is unknown: never pool this connection.
                  run->locked = false;
                  finish_run(self, run, to_db_error(err), connection_condition::broken);
                });
      },
      [=](db_error err) { run->done(std::move(err)); });
}

template <class Done>
void reflect(schema_pointer self, const engine_actor& engine, Done done) {
  auto dialect = self->state.cfg->engine;
  // One read-only transaction: every catalog query sees the same snapshot.
  run_on_engine(self, engine,
                exec_request{reflect_statements(dialect), batch_mode::transaction, true, {}},
                [=](outcome<std::vector<result_set>> results) mutable {
                  if (!results) {
                    done(outcome<schema_def>{results.error()});
                    return;
                  }
                  done(parse_reflection(dialect, *results));
                });
}

caf::typed_response_promise<caf::ok_atom> answer_ddl(schema_pointer self, const schema_def& schema,
                                                     const engine_actor& engine, ddl_kind kind) {
  auto rp = self->make_response_promise<caf::ok_atom>();
  run_ddl(self, schema, engine, kind, [=](outcome<done> result) mutable {
    if (result)
      rp.deliver(caf::ok_atom::value);
    else
      rp.deliver(to_caf_error(result.error()));
  });
  return rp;
}

schema_actor::behavior_type schema_behavior(schema_pointer self, database_actor db,
                                            std::shared_ptr<const config> cfg) {
  auto& st = self->state;
  st.db = std::move(db);
  st.cfg = std::move(cfg);
  st.log = log::get("schema");
  return {
      [=](prepare_atom, engine_actor& engine) -> caf::result<caf::ok_atom> {
        publish(self, readiness_state::migrating,
                self->state.cfg->migrations_dir.empty()
                    ? "creating the declared tables"
                    : "applying migrations, then creating tables");
        auto rp = self->make_response_promise<caf::ok_atom>();
        auto fail = [=](db_error err) mutable {
          publish(self, readiness_state::failed, err.message);
          rp.deliver(to_caf_error(std::move(err)));
        };
        auto finish = [=](outcome<schema_def> live) mutable {
          if (!live) {
            fail(live.error());
            return;
          }
          // Every declared table must exist now, whoever created it.
          std::string missing;
          for (auto& table : self->state.cfg->schema.tables)
            if (!live->table(table.name))
              missing += (missing.empty() ? "" : ", ") + table.name;
          if (!missing.empty()) {
            fail(db_error{errc::not_found,
                          "declared table(s) missing from the database: " + missing +
                              " (create_all is off: create them, or turn it on)",
                          "", ""});
            return;
          }
          publish(self, readiness_state::ready,
                  "version " + std::to_string(self->state.version) + ", " +
                      std::to_string(live->tables.size()) + " table(s)");
          rp.deliver(caf::ok_atom::value);
        };
        migrate(self, engine, [=](outcome<int64_t> migrated) mutable {
          if (!migrated) {
            fail(migrated.error());
            return;
          }
          self->state.version = *migrated;
          auto& cfg = *self->state.cfg;
          if (!cfg.create_all || cfg.schema.empty()) {
            reflect(self, engine, finish);
            return;
          }
          run_ddl(self, cfg.schema, engine, ddl_kind::create_all,
                  [=](outcome<done> created) mutable {
                    if (!created)
                      fail(created.error());
                    else
                      reflect(self, engine, finish);
                  });
        });
        return rp;
      },
      [=](create_all_atom, const schema_def& schema,
          engine_actor& engine) -> caf::result<caf::ok_atom> {
        return answer_ddl(self, schema, engine, ddl_kind::create_all);
      },
      [=](drop_all_atom, const schema_def& schema,
          engine_actor& engine) -> caf::result<caf::ok_atom> {
        return answer_ddl(self, schema, engine, ddl_kind::drop_all);
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
