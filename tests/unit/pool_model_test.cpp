// The pool model and the engine's health without actors: every transition, the fault
// ones included, with the invariants checked after each step, and a long random walk.
#include <map>
#include <random>

#include <catch2/catch.hpp>

#include "pool/health.hpp"
#include "pool/housekeeping.hpp"
#include "pool/pool_model.hpp"

using namespace cafdb;
using namespace cafdb::pool;
using namespace std::chrono_literals;

namespace {

using model = pool_model<int, int>;
using to = model::release::to;
using found = model::idle_take::found;

#define REQUIRE_SOUND(m)                                                                           \
  do {                                                                                             \
    auto broken = (m).check_invariants();                                                          \
    INFO((broken ? *broken : std::string{}));                                                      \
    REQUIRE_FALSE(broken);                                                                         \
  } while (false)

const time_point t0 = time_point{} + std::chrono::hours(24 * 365 * 50);
const time_point forever = time_point::max();

model make(int size, int max, int min_idle = 0, int shelf = 0) {
  return model{pool_limits{"test", size, max, min_idle, shelf}};
}

// Opens a connection in slot `slot` and lets the model place it.
model::release open(model& m, slot_id slot, time_point at = t0, time_point expires = forever) {
  m.open_started(slot, expires);
  REQUIRE_SOUND(m);
  auto r = m.open_succeeded(slot, at, false);
  REQUIRE_SOUND(m);
  return r;
}

model::queued_checkout waiter(uint64_t id, holder_id holder = 7, time_point at = t0) {
  return model::queued_checkout{id, holder, at, lease_terms{"session 'test'", true}, 0};
}

model::queued_read read(uint64_t id, holder_id holder = 7, time_point at = t0,
                        duration limit = 1s) {
  return model::queued_read{id, holder, at, at + 5s, limit, static_cast<int>(id)};
}

} // namespace

TEST_CASE("pool model: an opened connection idles and is leased and returned", "[pool_model]") {
  auto m = make(2, 3);
  CHECK(m.wanted_openings(t0, false) == 0);
  auto r = open(m, 1);
  CHECK(r.where == to::idle);
  CHECK(m.total() == 1);
  CHECK(m.idle_count() == 1);
  CHECK(m.counters().opened == 1);

  auto taken = m.take_idle(t0, std::nullopt);
  REQUIRE(taken.what == found::ready);
  CHECK(taken.slot == 1);
  m.grant(taken.slot, 100, 7, t0, {"session 'a'", false}, 0ns);
  REQUIRE_SOUND(m);
  CHECK(m.in_use() == 1);
  CHECK(m.idle_count() == 0);
  CHECK(m.counters().checkouts == 1);
  CHECK(m.leases().count(100) == 1);

  auto info = m.checkin(100);
  REQUIRE(info);
  CHECK(info->slot == 1);
  CHECK(m.count(slot_state::returning) == 1);
  CHECK(m.in_use() == 0);
  REQUIRE_SOUND(m);
  CHECK_FALSE(m.checkin(100)); // a lease ends once
  CHECK(m.release_slot(1, t0, false).where == to::idle);
  CHECK(m.idle_count() == 1);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: queued checkouts are served in arrival order by connections that come free",
          "[pool_model]") {
  auto m = make(2, 2);
  auto progress = m.enqueue(waiter(10, 1), t0, std::nullopt, false);
  CHECK(progress.released.empty());
  m.enqueue(waiter(11, 2), t0, std::nullopt, false);
  REQUIRE_SOUND(m);
  CHECK(m.waiting() == 2);
  // One connection per waiter, bounded by max.
  CHECK(m.wanted_openings(t0, false) == 2);
  m.open_started(1, forever);
  CHECK(m.wanted_openings(t0, false) == 1);
  auto r = m.open_succeeded(1, t0 + 3ms, false);
  REQUIRE(r.where == to::waiter);
  CHECK(r.waiter->id == 10);
  CHECK(r.waiter->holder == 1);
  CHECK(m.leases().at(10).slot == 1);
  CHECK(m.waits().percentile_us(0.5) == 3000);
  // It comes back and serves the next waiter before it idles.
  m.checkin(10);
  r = m.release_slot(1, t0, false);
  REQUIRE(r.where == to::waiter);
  CHECK(r.waiter->id == 11);
  CHECK(m.waiting() == 0);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: queued reads go out in batches of at most max_read_batch", "[pool_model]") {
  auto m = make(1, 1);
  for (uint64_t id = 1; id <= 40; ++id)
    m.enqueue(read(id, 7, t0, duration{std::chrono::milliseconds(id)}), t0, std::nullopt, false);
  CHECK(m.queued_reads() == 40);
  // Queued reads want one connection between them.
  CHECK(m.wanted_openings(t0, false) == 1);
  auto r = open(m, 1);
  REQUIRE(r.where == to::reads);
  auto* b = m.find_batch(r.batch_id);
  REQUIRE(b != nullptr);
  CHECK(b->reads.size() == max_read_batch);
  CHECK(b->reads.front().id == 1);
  CHECK(b->limit == 32ms); // the longest of its reads
  CHECK(b->deadline == t0 + 32ms);
  CHECK(m.in_use() == 1);
  CHECK(m.queued_reads() == 8);
  CHECK(m.next_batch_deadline() == t0 + 32ms);
  auto done = m.finish_batch(r.batch_id);
  REQUIRE(done);
  CHECK_FALSE(m.finish_batch(r.batch_id));
  r = m.release_slot(1, t0, false);
  REQUIRE(r.where == to::reads);
  CHECK(m.find_batch(r.batch_id)->reads.size() == 8);
  CHECK(m.counters().checkouts == 40);
  REQUIRE_SOUND(m);
}

TEST_CASE("read batching: reads queue in arrival order and a batch runs until its longest "
          "read's limit",
          "[pool_model]") {
  read_queue<int> q;
  // A late arrival with a smaller id (a read sent before another, delivered after it)
  // still takes its place.
  q.push(read(3, 7, t0, 2s));
  q.push(read(1, 7, t0, 1s));
  q.push(read(2, 8, t0 + 1s, 5s));
  CHECK_FALSE(q.check());
  CHECK(q.next_expiry() == t0 + 5s);
  auto b = q.take_batch(42, t0 + 2s);
  CHECK(b.id == 1);
  CHECK(b.slot == 42);
  REQUIRE(b.reads.size() == 3);
  CHECK(b.reads[0].id == 1);
  CHECK(b.reads[2].id == 3);
  CHECK(b.limit == duration{5s});
  CHECK(b.deadline == t0 + 7s);
  CHECK(q.empty());
  // At most max_read_batch per batch; a gone holder's reads leave; expiry takes the rest.
  for (uint64_t id = 10; id < 10 + max_read_batch + 5; ++id)
    q.push(read(id, id % 2 == 0 ? 7 : 8));
  CHECK(q.take_batch(1, t0).reads.size() == max_read_batch);
  CHECK(q.size() == 5);
  q.drop(8);
  CHECK(q.size() == 3);
  CHECK(q.expire(t0 + 4s).empty());
  CHECK(q.expire(t0 + 5s).size() == 3);
  CHECK(q.next_expiry() == time_point::max());
}

TEST_CASE("pool model: when checkouts and reads both wait, a free connection serves them in turn",
          "[pool_model]") {
  auto m = make(1, 1);
  m.open_started(1, forever);
  m.enqueue(waiter(1), t0, std::nullopt, false);
  m.enqueue(read(2), t0, std::nullopt, false);
  m.enqueue(waiter(3), t0, std::nullopt, false);
  m.enqueue(read(4), t0, std::nullopt, false);
  auto r = m.open_succeeded(1, t0, false);
  CHECK(r.where == to::waiter);
  m.checkin(1);
  r = m.release_slot(1, t0, false);
  REQUIRE(r.where == to::reads);
  CHECK(m.find_batch(r.batch_id)->reads.size() == 2); // both queued reads go together
  m.finish_batch(r.batch_id);
  r = m.release_slot(1, t0, false);
  CHECK(r.where == to::waiter);
  CHECK(r.waiter->id == 3);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: pool_pre_ping pings a connection idle too long, and a dead one is "
          "discarded while the queue looks for the next",
          "[pool_model]") {
  auto m = make(3, 3);
  open(m, 1);
  open(m, 2);
  open(m, 3);
  auto later = t0 + 10s;
  // A checkout takes the most recently used idle connection; it needs a ping.
  auto taken = m.take_idle(later, duration{1s});
  REQUIRE(taken.what == found::needs_ping);
  CHECK(m.count(slot_state::pinging) == 1);
  // The checkout waits for the ping in the queue; no second ping for one waiter.
  auto progress = m.enqueue(waiter(50), later, duration{1s}, false);
  CHECK(progress.pings.empty());
  CHECK(m.idle_count() == 2);
  REQUIRE_SOUND(m);
  // The ping fails: discarded, counted; the queue pings the next idle connection.
  progress = m.ping_failed(taken.slot, later, duration{1s}, false);
  CHECK(m.counters().ping_failures == 1);
  CHECK(m.counters().discarded == 1);
  REQUIRE(progress.pings.size() == 1);
  REQUIRE_SOUND(m);
  // This one answers: it serves the waiter.
  auto answered = m.ping_answered(progress.pings[0], later, duration{1s}, false);
  REQUIRE(answered.released.size() == 1);
  auto& r = answered.released[0];
  REQUIRE(r.where == to::waiter);
  CHECK(r.slot == progress.pings[0]);
  CHECK(r.waiter->id == 50);
  CHECK(m.idle_count() == 1);
  REQUIRE_SOUND(m);
  // A connection idle for less than pre_ping_after needs no ping.
  m.checkin(50);
  m.release_slot(progress.pings[0], later, false);
  CHECK(m.take_idle(later + 100ms, duration{1s}).what == found::ready);
}

TEST_CASE("pool model: a pinged connection that expired meanwhile leaves, and the queue pings "
          "the next",
          "[pool_model]") {
  auto m = make(2, 2);
  open(m, 1, t0, t0 + 20s);
  open(m, 2, t0);
  auto later = t0 + 10s;
  auto taken = m.take_idle(later, duration{1s});
  REQUIRE(taken.what == found::needs_ping);
  REQUIRE(taken.slot == 2);
  m.enqueue(waiter(60), later, duration{1s}, false);
  // Slot 2 died during its ping: it is discarded when the ping answers, and the waiter
  // is not left behind while slot 1 idles.
  CHECK_FALSE(m.slot_died(2));
  auto answered = m.ping_answered(2, later, duration{1s}, false);
  CHECK(answered.released[0].where == to::discarded);
  REQUIRE(answered.pings == std::vector<slot_id>{1});
  REQUIRE_SOUND(m);
  // Slot 1 expires during its ping: retired; nothing is idle, so the queue waits for a
  // new connection.
  answered = m.ping_answered(1, t0 + 30s, duration{1s}, false);
  CHECK(answered.released[0].where == to::retired);
  CHECK(answered.pings.empty());
  CHECK(m.total() == 0);
  CHECK(m.wanted_openings(t0 + 30s, false) == 1);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: pool_recycle retires an expired connection when it is idle or comes back",
          "[pool_model]") {
  auto m = make(2, 2);
  open(m, 1, t0, t0 + 1s);
  open(m, 2, t0, t0 + 1min);
  auto later = t0 + 2s;
  // The most recently used (2) first: still young, it is taken; 1 stays idle.
  auto taken = m.take_idle(later, std::nullopt);
  CHECK(taken.slot == 2);
  CHECK(taken.retired.empty());
  m.grant(2, 9, 7, later, {}, 0ns);
  taken = m.take_idle(later, std::nullopt);
  CHECK(taken.what == found::none);
  CHECK(taken.retired == std::vector<slot_id>{1});
  CHECK(m.counters().recycled == 1);
  REQUIRE_SOUND(m);
  m.checkin(9);
  CHECK(m.release_slot(2, t0 + 2min, false).where == to::retired);
  CHECK(m.counters().recycled == 2);
  CHECK(m.total() == 0);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: a connection whose actor died is dropped when idle, discarded when it "
          "comes back, and never handed out",
          "[pool_model]") {
  auto m = make(2, 2);
  open(m, 1);
  open(m, 2);
  auto taken = m.take_idle(t0, std::nullopt);
  m.grant(taken.slot, 5, 7, t0, {}, 0ns);
  auto idle_slot = taken.slot == 1 ? slot_id{2} : slot_id{1};
  CHECK(m.slot_died(idle_slot));
  CHECK(m.total() == 1);
  CHECK(m.counters().discarded == 1);
  CHECK(m.wants_probe(false) == false); // one left, min_idle 0: no probe needed
  CHECK_FALSE(m.slot_died(taken.slot)); // leased: marked
  CHECK_FALSE(m.slot_died(99));         // unknown: nothing
  REQUIRE_SOUND(m);
  m.checkin(5);
  CHECK(m.release_slot(taken.slot, t0, false).where == to::discarded);
  CHECK(m.counters().discarded == 2);
  CHECK(m.total() == 0);
  CHECK(m.wants_probe(false));
  CHECK_FALSE(m.wants_probe(true));
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: a holder that goes down loses its leases and its queued work",
          "[pool_model]") {
  auto m = make(2, 2);
  open(m, 1);
  open(m, 2);
  m.grant(m.take_idle(t0, std::nullopt).slot, 10, 1, t0, {}, 0ns);
  m.grant(m.take_idle(t0, std::nullopt).slot, 11, 2, t0, {}, 0ns);
  m.enqueue(waiter(12, 1), t0, std::nullopt, false);
  m.enqueue(waiter(13, 2), t0, std::nullopt, false);
  m.enqueue(read(14, 1), t0, std::nullopt, false);
  auto reclaimed = m.reclaim(1);
  REQUIRE(reclaimed.size() == 1);
  CHECK(reclaimed[0].first == 10);
  CHECK(m.count(slot_state::returning) == 1);
  CHECK(m.waiting() == 1); // holder 2's checkout stays
  REQUIRE_SOUND(m);
  // The reset succeeds: the connection serves holder 2's checkout.
  auto r = m.release_slot(reclaimed[0].second.slot, t0, false);
  REQUIRE(r.where == to::waiter);
  CHECK(r.waiter->id == 13);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: pool_timeout takes checkouts and reads out of the queue, counted",
          "[pool_model]") {
  auto m = make(1, 1);
  m.enqueue(waiter(1), t0, std::nullopt, false);
  m.enqueue(waiter(2), t0, std::nullopt, false);
  m.enqueue(read(3, 7, t0), t0, std::nullopt, false);
  m.enqueue(read(4, 7, t0 + 10s), t0, std::nullopt, false);
  CHECK(m.is_queued_checkout(2));
  auto expired = m.expire_checkout(2);
  REQUIRE(expired);
  CHECK(expired->id == 2);
  CHECK_FALSE(m.expire_checkout(2));
  CHECK_FALSE(m.is_queued_checkout(2));
  CHECK(m.next_read_expiry() == t0 + 5s);
  auto reads = m.expire_reads(t0 + 6s);
  REQUIRE(reads.size() == 1);
  CHECK(reads[0].id == 3);
  CHECK(m.next_read_expiry() == t0 + 15s);
  CHECK(m.counters().timeouts == 2);
  CHECK(m.waiting() == 2);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: running batches past their deadline end and their connection returns",
          "[pool_model]") {
  auto m = make(2, 2);
  m.enqueue(read(1, 7, t0, 1s), t0, std::nullopt, false);
  auto r = open(m, 1);
  REQUIRE(r.where == to::reads);
  m.enqueue(read(2, 7, t0, 5s), t0, std::nullopt, false);
  auto r2 = open(m, 2);
  REQUIRE(r2.where == to::reads);
  CHECK(m.overdue_batches(t0 + 500ms).empty());
  auto overdue = m.overdue_batches(t0 + 2s);
  REQUIRE(overdue.size() == 1);
  CHECK(overdue[0].slot == 1);
  CHECK(m.count(slot_state::returning) == 1);
  CHECK(m.next_batch_deadline() == t0 + 5s);
  // Its late answer finds nothing: the connection belongs to the cancel.
  CHECK_FALSE(m.finish_batch(r.batch_id));
  REQUIRE_SOUND(m);
  CHECK(m.release_slot(1, t0 + 3s, false).where == to::idle);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: how many connections to open", "[pool_model]") {
  auto m = make(4, 6, 2);
  CHECK(m.wanted_openings(t0, false) == 2); // min_idle
  CHECK(m.wanted_openings(t0, true) == 0);  // down
  m.open_started(1, forever);
  m.open_started(2, forever);
  CHECK(m.wanted_openings(t0, false) == 0);
  for (uint64_t id = 10; id < 20; ++id)
    m.enqueue(waiter(id), t0, std::nullopt, false);
  CHECK(m.wanted_openings(t0, false) == 4); // ten waiters, two opening, max 6
  // The server says it is full: nothing for 250 ms, then 500 ms, ... up to 5 s.
  CHECK(m.server_full(t0) == 250ms);
  CHECK(m.wanted_openings(t0 + 100ms, false) == 0);
  CHECK(m.wanted_openings(t0 + 300ms, false) == 4);
  CHECK(m.server_full(t0) == 500ms);
  for (int i = 0; i < 10; ++i)
    m.server_full(t0);
  CHECK(m.server_full(t0) == 5s);
  CHECK(m.counters().server_full == 13);
  m.open_failed(2);
  CHECK(m.total() == 1);
  m.open_succeeded(1, t0, false); // a connect that works resets the backoff
  CHECK(m.server_full(t0) == 250ms);
  REQUIRE_SOUND(m);
  while (m.can_open())
    m.open_started(100 + static_cast<uint64_t>(m.total()), forever);
  CHECK(m.total() == 6);
  CHECK(m.wanted_openings(t0 + 1min, false) == 0);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: above pool_size or while down, a connection that comes free closes",
          "[pool_model]") {
  auto m = make(1, 2);
  open(m, 1);
  m.grant(m.take_idle(t0, std::nullopt).slot, 5, 7, t0, {}, 0ns);
  auto r = open(m, 2); // overflow: nobody waits, above size
  CHECK(r.where == to::closed);
  CHECK(m.total() == 1);
  m.checkin(5);
  CHECK(m.release_slot(1, t0, true).where == to::closed);
  CHECK(m.total() == 0);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: housekeeping reaps idle connections down to min_idle and watches leases",
          "[pool_model]") {
  auto m = make(4, 4, 1);
  open(m, 1, t0);
  open(m, 2, t0);
  open(m, 3, t0, t0 + 1s); // expires
  auto swept = m.sweep_idle(t0 + 30s, 10s);
  CHECK(swept.size() == 2); // the expired one and one idle past idle_timeout
  CHECK(m.total() == 1);    // min_idle stays
  CHECK(m.counters().recycled == 2);
  CHECK(m.sweep_idle(t0 + 30s, 0ns).empty());
  REQUIRE_SOUND(m);

  m.grant(m.take_idle(t0 + 30s, std::nullopt).slot, 20, 7, t0 + 30s, {"session 'x'", true}, 0ns);
  auto watch = m.watch_leases(t0 + 31s, 2s, 5s);
  CHECK(watch.leaked.empty());
  CHECK(watch.revoked.empty());
  watch = m.watch_leases(t0 + 33s, 2s, 5s);
  REQUIRE(watch.leaked.size() == 1);
  CHECK(watch.leaked[0].first == 20);
  CHECK(watch.revoked.empty());
  watch = m.watch_leases(t0 + 40s, 2s, 5s);
  CHECK(watch.leaked.empty()); // warned once
  REQUIRE(watch.revoked.size() == 1);
  CHECK(m.watch_leases(t0 + 50s, 2s, 5s).revoked.empty()); // revoked once
  CHECK(m.counters().leaks == 1);
  CHECK(m.counters().reclaimed == 1);
  CHECK(m.checkin(20)->revoking);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: losing the server closes idle connections and empties the queues",
          "[pool_model]") {
  auto m = make(2, 2);
  open(m, 1);
  m.grant(m.take_idle(t0, std::nullopt).slot, 5, 7, t0, {}, 0ns);
  open(m, 2);
  m.grant(m.take_idle(t0, std::nullopt).slot, 6, 7, t0, {}, 0ns);
  m.enqueue(waiter(7), t0, std::nullopt, false);
  m.enqueue(read(8), t0, std::nullopt, false);
  m.checkin(6);
  m.release_slot(2, t0, false); // serves waiter 7
  auto [checkouts, reads] = m.take_waiting();
  CHECK(checkouts.empty());
  CHECK(reads.size() == 1);
  m.checkin(7);
  m.release_slot(2, t0, false);
  CHECK(m.idle_count() == 1);
  CHECK(m.close_idle() == std::vector<slot_id>{2});
  CHECK(m.total() == 1);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: connections that come free fill the in-place shelf up to its target, "
          "then idle",
          "[pool_model]") {
  auto m = make(3, 3, 0, 2);
  CHECK(open(m, 1).where == to::shelf);
  CHECK(open(m, 2).where == to::shelf);
  CHECK(open(m, 3).where == to::idle);
  CHECK(m.count(slot_state::shelved) == 2);
  CHECK(m.idle_count() == 1);
  CHECK(m.total() == 3);
  CHECK(m.in_use() == 0);
  REQUIRE_SOUND(m);
  // Queued work goes to connections that come free before the shelf does.
  auto progress = m.enqueue(read(10), t0, std::nullopt, false);
  REQUIRE(progress.released.size() == 1);
  CHECK(progress.released[0].where == to::reads);
  auto batch = m.finish_batch(progress.released[0].batch_id);
  REQUIRE(batch);
  CHECK(m.release_slot(batch->slot, t0, false).where == to::idle); // the shelf is full
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: a shelf that starts empty opens when wanted: idle connections go to it at "
          "once, the others as they come free",
          "[pool_model]") {
  auto m = make(3, 3);
  CHECK(open(m, 1).where == to::idle);
  CHECK(open(m, 2).where == to::idle);
  auto taken = m.take_idle(t0, std::nullopt); // one leased
  REQUIRE(taken.what == found::ready);
  m.grant(taken.slot, 100, 7, t0, {"session 'a'", false}, 0ns);
  CHECK(m.count(slot_state::shelved) == 0);
  auto moved = m.open_shelf(2);
  REQUIRE_SOUND(m);
  CHECK(moved.size() == 1);
  CHECK(m.count(slot_state::shelved) == 1);
  CHECK(m.idle_count() == 0);
  CHECK(m.limits().shelf == 2);
  // The third opens, and goes to the shelf; the shelf is full after it.
  CHECK(open(m, 3).where == to::shelf);
  CHECK(m.count(slot_state::shelved) == 2);
  REQUIRE_SOUND(m);
  // Opening again changes nothing.
  CHECK(m.open_shelf(2).empty());
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: work that finds no connection and no room takes shelved ones back",
          "[pool_model]") {
  auto m = make(2, 2, 0, 2);
  open(m, 1);
  open(m, 2);
  CHECK(m.shelf_wanted_back() == 0); // nothing waits
  // Messages say where the connections are: without the shelf, none would show.
  CHECK(m.describe().find("2 total, 0 in use, 0 idle, 0 waiting, 2 on the in-place shelf") !=
        std::string::npos);
  m.enqueue(waiter(10), t0, std::nullopt, false);
  m.enqueue(read(11), t0, std::nullopt, false);
  REQUIRE_SOUND(m);
  CHECK(m.shelf_wanted_back() == 2); // a checkout and a batch of reads
  // The engine recalled slot 1 from the shelf: it serves the first waiting work.
  auto r = m.unshelve(1, t0, false);
  CHECK(r.where == to::waiter); // checkouts and reads take turns, the checkout first
  CHECK(m.shelf_wanted_back() == 1);
  auto r2 = m.unshelve(2, t0, false);
  CHECK(r2.where == to::reads);
  CHECK(m.shelf_wanted_back() == 0);
  REQUIRE_SOUND(m);
  // Once free again, they go back to the shelf.
  auto info = m.checkin(10);
  REQUIRE(info);
  CHECK(m.release_slot(info->slot, t0, false).where == to::shelf);
  // With room to open, waiting work opens a connection instead of recalling.
  auto roomy = make(2, 3, 0, 2);
  open(roomy, 1);
  open(roomy, 2);
  roomy.enqueue(waiter(20), t0, std::nullopt, false);
  CHECK(roomy.wanted_openings(t0, false) == 1);
  roomy.open_started(3, t0 + 1h);
  CHECK(roomy.shelf_wanted_back() == 0);
  // The open failed because the server is full: the pool opens no more for a while, and
  // the waiter takes a shelved connection back instead of waiting for pool_timeout.
  roomy.open_failed(3);
  roomy.server_full(t0);
  CHECK(roomy.wanted_openings(t0, false) == 0);
  CHECK(roomy.shelf_wanted_back() == 1);
  REQUIRE_SOUND(roomy);
}

TEST_CASE("pool model: a checkout takes a shelved connection the engine took off the shelf",
          "[pool_model]") {
  auto m = make(2, 2, 0, 1);
  open(m, 1);
  CHECK(m.take_idle(t0, std::nullopt).what == found::none);
  m.take_shelved(1);
  REQUIRE_SOUND(m);
  m.grant(1, 50, 7, t0, {"session 'a'", false}, 0ns);
  CHECK(m.in_use() == 1);
  CHECK(m.count(slot_state::shelved) == 0);
  auto info = m.checkin(50);
  REQUIRE(info);
  CHECK(m.release_slot(1, t0, false).where == to::shelf);
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: shelved connections retire at pool_recycle, are discarded when their "
          "actor died or their borrower found them unusable",
          "[pool_model]") {
  auto m = make(3, 3, 0, 3);
  open(m, 1, t0, t0 + 10s);
  open(m, 2);
  open(m, 3);
  CHECK(m.shelved_to_recall(t0).empty());
  CHECK(m.shelved_to_recall(t0 + 10s) == std::vector<slot_id>{1});
  CHECK(m.unshelve(1, t0 + 10s, false).where == to::retired);
  CHECK(m.counters().recycled == 1);
  CHECK_FALSE(m.slot_died(2)); // shelved: marked, recalled by the engine
  CHECK(m.shelved_to_recall(t0) == std::vector<slot_id>{2});
  CHECK(m.unshelve(2, t0, false).where == to::discarded);
  m.shelf_lost(3);
  CHECK(m.counters().discarded == 2);
  CHECK(m.total() == 0);
  REQUIRE_SOUND(m);
  // idle_timeout retires shelved connections down to min_idle.
  auto r = make(3, 3, 1, 3);
  open(r, 1);
  open(r, 2);
  CHECK(r.spare_for_reaping() == 1);
  r.retire_shelved(1);
  CHECK(r.spare_for_reaping() == 0);
  CHECK(r.counters().recycled == 1);
  REQUIRE_SOUND(r);
  // Down, a recalled connection closes; shelved() names every shelved slot.
  auto d = make(2, 2, 0, 2);
  open(d, 1);
  open(d, 2);
  auto all = d.shelved();
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<slot_id>{1, 2});
  CHECK(d.unshelve(1, t0, true).where == to::closed);
  REQUIRE_SOUND(d);
}

TEST_CASE("pool model: above pool_size a connection that comes free closes rather than shelve",
          "[pool_model]") {
  auto m = make(1, 2, 0, 2);
  open(m, 1);
  m.enqueue(waiter(10), t0, std::nullopt, false);
  CHECK(open(m, 2).where == to::waiter); // an overflow connection
  auto info = m.checkin(10);
  REQUIRE(info);
  CHECK(m.release_slot(info->slot, t0, false).where == to::closed); // 2 > pool_size 1
  REQUIRE_SOUND(m);
}

TEST_CASE("pool model: a long random walk through every transition keeps every invariant",
          "[pool_model]") {
  // The engine's calls in any order the actor could make them: each step picks a
  // transition that is legal in the current state. The invariants are checked after
  // every step, and the books balance at the end.
  std::mt19937_64 random{GENERATE(1u, 2u, 3u, 42u)};
  auto m = make(4, 6, 1, 2);
  std::map<slot_id, slot_state> known;
  uint64_t next = 1;
  auto t = t0;
  int answered = 0;
  int queued = 0;
  auto pick = [&](slot_state state) -> std::optional<slot_id> {
    std::vector<slot_id> candidates;
    for (auto& [slot, s] : known)
      if (m.contains(slot) && m.state_of(slot) == state)
        candidates.push_back(slot);
    if (candidates.empty())
      return std::nullopt;
    return candidates[random() % candidates.size()];
  };
  auto placed = [&](const model::release& r) {
    if (r.where == to::waiter)
      answered += 1;
    else if (r.where == to::reads)
      answered += static_cast<int>(m.find_batch(r.batch_id)->reads.size());
  };
  auto track = [&](model::queue_progress& progress) {
    for (auto& r : progress.released)
      placed(r);
  };
  for (int step = 0; step < 20'000; ++step) {
    t += std::chrono::milliseconds(random() % 50);
    auto ping = random() % 2 ? std::optional<duration>{200ms} : std::nullopt;
    auto op = random() % 15;
    switch (op) {
    case 0:
      if (m.can_open()) {
        m.open_started(next, t + std::chrono::seconds(random() % 30));
        known[next++] = slot_state::opening;
      }
      break;
    case 1:
      if (auto slot = pick(slot_state::opening)) {
        auto r = m.open_succeeded(*slot, t, false);
        placed(r);
      }
      break;
    case 2:
      if (auto slot = pick(slot_state::opening))
        m.open_failed(*slot);
      break;
    case 3: {
      auto taken = m.take_idle(t, ping);
      if (taken.what == found::ready) {
        m.grant(taken.slot, next++, random() % 4, t, {}, 0ns);
      } else {
        auto progress = m.enqueue(waiter(next++, random() % 4, t), t, ping, false);
        queued += 1;
        track(progress);
      }
      break;
    }
    case 4: {
      auto progress = m.enqueue(read(next++, random() % 4, t, 100ms), t, ping, false);
      queued += 1;
      track(progress);
      break;
    }
    case 5:
      if (!m.leases().empty()) {
        auto it = m.leases().begin();
        std::advance(it, static_cast<long>(random() % m.leases().size()));
        auto info = m.checkin(it->first);
        REQUIRE(info);
      }
      break;
    case 6:
    case 7:
      if (auto slot = pick(slot_state::returning)) {
        auto r = m.release_slot(*slot, t, random() % 20 == 0);
        placed(r);
      } else if (auto pinged = pick(slot_state::pinging)) {
        auto progress = random() % 3 == 0 ? m.ping_failed(*pinged, t, ping, false)
                                          : m.ping_answered(*pinged, t, ping, false);
        track(progress);
      }
      break;
    case 8:
      if (auto slot = pick(slot_state::returning))
        m.discard(*slot);
      break;
    case 9:
      if (!m.batches().empty())
        m.finish_batch(m.batches().begin()->first);
      else
        m.overdue_batches(t);
      break;
    case 10:
      m.reclaim(random() % 4);
      break;
    case 11:
      m.expire_reads(t - 2s);
      if (m.is_queued_checkout(next - 1))
        m.expire_checkout(next - 1);
      break;
    case 12: {
      auto slot = 1 + random() % next;
      m.slot_died(slot);
      break;
    }
    case 13:
      m.sweep_idle(t, 1s);
      m.watch_leases(t, 1s, 2s);
      if (random() % 50 == 0) {
        m.close_idle();
        m.take_waiting();
      }
      break;
    case 14:
      // The in-place shelf: recalled for work or at pool_recycle, or found unusable.
      if (auto slot = pick(slot_state::shelved)) {
        if (random() % 4 == 0) {
          m.shelf_lost(*slot);
        } else if (random() % 4 == 0 && m.spare_for_reaping() > 0) {
          m.retire_shelved(*slot);
        } else if (random() % 4 == 0) {
          m.take_shelved(*slot); // for a checkout
          m.grant(*slot, next++, random() % 4, t, {}, 0ns);
        } else {
          auto r = m.unshelve(*slot, t, random() % 20 == 0);
          placed(r);
        }
      }
      break;
    }
    auto broken = m.check_invariants();
    INFO("step " << step << ", op " << op << ": " << (broken ? *broken : std::string{}));
    REQUIRE_FALSE(broken);
  }
  CHECK(m.total() <= 6);
  CHECK(answered > 0);
  CHECK(queued > 0);
}

TEST_CASE("engine health: down, a doubling backoff with spread, and back up", "[pool_model]") {
  engine_health health;
  CHECK_FALSE(health.down());
  CHECK(health.lose("connection refused"));
  CHECK_FALSE(health.lose("again")); // down already: the first reason stays
  CHECK(health.reason() == "connection refused");
  CHECK(health.next_retry(1.0) == 100ms);
  CHECK(health.next_retry(1.0) == 200ms);
  CHECK(health.next_retry(1.2) == 480ms);
  CHECK(health.next_retry(0.8) == 640ms);
  for (int i = 0; i < 10; ++i)
    health.next_retry(1.0);
  CHECK(health.next_retry(1.0) == 2s);
  CHECK(health.next_retry(5.0) == 2400ms); // spread is clamped to +-20%
  CHECK_FALSE(health.still_down("connection refused"));
  CHECK(health.still_down("no route to host"));
  CHECK(health.reason() == "no route to host");
  health.recovered();
  CHECK_FALSE(health.down());
  CHECK(health.reason().empty());
  CHECK(health.lose("timeout"));
  CHECK(health.next_retry(1.0) == 100ms); // a new outage starts the backoff again
}

TEST_CASE("housekeeping runs at a fraction of the shortest period it serves", "[pool_model]") {
  config cfg;
  cfg.pool_recycle = millis{0};
  cfg.idle_timeout = millis{0};
  cfg.leak_threshold = millis{0};
  cfg.lease_timeout = millis{0};
  cfg.stats_interval = millis{0};
  cfg.min_idle = 0;
  CHECK(housekeeping_period(cfg) == 0ns);
  cfg.idle_timeout = millis{2000};
  CHECK(housekeeping_period(cfg) == 500ms);
  cfg.pool_recycle = millis{1000};
  CHECK(housekeeping_period(cfg) == 100ms);
  cfg.leak_threshold = millis{8};
  CHECK(housekeeping_period(cfg) == 10ms); // never below 10 ms
  cfg = config{};
  cfg.stats_interval = millis{60'000};
  CHECK(housekeeping_period(cfg) <= 1s); // never above 1 s
}
