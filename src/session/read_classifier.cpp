#include "session/read_classifier.hpp"

namespace cafdb::read_router {

read_classifier::read_classifier(std::function<std::unique_ptr<driver>()> open_connection)
    : open_connection_(std::move(open_connection)) {}

bool read_classifier::certainly_reads(const std::string& sql) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (!connection_) {
    auto fresh = open_connection_();
    if (!fresh || !fresh->open())
      return false; // tried again next time: the file may come back
    connection_ = std::move(fresh);
  }
  return connection_->certainly_reads(sql);
}

} // namespace cafdb::read_router
