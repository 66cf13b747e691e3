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
//            open ok                checkout                 checkin(clean)
//  opening ─────────► idle ──────────────────────► leased ─────────────────► idle
//     │                ▲                             │  checkin(needs_rollback): reset ok
//     │ open fails     └─────────────────────────────┤
//     ▼                                              │  checkin(broken) / reset fails /
//   gone ◄───────────────────────────────────────────┘  lease holder dies and reset fails
//
// Transitions: opening -> idle [open_connection]; idle -> leased [checkout, give_back];
// leased -> idle [checkin, reclaim_leases]; leased -> gone [discard].
//
// Invariants:
// 1. A pool never has idle connections and waiters at the same time.
// 2. total = idle + leased + opening, and total <= max.
// 3. Every lease belongs to a session the engine monitors; when it goes down, its
//    leases are reset and come back (or are discarded), its queued checkouts are dropped.
// 4. Every waiter is answered exactly once: a lease, pool_timeout at its deadline, or
//    shutting_down when the engine quits.
#include "actors/engine.hpp"

#include <deque>
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

struct waiter {
  uint64_t id;
  caf::typed_response_promise<lease> promise;
  caf::actor_addr session;
};

struct pool {
  std::string name;
  connection_role role = connection_role::shared;
  int size = 1;
  int max = 1;
  int total = 0;
  int opening = 0;
  int in_use = 0;
  std::vector<connection_actor> idle;
  std::deque<waiter> waiters;
  int64_t checkouts = 0;
  int64_t timeouts = 0;
  int64_t discarded = 0;
  int64_t opened = 0;
  int64_t cancelled = 0;
};

// A connection actor and its driver: the engine keeps the driver to cancel a
// statement from outside the connection's thread (driver::interrupt).
struct member {
  connection_actor connection;
  std::shared_ptr<driver> drv;
};

struct lease_entry {
  size_t pool_index;
  connection_actor connection;
  caf::actor_addr session;
};

struct engine_state {
  static inline const char* name = "cafdb.engine";
  std::string role;
  std::shared_ptr<const config> cfg;
  driver_factory factory;
  database_actor db;
  std::vector<pool> pools;
  std::unordered_map<uint64_t, lease_entry> leases;
  std::unordered_set<caf::actor_addr> monitored;
  std::vector<member> all; // every connection spawned and not yet gone
  uint64_t next_id = 1;
  int32_t attempts = 0;
  std::shared_ptr<spdlog::logger> log;

  // Runs on every exit path (CAF 0.17 destroys the state before attach_functor
  // cleanups run): keeps (4) and takes every connection down with the engine.
  ~engine_state() {
    for (auto& p : pools)
      for (auto& w : p.waiters)
        w.promise.deliver(
            make_error(errc::shutting_down, "the engine stopped while this checkout was waiting"));
    for (auto& m : all)
      caf::anon_send_exit(m.connection, caf::exit_reason::user_shutdown);
  }
};

using engine_pointer = engine_actor::stateful_pointer<engine_state>;

pool make_pool(std::string name, connection_role role, int size, int max) {
  pool p;
  p.name = std::move(name);
  p.role = role;
  p.size = size;
  p.max = max;
  return p;
}

size_t pool_for(const engine_state& st, bool read_only) {
  return read_only && st.pools.size() > 1 ? 1 : 0;
}

int total_waiting(const engine_state& st) {
  int n = 0;
  for (auto& p : st.pools)
    n += static_cast<int>(p.waiters.size());
  return n;
}

std::string counts(const pool& p) {
  return p.name + " pool: " + std::to_string(p.total) + " total, " + std::to_string(p.in_use) +
         " in use, " + std::to_string(p.idle.size()) + " idle, " +
         std::to_string(p.waiters.size()) + " waiting";
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

void forget(engine_state& st, const connection_actor& conn) {
  auto i = find_member(st, conn);
  if (i != st.all.end())
    st.all.erase(i);
}

connection_actor spawn_member(engine_pointer self, connection_role role) {
  auto& st = self->state;
  std::shared_ptr<driver> drv = st.factory(role);
  auto conn = spawn_connection(self->system(), drv, st.cfg);
  st.all.push_back(member{conn, std::move(drv)});
  return conn;
}

void close_connection(engine_state& st, const connection_actor& conn) {
  forget(st, conn);
  caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
}

void watch(engine_pointer self, const caf::actor_addr& session) {
  if (session && self->state.monitored.insert(session).second)
    self->monitor(session);
}

lease grant(engine_pointer self, size_t index, connection_actor conn,
            const caf::actor_addr& session) {
  auto& st = self->state;
  auto& p = st.pools[index];
  auto id = st.next_id++;
  p.in_use += 1;
  p.checkouts += 1;
  st.leases.emplace(id, lease_entry{index, conn, session});
  return lease{id, std::move(conn)};
}

void open_connection(engine_pointer self, size_t index);

// A connection is free again: the first waiter gets it, else it idles or (overflow) closes.
void give_back(engine_pointer self, size_t index, connection_actor conn) {
  auto& st = self->state;
  auto& p = st.pools[index];
  if (!p.waiters.empty()) {
    auto w = std::move(p.waiters.front());
    p.waiters.pop_front();
    w.promise.deliver(grant(self, index, std::move(conn), w.session));
    return;
  }
  if (p.total > p.size) {
    p.total -= 1;
    close_connection(st, conn);
    return;
  }
  p.idle.push_back(std::move(conn));
}

// A connection in an unknown state: never reused (DESIGN.md rule 4).
void discard(engine_pointer self, size_t index, const connection_actor& conn, const char* why) {
  auto& st = self->state;
  auto& p = st.pools[index];
  p.total -= 1;
  p.discarded += 1;
  st.log->warn("discarding a {} connection: {}", p.name, why);
  close_connection(st, conn);
  if (!p.waiters.empty() && p.total < p.max)
    open_connection(self, index);
}

void fail_first_waiter(engine_pointer self, size_t index, const caf::error& err) {
  auto& p = self->state.pools[index];
  if (p.waiters.empty())
    return;
  auto w = std::move(p.waiters.front());
  p.waiters.pop_front();
  w.promise.deliver(err);
}

void open_connection(engine_pointer self, size_t index) {
  auto& st = self->state;
  auto& p = st.pools[index];
  p.total += 1;
  p.opening += 1;
  auto conn = spawn_member(self, p.role);
  self->request(conn, st.cfg->connect_timeout, caf::connect_atom::value)
      .then(
          [=](caf::ok_atom) {
            auto& p = self->state.pools[index];
            p.opening -= 1;
            p.opened += 1;
            give_back(self, index, conn);
          },
          [=](caf::error& err) {
            auto& st = self->state;
            auto& p = st.pools[index];
            p.opening -= 1;
            p.total -= 1;
            close_connection(st, conn);
            st.log->warn("opening a {} connection failed: {}", p.name, render(err));
            // The checkout that asked for this connection learns why it cannot have one.
            fail_first_waiter(self, index, err);
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
// actor is blocked in it), then drain. The reset queues behind the cancelled request
// in the connection's mailbox, so its answer proves the connection is quiet again.
void cancel_then_pool(engine_pointer self, size_t index, connection_actor conn) {
  auto& st = self->state;
  if (auto i = find_member(st, conn); i != st.all.end()) {
    // PQcancel opens a connection of its own and may block: never on the engine's thread.
    auto interrupter = [](caf::blocking_actor*, std::shared_ptr<driver> drv) { drv->interrupt(); };
    self->system().spawn<caf::detached>(interrupter, i->drv);
  }
  st.pools[index].cancelled += 1;
  st.log->warn("a {} connection outlived its request's deadline: cancelling the statement",
               st.pools[index].name);
  // Reaching the server again takes at most connect_timeout; beyond it the link is dead.
  reset_then_pool(self, index, conn, st.cfg->connect_timeout,
                  "it did not answer after its statement was cancelled");
}

void reclaim_leases(engine_pointer self, const caf::actor_addr& session) {
  auto& st = self->state;
  for (auto i = st.leases.begin(); i != st.leases.end();) {
    if (i->second.session != session) {
      ++i;
      continue;
    }
    auto entry = i->second;
    i = st.leases.erase(i);
    st.pools[entry.pool_index].in_use -= 1;
    st.log->warn("session went down holding a {} connection: rolling back",
                 st.pools[entry.pool_index].name);
    reset_then_pool(self, entry.pool_index, entry.connection, st.cfg->statement_timeout,
                    "rollback after session loss failed");
  }
  for (auto& p : st.pools)
    p.waiters.erase(std::remove_if(p.waiters.begin(), p.waiters.end(),
                                   [&](const waiter& w) { return w.session == session; }),
                    p.waiters.end());
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
  if (st.cfg->in_memory()) {
    st.pools.push_back(make_pool("shared", connection_role::shared, 1, 1));
  } else if (st.cfg->engine == engine_kind::sqlite) {
    st.pools.push_back(make_pool("writer", connection_role::writer, 1, 1));
    st.pools.push_back(make_pool("reader", connection_role::reader, st.cfg->pool_size,
                                 st.cfg->pool_size + st.cfg->max_overflow));
  } else {
    // PostgreSQL: one pool; the reader engine's connections refuse writes.
    auto role = st.role == "reader" ? connection_role::reader : connection_role::shared;
    st.pools.push_back(make_pool(st.role == "reader" ? "reader" : "shared", role, st.cfg->pool_size,
                                 st.cfg->pool_size + st.cfg->max_overflow));
  }
  self->set_down_handler([=](caf::down_msg& dm) {
    self->state.monitored.erase(dm.source);
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
        self->request(conn, st.cfg->connect_timeout, caf::connect_atom::value)
            .then(
                [=](caf::ok_atom) mutable {
                  auto& main = self->state.pools[0];
                  main.opening -= 1;
                  main.opened += 1;
                  give_back(self, 0, conn);
                  publish(self, readiness_state::ready, "connected");
                  rp.deliver(caf::ok_atom::value);
                },
                [=](caf::error& err) mutable {
                  auto& st = self->state;
                  st.pools[0].opening -= 1;
                  st.pools[0].total -= 1;
                  close_connection(st, conn);
                  // Setup decides when to give up; until then this is one failed attempt.
                  publish(self, readiness_state::connecting,
                          "attempt " + std::to_string(st.attempts) +
                              " failed: " + describe(err).message);
                  rp.deliver(err);
                });
        return rp;
      },
      [=](checkout_atom, const checkout_request& req) -> caf::result<lease> {
        auto& st = self->state;
        auto index = pool_for(st, req.read_only);
        auto& p = st.pools[index];
        auto session = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (!p.idle.empty()) {
          watch(self, session);
          auto conn = std::move(p.idle.back());
          p.idle.pop_back();
          return grant(self, index, std::move(conn), session);
        }
        if (total_waiting(st) >= st.cfg->max_pending)
          return make_error(errc::pool_overloaded,
                            "too many checkouts are already waiting (max_pending = " +
                                std::to_string(st.cfg->max_pending) + ", " + counts(p) +
                                "); retry later or raise max_pending / pool_size");
        watch(self, session);
        auto id = st.next_id++;
        auto rp = self->make_response_promise<lease>();
        p.waiters.push_back(waiter{id, rp, session});
        if (p.total < p.max)
          open_connection(self, index);
        auto timeout = req.timeout.count() > 0 ? req.timeout : caf::timespan{st.cfg->pool_timeout};
        self->delayed_send(self, timeout, expire_atom::value, id);
        return rp;
      },
      [=](checkin_atom, uint64_t lease_id, connection_condition condition) {
        auto& st = self->state;
        auto i = st.leases.find(lease_id);
        if (i == st.leases.end())
          return; // reclaimed already (its session went down first)
        auto entry = i->second;
        st.leases.erase(i);
        st.pools[entry.pool_index].in_use -= 1;
        auto index = entry.pool_index;
        auto conn = entry.connection;
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
          out.push_back(pool_stats{st.role, p.name, p.size, p.max, p.total,
                                   static_cast<int32_t>(p.idle.size()), p.in_use,
                                   static_cast<int32_t>(p.waiters.size()), p.checkouts, p.timeouts,
                                   p.discarded, p.opened, p.cancelled});
        return out;
      },
      [=](expire_atom, uint64_t waiter_id) {
        for (auto& p : self->state.pools) {
          auto i = std::find_if(p.waiters.begin(), p.waiters.end(),
                                [&](const waiter& w) { return w.id == waiter_id; });
          if (i == p.waiters.end())
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
    // Given first, so that a connect_timeout in the URL overrides it.
    auto seconds = std::max<int64_t>(1, (cfg->connect_timeout.count() + 999) / 1000);
    options.conninfo = "connect_timeout=" + std::to_string(seconds) + " " +
                       (reader ? cfg->read_conninfo : cfg->conninfo);
    options.display = reader ? cfg->read_display : cfg->display;
    options.statement_timeout = cfg->statement_timeout;
    return [options](connection_role conn_role) -> std::unique_ptr<driver> {
      return std::make_unique<pg_driver>(options, conn_role);
    };
  }
  return [cfg](connection_role conn_role) -> std::unique_ptr<driver> {
    sqlite_options options;
    options.path = cfg->path;
    options.create_if_missing = cfg->create_if_missing;
    options.busy_timeout = cfg->busy_timeout;
    return std::make_unique<sqlite_driver>(std::move(options), conn_role);
  };
}

} // namespace cafdb
