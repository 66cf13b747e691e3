// Shared checks of the configuration fuzz targets (scripts/fuzz.sh builds and runs them).
//
// libFuzzer finds crashes, ASan memory errors and leaks, UBSan undefined behaviour
// (such as a NaN cast to an integer); these checks add what the loaders promise beyond
// not crashing: every failure is an `invalid_config` error with a message that is valid
// UTF-8 and holds no secret of the input, and every config they accept is in range.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

#include <libpq-fe.h>

#include "cafdb/core/config.hpp"

namespace cafdb::fuzz {

/// A password no other part of a generated input contains: any output holding it leaks.
inline const std::string marker = "S3cr3tZx7Qk";

/// What the target handed to the loader, for the report of a violation.
inline std::string& current_input() {
  static std::string text;
  return text;
}

[[noreturn]] inline void fail(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "\n*** property violated: %s\n%s\ninput: %s\n", what.c_str(), detail.c_str(),
               current_input().c_str());
  std::abort();
}

/// Whether `text` is valid UTF-8 (the messages travel as JSON).
inline bool valid_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    auto lead = static_cast<unsigned char>(text[i]);
    size_t length = lead < 0x80                    ? 1
                    : lead >= 0xC2 && lead <= 0xDF ? 2
                    : lead >= 0xE0 && lead <= 0xEF ? 3
                    : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                   : 0;
    if (length == 0 || i + length > text.size())
      return false;
    uint32_t code = length == 1 ? lead : lead & (0xFFu >> (length + 1));
    for (size_t k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0u) != 0x80u)
        return false;
      code = (code << 6) | (next & 0x3Fu);
    }
    if ((length == 3 && (code < 0x800 || (code >= 0xD800 && code <= 0xDFFF))) ||
        (length == 4 && (code < 0x10000 || code > 0x10FFFF)))
      return false;
    i += length;
  }
  return true;
}

inline std::string percent_decode(const std::string& text) {
  auto hex = [](char ch) {
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

inline std::string percent_encode(const std::string& text) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : text) {
    out += '%';
    out += digits[ch >> 4];
    out += digits[ch & 15];
  }
  return out;
}

inline size_t occurrences(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (auto i = text.find(part); !part.empty() && i != std::string::npos;
       i = text.find(part, i + 1))
    ++count;
  return count;
}

/// The secrets libpq itself finds in `url` (the password of its user info and of
/// password-like query keywords): an independent reading of the URL's structure. Only
/// secrets that appear once in the input, long enough not to occur by chance, count.
inline std::vector<std::string> libpq_secrets(const std::string& url, const std::string& input) {
  std::vector<std::string> out;
  if (url.find('\0') != std::string::npos)
    return out;
  char* err = nullptr;
  auto options = PQconninfoParse(url.c_str(), &err);
  if (err)
    PQfreemem(err);
  if (!options)
    return out;
  for (auto o = options; o->keyword; ++o) {
    std::string keyword = o->keyword;
    if (o->val && (keyword == "password" || keyword == "sslpassword")) {
      std::string secret = o->val;
      if (secret.size() >= 6 && occurrences(input, secret) <= 1 &&
          occurrences(percent_decode(input), secret) <= 1)
        out.push_back(secret);
    }
  }
  PQconninfoFree(options);
  return out;
}

/// Everything a caller may show of what a loader returned.
inline std::string shown(const outcome<config>& result) {
  if (!result)
    return result.error().message;
  return result->redacted_url() + "\n" + result->display + "\n" + result->read_display;
}

/// `text` with each letter and digit replaced by the next one: the same structure to a
/// parser, different characters.
inline std::string rotated(std::string text) {
  for (auto& ch : text)
    if (ch >= 'a' && ch <= 'z')
      ch = ch == 'z' ? 'a' : static_cast<char>(ch + 1);
    else if (ch >= 'A' && ch <= 'Z')
      ch = ch == 'Z' ? 'A' : static_cast<char>(ch + 1);
    else if (ch >= '0' && ch <= '9')
      ch = ch == '9' ? '0' : static_cast<char>(ch + 1);
  return text;
}

inline std::string replaced(std::string text, const std::string& from, const std::string& to) {
  for (auto i = text.find(from); i != std::string::npos; i = text.find(from, i + to.size()))
    text.replace(i, from.size(), to);
  return text;
}

/// Drops the secrets that a loader's output also shows when the input holds a different
/// secret in their place: they come from the loader's own words ("..., log_level)"), not
/// from the input. `load` runs the loader on an input.
template <class Load>
std::vector<std::string> differential(std::vector<std::string> secrets, const std::string& input,
                                      const outcome<config>& result, Load load) {
  auto text = shown(result);
  std::vector<std::string> out;
  for (auto& secret : secrets) {
    if (text.find(secret) != std::string::npos && rotated(secret) != secret &&
        shown(load(replaced(input, secret, rotated(secret)))).find(secret) != std::string::npos)
      continue;
    out.push_back(secret);
  }
  return out;
}

inline void check_text(const std::string& what, const std::string& text,
                       const std::vector<std::string>& secrets) {
  if (!valid_utf8(text))
    fail(what + " is not valid UTF-8", text);
  for (auto& secret : secrets)
    if (text.find(secret) != std::string::npos)
      fail(what + " shows a secret", "secret: " + secret + "\ntext: " + text);
}

inline void check_duration(const char* name, millis value, bool allow_zero) {
  constexpr int64_t week = 7LL * 24 * 3600 * 1000;
  if (value.count() < (allow_zero ? 0 : 1) || value.count() > week)
    fail(std::string{"accepted "} + name + " out of range", std::to_string(value.count()));
  // What the actors do with it: a caf::timespan (nanoseconds) added to a time point.
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(value);
  (void)deadline;
}

/// Checks what a loader returned: an error as promised, or a config in range.
inline void check_outcome(const outcome<config>& result, const std::vector<std::string>& secrets) {
  if (!result) {
    auto& err = result.error();
    if (err.code != errc::invalid_config)
      fail("an error that is not invalid_config", err.message);
    if (err.message.empty())
      fail("an error without a message", "");
    check_text("an error message", err.message, secrets);
    return;
  }
  auto& cfg = *result;
  check_text("redacted_url()", cfg.redacted_url(), secrets);
  check_text("display", cfg.display, secrets);
  check_text("read_display", cfg.read_display, secrets);
  if (cfg.pool_size < 1 || cfg.pool_size > 1000 || cfg.max_overflow < 0 ||
      cfg.max_overflow > 1000 || cfg.max_pending < 1 || cfg.max_pending > 1'000'000 ||
      cfg.min_idle < 0 || cfg.min_idle > 1000 || cfg.max_restarts < 0 || cfg.max_restarts > 1000)
    fail("accepted an integer option out of range", "");
  check_duration("pool_timeout", cfg.pool_timeout, false);
  check_duration("pool_recycle", cfg.pool_recycle, true);
  check_duration("pre_ping_after", cfg.pre_ping_after, true);
  check_duration("idle_timeout", cfg.idle_timeout, true);
  check_duration("leak_threshold", cfg.leak_threshold, true);
  check_duration("lease_timeout", cfg.lease_timeout, true);
  check_duration("stats_interval", cfg.stats_interval, true);
  check_duration("statement_timeout", cfg.statement_timeout, false);
  check_duration("session_idle_timeout", cfg.session_idle_timeout, true);
  check_duration("setup_timeout", cfg.setup_timeout, false);
  check_duration("connect_timeout", cfg.connect_timeout, false);
  check_duration("busy_timeout", cfg.busy_timeout, true);
  check_duration("shutdown_timeout", cfg.shutdown_timeout, true);
  check_duration("restart_window", cfg.restart_window, false);
  if (cfg.engine == engine_kind::sqlite && cfg.path.find('\0') != std::string::npos)
    fail("accepted an SQLite path with a NUL byte", "");
  if (cfg.conninfo.find('\0') != std::string::npos)
    fail("accepted a connection string with a NUL byte", "");
}

/// A file of this process that each run rewrites (loaders read paths, not bytes).
class scratch_file {
 public:
  explicit scratch_file(const char* suffix) {
    path_ = "/tmp/cafdb-fuzz-" + std::to_string(::getpid()) + suffix;
  }
  ~scratch_file() { std::remove(path_.c_str()); }
  const std::string& write(const std::string& bytes) {
    if (auto out = std::fopen(path_.c_str(), "wb")) {
      std::fwrite(bytes.data(), 1, bytes.size(), out);
      std::fclose(out);
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Every environment variable config_from_env reads.
inline std::vector<std::string> env_names() {
  std::vector<std::string> names = {"CAFDB_URL", "DB_USERNAME", "DB_PASSWORD",
                                    "DB_HOST",   "DB_PORT",     "DB_NAME"};
  for (auto option : {"POOL_SIZE",
                      "MAX_OVERFLOW",
                      "POOL_TIMEOUT",
                      "MAX_PENDING",
                      "MIN_IDLE",
                      "POOL_RECYCLE",
                      "POOL_PRE_PING",
                      "PRE_PING_AFTER",
                      "IDLE_TIMEOUT",
                      "LEAK_THRESHOLD",
                      "LEASE_TIMEOUT",
                      "STATS_INTERVAL",
                      "STATEMENT_TIMEOUT",
                      "SESSION_IDLE_TIMEOUT",
                      "SETUP_TIMEOUT",
                      "CONNECT_TIMEOUT",
                      "BUSY_TIMEOUT",
                      "SHUTDOWN_TIMEOUT",
                      "MAX_RESTARTS",
                      "RESTART_WINDOW",
                      "ECHO",
                      "CREATE_ALL",
                      "JSON_ERRORS",
                      "MIGRATIONS_DIR",
                      "SCHEMA_FILE",
                      "ECHO_PARAMS",
                      "READ_IN_PLACE",
                      "READ_URL",
                      "LOG_LEVEL"})
    names.push_back(std::string{"CAFDB_"} + option);
  return names;
}

inline void clear_environment() {
  for (auto& name : env_names())
    ::unsetenv(name.c_str());
}

} // namespace cafdb::fuzz
