// Durations a clock can add to "now". A caller's "forever" (timespan::max()) would
// overflow `now + timeout` and expire at once; a year stands for "no limit".
#pragma once

#include <algorithm>
#include <chrono>

namespace cafdb {

constexpr std::chrono::nanoseconds no_limit = std::chrono::hours(24 * 365);

/// `t` within [0, no_limit].
inline std::chrono::nanoseconds bounded(std::chrono::nanoseconds t) {
  return std::clamp(t, std::chrono::nanoseconds{0}, no_limit);
}

} // namespace cafdb
