// The reader pool's in-place shelf without actors: lending, giving back, recalls,
// reports to the engine, a new owner, shutdown, and many borrowers at once.
#include <atomic>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "pool/in_place_shelf.hpp"
#include "support/fake_driver.hpp"

using namespace cafdb;
using namespace cafdb::pool;

namespace {

struct reports {
  std::mutex mtx;
  std::vector<std::pair<slot_id, bool>> seen;

  in_place_shelf::returned_fn callback() {
    return [this](slot_id slot, bool usable) {
      std::lock_guard<std::mutex> guard{mtx};
      seen.emplace_back(slot, usable);
    };
  }
};

std::shared_ptr<driver> connection() {
  return std::make_shared<test::fake_driver>(std::make_shared<test::fake_script>());
}

} // namespace

TEST_CASE("in-place shelf: scheduler threads borrow up to their limit, callers on threads of "
          "their own every connection",
          "[pool_model]") {
  in_place_shelf shelf{3, 1};
  reports r;
  shelf.attach(r.callback());
  for (slot_id slot : {1, 2, 3})
    shelf.put(slot, connection());
  auto session = shelf.borrow(); // a session, on a scheduler thread
  REQUIRE(session);
  CHECK_FALSE(shelf.borrow(in_place_shelf::borrower::scheduler)); // the limit: one
  auto client_a = shelf.borrow(in_place_shelf::borrower::own_thread);
  auto client_b = shelf.borrow(in_place_shelf::borrower::own_thread);
  REQUIRE(client_a);
  REQUIRE(client_b);
  CHECK_FALSE(shelf.borrow(in_place_shelf::borrower::own_thread)); // none left
  shelf.give_back(std::move(client_a), true);
  CHECK_FALSE(shelf.borrow()); // a free connection, but the scheduler's one is lent
  shelf.give_back(std::move(session), true);
  auto again = shelf.borrow();
  REQUIRE(again);
  shelf.give_back_unused(std::move(again));
  shelf.give_back(std::move(client_b), true);
  CHECK(shelf.available() == 3);
  CHECK(shelf.loans() == 3);
}

TEST_CASE("in-place shelf: a loan given back unused stays on the shelf and is not counted",
          "[pool_model]") {
  in_place_shelf shelf{1};
  reports r;
  shelf.attach(r.callback());
  shelf.put(3, connection());
  auto lent = shelf.borrow();
  REQUIRE(lent);
  shelf.give_back_unused(std::move(lent));
  CHECK(shelf.available() == 1);
  CHECK(shelf.loans() == 0);
  // Recalled while lent, an unused loan is reported usable: the engine keeps it.
  lent = shelf.borrow();
  REQUIRE(lent);
  CHECK_FALSE(shelf.recall(3));
  shelf.give_back_unused(std::move(lent));
  CHECK(shelf.available() == 0);
  REQUIRE(r.seen.size() == 1);
  CHECK(r.seen[0] == std::make_pair(slot_id{3}, true));
  CHECK(shelf.loans() == 0);
}

TEST_CASE("in-place shelf: a connection is lent, given back and lent again", "[pool_model]") {
  in_place_shelf shelf{2};
  reports r;
  shelf.attach(r.callback());
  CHECK_FALSE(shelf.borrow()); // nothing put: the read goes to the engine
  auto conn = connection();
  shelf.put(5, conn);
  CHECK(shelf.available() == 1);
  auto lent = shelf.borrow();
  REQUIRE(lent);
  CHECK(lent.slot == 5);
  CHECK(lent.handle == conn);
  CHECK(shelf.available() == 0);
  CHECK(shelf.lent() == 1);
  CHECK_FALSE(shelf.borrow()); // lent to one borrower at a time
  shelf.give_back(std::move(lent), true);
  CHECK(shelf.available() == 1);
  CHECK(shelf.lent() == 0);
  CHECK(shelf.borrow().slot == 5);
  CHECK(shelf.loans() == 2);
  CHECK(r.seen.empty()); // a usable return stays on the shelf, unreported
}

TEST_CASE("in-place shelf: the most recently given back is lent first", "[pool_model]") {
  in_place_shelf shelf{3};
  shelf.attach(nullptr);
  shelf.put(1, connection());
  shelf.put(2, connection());
  auto a = shelf.borrow();
  auto b = shelf.borrow();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a.slot == 2);
  CHECK(b.slot == 1);
  shelf.give_back(std::move(b), true); // slot 1 is warmest now
  shelf.give_back(std::move(a), true);
  CHECK(shelf.borrow().slot == 2);
}

TEST_CASE("in-place shelf: a caller gets the connection it had last when that one is free",
          "[pool_model]") {
  in_place_shelf shelf{3};
  shelf.attach(nullptr);
  shelf.put(1, connection());
  shelf.put(2, connection());
  shelf.put(3, connection());
  auto first = shelf.borrow(in_place_shelf::borrower::own_thread);
  auto second = shelf.borrow(in_place_shelf::borrower::own_thread);
  REQUIRE(first.slot == 3);
  REQUIRE(second.slot == 2);
  auto mine = first.key;
  shelf.give_back(std::move(first), true);
  shelf.give_back(std::move(second), true); // slot 2 is the most recently given back
  // This caller's own is free: it gets it, not the most recently given back.
  auto again = shelf.borrow(in_place_shelf::borrower::own_thread, mine);
  CHECK(again.slot == 3);
  // Its own is lent, or the key is unknown: the most recently given back.
  auto fallback = shelf.borrow(in_place_shelf::borrower::own_thread, mine);
  CHECK(fallback.slot == 2);
  auto unknown = shelf.borrow(in_place_shelf::borrower::own_thread, 999);
  CHECK(unknown.slot == 1);
  shelf.give_back(std::move(again), true);
  shelf.give_back(std::move(fallback), true);
  shelf.give_back(std::move(unknown), true);
}

TEST_CASE("in-place shelf: only a caller on a thread of its own marks the shelf wanted",
          "[pool_model]") {
  in_place_shelf shelf{2, 1, in_place_shelf::pool_kind::shared};
  shelf.attach(nullptr);
  CHECK(shelf.kind() == in_place_shelf::pool_kind::shared);
  CHECK_FALSE(shelf.wanted());
  CHECK_FALSE(shelf.borrow(in_place_shelf::borrower::scheduler)); // empty
  CHECK_FALSE(shelf.wanted());
  CHECK_FALSE(shelf.borrow(in_place_shelf::borrower::own_thread)); // empty, but wanted now
  CHECK(shelf.wanted());
}

TEST_CASE("in-place shelf: an unusable connection leaves and the engine hears of it",
          "[pool_model]") {
  in_place_shelf shelf{1};
  reports r;
  shelf.attach(r.callback());
  shelf.put(3, connection());
  auto lent = shelf.borrow();
  shelf.give_back(std::move(lent), false);
  CHECK(shelf.available() == 0);
  CHECK(shelf.lent() == 0);
  REQUIRE(r.seen.size() == 1);
  CHECK(r.seen[0] == std::make_pair(slot_id{3}, false));
  CHECK_FALSE(shelf.borrow());
}

TEST_CASE("in-place shelf: a recall takes an available connection at once and a lent one when "
          "it is given back",
          "[pool_model]") {
  in_place_shelf shelf{2};
  reports r;
  shelf.attach(r.callback());
  shelf.put(1, connection());
  shelf.put(2, connection());
  auto lent = shelf.borrow(); // slot 2
  REQUIRE(lent.slot == 2);
  CHECK(shelf.recall(1));       // available: the engine has it now
  CHECK_FALSE(shelf.recall(1)); // gone from the shelf
  CHECK_FALSE(shelf.recall(2)); // lent: marked
  CHECK(shelf.available() == 0);
  CHECK(shelf.lent() == 1);
  shelf.give_back(std::move(lent), true);
  REQUIRE(r.seen.size() == 1);
  CHECK(r.seen[0] == std::make_pair(slot_id{2}, true)); // back to the engine, usable
  CHECK(shelf.available() == 0);
  CHECK_FALSE(shelf.borrow());
  CHECK_FALSE(shelf.recall(42)); // never on the shelf
}

TEST_CASE("in-place shelf: take_available hands the engine the least recently used free one",
          "[pool_model]") {
  in_place_shelf shelf{3};
  shelf.attach(nullptr);
  CHECK_FALSE(shelf.take_available());
  shelf.put(1, connection());
  shelf.put(2, connection());
  auto lent = shelf.borrow(); // 2
  CHECK(shelf.take_available() == slot_id{1});
  CHECK_FALSE(shelf.take_available()); // 2 is lent
  shelf.give_back(std::move(lent), true);
  CHECK(shelf.take_available() == slot_id{2});
}

TEST_CASE("in-place shelf: idle_timeout takes back connections no one borrowed for that long",
          "[pool_model]") {
  in_place_shelf shelf{3};
  shelf.attach(nullptr);
  shelf.put(1, connection());
  shelf.put(2, connection());
  shelf.put(3, connection());
  CHECK(shelf.take_unused(std::chrono::hours(1), 3).empty()); // all put just now
  auto lent = shelf.borrow();                                 // 3: lent ones stay
  // Unused for zero time: every available one qualifies; at most n leave, oldest first.
  CHECK(shelf.take_unused(std::chrono::nanoseconds{0}, 1) == std::vector<slot_id>{1});
  CHECK(shelf.take_unused(std::chrono::nanoseconds{0}, 5) == std::vector<slot_id>{2});
  shelf.give_back(std::move(lent), true);
  CHECK(shelf.available() == 1);
}

TEST_CASE("in-place shelf: recall_some takes available ones first, then marks lent ones",
          "[pool_model]") {
  in_place_shelf shelf{4};
  reports r;
  shelf.attach(r.callback());
  for (slot_id s = 1; s <= 4; ++s)
    shelf.put(s, connection());
  auto a = shelf.borrow(); // 4
  auto b = shelf.borrow(); // 3
  // Two wanted: the least recently used available ones.
  CHECK(shelf.recall_some(2) == std::vector<slot_id>{1, 2});
  CHECK(shelf.available() == 0);
  // One more wanted: a lent one is marked; asked again, the mark counts.
  CHECK(shelf.recall_some(1).empty());
  CHECK(shelf.recall_some(1).empty());
  shelf.give_back(std::move(a), true);
  shelf.give_back(std::move(b), true);
  REQUIRE(r.seen.size() == 1); // only the marked one came back to the engine
  CHECK(shelf.available() == 1);
}

TEST_CASE("in-place shelf: a new owner drops the old one's connections; lent ones close when "
          "given back, unreported",
          "[pool_model]") {
  in_place_shelf shelf{2};
  reports old_engine;
  reports new_engine;
  shelf.attach(old_engine.callback());
  auto idle = connection();
  std::weak_ptr<driver> idle_watch = idle;
  shelf.put(1, std::move(idle));
  shelf.put(2, connection());
  auto lent = shelf.borrow(); // slot 2
  std::weak_ptr<driver> lent_watch = lent.handle;
  shelf.attach(new_engine.callback());
  CHECK(idle_watch.expired()); // closed by the shelf: no one else held it
  CHECK(shelf.available() == 0);
  CHECK(shelf.lent() == 0);
  shelf.put(2, connection()); // the new engine's slot ids may repeat the old ones
  shelf.give_back(std::move(lent), false);
  CHECK(lent_watch.expired());
  CHECK(old_engine.seen.empty());
  CHECK(new_engine.seen.empty());
  CHECK(shelf.available() == 1); // the new slot 2 is untouched
  CHECK(shelf.borrow().slot == 2);
}

TEST_CASE("in-place shelf: shutdown cancels what is lent and lends nothing more", "[pool_model]") {
  in_place_shelf shelf{2};
  shelf.attach(nullptr);
  shelf.put(1, connection());
  shelf.put(2, connection());
  auto lent = shelf.borrow();
  REQUIRE(lent);
  shelf.cancel_for_shutdown();
  CHECK(lent.handle->stopping());
  CHECK_FALSE(shelf.borrow());
  shelf.give_back(std::move(lent), true);
  CHECK_FALSE(shelf.borrow());
}

TEST_CASE("in-place shelf: many borrowers at once never share a connection", "[pool_model]") {
  // Each connection counts its borrowers; two at once on one is the bug this catches.
  constexpr int connections = 3;
  in_place_shelf shelf{connections};
  reports r;
  shelf.attach(r.callback());
  std::vector<std::shared_ptr<driver>> conns;
  std::vector<std::atomic<int>> inside(connections);
  for (int i = 0; i < connections; ++i) {
    conns.push_back(connection());
    shelf.put(static_cast<slot_id>(i), conns.back());
  }
  std::atomic<bool> shared{false};
  std::atomic<int> served{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2'000; ++i) {
        auto lent = shelf.borrow();
        if (!lent)
          continue;
        if (inside[lent.slot].fetch_add(1) != 0)
          shared = true;
        served += 1;
        inside[lent.slot].fetch_sub(1);
        shelf.give_back(std::move(lent), true);
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK_FALSE(shared);
  CHECK(served > 0);
  CHECK(static_cast<int>(shelf.loans()) == served);
  CHECK(shelf.available() == static_cast<size_t>(connections));
  CHECK(r.seen.empty());
}
