// The engine actor: owns the pools of connection actors of one engine role.
//
// Pools: SQLite file databases get a `writer` pool (exactly one connection: SQLite
// allows one writer at a time, and queueing writers here is fairer and faster than
// SQLite's sleeping busy handler) and a `reader` pool (pool_size + max_overflow
// read-only connections). `:memory:` gets one `shared` connection, since every
// connection would otherwise see its own empty database.
//
// A connection's life inside a pool:
//
//            open ok                checkout (pre-ping ok)      checkin(clean)
//  opening ─────────► idle ──────────────────────────► leased ─────────────────► idle
//     │                │ ▲                                │  checkin(needs_rollback /
//     │ open fails     │ └────────────────────────────────┤  running): reset ok
//     ▼                ▼ expired, reaped, pre-ping fails  │
//   gone ◄─────────────┴──────────────────────────────────┘  checkin(broken) / reset fails /
//                                                            expired when it comes back
//
// The engine's health:
//
//            open fails (server unreachable)          reconnect ok
//   up ─────────────────────────────────────► down ─────────────────► up
//                                              │ ▲ reconnect fails: backoff x2 (max 2 s), jitter
//                                              └─┘
//   up:   publishes engine:<role> ready; checkouts are served or queued.
//   down: publishes degraded with the server's error; idle connections are closed,
//         waiters and new checkouts get `unavailable` at once.
//
// Autocommit reads (read_atom) take no lease: the engine runs them itself. A read that
// finds an idle connection goes out at once; reads that find none queue, and the next
// connection to come free takes up to max_read_batch of them in one message (one
// pipeline on PostgreSQL), so that under load many sessions share a round trip.
// The engine watches the running batches' deadlines itself (cancel_overdue_reads, one
// timer for all), so that no read costs a timer of its own.
//
// Transitions: opening -> idle [open_connection, give_back]; idle -> leased [checkout,
// give_back, dispatch_reads]; leased -> idle [checkin, reclaim_leases]; leased/idle -> gone
// [discard, retire, housekeeping, on_connection_down]; up -> down [mark_down]; down -> up [retry].
//
// Invariants:
// 1. A pool never has idle connections and waiters (checkouts or reads) at the same time.
// 2. total = idle + leased + opening + pinging, and total <= max.
// 3. Every lease belongs to a holder the engine monitors; when it goes down, its
//    leases are reset and come back (or are discarded), its queued checkouts are dropped.
// 4. Every waiter is answered exactly once: a lease (or a read's outcome), pool_timeout
//    at its deadline, unavailable when the server is lost, or shutting_down when the
//    engine quits. A waiter whose holder went down is dropped unanswered. A running
//    read is answered by its connection, by statement_timeout at its deadline, or by
//    shutting_down when the engine quits (sessions wait for reads without a timer).
// 5. A leased connection is never closed by the engine: recycling, reaping and lease
//    reclaiming act on idle connections or on a connection once it is checked in.
// 6. A connection actor that dies is forgotten at once and never handed out again.
// 7. Each pool's waiters and reads are ordered by id (the order they arrived in).
#include "actors/engine.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include <caf/all.hpp>

#include "actors/connection.hpp"
#include "backend/pg_driver.hpp"
#include "backend/sqlite_driver.hpp"
#include "cafdb/error.hpp"
#include "log.hpp"

namespace cafdb {

namespace {

using clock_type = caf::timestamp::clock;

struct waiter {
  uint64_t id;
  caf::typed_response_promise<lease> promise;
  caf::actor_addr holder;
  caf::timestamp enqueued;
  checkout_request request;
};

/// An autocommit read waiting for a connection.
struct read_waiter {
  uint64_t id;
  caf::typed_response_promise<result_set> promise;
  caf::actor_addr holder;
  caf::timestamp enqueued;
  statement stmt;
  /// The request's deadline on the connection.
  caf::timespan deadline;
  /// When it stops waiting for a connection (pool_timeout).
  caf::timestamp expires;
};

/// Reads sent to one connection in one message at most.
constexpr size_t max_read_batch = 32;

/// The last checkout waits, for percentiles.
struct wait_samples {
  static constexpr size_t capacity = 1024;
  std::vector<int64_t> micros;
  size_t next = 0;
  void add(caf::timespan waited) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(waited).count();
    if (micros.size() < capacity)
      micros.push_back(us);
    else
      micros[next] = us;
    next = (next + 1) % capacity;
  }
  int64_t percentile(double q) const {
    if (micros.empty())
      return 0;
    auto sorted = micros;
    // Nearest rank: the smallest sample with at least q of all samples at or below it.
    auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    auto k = std::max<size_t>(rank, 1) - 1;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
    return sorted[k];
  }
};

struct pool {
  std::string name;
  connection_role role = connection_role::shared;
  int size = 1;
  int max = 1;
  int min_idle = 0;
  int total = 0;
  int opening = 0;
  int pinging = 0;
  int in_use = 0;
  std::vector<connection_actor> idle;
  std::deque<waiter> waiters;
  std::deque<read_waiter> reads;
  /// When both checkouts and reads wait, a freed connection goes to them in turn.
  bool reads_turn = false;
  /// The expiry check of the queued reads scheduled soonest; max() when none is.
  caf::timestamp reads_check = caf::timestamp::max();
  int64_t checkouts = 0;
  int64_t timeouts = 0;
  int64_t discarded = 0;
  int64_t opened = 0;
  int64_t cancelled = 0;
  int64_t reconnects = 0;
  int64_t recycled = 0;
  int64_t ping_failures = 0;
  int64_t server_full = 0;
  /// The server refused a connect as full (53300): no new connection before this, and
  /// how long the next refusal waits.
  caf::timestamp full_until;
  caf::timespan full_backoff{0};
  int64_t leaks = 0;
  int64_t reclaimed = 0;
  wait_samples waits;
};

// A connection actor and its driver: the engine keeps the driver to cancel a
// statement from outside the connection's thread (driver::cancel).
struct member {
  connection_actor connection;
  std::shared_ptr<driver> drv;
  /// Its pool in engine_state::pools.
  size_t pool_index = 0;
  /// Past this the connection is retired (pool_recycle); max() when it lives forever.
  caf::timestamp expires;
  /// When it last went idle (pool_pre_ping, idle_timeout).
  caf::timestamp idle_since;
  connection_thread thread;
};

/// Reads sent to a connection in one message, awaiting its answer.
struct running_batch {
  std::vector<read_waiter> reads;
  size_t pool_index;
  connection_actor connection;
  /// The longest request deadline of its reads, and when it passes.
  caf::timespan limit;
  caf::timestamp deadline;
};

struct lease_entry {
  size_t pool_index;
  connection_actor connection;
  caf::actor_addr holder;
  caf::timestamp granted;
  std::string owner;
  bool revocable = false;
  bool warned = false;   // leak_threshold logged
  bool revoking = false; // lease_timeout passed: the holder was told to give it back
};

struct engine_state {
  static inline const char* name = "cafdb.engine";
  std::string role;
  std::shared_ptr<const config> cfg;
  driver_factory factory;
  database_actor db;
  std::vector<pool> pools;
  std::unordered_map<uint64_t, lease_entry> leases;
  /// Batches of reads on a connection, by batch id, until their answer is delivered.
  std::unordered_map<uint64_t, running_batch> running_reads;
  /// The deadline check of the running batches scheduled soonest; max() when none is.
  caf::timestamp running_check = caf::timestamp::max();
  std::unordered_set<caf::actor_addr> monitored;
  std::vector<member> all; // every connection spawned and not yet gone
  uint64_t next_id = 1;
  int32_t attempts = 0;
  /// Health: the server was lost and the engine is reconnecting.
  bool down = false;
  std::string down_reason;
  caf::timespan backoff{0};
  /// Housekeeping period; zero when no option needs it.
  caf::timespan tick{0};
  caf::timestamp last_stats_log;
  std::mt19937_64 random{std::random_device{}()};
  std::shared_ptr<spdlog::logger> log;

  /// Refuses what waits and cancels what runs: every connection thread then ends
  /// within its driver's grace, whatever the server or the network does (cancel()
  /// never blocks). A connection busy in a statement would see its exit only when the
  /// statement ends.
  void cancel_everything(const std::string& why) {
    refuse_waiting(why);
    for (auto& m : all)
      if (m.drv)
        m.drv->cancel_for_shutdown();
  }

  /// Answers every queued checkout and read with shutting_down.
  void refuse_waiting(const std::string& why) {
    for (auto& p : pools) {
      for (auto& w : p.waiters)
        w.promise.deliver(
            make_error(errc::shutting_down, why + " while this checkout was waiting"));
      p.waiters.clear();
      for (auto& r : p.reads)
        r.promise.deliver(make_error(errc::shutting_down, why + " while this read was waiting"));
      p.reads.clear();
    }
  }

  // Runs on every exit path (CAF 0.17 destroys the state before attach_functor
  // cleanups run): keeps (4) and takes every connection down with the engine.
  ~engine_state() {
    cancel_everything("the engine stopped");
    // Sessions wait for reads without a timer of their own (invariant 4 answers them).
    for (auto& [id, batch] : running_reads)
      for (auto& r : batch.reads)
        r.promise.deliver(
            make_error(errc::shutting_down, "the engine stopped while this read was running"));
    for (auto& m : all)
      caf::anon_send_exit(m.connection, caf::exit_reason::user_shutdown);
  }
};

using engine_pointer = engine_actor::stateful_pointer<engine_state>;

caf::timestamp now() {
  return caf::make_timestamp();
}

int64_t ms(caf::timespan span) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(span).count();
}

pool make_pool(std::string name, connection_role role, int size, int max, int min_idle) {
  pool p;
  p.name = std::move(name);
  p.role = role;
  p.size = size;
  p.max = max;
  p.min_idle = std::min(min_idle, size);
  return p;
}

size_t pool_for(const engine_state& st, bool read_only) {
  return read_only && st.pools.size() > 1 ? 1 : 0;
}

int total_waiting(const engine_state& st) {
  int n = 0;
  for (auto& p : st.pools)
    n += static_cast<int>(p.waiters.size() + p.reads.size());
  return n;
}

std::string counts(const pool& p) {
  return p.name + " pool: " + std::to_string(p.total) + " total, " + std::to_string(p.in_use) +
         " in use, " + std::to_string(p.idle.size()) + " idle, " +
         std::to_string(p.waiters.size() + p.reads.size()) + " waiting";
}

caf::error overloaded_error(const engine_state& st, const pool& p) {
  return make_error(errc::pool_overloaded, "too many requests are already waiting (max_pending = " +
                                               std::to_string(st.cfg->max_pending) + ", " +
                                               counts(p) +
                                               "); retry later or raise max_pending / pool_size");
}

void publish(engine_pointer self, readiness_state state, std::string detail) {
  auto& st = self->state;
  self->send(st.db, readiness_event{"engine:" + st.role, state, std::move(detail), st.attempts,
                                    caf::make_timestamp()});
}

std::vector<member>::iterator find_member(engine_state& st, const connection_actor& conn) {
  return std::find_if(st.all.begin(), st.all.end(),
                      [&](const member& m) { return m.connection == conn; });
}

// SQLite readers run on the scheduler: a point read costs a few microseconds, a hop to
// a thread of their own and back costs more (docs/benchmarks.md). A long read holds a
// scheduler thread meanwhile, so at most half of those threads may be lent to readers;
// further readers, writers (they wait on the file lock) and PostgreSQL connections
// (they wait on the network) get threads of their own.
connection_thread thread_for(engine_pointer self, connection_role role) {
  auto& st = self->state;
  // Sessions that read in place may block all scheduler threads but one (database.cpp):
  // none is left to lend.
  if (st.cfg->engine != engine_kind::sqlite || role != connection_role::reader ||
      st.cfg->read_in_place)
    return connection_thread::dedicated;
  auto lent = std::count_if(st.all.begin(), st.all.end(), [](const member& m) {
    return m.thread == connection_thread::scheduled;
  });
  auto lendable = static_cast<std::ptrdiff_t>(self->system().scheduler().num_workers() / 2);
  return lent < lendable ? connection_thread::scheduled : connection_thread::dedicated;
}

connection_actor spawn_member(engine_pointer self, connection_role role) {
  auto& st = self->state;
  std::shared_ptr<driver> drv = st.factory(role);
  auto thread = thread_for(self, role);
  auto conn = spawn_connection(self->system(), drv, st.cfg, thread);
  // Monitored: a connection actor that dies is replaced (invariant 6).
  self->monitor(conn);
  auto expires = caf::timestamp::max();
  if (auto life = caf::timespan{st.cfg->pool_recycle}; life.count() > 0) {
    // Up to 10% earlier, so that connections opened together are not retired together.
    auto jitter = std::uniform_int_distribution<int64_t>{0, life.count() / 10}(st.random);
    expires = now() + life - caf::timespan{jitter};
  }
  size_t index = 0;
  while (index + 1 < st.pools.size() && st.pools[index].role != role)
    ++index;
  st.all.push_back(member{conn, std::move(drv), index, expires, now(), thread});
  return conn;
}

// Forgets a member; the statistics keep what its driver counted.
void forget_member(engine_state& st, std::vector<member>::iterator i) {
  if (i == st.all.end())
    return;
  st.pools[i->pool_index].cancelled += i->drv->deadline_cancels();
  st.all.erase(i);
}

void close_connection(engine_pointer self, const connection_actor& conn) {
  auto& st = self->state;
  forget_member(st, find_member(st, conn));
  self->demonitor(conn.address());
  self->send_exit(conn, caf::exit_reason::user_shutdown);
}

void watch(engine_pointer self, const caf::actor_addr& holder) {
  if (holder && self->state.monitored.insert(holder).second)
    self->monitor(holder);
}

lease grant(engine_pointer self, size_t index, connection_actor conn, const caf::actor_addr& holder,
            const checkout_request& req, caf::timespan waited) {
  auto& st = self->state;
  auto& p = st.pools[index];
  auto id = st.next_id++;
  p.in_use += 1;
  p.checkouts += 1;
  p.waits.add(waited);
  st.leases.emplace(id, lease_entry{index, conn, holder, now(), req.owner, req.revocable});
  return lease{id, std::move(conn)};
}

void open_connection(engine_pointer self, size_t index);

// Opens connections while the pool is below min_idle or has waiters no opening
// connection will serve (bounded by max).
void refill(engine_pointer self, size_t index) {
  auto& st = self->state;
  if (st.down)
    return;
  auto& p = st.pools[index];
  if (now() < p.full_until)
    return; // the server is full: the connections the pool has serve the waiters
  // Queued reads want one connection: it takes a batch of them.
  auto wanted = static_cast<int>(p.waiters.size()) + (p.reads.empty() ? 0 : 1);
  while (p.total < p.max && (p.total < p.min_idle || wanted > p.opening))
    open_connection(self, index);
}

// Takes a connection out of the pool: the engine closes it (recycled, reaped).
void retire(engine_pointer self, size_t index, const connection_actor& conn, const char* why) {
  auto& st = self->state;
  auto& p = st.pools[index];
  p.total -= 1;
  p.recycled += 1;
  st.log->debug("closing a {} connection: {}", p.name, why);
  close_connection(self, conn);
}

// A connection in an unknown state: never reused (DESIGN.md rule 4).
void discard(engine_pointer self, size_t index, const connection_actor& conn, const char* why) {
  auto& st = self->state;
  auto& p = st.pools[index];
  p.total -= 1;
  p.discarded += 1;
  st.log->warn("discarding a {} connection: {}", p.name, why);
  close_connection(self, conn);
  // The replacement doubles as a probe: if the server is gone, opening it fails and
  // the engine goes down instead of handing out more dead connections.
  if (!st.down && p.total < std::max(p.min_idle, 1) && p.total < p.max)
    open_connection(self, index);
  refill(self, index);
}

void dispatch_reads(engine_pointer self, size_t index, connection_actor conn);

// A connection is free again: the first waiter gets it, else it idles or closes.
void give_back(engine_pointer self, size_t index, connection_actor conn) {
  auto& st = self->state;
  auto& p = st.pools[index];
  auto m = find_member(st, conn);
  if (m == st.all.end()) {
    discard(self, index, conn, "its actor went down"); // invariant 6
    return;
  }
  if (now() >= m->expires) {
    retire(self, index, conn, "pool_recycle reached");
    refill(self, index);
    return;
  }
  if (!p.reads.empty() && (p.waiters.empty() || p.reads_turn)) {
    p.reads_turn = false;
    dispatch_reads(self, index, std::move(conn));
    return;
  }
  if (!p.waiters.empty()) {
    p.reads_turn = true;
    auto w = std::move(p.waiters.front());
    p.waiters.pop_front();
    w.promise.deliver(grant(self, index, std::move(conn), w.holder, w.request, now() - w.enqueued));
    return;
  }
  if (p.total > p.size || st.down) {
    p.total -= 1;
    close_connection(self, conn);
    return;
  }
  m->idle_since = now();
  p.idle.push_back(std::move(conn));
}

caf::error unavailable_error(const engine_state& st) {
  return make_error(errc::unavailable, "the " + st.role + " engine lost its server (" +
                                           st.down_reason +
                                           "); cafdb reconnects in the background, retry shortly "
                                           "(see status)");
}

void schedule_reconnect(engine_pointer self) {
  auto& st = self->state;
  st.backoff = st.backoff.count() == 0
                   ? caf::timespan{std::chrono::milliseconds(100)}
                   : std::min(st.backoff * 2, caf::timespan{std::chrono::seconds(2)});
  // +-20%: engines (and processes) that lost the same server do not retry in lockstep.
  auto spread = std::uniform_real_distribution<double>{0.8, 1.2}(st.random);
  auto delay =
      caf::timespan{static_cast<int64_t>(static_cast<double>(st.backoff.count()) * spread)};
  self->delayed_send(self, delay, retry_atom::value);
}

// The server is unreachable: stop handing out connections until it is back.
void mark_down(engine_pointer self, const caf::error& err) {
  auto& st = self->state;
  if (st.down)
    return;
  st.down = true;
  st.down_reason = describe(err).message;
  st.backoff = caf::timespan{0};
  st.log->error("the {} engine lost its server: {}; reconnecting", st.role, st.down_reason);
  publish(self, readiness_state::degraded, "lost the server: " + st.down_reason + "; reconnecting");
  auto refusal = unavailable_error(st);
  for (auto& p : st.pools) {
    // Idle connections to a lost server are dead: close them now, not at their next use.
    for (auto& conn : p.idle) {
      p.total -= 1;
      close_connection(self, conn);
    }
    p.idle.clear();
    auto waiters = std::move(p.waiters);
    p.waiters.clear();
    for (auto& w : waiters)
      w.promise.deliver(refusal);
    auto reads = std::move(p.reads);
    p.reads.clear();
    for (auto& r : reads)
      r.promise.deliver(refusal);
  }
  schedule_reconnect(self);
}

bool too_many_connections(const caf::error& err) {
  return describe(err).driver_code == "53300"; // the server is up but full
}

// Asks a new connection to open. The driver bounds its own connect by connect_timeout
// and says why it failed; this deadline only guards against a connection actor that died.
auto request_connect(engine_pointer self, const connection_actor& conn) {
  return self->request(conn, self->state.cfg->connect_timeout + std::chrono::seconds(1),
                       caf::connect_atom::value);
}

void open_connection(engine_pointer self, size_t index) {
  auto& st = self->state;
  auto& p = st.pools[index];
  p.total += 1;
  p.opening += 1;
  auto conn = spawn_member(self, p.role);
  request_connect(self, conn)
      .then(
          [=](caf::ok_atom) {
            auto& p = self->state.pools[index];
            p.opening -= 1;
            p.opened += 1;
            p.full_backoff = caf::timespan{0};
            give_back(self, index, conn);
          },
          [=](caf::error& err) {
            auto& st = self->state;
            auto& p = st.pools[index];
            p.opening -= 1;
            p.total -= 1;
            close_connection(self, conn);
            st.log->warn("opening a {} connection failed: {}", p.name, render(err));
            if (too_many_connections(err)) {
              // The server is up but full: not a lost server. Keep the connections that
              // work and open no more for a while (doubling up to 5 s); waiters are
              // served by the connections the pool has as they come back.
              p.server_full += 1;
              p.full_backoff =
                  p.full_backoff.count() == 0
                      ? caf::timespan{std::chrono::milliseconds(250)}
                      : std::min(p.full_backoff * 2, caf::timespan{std::chrono::seconds(5)});
              p.full_until = now() + p.full_backoff;
              self->delayed_send(self, p.full_backoff, caf::open_atom::value);
              if (p.total > 0)
                return;
              // No connection at all: the checkout that asked for this one learns why.
              if (!p.waiters.empty()) {
                auto w = std::move(p.waiters.front());
                p.waiters.pop_front();
                w.promise.deliver(err);
              } else if (!p.reads.empty()) {
                auto r = std::move(p.reads.front());
                p.reads.pop_front();
                r.promise.deliver(err);
              }
              return;
            }
            mark_down(self, err);
          });
}

// Rolls back whatever the connection has open, then pools it; discards it if the
// rollback fails or the connection stays silent past `within`.
void reset_then_pool(engine_pointer self, size_t index, connection_actor conn, caf::timespan within,
                     const char* why_discarded) {
  self->request(conn, within, caf::reset_atom::value)
      .then([=](caf::ok_atom) { give_back(self, index, conn); },
            [=](caf::error&) { discard(self, index, conn, why_discarded); });
}

// A request passed its deadline: cancel the statement on the server (the connection
// actor is blocked in it), then drain. `cancel` never blocks (PostgreSQL sends it from
// a thread of its own). The reset queues behind the cancelled request in the
// connection's mailbox, so its answer proves the connection is quiet again; and the
// driver starts no statement while a cancel is still on its way to the server, so a
// late cancel can never hit the next holder's statement.
void cancel_then_pool(engine_pointer self, size_t index, connection_actor conn) {
  auto& st = self->state;
  st.pools[index].cancelled += 1;
  st.log->warn("a {} connection outlived its request's deadline: cancelling the statement",
               st.pools[index].name);
  if (auto i = find_member(st, conn); i != st.all.end())
    i->drv->cancel();
  // Reaching the server again takes at most connect_timeout; beyond it the link is dead.
  reset_then_pool(self, index, conn, st.cfg->connect_timeout,
                  "it did not answer after its statement was cancelled");
}

// Answers every read of `batch` with its outcome from the connection; true when the
// outcomes say the connection's link broke.
bool deliver_outcomes(std::vector<read_waiter>& batch, std::vector<read_outcome>& outcomes) {
  bool broken = outcomes.size() != batch.size();
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& promise = batch[i].promise;
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

// Sends up to max_read_batch queued reads to `conn` in one message; each gets its own
// outcome. Afterwards the connection goes back to the pool; it is discarded when its
// link broke. The request itself has no timer: the engine's own deadline check
// (expire_atom) cancels a batch that runs too long, and one timer serves all batches.
void dispatch_reads(engine_pointer self, size_t index, connection_actor conn) {
  auto& st = self->state;
  auto& p = st.pools[index];
  auto n = std::min(p.reads.size(), max_read_batch);
  auto t = now();
  running_batch batch{{}, index, conn, caf::timespan{0}, t};
  batch.reads.reserve(n);
  std::vector<statement> stmts;
  stmts.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto r = std::move(p.reads.front());
    p.reads.pop_front();
    p.waits.add(t - r.enqueued);
    batch.limit = std::max(batch.limit, r.deadline);
    batch.deadline = t + batch.limit;
    stmts.push_back(std::move(r.stmt));
    batch.reads.push_back(std::move(r));
  }
  p.in_use += 1;
  p.checkouts += static_cast<int64_t>(n);
  auto batch_id = st.next_id++;
  if (batch.deadline < st.running_check) {
    st.running_check = batch.deadline;
    self->delayed_send(self, batch.deadline - t, expire_atom::value);
  }
  st.running_reads.emplace(batch_id, std::move(batch));
  // Takes the batch back; false when its deadline passed and it was answered already
  // (the connection then belongs to cancel_then_pool).
  auto take = [=](running_batch& out) {
    auto i = self->state.running_reads.find(batch_id);
    if (i == self->state.running_reads.end())
      return false;
    out = std::move(i->second);
    self->state.running_reads.erase(i);
    self->state.pools[index].in_use -= 1;
    return true;
  };
  self->request(conn, caf::infinite, read_atom::value, std::move(stmts))
      .then(
          [=](std::vector<read_outcome>& outcomes) {
            running_batch done;
            if (!take(done))
              return;
            if (deliver_outcomes(done.reads, outcomes))
              discard(self, index, conn, "its link broke during a batch of reads");
            else
              give_back(self, index, conn);
          },
          [=](caf::error& err) {
            running_batch done;
            if (!take(done))
              return;
            // The connection refused the batch (not open, read-only mode failed) or is gone.
            auto failure = err.category() == error_category
                               ? err
                               : make_error(errc::connection_lost,
                                            "the connection went away during the read (" +
                                                to_string(err) + "); retry the request");
            for (auto& r : done.reads)
              r.promise.deliver(failure);
            discard(self, index, conn, "it failed a batch of reads");
          });
}

// Batches past their deadline get statement_timeout and their connection is cancelled
// and drained; the check moves to the next deadline.
void cancel_overdue_reads(engine_pointer self, caf::timestamp t) {
  auto& st = self->state;
  if (st.running_check > t)
    return;
  auto next = caf::timestamp::max();
  for (auto i = st.running_reads.begin(); i != st.running_reads.end();) {
    if (i->second.deadline > t) {
      next = std::min(next, i->second.deadline);
      ++i;
      continue;
    }
    auto batch = std::move(i->second);
    i = st.running_reads.erase(i);
    st.pools[batch.pool_index].in_use -= 1;
    auto timeout = make_error(
        errc::statement_timeout,
        "the read did not finish within its deadline (" + std::to_string(ms(batch.limit)) +
            " ms); cafdb is cancelling it on the server, nothing was changed (a read). Raise "
            "request_timeout / statement_timeout, or make the query cheaper");
    for (auto& r : batch.reads)
      r.promise.deliver(timeout);
    cancel_then_pool(self, batch.pool_index, batch.connection);
  }
  st.running_check = next;
  if (next != caf::timestamp::max())
    self->delayed_send(self, next - t, expire_atom::value);
}

void reclaim_leases(engine_pointer self, const caf::actor_addr& holder) {
  auto& st = self->state;
  for (auto i = st.leases.begin(); i != st.leases.end();) {
    if (i->second.holder != holder) {
      ++i;
      continue;
    }
    auto entry = i->second;
    i = st.leases.erase(i);
    st.pools[entry.pool_index].in_use -= 1;
    st.log->warn("{} went down holding a {} connection: rolling back", entry.owner,
                 st.pools[entry.pool_index].name);
    reset_then_pool(self, entry.pool_index, entry.connection, st.cfg->statement_timeout,
                    "rollback after session loss failed");
  }
  for (auto& p : st.pools) {
    p.waiters.erase(std::remove_if(p.waiters.begin(), p.waiters.end(),
                                   [&](const waiter& w) { return w.holder == holder; }),
                    p.waiters.end());
    p.reads.erase(std::remove_if(p.reads.begin(), p.reads.end(),
                                 [&](const read_waiter& r) { return r.holder == holder; }),
                  p.reads.end());
  }
}

// A connection actor died on its own (invariant 6). Idle: forgotten and replaced now;
// leased or busy: forgotten now, and whoever holds it finds out at its next request.
void on_connection_down(engine_pointer self, const connection_actor& conn, const caf::error& why) {
  auto& st = self->state;
  forget_member(st, find_member(st, conn));
  for (size_t index = 0; index < st.pools.size(); ++index) {
    auto& p = st.pools[index];
    auto i = std::find(p.idle.begin(), p.idle.end(), conn);
    if (i == p.idle.end())
      continue;
    p.idle.erase(i);
    p.total -= 1;
    p.discarded += 1;
    st.log->warn("an idle {} connection went down ({}): replacing it", p.name, to_string(why));
    if (p.total < std::max(p.min_idle, 1))
      open_connection(self, index);
    return;
  }
}

// How a checkout finds an idle connection.
enum class idle_pick { none, ready, needs_ping };

// Pops the next usable idle connection into `conn`, retiring expired ones.
idle_pick pick_idle(engine_pointer self, size_t index, connection_actor& conn) {
  auto& st = self->state;
  auto& p = st.pools[index];
  while (!p.idle.empty()) {
    conn = std::move(p.idle.back());
    p.idle.pop_back();
    auto m = find_member(st, conn);
    if (m == st.all.end() || now() >= m->expires) {
      retire(self, index, conn, "pool_recycle reached");
      continue;
    }
    if (st.cfg->pool_pre_ping && now() - m->idle_since >= caf::timespan{st.cfg->pre_ping_after})
      return idle_pick::needs_ping;
    return idle_pick::ready;
  }
  return idle_pick::none;
}

// pool_pre_ping: a round trip on an idle connection before it is handed out. `alive`
// gets it if it answers; a dead one is discarded and `retry` looks for the next.
template <class Alive, class Retry>
void pre_ping(engine_pointer self, size_t index, connection_actor conn, Alive alive, Retry retry) {
  auto& st = self->state;
  st.pools[index].pinging += 1;
  self->request(conn, st.cfg->connect_timeout, ping_atom::value)
      .then(
          [=](caf::ok_atom) mutable {
            self->state.pools[index].pinging -= 1;
            alive(conn);
          },
          [=](caf::error& err) mutable {
            auto& p = self->state.pools[index];
            p.pinging -= 1;
            p.ping_failures += 1;
            self->state.log->warn("pool_pre_ping: an idle {} connection is dead ({})", p.name,
                                  describe(err).message);
            discard(self, index, conn, "it failed its pre-ping");
            retry();
          });
}

// Hands queued reads to idle connections, pinging first where pool_pre_ping asks.
void serve_reads(engine_pointer self, size_t index) {
  connection_actor conn;
  switch (pick_idle(self, index, conn)) {
  case idle_pick::ready:
    dispatch_reads(self, index, std::move(conn));
    return;
  case idle_pick::none:
    refill(self, index);
    return;
  case idle_pick::needs_ping:
    break;
  }
  pre_ping(
      self, index, std::move(conn), [=](connection_actor alive) { give_back(self, index, alive); },
      [=] { serve_reads(self, index); });
}

void enqueue(engine_pointer self, size_t index, waiter w) {
  auto& st = self->state;
  auto timeout =
      w.request.timeout.count() > 0 ? w.request.timeout : caf::timespan{st.cfg->pool_timeout};
  self->delayed_send(self, timeout, expire_atom::value, w.id);
  // Kept in id order (invariant 7): new waiters go last; one that comes back after a
  // failed pre-ping goes back to its place.
  auto& queue = st.pools[index].waiters;
  auto at = std::upper_bound(queue.begin(), queue.end(), w.id,
                             [](uint64_t id, const waiter& x) { return id < x.id; });
  queue.insert(at, std::move(w));
  refill(self, index);
}

// Serves `w` from the idle connections, pinging first where pool_pre_ping asks for
// it; queues it when there is none.
void serve(engine_pointer self, size_t index, waiter w) {
  auto& st = self->state;
  if (st.down) {
    w.promise.deliver(unavailable_error(st));
    return;
  }
  connection_actor conn;
  switch (pick_idle(self, index, conn)) {
  case idle_pick::ready:
    w.promise.deliver(grant(self, index, std::move(conn), w.holder, w.request, now() - w.enqueued));
    return;
  case idle_pick::none:
    enqueue(self, index, std::move(w));
    return;
  case idle_pick::needs_ping:
    break;
  }
  pre_ping(
      self, index, std::move(conn),
      [=](connection_actor alive) mutable {
        w.promise.deliver(
            grant(self, index, std::move(alive), w.holder, w.request, now() - w.enqueued));
      },
      [=]() mutable { serve(self, index, std::move(w)); });
}

void log_stats(engine_pointer self) {
  auto& st = self->state;
  for (auto& p : st.pools)
    st.log->info("{} engine, {}; checkouts {}, timeouts {}, discarded {}, reconnects {}, "
                 "recycled {}, wait p50/p95/p99 {}/{}/{} us",
                 st.role, counts(p), p.checkouts, p.timeouts, p.discarded, p.reconnects, p.recycled,
                 p.waits.percentile(0.5), p.waits.percentile(0.95), p.waits.percentile(0.99));
}

// Periodic work: recycle and reap idle connections, keep min_idle, watch leases.
void housekeeping(engine_pointer self) {
  auto& st = self->state;
  auto& cfg = *st.cfg;
  auto t = now();
  for (size_t index = 0; index < st.pools.size(); ++index) {
    auto& p = st.pools[index];
    auto idle = std::move(p.idle);
    p.idle.clear();
    for (auto& conn : idle) {
      auto m = find_member(st, conn);
      if (m == st.all.end() || t >= m->expires) {
        retire(self, index, conn, "pool_recycle reached");
      } else if (cfg.idle_timeout.count() > 0 && p.total > p.min_idle &&
                 t - m->idle_since >= caf::timespan{cfg.idle_timeout}) {
        retire(self, index, conn, "idle past idle_timeout");
      } else {
        p.idle.push_back(conn);
      }
    }
    refill(self, index);
  }
  for (auto& [id, entry] : st.leases) {
    auto age = t - entry.granted;
    auto& p = st.pools[entry.pool_index];
    if (cfg.leak_threshold.count() > 0 && !entry.warned &&
        age >= caf::timespan{cfg.leak_threshold}) {
      entry.warned = true;
      p.leaks += 1;
      st.log->warn("possible connection leak: {} (actor #{}) has held a {} connection for {} ms "
                   "(leak_threshold {} ms)",
                   entry.owner, entry.holder.id(), p.name, ms(age), cfg.leak_threshold.count());
    }
    if (cfg.lease_timeout.count() > 0 && entry.revocable && !entry.revoking &&
        age >= caf::timespan{cfg.lease_timeout}) {
      entry.revoking = true;
      p.reclaimed += 1;
      st.log->warn("reclaiming a {} connection from {} (actor #{}) after {} ms (lease_timeout): "
                   "the session is told and its transaction rolled back",
                   p.name, entry.owner, entry.holder.id(), ms(age));
      // The holder checks the lease in when its current request ends (each request has a
      // deadline); until then the connection stays its own (invariant 5).
      if (auto holder = caf::actor_cast<caf::actor>(entry.holder))
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

// How often housekeeping runs: a fraction of the shortest period it serves.
caf::timespan tick_period(const config& cfg) {
  caf::timespan tick{0};
  auto consider = [&](millis period, int fraction) {
    if (period.count() <= 0)
      return;
    auto candidate = caf::timespan{period} / fraction;
    tick = tick.count() == 0 ? candidate : std::min(tick, candidate);
  };
  consider(cfg.pool_recycle, 10);
  consider(cfg.idle_timeout, 4);
  consider(cfg.leak_threshold, 4);
  consider(cfg.lease_timeout, 4);
  consider(cfg.stats_interval, 1);
  if (cfg.min_idle > 0)
    consider(millis{1000}, 1);
  if (tick.count() == 0)
    return tick;
  return std::clamp(tick, caf::timespan{std::chrono::milliseconds(10)},
                    caf::timespan{std::chrono::seconds(1)});
}

pool_stats stats_of(const engine_state& st, const pool& p) {
  pool_stats out;
  out.engine = st.role;
  out.pool = p.name;
  out.size = p.size;
  out.max = p.max;
  out.total = p.total;
  out.idle = static_cast<int32_t>(p.idle.size());
  out.in_use = p.in_use;
  out.waiting = static_cast<int32_t>(p.waiters.size() + p.reads.size());
  out.checkouts = p.checkouts;
  out.timeouts = p.timeouts;
  out.discarded = p.discarded;
  out.opened = p.opened;
  out.cancelled = p.cancelled;
  for (auto& m : st.all)
    if (&st.pools[m.pool_index] == &p)
      out.cancelled += m.drv->deadline_cancels();
  out.reconnects = p.reconnects;
  out.recycled = p.recycled;
  out.ping_failures = p.ping_failures;
  out.server_full = p.server_full;
  out.leaks = p.leaks;
  out.reclaimed = p.reclaimed;
  out.wait_p50_us = p.waits.percentile(0.5);
  out.wait_p95_us = p.waits.percentile(0.95);
  out.wait_p99_us = p.waits.percentile(0.99);
  return out;
}

engine_actor::behavior_type engine_behavior(engine_pointer self, std::string role,
                                            std::shared_ptr<const config> cfg,
                                            driver_factory factory, database_actor db) {
  auto& st = self->state;
  st.role = std::move(role);
  st.cfg = std::move(cfg);
  st.factory = std::move(factory);
  st.db = std::move(db);
  st.log = log::get("engine");
  auto& c = *st.cfg;
  if (c.in_memory()) {
    st.pools.push_back(make_pool("shared", connection_role::shared, 1, 1, 0));
  } else if (c.engine == engine_kind::sqlite) {
    st.pools.push_back(make_pool("writer", connection_role::writer, 1, 1, 0));
    st.pools.push_back(make_pool("reader", connection_role::reader, c.pool_size,
                                 c.pool_size + c.max_overflow, c.min_idle));
  } else {
    // PostgreSQL: one pool; the reader engine's connections refuse writes.
    auto role = st.role == "reader" ? connection_role::reader : connection_role::shared;
    st.pools.push_back(make_pool(st.role == "reader" ? "reader" : "shared", role, c.pool_size,
                                 c.pool_size + c.max_overflow, c.min_idle));
  }
  st.tick = tick_period(c);
  st.last_stats_log = now();
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto& m : st.all)
      if (m.connection.address() == dm.source) {
        on_connection_down(self, m.connection, dm.reason);
        return;
      }
    st.monitored.erase(dm.source);
    reclaim_leases(self, dm.source);
  });
  return {
      [=](caf::connect_atom) -> caf::result<caf::ok_atom> {
        // Setup's connectivity check: open the first connection of the main pool.
        auto& st = self->state;
        auto& main = st.pools[0];
        if (!main.idle.empty() || main.in_use > 0)
          return caf::ok_atom::value;
        st.attempts += 1;
        publish(self, readiness_state::connecting, "opening the first connection");
        auto rp = self->make_response_promise<caf::ok_atom>();
        main.total += 1;
        main.opening += 1;
        auto conn = spawn_member(self, main.role);
        request_connect(self, conn)
            .then(
                [=](caf::ok_atom) mutable {
                  auto& st = self->state;
                  auto& main = st.pools[0];
                  main.opening -= 1;
                  main.opened += 1;
                  give_back(self, 0, conn);
                  publish(self, readiness_state::ready, "connected");
                  // Warm the pools (min_idle) and start housekeeping, once.
                  for (size_t index = 0; index < st.pools.size(); ++index)
                    refill(self, index);
                  if (st.tick.count() > 0 && main.opened == 1)
                    self->delayed_send(self, st.tick, tick_atom::value);
                  rp.deliver(caf::ok_atom::value);
                },
                [=](caf::error& err) mutable {
                  auto& st = self->state;
                  st.pools[0].opening -= 1;
                  st.pools[0].total -= 1;
                  close_connection(self, conn);
                  // Setup decides when to give up; until then this is one failed attempt.
                  publish(self, readiness_state::connecting,
                          "attempt " + std::to_string(st.attempts) +
                              " failed: " + describe(err).message);
                  rp.deliver(err);
                });
        return rp;
      },
      [=](checkout_atom, checkout_request& req) -> caf::result<lease> {
        auto& st = self->state;
        if (st.down)
          return unavailable_error(st);
        auto index = pool_for(st, req.read_only);
        auto& p = st.pools[index];
        auto holder = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (p.idle.empty() && total_waiting(st) >= st.cfg->max_pending)
          return overloaded_error(st, p);
        watch(self, holder);
        // The common case answers directly: an idle connection that needs no ping.
        connection_actor conn;
        auto pick = pick_idle(self, index, conn);
        if (pick == idle_pick::ready)
          return grant(self, index, std::move(conn), holder, req, caf::timespan{0});
        if (pick == idle_pick::needs_ping)
          p.idle.push_back(std::move(conn)); // serve() takes it again and pings it
        auto rp = self->make_response_promise<lease>();
        serve(self, index, waiter{st.next_id++, rp, holder, now(), std::move(req)});
        return rp;
      },
      [=](read_atom, statement& stmt, caf::timespan wait,
          caf::timespan deadline) -> caf::result<result_set> {
        auto& st = self->state;
        if (st.down)
          return unavailable_error(st);
        auto index = pool_for(st, true);
        auto& p = st.pools[index];
        if (p.idle.empty() && total_waiting(st) >= st.cfg->max_pending)
          return overloaded_error(st, p);
        auto holder = caf::actor_cast<caf::actor_addr>(self->current_sender());
        watch(self, holder);
        auto rp = self->make_response_promise<result_set>();
        auto id = st.next_id++;
        auto t = now();
        auto expires = t + (wait.count() > 0 ? wait : caf::timespan{st.cfg->pool_timeout});
        p.reads.push_back(read_waiter{id, rp, holder, t, std::move(stmt), deadline, expires});
        serve_reads(self, index);
        // Still queued (no idle connection, or one being pinged): it may time out. One
        // timer serves every queued read (a timer per read costs the clock thread a
        // wake-up each): it is moved only when this read expires before it.
        if (!p.reads.empty() && p.reads.back().id == id && expires < p.reads_check) {
          p.reads_check = expires;
          self->delayed_send(self, expires - t, expire_atom::value);
        }
        return rp;
      },
      [=](checkin_atom, uint64_t lease_id, connection_condition condition) {
        auto& st = self->state;
        auto i = st.leases.find(lease_id);
        if (i == st.leases.end())
          return; // reclaimed already (its holder went down first)
        auto entry = i->second;
        st.leases.erase(i);
        st.pools[entry.pool_index].in_use -= 1;
        auto index = entry.pool_index;
        auto conn = entry.connection;
        // A reclaimed lease may come back as clean from a holder that never learned of
        // it: its statement was cancelled, so roll back whatever is left.
        if (entry.revoking && condition == connection_condition::clean)
          condition = connection_condition::needs_rollback;
        switch (condition) {
        case connection_condition::clean:
          give_back(self, index, conn);
          break;
        case connection_condition::needs_rollback:
          reset_then_pool(self, index, conn, st.cfg->statement_timeout,
                          "rollback at check-in failed");
          break;
        case connection_condition::running:
          cancel_then_pool(self, index, conn);
          break;
        case connection_condition::broken:
          discard(self, index, conn, "returned in an unknown state");
          break;
        }
      },
      [=](stats_atom) {
        auto& st = self->state;
        std::vector<pool_stats> out;
        for (auto& p : st.pools)
          out.push_back(stats_of(st, p));
        return out;
      },
      [=](expire_atom, uint64_t waiter_id) {
        // Every queued checkout gets this message, served or not: with thousands
        // waiting, finding it must not cost a scan (invariant 7: binary search).
        for (auto& p : self->state.pools) {
          auto i = std::lower_bound(p.waiters.begin(), p.waiters.end(), waiter_id,
                                    [](const waiter& w, uint64_t id) { return w.id < id; });
          if (i == p.waiters.end() || i->id != waiter_id)
            continue;
          // Counted before this waiter leaves the queue: the message shows what it saw.
          auto message = "no connection became free within pool_timeout (" + counts(p) +
                         "); raise pool_size or max_overflow, or hold connections for shorter";
          auto w = std::move(*i);
          p.waiters.erase(i);
          p.timeouts += 1;
          w.promise.deliver(make_error(errc::pool_timeout, std::move(message)));
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
          auto message = "no connection became free within pool_timeout (" + counts(p) +
                         "); raise pool_size or max_overflow, or make reads cheaper";
          auto next = caf::timestamp::max();
          for (auto i = p.reads.begin(); i != p.reads.end();) {
            if (i->expires > t) {
              next = std::min(next, i->expires);
              ++i;
              continue;
            }
            p.timeouts += 1;
            i->promise.deliver(make_error(errc::pool_timeout, message));
            i = p.reads.erase(i);
          }
          p.reads_check = next;
          if (next != caf::timestamp::max())
            self->delayed_send(self, next - t, expire_atom::value);
        }
      },
      [=](tick_atom) { housekeeping(self); },
      [=](caf::open_atom) {
        for (size_t index = 0; index < self->state.pools.size(); ++index)
          refill(self, index);
      },
      [=](shutdown_atom) {
        // The database's shutdown_timeout passed: whatever still runs is cancelled, so
        // that every session gets its answer and can roll back and close.
        auto& st = self->state;
        st.log->warn("shutdown_timeout passed: cancelling {} running request(s)",
                     st.leases.size() + st.running_reads.size());
        st.cancel_everything("the database is stopping (shutdown_timeout passed)");
      },
      [=](retry_atom) {
        // Reconnect: one probe connection in the main pool.
        auto& st = self->state;
        if (!st.down)
          return;
        st.attempts += 1;
        auto& main = st.pools[0];
        main.total += 1;
        main.opening += 1;
        auto conn = spawn_member(self, main.role);
        request_connect(self, conn)
            .then(
                [=](caf::ok_atom) {
                  auto& st = self->state;
                  auto& main = st.pools[0];
                  main.opening -= 1;
                  main.opened += 1;
                  main.reconnects += 1;
                  st.down = false;
                  st.log->warn("the {} engine reconnected after {} attempt(s)", st.role,
                               st.attempts);
                  publish(self, readiness_state::ready, "reconnected");
                  give_back(self, 0, conn);
                  for (size_t index = 0; index < st.pools.size(); ++index)
                    refill(self, index);
                },
                [=](caf::error& err) {
                  auto& st = self->state;
                  st.pools[0].opening -= 1;
                  st.pools[0].total -= 1;
                  close_connection(self, conn);
                  auto reason = describe(err).message;
                  if (reason != st.down_reason) {
                    st.down_reason = reason;
                    publish(self, readiness_state::degraded,
                            "lost the server: " + reason + "; reconnecting");
                  }
                  schedule_reconnect(self);
                });
      },
  };
}

} // namespace

engine_actor spawn_engine(caf::actor_system& sys, std::string role,
                          std::shared_ptr<const config> cfg, driver_factory factory,
                          database_actor db) {
  return sys.spawn(engine_behavior, std::move(role), std::move(cfg), std::move(factory),
                   std::move(db));
}

driver_factory default_driver_factory(std::shared_ptr<const config> cfg, const std::string& role) {
  if (cfg->engine == engine_kind::postgresql) {
    bool reader = role == "reader";
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
