// Whether SQL text only reads, asked of SQLite without running it, for a read-write
// request that finds no reader connection free on the in-place shelf.
//
// Such a statement went to the writer, which runs one statement at a time: a long read
// sent by a read-write call then held up every write for as long as it ran, while the
// reader pool had connections to spare (found from outside: quick writes waited 4-8 s).
// A statement that SQLite says only reads goes to the reader pool's queue instead.
//
// Invariants:
//   - It prepares, never runs: on a connection of its own (a reader's, query_only),
//     opened on first use and shared by the sessions under a mutex.
//   - "Reads" only when the driver is certain (driver::certainly_reads: one statement,
//     read-only by SQLite's word, no setting, no transaction control, nothing of the
//     connection's own state); anything it cannot tell, or a connection it cannot
//     open, answers "may write", which keeps the statement on the writer as before.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "backend/driver.hpp"

namespace cafdb::read_router {

class read_classifier {
 public:
  /// `open_connection` makes the (unopened) driver the classifier prepares on.
  explicit read_classifier(std::function<std::unique_ptr<driver>()> open_connection);

  read_classifier(const read_classifier&) = delete;
  read_classifier& operator=(const read_classifier&) = delete;

  /// True when `sql` certainly only reads (see above); false when unsure.
  bool certainly_reads(const std::string& sql);

 private:
  std::mutex mutex_;
  std::function<std::unique_ptr<driver>()> open_connection_;
  std::unique_ptr<driver> connection_;
};

} // namespace cafdb::read_router
