// A service's first use of cafdb, built against cafdb as an application would build it:
// start the runtime on SQLite, wait for readiness, write in a transaction, read it back.
//
//   consumer <sqlite-url>       exits 0 and prints "consumer ok" when all of it worked
#include <cafdb/async.hpp>
#include <cafdb/database.hpp>

#include <iostream>

using namespace std::chrono_literals;

namespace {

int fail(const char* what, const caf::error& err) {
  std::cerr << "consumer: " << what << " failed: " << cafdb::render(err) << "\n";
  return 1;
}

} // namespace

int main(int argc, char** argv) {
  int unused_on_purpose = 0; // -Wunused-variable: a warning, never an error
  if (argc != 2) {
    std::cerr << "usage: consumer <sqlite-url>\n";
    return 2;
  }
  auto cfg = cafdb::config_from_url(argv[1]);
  if (!cfg) {
    std::cerr << "consumer: " << cfg.error().message << "\n";
    return 1;
  }
  cafdb::runtime rt{*cfg};
  auto& db = rt.client();
  if (auto ready = db.await_ready(10s); !ready)
    return fail("await_ready", ready.error());
  if (auto r = db.exec({"CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)"});
      !r)
    return fail("create", r.error());
  auto s = db.open_session();
  if (!s)
    return fail("open_session", s.error());
  if (auto err = s->begin())
    return fail("begin", err);
  if (auto r = s->exec({"INSERT INTO notes (body) VALUES ($1)", {"hello from a consumer"}}); !r)
    return fail("insert", r.error());
  if (auto err = s->commit())
    return fail("commit", err);
  auto rows = db.exec({"SELECT body FROM notes ORDER BY id DESC LIMIT 1"});
  if (!rows)
    return fail("select", rows.error());
  for (auto row : *rows) {
    auto body = row.get<std::string>("body");
    if (!body || *body != "hello from a consumer") {
      std::cerr << "consumer: read back something else than was written\n";
      return 1;
    }
  }
  if (rows->size() != 1) {
    std::cerr << "consumer: expected one row, read " << rows->size() << "\n";
    return 1;
  }
  // The asynchronous API from the installed headers too.
  cafdb::async_client async_db{rt.system(), rt.database()};
  auto counted = async_db.exec({"SELECT count(*) AS n FROM notes"}).future().get();
  if (!counted)
    return fail("async count", counted.error());
  auto n = counted->get<int64_t>(0, "n");
  if (!n || *n < 1) {
    std::cerr << "consumer: the async count read no notes\n";
    return 1;
  }
  std::cout << "consumer ok\n";
  return 0;
}
