#include "pool/pool_model.hpp"

namespace cafdb::pool {

const char* to_string(slot_state state) {
  switch (state) {
  case slot_state::opening:
    return "opening";
  case slot_state::idle:
    return "idle";
  case slot_state::leased:
    return "leased";
  case slot_state::reading:
    return "reading";
  case slot_state::pinging:
    return "pinging";
  case slot_state::returning:
    return "returning";
  case slot_state::shelved:
    return "shelved";
  }
  return "unknown";
}

void wait_samples::add(duration waited) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(waited).count();
  if (micros_.size() < capacity)
    micros_.push_back(us);
  else
    micros_[next_] = us;
  next_ = (next_ + 1) % capacity;
}

int64_t wait_samples::percentile_us(double q) const {
  if (micros_.empty())
    return 0;
  auto sorted = micros_;
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  auto k = std::max<size_t>(rank, 1) - 1;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
  return sorted[k];
}

} // namespace cafdb::pool
