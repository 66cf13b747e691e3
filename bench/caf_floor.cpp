// caf_floor: what CAF's messaging alone costs, with no database at all: the floor under
// any read that goes through actors.
//
//   caf_floor --clients 4 --depth 1 --duration 10
//
// Each client actor sends a request down a chain of `depth` relay actors and waits for
// the answer before the next one, as cafdb_bench's clients do. Depth 1 is the shortest
// path a session-based read could take (client -> session -> client: 2 messages);
// depth 3 is cafdb's read path (client -> session -> engine -> connection and back:
// 6 messages). The relays do no work, so the figure is an upper bound for cafdb.
// With --shared, the middle relay of every chain is one actor shared by all clients,
// as cafdb's engine is: it shows what one shared actor in the path costs.
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>

#include "bench/bench_common.hpp"

namespace {

struct options : bench::run_options {
  int clients = 4;
  int depth = 1;
  bool shared = false;
};

// Answers a number with the next relay's answer (or, the last one, at once).
caf::behavior relay(caf::event_based_actor* self, caf::actor next) {
  if (!next)
    return {[](int64_t x) { return x + 1; }};
  return {[=](int64_t x) {
    auto rp = self->make_response_promise<int64_t>();
    self->request(next, caf::infinite, x).then([=](int64_t y) mutable { rp.deliver(y + 1); });
    return rp;
  }};
}

struct client_state {
  bench::run_clock* clock = nullptr;
  bench::tally* out = nullptr;
  caf::actor first;
  std::chrono::steady_clock::time_point sent;
};

void next_request(caf::stateful_actor<client_state>* self) {
  auto& st = self->state;
  if (st.clock->now.load(std::memory_order_relaxed) == bench::phase::stopped) {
    self->quit();
    return;
  }
  st.sent = std::chrono::steady_clock::now();
  self->request(st.first, caf::infinite, int64_t{0}).then([=](int64_t) {
    auto& st = self->state;
    st.clock->completed.fetch_add(1, std::memory_order_relaxed);
    if (st.clock->now.load(std::memory_order_relaxed) == bench::phase::measuring)
      st.out->add(std::chrono::steady_clock::now() - st.sent, 0);
    next_request(self);
  });
}

caf::behavior client(caf::stateful_actor<client_state>* self, caf::actor first,
                     bench::run_clock* clock, bench::tally* out) {
  self->state.clock = clock;
  self->state.out = out;
  self->state.first = std::move(first);
  next_request(self);
  return {};
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  CLI::App app{"CAF's request/response cost with no database: the floor under cafdb's reads"};
  app.add_option("--clients", opt.clients, "Client actors, each with its own chain")
      ->check(CLI::Range(1, 100'000))
      ->capture_default_str();
  app.add_option("--depth", opt.depth, "Relay actors per chain (1: 2 messages per request)")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_flag("--shared", opt.shared, "One middle relay for all clients (like cafdb's engine)");
  opt.add_run_options(app);
  CLI11_PARSE(app, argc, argv);

  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  bench::run_clock clock;
  std::vector<bench::tally> tallies(static_cast<size_t>(opt.clients));
  {
    caf::scoped_actor self{sys};
    std::vector<caf::actor> everyone;
    // The chain below the middle relay, and the shared middle relay itself.
    caf::actor shared_tail, shared_middle;
    int middle = opt.depth / 2;
    if (opt.shared) {
      for (int i = 0; i < middle; ++i)
        everyone.push_back(shared_tail = sys.spawn(relay, shared_tail));
      everyone.push_back(shared_middle = sys.spawn(relay, shared_tail));
    }
    for (auto& out : tallies) {
      caf::actor next;
      for (int i = 0; i < opt.depth; ++i) {
        if (opt.shared && i < middle)
          continue; // shared by every chain
        if (opt.shared && i == middle)
          next = shared_middle;
        else
          everyone.push_back(next = sys.spawn(relay, next));
      }
      auto c = sys.spawn(client, next, &clock, &out);
      self->monitor(c);
    }
    double seconds = clock.run(opt);
    int gone = 0;
    self->receive_for(gone, opt.clients)([](caf::down_msg&) {});
    for (auto& a : everyone)
      self->send_exit(a, caf::exit_reason::user_shutdown);
    nlohmann::json settings = {{"clients", opt.clients},
                               {"depth", opt.depth},
                               {"shared_middle", opt.shared},
                               {"messages_per_request", 2 * opt.depth},
                               {"workers", sys.scheduler().num_workers()}};
    bench::print(
        bench::summarize("caf_floor", "roundtrip", tallies, seconds, settings, clock.cpu_seconds),
        opt.json);
  }
  return 0;
}
