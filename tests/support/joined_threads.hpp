// Threads a test starts and always joins: at its end, or when a failed REQUIRE leaves
// it early (a std::thread destroyed unjoined ends the whole test program).
#pragma once

#include <thread>
#include <utility>
#include <vector>

namespace cafdb::test {

class joined_threads {
 public:
  joined_threads() = default;
  joined_threads(const joined_threads&) = delete;
  joined_threads& operator=(const joined_threads&) = delete;
  ~joined_threads() { join(); }

  template <class Fn>
  void start(Fn&& fn) {
    threads_.emplace_back(std::forward<Fn>(fn));
  }

  /// Waits for every thread started so far.
  void join() {
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }

 private:
  std::vector<std::thread> threads_;
};

} // namespace cafdb::test
