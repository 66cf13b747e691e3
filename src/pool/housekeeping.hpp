// How often an engine's housekeeping runs: recycling and reaping idle connections
// (pool_recycle, idle_timeout), keeping min_idle, watching leases (leak_threshold,
// lease_timeout) and logging stats (stats_interval). The work itself is the pool
// model's (sweep_idle, watch_leases, wanted_openings).
#pragma once

#include <chrono>

#include "cafdb/core/config.hpp"

namespace cafdb::pool {

/// A fraction of the shortest period housekeeping serves, within [10 ms, 1 s]; zero
/// when no option needs it.
std::chrono::nanoseconds housekeeping_period(const config& cfg);

} // namespace cafdb::pool
