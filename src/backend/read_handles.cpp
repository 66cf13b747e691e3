#include "backend/read_handles.hpp"

namespace cafdb {

read_handles::read_handles(opener open, size_t capacity)
    : open_(std::move(open)), capacity_(capacity) {}

std::unique_ptr<driver> read_handles::borrow() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!idle_.empty()) {
      auto handle = std::move(idle_.back());
      idle_.pop_back();
      lent_count_ += 1;
      return handle;
    }
    if (open_count_ >= capacity_)
      return nullptr;
    open_count_ += 1; // a place for the handle opened below, outside the lock
  }
  auto handle = open_();
  bool opened = handle && handle->open();
  std::lock_guard<std::mutex> guard{mtx_};
  if (opened) {
    lent_count_ += 1;
    return handle;
  }
  open_count_ -= 1;
  return nullptr;
}

void read_handles::give_back(std::unique_ptr<driver> handle, bool usable) {
  if (!handle)
    return;
  std::unique_ptr<driver> closing; // closed outside the lock
  std::lock_guard<std::mutex> guard{mtx_};
  if (usable) {
    idle_.push_back(std::move(handle));
    return;
  }
  closing = std::move(handle);
  open_count_ -= 1;
}

size_t read_handles::open_count() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return open_count_;
}

uint64_t read_handles::lent_count() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return lent_count_;
}

} // namespace cafdb
