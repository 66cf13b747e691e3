// A TCP proxy between cafdb and a test server that can fall silent: while paused it
// forwards nothing in either direction and closes nothing, as a network that drops
// packets (no RST, no FIN). New connections are accepted and held silent too. On
// resume, what was held goes through, as TCP would retransmit it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace cafdb::test {

class tcp_proxy {
 public:
  /// Listens on 127.0.0.1 (a free port) and forwards to `host`:`port`.
  tcp_proxy(const std::string& host, uint16_t port);
  ~tcp_proxy();

  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  uint16_t port() const { return port_; }

  /// Stops forwarding in both directions; sockets stay open.
  void pause();
  /// Forwards again, the data held meanwhile first.
  void resume();
  /// While true, connections opened from now on are accepted and held silent (as
  /// while paused); those already open keep flowing.
  void hold_new_connections(bool hold);

 private:
  void run();

  std::string host_;
  uint16_t target_port_;
  uint16_t port_ = 0;
  int listener_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> paused_{false};
  std::atomic<bool> holding_new_{false};
  std::atomic<bool> stopping_{false};
  std::thread worker_;
};

/// The URL `url` (postgresql://user@host:port/db...) with host and port replaced by the
/// proxy's.
std::string through_proxy(const std::string& url, const tcp_proxy& proxy);

} // namespace cafdb::test
