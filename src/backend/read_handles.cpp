#include "backend/read_handles.hpp"

#include <algorithm>

namespace cafdb {

read_handles::read_handles(opener open, size_t capacity)
    : open_(std::move(open)), capacity_(capacity) {}

std::unique_ptr<driver> read_handles::borrow() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_)
      return nullptr;
    if (!idle_.empty()) {
      auto handle = std::move(idle_.back());
      idle_.pop_back();
      lent_count_ += 1;
      lent_.push_back(handle.get());
      return handle;
    }
    if (open_count_ >= capacity_)
      return nullptr;
    open_count_ += 1; // a place for the handle opened below, outside the lock
  }
  auto handle = open_();
  bool opened = handle && handle->open();
  std::lock_guard<std::mutex> guard{mtx_};
  if (opened && !stopping_) {
    lent_count_ += 1;
    lent_.push_back(handle.get());
    return handle;
  }
  open_count_ -= 1;
  return nullptr; // a handle opened while stopping closes here, with the lock held: rare
}

void read_handles::cancel_for_shutdown() {
  std::lock_guard<std::mutex> guard{mtx_};
  stopping_ = true;
  for (auto* handle : lent_)
    handle->cancel_for_shutdown(); // never blocks (sqlite3_interrupt)
}

void read_handles::give_back(std::unique_ptr<driver> handle, bool usable) {
  if (!handle)
    return;
  std::unique_ptr<driver> closing; // closed outside the lock
  std::lock_guard<std::mutex> guard{mtx_};
  lent_.erase(std::remove(lent_.begin(), lent_.end(), handle.get()), lent_.end());
  if (usable && !stopping_) {
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
