// cafdb on PostgreSQL with a writer and a read replica: configuration comes from the
// environment (or a .env file), writes go to the primary, read-only work to the
// replica, and every answer says which server gave it.
//
//   export CAFDB_URL=postgresql://app:secret@primary:5432/app
//   export CAFDB_READ_URL=postgresql://app:secret@replica:5432/app
//   postgres_read_write
//
//   postgres_read_write path/to/.env     (variables in the file; the environment wins)
//
// Instead of CAFDB_URL, DB_USERNAME, DB_PASSWORD, DB_HOST, DB_PORT and DB_NAME work too.
#include <iostream>
#include <thread>

#include "cafdb/database.hpp"

using namespace std::chrono_literals;

namespace {

void step(const std::string& text) {
  std::cout << "\n== " << text << "\n";
}

template <class T>
T must(caf::expected<T> x, const char* what) {
  if (!x) {
    std::cerr << what << " failed: " << cafdb::render(x.error()) << "\n";
    std::exit(1);
  }
  return std::move(*x);
}

cafdb::session_options read_only() {
  cafdb::session_options options;
  options.read_only = true;
  return options;
}

// Asks the server that runs the query who it is.
const cafdb::statement who_answers{
    "SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby"};

std::string server_name(const cafdb::result_set& r) {
  auto& row = r.rows.at(0);
  return std::string{row.at(1).as_bool() ? "standby" : "primary"} + " on port " +
         std::to_string(row.at(0).as_int());
}

} // namespace

int main(int argc, char** argv) {
  auto cfg = cafdb::config_from_env(argc > 1 ? argv[1] : "");
  if (!cfg) {
    std::cerr << "configuration: " << cfg.error().message << "\n";
    return 2;
  }
  if (cfg->engine != cafdb::engine_kind::postgresql) {
    std::cerr << "this example needs PostgreSQL: set CAFDB_URL=postgresql://... (and "
                 "CAFDB_READ_URL for a replica)\n";
    return 2;
  }

  step("1. Start: a writer engine, and a reader engine if CAFDB_READ_URL is set");
  cafdb::runtime rt{*cfg};
  auto& db = rt.client();
  // `display` is the endpoint without the password: safe to print.
  std::cout << "   writer: " << cfg->display << "\n";
  std::cout << "   reader: "
            << (cfg->read_url.empty() ? "(none: reads use the writer)" : cfg->read_display) << "\n";
  must(db.await_ready(30s), "waiting for readiness");

  step("2. Write through the writer");
  must(db.exec({"CREATE TABLE IF NOT EXISTS rw_demo (id BIGSERIAL PRIMARY KEY, note TEXT NOT "
                "NULL, written_at TIMESTAMPTZ NOT NULL DEFAULT now())"}),
       "create table");
  auto written = must(
      db.transact({{"INSERT INTO rw_demo (note) VALUES ($1) RETURNING id", {"hello from cafdb"}},
                   who_answers}),
      "insert");
  auto id = written.at(0).rows.at(0).at(0).as_int();
  // The primary's WAL position once the transaction committed (read inside it, the
  // position would come before the commit record).
  auto lsn = must(db.exec({"SELECT pg_current_wal_lsn()::text"}), "wal position")
                 .rows.at(0)
                 .at(0)
                 .as_text();
  std::cout << "   inserted row " << id << ", answered by the " << server_name(written.at(1))
            << "\n";

  step("3. Read through the reader");
  // A replica applies the primary's changes a moment later: wait until it has
  // replayed our commit, then read our own write there.
  auto caught_up = cafdb::statement{
      "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() >= $1::pg_lsn "
      "ELSE true END",
      {lsn}};
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!must(db.exec(caught_up, read_only()), "replay check").rows.at(0).at(0).as_bool()) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "the replica did not replay the write within 10 s\n";
      return 1;
    }
    std::this_thread::sleep_for(20ms);
  }
  auto session = must(db.open_session(read_only()), "open a read-only session");
  auto where = must(session.exec(who_answers), "who answers");
  auto row = must(session.exec({"SELECT note FROM rw_demo WHERE id = $1", {id}}), "read");
  std::cout << "   read '" << row.rows.at(0).at(0).as_text() << "', answered by the "
            << server_name(where) << "\n";

  step("4. A write in a read-only session is refused, with a typed error");
  auto refused = session.exec({"INSERT INTO rw_demo (note) VALUES ('nope')"});
  if (refused) {
    std::cerr << "the write was not refused\n";
    return 1;
  }
  std::cout << "   " << cafdb::render(refused.error()) << "\n";
  if (auto err = session.close()) {
    std::cerr << "close failed: " << cafdb::render(err) << "\n";
    return 1;
  }

  step("5. The pools of both engines");
  for (auto& pool : must(db.status(), "status").pools)
    std::cout << "   engine " << pool.engine << ", pool " << pool.pool << ": " << pool.total
              << " open, " << pool.checkouts << " checkouts\n";
  return 0;
}
