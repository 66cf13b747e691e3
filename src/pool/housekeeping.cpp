#include "pool/housekeeping.hpp"

#include <algorithm>

namespace cafdb::pool {

std::chrono::nanoseconds housekeeping_period(const config& cfg) {
  using std::chrono::nanoseconds;
  nanoseconds tick{0};
  auto consider = [&](millis period, int fraction) {
    if (period.count() <= 0)
      return;
    auto candidate = nanoseconds{period} / fraction;
    tick = tick.count() == 0 ? candidate : std::min(tick, candidate);
  };
  consider(cfg.pool_recycle, 10);
  consider(cfg.idle_timeout, 4);
  consider(cfg.leak_threshold, 4);
  consider(cfg.lease_timeout, 4);
  consider(cfg.stats_interval, 1);
  if (cfg.min_idle > 0)
    consider(millis{1000}, 1);
  if (tick.count() == 0)
    return tick;
  return std::clamp(tick, nanoseconds{std::chrono::milliseconds(10)},
                    nanoseconds{std::chrono::seconds(1)});
}

} // namespace cafdb::pool
