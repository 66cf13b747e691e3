// Configuration loaders: URL, JSON object or file, environment. One option table
// serves all of them, so every source accepts and rejects the same keys.
//
// Every loader answers bad input with an `invalid_config` error and never throws:
// configuration often comes from outside the program (a file, the environment), and
// an exception there would take the whole process down before it can say what is
// wrong. Error messages name the key, quote values only as escaped printable UTF-8
// (they travel as JSON, and nlohmann::json refuses to dump invalid UTF-8), and show a
// URL only redacted: a password must never reach a log through an error.
#include "cafdb/core/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include <libpq-fe.h>
#include <nlohmann/json.hpp>
#include <unistd.h> // environ

namespace cafdb {

namespace {

using json = nlohmann::json;

constexpr auto npos = std::string::npos;

/// Longest file a loader reads: configuration and .env files are small, and the bound
/// keeps a mistaken path (a device, a log file) from eating all memory.
constexpr size_t max_file_size = 16 * 1024 * 1024;

/// Characters of a value an error message quotes at most.
constexpr size_t max_quoted = 80;

/// Longest duration any option takes, in milliseconds: 7 days. It stays far below what
/// overflows once converted to caf::timespan (nanoseconds) and added to a time point.
constexpr double max_duration_ms = 7.0 * 24 * 3'600'000;

/// Longest connect_timeout in a PostgreSQL URL, in libpq's seconds (the same 7 days).
constexpr int64_t max_connect_timeout_s = 7 * 24 * 3600;

db_error config_error(const std::string& message) {
  return db_error{errc::invalid_config, message, "", ""};
}

// -- text for messages ---------------------------------------------------------

// Length of the valid UTF-8 sequence that starts at text[i], or 0 if it is invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid too).
size_t utf8_length(const std::string& text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  auto lead = byte(i);
  if (lead < 0x80)
    return 1;
  size_t length = 0;
  uint32_t code = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code = lead & 0x0Fu;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code = lead & 0x07u;
  } else {
    return 0;
  }
  if (i + length > text.size())
    return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0u) != 0x80u)
      return 0;
    code = (code << 6) | (byte(i + k) & 0x3Fu);
  }
  if (length == 3 && (code < 0x800 || (code >= 0xD800 && code <= 0xDFFF)))
    return 0;
  if (length == 4 && (code < 0x10000 || code > 0x10FFFF))
    return 0;
  return length;
}

// `text` as a message may show it: valid UTF-8, control characters and invalid bytes
// as \xNN, at most `limit` characters.
std::string printable(const std::string& text, size_t limit = max_quoted) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  size_t shown = 0;
  for (size_t i = 0; i < text.size(); ++shown) {
    if (shown == limit)
      return out + "...";
    auto ch = static_cast<unsigned char>(text[i]);
    auto length = utf8_length(text, i);
    if (length == 0 || (length == 1 && (ch < 0x20 || ch == 0x7F))) {
      out += "\\x";
      out += hex[ch >> 4];
      out += hex[ch & 15];
      i += 1;
    } else {
      out.append(text, i, length);
      i += length;
    }
  }
  return out;
}

std::string in_quotes(const std::string& text) {
  return "'" + printable(text) + "'";
}

// What a message says about a value that was not accepted. Arrays and objects are
// named, not dumped: dumping is recursive (a deeply nested value would overflow the
// stack) and throws on invalid UTF-8.
std::string describe(const json& in) {
  switch (in.type()) {
  case json::value_t::string:
    return in_quotes(in.get_ref<const std::string&>());
  case json::value_t::array:
    return "an array";
  case json::value_t::object:
    return "an object";
  case json::value_t::binary:
    return "binary data";
  case json::value_t::discarded:
    return "nothing";
  default: // null, booleans and numbers dump as plain ASCII
    return in.dump();
  }
}

/// `text` with every byte `keep` refuses written as %XX.
template <class Keep>
std::string percent_escaped(const std::string& text, Keep keep) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : text) {
    if (keep(ch)) {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

// A URL's text for a log line: bytes that are not printable ASCII become %XX, so the
// result is valid UTF-8 and a control character cannot forge a line.
std::string url_printable(const std::string& text) {
  return percent_escaped(text, [](unsigned char ch) { return ch > 0x20 && ch < 0x7F; });
}

std::string trim(const std::string& text) {
  static const char* space = " \t\r\n\f\v";
  auto first = text.find_first_not_of(space);
  if (first == npos)
    return "";
  return text.substr(first, text.find_last_not_of(space) - first + 1);
}

std::string lower(std::string text) {
  for (auto& ch : text)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text;
}

// -- numbers -------------------------------------------------------------------

enum class number_status { ok, not_a_number, out_of_range };

// Parses a whole decimal number; surrounding spaces and a leading '+' are accepted, as
// strtol and libpq accept them. std::from_chars, unlike strtol, ignores the locale.
number_status parse_whole(const std::string& text, int64_t& out) {
  auto trimmed = trim(text);
  const char* first = trimmed.data();
  const char* last = first + trimmed.size();
  if (first != last && *first == '+') {
    ++first;
    if (first == last || *first == '-')
      return number_status::not_a_number;
  }
  auto [end, ec] = std::from_chars(first, last, out);
  if (ec == std::errc::result_out_of_range)
    return number_status::out_of_range;
  if (ec != std::errc{} || end != last || first == last)
    return number_status::not_a_number;
  return number_status::ok;
}

// Reads an integer option from a JSON number or a decimal string.
outcome<int64_t> read_int(const std::string& key, const json& in, int64_t min, int64_t max) {
  auto range_error = [&] {
    return config_error("option '" + key + "' must be between " + std::to_string(min) + " and " +
                        std::to_string(max) + ", got " + describe(in));
  };
  int64_t number = 0;
  if (in.is_number_unsigned()) {
    // Above INT64_MAX it would wrap to a negative number if read as int64_t.
    auto big = in.get<uint64_t>();
    if (big > static_cast<uint64_t>(max))
      return range_error();
    number = static_cast<int64_t>(big);
  } else if (in.is_number_integer()) {
    number = in.get<int64_t>();
  } else if (in.is_string()) {
    auto status = parse_whole(in.get_ref<const std::string&>(), number);
    if (status == number_status::out_of_range)
      return range_error();
    if (status != number_status::ok)
      return config_error("option '" + key + "' must be a whole number, got " + describe(in));
  } else {
    return config_error("option '" + key + "' must be a whole number, got " + describe(in));
  }
  if (number < min || number > max)
    return range_error();
  return number;
}

// The answer to a duration given without a unit. A bare number is refused (0 aside):
// the option names are SQLAlchemy's, whose pool_timeout=30 means seconds, while a bare
// number here meant milliseconds; neither reading is safe to guess.
db_error unitless_duration(const std::string& key, const json& in) {
  std::string number = in.is_string() ? trim(in.get_ref<const std::string&>()) : in.dump();
  if (!number.empty() && number[0] == '-')
    return config_error("option '" + key + "' must not be negative, got " + describe(in) +
                        ": write a duration with a unit, e.g. 30s or 250ms");
  return config_error("option '" + key + "' needs a unit, got " + describe(in) + ": write " +
                      number + "s for seconds or " + number +
                      "ms for milliseconds (units: ms, s, m, h)");
}

// Reads a duration: a number with a unit, "250ms", "5s", "2m", "1h" (0 needs none).
// NaN, infinities and anything beyond 7 days are refused: a NaN cast to an integer is
// undefined behaviour (it came out as INT64_MIN and overflowed at the first request).
outcome<millis> read_duration(const std::string& key, const json& in, bool allow_zero) {
  const std::string expected = "option '" + key +
                               "' must be a duration: a number with a unit "
                               "(250ms, 5s, 2m or 1h), got " +
                               describe(in);
  double amount = 0;
  double scale = 1;
  if (in.is_number()) {
    amount = in.get<double>();
    if (amount != 0 && std::isfinite(amount))
      return unitless_duration(key, in);
  } else if (in.is_string()) {
    auto text = trim(in.get_ref<const std::string&>());
    const char* first = text.data();
    const char* last = first + text.size();
    if (first != last && *first == '+')
      ++first;
    auto [end, ec] = std::from_chars(first, last, amount, std::chars_format::general);
    if (ec == std::errc::result_out_of_range)
      return config_error("option '" + key +
                          "' is out of range (durations go from 0 to 7 days), got " + describe(in));
    if (ec != std::errc{} || end == first)
      return config_error(expected);
    auto unit = trim(std::string{end, last});
    if (unit.empty() && amount != 0 && std::isfinite(amount))
      return unitless_duration(key, in);
    if (unit == "ms" || unit.empty())
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m" || unit == "min")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else
      return config_error("option '" + key + "' has an unknown unit " + in_quotes(unit) +
                          ": use ms, s, m or h (e.g. 250ms, 5s, 2m)");
  } else {
    return config_error(expected);
  }
  if (!std::isfinite(amount))
    return config_error(expected);
  double ms = amount * scale;
  if (!(ms >= 0 && ms <= max_duration_ms))
    return config_error("option '" + key + "' must be " +
                        std::string{allow_zero ? "between 0" : "above 0"} +
                        " and at most 7 days, got " + describe(in));
  auto rounded = std::llround(ms);
  if (!allow_zero && rounded == 0)
    return config_error("option '" + key + "' must be at least 1ms (0 is not allowed), got " +
                        describe(in));
  return millis{rounded};
}

outcome<bool> read_bool(const std::string& key, const json& in) {
  if (in.is_boolean())
    return in.get<bool>();
  if (in.is_string()) {
    auto& text = in.get_ref<const std::string&>();
    if (text == "true" || text == "1" || text == "yes" || text == "on")
      return true;
    if (text == "false" || text == "0" || text == "no" || text == "off")
      return false;
  }
  return config_error("option '" + key +
                      "' must be true or false (also 1/0, yes/no, on/off), got " + describe(in));
}

// Reads a path option; a NUL byte would silently cut the path short in every C API.
outcome<std::string> read_path(const std::string& key, const json& in, const std::string& what) {
  if (!in.is_string() || in.get_ref<const std::string&>().empty())
    return config_error("option '" + key + "' must be the path of " + what + ", got " +
                        describe(in));
  auto& path = in.get_ref<const std::string&>();
  if (path.find('\0') != npos)
    return config_error("option '" + key + "' contains a NUL byte: give the path of " + what);
  return path;
}

// -- files ---------------------------------------------------------------------

enum class file_status { ok, cannot_open, directory, unreadable, too_large };

// Reads a whole file without throwing. std::ifstream opens a directory, and reading it
// makes libstdc++'s filebuf throw, which escapes from inside nlohmann's parser; reads
// through istream::read turn such failures into badbit instead.
file_status read_text_file(const std::string& path, std::string& out) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return file_status::directory;
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return file_status::cannot_open;
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    out.append(buffer.data(), static_cast<size_t>(in.gcount()));
    if (out.size() > max_file_size)
      return file_status::too_large;
    if (!in)
      break;
  }
  return in.bad() ? file_status::unreadable : file_status::ok;
}

/// Why reading `path`, the `subject` ("configuration file"), gave `status`, and what to
/// do; nothing when it was read. `expected` names what the path should be.
std::optional<std::string> file_problem(file_status status, const std::string& subject,
                                        const std::string& path, const char* expected) {
  switch (status) {
  case file_status::ok:
    return std::nullopt;
  case file_status::directory:
    return subject + " " + in_quotes(path) + " is a directory: give the path of " + expected;
  case file_status::too_large:
    return subject + " " + in_quotes(path) + " is larger than " +
           std::to_string(max_file_size >> 20) + " MiB: check that it is the right file";
  case file_status::cannot_open:
  case file_status::unreadable:
    break;
  }
  return "cannot read " + subject + " " + in_quotes(path) +
         ": check that it exists and is readable";
}

// Where JSON text stops parsing, for the message (nlohmann's own message quotes the
// text around the error, which may hold a password).
struct parse_position : nlohmann::json_sax<json> {
  size_t byte = 0;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    byte = position;
    return false;
  }
};

std::string json_error_position(const std::string& text) {
  parse_position sax;
  json::sax_parse(text, &sax);
  auto at = std::min(sax.byte > 0 ? sax.byte - 1 : 0, text.size());
  auto before = text.substr(0, at);
  auto line = 1 + std::count(before.begin(), before.end(), '\n');
  auto newline = before.rfind('\n');
  auto column = at - (newline == npos ? 0 : newline + 1) + 1;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// -- libpq keywords and URL redaction -----------------------------------------

struct libpq_keywords {
  std::set<std::string> all;
  /// Keywords whose value is a secret: those libpq itself hides ("*": password,
  /// sslpassword) and any about passwords (passfile).
  std::set<std::string> secret;
};

// Asked of libpq itself, so that the keywords of a newer libpq pass too.
const libpq_keywords& pq_keywords() {
  static const libpq_keywords words = [] {
    libpq_keywords out;
    char* err = nullptr;
    // Parsing an empty string lists every option with no value and reads no defaults.
    if (auto options = PQconninfoParse("", &err)) {
      for (auto o = options; o->keyword; ++o) {
        std::string keyword = o->keyword;
        out.all.insert(keyword);
        if ((o->dispchar && o->dispchar[0] == '*') || keyword.find("pass") != npos)
          out.secret.insert(keyword);
      }
      PQconninfoFree(options);
    }
    if (err)
      PQfreemem(err);
    return out;
  }();
  return words;
}

bool is_cafdb_option(const std::string& key);

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; a '%' that starts none stays as it is.
std::string percent_decode(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
        hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string redact(const std::string& url, int depth = 0);

// Whether a query parameter's value may show in a redacted URL: only values of keys
// known to be harmless do. Secrets and unknown keys (PASSWORD, a typo, a piece of a
// mangled URL) show as ***.
bool is_public_key(const std::string& key) {
  auto& pq = pq_keywords();
  if (pq.all.count(key))
    return pq.secret.count(key) == 0;
  return key == "ssl" || (is_cafdb_option(key) && key != "read_url");
}

// One "key=value" of a query, for a log line.
std::string redact_param(const std::string& param, int depth) {
  if (param.empty())
    return "";
  auto eq = param.find('=');
  if (eq == npos)
    return "***";
  auto key = percent_decode(param.substr(0, eq));
  auto shown_key = url_printable(param.substr(0, eq));
  if (is_public_key(key))
    return shown_key + "=" + url_printable(param.substr(eq + 1));
  // A replica's URL: shown redacted in turn (once: deeper nesting is only hidden).
  if (key == "read_url" && depth == 0)
    return shown_key + "=" + url_printable(redact(percent_decode(param.substr(eq + 1)), 1));
  // A secret's key shows (PASSWORD=***); any other key only as ***, since it may be a
  // piece of a password whose '&' was not encoded.
  auto lowered = lower(key);
  bool named = pq_keywords().all.count(lowered) || is_cafdb_option(lowered) || lowered == "url";
  return named ? shown_key + "=***" : "***";
}

// Whether a query key names a secret, in any case or encoding (PASSWORD, pass%77ord).
bool is_secret_key(const std::string& key) {
  auto lowered = lower(percent_decode(key));
  return pq_keywords().secret.count(lowered) > 0 || lowered.find("pass") != npos;
}

// Redacts "a=1&b=2", keeping the separators. A '?' separates too: "user=me?password=x"
// must not show the password as part of the user's value. Everything after a secret is
// hidden: an unencoded '&' or '?' in it would make its rest look like more parameters.
std::string redact_query(const std::string& query, const char* separators, int depth,
                         bool hide = false) {
  std::string out;
  size_t start = 0;
  for (;;) {
    auto end = query.find_first_of(separators, start);
    auto param = query.substr(start, end == npos ? npos : end - start);
    out += hide && !param.empty() ? "***" : redact_param(param, depth);
    hide = hide || is_secret_key(param.substr(0, param.find('=')));
    if (end == npos)
      return out;
    out += query[end];
    start = end + 1;
  }
}

bool is_scheme(const std::string& text) {
  return !text.empty() && std::isalpha(static_cast<unsigned char>(text[0])) &&
         std::all_of(text.begin(), text.end(), [](char ch) {
           return std::isalnum(static_cast<unsigned char>(ch)) || ch == '+' || ch == '-' ||
                  ch == '.';
         });
}

// The URL with every secret replaced by ***, found by the URL's structure rather than
// by patterns: the user info is everything before the last '@', of which only the user
// name (up to the first ':') shows; query values show only for known harmless keys.
// When the first '?' comes before that '@', it is unclear whether the '?' is part of
// the password or the '@' part of a query value (a password=...@... too): the text after
// the '@' then shows only if the parameter holding the '@' is harmless.
std::string redact(const std::string& url, int depth) {
  std::string out;
  std::string rest = url;
  if (auto s = url.find("://"); s != npos && is_scheme(url.substr(0, s))) {
    out = url.substr(0, s + 3);
    rest = url.substr(s + 3);
    // A scheme cafdb does not know: where a password would stand cannot be told, so
    // nothing after the scheme is shown when there is an '@'.
    auto scheme = lower(url.substr(0, s));
    if (scheme != "postgresql" && scheme != "postgres" && scheme != "sqlite" &&
        rest.find('@') != npos)
      return out + "***";
    // sqlite:///path has no authority: only its query may hold a secret, unless an '@'
    // makes it look like a PostgreSQL URL with a changed scheme.
    if (out == "sqlite://" && !rest.empty() && rest[0] == '/' && rest.find('@') == npos) {
      auto q = rest.find('?');
      out += url_printable(rest.substr(0, q));
      if (q != npos)
        out += "?" + redact_query(rest.substr(q + 1), "&?", depth);
      return out;
    }
  } else if (url.find('@') != npos) {
    // No scheme to tell where a password would end ("user:pw@host", "password=a@b").
    return "***";
  } else if (url.find('=') != npos) {
    // No scheme but '=': a libpq keyword/value string ("host=db password=..."), shown
    // pair by pair like a query.
    return redact_query(url, " \t\r\n&", depth);
  }
  auto at = rest.rfind('@');
  auto q = rest.find('?');
  if (at == npos) {
    out += url_printable(rest.substr(0, q));
    if (q != npos)
      out += "?" + redact_query(rest.substr(q + 1), "&?", depth);
    return out;
  }
  bool uncertain = q < at;
  auto user_end = rest.find_first_of(uncertain ? ":?@/" : ":");
  out += url_printable(rest.substr(0, std::min(user_end, at)));
  if (user_end < at)
    out += ":***";
  out += "@";
  auto tail = rest.substr(at + 1);
  if (!uncertain) {
    auto tq = tail.find('?');
    out += url_printable(tail.substr(0, tq));
    if (tq != npos)
      out += "?" + redact_query(tail.substr(tq + 1), "&?", depth);
    return out;
  }
  // Read as a query, the text from the '?' to the '@' holds the parameter whose value
  // the '@' is in, and maybe a secret before it.
  bool secret = false;
  for (auto start = q + 1; start <= at;) {
    auto end = std::min(rest.find_first_of("?&=", start), at);
    secret = secret || is_secret_key(rest.substr(start, end - start));
    start = rest.find_first_of("?&", start);
    start = start == npos ? at + 1 : start + 1;
  }
  auto param_start = rest.find_last_of("?&", at) + 1;
  auto eq = rest.find('=', param_start);
  bool harmless = !secret && eq < at &&
                  is_public_key(percent_decode(rest.substr(param_start, eq - param_start)));
  auto cut = tail.find_first_of("?&");
  out += harmless ? url_printable(tail.substr(0, cut)) : "***";
  if (cut != npos)
    out += tail[cut] + redact_query(tail.substr(cut + 1), "?&", depth, !harmless);
  return out;
}

// -- options -------------------------------------------------------------------

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

// The keyword/value pairs of a libpq connection string that cafdb wrote.
std::vector<std::pair<std::string, std::string>> conninfo_pairs(const std::string& conninfo) {
  std::vector<std::pair<std::string, std::string>> kv;
  if (conninfo.empty())
    return kv;
  char* err = nullptr;
  auto options = PQconninfoParse(conninfo.c_str(), &err);
  if (err)
    PQfreemem(err);
  if (!options)
    return kv;
  for (auto o = options; o->keyword; ++o)
    if (o->val)
      kv.emplace_back(o->keyword, o->val);
  PQconninfoFree(options);
  return kv;
}

std::optional<std::string> conninfo_value(const std::string& conninfo, const std::string& key) {
  for (auto& [keyword, val] : conninfo_pairs(conninfo))
    if (keyword == key)
      return val;
  return std::nullopt;
}

std::string conninfo_without(const std::string& conninfo, const std::string& key) {
  if (!conninfo_value(conninfo, key))
    return conninfo;
  std::string out;
  for (auto& [keyword, val] : conninfo_pairs(conninfo))
    if (keyword != key)
      out += keyword + "=" + conninfo_quote(val) + " ";
  return out;
}

// Guards against a read_url inside a read_url, which would recurse once per level of
// percent-encoding the input can afford.
thread_local int read_url_depth = 0;

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
      {"connect_timeout",
       [](config& cfg, const std::string& key, const json& in) -> outcome<done> {
         auto duration = read_duration(key, in, false);
         if (!duration)
           return duration.error();
         cfg.connect_timeout = *duration;
         // Given after a PostgreSQL URL, it replaces the URLs' own connect_timeout: the
         // engine hands libpq this one (in seconds), so that libpq and cafdb agree.
         cfg.conninfo = conninfo_without(cfg.conninfo, "connect_timeout");
         cfg.read_conninfo = conninfo_without(cfg.read_conninfo, "connect_timeout");
         return done{};
       }},
      {"busy_timeout", duration_option(&config::busy_timeout, true)},
      {"shutdown_timeout", duration_option(&config::shutdown_timeout, true)},
      {"max_restarts", int_option(&config::max_restarts, 0, 1000)},
      {"restart_window", duration_option(&config::restart_window, false)},
      {"echo", bool_option(&config::echo)},
      {"create_all", bool_option(&config::create_all)},
      {"json_errors", bool_option(&config::json_errors)},
      {"migrations_dir",
       [](config& cfg, const std::string& key, const json& in) -> outcome<done> {
         auto path = read_path(key, in, "a directory of migrations");
         if (!path)
           return path.error();
         cfg.migrations_dir = *path;
         return done{};
       }},
      {"schema_file",
       [](config& cfg, const std::string& key, const json& in) -> outcome<done> {
         auto path = read_path(key, in, "a JSON schema file (docs/schema.md)");
         if (!path)
           return path.error();
         std::error_code ec;
         if (std::filesystem::is_directory(*path, ec))
           return config_error("option '" + key + "': " + in_quotes(*path) +
                               " is a directory; give the path of a JSON schema file "
                               "(docs/schema.md)");
         // schema_from_json_file reads through std::ifstream; whatever it might throw
         // still becomes an error here.
         auto schema = [&]() -> outcome<schema_def> {
           try {
             return schema_from_json_file(*path);
           } catch (const std::exception& e) {
             return config_error("cannot read the schema file " + in_quotes(*path) + ": " +
                                 printable(e.what()) + "; check the path and permissions");
           }
         }();
         if (!schema) {
           auto err = schema.error();
           err.code = errc::invalid_config;
           err.message = "option '" + key + "': " + printable(err.message, npos);
           return err;
         }
         cfg.schema_file = *path;
         cfg.schema = std::move(*schema);
         return done{};
       }},
      {"echo_params", bool_option(&config::echo_params)},
      {"read_in_place", bool_option(&config::read_in_place)},
      {"retry_unfixable", bool_option(&config::retry_unfixable)},
      {"read_url",
       [](config& cfg, const std::string& key, const json& in) -> outcome<done> {
         if (!in.is_string())
           return config_error("option '" + key + "' must be a postgresql:// URL string, got " +
                               describe(in));
         auto& text = in.get_ref<const std::string&>();
         if (text.empty()) {
           cfg.read_url.clear();
           cfg.read_conninfo.clear();
           cfg.read_display.clear();
           return done{};
         }
         if (read_url_depth > 0)
           return config_error("option '" + key +
                               "' cannot be set inside a read_url: give it once, next to the "
                               "writer's URL");
         ++read_url_depth;
         auto reader = config_from_url(text);
         --read_url_depth;
         if (!reader) {
           auto err = reader.error();
           err.message = "option '" + key + "': " + err.message;
           return err;
         }
         if (reader->engine != engine_kind::postgresql)
           return config_error(
               "option '" + key +
               "' must be a postgresql:// URL or a libpq connection string (a replica for "
               "read-only sessions)");
         cfg.read_url = text;
         cfg.read_conninfo = reader->conninfo;
         cfg.read_display = reader->display;
         // libpq takes the replica's own connect_timeout; cafdb's one bound on every
         // connection attempt must not cut it short.
         if (conninfo_value(cfg.read_conninfo, "connect_timeout"))
           cfg.connect_timeout = std::max(cfg.connect_timeout, reader->connect_timeout);
         return done{};
       }},
      {"log_level",
       [](config& cfg, const std::string& key, const json& in) -> outcome<done> {
         static const char* levels[] = {"trace", "debug", "info", "warn", "error", "off"};
         if (in.is_string())
           for (auto level : levels)
             if (in.get_ref<const std::string&>() == level) {
               cfg.log_level = level;
               return done{};
             }
         return config_error("option '" + key +
                             "' must be one of trace, debug, info, warn, error, off; got " +
                             describe(in));
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

bool is_cafdb_option(const std::string& key) {
  for (auto& entry : option_table())
    if (entry.first == key)
      return true;
  return key == "mode";
}

// "; did you mean 'pool_size'?" when only the case is wrong, else "".
std::string case_hint(const std::string& key) {
  auto wanted = lower(key);
  if (wanted == key)
    return "";
  if (is_cafdb_option(wanted) || wanted == "url" || pq_keywords().all.count(wanted))
    return "; names are lower case: did you mean '" + wanted + "'?";
  return "";
}

// Splits "a=1&b=2" into its non-empty "key=value" parts.
std::vector<std::string> split_query(const std::string& query) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < query.size()) {
    auto end = query.find('&', start);
    if (end == npos)
      end = query.size();
    if (end > start)
      parts.push_back(query.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::string percent_encode(const std::string& text) {
  return percent_escaped(text, [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~';
  });
}

// -- PostgreSQL ----------------------------------------------------------------

// Checks a port, or a comma-separated list of them (one per host; empty: the default).
bool valid_ports(const std::string& ports) {
  size_t start = 0;
  for (;;) {
    auto end = ports.find(',', start);
    auto item = ports.substr(start, end == npos ? npos : end - start);
    if (!item.empty()) {
      int64_t number = 0;
      if (item.size() > 5 || item.find_first_not_of("0123456789") != npos ||
          parse_whole(item, number) != number_status::ok || number < 1 || number > 65535)
        return false;
    }
    if (end == npos)
      return true;
    start = end + 1;
  }
}

// Fills conninfo and display from libpq keyword/value pairs. Messages quote no value
// from here: with a mangled URL, any of them may hold a piece of the password.
outcome<done> set_postgres_endpoint(config& cfg,
                                    const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string user, host, port, dbname;
  cfg.conninfo.clear();
  for (auto& [keyword, val] : kv) {
    if (keyword == "sslmode") {
      static const char* modes[] = {"disable", "allow",     "prefer",
                                    "require", "verify-ca", "verify-full"};
      if (std::find(std::begin(modes), std::end(modes), val) == std::end(modes))
        return config_error("sslmode is not valid; use disable, allow, prefer, require, "
                            "verify-ca or verify-full");
    }
    if (keyword == "port" && !valid_ports(val))
      return config_error("the port must be a number from 1 to 65535 (or a comma-separated "
                          "list of them, one per host)");
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
  // IPv6 addresses in brackets, as URLs write them (one host per comma).
  std::string hosts;
  for (size_t start = 0;;) {
    auto end = host.find(',', start);
    auto item = host.substr(start, end == npos ? npos : end - start);
    hosts += item.find(':') != npos ? "[" + item + "]" : item;
    if (end == npos)
      break;
    hosts += ",";
    start = end + 1;
  }
  host = hosts;
  cfg.display = "postgresql://" + (user.empty() ? "" : printable(user, npos) + "@") +
                (host.empty() ? "localhost" : printable(host, npos)) +
                (port.empty() ? "" : ":" + printable(port, npos)) + "/" + printable(dbname, npos);
  return done{};
}

// Where the query of a PostgreSQL URL starts (npos: none), found as libpq's URI parser
// finds it (fe-connect.c, conninfo_uri_parse_options), once the checks here have made
// that reading the only one. libpq takes the user info up to the first '@' before the
// first '/'; an unencoded '/' or '@' in a password would make it read part of the
// password as host, port or database name, show it in `display` and send it to a
// server as such. So every '@' but the one after the password must be encoded, and it
// must come before any '/' or '?'. libpq's own messages quote the whole URL: its errors are
// found here first, with messages that name the part instead.
outcome<size_t> check_postgres_url(const std::string& url) {
  auto fail = [&](const std::string& why) {
    return config_error("malformed PostgreSQL URL '" + redact(url) + "': " + why);
  };
  const auto start = url.find("://") + 3;
  const auto end = url.size();
  if (std::count(url.begin() + static_cast<std::ptrdiff_t>(start), url.end(), '@') > 1)
    return fail("it has more than one '@': percent-encode '@' as %40 in the user name, the "
                "password and query values; only the '@' before the host stays");
  auto at = url.find('@', start);
  auto slash = url.find('/', start);
  if (at != npos && slash < at)
    return fail("an '@' comes after a '/': percent-encode '/' in the password as %2F, and '@' "
                "in a database name or query value as %40");
  struct part {
    size_t from, to;
    std::string name;
  };
  std::vector<part> parts;
  auto p = start;
  if (at != npos) {
    // libpq would read "host:5432?password=me@work" as user "host" with password
    // "5432?password=me" at host "work"; the '?' is what makes such a URL ambiguous.
    if (url.find('?', start) < at)
      return fail("a '?' comes before the '@': percent-encode '?' in the user name or password "
                  "as %3F, and '@' in a query value as %40");
    auto colon = url.find(':', start);
    auto user_end = std::min(colon, at);
    parts.push_back({start, user_end, "the user name"});
    if (colon < at)
      parts.push_back({colon + 1, at, "the password"});
    p = at + 1;
  }
  auto netloc = p;
  for (;;) {
    if (p < end && url[p] == '[') {
      auto close = url.find(']', p);
      if (close == npos)
        return fail("an IPv6 address has no closing ']'");
      if (close == p + 1)
        return fail("the IPv6 address between '[' and ']' is empty");
      // Only what an IPv6 address and its %zone (an interface name) hold: a ']' further
      // on, past a '/' or a '?', would make the query start where libpq does not see it.
      bool zone = false;
      for (auto i = p + 1; i < close; ++i) {
        auto ch = static_cast<unsigned char>(url[i]);
        zone = zone || ch == '%';
        bool fits = zone ? (std::isalnum(ch) || std::strchr("%-_.", ch) != nullptr)
                         : (std::isxdigit(ch) || ch == ':' || ch == '.');
        if (!fits)
          return fail("the IPv6 address between '[' and ']' holds a character no address has");
      }
      p = close + 1;
      if (p < end && std::strchr(":/?,", url[p]) == nullptr)
        return fail("after an IPv6 address's ']' comes " + in_quotes(std::string(1, url[p])) +
                    "; expected ':' and a port, '/' and a database name, '?' or ','");
    } else {
      p = std::min(url.find_first_of(":/?,", p), end);
    }
    if (p < end && url[p] == ':')
      p = std::min(url.find_first_of("/?,", p + 1), end);
    if (p < end && url[p] == ',') {
      ++p;
      continue;
    }
    break;
  }
  parts.push_back({netloc, p, "the host or port"});
  size_t query = npos;
  if (p < end && url[p] == '/') {
    query = url.find('?', p);
    parts.push_back({p + 1, std::min(query, end), "the database name"});
  } else if (p < end) {
    query = p; // url[p] == '?'
  }
  if (query != npos) {
    // "user=me?password=x" would give libpq a user name holding the password.
    if (url.find('?', query + 1) != npos)
      return fail("a second '?': percent-encode '?' in a query value as %3F");
    parts.push_back({query + 1, end, "the query"});
  }
  for (auto& [from, to, name] : parts)
    for (auto i = url.find('%', from); i < to; i = url.find('%', i + 1)) {
      if (i + 2 >= to || hex_value(url[i + 1]) < 0 || hex_value(url[i + 2]) < 0)
        return fail(name + " has a '%' that does not start a %XX escape: write '%' itself as %25");
      if (url[i + 1] == '0' && url[i + 2] == '0')
        return fail(name + " contains %00: a NUL byte cannot be part of a connection setting");
    }
  return query;
}

// connect_timeout stays in the connection string for libpq; cafdb's own bound on a
// connection attempt follows it.
outcome<done> follow_connect_timeout(config& cfg) {
  if (auto text = conninfo_value(cfg.conninfo, "connect_timeout")) {
    int64_t seconds = 0;
    auto status = parse_whole(*text, seconds);
    // The value is not quoted: it may follow a password with an unencoded '&'.
    if (status == number_status::not_a_number)
      return config_error("connect_timeout in a PostgreSQL URL or connection string is libpq's: "
                          "whole seconds, e.g. "
                          "connect_timeout=10 (no unit, no fraction)");
    if (status == number_status::out_of_range || seconds > max_connect_timeout_s)
      return config_error(
          "connect_timeout in a PostgreSQL URL or connection string must be at most 7 days (" +
          std::to_string(max_connect_timeout_s) + " seconds)");
    if (seconds <= 0)
      return config_error(
          "connect_timeout in a PostgreSQL URL or connection string must be at least 1 second: to "
          "libpq, 0 or less means waiting forever, and cafdb bounds every "
          "connection attempt (e.g. connect_timeout=10)");
    // libpq waits at least 2 seconds whatever it is given.
    cfg.connect_timeout = std::chrono::seconds{std::max<int64_t>(seconds, 2)};
  }
  return done{};
}

// Whether `text` starts as a libpq keyword/value string does: a keyword (letters, digits,
// '_') and then '='.
bool looks_like_conninfo(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
    ++i;
  auto start = i;
  while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_'))
    ++i;
  if (i == start)
    return false;
  while (i < text.size() && text[i] == ' ')
    ++i;
  return i < text.size() && text[i] == '=';
}

// A libpq keyword/value connection string ("host=db dbname=app sslmode=require"), read
// as libpq reads it (fe-connect.c, conninfo_parse): `key = value` pairs separated by
// whitespace; a value is single-quoted (backslash escapes a quote or a backslash) or
// runs to the next whitespace. cafdb's options may stand among libpq's keywords.
// Messages quote no value, and no key after a secret: with a stray space in an
// unquoted password, its rest reads as a key.
outcome<config> postgres_from_conninfo(const std::string& text) {
  auto fail = [](const std::string& why) {
    return config_error("malformed libpq connection string: " + why +
                        "; write key=value pairs separated by spaces, quoting values with "
                        "spaces as key='a value'");
  };
  for (unsigned char ch : text)
    if ((ch < 0x20 && !std::isspace(ch)) || ch == 0x7F)
      return fail("it contains a control character; remove it");
  bool url_like = text.find('@') != std::string::npos;
  std::vector<std::pair<std::string, std::string>> libpq;
  // cafdb's options, and whether a message may show their value.
  std::vector<std::tuple<std::string, std::string, bool>> ours;
  std::string secret_before;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
  };
  for (skip_space(); i < text.size(); skip_space()) {
    auto key_start = i;
    while (i < text.size() && text[i] != '=' && !std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
    auto key = text.substr(key_start, i - key_start);
    // A key shows only if it looks like one: in text with an '@' (a URL without its
    // scheme, user:password@host) or after an unquoted secret it may hold a password.
    bool key_shown =
        secret_before.empty() && !url_like && std::all_of(key.begin(), key.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
        });
    auto named = [&]() -> std::string {
      if (key_shown)
        return in_quotes(key);
      return secret_before.empty() ? "a key (not shown: it may hold part of a password)"
                                   : "a key after " + secret_before;
    };
    skip_space();
    if (i >= text.size() || text[i] != '=')
      return fail(named() + " has no '=' and value");
    ++i;
    skip_space();
    std::string val;
    bool quoted = i < text.size() && text[i] == '\'';
    if (quoted) {
      ++i;
      bool closed = false;
      for (; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
          val += text[++i];
        } else if (text[i] == '\'') {
          ++i;
          closed = true;
          break;
        } else {
          val += text[i];
        }
      }
      if (!closed)
        return fail("the quoted value of " + named() + " has no closing quote");
    } else {
      for (; i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])); ++i) {
        if (text[i] == '\\' && i + 1 < text.size())
          ++i;
        val += text[i];
      }
    }
    if (key.empty())
      return fail("a value has no key before its '='");
    // user:password@host in a value other than a secret's or a replica URL's: a URL
    // without its scheme, read as keywords. Its parts would show in messages and in the
    // display.
    if (auto colon = val.find(':'); !pq_keywords().secret.count(key) && key != "read_url" &&
                                    colon != npos && val.find('@', colon) != npos)
      return fail("a value looks like user:password@host (a URL without its scheme?); write "
                  "the URL with postgresql:// in front, or the parts as key=value pairs");
    if (key == "url")
      return config_error("option 'url' cannot be set inside a connection string");
    if (key == "mode")
      return fail("option 'mode' (rw, rwc) is SQLite's: a PostgreSQL connection does not take it");
    if (is_cafdb_option(key) && key != "connect_timeout") {
      // Not after an unquoted secret (it may be the secret's rest), and not with an '@'
      // (then the text may be a URL without its scheme, user:password@host).
      bool shown = secret_before.empty() && !url_like;
      ours.emplace_back(key, val, shown);
    } else if (pq_keywords().all.count(key)) {
      // An unquoted secret ends at the first space: what follows may be its rest.
      if (pq_keywords().secret.count(key) && secret_before.empty() && !quoted)
        secret_before = key;
      libpq.emplace_back(key, val);
    } else {
      if (!secret_before.empty())
        return fail("an unknown key after " + secret_before +
                    ": if that value holds a space, quote it");
      return fail("unknown " + (key_shown ? "key " + in_quotes(key) + case_hint(key) : named()) +
                  ": neither a libpq keyword (host, dbname, sslmode, ...) nor a cafdb option (" +
                  known_keys() + ")");
    }
  }
  if (libpq.empty() && ours.empty())
    return fail("it is empty");
  config cfg;
  cfg.url = text;
  if (auto set = set_postgres_endpoint(cfg, libpq); !set)
    return fail(set.error().message);
  // With an '@' anywhere, any value may hold a piece of a password (a mangled URL read
  // as keywords): the display names none of them.
  if (url_like)
    cfg.display = "postgresql://***";
  if (auto followed = follow_connect_timeout(cfg); !followed)
    return followed.error();
  for (auto& [key, val, shown] : ours)
    if (auto applied = apply_option(cfg, key, json(val)); !applied)
      return shown ? applied.error()
                   : fail("option '" + key +
                          "' has a value it does not take (not shown: it may hold part of a "
                          "password)");
  return cfg;
}

outcome<config> postgres_from_url(const std::string& url) {
  auto query = check_postgres_url(url);
  if (!query)
    return query.error();
  config cfg;
  cfg.url = url;
  auto fail = [&](const std::string& why) {
    return config_error("malformed PostgreSQL URL '" + redact(url) + "': " + why);
  };
  // cafdb's own options come out of the query; everything else is libpq's, and so is
  // connect_timeout: it means libpq's seconds in every PostgreSQL tool.
  std::string libpq_url = url.substr(0, *query);
  // cafdb options and whether a secret (password=...) came before them in the query.
  std::vector<std::tuple<std::string, std::string, bool>> ours;
  std::string theirs;
  // After a password in the query, what looks like the next parameter may be the rest
  // of a password with an unencoded '&': messages then quote nothing from the query.
  std::string secret_before;
  auto after_secret = [&](const std::string& what) {
    return fail(what + " after '" + secret_before +
                "': if that value contains '&', '=' or '@', percent-encode them as %26, %3D "
                "and %40");
  };
  if (*query != npos) {
    for (auto& pair : split_query(url.substr(*query + 1))) {
      auto eq = pair.find('=');
      auto key = percent_decode(pair.substr(0, eq));
      if (eq == npos)
        return secret_before.empty()
                   ? fail("query parameter " + in_quotes(key) + " has no value: write key=value")
                   : after_secret("a query parameter without a value");
      if (key == "url")
        return config_error("option 'url' cannot be set inside a URL");
      if (is_cafdb_option(key) && key != "mode" && key != "connect_timeout") {
        ours.emplace_back(key, percent_decode(pair.substr(eq + 1)), !secret_before.empty());
        continue;
      }
      if (key == "mode")
        return fail("option 'mode' (rw, rwc) is SQLite's: a PostgreSQL URL does not take it");
      if (!pq_keywords().all.count(key) && key != "ssl")
        return secret_before.empty() ? fail("unknown query parameter " + in_quotes(key) +
                                            ": neither a libpq keyword (sslmode, application_name, "
                                            "connect_timeout, ...) nor a cafdb option (" +
                                            known_keys() + ")" + case_hint(key))
                                     : after_secret("an unknown query parameter");
      if (pair.find('=', eq + 1) != npos)
        return fail("the value of query parameter " + in_quotes(key) +
                    " contains '=': percent-encode it as %3D");
      if (pq_keywords().secret.count(key) && secret_before.empty())
        secret_before = key;
      theirs += (theirs.empty() ? "" : "&") + pair;
    }
  }
  if (!theirs.empty())
    libpq_url += "?" + theirs;
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(libpq_url.c_str(), &err);
  if (!options) {
    // Not expected after the checks above. libpq's message quotes the URL and its
    // pieces, so only what lies outside quotes is kept.
    std::string why = err ? err : "out of memory";
    if (err)
      PQfreemem(err);
    std::string kept;
    bool inside = false;
    for (auto ch : why) {
      if (ch == '"')
        inside = !inside;
      else if (!inside && ch != '\n')
        kept += ch;
    }
    return fail("libpq cannot parse it (" + printable(trim(kept), npos) + ")");
  }
  if (err)
    PQfreemem(err);
  std::vector<std::pair<std::string, std::string>> kv;
  for (auto o = options; o->keyword; ++o)
    if (o->val)
      kv.emplace_back(o->keyword, o->val);
  PQconninfoFree(options);
  if (auto set = set_postgres_endpoint(cfg, kv); !set)
    return fail(set.error().message);
  if (auto followed = follow_connect_timeout(cfg); !followed)
    return followed.error();
  for (auto& [key, val, follows_secret] : ours)
    if (auto applied = apply_option(cfg, key, json(val)); !applied)
      return follows_secret ? after_secret("option '" + key + "' is not valid; it comes")
                            : applied.error();
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
      return config_error("option 'url' must be a string, got " + describe(in));
    auto parsed = config_from_url(in.get_ref<const std::string&>());
    if (!parsed)
      return parsed.error();
    cfg = std::move(*parsed);
    return done{};
  }
  for (auto& entry : option_table())
    if (entry.first == key)
      return entry.second(cfg, key, in);
  return config_error("unknown option " + in_quotes(key) + case_hint(key) +
                      "; known options: " + known_keys());
}

outcome<config> config_from_url(const std::string& url) {
  config cfg;
  cfg.url = url;
  std::string query;
  auto malformed = [&](const std::string& why) {
    // A malformed URL's structure cannot be trusted to tell where a password stands:
    // with an '@' or a '=' in it, nothing after the scheme is shown.
    auto shown = url;
    if (url.find_first_of("@=") != npos) {
      auto s = url.find("://");
      shown = (s != npos && is_scheme(url.substr(0, s)) ? url.substr(0, s + 3) : "") + "***";
    }
    return config_error("malformed database URL '" + (shown == url ? redact(url) : shown) +
                        "': " + why +
                        "; expected sqlite:///relative.db, sqlite:////absolute/path.db, "
                        "sqlite::memory:, postgresql://user:password@host:5432/dbname or a libpq "
                        "connection string (host=... dbname=...)");
  };
  // A libpq connection string starts with a keyword and '=' (a URL with its scheme); it
  // may hold a URL (read_url='postgresql://...') and line breaks.
  if (looks_like_conninfo(url))
    return postgres_from_conninfo(url);
  // A control character cannot be meant, and a NUL would cut the URL short in C APIs.
  for (unsigned char ch : url)
    if (ch < 0x20 || ch == 0x7F)
      return malformed("it contains a control character; percent-encode it or remove it");
  if (url == "sqlite::memory:" || url == "sqlite://" || url == "sqlite:///:memory:") {
    cfg.path = ":memory:";
  } else if (url.rfind("sqlite::memory:?", 0) == 0) {
    if (url.find('@') != npos) // as below: the text may not be an SQLite URL at all
      return malformed("an SQLite URL has no user name or password: percent-encode '@' in a "
                       "query value as %40");
    cfg.path = ":memory:";
    query = url.substr(16);
    if (query.find('?') != npos)
      return malformed("a second '?': percent-encode '?' in a query value as %3F");
  } else if (url.rfind("sqlite:///", 0) == 0) {
    // Without this, a PostgreSQL URL given the sqlite scheme by mistake would pass
    // with "user:password@host/db" as a file path, and parts of it would show.
    if (url.find('@') != npos)
      return malformed("an SQLite URL has no user name or password: percent-encode '@' in "
                       "the path or a query value as %40");
    auto rest = url.substr(10);
    auto q = rest.find('?');
    if (q != npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    if (query.find('?') != npos)
      return malformed("a second '?': percent-encode '?' in a query value as %3F");
    cfg.path = percent_decode(rest);
    if (cfg.path.find('\0') != npos)
      return malformed("the path contains %00 (a NUL byte)");
    if (cfg.path.empty() || cfg.path == ":memory:")
      cfg.path = ":memory:";
  } else if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return postgres_from_url(url);
  } else if (url.rfind("sqlite:", 0) == 0) {
    return malformed("an SQLite URL needs three slashes before the path");
  } else if (url.find("://") == npos) {
    return malformed("no scheme");
  } else {
    auto scheme = url.substr(0, url.find("://"));
    // Only a real scheme is quoted: "user:password@host://" is no scheme.
    return malformed(is_scheme(scheme) ? "unknown scheme " + in_quotes(scheme)
                                       : "no scheme before '://'");
  }
  // Query parameters: SQLite's mode, then any cafdb option.
  for (auto& pair : split_query(query)) {
    auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq));
    if (eq == npos)
      return malformed("query parameter " + in_quotes(key) + " has no value: write key=value");
    auto val = percent_decode(pair.substr(eq + 1));
    if (key == "mode") {
      if (val == "rw")
        cfg.create_if_missing = false;
      else if (val == "rwc")
        cfg.create_if_missing = true;
      else
        return config_error("option 'mode' must be rw or rwc, got " + in_quotes(val));
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
    return config_error("a JSON configuration must be an object, got " + describe(object));
  auto url = object.find("url");
  if (url == object.end())
    return config_error("the JSON configuration has no 'url': add one, e.g. "
                        "\"url\": \"sqlite:///app.db\"");
  if (!url->is_string())
    return config_error("option 'url' must be a string, got " + describe(*url));
  auto cfg = config_from_url(url->get_ref<const std::string&>());
  if (!cfg)
    return cfg;
  for (auto& [key, val] : object.items())
    if (key != "url")
      if (auto applied = apply_option(*cfg, key, val); !applied)
        return applied.error();
  return cfg;
}

outcome<config> config_from_json_file(const std::string& path) {
  std::string text;
  if (auto problem =
          file_problem(read_text_file(path, text), "configuration file", path, "a JSON file"))
    return config_error(*problem);
  auto object = json::parse(text, nullptr, false);
  if (object.is_discarded())
    return config_error("configuration file " + in_quotes(path) + " is not valid JSON (" +
                        json_error_position(text) + "): check quotes, commas and braces there");
  return config_from_json(object);
}

namespace {

// Reads KEY=VALUE lines; blank lines and # comments are skipped, values may be quoted,
// and `export KEY=VALUE` is accepted.
outcome<std::map<std::string, std::string>> read_dotenv(const std::string& path, bool must_exist) {
  std::map<std::string, std::string> vars;
  std::string text;
  auto status = read_text_file(path, text);
  // A .env looked for by default may be missing, or a directory (a virtualenv is often
  // called .env): only a path given on purpose must be a readable file.
  if (!must_exist && (status == file_status::directory || status == file_status::cannot_open))
    return vars;
  if (auto problem = file_problem(status, "the .env file", path, "a KEY=VALUE file"))
    return config_error(*problem);
  int number = 0;
  size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    auto line = text.substr(start, end == npos ? npos : end - start);
    start = end == npos ? text.size() : end + 1;
    ++number;
    auto where = ".env file " + in_quotes(path) + ", line " + std::to_string(number);
    if (line.find('\0') != npos)
      return config_error(where + ": contains a NUL byte; save the file as text");
    auto first = line.find_first_not_of(" \t");
    if (first == npos || line[first] == '#')
      continue;
    line = line.substr(first);
    if (line.rfind("export ", 0) == 0)
      line = line.substr(7);
    auto eq = line.find('=');
    if (eq == npos || eq == 0)
      return config_error(where + ": expected KEY=VALUE");
    auto key = line.substr(0, eq);
    while (!key.empty() && key.back() == ' ')
      key.pop_back();
    auto val = line.substr(eq + 1);
    auto val_start = val.find_first_not_of(' ');
    val = val_start == npos ? "" : val.substr(val_start);
    // Trailing blanks and a CRLF file's '\r' go before unquoting, so that quotes
    // followed by them still come off and blanks inside quotes stay.
    while (!val.empty() && (val.back() == '\r' || val.back() == ' ' || val.back() == '\t'))
      val.pop_back();
    if (val.size() >= 2 && (val.front() == '"' || val.front() == '\'') &&
        val.back() == val.front()) {
      val = val.substr(1, val.size() - 2);
    } else if (auto hash = val.find(" #"); hash != npos) {
      val = val.substr(0, hash);
      while (!val.empty() && (val.back() == ' ' || val.back() == '\t'))
        val.pop_back();
    }
    vars[key] = val;
  }
  return vars;
}

} // namespace

namespace {

// The variable that sets `option`: CAFDB_POOL_SIZE for pool_size.
std::string env_name(const std::string& option) {
  std::string name = "CAFDB_";
  for (auto ch : option)
    name += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return name;
}

std::string env_names() {
  std::string out = "CAFDB_URL";
  for (auto& entry : option_table())
    out += ", " + env_name(entry.first);
  return out;
}

// "; did you mean CAFDB_POOL_SIZE?" when only the case is wrong, else "".
std::string env_hint(const std::string& name) {
  std::string upper;
  for (auto ch : name)
    upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (upper == name)
    return "";
  for (auto& entry : option_table())
    if (env_name(entry.first) == upper)
      return "; did you mean " + upper + "?";
  return upper == "CAFDB_URL" ? "; did you mean CAFDB_URL?" : "";
}

// The first CAFDB_ variable (any case) of the environment or the .env file that names no
// option: a misspelt CAFDB_POOL_SIZ would otherwise be ignored without a word. Names
// that cafdb's own build and test scripts use (CAFDB_TEST_..., CAFDB_SKIP_...,
// CAFDB_FUZZ_..., CAFDB_TSAN_..., CAFDB_BUILD_...) are theirs, not options.
std::optional<std::string>
unknown_cafdb_variable(const std::map<std::string, std::string>& dotenv) {
  static const std::set<std::string> known = [] {
    std::set<std::string> names{"CAFDB_URL"};
    for (auto& entry : option_table())
      names.insert(env_name(entry.first));
    return names;
  }();
  auto unknown = [&](const std::string& name) {
    if (lower(name.substr(0, 6)) != "cafdb_" || known.count(name))
      return false;
    for (auto tooling :
         {"CAFDB_TEST_", "CAFDB_SKIP_", "CAFDB_FUZZ_", "CAFDB_TSAN_", "CAFDB_BUILD_"})
      if (name.rfind(tooling, 0) == 0)
        return false;
    return true;
  };
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string name{*entry};
    name = name.substr(0, name.find('='));
    if (unknown(name))
      return name;
  }
  for (auto& [name, value] : dotenv)
    if (unknown(name))
      return name;
  return std::nullopt;
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
  if (auto unknown = unknown_cafdb_variable(*dotenv))
    return config_error("unknown variable " + printable(*unknown, npos) +
                        ": cafdb reads CAFDB_URL (or DATABASE_URL) and CAFDB_ followed by an "
                        "option's name in capitals (" +
                        env_names() + ")" + env_hint(*unknown));
  std::optional<config> cfg;
  // CAFDB_URL, else DATABASE_URL, the name most platforms (Heroku, Render, Fly) set.
  std::string url_name = "CAFDB_URL";
  auto url = lookup(url_name);
  if (!url || url->empty()) {
    url_name = "DATABASE_URL";
    url = lookup(url_name);
  }
  if (url && !url->empty()) {
    auto parsed = config_from_url(*url);
    if (!parsed) {
      auto err = parsed.error();
      err.message = url_name + ": " + err.message;
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
      return config_error("no database configured: set CAFDB_URL or DATABASE_URL (e.g. "
                          "sqlite:///app.db), or "
                          "DB_USERNAME, DB_PASSWORD, DB_HOST, DB_PORT and DB_NAME");
    if (!missing.empty()) {
      std::string list;
      for (auto& name : missing)
        list += (list.empty() ? "" : ", ") + name;
      return config_error(list + (missing.size() == 1 ? " is" : " are") +
                          " not set; the PostgreSQL settings need all of DB_USERNAME, "
                          "DB_PASSWORD, DB_HOST, DB_PORT and DB_NAME (or set CAFDB_URL)");
    }
    for (auto& [name, val] : found)
      if (val.find('\0') != npos)
        return config_error(name + " contains a NUL byte");
    auto& port = found["DB_PORT"];
    if (!valid_ports(port) || port.find(',') != npos)
      return config_error("DB_PORT must be a port number from 1 to 65535, got " + in_quotes(port));
    auto& host = found["DB_HOST"];
    config built;
    // Shown redacted in logs only; libpq gets the keywords below.
    built.url = "postgresql://" + percent_encode(found["DB_USERNAME"]) + ":" +
                percent_encode(found["DB_PASSWORD"]) + "@" +
                (host.find(':') != npos ? "[" + host + "]" : percent_encode(host)) + ":" + port +
                "/" + percent_encode(found["DB_NAME"]);
    // Keywords, not the URL: no escaping can go wrong on the way to libpq.
    auto set = set_postgres_endpoint(built, {{"user", found["DB_USERNAME"]},
                                             {"password", found["DB_PASSWORD"]},
                                             {"host", host},
                                             {"port", port},
                                             {"dbname", found["DB_NAME"]}});
    if (!set)
      return set.error();
    cfg = std::move(built);
  }
  for (auto& entry : option_table()) {
    auto name = env_name(entry.first);
    if (auto text = lookup(name))
      if (auto applied = entry.second(*cfg, entry.first + " (from " + name + ")", json(*text));
          !applied)
        return applied.error();
  }
  return std::move(*cfg);
}

} // namespace cafdb
