// A small thread-pool server on the asynchronous API. Four worker threads take requests
// from a queue, start the database work and go straight back to the queue: no worker
// ever waits for a database answer, only for a free slot when 256 requests are in flight. Each
// answer arrives in a callback on a cafdb thread, which "responds" by counting it. At the end the
// server checks that every request was answered and every note it acknowledged is stored.
//
//   async_server [database-url]      (default: sqlite:///async_server.db)
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cafdb/async.hpp"

using namespace std::chrono_literals;

namespace {

// What a client sent: add a note, or ask how many there are.
struct request {
  int id;
  std::optional<std::string> note; // set: POST /notes; empty: GET /notes/count
};

// A queue the workers wait on: the only place any thread waits.
class request_queue {
 public:
  void push(request r) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      items_.push_back(std::move(r));
    }
    ready_.notify_one();
  }
  void close() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      closed_ = true;
    }
    ready_.notify_all();
  }
  std::optional<request> pop() {
    std::unique_lock<std::mutex> lock{mtx_};
    ready_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty())
      return std::nullopt;
    auto r = std::move(items_.front());
    items_.pop_front();
    return r;
  }

 private:
  std::mutex mtx_;
  std::condition_variable ready_;
  std::deque<request> items_;
  bool closed_ = false;
};

// Admission control: at most `limit` requests in flight. A server that starts work
// faster than the database finishes it must hold back somewhere; past the database's
// own limit (max_pending) requests are refused with pool_overloaded.
class in_flight_limit {
 public:
  explicit in_flight_limit(int limit) : free_(limit) {}
  void acquire() {
    std::unique_lock<std::mutex> lock{mtx_};
    freed_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }
  void release() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      ++free_;
    }
    freed_.notify_one();
  }

 private:
  std::mutex mtx_;
  std::condition_variable freed_;
  int free_;
};

// Counts responses; the last one fulfils `done`.
struct responses {
  explicit responses(int expected) : left(expected) {}
  void respond(bool ok) {
    (ok ? succeeded : failed)++;
    if (--left == 0)
      done.set_value();
  }
  std::atomic<int> left;
  std::atomic<int> succeeded{0};
  std::atomic<int> failed{0};
  std::atomic<int> acknowledged_notes{0};
  std::promise<void> done;
};

// One worker's handling of a request: starts the work, never waits for its answer
// (only for a free slot when `limit` requests are in flight).
void handle(cafdb::async_client& db, const request& r, in_flight_limit& limit, responses& out) {
  limit.acquire();
  if (r.note) {
    db.exec({"INSERT INTO notes (body) VALUES ($1)", {*r.note}})
        .then([&](caf::expected<cafdb::result_set> written) {
          limit.release();
          if (written)
            ++out.acknowledged_notes;
          else if (out.failed == 0)
            std::cerr << "POST failed: " << cafdb::render(written.error()) << "\n";
          out.respond(static_cast<bool>(written));
        });
  } else {
    cafdb::session_options read_only;
    read_only.read_only = true;
    db.exec({"SELECT count(*) AS n FROM notes"}, read_only)
        .then([&](caf::expected<cafdb::result_set> counted) {
          limit.release();
          auto n = counted ? counted->get<int64_t>(0, "n") : cafdb::outcome<int64_t>{0};
          out.respond(counted && n);
        });
  }
}

} // namespace

int main(int argc, char** argv) {
  auto cfg = cafdb::config_from_url(argc > 1 ? argv[1] : "sqlite:///async_server.db");
  if (!cfg) {
    std::cerr << cfg.error().message << "\n";
    return 1;
  }
  cfg->log_level = "warn";
  cafdb::runtime rt{*cfg};
  cafdb::async_client db{rt.system(), rt.database()};
  if (auto ready = db.await_ready(10s).get(); !ready) {
    std::cerr << "not ready: " << cafdb::render(ready.error()) << "\n";
    return 1;
  }
  if (auto made = db.exec({"CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body "
                           "TEXT NOT NULL)"})
                      .get();
      !made) {
    std::cerr << "create failed: " << cafdb::render(made.error()) << "\n";
    return 1;
  }
  auto before = db.exec({"SELECT count(*) AS n FROM notes"}).get();
  auto stored_before = before ? before->get<int64_t>(0, "n") : cafdb::outcome<int64_t>{0};
  if (!stored_before) {
    std::cerr << "count failed\n";
    return 1;
  }

  constexpr int workers = 4;
  constexpr int requests = 2000;
  request_queue queue;
  in_flight_limit limit{256};
  responses out{requests};
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      while (auto r = queue.pop())
        handle(db, *r, limit, out);
    });
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < requests; ++i)
    queue.push(request{i, i % 4 == 0 ? std::nullopt
                                     : std::optional<std::string>{"note " + std::to_string(i)}});
  queue.close();
  for (auto& t : pool)
    t.join(); // the workers are done handing out work; the answers are still coming
  if (out.done.get_future().wait_for(60s) != std::future_status::ready) {
    std::cerr << "not every request was answered within a minute\n";
    return 1;
  }
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto after = db.exec({"SELECT count(*) AS n FROM notes"}).get();
  auto stored = after ? after->get<int64_t>(0, "n") : cafdb::outcome<int64_t>{0};
  std::cout << requests << " requests on " << workers << " worker threads in " << took << " s ("
            << static_cast<int>(requests / took) << "/s): " << out.succeeded << " answered, "
            << out.failed << " failed\n";
  std::cout << "notes acknowledged: " << out.acknowledged_notes
            << ", stored: " << (stored ? *stored - *stored_before : -1) << "\n";
  bool consistent = stored && *stored - *stored_before == out.acknowledged_notes;
  return out.failed == 0 && consistent ? 0 : 1;
}
