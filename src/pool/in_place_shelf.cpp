#include "pool/in_place_shelf.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace cafdb::pool {

void in_place_shelf::attach(returned_fn returned) {
  std::vector<entry> dropped; // closed outside the lock (the drivers' destructors)
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& e : entries_) {
    if (e.lent)
      orphans_.push_back(std::move(e));
    else
      dropped.push_back(std::move(e));
  }
  entries_.clear();
  returned_ = std::move(returned);
  check();
}

void in_place_shelf::put(slot_id slot, std::shared_ptr<driver> handle) {
  std::lock_guard<std::mutex> guard{mtx_};
  entries_.push_back(
      entry{next_key_++, slot, std::move(handle), false, false, std::chrono::steady_clock::now()});
  check();
}

bool in_place_shelf::recall(slot_id slot) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = std::find_if(entries_.begin(), entries_.end(),
                        [&](const entry& e) { return e.slot == slot; });
  if (i == entries_.end())
    return false;
  if (i->lent) {
    i->recalled = true;
    return false;
  }
  entries_.erase(i);
  check();
  return true;
}

std::vector<slot_id> in_place_shelf::recall_some(size_t n) {
  std::vector<slot_id> out;
  std::lock_guard<std::mutex> guard{mtx_};
  size_t recalled = static_cast<size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const entry& e) { return e.recalled; }));
  // Available ones first, the least recently used first: the warm ones stay longest.
  for (auto i = entries_.begin(); i != entries_.end() && recalled < n;) {
    if (i->lent) {
      ++i;
      continue;
    }
    out.push_back(i->slot);
    recalled += 1;
    i = entries_.erase(i);
  }
  for (auto& e : entries_) {
    if (recalled >= n)
      break;
    if (e.lent && !e.recalled) {
      e.recalled = true;
      recalled += 1;
    }
  }
  check();
  return out;
}

std::vector<slot_id> in_place_shelf::take_unused(std::chrono::nanoseconds unused_for, size_t n) {
  std::vector<slot_id> out;
  auto cutoff = std::chrono::steady_clock::now() - unused_for;
  std::lock_guard<std::mutex> guard{mtx_};
  // Entries are in the order they were last given back: the longest unused come first.
  for (auto i = entries_.begin(); i != entries_.end() && out.size() < n;) {
    if (i->lent || i->since > cutoff) {
      ++i;
      continue;
    }
    out.push_back(i->slot);
    i = entries_.erase(i);
  }
  check();
  return out;
}

std::optional<slot_id> in_place_shelf::take_available() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = std::find_if(entries_.begin(), entries_.end(), [](const entry& e) { return !e.lent; });
  if (i == entries_.end())
    return std::nullopt;
  auto slot = i->slot;
  entries_.erase(i);
  check();
  return slot;
}

in_place_shelf::loan in_place_shelf::borrow(borrower who, uint64_t preferred) {
  bool scheduler = who == borrower::scheduler;
  if (!scheduler && !wanted())
    wanted_.store(true, std::memory_order_relaxed);
  std::lock_guard<std::mutex> guard{mtx_};
  if (stopping_ || (scheduler && scheduler_lent_ >= scheduler_limit_))
    return {};
  // The caller's own from last time, else the most recently given back: its pages are
  // warmest.
  auto i = entries_.rend();
  if (preferred != 0)
    i = std::find_if(entries_.rbegin(), entries_.rend(),
                     [&](const entry& e) { return e.key == preferred && !e.lent; });
  if (i == entries_.rend())
    i = std::find_if(entries_.rbegin(), entries_.rend(), [](const entry& e) { return !e.lent; });
  if (i == entries_.rend())
    return {};
  i->lent = true;
  loans_ += 1;
  if (scheduler)
    scheduler_lent_ += 1;
  check();
  return loan{i->slot, i->handle, i->key, scheduler, i->since};
}

void in_place_shelf::give_back(loan lent, bool usable) {
  if (!lent)
    return;
  returned_fn report;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (lent.scheduler)
      scheduler_lent_ -= 1;
    auto orphan = std::find_if(orphans_.begin(), orphans_.end(),
                               [&](const entry& e) { return e.key == lent.key; });
    if (orphan != orphans_.end()) {
      orphans_.erase(orphan);
      check();
      return; // the loan's handle closes after the lock is released
    }
    auto i = std::find_if(entries_.begin(), entries_.end(),
                          [&](const entry& e) { return e.key == lent.key; });
    if (i == entries_.end()) {
      std::fprintf(stderr, "cafdb: a reader connection was given back twice\n");
      std::abort();
    }
    if (usable && !i->recalled) {
      // Last is taken first (borrow): move it behind the others.
      auto back = std::move(*i);
      back.lent = false;
      back.since = std::chrono::steady_clock::now();
      entries_.erase(i);
      entries_.push_back(std::move(back));
      check();
      return;
    }
    entries_.erase(i);
    report = returned_;
    check();
  }
  // Outside the lock: the engine's callback sends a message.
  if (report)
    report(lent.slot, usable);
}

void in_place_shelf::give_back_unused(loan lent) {
  if (!lent)
    return;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    loans_ -= 1;
  }
  give_back(std::move(lent), true);
}

void in_place_shelf::cancel_for_shutdown() {
  std::lock_guard<std::mutex> guard{mtx_};
  stopping_ = true;
  for (auto* list : {&entries_, &orphans_})
    for (auto& e : *list)
      if (e.lent)
        e.handle->cancel_for_shutdown(); // never blocks (sqlite3_interrupt)
  check();
}

size_t in_place_shelf::available() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return static_cast<size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const entry& e) { return !e.lent; }));
}

size_t in_place_shelf::lent() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return static_cast<size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const entry& e) { return e.lent; }));
}

uint64_t in_place_shelf::loans() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return loans_;
}

void in_place_shelf::check() const {
#if defined(CAFDB_CHECK_INVARIANTS)
  auto fail = [](const char* what) {
    std::fprintf(stderr, "cafdb: the in-place shelf broke an invariant: %s\n", what);
    std::abort();
  };
  for (auto& e : entries_)
    if (!e.handle || (e.recalled && !e.lent))
      fail("(1) an entry without a connection, or recalled but not lent");
  for (auto& e : orphans_)
    if (!e.lent)
      fail("(3) an earlier owner's entry is available");
  if (entries_.size() > target_)
    fail("(1) more entries than the shelf's target");
  auto lent =
      std::count_if(entries_.begin(), entries_.end(), [](const entry& e) { return e.lent; });
  if (scheduler_lent_ > scheduler_limit_ ||
      scheduler_lent_ > static_cast<size_t>(lent) + orphans_.size())
    fail("(2) more loans to scheduler threads than the limit, or than loans");
#endif
}

} // namespace cafdb::pool
