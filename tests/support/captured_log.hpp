// Captures every line the cafdb loggers write while it lives (log::add_sink: safe
// while actors log from other threads).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>

#include "log.hpp"

namespace cafdb::test {

class captured_log {
 public:
  captured_log() : sink_(std::make_shared<string_sink>()) { log::add_sink(sink_); }
  ~captured_log() { log::remove_sink(sink_); }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;

  /// What was written so far.
  std::string text() const { return sink_->text(); }
  bool contains(const std::string& part) const { return text().find(part) != std::string::npos; }
  void clear() { sink_->clear(); }

 private:
  // base_sink locks its mutex around every write; reading takes the same mutex.
  class string_sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::string text() {
      std::lock_guard<std::mutex> guard{mutex_};
      return lines_;
    }
    void clear() {
      std::lock_guard<std::mutex> guard{mutex_};
      lines_.clear();
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      spdlog::memory_buf_t formatted;
      formatter_->format(msg, formatted);
      lines_.append(formatted.data(), formatted.size());
    }
    void flush_() override {}

   private:
    std::string lines_;
  };

  std::shared_ptr<string_sink> sink_;
};

} // namespace cafdb::test
