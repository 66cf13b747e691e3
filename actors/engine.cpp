// The engine actor: owns the pools of connection actors of one engine role.
//
// Pools: SQLite file databases get a `writer` pool (exactly one connection: SQLite
// allows one writer at a time, and queueing writers here is fairer and faster than
// SQLite's sleeping busy handler) and a `reader` pool (pool_size + max_overflow
// read-only connections). `:memory:` gets one `shared` connection, since every
// connection would otherwise see its own empty database.
//
// Each pool's state and every decision about it (which connection serves whom, when to
// open, retire, discard or close one, which leases leak) is a pool_model
// (src/pool/pool_model.hpp, with its slot state machine and invariants). This actor
// carries the decisions out: it spawns, pings, resets, cancels and closes connection
// actors, sends the reads, and answers the waiters. The engine's health (up, or down
// and reconnecting with backoff) is an engine_health (src/pool/health.hpp):
//
//            open fails (server unreachable)          reconnect ok
//   up ─────────────────────────────────────► down ─────────────────► up
//                                              │ ▲ reconnect fails: backoff x2 (max 2 s), jitter
//                                              └─┘
//   up:   publishes engine:<role> ready; checkouts are served or queued.
//   down: publishes degraded with the server's error; idle connections are closed,
//         waiters and new checkouts get `unavailable` at once.
//
// Reading in place is the reader pool's other access mode (SQLite file databases): the
// model sends connections that come free to the in-place shelf up to its target, and
// sessions borrow them there without a message. The engine takes a shelved connection
// back when a checkout finds no idle one (before opening another), when queued work
// finds no other and the pool is at max, when it passes
// pool_recycle or its actor dies, and when the engine loses its server; a borrower that
// gives back a recalled or unusable connection tells the engine (shelf_atom).
//
// Autocommit reads (read_atom) take no lease: the engine runs them itself. A read that
// finds an idle connection goes out at once; reads that find none queue, and the next
// connection to come free takes up to max_read_batch of them in one message (one
// pipeline on PostgreSQL), so that under load many sessions share a round trip.
// The engine watches the running batches' deadlines itself (cancel_overdue_reads, one
// timer for all), so that no read costs a timer of its own.
//
// Invariants (the pool's own are the model's):
// 1. Every connection actor spawned is a member until its slot leaves the model; a
//    member is closed (exit) when its slot leaves, except while leased (invariant 4).
// 2. Every lease belongs to a holder the engine monitors; when it goes down, its
//    leases are reset and come back (or are discarded), its queued checkouts are dropped.
// 3. Every waiter is answered exactly once: a lease (or a read's outcome), pool_timeout
//    at its deadline, unavailable when the server is lost, or shutting_down when the
//    engine quits. A waiter whose holder went down is dropped unanswered. A running
//    read is answered by its connection, by statement_timeout at its deadline, or by
//    shutting_down when the engine quits (sessions wait for reads without a timer).
// 4. A leased connection is never closed by the engine: recycling, reaping and lease
//    reclaiming act on idle connections or on a connection once it is checked in.
// 5. A connection actor that dies is never handed out again (the model discards its
//    slot when it next comes back).
#include "actors/engine.hpp"

#include <algorithm>
#include <optional>
#include <random>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/connection.hpp"
#include "backend/pg_driver.hpp"
#include "backend/sqlite_driver.hpp"
#include "cafdb/error.hpp"
#include "log.hpp"
#include "pool/health.hpp"
#include "pool/housekeeping.hpp"
#include "pool/in_place_shelf.hpp"
#include "pool/pool_model.hpp"
#include "session/read_router.hpp"

namespace cafdb {

namespace {

/// What a queued checkout carries besides what the model needs.
struct checkout_wait {
  caf::typed_response_promise<lease> promise;
};

/// What a queued read carries besides what the model needs.
struct read_wait {
  caf::typed_response_promise<result_set> promise;
  statement stmt;
};

using pool_model = pool::pool_model<checkout_wait, read_wait>;
using slot_id = pool::slot_id;

struct engine_pool {
  pool_model model;
  connection_role role;
  /// The expiry check of the queued reads scheduled soonest; max() when none is.
  caf::timestamp reads_check = caf::timestamp::max();
};

// A connection actor and its driver: the engine keeps the driver to cancel a
// statement from outside the connection's thread (driver::cancel).
struct member {
  connection_actor connection;
  std::shared_ptr<driver> drv;
  size_t pool_index = 0;
  connection_thread thread;
};

enum class open_purpose {
  /// The pool wants another connection (min_idle, waiters).
  fill,
  /// Setup's connectivity check: the first connection of the main pool.
  first,
  /// The server was lost: a probe for it.
  reconnect,
};

struct engine_state {
  static inline const char* name = "cafdb.engine";
  engine_role role = engine_role::writer;
  std::shared_ptr<const config> cfg;
  driver_factory factory;
  database_actor db;
  std::vector<engine_pool> pools;
  /// Every connection spawned whose slot has not left its pool yet, by slot.
  std::unordered_map<slot_id, member> members;
  /// The deadline check of the running batches scheduled soonest; max() when none is.
  caf::timestamp running_check = caf::timestamp::max();
  /// Holders (sessions, schema) the engine monitors, by actor id.
  std::unordered_map<pool::holder_id, caf::actor_addr> monitored;
  /// Slot, lease and waiter ids: one sequence, so that ids are unique across pools.
  uint64_t next_id = 1;
  pool::engine_health health;
  /// Housekeeping period; zero when no option needs it.
  caf::timespan tick{0};
  caf::timestamp last_stats_log;
  std::mt19937_64 random{std::random_device{}()};
  std::shared_ptr<spdlog::logger> log;
  /// The reader pool's in-place shelf and that pool's index (SQLite file databases with
  /// read_in_place), else null.
  std::shared_ptr<pool::in_place_shelf> shelf;
  size_t shelf_pool = 0;

  /// Refuses what waits and cancels what runs: every connection thread then ends
  /// within its driver's grace, whatever the server or the network does (cancel()
  /// never blocks). A connection busy in a statement would see its exit only when the
  /// statement ends.
  void cancel_everything(const std::string& why) {
    refuse_waiting(why);
    for (auto& [slot, m] : members)
      if (m.drv)
        m.drv->cancel_for_shutdown();
  }

  /// Answers every queued checkout and read with shutting_down.
  void refuse_waiting(const std::string& why) {
    for (auto& p : pools) {
      auto [checkouts, reads] = p.model.take_waiting();
      for (auto& w : checkouts)
        w.payload.promise.deliver(
            make_error(errc::shutting_down, why + " while this checkout was waiting"));
      for (auto& r : reads)
        r.payload.promise.deliver(
            make_error(errc::shutting_down, why + " while this read was waiting"));
    }
  }

  // Runs on every exit path (CAF 0.17 destroys the state before attach_functor
  // cleanups run): keeps (3) and takes every connection down with the engine.
  ~engine_state() {
    cancel_everything("the engine stopped");
    // Sessions wait for reads without a timer of their own (invariant 3 answers them).
    for (auto& p : pools)
      for (auto& batch : p.model.overdue_batches(pool::time_point::max()))
        for (auto& r : batch.reads)
          r.payload.promise.deliver(
              make_error(errc::shutting_down, "the engine stopped while this read was running"));
    for (auto& [slot, m] : members)
      caf::anon_send_exit(m.connection, caf::exit_reason::user_shutdown);
    // No session borrows a connection of this engine any more; lent ones close when
    // given back.
    if (shelf)
      shelf->attach(nullptr);
  }
};

using engine_pointer = engine_actor::stateful_pointer<engine_state>;

caf::timestamp now() {
  return caf::make_timestamp();
}

int64_t ms(caf::timespan span) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(span).count();
}

engine_pool make_pool(std::string name, connection_role role, int size, int max, int min_idle,
                      int shelf = 0) {
  return engine_pool{pool_model{pool::pool_limits{std::move(name), size, max, min_idle, shelf}},
                     role};
}

size_t pool_for(const engine_state& st, bool read_only) {
  return read_only && st.pools.size() > 1 ? 1 : 0;
}

int total_waiting(const engine_state& st) {
  int n = 0;
  for (auto& p : st.pools)
    n += p.model.waiting();
  return n;
}

std::optional<pool::duration> ping_after(const engine_state& st) {
  if (!st.cfg->pool_pre_ping)
    return std::nullopt;
  return pool::duration{st.cfg->pre_ping_after};
}

caf::error overloaded_error(const engine_state& st, const pool_model& m) {
  return make_error(errc::pool_overloaded, "too many requests are already waiting (max_pending = " +
                                               std::to_string(st.cfg->max_pending) + ", " +
                                               m.describe() +
                                               "); retry later or raise max_pending / pool_size");
}

caf::error unavailable_error(const engine_state& st) {
  return make_error(errc::unavailable, "the " + to_string(st.role) + " engine lost its server (" +
                                           st.health.reason() +
                                           "); cafdb reconnects in the background, retry shortly "
                                           "(see status)");
}

void publish(engine_pointer self, readiness_state state, std::string detail) {
  auto& st = self->state;
  self->send(st.db, readiness_event{"engine:" + to_string(st.role), state, std::move(detail),
                                    st.health.attempts(), caf::make_timestamp()});
}

const connection_actor& connection_of(engine_state& st, slot_id slot) {
  return st.members.at(slot).connection;
}

// SQLite readers run on the scheduler: a point read costs a few microseconds, a hop to
// a thread of their own and back costs more (docs/benchmarks.md). A long read holds a
// scheduler thread meanwhile, so at most half of those threads may be lent to readers;
// further readers, writers (they wait on the file lock) and PostgreSQL connections
// (they wait on the network) get threads of their own.
connection_thread thread_for(engine_pointer self, connection_role role, const driver& drv) {
  auto& st = self->state;
  if (!drv.may_block())
    return connection_thread::scheduled;
  // The read router decides how many scheduler threads reader connections may have:
  // none while sessions may block them in reads in place.
  auto lendable = static_cast<std::ptrdiff_t>(
      read_router::plan(*st.cfg, self->system().scheduler().num_workers()).lendable_threads);
  if (role != connection_role::reader || lendable == 0)
    return connection_thread::dedicated;
  auto lent = std::count_if(st.members.begin(), st.members.end(), [](const auto& entry) {
    return entry.second.thread == connection_thread::scheduled;
  });
  return lent < lendable ? connection_thread::scheduled : connection_thread::dedicated;
}

// A new slot in pool `index` and the connection actor behind it (not connected yet).
slot_id spawn_member(engine_pointer self, size_t index) {
  auto& st = self->state;
  auto& p = st.pools[index];
  auto expires = caf::timestamp::max();
  if (auto life = caf::timespan{st.cfg->pool_recycle}; life.count() > 0) {
    // Up to 10% earlier, so that connections opened together are not retired together.
    auto jitter = std::uniform_int_distribution<int64_t>{0, life.count() / 10}(st.random);
    expires = now() + life - caf::timespan{jitter};
  }
  auto slot = st.next_id++;
  p.model.open_started(slot, expires);
  std::shared_ptr<driver> drv = st.factory(p.role);
  auto thread = thread_for(self, p.role, *drv);
  auto conn = spawn_connection(self->system(), drv, st.cfg, thread);
  // Monitored: a connection actor that dies is never handed out again (invariant 5).
  self->monitor(conn);
  st.members.emplace(slot, member{conn, std::move(drv), index, thread});
  return slot;
}

// The slot left its pool: its actor is closed; the statistics keep what its driver counted.
void close_member(engine_pointer self, slot_id slot) {
  auto& st = self->state;
  auto i = st.members.find(slot);
  if (i == st.members.end())
    return;
  auto& m = i->second;
  st.pools[m.pool_index].model.count_cancelled(m.drv->deadline_cancels());
  st.pools[m.pool_index].model.count_ping_failures(m.drv->ping_failures());
  self->demonitor(m.connection.address());
  self->send_exit(m.connection, caf::exit_reason::user_shutdown);
  st.members.erase(i);
}

void close_members(engine_pointer self, const std::vector<slot_id>& slots, const char* why) {
  for (auto slot : slots) {
    self->state.log->debug("closing a connection: {}", why);
    close_member(self, slot);
  }
}

/// The model's name for a holder: its actor id (0 for an anonymous sender).
pool::holder_id holder_of(const caf::actor_addr& holder) {
  return holder ? holder.id() : 0;
}

void watch(engine_pointer self, const caf::actor_addr& holder) {
  if (holder && self->state.monitored.emplace(holder.id(), holder).second)
    self->monitor(holder);
}

bool open_connection(engine_pointer self, size_t index, open_purpose purpose,
                     caf::typed_response_promise<caf::ok_atom> first = {});

// Opens what the pool wants now (min_idle, waiters no opening connection will serve).
void refill(engine_pointer self, size_t index) {
  auto& st = self->state;
  auto n = st.pools[index].model.wanted_openings(now(), st.health.down());
  for (int i = 0; i < n; ++i)
    open_connection(self, index, open_purpose::fill);
}

void refill_all(engine_pointer self) {
  for (size_t index = 0; index < self->state.pools.size(); ++index)
    refill(self, index);
}

void run_batch(engine_pointer self, size_t index, uint64_t batch_id);

// Carries out where the model sent a connection that came free.
void carry_out(engine_pointer self, size_t index, pool_model::release& r) {
  auto slot = r.slot;
  auto& st = self->state;
  auto& p = st.pools[index];
  using to = pool_model::release::to;
  switch (r.where) {
  case to::idle:
    return;
  case to::waiter:
    r.waiter->payload.promise.deliver(lease{r.waiter->id, connection_of(st, slot)});
    return;
  case to::reads:
    run_batch(self, index, r.batch_id);
    return;
  case to::retired:
    st.log->debug("closing a {} connection: pool_recycle reached", p.model.name());
    close_member(self, slot);
    refill(self, index);
    return;
  case to::discarded:
    st.log->warn("discarding a {} connection: its actor went down", p.model.name());
    close_member(self, slot);
    if (p.model.wants_probe(st.health.down()))
      open_connection(self, index, open_purpose::fill);
    refill(self, index);
    return;
  case to::closed:
    close_member(self, slot);
    return;
  case to::shelf:
    st.shelf->put(slot, st.members.at(slot).drv);
    return;
  }
}

// A shelf that starts empty (PostgreSQL's) opens once a blocking client wants it: idle
// connections go there now, the others as they come free.
void open_shelf_if_wanted(engine_state& st) {
  if (!st.shelf || !st.shelf->wanted())
    return;
  auto& model = st.pools[st.shelf_pool].model;
  auto target = static_cast<int>(st.shelf->target());
  if (model.limits().shelf >= target)
    return;
  for (auto slot : model.open_shelf(target))
    st.shelf->put(slot, st.members.at(slot).drv);
}

// A connection is free again (opened, reset, pinged, answered): the model decides.
void give_back(engine_pointer self, size_t index, slot_id slot) {
  auto& st = self->state;
  open_shelf_if_wanted(st);
  auto r = st.pools[index].model.release_slot(slot, now(), st.health.down());
  carry_out(self, index, r);
}

void start_ping(engine_pointer self, size_t index, slot_id slot);

// Carries out what serving a pool's queue started.
void carry_out(engine_pointer self, size_t index, pool_model::queue_progress& progress) {
  close_members(self, progress.retired, "pool_recycle reached");
  for (auto& r : progress.released)
    carry_out(self, index, r);
  for (auto slot : progress.pings)
    start_ping(self, index, slot);
}

// A connection that left its pool in an unknown state is closed and replaced.
void replace_discarded(engine_pointer self, size_t index, slot_id slot, const char* why) {
  auto& st = self->state;
  auto& p = st.pools[index];
  st.log->warn("discarding a {} connection: {}", p.model.name(), why);
  close_member(self, slot);
  // The replacement doubles as a probe: if the server is gone, opening it fails and
  // the engine goes down instead of handing out more dead connections.
  if (p.model.wants_probe(st.health.down()))
    open_connection(self, index, open_purpose::fill);
  refill(self, index);
}

// A connection in an unknown state: never reused (docs/architecture.md, rule 4).
void discard(engine_pointer self, size_t index, slot_id slot, const char* why) {
  self->state.pools[index].model.discard(slot);
  replace_discarded(self, index, slot, why);
}

// Takes shelved connections back from the shelf: those on it now are placed at once;
// lent ones come back when given back (shelf_atom).
void recall_shelved(engine_pointer self, const std::vector<slot_id>& slots) {
  auto& st = self->state;
  auto& p = st.pools[st.shelf_pool];
  for (auto slot : slots) {
    if (!st.shelf->recall(slot))
      continue;
    auto r = p.model.unshelve(slot, now(), st.health.down());
    carry_out(self, st.shelf_pool, r);
  }
}

// Queued work that no other connection will serve takes shelved ones back.
void recall_for_work(engine_pointer self, size_t index) {
  auto& st = self->state;
  if (!st.shelf || index != st.shelf_pool)
    return;
  auto& p = st.pools[index];
  auto wanted = p.model.shelf_wanted_back();
  if (wanted == 0)
    return;
  for (auto slot : st.shelf->recall_some(static_cast<size_t>(wanted))) {
    auto r = p.model.unshelve(slot, now(), st.health.down());
    carry_out(self, index, r);
  }
}

void schedule_reconnect(engine_pointer self) {
  auto& st = self->state;
  auto spread = std::uniform_real_distribution<double>{0.8, 1.2}(st.random);
  self->delayed_send(self, st.health.next_retry(spread), retry_atom::value);
}

// The server is unreachable: stop handing out connections until it is back.
void mark_down(engine_pointer self, const caf::error& err) {
  auto& st = self->state;
  if (!st.health.lose(describe(err).message))
    return;
  st.log->error("the {} engine lost its server: {}; reconnecting", to_string(st.role),
                st.health.reason());
  publish(self, readiness_state::degraded,
          "lost the server: " + st.health.reason() + "; reconnecting");
  auto refusal = unavailable_error(st);
  for (auto& p : st.pools) {
    // Idle connections to a lost server are dead: close them now, not at their next use.
    for (auto slot : p.model.close_idle())
      close_member(self, slot);
    if (st.shelf && &p == &st.pools[st.shelf_pool])
      recall_shelved(self, p.model.shelved());
    auto [checkouts, reads] = p.model.take_waiting();
    for (auto& w : checkouts)
      w.payload.promise.deliver(refusal);
    for (auto& r : reads)
      r.payload.promise.deliver(refusal);
  }
  schedule_reconnect(self);
}

bool too_many_connections(const caf::error& err) {
  return describe(err).driver_code == "53300"; // the server is up but full
}

// A connect failed while the pool wanted another connection.
void on_fill_failed(engine_pointer self, size_t index, const caf::error& err) {
  auto& st = self->state;
  auto& p = st.pools[index];
  st.log->warn("opening a {} connection failed: {}", p.model.name(), render(err));
  if (!too_many_connections(err)) {
    mark_down(self, err);
    return;
  }
  // The server is up but full: not a lost server. Keep the connections that work and
  // open no more for a while (doubling up to 5 s); waiters are served by the
  // connections the pool has as they come back.
  self->delayed_send(self, p.model.server_full(now()), caf::open_atom::value);
  // Work that waited for this connection takes one back from the in-place shelf.
  recall_for_work(self, index);
  if (p.model.total() > 0)
    return;
  // No connection at all: the checkout (or read) that asked for this one learns why.
  if (auto first = p.model.take_first_waiting()) {
    if (first->first)
      first->first->payload.promise.deliver(err);
    else
      first->second->payload.promise.deliver(err);
  }
}

// The one way a connection is opened; false when the pool is at max (every connection
// it may have is open, opening or on its way back). The driver bounds its own connect
// by connect_timeout and says why it failed; the request's deadline only guards against
// a connection actor that died.
bool open_connection(engine_pointer self, size_t index, open_purpose purpose,
                     caf::typed_response_promise<caf::ok_atom> first) {
  auto& st = self->state;
  if (!st.pools[index].model.can_open())
    return false;
  auto slot = spawn_member(self, index);
  self->request(connection_of(st, slot), st.cfg->connect_timeout + std::chrono::seconds(1),
                caf::connect_atom::value)
      .then(
          [=](caf::ok_atom) mutable {
            auto& st = self->state;
            bool reconnect = purpose == open_purpose::reconnect;
            if (reconnect) {
              st.log->warn("the {} engine reconnected after {} attempt(s)", to_string(st.role),
                           st.health.attempts());
              st.health.recovered();
              publish(self, readiness_state::ready, "reconnected");
            }
            auto r = st.pools[index].model.open_succeeded(slot, now(), st.health.down(), reconnect);
            carry_out(self, index, r);
            if (purpose == open_purpose::fill)
              return;
            if (purpose == open_purpose::first) {
              publish(self, readiness_state::ready, "connected");
              // Housekeeping starts with the first connection, once.
              if (st.tick.count() > 0 && st.pools[0].model.counters().opened == 1)
                self->delayed_send(self, st.tick, tick_atom::value);
              first.deliver(caf::ok_atom::value);
            }
            // Warm the pools (min_idle) and serve what waits.
            refill_all(self);
          },
          [=](caf::error& err) mutable {
            auto& st = self->state;
            st.pools[index].model.open_failed(slot);
            close_member(self, slot);
            switch (purpose) {
            case open_purpose::fill:
              on_fill_failed(self, index, err);
              break;
            case open_purpose::first:
              // Setup decides when to give up; until then this is one failed attempt.
              publish(self, readiness_state::connecting,
                      "attempt " + std::to_string(st.health.attempts()) +
                          " failed: " + describe(err).message);
              first.deliver(err);
              break;
            case open_purpose::reconnect:
              if (st.health.still_down(describe(err).message))
                publish(self, readiness_state::degraded,
                        "lost the server: " + st.health.reason() + "; reconnecting");
              schedule_reconnect(self);
              break;
            }
          });
  return true;
}

// Rolls back whatever the connection has open, then pools it; discards it if the
// rollback fails or the connection stays silent past `within`.
void reset_then_pool(engine_pointer self, size_t index, slot_id slot, caf::timespan within,
                     const char* why_discarded) {
  self->request(connection_of(self->state, slot), within, caf::reset_atom::value)
      .then([=](caf::ok_atom) { give_back(self, index, slot); },
            [=](caf::error&) { discard(self, index, slot, why_discarded); });
}

// A request passed its deadline: cancel the statement on the server (the connection
// actor is blocked in it), then drain. `cancel` never blocks (PostgreSQL sends it from
// a thread of its own). The reset queues behind the cancelled request in the
// connection's mailbox, so its answer proves the connection is quiet again; and the
// driver starts no statement while a cancel is still on its way to the server, so a
// late cancel can never hit the next holder's statement.
void cancel_then_pool(engine_pointer self, size_t index, slot_id slot) {
  auto& st = self->state;
  auto& p = st.pools[index];
  p.model.count_cancelled();
  st.log->warn("a {} connection outlived its request's deadline: cancelling the statement",
               p.model.name());
  st.members.at(slot).drv->cancel();
  // Reaching the server again takes at most connect_timeout; beyond it the link is dead.
  reset_then_pool(self, index, slot, st.cfg->connect_timeout,
                  "it did not answer after its statement was cancelled");
}

// pool_pre_ping: a round trip on an idle connection before it serves the queue; a
// dead one is discarded and the queue looks for the next.
void start_ping(engine_pointer self, size_t index, slot_id slot) {
  auto& st = self->state;
  self->request(connection_of(st, slot), st.cfg->connect_timeout, ping_atom::value)
      .then(
          [=](caf::ok_atom) {
            auto& st = self->state;
            auto progress =
                st.pools[index].model.ping_answered(slot, now(), ping_after(st), st.health.down());
            carry_out(self, index, progress);
          },
          [=](caf::error& err) {
            auto& st = self->state;
            auto& p = st.pools[index];
            st.log->warn("pool_pre_ping: an idle {} connection is dead ({})", p.model.name(),
                         describe(err).message);
            auto progress = p.model.ping_failed(slot, now(), ping_after(st), st.health.down());
            close_member(self, slot);
            carry_out(self, index, progress);
            // As after any discard: a replacement that doubles as a probe of the server.
            if (p.model.wants_probe(st.health.down()))
              open_connection(self, index, open_purpose::fill);
            refill(self, index);
          });
}

// Answers every read of `batch` with its outcome from the connection; true when the
// outcomes say the connection's link broke.
bool deliver_outcomes(std::vector<pool_model::queued_read>& batch,
                      std::vector<read_outcome>& outcomes) {
  bool broken = outcomes.size() != batch.size();
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& promise = batch[i].payload.promise;
    if (i >= outcomes.size()) {
      promise.deliver(make_error(errc::connection_lost,
                                 "the connection answered a batch of reads in part; "
                                 "retry the request"));
    } else if (auto& err = outcomes[i].error) {
      broken = broken || is(err, errc::connection_lost) || is(err, errc::unavailable);
      promise.deliver(std::move(err));
    } else {
      promise.deliver(std::move(outcomes[i].result));
    }
  }
  return broken;
}

// Sends a batch the model started to its connection in one message; each read gets its
// own outcome. Afterwards the connection goes back to the pool; it is discarded when
// its link broke. The request itself has no timer: the engine's own deadline check
// (expire_atom) cancels a batch that runs too long, and one timer serves all batches.
void run_batch(engine_pointer self, size_t index, uint64_t batch_id) {
  auto& st = self->state;
  auto& batch = *st.pools[index].model.find_batch(batch_id);
  auto slot = batch.slot;
  std::vector<statement> stmts;
  stmts.reserve(batch.reads.size());
  for (auto& r : batch.reads)
    stmts.push_back(std::move(r.payload.stmt));
  if (batch.deadline < st.running_check) {
    st.running_check = batch.deadline;
    self->delayed_send(self, batch.deadline - now(), expire_atom::value);
  }
  self->request(connection_of(st, slot), caf::infinite, read_atom::value, std::move(stmts))
      .then(
          [=](std::vector<read_outcome>& outcomes) {
            // Nothing when its deadline passed and it was answered already (the
            // connection then belongs to cancel_then_pool).
            auto done = self->state.pools[index].model.finish_batch(batch_id);
            if (!done)
              return;
            if (deliver_outcomes(done->reads, outcomes))
              discard(self, index, slot, "its link broke during a batch of reads");
            else
              give_back(self, index, slot);
          },
          [=](caf::error& err) {
            auto done = self->state.pools[index].model.finish_batch(batch_id);
            if (!done)
              return;
            // The connection refused the batch (not open, read-only mode failed) or is gone.
            auto failure = err.category() == error_category
                               ? err
                               : make_error(errc::connection_lost,
                                            "the connection went away during the read (" +
                                                to_string(err) + "); retry the request");
            for (auto& r : done->reads)
              r.payload.promise.deliver(failure);
            discard(self, index, slot, "it failed a batch of reads");
          });
}

// Batches past their deadline get statement_timeout and their connection is cancelled
// and drained; the check moves to the next deadline.
void cancel_overdue_reads(engine_pointer self, caf::timestamp t) {
  auto& st = self->state;
  if (st.running_check > t)
    return;
  auto next = caf::timestamp::max();
  for (size_t index = 0; index < st.pools.size(); ++index) {
    auto& model = st.pools[index].model;
    for (auto& batch : model.overdue_batches(t)) {
      auto timeout = make_error(
          errc::statement_timeout,
          "the read did not finish within its deadline (" + std::to_string(ms(batch.limit)) +
              " ms); cafdb is cancelling it on the server, nothing was changed (a read). Raise "
              "request_timeout / statement_timeout, or make the query cheaper");
      for (auto& r : batch.reads)
        r.payload.promise.deliver(timeout);
      cancel_then_pool(self, index, batch.slot);
    }
    next = std::min(next, model.next_batch_deadline());
  }
  st.running_check = next;
  if (next != caf::timestamp::max())
    self->delayed_send(self, next - t, expire_atom::value);
}

// A holder went down: its leases are rolled back and pooled, its queued work dropped.
void reclaim_leases(engine_pointer self, pool::holder_id holder) {
  auto& st = self->state;
  for (size_t index = 0; index < st.pools.size(); ++index) {
    for (auto& [id, info] : st.pools[index].model.reclaim(holder)) {
      st.log->warn("{} went down holding a {} connection: rolling back", info.terms.owner,
                   st.pools[index].model.name());
      reset_then_pool(self, index, info.slot, st.cfg->statement_timeout,
                      "rollback after session loss failed");
    }
  }
}

// A connection actor died on its own (invariant 5). Idle: forgotten and replaced now;
// leased or busy: discarded when it comes back (its holder finds out at its next request).
void on_connection_down(engine_pointer self, slot_id slot, const caf::error& why) {
  auto& st = self->state;
  auto index = st.members.at(slot).pool_index;
  auto& p = st.pools[index];
  if (!p.model.slot_died(slot)) {
    // Shelved: the dead slot is discarded as it comes off the shelf.
    if (st.shelf && index == st.shelf_pool && p.model.state_of(slot) == pool::slot_state::shelved)
      recall_shelved(self, {slot});
    return;
  }
  st.log->warn("an idle {} connection went down ({}): replacing it", p.model.name(),
               to_string(why));
  close_member(self, slot);
  if (p.model.wants_probe(st.health.down()))
    open_connection(self, index, open_purpose::fill);
}

void log_stats(engine_pointer self) {
  auto& st = self->state;
  for (auto& p : st.pools) {
    auto& c = p.model.counters();
    auto& w = p.model.waits();
    st.log->info("{} engine, {}; checkouts {}, timeouts {}, discarded {}, reconnects {}, "
                 "recycled {}, wait p50/p95/p99 {}/{}/{} us",
                 to_string(st.role), p.model.describe(), c.checkouts, c.timeouts, c.discarded,
                 c.reconnects, c.recycled, w.percentile_us(0.5), w.percentile_us(0.95),
                 w.percentile_us(0.99));
  }
}

// Periodic work: recycle and reap idle connections, keep min_idle, watch leases.
void housekeeping(engine_pointer self) {
  auto& st = self->state;
  auto& cfg = *st.cfg;
  open_shelf_if_wanted(st);
  auto t = now();
  for (size_t index = 0; index < st.pools.size(); ++index) {
    auto& p = st.pools[index];
    close_members(self, p.model.sweep_idle(t, pool::duration{cfg.idle_timeout}),
                  "pool_recycle reached or idle past idle_timeout");
    if (st.shelf && index == st.shelf_pool) {
      recall_shelved(self, p.model.shelved_to_recall(t));
      // Shelved connections no session borrowed for idle_timeout shrink the pool too.
      auto spare = p.model.spare_for_reaping();
      if (cfg.idle_timeout.count() > 0 && spare > 0) {
        auto unused = st.shelf->take_unused(cfg.idle_timeout, static_cast<size_t>(spare));
        for (auto slot : unused)
          p.model.retire_shelved(slot);
        close_members(self, unused, "idle past idle_timeout");
      }
    }
    refill(self, index);
    auto watch = p.model.watch_leases(t, pool::duration{cfg.leak_threshold},
                                      pool::duration{cfg.lease_timeout});
    for (auto& [id, info] : watch.leaked)
      st.log->warn("possible connection leak: {} (actor #{}) has held a {} connection for {} ms "
                   "(leak_threshold {} ms)",
                   info.terms.owner, info.holder, p.model.name(), ms(t - info.granted),
                   cfg.leak_threshold.count());
    for (auto& [id, info] : watch.revoked) {
      st.log->warn("reclaiming a {} connection from {} (actor #{}) after {} ms (lease_timeout): "
                   "the session is told and its transaction rolled back",
                   p.model.name(), info.terms.owner, info.holder, ms(t - info.granted));
      // The holder checks the lease in when its current request ends (each request has a
      // deadline); until then the connection stays its own (invariant 4).
      auto i = st.monitored.find(info.holder);
      if (i == st.monitored.end())
        continue;
      if (auto holder = caf::actor_cast<caf::actor>(i->second))
        self->send(caf::actor_cast<session_actor>(holder), revoke_atom::value, id);
    }
  }
  if (cfg.stats_interval.count() > 0 &&
      t - st.last_stats_log >= caf::timespan{cfg.stats_interval}) {
    st.last_stats_log = t;
    log_stats(self);
  }
  self->delayed_send(self, st.tick, tick_atom::value);
}

pool_stats stats_of(const engine_state& st, size_t index) {
  auto& m = st.pools[index].model;
  auto& c = m.counters();
  pool_stats out;
  out.engine = to_string(st.role);
  out.pool = m.name();
  out.size = m.limits().size;
  out.max = m.limits().max;
  out.total = m.total();
  out.idle = m.idle_count();
  out.in_use = m.in_use();
  if (st.shelf && index == st.shelf_pool) {
    // Shelved connections are idle until a session borrows one.
    out.in_place = m.count(pool::slot_state::shelved);
    auto lent = std::min(static_cast<int32_t>(st.shelf->lent()), out.in_place);
    out.idle += out.in_place - lent;
    out.in_use += lent;
  }
  out.opening = m.count(pool::slot_state::opening);
  out.pinging = m.count(pool::slot_state::pinging);
  out.returning = m.count(pool::slot_state::returning);
  out.waiting = m.waiting();
  out.checkouts = c.checkouts;
  out.timeouts = c.timeouts;
  out.discarded = c.discarded;
  out.opened = c.opened;
  out.cancelled = c.cancelled;
  out.ping_failures = c.ping_failures;
  // What borrowers of the in-place shelf counted on open connections (a closed one's
  // counts are the model's).
  for (auto& [slot, member] : st.members)
    if (member.pool_index == index) {
      out.cancelled += member.drv->deadline_cancels();
      out.ping_failures += member.drv->ping_failures();
    }
  out.reconnects = c.reconnects;
  out.recycled = c.recycled;
  out.server_full = c.server_full;
  out.leaks = c.leaks;
  out.reclaimed = c.reclaimed;
  out.wait_p50_us = m.waits().percentile_us(0.5);
  out.wait_p95_us = m.waits().percentile_us(0.95);
  out.wait_p99_us = m.waits().percentile_us(0.99);
  return out;
}

engine_actor::behavior_type engine_behavior(engine_pointer self, engine_role role,
                                            std::shared_ptr<const config> cfg,
                                            driver_factory factory, database_actor db,
                                            std::shared_ptr<pool::in_place_shelf> shelf) {
  auto& st = self->state;
  st.role = role;
  st.cfg = std::move(cfg);
  st.factory = std::move(factory);
  st.db = std::move(db);
  st.log = log::get("engine");
  auto& c = *st.cfg;
  if (c.in_memory()) {
    st.pools.push_back(make_pool("shared", connection_role::shared, 1, 1, 0));
  } else if (c.engine == engine_kind::sqlite) {
    st.pools.push_back(make_pool("writer", connection_role::writer, 1, 1, 0));
    auto shelved = shelf ? static_cast<int>(shelf->target()) : 0;
    // Reading in place, a borrower only finds what is on the shelf, and a read-write
    // session or a blocking client that finds nothing there never waits for a reader
    // (session/read_router.hpp): a pool opened on demand would stay small. So the pool
    // opens pool_size connections at start (HikariCP's default minimumIdle) when it
    // never closes idle ones anyway (no idle_timeout), else at least one.
    auto keep = c.min_idle;
    if (shelved > 0)
      keep = std::max(keep, c.idle_timeout.count() == 0 ? c.pool_size : 1);
    st.pools.push_back(make_pool("reader", connection_role::reader, c.pool_size,
                                 c.pool_size + c.max_overflow, keep, shelved));
  } else {
    // PostgreSQL: one pool; the reader engine's connections refuse writes. Its shelf
    // (blocking clients run their calls on its connections) starts empty: it opens when
    // the first client wants it (open_shelf_if_wanted).
    bool reader = st.role == engine_role::reader;
    st.pools.push_back(make_pool(reader ? "reader" : "shared",
                                 reader ? connection_role::reader : connection_role::shared,
                                 c.pool_size, c.pool_size + c.max_overflow, c.min_idle));
  }
  if (shelf) {
    st.shelf = std::move(shelf);
    st.shelf_pool = st.pools.size() - 1;
    // Called on a borrower's thread: a message, to an engine that may be gone.
    st.shelf->attach([engine = caf::actor_cast<caf::actor_addr>(self)](slot_id slot, bool usable) {
      if (auto to = caf::actor_cast<engine_actor>(engine))
        caf::anon_send(to, shelf_atom::value, slot, usable);
    });
  }
  st.tick = pool::housekeeping_period(c);
  st.last_stats_log = now();
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto& [slot, m] : st.members)
      if (m.connection.address() == dm.source) {
        on_connection_down(self, slot, dm.reason);
        return;
      }
    st.monitored.erase(dm.source.id());
    reclaim_leases(self, dm.source.id());
  });
  return {
      [=](caf::connect_atom) -> caf::result<caf::ok_atom> {
        // Setup's connectivity check: open the first connection of the main pool.
        auto& st = self->state;
        auto& main = st.pools[0].model;
        if (main.has_idle() || main.in_use() > 0)
          return caf::ok_atom::value;
        st.health.count_attempt();
        publish(self, readiness_state::connecting, "opening the first connection");
        auto rp = self->make_response_promise<caf::ok_atom>();
        if (!open_connection(self, 0, open_purpose::first, rp))
          return make_error(errc::connect_failed,
                            "every connection the pool may open is opening or on its way back; "
                            "retry shortly");
        return rp;
      },
      [=](checkout_atom, checkout_request& req) -> caf::result<lease> {
        auto& st = self->state;
        if (st.health.down())
          return unavailable_error(st);
        auto index = pool_for(st, req.read_only);
        auto& model = st.pools[index].model;
        auto holder = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (!model.has_idle() && total_waiting(st) >= st.cfg->max_pending)
          return overloaded_error(st, model);
        watch(self, holder);
        auto id = st.next_id++;
        auto t = now();
        pool::lease_terms terms{req.owner, req.revocable};
        // The common case answers directly: an idle connection that needs no ping.
        auto taken = model.take_idle(t, ping_after(st));
        close_members(self, taken.retired, "pool_recycle reached");
        if (taken.what == pool_model::idle_take::found::none && st.shelf && index == st.shelf_pool)
          if (auto shelved = st.shelf->take_available()) {
            // One pool: a connection on the shelf serves a checkout before a new one opens.
            model.take_shelved(*shelved);
            taken.what = pool_model::idle_take::found::ready;
            taken.slot = *shelved;
          }
        if (taken.what == pool_model::idle_take::found::ready) {
          model.grant(taken.slot, id, holder_of(holder), t, std::move(terms), caf::timespan{0});
          return lease{id, connection_of(st, taken.slot)};
        }
        auto rp = self->make_response_promise<lease>();
        auto timeout = req.timeout.count() > 0 ? req.timeout : caf::timespan{st.cfg->pool_timeout};
        self->delayed_send(self, timeout, expire_atom::value, id);
        auto progress =
            model.enqueue(pool_model::queued_checkout{id, holder_of(holder), t, std::move(terms),
                                                      checkout_wait{rp}},
                          t, ping_after(st), false);
        carry_out(self, index, progress);
        if (taken.what == pool_model::idle_take::found::needs_ping)
          start_ping(self, index, taken.slot); // serves the queue when it answers
        refill(self, index);
        recall_for_work(self, index);
        return rp;
      },
      [=](read_atom, statement& stmt, caf::timespan wait,
          caf::timespan deadline) -> caf::result<result_set> {
        auto& st = self->state;
        if (st.health.down())
          return unavailable_error(st);
        auto index = pool_for(st, true);
        auto& p = st.pools[index];
        if (!p.model.has_idle() && total_waiting(st) >= st.cfg->max_pending)
          return overloaded_error(st, p.model);
        auto holder = caf::actor_cast<caf::actor_addr>(self->current_sender());
        watch(self, holder);
        auto rp = self->make_response_promise<result_set>();
        auto id = st.next_id++;
        auto t = now();
        auto expires = t + (wait.count() > 0 ? wait : caf::timespan{st.cfg->pool_timeout});
        auto progress =
            p.model.enqueue(pool_model::queued_read{id, holder_of(holder), t, expires, deadline,
                                                    read_wait{rp, std::move(stmt)}},
                            t, ping_after(st), false);
        carry_out(self, index, progress);
        refill(self, index);
        recall_for_work(self, index);
        // Still queued (no idle connection, or one being pinged): it may time out. One
        // timer serves every queued read (a timer per read costs the clock thread a
        // wake-up each): it is moved only when this read expires before it.
        if (p.model.queued_reads() > 0 && expires < p.reads_check) {
          p.reads_check = expires;
          self->delayed_send(self, expires - t, expire_atom::value);
        }
        return rp;
      },
      [=](checkin_atom, uint64_t lease_id, connection_condition condition) {
        auto& st = self->state;
        for (size_t index = 0; index < st.pools.size(); ++index) {
          auto info = st.pools[index].model.checkin(lease_id);
          if (!info)
            continue;
          // A reclaimed lease may come back as clean from a holder that never learned
          // of it: its statement was cancelled, so roll back whatever is left.
          if (info->revoking && condition == connection_condition::clean)
            condition = connection_condition::needs_rollback;
          switch (condition) {
          case connection_condition::clean:
            give_back(self, index, info->slot);
            break;
          case connection_condition::needs_rollback:
            reset_then_pool(self, index, info->slot, st.cfg->statement_timeout,
                            "rollback at check-in failed");
            break;
          case connection_condition::running:
            cancel_then_pool(self, index, info->slot);
            break;
          case connection_condition::broken:
            discard(self, index, info->slot, "returned in an unknown state");
            break;
          }
          return;
        }
        // Not found: reclaimed already (its holder went down first).
      },
      [=](shelf_atom, uint64_t slot, bool usable) {
        // A shelved connection came back from its borrower: recalled, or unusable.
        auto& st = self->state;
        if (!st.shelf)
          return;
        auto& p = st.pools[st.shelf_pool];
        if (!p.model.contains(slot) || p.model.state_of(slot) != pool::slot_state::shelved)
          return;
        if (usable) {
          auto r = p.model.unshelve(slot, now(), st.health.down());
          carry_out(self, st.shelf_pool, r);
          return;
        }
        p.model.shelf_lost(slot);
        replace_discarded(self, st.shelf_pool, slot, "a read in place left it in an unknown state");
      },
      [=](stats_atom) {
        auto& st = self->state;
        std::vector<pool_stats> out;
        for (size_t index = 0; index < st.pools.size(); ++index)
          out.push_back(stats_of(st, index));
        return out;
      },
      [=](expire_atom, uint64_t waiter_id) {
        // Every queued checkout gets this message, served or not: with thousands
        // waiting, finding it must not cost a scan (binary search by id).
        for (auto& p : self->state.pools) {
          if (!p.model.is_queued_checkout(waiter_id))
            continue;
          // Described before this waiter leaves the queue: the message shows what it saw.
          auto message = "no connection became free within pool_timeout (" + p.model.describe() +
                         "); raise pool_size or max_overflow, or hold connections for shorter";
          auto w = p.model.expire_checkout(waiter_id);
          w->payload.promise.deliver(make_error(errc::pool_timeout, std::move(message)));
          return;
        }
      },
      [=](expire_atom) {
        // Reads past their wait get pool_timeout; the check moves to the next expiry.
        auto t = now();
        cancel_overdue_reads(self, t);
        for (auto& p : self->state.pools) {
          if (p.reads_check > t)
            continue;
          auto message = "no connection became free within pool_timeout (" + p.model.describe() +
                         "); raise pool_size or max_overflow, or make reads cheaper";
          for (auto& r : p.model.expire_reads(t))
            r.payload.promise.deliver(make_error(errc::pool_timeout, message));
          p.reads_check = p.model.next_read_expiry();
          if (p.reads_check != caf::timestamp::max())
            self->delayed_send(self, p.reads_check - t, expire_atom::value);
        }
      },
      [=](tick_atom) { housekeeping(self); },
      [=](caf::open_atom) { refill_all(self); },
      [=](shutdown_atom) {
        // The database's shutdown_timeout passed: whatever still runs is cancelled, so
        // that every session gets its answer and can roll back and close.
        auto& st = self->state;
        size_t running = 0;
        for (auto& p : st.pools)
          running += p.model.leases().size() + p.model.batches().size();
        st.log->warn("shutdown_timeout passed: cancelling {} running request(s)", running);
        st.cancel_everything("the database is stopping (shutdown_timeout passed)");
      },
      [=](retry_atom) {
        // Reconnect: one probe connection in the main pool.
        auto& st = self->state;
        if (!st.health.down())
          return;
        st.health.count_attempt();
        // At max, connections are still on their way back from the lost server: they
        // close as they come (the engine is down), and the next retry finds room.
        if (!open_connection(self, 0, open_purpose::reconnect))
          schedule_reconnect(self);
      },
  };
}

} // namespace

engine_actor spawn_engine(caf::actor_system& sys, engine_role role,
                          std::shared_ptr<const config> cfg, driver_factory factory,
                          database_actor db, std::shared_ptr<pool::in_place_shelf> shelf) {
  return sys.spawn(engine_behavior, role, std::move(cfg), std::move(factory), std::move(db),
                   std::move(shelf));
}

std::string to_string(engine_role x) {
  return x == engine_role::reader ? "reader" : "writer";
}

driver_factory default_driver_factory(std::shared_ptr<const config> cfg, engine_role role) {
  if (cfg->engine == engine_kind::postgresql) {
    bool reader = role == engine_role::reader;
    pg_options options;
    // Given first, so that the URL's own settings override them. TCP keepalives and
    // tcp_user_timeout make the kernel give up on a link that silently drops packets
    // (no RST) within seconds, for idle connections and busy ones alike; libpq's
    // defaults leave that to the system (two hours of keepalive idle).
    auto seconds = std::max<int64_t>(1, (cfg->connect_timeout.count() + 999) / 1000);
    options.conninfo = "connect_timeout=" + std::to_string(seconds) +
                       " keepalives=1 keepalives_idle=5 keepalives_interval=1 "
                       "keepalives_count=3 tcp_user_timeout=8000 " +
                       (reader ? cfg->read_conninfo : cfg->conninfo);
    options.display = reader ? cfg->read_display : cfg->display;
    options.statement_timeout = cfg->statement_timeout;
    options.connect_timeout = cfg->connect_timeout;
    options.silence_grace = std::min(cfg->connect_timeout, millis{5'000});
    return [options](connection_role conn_role) -> std::unique_ptr<driver> {
      return std::make_unique<pg_driver>(options, conn_role);
    };
  }
  auto opened_once = std::make_shared<std::atomic<bool>>(false);
  return [cfg, opened_once](connection_role conn_role) -> std::unique_ptr<driver> {
    sqlite_options options;
    options.opened_once = opened_once;
    options.path = cfg->path;
    options.create_if_missing = cfg->create_if_missing;
    options.busy_timeout = cfg->busy_timeout;
    return std::make_unique<sqlite_driver>(std::move(options), conn_role);
  };
}

} // namespace cafdb
