// Type registration, spawn_database and the runtime.
#include <caf/all.hpp>

#include "actors/database.hpp"
#include "actors/engine.hpp"
#include "cafdb/database.hpp"
#include "log.hpp"

namespace cafdb {

void add_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::cafdb>();
  cfg.add_message_types<caf::id_block::cafdb_handles>();
  cfg.add_error_category(error_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           auto err = caf::error{code, error_category, ctx};
                           return render(err);
                         });
}

database_actor spawn_database(caf::actor_system& sys, config cfg) {
  auto shared = std::make_shared<const config>(std::move(cfg));
  return spawn_database(
      sys, shared, [shared](engine_role role) { return default_driver_factory(shared, role); });
}

runtime::runtime(config cfg) {
  system_config_ = std::make_unique<caf::actor_system_config>();
  add_types(*system_config_);
  // CAF's idle workers poll every 50 us for 25 ms before they sleep on a condition
  // variable. A database runtime is mostly waiting on its connection threads and the
  // server, and on two cores that polling took ~14% of the CPU they need (perf, see
  // docs/benchmarks.md). Idle workers go straight to the condition variable instead;
  // new work still wakes them at once.
  system_config_->set("work-stealing.moderate-poll-attempts", size_t{0});
  system_ = std::make_unique<caf::actor_system>(*system_config_);
  auto db = spawn_database(*system_, std::move(cfg));
  client_ = std::make_unique<class client>(*system_, std::move(db));
}

caf::error runtime::stop() {
  if (stopped_)
    return {};
  stopped_ = true;
  auto err = client_->stop();
  if (err)
    caf::anon_send_exit(client_->handle(), caf::exit_reason::kill);
  return err;
}

runtime::~runtime() {
  stop();
  // Every handle must be gone before ~actor_system, or it waits forever.
  client_.reset();
  system_.reset();
}

} // namespace cafdb
