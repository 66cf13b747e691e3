// The database actor: supervisor, router and readiness registry.
//
// Readiness (docs/architecture.md, "Readiness"), derived from the components' own states:
//
//   starting → connecting → migrating → ready ⇄ degraded
//                  │                                │
//                  └──── failed ◄───────┘ (setup gave up, or too many child crashes)
//                         any ── stop ──► stopping → stopped
//
//   failed   if setup failed or children crashed more than max_restarts per restart_window
//   ready    if setup and every engine (writer, and reader with read_url) are ready
//   degraded if setup finished but an engine is not ready (restarting)
//   else     setup's own state (starting / connecting / migrating)
//
// Transitions: every one happens in `recompute` [readiness_event, down handler, stop].
//
// Invariants:
// 1. Requests that arrive before `ready` are held (at most max_pending), and each is
//    answered exactly once: served when ready, `not_ready` at its deadline, the failure
//    when the database fails, `shutting_down` when it stops.
// 2. Every subscriber receives every change of the database state and of each
//    component, in order, and is dropped when it goes down.
// 3. The supervisor monitors its children; a crashed engine, setup or schema is
//    replaced (the engine's sessions learn the new engine, and setup runs again
//    against it) until the restart intensity is exceeded.
// 5. Schema requests (create_all, drop_all, reflect) are held until ready like any
//    other, then go to the schema actor with the current writer engine. Operations go
//    to the operations actor at once; its own requests are held like any client's.
// 4. After `stop`, no new work is accepted; idle sessions close, open transactions may
//    finish until shutdown_timeout and are rolled back after it; then the engine, setup,
//    schema and operations are told to exit, and the database quits.
// 6. Every session with an idle timeout gets a tick at least every eighth of it (the
//    sweep), and at most one sweep timer is pending for the shortest of them: timers
//    never outnumber a handful, whatever the number of sessions or requests.
#include "actors/database.hpp"

#include <deque>
#include <functional>
#include <map>
#include <optional>

#include <atomic>

#include <caf/all.hpp>

#include "actors/engine.hpp"
#include "actors/one_shot_reader.hpp"
#include "actors/operations.hpp"
#include "actors/schema.hpp"
#include "actors/session.hpp"
#include "actors/setup.hpp"
#include "cafdb/error.hpp"
#include "log.hpp"
#include "pool/in_place_shelf.hpp"
#include "session/read_classifier.hpp"
#include "session/read_router.hpp"
#include "timeouts.hpp"

namespace cafdb {

namespace {

/// PostgreSQL's one-shot readers are threads, one per pooled connection: no more than
/// this many, however large the pool (a request that finds none free takes a session).
constexpr size_t max_in_place_threads = 32;

struct held_request {
  uint64_t id;
  /// Serves the request: called once the database is ready.
  std::function<void()> serve;
  /// Answers the request with an error instead.
  std::function<void(caf::error)> fail;
};

struct open_session {
  session_actor actor;
  /// The engine it uses.
  engine_role role = engine_role::writer;
  /// Its idle timeout; zero for one-shot sessions, which close after one request.
  caf::timespan idle{0};
};

struct database_state {
  static inline const char* name = "cafdb.database";
  std::shared_ptr<const config> cfg;
  engine_factory factory;
  /// The writer, and the reader when read_url is set.
  std::map<engine_role, engine_actor> engines;
  setup_actor setup;
  schema_actor schema;
  operations_actor operations;
  std::map<std::string, readiness_event> components;
  readiness_state state = readiness_state::starting;
  std::string failure; // why the database is failed (restart intensity)
  std::vector<caf::actor> subscribers;
  std::deque<held_request> held;
  std::vector<std::pair<uint64_t, caf::typed_response_promise<readiness_snapshot>>> awaiting;
  /// Open sessions and the role of the engine each one uses.
  std::vector<open_session> sessions;
  /// When the next idle sweep is due (invariant 6); `armed` while a tick is on its way.
  caf::timestamp sweep_due;
  bool sweep_armed = false;
  /// The SQLite reader pool's in-place shelf, where read-only sessions borrow
  /// connections to read in place (read_in_place), else null. The database keeps it
  /// across engine restarts; each writer engine fills it anew.
  std::shared_ptr<pool::in_place_shelf> shelf;
  /// Whether one-shot requests are served now (ready, not stopping): the blocking
  /// clients that read in place on their own threads (in_place_atom) look here first.
  std::shared_ptr<std::atomic<bool>> serving = std::make_shared<std::atomic<bool>>(false);
  /// One-shot readers (actors/one_shot_reader.cpp), with SQLite's reader shelf: a
  /// one-shot `exec` goes to a free one instead of a session of its own. `busy` is set
  /// here when one is handed a request, and cleared by the reader.
  struct one_shot_reader_entry {
    one_shot_reader_actor actor;
    std::shared_ptr<std::atomic<bool>> busy;
  };
  std::vector<one_shot_reader_entry> readers;
  size_t next_reader = 0;
  /// The readers run requests in place (SQLite's reader shelf, on scheduler threads;
  /// PostgreSQL's shared shelf, on threads of their own), blocking their thread: each
  /// takes a request only when free. Otherwise they never block and take any in turn.
  bool readers_block = false;
  /// With SQLite's reader shelf: which read-write statements only read (sessions ask
  /// when no reader connection is free on the shelf).
  std::shared_ptr<read_router::read_classifier> classifier;
  /// Engine reads the readers still wait for: the stop waits for them too.
  std::shared_ptr<std::atomic<size_t>> reader_reads = std::make_shared<std::atomic<size_t>>(0);
  std::deque<caf::timestamp> restart_times;
  int32_t restarts = 0;
  uint64_t next_id = 1;
  bool stopping = false;
  std::vector<caf::typed_response_promise<caf::ok_atom>> stop_promises;
  std::shared_ptr<spdlog::logger> log;

  // Runs on every exit path (CAF 0.17 destroys the state before attach_functor
  // cleanups run): keeps (1) and (4) when the database goes down for any reason.
  ~database_state() {
    auto err = make_error(errc::shutting_down, "the database is stopping and takes no new work");
    for (auto& req : held)
      req.fail(err);
    for (auto& entry : awaiting)
      entry.second.deliver(err);
    for (auto& session : sessions)
      caf::anon_send(session.actor, shutdown_atom::value, true);
    if (shelf)
      shelf->cancel_for_shutdown();
    // The one-shot readers are not told to exit: one may be waiting for the answer to
    // a request it handed back (a session answers it, shutting_down at the latest), and
    // quitting would lose it. Released here, each ends once nothing refers to it.
    for (auto& entry : engines)
      caf::anon_send_exit(entry.second, caf::exit_reason::user_shutdown);
    if (setup)
      caf::anon_send_exit(setup, caf::exit_reason::user_shutdown);
    if (operations)
      caf::anon_send_exit(operations, caf::exit_reason::user_shutdown);
    for (auto& rp : stop_promises)
      rp.deliver(caf::ok_atom::value);
  }
};

using database_pointer = database_actor::stateful_pointer<database_state>;

readiness_snapshot snapshot(const database_state& st) {
  readiness_snapshot out;
  out.state = st.state;
  auto self_event = readiness_event{"database", st.state, st.failure, 0, caf::make_timestamp()};
  if (auto i = st.components.find("setup"); i != st.components.end() && st.failure.empty())
    self_event.detail = i->second.detail;
  out.components.push_back(std::move(self_event));
  for (auto& entry : st.components)
    out.components.push_back(entry.second);
  return out;
}

caf::error failure_error(const database_state& st) {
  auto detail = st.failure;
  if (detail.empty())
    if (auto i = st.components.find("setup"); i != st.components.end())
      detail = i->second.detail;
  return make_error(errc::connect_failed, "the database failed to start: " + detail);
}

caf::error stopping_error() {
  return make_error(errc::shutting_down, "the database is stopping and takes no new work");
}

void broadcast(database_pointer self, const readiness_event& ev) {
  for (auto& sub : self->state.subscribers)
    self->anon_send(sub, ev);
}

readiness_state derive(const database_state& st) {
  if (st.stopping)
    return st.state == readiness_state::stopped ? readiness_state::stopped
                                                : readiness_state::stopping;
  if (!st.failure.empty())
    return readiness_state::failed;
  auto state_of = [&](const char* component) {
    auto i = st.components.find(component);
    return i == st.components.end() ? readiness_state::starting : i->second.state;
  };
  auto setup = state_of("setup");
  if (setup == readiness_state::failed)
    return readiness_state::failed;
  if (setup != readiness_state::ready)
    return setup;
  for (auto& entry : st.engines)
    if (state_of(("engine:" + to_string(entry.first)).c_str()) != readiness_state::ready)
      return readiness_state::degraded;
  return readiness_state::ready;
}

// Sessions have no idle timer of their own (a timer holds its actor until it fires):
// the database ticks each one every eighth of its idle timeout (invariant 6).
caf::timespan sweep_period(caf::timespan idle) {
  return std::max(caf::timespan{idle / 8}, caf::timespan{std::chrono::milliseconds(1)});
}

// Makes sure a sweep comes within `sweep_period(idle)`: one tick is on its way at a
// time, unless a session with a shorter idle timeout needs an earlier one.
void arm_sweep(database_pointer self, caf::timespan idle) {
  auto& st = self->state;
  auto due = caf::make_timestamp() + sweep_period(idle);
  if (st.sweep_armed && st.sweep_due <= due)
    return;
  st.sweep_due = due;
  st.sweep_armed = true;
  self->delayed_send(self, due - caf::make_timestamp(), tick_atom::value);
}

void sweep_sessions(database_pointer self) {
  auto& st = self->state;
  auto now = caf::make_timestamp();
  if (!st.sweep_armed || now < st.sweep_due)
    return; // a tick that an earlier sweep replaced
  st.sweep_armed = false;
  auto shortest = caf::timespan::max();
  for (auto& session : st.sessions)
    if (session.idle.count() > 0) {
      self->send(session.actor, tick_atom::value);
      shortest = std::min(shortest, session.idle);
    }
  if (shortest != caf::timespan::max())
    arm_sweep(self, shortest);
}

// Spawns a session for `client` and hands it to `then`. A one-shot request (exec,
// transact, exec_many) is delegated to its throwaway session, which answers the client
// itself: the database keeps nothing of it, no handler and no timer, and the session's
// own deadlines bound every step.
void spawn_session_for(database_pointer self, caf::strong_actor_ptr client, session_options options,
                       bool one_shot, std::function<void(session_actor)> then) {
  auto& st = self->state;
  // Read-only sessions use the reader engine when there is one.
  auto role = options.read_only && st.engines.count(engine_role::reader) ? engine_role::reader
                                                                         : engine_role::writer;
  // The writer's shelf: a read-only session with a reader engine (read_url) has none.
  auto shelf = role == engine_role::writer ? st.shelf : nullptr;
  auto session =
      spawn_session(self->system(), st.engines[role], std::move(client), std::move(options), st.cfg,
                    one_shot, std::move(shelf), st.classifier);
  self->monitor(session);
  auto idle = one_shot ? caf::timespan{0} : idle_timeout_of(options, *st.cfg);
  st.sessions.push_back(open_session{session, role, idle});
  if (idle.count() > 0)
    arm_sweep(self, idle);
  then(session);
}

// Serves now if ready, fails now if failed or stopping, else holds the request.
void serve_or_hold(database_pointer self, caf::timespan wait, std::function<void()> serve,
                   std::function<void(caf::error)> fail) {
  auto& st = self->state;
  if (st.stopping)
    return fail(stopping_error());
  if (st.state == readiness_state::ready)
    return serve();
  if (st.state == readiness_state::failed)
    return fail(failure_error(st));
  if (st.state == readiness_state::degraded)
    return fail(
        make_error(errc::unavailable, "the engine is reconnecting; retry shortly (see status)"));
  if (static_cast<int>(st.held.size()) >= st.cfg->max_pending)
    return fail(make_error(errc::pool_overloaded,
                           "too many requests are waiting for the database to become ready "
                           "(max_pending = " +
                               std::to_string(st.cfg->max_pending) + "); retry later"));
  auto id = st.next_id++;
  st.held.push_back(held_request{id, std::move(serve), std::move(fail)});
  wait = wait.count() <= 0 ? caf::timespan{st.cfg->setup_timeout} : bounded(wait);
  self->delayed_send(self, wait, expire_atom::value, id);
}

// A one-shot request (exec, transact, exec_many): once the database is ready, a
// throwaway session answers it (spawn_session_for delegates the request).
template <class Result, class Atom, class Request>
caf::result<Result> one_shot(database_pointer self, Atom atom, Request request,
                             session_options options) {
  // Before make_response_promise, which moves the sender out of the message.
  auto client = self->current_sender();
  auto rp = self->make_response_promise<Result>();
  // Shared, not copied: a transact or exec_many may hold thousands of statements.
  auto shared = std::make_shared<Request>(std::move(request));
  auto wait = options.wait_timeout;
  serve_or_hold(
      self, wait,
      [=]() mutable {
        spawn_session_for(self, client, options, true, [=](session_actor s) mutable {
          rp.delegate(s, atom, std::move(*shared));
        });
      },
      [=](caf::error err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

// A one-shot reader for a one-shot `exec`; none while not ready (the request is held or
// refused as any other), when the request comes back from a reader (it could run there
// neither in place nor as an engine read), and for what only a session can serve. A
// reader that reads in place must be free (then marked busy); the others never block
// and take requests in turn, read-only ones only (nothing else goes the engine's way).
std::optional<one_shot_reader_actor> take_one_shot_reader(database_pointer self,
                                                          const session_options& options) {
  auto& st = self->state;
  if (st.readers.empty() || st.stopping || st.state != readiness_state::ready)
    return std::nullopt;
  if (!st.readers_block && !options.read_only)
    return std::nullopt;
  auto& sender = self->current_sender();
  for (auto& reader : st.readers)
    if (sender && sender->id() == reader.actor->id())
      return std::nullopt;
  for (size_t i = 0; i < st.readers.size(); ++i) {
    auto& reader = st.readers[(st.next_reader + i) % st.readers.size()];
    if (!st.readers_block || !reader.busy->load(std::memory_order_acquire)) {
      reader.busy->store(true, std::memory_order_relaxed);
      st.next_reader = (st.next_reader + i + 1) % st.readers.size();
      return reader.actor;
    }
  }
  return std::nullopt;
}

// The engine a one-shot request of these options uses (as its session would).
engine_actor engine_for(const database_state& st, const session_options& options) {
  auto role = options.read_only && st.engines.count(engine_role::reader) ? engine_role::reader
                                                                         : engine_role::writer;
  auto found = st.engines.find(role);
  return found == st.engines.end() ? engine_actor{} : found->second;
}

void finish_stop(database_pointer self);
void finish_stop_when_drained(database_pointer self);

void recompute(database_pointer self) {
  auto& st = self->state;
  auto next = derive(st);
  if (next == st.state)
    return;
  st.state = next;
  st.serving->store(next == readiness_state::ready && !st.stopping);
  st.log->info("database is {}", to_string(next));
  auto snap = snapshot(st);
  broadcast(self, snap.components.front());
  if (next == readiness_state::ready) {
    for (auto& [id, rp] : st.awaiting)
      rp.deliver(snap);
    st.awaiting.clear();
    auto held = std::move(st.held);
    st.held.clear();
    for (auto& req : held)
      req.serve();
  } else if (next == readiness_state::failed) {
    auto err = failure_error(st);
    st.log->error("{}", describe(err).message);
    for (auto& [id, rp] : st.awaiting)
      rp.deliver(err);
    st.awaiting.clear();
    auto held = std::move(st.held);
    st.held.clear();
    for (auto& req : held)
      req.fail(err);
  }
}

void publish_component(database_pointer self, readiness_event ev) {
  auto& st = self->state;
  auto& slot = st.components[ev.component];
  if (slot.state == ev.state && slot.detail == ev.detail && !slot.component.empty())
    return;
  if (slot.state == ev.state && !slot.component.empty())
    ev.since = slot.since; // same state, new detail: keep when it was entered
  slot = ev;
  broadcast(self, ev);
  recompute(self);
}

// Restart intensity: at most max_restarts within restart_window.
bool may_restart(database_pointer self) {
  auto& st = self->state;
  auto now = caf::make_timestamp();
  st.restart_times.push_back(now);
  while (!st.restart_times.empty() &&
         now - st.restart_times.front() > caf::timespan{st.cfg->restart_window})
    st.restart_times.pop_front();
  return static_cast<int>(st.restart_times.size()) <= st.cfg->max_restarts;
}

std::vector<engine_actor> engine_list(const database_state& st) {
  std::vector<engine_actor> out{st.engines.at(engine_role::writer)};
  if (auto i = st.engines.find(engine_role::reader); i != st.engines.end())
    out.push_back(i->second);
  return out;
}

engine_actor start_engine(database_pointer self, engine_role role) {
  auto& st = self->state;
  auto engine = spawn_engine(self->system(), role, st.cfg, st.factory(role), self,
                             role == engine_role::writer ? st.shelf : nullptr);
  self->monitor(engine);
  st.engines[role] = engine;
  return engine;
}

// (Re)starts setup against the current engines; a replaced setup is no crash.
void start_setup(database_pointer self) {
  auto& st = self->state;
  if (st.setup) {
    self->demonitor(st.setup.address());
    self->send_exit(st.setup, caf::exit_reason::user_shutdown);
  }
  st.setup = spawn_setup(self->system(), engine_list(st), st.schema, self, st.cfg);
  self->monitor(st.setup);
}

void start_children(database_pointer self) {
  auto& st = self->state;
  std::vector<engine_role> roles{engine_role::writer};
  if (!st.cfg->read_url.empty())
    roles.push_back(engine_role::reader);
  // Known from the start, so that even the earliest subscriber sees every component.
  st.components["setup"] =
      readiness_event{"setup", readiness_state::starting, "starting", 0, caf::make_timestamp()};
  if (st.cfg->has_schema_work())
    st.components["schema"] =
        readiness_event{"schema", readiness_state::starting, "starting", 0, caf::make_timestamp()};
  st.schema = spawn_schema(self->system(), self, st.cfg);
  self->monitor(st.schema);
  st.operations = spawn_operations(self->system(), self, st.cfg);
  self->monitor(st.operations);
  for (auto role : roles) {
    auto component = "engine:" + to_string(role);
    st.components[component] =
        readiness_event{component, readiness_state::starting, "starting", 0, caf::make_timestamp()};
    start_engine(self, role);
  }
  start_setup(self);
}

void on_child_down(database_pointer self, caf::down_msg& dm) {
  auto& st = self->state;
  std::optional<engine_role> role;
  for (auto& entry : st.engines)
    if (entry.second.address() == dm.source)
      role = entry.first;
  bool schema = dm.source == st.schema.address();
  bool operations = dm.source == st.operations.address();
  if (st.stopping) {
    if (role)
      st.engines.erase(*role);
    else if (schema)
      st.schema = nullptr;
    else if (operations)
      st.operations = nullptr;
    else
      st.setup = nullptr;
    return;
  }
  auto what = role         ? "engine " + to_string(*role)
              : schema     ? std::string{"schema"}
              : operations ? std::string{"operations"}
                           : "setup";
  st.log->error("{} went down: {}", what, to_string(dm.reason));
  if (!may_restart(self)) {
    st.failure = what + " crashed more than max_restarts (" + std::to_string(st.cfg->max_restarts) +
                 ") times within restart_window; last " + "reason: " + to_string(dm.reason);
    recompute(self);
    return;
  }
  st.restarts += 1;
  if (operations) {
    // Stateless but for its copy of the schema: a new one reflects again.
    st.operations = spawn_operations(self->system(), self, st.cfg);
    self->monitor(st.operations);
    return;
  }
  if (schema) {
    // Setup may be waiting on the old one: run start-up again with the new one.
    st.schema = spawn_schema(self->system(), self, st.cfg);
    self->monitor(st.schema);
    start_setup(self);
    return;
  }
  if (!role) {
    st.setup = nullptr;
    start_setup(self);
    return;
  }
  auto engine = start_engine(self, *role);
  for (auto& session : st.sessions)
    if (session.role == *role)
      self->send(session.actor, engine_atom::value, engine);
  publish_component(self, readiness_event{"engine:" + to_string(*role), readiness_state::connecting,
                                          "restarted after: " + to_string(dm.reason), 0,
                                          caf::make_timestamp()});
  start_setup(self);
}

// The stop ends once no session is open and no blocking caller holds a connection of
// the in-place shelf: a call in place is a request like a session's, which may finish
// until shutdown_timeout (then drain_over cancels it). Calls in place tell no one when
// they end: while only they are left, the database looks again every few milliseconds.
void finish_stop_when_drained(database_pointer self) {
  auto& st = self->state;
  if (!st.stopping || st.state == readiness_state::stopped || !st.sessions.empty())
    return;
  if ((st.shelf && st.shelf->lent() > 0) || st.reader_reads->load(std::memory_order_acquire) > 0) {
    self->delayed_send(self, std::chrono::milliseconds(5), tick_atom::value);
    return;
  }
  finish_stop(self);
}

void finish_stop(database_pointer self) {
  auto& st = self->state;
  if (st.state == readiness_state::stopped)
    return;
  for (auto& entry : st.engines)
    self->send_exit(entry.second, caf::exit_reason::user_shutdown);
  st.engines.clear();
  if (st.setup)
    self->send_exit(st.setup, caf::exit_reason::user_shutdown);
  if (st.schema)
    self->send_exit(st.schema, caf::exit_reason::user_shutdown);
  if (st.operations)
    self->send_exit(st.operations, caf::exit_reason::user_shutdown);
  st.state = readiness_state::stopped;
  st.serving->store(false);
  broadcast(self, snapshot(st).components.front());
  for (auto& rp : st.stop_promises)
    rp.deliver(caf::ok_atom::value);
  st.stop_promises.clear();
  self->quit();
}

// Collects the pool statistics of every engine, then completes the report.
void collect_stats(database_pointer self, std::vector<engine_actor> pending, status_report report,
                   caf::typed_response_promise<status_report> rp) {
  if (pending.empty()) {
    rp.deliver(std::move(report));
    return;
  }
  auto engine = pending.back();
  pending.pop_back();
  self->request(engine, std::chrono::seconds(5), stats_atom::value)
      .then(
          [=](std::vector<pool_stats>& pools) mutable {
            report.pools.insert(report.pools.begin(), pools.begin(), pools.end());
            collect_stats(self, std::move(pending), std::move(report), rp);
          },
          [=](caf::error&) mutable {
            collect_stats(self, std::move(pending), std::move(report), rp);
          });
}

// Serves a schema request once ready, on the current writer engine.
template <class Result, class Request>
caf::typed_response_promise<Result> schema_request(database_pointer self, Request request) {
  auto rp = self->make_response_promise<Result>();
  serve_or_hold(
      self, caf::timespan{0},
      [=]() mutable {
        auto& st = self->state;
        // DDL may wait for a connection and then for every statement.
        auto timeout = caf::timespan{st.cfg->pool_timeout} +
                       caf::timespan{st.cfg->statement_timeout} + std::chrono::seconds(1);
        request(st.schema, st.engines.at(engine_role::writer), timeout)
            .then(
                [=](Result& out) mutable {
                  // ok_atom answers DDL: the operations actor's copy of the schema is stale.
                  if constexpr (std::is_same_v<Result, caf::ok_atom>)
                    self->send(self->state.operations, caf::reset_atom::value);
                  rp.deliver(std::move(out));
                },
                [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      },
      [=](caf::error err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

// create_all or drop_all of `schema`.
template <class Atom>
caf::typed_response_promise<caf::ok_atom> run_ddl(database_pointer self, Atom atom,
                                                  schema_def schema) {
  return schema_request<caf::ok_atom>(self, [=](auto target, auto engine, auto timeout) {
    return self->request(target, timeout, atom, schema, engine);
  });
}

// create_all or drop_all of the declared schema.
template <class Atom>
caf::result<caf::ok_atom> declared_ddl(database_pointer self, Atom atom) {
  if (self->state.cfg->schema.empty())
    return make_error(errc::invalid_argument,
                      "no schema is declared: set schema_file (or config::schema), or pass the "
                      "tables with the request");
  return run_ddl(self, atom, self->state.cfg->schema);
}

database_actor::behavior_type database_behavior(database_pointer self,
                                                std::shared_ptr<const config> cfg,
                                                engine_factory factory) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.factory = std::move(factory);
  // Reads in place borrow connections from the reader pool's shelf; the read router
  // sizes it (src/session/read_router.hpp).
  auto reads = read_router::plan(*st.cfg, self->system().scheduler().num_workers());
  if (reads.shelf > 0)
    st.shelf = std::make_shared<pool::in_place_shelf>(
        reads.shelf, reads.scheduler_borrowers,
        reads.shared_pool ? pool::in_place_shelf::pool_kind::shared
                          : pool::in_place_shelf::pool_kind::readers);
  // One-shot requests run on readers that live as long as the database. SQLite's reader
  // shelf lends to scheduler threads: one reader per thread it may block. PostgreSQL's
  // shared shelf lends to threads of their own: one reader (a thread) per connection
  // of the pool, each running any autocommit statement as a blocking client does.
  // Elsewhere (a read replica) the readers only pass reads to the engine: two suffice
  // to keep up, one per thread.
  st.readers_block = static_cast<bool>(st.shelf);
  if (st.shelf && st.shelf->kind() == pool::in_place_shelf::pool_kind::readers)
    st.classifier = std::make_shared<read_router::read_classifier>(
        [make = st.factory(engine_role::writer)] { return make(connection_role::reader); });
  auto reader_count = !st.shelf ? std::min<size_t>(2, self->system().scheduler().num_workers())
                      : st.shelf->kind() == pool::in_place_shelf::pool_kind::readers
                          ? st.shelf->scheduler_limit()
                          : std::min<size_t>(static_cast<size_t>(std::max(st.cfg->pool_size, 1)),
                                             max_in_place_threads);
  for (size_t i = 0; i < reader_count; ++i) {
    auto busy = std::make_shared<std::atomic<bool>>(false);
    auto reader = spawn_one_shot_reader(self->system(), caf::actor_cast<caf::actor_addr>(self),
                                        st.shelf, st.cfg, busy, st.reader_reads);
    st.readers.push_back({std::move(reader), std::move(busy)});
  }
  st.log = log::get("database");
  st.log->info("starting database {}", st.cfg->redacted_url());
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    bool child = dm.source == st.setup.address() || dm.source == st.schema.address() ||
                 dm.source == st.operations.address();
    for (auto& entry : st.engines)
      child = child || dm.source == entry.second.address();
    if (child) {
      on_child_down(self, dm);
      return;
    }
    auto is_source = [&](const auto& handle) { return handle.address() == dm.source; };
    st.sessions.erase(std::remove_if(st.sessions.begin(), st.sessions.end(),
                                     [&](const auto& entry) { return is_source(entry.actor); }),
                      st.sessions.end());
    st.subscribers.erase(std::remove_if(st.subscribers.begin(), st.subscribers.end(), is_source),
                         st.subscribers.end());
    finish_stop_when_drained(self);
  });
  start_children(self);
  return {
      [=](caf::open_atom, session_options& options) -> caf::result<session_actor> {
        // Before make_response_promise, which moves the sender out of the message.
        auto client = self->current_sender();
        auto rp = self->make_response_promise<session_actor>();
        serve_or_hold(
            self, options.wait_timeout,
            [=]() mutable {
              spawn_session_for(self, client, options, false,
                                [=](session_actor session) mutable { rp.deliver(session); });
            },
            [=](caf::error err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [=](exec_atom atom, statement& stmt, session_options& options) -> caf::result<result_set> {
        if (auto reader = take_one_shot_reader(self, options)) {
          auto engine = engine_for(self->state, options);
          return self->delegate(*reader, atom, std::move(stmt), std::move(options),
                                std::move(engine));
        }
        return one_shot<result_set>(self, atom, std::move(stmt), std::move(options));
      },
      [=](transact_atom atom, std::vector<statement>& stmts,
          session_options& options) -> caf::result<std::vector<result_set>> {
        return one_shot<std::vector<result_set>>(self, atom, std::move(stmts), std::move(options));
      },
      [=](exec_many_atom atom, bulk_statement& bulk,
          session_options& options) -> caf::result<result_set> {
        return one_shot<result_set>(self, atom, std::move(bulk), std::move(options));
      },
      [=](create_all_atom atom) -> caf::result<caf::ok_atom> { return declared_ddl(self, atom); },
      [=](create_all_atom atom, schema_def& schema) -> caf::result<caf::ok_atom> {
        return run_ddl(self, atom, std::move(schema));
      },
      [=](drop_all_atom atom) -> caf::result<caf::ok_atom> { return declared_ddl(self, atom); },
      [=](drop_all_atom atom, schema_def& schema) -> caf::result<caf::ok_atom> {
        return run_ddl(self, atom, std::move(schema));
      },
      [=](reflect_atom) -> caf::result<schema_def> {
        return schema_request<schema_def>(self, [=](auto target, auto engine, auto timeout) {
          return self->request(target, timeout, reflect_atom::value, engine);
        });
      },
      [=](op_atom atom, operation& op) -> caf::result<std::string> {
        auto& st = self->state;
        if (st.stopping || !st.operations)
          return stopping_error();
        return self->delegate(st.operations, atom, std::move(op));
      },
      [=](caf::subscribe_atom, caf::actor& subscriber) -> caf::result<readiness_snapshot> {
        auto& st = self->state;
        if (!subscriber)
          return make_error(errc::invalid_argument, "subscribe needs a live actor handle");
        // Subscribing twice is one subscription: each event arrives once.
        if (std::find(st.subscribers.begin(), st.subscribers.end(), subscriber) ==
            st.subscribers.end()) {
          self->monitor(subscriber);
          st.subscribers.push_back(subscriber);
        }
        return snapshot(st);
      },
      [=](await_atom, caf::timespan wait) -> caf::result<readiness_snapshot> {
        auto& st = self->state;
        if (st.state == readiness_state::ready)
          return snapshot(st);
        if (st.state == readiness_state::failed)
          return failure_error(st);
        if (st.stopping)
          return stopping_error();
        auto rp = self->make_response_promise<readiness_snapshot>();
        auto id = st.next_id++;
        st.awaiting.emplace_back(id, rp);
        self->delayed_send(self, wait, expire_atom::value, id);
        return rp;
      },
      [=](in_place_atom) -> in_place_access {
        // The shelf outlives engine restarts (each writer engine fills it anew) and is
        // stopped with the database: a client holding it borrows nothing after that.
        return in_place_access{self->state.shelf, self->state.cfg, self->state.serving, nullptr};
      },
      [=](status_atom) -> caf::result<status_report> {
        auto& st = self->state;
        auto rp = self->make_response_promise<status_report>();
        auto report = status_report{};
        auto snap = snapshot(st);
        report.state = snap.state;
        report.components = std::move(snap.components);
        report.url = st.cfg->redacted_url();
        report.sessions = static_cast<int32_t>(st.sessions.size());
        report.pending = static_cast<int32_t>(st.held.size());
        report.restarts = st.restarts;
        report.subscribers = static_cast<int32_t>(st.subscribers.size());
        if (st.shelf)
          report.reads_in_place = static_cast<int64_t>(st.shelf->loans());
        collect_stats(self, st.stopping ? std::vector<engine_actor>{} : engine_list(st),
                      std::move(report), rp);
        return rp;
      },
      [=](caf::get_atom, engine_atom) -> caf::result<engine_actor> {
        auto& engines = self->state.engines;
        if (!engines.count(engine_role::writer))
          return make_error(errc::shutting_down, "the engine has stopped");
        return engines.at(engine_role::writer);
      },
      [=](stop_atom) -> caf::result<caf::ok_atom> {
        auto& st = self->state;
        auto rp = self->make_response_promise<caf::ok_atom>();
        st.stop_promises.push_back(rp);
        if (st.stopping)
          return rp;
        st.stopping = true;
        st.serving->store(false);
        st.log->info("stopping: {} open session(s)", st.sessions.size());
        recompute(self);
        auto held = std::move(st.held);
        st.held.clear();
        for (auto& req : held)
          req.fail(stopping_error());
        for (auto& [id, promise] : st.awaiting)
          promise.deliver(stopping_error());
        st.awaiting.clear();
        // Open transactions and calls in place may finish until shutdown_timeout; idle
        // sessions close now.
        for (auto& session : st.sessions)
          self->send(session.actor, shutdown_atom::value, false);
        self->delayed_send(self, st.cfg->shutdown_timeout, drain_over_atom::value);
        finish_stop_when_drained(self);
        return rp;
      },
      [=](readiness_event& ev) { publish_component(self, std::move(ev)); },
      [=](tick_atom) {
        sweep_sessions(self);
        finish_stop_when_drained(self);
      },
      [=](drain_over_atom) {
        // shutdown_timeout passed while stopping.
        auto& st = self->state;
        if (!st.stopping)
          return;
        // Transactions still open are rolled back; a session that cannot even do that
        // in time (its connection is stuck) is abandoned to the engine's exit.
        for (auto& session : st.sessions)
          self->send(session.actor, shutdown_atom::value, true);
        // Sessions busy in a statement hear of it only when it ends: cancel those,
        // and the reads sessions run in place on borrowed connections.
        for (auto& entry : st.engines)
          self->send(entry.second, shutdown_atom::value);
        if (st.shelf)
          st.shelf->cancel_for_shutdown();
        self->delayed_send(self, caf::timespan{st.cfg->connect_timeout}, stop_now_atom::value);
      },
      [=](stop_now_atom) {
        // Cancelled statements had connect_timeout to answer: the stop ends regardless.
        if (self->state.stopping)
          finish_stop(self);
      },
      [=](expire_atom, uint64_t id) {
        // A held request's or an await's wait passed.
        auto& st = self->state;
        auto reason = [&] {
          auto snap = snapshot(st);
          return "the database is still " + to_string(st.state) +
                 (snap.components.front().detail.empty()
                      ? std::string{}
                      : " (" + snap.components.front().detail + ")");
        };
        for (auto i = st.held.begin(); i != st.held.end(); ++i)
          if (i->id == id) {
            auto req = std::move(*i);
            st.held.erase(i);
            req.fail(make_error(errc::not_ready, "not ready in time: " + reason() +
                                                     "; retry, or wait longer with await_ready"));
            return;
          }
        for (auto i = st.awaiting.begin(); i != st.awaiting.end(); ++i)
          if (i->first == id) {
            auto rp = i->second;
            st.awaiting.erase(i);
            rp.deliver(make_error(errc::not_ready, "not ready in time: " + reason()));
            return;
          }
      },
  };
}

} // namespace

database_actor spawn_database(caf::actor_system& sys, std::shared_ptr<const config> cfg,
                              engine_factory factory) {
  log::configure(*cfg);
  return sys.spawn(database_behavior, std::move(cfg), std::move(factory));
}

std::string to_string(readiness_state x) {
  switch (x) {
  case readiness_state::starting:
    return "starting";
  case readiness_state::connecting:
    return "connecting";
  case readiness_state::migrating:
    return "migrating";
  case readiness_state::ready:
    return "ready";
  case readiness_state::degraded:
    return "degraded";
  case readiness_state::failed:
    return "failed";
  case readiness_state::stopping:
    return "stopping";
  default:
    return "stopped";
  }
}

} // namespace cafdb
