// Durations a clock can add to "now". A caller's "forever" (timespan::max()) would
// overflow `now + timeout` and expire at once; a year stands for "no limit".
#pragma once

#include <algorithm>
#include <chrono>

#include "cafdb/core/config.hpp"

namespace cafdb {

constexpr std::chrono::nanoseconds no_limit = std::chrono::hours(24 * 365);

/// `t` within [0, no_limit].
inline std::chrono::nanoseconds bounded(std::chrono::nanoseconds t) {
  return std::clamp(t, std::chrono::nanoseconds{0}, no_limit);
}

/// A request's deadline: its own request_timeout, else the configured statement_timeout
/// and a second. It trails the server's statement_timeout, so the server cancels first
/// and the connection stays usable; this deadline only catches a hung link.
inline std::chrono::nanoseconds request_deadline(std::chrono::nanoseconds request_timeout,
                                                 const config& cfg) {
  if (request_timeout.count() > 0)
    return bounded(request_timeout);
  return std::chrono::nanoseconds{cfg.statement_timeout} + std::chrono::seconds(1);
}

} // namespace cafdb
