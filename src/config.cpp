// Configuration loaders: URL, JSON object or file, environment. One option table
// serves all of them, so every source accepts and rejects the same keys.
#include "cafdb/config.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include <libpq-fe.h>
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
      {"min_idle", int_option(&config::min_idle, 0, 1000)},
      {"pool_recycle", duration_option(&config::pool_recycle, true)},
      {"pool_pre_ping", bool_option(&config::pool_pre_ping)},
      {"pre_ping_after", duration_option(&config::pre_ping_after, true)},
      {"idle_timeout", duration_option(&config::idle_timeout, true)},
      {"leak_threshold", duration_option(&config::leak_threshold, true)},
      {"lease_timeout", duration_option(&config::lease_timeout, true)},
      {"stats_interval", duration_option(&config::stats_interval, true)},
      {"statement_timeout", duration_option(&config::statement_timeout, false)},
      {"session_idle_timeout", duration_option(&config::session_idle_timeout, true)},
      {"setup_timeout", duration_option(&config::setup_timeout, false)},
      {"connect_timeout", duration_option(&config::connect_timeout, false)},
      {"busy_timeout", duration_option(&config::busy_timeout, true)},
      {"shutdown_timeout", duration_option(&config::shutdown_timeout, true)},
      {"max_restarts", int_option(&config::max_restarts, 0, 1000)},
      {"restart_window", duration_option(&config::restart_window, false)},
      {"echo", bool_option(&config::echo)},
      {"create_all", bool_option(&config::create_all)},
      {"json_errors", bool_option(&config::json_errors)},
      {"migrations_dir",
       [](config& cfg, const std::string& key, const json& in) -> outcome<done> {
         if (!in.is_string())
           return config_error("option '" + key + "' must be a directory path");
         cfg.migrations_dir = in.get<std::string>();
         return done{};
       }},
      {"schema_file",
       [](config& cfg, const std::string& key, const json& in) -> outcome<done> {
         if (!in.is_string())
           return config_error("option '" + key + "' must be the path of a JSON schema file");
         auto schema = schema_from_json_file(in.get<std::string>());
         if (!schema) {
           auto err = schema.error();
           err.code = errc::invalid_config;
           err.message = "option '" + key + "': " + err.message;
           return err;
         }
         cfg.schema_file = in.get<std::string>();
         cfg.schema = std::move(*schema);
         return done{};
       }},
      {"echo_params", bool_option(&config::echo_params)},
      {"read_in_place", bool_option(&config::read_in_place)},
      {"read_url",
       [](config& cfg, const std::string& key, const json& in) -> outcome<done> {
         if (!in.is_string())
           return config_error("option '" + key + "' must be a URL string");
         auto text = in.get<std::string>();
         if (text.empty()) {
           cfg.read_url.clear();
           cfg.read_conninfo.clear();
           cfg.read_display.clear();
           return done{};
         }
         auto reader = config_from_url(text);
         if (!reader) {
           auto err = reader.error();
           err.message = "option '" + key + "': " + err.message;
           return err;
         }
         if (reader->engine != engine_kind::postgresql)
           return config_error("option '" + key +
                               "' must be a postgresql:// URL (a replica for read-only sessions)");
         cfg.read_url = text;
         cfg.read_conninfo = reader->conninfo;
         cfg.read_display = reader->display;
         return done{};
       }},
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

// Splits "a=1&b=2" into its non-empty "key=value" parts.
std::vector<std::string> split_query(const std::string& query) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < query.size()) {
    auto end = query.find('&', start);
    if (end == std::string::npos)
      end = query.size();
    if (end > start)
      parts.push_back(query.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// Replaces the password of `scheme://user:password@host` and of a `password=` query
// parameter with ***.
std::string redact(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    return url.size() > 16 ? url.substr(0, 16) + "..." : url;
  std::string out = url;
  auto at = out.rfind('@', out.find('/', scheme_end + 3));
  auto colon = out.find(':', scheme_end + 3);
  if (at != std::string::npos && at > scheme_end && colon != std::string::npos && colon < at)
    out = out.substr(0, colon + 1) + "***" + out.substr(at);
  for (auto pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    auto end = out.find('&', pos);
    out = out.substr(0, pos + 9) + "***" + (end == std::string::npos ? "" : out.substr(end));
  }
  return out;
}

bool is_cafdb_option(const std::string& key) {
  for (auto& entry : option_table())
    if (entry.first == key)
      return true;
  return key == "mode";
}

// Quotes a value for a libpq keyword=value string.
std::string conninfo_quote(const std::string& text) {
  std::string out = "'";
  for (auto ch : text) {
    if (ch == '\\' || ch == '\'')
      out += '\\';
    out += ch;
  }
  return out + "'";
}

std::string percent_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : text) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

// Fills conninfo and display from libpq keyword/value pairs.
outcome<done> set_postgres_endpoint(config& cfg,
                                    const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string user, host, port, dbname;
  cfg.conninfo.clear();
  for (auto& [keyword, val] : kv) {
    if (keyword == "sslmode") {
      static const char* modes[] = {"disable", "allow",     "prefer",
                                    "require", "verify-ca", "verify-full"};
      if (std::find(std::begin(modes), std::end(modes), val) == std::end(modes))
        return config_error("sslmode '" + val +
                            "' is not valid; use disable, allow, prefer, require, verify-ca "
                            "or verify-full");
    }
    if (keyword == "user")
      user = val;
    else if (keyword == "host" || keyword == "hostaddr")
      host = host.empty() ? val : host;
    else if (keyword == "port")
      port = val;
    else if (keyword == "dbname")
      dbname = val;
    cfg.conninfo += keyword + "=" + conninfo_quote(val) + " ";
  }
  cfg.engine = engine_kind::postgresql;
  cfg.display = "postgresql://" + (user.empty() ? "" : user + "@") +
                (host.empty() ? "localhost" : host) + (port.empty() ? "" : ":" + port) + "/" +
                dbname;
  return done{};
}

outcome<config> postgres_from_url(const std::string& url) {
  config cfg;
  cfg.url = url;
  // cafdb's own options come out of the query; everything else is libpq's.
  auto q = url.find('?');
  std::string libpq_url = url.substr(0, q);
  std::vector<std::pair<std::string, std::string>> ours;
  std::string theirs;
  if (q != std::string::npos) {
    for (auto& pair : split_query(url.substr(q + 1))) {
      auto eq = pair.find('=');
      auto key = percent_decode(pair.substr(0, eq));
      if (eq != std::string::npos && is_cafdb_option(key) && key != "mode")
        ours.emplace_back(key, percent_decode(pair.substr(eq + 1)));
      else
        theirs += (theirs.empty() ? "" : "&") + pair;
    }
  }
  if (!theirs.empty())
    libpq_url += "?" + theirs;
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(libpq_url.c_str(), &err);
  if (!options) {
    std::string why = err ? err : "out of memory";
    if (err)
      PQfreemem(err);
    while (!why.empty() && why.back() == '\n')
      why.pop_back();
    return config_error("malformed PostgreSQL URL '" + redact(url) + "': " + why);
  }
  std::vector<std::pair<std::string, std::string>> kv;
  for (auto o = options; o->keyword; ++o)
    if (o->val)
      kv.emplace_back(o->keyword, o->val);
  PQconninfoFree(options);
  if (auto set = set_postgres_endpoint(cfg, kv); !set)
    return set.error();
  for (auto& [key, val] : ours)
    if (auto applied = apply_option(cfg, key, json(val)); !applied)
      return applied.error();
  return cfg;
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
                        "; expected sqlite:///relative.db, sqlite:////absolute/path.db, "
                        "sqlite::memory: or postgresql://user:password@host:5432/dbname");
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
    return postgres_from_url(url);
  } else if (url.rfind("sqlite:", 0) == 0) {
    return malformed("an SQLite URL needs three slashes before the path");
  } else if (url.find("://") == std::string::npos) {
    return malformed("no scheme");
  } else {
    return malformed("unknown scheme '" + url.substr(0, url.find("://")) + "'");
  }
  // Query parameters: SQLite's mode, then any cafdb option.
  for (auto& pair : split_query(query)) {
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

namespace {

// Reads KEY=VALUE lines; blank lines and # comments are skipped, values may be quoted,
// and `export KEY=VALUE` is accepted.
outcome<std::map<std::string, std::string>> read_dotenv(const std::string& path, bool must_exist) {
  std::map<std::string, std::string> vars;
  std::ifstream in{path};
  if (!in) {
    if (must_exist)
      return config_error("cannot read the .env file '" + path + "'");
    return vars;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#')
      continue;
    line = line.substr(first);
    if (line.rfind("export ", 0) == 0)
      line = line.substr(7);
    auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0)
      return config_error(".env file '" + path + "', line " + std::to_string(number) +
                          ": expected KEY=VALUE");
    auto key = line.substr(0, eq);
    while (!key.empty() && key.back() == ' ')
      key.pop_back();
    auto val = line.substr(eq + 1);
    auto start = val.find_first_not_of(' ');
    val = start == std::string::npos ? "" : val.substr(start);
    if (val.size() >= 2 && (val.front() == '"' || val.front() == '\'') && val.back() == val.front())
      val = val.substr(1, val.size() - 2);
    else if (auto hash = val.find(" #"); hash != std::string::npos)
      val = val.substr(0, hash);
    while (!val.empty() && (val.back() == ' ' || val.back() == '\r'))
      val.pop_back();
    vars[key] = val;
  }
  return vars;
}

} // namespace

outcome<config> config_from_env(const std::string& dotenv_path) {
  auto dotenv = read_dotenv(dotenv_path.empty() ? ".env" : dotenv_path, !dotenv_path.empty());
  if (!dotenv)
    return dotenv.error();
  // The real environment wins over the .env file.
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    if (auto text = std::getenv(name.c_str()))
      return std::string{text};
    if (auto i = dotenv->find(name); i != dotenv->end())
      return i->second;
    return std::nullopt;
  };
  std::optional<config> cfg;
  if (auto url = lookup("CAFDB_URL"); url && !url->empty()) {
    auto parsed = config_from_url(*url);
    if (!parsed) {
      auto err = parsed.error();
      err.message = "CAFDB_URL: " + err.message;
      return err;
    }
    cfg = std::move(*parsed);
  } else {
    static const char* names[] = {"DB_USERNAME", "DB_PASSWORD", "DB_HOST", "DB_PORT", "DB_NAME"};
    std::vector<std::string> missing;
    std::map<std::string, std::string> found;
    for (auto name : names) {
      auto val = lookup(name);
      if (!val || val->empty())
        missing.push_back(name);
      else
        found[name] = *val;
    }
    if (missing.size() == std::size(names))
      return config_error("no database configured: set CAFDB_URL (e.g. sqlite:///app.db), or "
                          "DB_USERNAME, DB_PASSWORD, DB_HOST, DB_PORT and DB_NAME");
    if (!missing.empty()) {
      std::string list;
      for (auto& name : missing)
        list += (list.empty() ? "" : ", ") + name;
      return config_error(list + (missing.size() == 1 ? " is" : " are") +
                          " not set; the PostgreSQL settings need all of DB_USERNAME, "
                          "DB_PASSWORD, DB_HOST, DB_PORT and DB_NAME (or set CAFDB_URL)");
    }
    auto& port = found["DB_PORT"];
    if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5)
      return config_error("DB_PORT must be a port number, got '" + port + "'");
    config built;
    built.url = "postgresql://" + percent_encode(found["DB_USERNAME"]) + ":" +
                percent_encode(found["DB_PASSWORD"]) + "@" + found["DB_HOST"] + ":" + port + "/" +
                percent_encode(found["DB_NAME"]);
    // Keywords, not the URL: no escaping can go wrong on the way to libpq.
    auto set = set_postgres_endpoint(built, {{"user", found["DB_USERNAME"]},
                                             {"password", found["DB_PASSWORD"]},
                                             {"host", found["DB_HOST"]},
                                             {"port", port},
                                             {"dbname", found["DB_NAME"]}});
    if (!set)
      return set.error();
    cfg = std::move(built);
  }
  for (auto& entry : option_table()) {
    std::string name = "CAFDB_";
    for (auto ch : entry.first)
      name += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (auto text = lookup(name))
      if (auto applied = entry.second(*cfg, entry.first + " (from " + name + ")", json(*text));
          !applied)
        return applied.error();
  }
  return std::move(*cfg);
}

} // namespace cafdb
