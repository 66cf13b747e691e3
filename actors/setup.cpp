// The setup actor: drives start-up and publishes every step.
//
//   starting ──► connecting ──(engine connects)──► ready
//                  │   ▲
//   connect fails  │   │ retry after backoff (100 ms doubling, at most 5 s)
//                  ▼   │
//             connecting (detail = last error, attempt = n)
//                  │
//                  └── setup_timeout passed ──► failed (final; the reason is published)
//
// Transitions: starting -> connecting [retry]; connecting -> ready [retry, on ok];
// connecting -> connecting [retry, on error]; connecting -> failed [retry, deadline];
// any -> starting [engine_atom: the engine was restarted].
//
// Invariants:
// 1. Every state change is published to the database; a failure never goes silent.
// 2. At most one connect request is in flight (`await`).
// 3. `failed` is final for this engine; only a restarted engine starts the sequence again.
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
  engine_actor engine;
  database_actor db;
  std::shared_ptr<const config> cfg;
  int32_t attempt = 0;
  caf::timestamp started;
  bool finished = false;
  std::shared_ptr<spdlog::logger> log;
};

using setup_pointer = setup_actor::stateful_pointer<setup_state>;

void publish(setup_pointer self, readiness_state state, std::string detail) {
  auto& st = self->state;
  st.log->info("setup {}: {}", to_string(state), detail);
  self->send(st.db,
             readiness_event{"setup", state, std::move(detail), st.attempt, caf::make_timestamp()});
}

void start(setup_pointer self) {
  auto& st = self->state;
  st.attempt = 0;
  st.finished = false;
  st.started = caf::make_timestamp();
  publish(self, readiness_state::starting, "starting");
  self->send(self, retry_atom::value);
}

void attempt(setup_pointer self) {
  auto& st = self->state;
  if (st.finished)
    return;
  st.attempt += 1;
  publish(self, readiness_state::connecting, "connecting, attempt " + std::to_string(st.attempt));
  auto engine = st.engine;
  self->request(engine, st.cfg->connect_timeout + std::chrono::seconds(1), caf::connect_atom::value)
      .await(
          [=](caf::ok_atom) {
            if (self->state.engine != engine)
              return; // answered by an engine that has since been replaced
            self->state.finished = true;
            publish(self, readiness_state::ready, "connected");
          },
          [=](caf::error& err) {
            auto& st = self->state;
            if (st.engine != engine)
              return;
            auto reason = describe(err).message;
            auto elapsed = caf::make_timestamp() - st.started;
            auto budget = caf::timespan{st.cfg->setup_timeout};
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

setup_actor::behavior_type setup_behavior(setup_pointer self, engine_actor engine,
                                          database_actor db, std::shared_ptr<const config> cfg) {
  auto& st = self->state;
  st.engine = std::move(engine);
  st.db = std::move(db);
  st.cfg = std::move(cfg);
  st.log = log::get("setup");
  start(self);
  return {
      [=](retry_atom) { attempt(self); },
      [=](engine_atom, engine_actor& replacement) {
        self->state.engine = std::move(replacement);
        start(self);
      },
  };
}

} // namespace

setup_actor spawn_setup(caf::actor_system& sys, engine_actor engine, database_actor db,
                        std::shared_ptr<const config> cfg) {
  return sys.spawn(setup_behavior, std::move(engine), std::move(db), std::move(cfg));
}

} // namespace cafdb
