// An engine's health, without actors: up, or down (lost its server) and reconnecting
// with a doubling backoff.
//
//            lose (server unreachable)                recovered
//   up ─────────────────────────────────────► down ─────────────────► up
//                                              │ ▲ next_retry: backoff x2 from 100 ms
//                                              └─┘ up to 2 s, spread +-20%
//
// Invariant: the backoff is zero while up, and within [100 ms, 2 s] while down once
// the first retry was scheduled.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cafdb::pool {

class engine_health {
 public:
  using duration = std::chrono::nanoseconds;

  bool down() const { return down_; }
  /// Why the server was lost (the last failed attempt's error); empty while up.
  const std::string& reason() const { return reason_; }
  /// Connection attempts of the main pool so far (first connect and reconnects).
  int32_t attempts() const { return attempts_; }
  void count_attempt() { attempts_ += 1; }

  /// The server was lost; false when the engine was down already.
  bool lose(std::string reason);

  /// A reconnect attempt failed with `reason`; true when the reason changed (worth
  /// telling subscribers again).
  bool still_down(std::string reason);

  /// A reconnect attempt succeeded.
  void recovered();

  /// The delay before the next reconnect attempt; `spread` in [0.8, 1.2] keeps engines
  /// (and processes) that lost the same server from retrying in lockstep.
  duration next_retry(double spread);

 private:
  bool down_ = false;
  std::string reason_;
  duration backoff_{0};
  int32_t attempts_ = 0;
};

} // namespace cafdb::pool
