#include "support/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <vector>

namespace cafdb::test {

namespace {

struct link {
  int client = -1;
  int server = -1;
  std::string to_server; // read from the client, not yet written
  std::string to_client;
  bool closed = false;
};

// Reads what `from` has and appends it to `buffer`; false at end of stream or error.
bool read_into(int from, std::string& buffer) {
  char chunk[16384];
  auto n = ::read(from, chunk, sizeof chunk);
  if (n <= 0)
    return n < 0 && (errno == EAGAIN || errno == EINTR);
  buffer.append(chunk, static_cast<size_t>(n));
  return true;
}

// Writes as much of `buffer` as `to` takes; false on error.
bool write_from(int to, std::string& buffer) {
  if (buffer.empty())
    return true;
  auto n = ::send(to, buffer.data(), buffer.size(), MSG_NOSIGNAL);
  if (n < 0)
    return errno == EAGAIN || errno == EINTR;
  buffer.erase(0, static_cast<size_t>(n));
  return true;
}

int connect_to(const std::string& host, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

} // namespace

tcp_proxy::tcp_proxy(const std::string& host, uint16_t port) : host_(host), target_port_(port) {
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener_, 64) != 0)
    throw std::runtime_error("tcp_proxy: cannot listen on 127.0.0.1");
  socklen_t len = sizeof addr;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (::pipe(wake_) != 0)
    throw std::runtime_error("tcp_proxy: no pipe");
  worker_ = std::thread([this] { run(); });
}

tcp_proxy::~tcp_proxy() {
  stopping_ = true;
  char byte = 0;
  [[maybe_unused]] auto written = ::write(wake_[1], &byte, 1);
  worker_.join();
  ::close(listener_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void tcp_proxy::pause() {
  paused_ = true;
  char byte = 0;
  [[maybe_unused]] auto written = ::write(wake_[1], &byte, 1);
}

void tcp_proxy::resume() {
  paused_ = false;
  char byte = 0;
  [[maybe_unused]] auto written = ::write(wake_[1], &byte, 1);
}

void tcp_proxy::hold_new_connections(bool hold) {
  holding_new_ = hold;
  char byte = 0;
  [[maybe_unused]] auto written = ::write(wake_[1], &byte, 1);
}

void tcp_proxy::run() {
  std::vector<link> links;
  // Accepted while paused or holding new connections: connected to the server later.
  std::vector<int> unconnected;
  while (!stopping_) {
    bool paused = paused_;
    if (!paused && !holding_new_) {
      for (auto fd : unconnected) {
        int server = connect_to(host_, target_port_);
        if (server < 0) {
          ::close(fd);
          continue;
        }
        ::fcntl(fd, F_SETFL, O_NONBLOCK);
        links.push_back(link{fd, server, {}, {}, false});
      }
      unconnected.clear();
    }
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listener_, POLLIN, 0});
    if (!paused)
      for (auto& l : links) {
        fds.push_back(
            {l.client, static_cast<short>(POLLIN | (l.to_client.empty() ? 0 : POLLOUT)), 0});
        fds.push_back(
            {l.server, static_cast<short>(POLLIN | (l.to_server.empty() ? 0 : POLLOUT)), 0});
      }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR)
      return;
    if (fds[0].revents & POLLIN) {
      char buffer[64];
      [[maybe_unused]] auto n = ::read(wake_[0], buffer, sizeof buffer);
    }
    if (fds[1].revents & POLLIN) {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd >= 0)
        unconnected.push_back(fd);
    }
    if (paused)
      continue;
    for (size_t i = 0; i < links.size() && 2 + 2 * i + 1 < fds.size(); ++i) {
      auto& l = links[i];
      auto& c = fds[2 + 2 * i];
      auto& s = fds[2 + 2 * i + 1];
      bool ok = true;
      if (c.revents & (POLLIN | POLLHUP | POLLERR))
        ok = ok && read_into(l.client, l.to_server);
      if (s.revents & (POLLIN | POLLHUP | POLLERR))
        ok = ok && read_into(l.server, l.to_client);
      ok = ok && write_from(l.server, l.to_server) && write_from(l.client, l.to_client);
      l.closed = !ok;
    }
    for (auto& l : links)
      if (l.closed) {
        ::close(l.client);
        ::close(l.server);
      }
    links.erase(std::remove_if(links.begin(), links.end(), [](const link& l) { return l.closed; }),
                links.end());
  }
  for (auto& l : links) {
    ::close(l.client);
    ::close(l.server);
  }
  for (auto fd : unconnected)
    ::close(fd);
}

std::string through_proxy(const std::string& url, const tcp_proxy& proxy) {
  // postgresql://user[:password]@host:port/rest
  auto at = url.find('@');
  auto slash = url.find('/', at == std::string::npos ? url.find("://") + 3 : at);
  auto start = at == std::string::npos ? url.find("://") + 3 : at + 1;
  return url.substr(0, start) + "127.0.0.1:" + std::to_string(proxy.port()) + url.substr(slash);
}

} // namespace cafdb::test
