#include "pool/health.hpp"

#include <algorithm>
#include <cassert>

namespace cafdb::pool {

bool engine_health::lose(std::string reason) {
  if (down_)
    return false;
  down_ = true;
  reason_ = std::move(reason);
  backoff_ = duration{0};
  return true;
}

bool engine_health::still_down(std::string reason) {
  assert(down_);
  if (reason == reason_)
    return false;
  reason_ = std::move(reason);
  return true;
}

void engine_health::recovered() {
  down_ = false;
  reason_.clear();
  backoff_ = duration{0};
}

engine_health::duration engine_health::next_retry(double spread) {
  assert(down_);
  backoff_ = backoff_.count() == 0 ? duration{std::chrono::milliseconds(100)}
                                   : std::min(backoff_ * 2, duration{std::chrono::seconds(2)});
  spread = std::clamp(spread, 0.8, 1.2);
  return duration{static_cast<int64_t>(static_cast<double>(backoff_.count()) * spread)};
}

} // namespace cafdb::pool
