// Reader handles that sessions borrow to run an autocommit read in place, on their own
// thread, with no message to the engine (SQLite file databases; docs/benchmarks.md).
//
// Thread-safe. Handles are opened on first demand, up to `capacity`; a borrower that
// finds none free gets nothing and takes the engine's path instead, so no one ever
// waits here. Each read runs with a deadline (`driver::set_deadline`), so a borrowed
// handle blocks its thread for at most that long.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/driver.hpp"

namespace cafdb {

class read_handles {
 public:
  using opener = std::function<std::unique_ptr<driver>()>;

  read_handles(opener open, size_t capacity);

  /// A handle to use now and give back, or null when every handle is lent out (or one
  /// could not be opened: the engine's path then reports the error).
  std::unique_ptr<driver> borrow();

  /// Returns a borrowed handle; `usable` false closes it instead (its state is unknown).
  void give_back(std::unique_ptr<driver> handle, bool usable);

  /// The database is stopping: every lent handle's statement is cancelled
  /// (driver::cancel_for_shutdown) and nothing more is lent.
  void cancel_for_shutdown();

  /// Handles open, lent ones included.
  size_t open_count() const;

  /// Handles lent out since start.
  uint64_t lent_count() const;

 private:
  opener open_;
  size_t capacity_;
  mutable std::mutex mtx_;
  std::vector<std::unique_ptr<driver>> idle_;
  /// The handles lent out (owned by their borrowers until given back).
  std::vector<driver*> lent_;
  bool stopping_ = false;
  /// Idle, lent, and being opened.
  size_t open_count_ = 0;
  uint64_t lent_count_ = 0;
};

} // namespace cafdb
