// Configuration loaders: URL, JSON object or file, environment. One option table
// serves all of them, so every source accepts and rejects the same keys.
#include "cafdb/config.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

namespace cafdb {

namespace {

using json = nlohmann::json;

db_error config_error(const std::string& message) {
  return db_error{errc::invalid_config, message, "", ""};
}

// Reads an integer from a JSON number or a decimal string.
outcome<int64_t> read_int(const std::string& key, const json& in, int64_t min, int64_t max) {
  int64_t number = 0;
  if (in.is_number_integer()) {
    number = in.get<int64_t>();
  } else if (in.is_string()) {
    auto text = in.get<std::string>();
    char* end = nullptr;
    number = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0')
      return config_error("option '" + key + "' must be a whole number, got '" + text + "'");
  } else {
    return config_error("option '" + key + "' must be a whole number, got " + in.dump());
  }
  if (number < min || number > max)
    return config_error("option '" + key + "' must be between " + std::to_string(min) + " and " +
                        std::to_string(max) + ", got " + std::to_string(number));
  return number;
}

// Reads a duration: a number of milliseconds, or a string "250ms", "5s", "2m", "1h".
outcome<millis> read_duration(const std::string& key, const json& in, bool allow_zero) {
  double amount = 0;
  if (in.is_number()) {
    amount = in.get<double>();
  } else if (in.is_string()) {
    auto text = in.get<std::string>();
    char* end = nullptr;
    amount = std::strtod(text.c_str(), &end);
    std::string unit = end ? end : "";
    if (end == text.c_str())
      return config_error("option '" + key + "' must be a duration like 250ms, 5s or 2m, got '" +
                          text + "'");
    if (unit == "ms" || unit.empty())
      ;
    else if (unit == "s")
      amount *= 1000;
    else if (unit == "m" || unit == "min")
      amount *= 60'000;
    else if (unit == "h")
      amount *= 3'600'000;
    else
      return config_error("option '" + key + "' has an unknown unit '" + unit +
                          "' (use ms, s, m or h)");
  } else {
    return config_error("option '" + key + "' must be a duration (milliseconds or \"5s\"), got " +
                        in.dump());
  }
  if (amount < 0 || (!allow_zero && amount == 0) || amount > 7 * 24 * 3'600'000.0)
    return config_error("option '" + key + "' must be " +
                        std::string{allow_zero ? "between 0" : "above 0"} + " and 7 days");
  return millis{static_cast<int64_t>(amount)};
}

outcome<bool> read_bool(const std::string& key, const json& in) {
  if (in.is_boolean())
    return in.get<bool>();
  if (in.is_string()) {
    auto text = in.get<std::string>();
    if (text == "true" || text == "1" || text == "yes" || text == "on")
      return true;
    if (text == "false" || text == "0" || text == "no" || text == "off")
      return false;
  }
  return config_error("option '" + key + "' must be true or false, got " + in.dump());
}

using setter = std::function<outcome<done>(config&, const std::string&, const json&)>;

setter int_option(int config::*field, int min, int max) {
  return [=](config& cfg, const std::string& key, const json& in) -> outcome<done> {
    auto number = read_int(key, in, min, max);
    if (!number)
      return number.error();
    cfg.*field = static_cast<int>(*number);
    return done{};
  };
}

setter duration_option(millis config::*field, bool allow_zero) {
  return [=](config& cfg, const std::string& key, const json& in) -> outcome<done> {
    auto duration = read_duration(key, in, allow_zero);
    if (!duration)
      return duration.error();
    cfg.*field = *duration;
    return done{};
  };
}

setter bool_option(bool config::*field) {
  return [=](config& cfg, const std::string& key, const json& in) -> outcome<done> {
    auto flag = read_bool(key, in);
    if (!flag)
      return flag.error();
    cfg.*field = *flag;
    return done{};
  };
}

const std::vector<std::pair<std::string, setter>>& option_table() {
  static const std::vector<std::pair<std::string, setter>> table = {
      {"pool_size", int_option(&config::pool_size, 1, 1000)},
      {"max_overflow", int_option(&config::max_overflow, 0, 1000)},
      {"pool_timeout", duration_option(&config::pool_timeout, false)},
      {"max_pending", int_option(&config::max_pending, 1, 1'000'000)},
      {"statement_timeout", duration_option(&config::statement_timeout, false)},
      {"session_idle_timeout", duration_option(&config::session_idle_timeout, true)},
      {"setup_timeout", duration_option(&config::setup_timeout, false)},
      {"connect_timeout", duration_option(&config::connect_timeout, false)},
      {"busy_timeout", duration_option(&config::busy_timeout, true)},
      {"shutdown_timeout", duration_option(&config::shutdown_timeout, true)},
      {"max_restarts", int_option(&config::max_restarts, 0, 1000)},
      {"restart_window", duration_option(&config::restart_window, false)},
      {"echo", bool_option(&config::echo)},
      {"echo_params", bool_option(&config::echo_params)},
      {"log_level",
       [](config& cfg, const std::string& key, const json& in) -> outcome<done> {
         static const char* levels[] = {"trace", "debug", "info", "warn", "error", "off"};
         if (in.is_string())
           for (auto level : levels)
             if (in.get<std::string>() == level) {
               cfg.log_level = level;
               return done{};
             }
         return config_error("option '" + key +
                             "' must be one of trace, debug, info, warn, error, off; got " +
                             in.dump());
       }},
  };
  return table;
}

std::string known_keys() {
  std::string out = "url";
  for (auto& entry : option_table())
    out += ", " + entry.first;
  return out;
}

std::string percent_decode(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit((unsigned char)text[i + 1]) &&
        std::isxdigit((unsigned char)text[i + 2])) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Replaces the password of `scheme://user:password@host` with ***.
std::string redact(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    return url.size() > 16 ? url.substr(0, 16) + "..." : url;
  auto at = url.find('@', scheme_end + 3);
  if (at == std::string::npos)
    return url;
  auto colon = url.find(':', scheme_end + 3);
  if (colon == std::string::npos || colon > at)
    return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

} // namespace

std::string config::redacted_url() const {
  return redact(url);
}

outcome<done> apply_option(config& cfg, const std::string& key, const json& in) {
  if (key == "url") {
    // A URL carries its own options in its query: it replaces the whole config, so
    // loaders apply it before any other key.
    if (!in.is_string())
      return config_error("option 'url' must be a string");
    auto parsed = config_from_url(in.get<std::string>());
    if (!parsed)
      return parsed.error();
    cfg = std::move(*parsed);
    return done{};
  }
  for (auto& entry : option_table())
    if (entry.first == key)
      return entry.second(cfg, key, in);
  return config_error("unknown option '" + key + "'; known options: " + known_keys());
}

outcome<config> config_from_url(const std::string& url) {
  config cfg;
  cfg.url = url;
  std::string query;
  auto malformed = [&](const std::string& why) {
    return config_error("malformed database URL '" + redact(url) + "': " + why +
                        "; expected sqlite:///relative.db, sqlite:////absolute/path.db or "
                        "sqlite::memory:");
  };
  if (url == "sqlite::memory:" || url == "sqlite://" || url == "sqlite:///:memory:") {
    cfg.path = ":memory:";
  } else if (url.rfind("sqlite:///", 0) == 0) {
    auto rest = url.substr(10);
    auto q = rest.find('?');
    if (q != std::string::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    cfg.path = percent_decode(rest);
    if (cfg.path.empty() || cfg.path == ":memory:")
      cfg.path = ":memory:";
  } else if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return config_error("PostgreSQL URLs are not supported by this build yet; use an sqlite:// "
                        "URL");
  } else if (url.rfind("sqlite:", 0) == 0) {
    return malformed("an SQLite URL needs three slashes before the path");
  } else if (url.find("://") == std::string::npos) {
    return malformed("no scheme");
  } else {
    return malformed("unknown scheme '" + url.substr(0, url.find("://")) + "'");
  }
  // Query parameters: SQLite's mode, then any cafdb option.
  size_t start = 0;
  while (start < query.size()) {
    auto end = query.find('&', start);
    if (end == std::string::npos)
      end = query.size();
    auto pair = query.substr(start, end - start);
    start = end + 1;
    if (pair.empty())
      continue;
    auto eq = pair.find('=');
    if (eq == std::string::npos)
      return malformed("query parameter '" + pair + "' has no value");
    auto key = percent_decode(pair.substr(0, eq));
    auto val = percent_decode(pair.substr(eq + 1));
    if (key == "mode") {
      if (val == "rw")
        cfg.create_if_missing = false;
      else if (val == "rwc")
        cfg.create_if_missing = true;
      else
        return config_error("option 'mode' must be rw or rwc, got '" + val + "'");
      continue;
    }
    if (key == "url")
      return config_error("option 'url' cannot be set inside a URL");
    if (auto applied = apply_option(cfg, key, json(val)); !applied)
      return applied.error();
  }
  return cfg;
}

outcome<config> config_from_json(const json& object) {
  if (!object.is_object())
    return config_error("a JSON configuration must be an object, got " +
                        std::string{object.type_name()});
  if (!object.contains("url"))
    return config_error("the JSON configuration has no 'url'");
  auto cfg = config_from_url(object["url"].is_string() ? object["url"].get<std::string>() : "");
  if (!object["url"].is_string())
    return config_error("option 'url' must be a string");
  if (!cfg)
    return cfg;
  for (auto& [key, val] : object.items())
    if (key != "url")
      if (auto applied = apply_option(*cfg, key, val); !applied)
        return applied.error();
  return cfg;
}

outcome<config> config_from_json_file(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return config_error("cannot read configuration file '" + path +
                        "': check that it exists and is readable");
  auto object = json::parse(in, nullptr, false);
  if (object.is_discarded())
    return config_error("configuration file '" + path + "' is not valid JSON");
  return config_from_json(object);
}

outcome<config> config_from_env() {
  auto url = std::getenv("CAFDB_URL");
  if (!url || !*url)
    return config_error("CAFDB_URL is not set: export CAFDB_URL=sqlite:///app.db (or another "
                        "database URL)");
  auto cfg = config_from_url(url);
  if (!cfg)
    return cfg;
  for (auto& entry : option_table()) {
    std::string name = "CAFDB_";
    for (auto ch : entry.first)
      name += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (auto text = std::getenv(name.c_str()))
      if (auto applied = entry.second(*cfg, entry.first + " (from " + name + ")", json(text));
          !applied)
        return applied.error();
  }
  return cfg;
}

} // namespace cafdb
