// Readiness: an application that takes requests before its database is ready.
//
// The database file does not exist when the program starts, and the database is
// opened with `mode=rw`, so setup cannot connect yet: it retries with backoff and
// publishes every attempt. A provisioner creates the file a little later (think of a
// volume being mounted or a restore finishing). Meanwhile the application actor:
//   - prints every readiness event it is subscribed to,
//   - queues up to 3 requests while the database is not ready,
//   - answers further ones honestly with "503 not ready" instead of hanging,
//   - serves the queue the moment the database publishes `ready`.
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>

#include <caf/all.hpp>

#include "cafdb/database.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int total_requests = 8;
constexpr size_t max_queued = 3;
constexpr const char* db_file = "readiness-demo.db";

struct app_state {
  bool ready = false;
  std::deque<int> queue;
  int answered = 0;
};

void log(const std::string& line) {
  auto now = std::chrono::steady_clock::now().time_since_epoch();
  static auto start = now;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count();
  std::printf("[%5lld ms] %s\n", static_cast<long long>(ms), line.c_str());
  std::fflush(stdout);
}

caf::behavior application(caf::stateful_actor<app_state>* self, cafdb::database_actor db,
                          caf::actor done) {
  auto answer = [=](int id, const std::string& text) {
    log("request " + std::to_string(id) + " -> " + text);
    if (++self->state.answered == total_requests)
      self->anon_send(done, caf::ok_atom::value);
  };
  auto serve = [=](int id) {
    self->request(db, 10s, cafdb::exec_atom::value,
                  cafdb::statement{"SELECT $1 * 10 AS result", {id}}, cafdb::session_options{})
        .then([=](cafdb::result_set& r) { answer(id, "200 " + r.rows[0][0].as_text()); },
              [=](caf::error& err) { answer(id, "500 " + cafdb::render(err)); });
  };
  self->request(db, 5s, caf::subscribe_atom::value, caf::actor_cast<caf::actor>(self))
      .then(
          [=](cafdb::readiness_snapshot& snap) {
            log("subscribed; database is " + cafdb::to_string(snap.state));
            self->state.ready = snap.state == cafdb::readiness_state::ready;
          },
          [=](caf::error& err) { log("subscribe failed: " + cafdb::render(err)); });
  return {
      [=](cafdb::readiness_event& ev) {
        log("event: " + ev.component + " is " + cafdb::to_string(ev.state) +
            (ev.detail.empty() ? "" : " (" + ev.detail + ")"));
        if (ev.component == "database" && ev.state == cafdb::readiness_state::ready) {
          self->state.ready = true;
          log("database ready: serving " + std::to_string(self->state.queue.size()) +
              " queued request(s)");
          for (auto id : self->state.queue)
            serve(id);
          self->state.queue.clear();
        }
      },
      [=](caf::get_atom, int id) {
        auto& st = self->state;
        if (st.ready)
          return serve(id);
        if (st.queue.size() < max_queued) {
          st.queue.push_back(id);
          log("request " + std::to_string(id) + " queued (" + std::to_string(st.queue.size()) +
              " waiting for the database)");
          return;
        }
        answer(id, "503 not ready, retry later (queue full)");
      },
  };
}

// Takes the path as an argument (CAF 0.17 also trips UBSan on function actors
// spawned without arguments).
caf::behavior provisioner(caf::event_based_actor* self, std::string path) {
  return {
      [=](caf::put_atom) {
        std::ofstream{path}; // an empty file is a valid, empty SQLite database
        log("provisioner: created " + path);
        self->quit();
      },
  };
}

} // namespace

int main() {
  for (auto suffix : {"", "-wal", "-shm"})
    std::remove((std::string{db_file} + suffix).c_str());
  auto cfg = cafdb::config_from_url(std::string{"sqlite:///"} + db_file + "?mode=rw");
  if (!cfg) {
    std::cerr << cfg.error().message << "\n";
    return 1;
  }
  cfg->setup_timeout = 30s;
  caf::actor_system_config sys_cfg;
  cafdb::add_types(sys_cfg);
  caf::actor_system sys{sys_cfg};
  auto db = cafdb::spawn_database(sys, *cfg);
  int rc = 0;
  {
    caf::scoped_actor self{sys};
    auto app = sys.spawn(application, db, caf::actor_cast<caf::actor>(self));
    // Requests arrive every 150 ms; the file appears after 700 ms.
    for (int id = 1; id <= total_requests; ++id)
      caf::delayed_anon_send(app, id * 150ms, caf::get_atom::value, id);
    caf::delayed_anon_send(sys.spawn(provisioner, std::string{db_file}), 700ms,
                           caf::put_atom::value);
    self->receive([](caf::ok_atom) { log("all requests answered"); },
                  caf::after(30s) >>
                      [&] {
                        log("timed out waiting for answers");
                        rc = 1;
                      });
    self->send_exit(app, caf::exit_reason::user_shutdown);
    cafdb::client{sys, db, 10s}.stop();
  }
  return rc;
}
