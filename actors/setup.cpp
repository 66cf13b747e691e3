// The setup actor: drives start-up and publishes every step.
//
//   starting ──► connecting ──(every engine connects, in order)──► migrating ──► ready
//                  │   ▲                                              │
//   connect fails  │   │ retry after backoff (100 ms doubling,        │ schema fails
//                  ▼   │ at most 5 s)                                 ▼
//             connecting (detail = last error, attempt = n)         failed
//                  │
//                  └── setup_timeout passed ──► failed (final; the reason is published)
//
// Transitions: starting -> connecting [retry]; connecting -> migrating [on ok of the
// last engine, with a declared schema]; connecting -> ready [on ok of the last engine,
// without one]; migrating -> ready [schema prepared]; migrating -> failed [schema
// error: a DDL failure is not cured by waiting]; connecting -> connecting [retry, on
// error]; connecting -> failed [retry, deadline passed].
//
// Invariants:
// 1. Every state change is published to the database; a failure never goes silent.
// 2. At most one connect request is in flight (`await`); engines connect in order,
//    and an engine that connected is not asked again.
// 3. `failed` is final; the database spawns a new setup when it restarts an engine.
#include "actors/setup.hpp"

#include <algorithm>
#include <chrono>

#include <caf/all.hpp>

#include "cafdb/error.hpp"
#include "log.hpp"

namespace cafdb {

namespace {

struct setup_state {
  static inline const char* name = "cafdb.setup";
  std::vector<engine_actor> engines;
  schema_actor schema;
  size_t connected = 0; // engines connected so far, in order
  database_actor db;
  std::shared_ptr<const config> cfg;
  int32_t attempt = 0;
  caf::timestamp started;
  bool finished = false;
  /// Why the last attempt failed, shown while the next one runs.
  std::string last_failure;
  std::shared_ptr<spdlog::logger> log;
};

/// Failures that retrying cannot fix: wrong credentials, a database that does not
/// exist, a file that is not a database. Start-up fails at once on these, unless the
/// configuration says a provisioning step will fix them (retry_unfixable).
bool retrying_cannot_fix(const caf::error& err) {
  auto code = describe(err).driver_code;
  return code == "28P01" || code == "28000" || code == "3D000" ||
         code.rfind("SQLITE_NOTADB", 0) == 0;
}

using setup_pointer = setup_actor::stateful_pointer<setup_state>;

void publish(setup_pointer self, readiness_state state, std::string detail) {
  auto& st = self->state;
  st.log->info("setup {}: {}", to_string(state), detail);
  self->send(st.db,
             readiness_event{"setup", state, std::move(detail), st.attempt, caf::make_timestamp()});
}

// The schema publishes its own `schema_ready` before setup publishes `ready`.
void prepare_schema(setup_pointer self) {
  auto& st = self->state;
  publish(self, readiness_state::migrating, "preparing the schema");
  auto budget = caf::timespan{st.cfg->setup_timeout} - (caf::make_timestamp() - st.started);
  auto timeout = std::max<caf::timespan>(budget, caf::timespan{st.cfg->statement_timeout}) +
                 caf::timespan{st.cfg->pool_timeout};
  self->request(st.schema, timeout, prepare_atom::value, st.engines.front())
      .await(
          [=](caf::ok_atom) {
            self->state.finished = true;
            publish(self, readiness_state::ready, "connected, schema ready");
          },
          [=](caf::error& err) {
            self->state.finished = true;
            publish(self, readiness_state::failed, "schema: " + describe(err).message);
          });
}

void attempt(setup_pointer self) {
  auto& st = self->state;
  if (st.finished)
    return;
  st.attempt += 1;
  publish(self, readiness_state::connecting,
          "connecting, attempt " + std::to_string(st.attempt) +
              (st.last_failure.empty() ? std::string{}
                                       : " (the last one failed: " + st.last_failure + ")"));
  self->request(st.engines[st.connected], st.cfg->connect_timeout + std::chrono::seconds(1),
                caf::connect_atom::value)
      .await(
          [=](caf::ok_atom) {
            auto& st = self->state;
            st.connected += 1;
            if (st.connected < st.engines.size()) {
              attempt(self); // the next engine, at once
              return;
            }
            if (!st.cfg->has_schema_work()) {
              st.finished = true;
              publish(self, readiness_state::ready, "connected");
              return;
            }
            prepare_schema(self);
          },
          [=](caf::error& err) {
            auto& st = self->state;
            auto reason = describe(err).message;
            auto elapsed = caf::make_timestamp() - st.started;
            auto budget = caf::timespan{st.cfg->setup_timeout};
            st.last_failure = reason;
            st.log->warn("connecting failed (attempt {}): {}", st.attempt, reason);
            if (retrying_cannot_fix(err) && !st.cfg->retry_unfixable) {
              st.finished = true;
              publish(self, readiness_state::failed,
                      "gave up at once, retrying cannot fix this: " + reason);
              return;
            }
            if (elapsed >= budget) {
              st.finished = true;
              publish(self, readiness_state::failed,
                      "gave up after " + std::to_string(st.attempt) + " attempt(s) in " +
                          std::to_string(std::chrono::duration_cast<millis>(elapsed).count()) +
                          " ms (setup_timeout): " + reason);
              return;
            }
            auto backoff = std::min<caf::timespan>(std::chrono::milliseconds(100) *
                                                       (1 << std::min(st.attempt - 1, 6)),
                                                   std::chrono::seconds(5));
            backoff = std::min(backoff, budget - elapsed);
            publish(self, readiness_state::connecting,
                    "attempt " + std::to_string(st.attempt) + " failed, retrying in " +
                        std::to_string(std::chrono::duration_cast<millis>(backoff).count()) +
                        " ms: " + reason);
            self->delayed_send(self, backoff, retry_atom::value);
          });
}

setup_actor::behavior_type setup_behavior(setup_pointer self, std::vector<engine_actor> engines,
                                          schema_actor schema, database_actor db,
                                          std::shared_ptr<const config> cfg) {
  auto& st = self->state;
  st.engines = std::move(engines);
  st.schema = std::move(schema);
  st.db = std::move(db);
  st.cfg = std::move(cfg);
  st.log = log::get("setup");
  st.started = caf::make_timestamp();
  publish(self, readiness_state::starting, "starting");
  self->send(self, retry_atom::value);
  return {
      [=](retry_atom) { attempt(self); },
  };
}

} // namespace

setup_actor spawn_setup(caf::actor_system& sys, std::vector<engine_actor> engines,
                        schema_actor schema, database_actor db, std::shared_ptr<const config> cfg) {
  return sys.spawn(setup_behavior, std::move(engines), std::move(schema), std::move(db),
                   std::move(cfg));
}

} // namespace cafdb
