#include "cafdb/core/value.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace cafdb {

namespace {

// The shortest decimal text that reads back as `x` exactly.
std::string shortest(double x) {
  if (std::isnan(x))
    return "NaN";
  if (std::isinf(x))
    return x > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), x);
  return ec == std::errc{} ? std::string(buf, end) : std::string{};
}

} // namespace

std::string to_string(value_type x) {
  switch (x) {
  case value_type::null:
    return "null";
  case value_type::boolean:
    return "boolean";
  case value_type::integer:
    return "integer";
  case value_type::real:
    return "real";
  case value_type::text:
    return "text";
  default:
    return "blob";
  }
}

int64_t value::as_int() const noexcept {
  switch (type_) {
  case value_type::boolean:
  case value_type::integer:
    return integer_;
  case value_type::real:
    return static_cast<int64_t>(real_);
  default:
    return 0;
  }
}

double value::as_double() const noexcept {
  switch (type_) {
  case value_type::boolean:
  case value_type::integer:
    return static_cast<double>(integer_);
  case value_type::real:
    return real_;
  default:
    return 0;
  }
}

std::string value::as_text() const {
  switch (type_) {
  case value_type::null:
    return {};
  case value_type::boolean:
    return integer_ ? "true" : "false";
  case value_type::integer:
    return std::to_string(integer_);
  case value_type::real:
    // Exact both ways, and as short as can be: 0.1 binds as "0.1", so a NUMERIC column on
    // PostgreSQL stores 0.1, not 0.10000000000000001.
    return shortest(real_);
  default:
    return bytes_;
  }
}

bool operator==(const value& x, const value& y) noexcept {
  if (x.type_ != y.type_)
    return false;
  switch (x.type_) {
  case value_type::null:
    return true;
  case value_type::boolean:
  case value_type::integer:
    return x.integer_ == y.integer_;
  case value_type::real:
    return x.real_ == y.real_;
  default:
    return x.bytes_ == y.bytes_;
  }
}

std::string to_string(const value& x) {
  switch (x.type()) {
  case value_type::null:
    return "NULL";
  case value_type::text:
    return "'" + x.bytes() + "'";
  case value_type::blob:
    return "<blob " + std::to_string(x.bytes().size()) + " bytes>";
  default:
    return x.as_text();
  }
}

std::ptrdiff_t result_set::column_index(std::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == column)
      return static_cast<std::ptrdiff_t>(i);
  return -1;
}

const value& result_set::at(size_t r, std::string_view column) const {
  auto c = column_index(column);
  if (c < 0)
    throw std::out_of_range("no column named '" + std::string{column} + "' in the result");
  return rows.at(r).at(static_cast<size_t>(c));
}

db_error row_ref::no_column(const std::string& column) const {
  std::string known;
  for (auto& name : result_->columns)
    known += (known.empty() ? "" : ", ") + name;
  return db_error{errc::invalid_argument,
                  "no column " + column +
                      " in the result; its columns are: " + (known.empty() ? "(none)" : known),
                  "", ""};
}

std::string row_ref::where(size_t c) const {
  auto& name = result_->columns.size() > c ? result_->columns[c] : std::string{};
  return "column " + (name.empty() ? std::to_string(c) : "'" + name + "'") + " of row " +
         std::to_string(index_) + ": ";
}

// -- checked conversions ----------------------------------------------------------------

namespace {

// What a value is, for error messages: its kind and size, never its content (a value
// may be a secret).
std::string kind_of(const value& x) {
  switch (x.type()) {
  case value_type::null:
    return "NULL";
  case value_type::boolean:
    return "a boolean";
  case value_type::integer:
    return "an integer";
  case value_type::real:
    return "a real";
  case value_type::text:
    return "text of " + std::to_string(x.bytes().size()) + " bytes";
  default:
    return "a blob of " + std::to_string(x.bytes().size()) + " bytes";
  }
}

db_error cannot(const value& x, const std::string& type, const std::string& why) {
  auto message = kind_of(x) + " cannot be read as " + type;
  if (x.is_null())
    message += ": read it as std::optional<" + type + "> to accept NULL";
  else if (!why.empty())
    message += ": " + why;
  return db_error{errc::conversion_failed, std::move(message), "", ""};
}

// An integer written in decimal, optionally with a fraction of zeros only (a PostgreSQL
// numeric such as 42.000): its value, or why not.
enum class integer_text { ok, not_integer, out_of_range };

integer_text parse_integer_text(std::string_view text, int64_t& out) {
  auto dot = text.find('.');
  auto whole = text.substr(0, dot);
  if (dot != std::string_view::npos) {
    auto fraction = text.substr(dot + 1);
    if (fraction.find_first_not_of('0') != std::string_view::npos)
      return integer_text::not_integer;
    if (whole.empty() || whole == "-" || whole == "+")
      return integer_text::not_integer;
  }
  if (!whole.empty() && whole.front() == '+')
    whole.remove_prefix(1);
  if (whole.empty() || whole.front() == '+')
    return integer_text::not_integer;
  auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), out);
  if (end != whole.data() + whole.size())
    return integer_text::not_integer;
  if (ec == std::errc::result_out_of_range)
    return integer_text::out_of_range;
  if (ec != std::errc{})
    return integer_text::not_integer;
  return integer_text::ok;
}

// The significant digits of a decimal literal ([+-]digits[.digits][e[+-]digits]):
// leading and trailing zeros do not count. -1 if `text` is not such a literal.
int significant_digits(std::string_view text) {
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-'))
    ++i;
  std::string digits;
  bool any = false;
  bool dot = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      any = true;
      if (!digits.empty() || c != '0')
        digits += c;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!any)
    return -1;
  if (i < text.size()) {
    if (text[i] != 'e' && text[i] != 'E')
      return -1;
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-'))
      ++i;
    if (i == text.size())
      return -1;
    for (; i < text.size(); ++i)
      if (text[i] < '0' || text[i] > '9')
        return -1;
  }
  while (!digits.empty() && digits.back() == '0')
    digits.pop_back();
  return static_cast<int>(digits.size());
}

bool is_special_number(std::string_view text) {
  return text == "NaN" || text == "Infinity" || text == "-Infinity";
}

constexpr int64_t exact_double_limit = int64_t{1} << 53;

} // namespace

namespace detail {

void throw_time_out_of_range() {
  throw std::out_of_range("cafdb::value: the time point is outside cafdb::timestamp's range "
                          "(1677-09-21 00:12:43.145224192 to 2262-04-11 23:47:16.854775807 UTC, "
                          "nanoseconds in an int64)");
}

void throw_unsigned_out_of_range(unsigned long long x) {
  throw std::out_of_range("cafdb::value: the unsigned number " + std::to_string(x) +
                          " is above 9223372036854775807, the largest integer SQLite and "
                          "PostgreSQL store; bind a cafdb::decimal (for a NUMERIC column) "
                          "or text instead");
}

outcome<int64_t> checked_integer(const value& x, int64_t lowest, int64_t highest,
                                 const char* type) {
  auto range = [&] {
    return std::string{"it is outside "} + type + "'s range " + std::to_string(lowest) + ".." +
           std::to_string(highest) + "; read it as a wider type, cafdb::decimal or std::string";
  };
  int64_t n = 0;
  switch (x.type()) {
  case value_type::null:
    return cannot(x, type, "");
  case value_type::boolean:
  case value_type::integer:
    n = x.as_int();
    break;
  case value_type::real: {
    auto r = x.as_double();
    // 2^63 is exactly representable; every double below it in magnitude is an int64.
    if (!std::isfinite(r) || r != std::trunc(r) || r < -9223372036854775808.0 ||
        r >= 9223372036854775808.0)
      return cannot(x, type,
                    "it has a fraction or is beyond any integer's range; read it as double");
    n = static_cast<int64_t>(r);
    break;
  }
  case value_type::text:
    switch (parse_integer_text(x.bytes(), n)) {
    case integer_text::ok:
      break;
    case integer_text::out_of_range:
      return cannot(x, type, range());
    case integer_text::not_integer:
      return cannot(x, type,
                    "it is not an integer in decimal; read it as std::string, double or "
                    "cafdb::decimal");
    }
    break;
  default:
    return cannot(x, type, "read it as cafdb::blob");
  }
  if (n < lowest || n > highest)
    return cannot(x, type, range());
  return n;
}

outcome<double> checked_double(const value& x) {
  switch (x.type()) {
  case value_type::null:
    return cannot(x, "double", "");
  case value_type::boolean:
    return x.as_double();
  case value_type::integer: {
    auto n = x.as_int();
    if (n > exact_double_limit || n < -exact_double_limit)
      return cannot(x, "double",
                    "it is beyond 2^53, past which a double does not hold every integer; read "
                    "it as int64_t");
    return static_cast<double>(n);
  }
  case value_type::real:
    return x.as_double();
  case value_type::text: {
    auto& text = x.bytes();
    if (is_special_number(text))
      return text == "NaN" ? std::nan("") : (text[0] == '-' ? -HUGE_VAL : HUGE_VAL);
    auto digits = significant_digits(text);
    if (digits < 0)
      return cannot(x, "double", "it is not a number; read it as std::string");
    if (digits > 15)
      return cannot(x, "double",
                    "it has " + std::to_string(digits) +
                        " significant digits and a double holds 15 exactly; read it as "
                        "cafdb::decimal or std::string");
    double out = 0;
    auto first = text.data() + (text[0] == '+' ? 1 : 0);
    auto [end, ec] = std::from_chars(first, text.data() + text.size(), out);
    if (ec != std::errc{} || end != text.data() + text.size())
      return cannot(x, "double", "it is beyond a double's range; read it as cafdb::decimal");
    return out;
  }
  default:
    return cannot(x, "double", "read it as cafdb::blob");
  }
}

outcome<bool> checked_bool(const value& x) {
  switch (x.type()) {
  case value_type::boolean:
    return x.as_bool();
  case value_type::integer:
    if (x.as_int() == 0 || x.as_int() == 1)
      return x.as_int() == 1;
    return cannot(x, "bool", "only the integers 0 and 1 are booleans; read it as int64_t");
  default:
    return cannot(x, "bool", "read booleans from BOOLEAN columns or the integers 0 and 1");
  }
}

outcome<std::string> checked_string(const value& x) {
  switch (x.type()) {
  case value_type::null:
    return cannot(x, "std::string", "");
  case value_type::blob:
    return cannot(x, "std::string", "read it as cafdb::blob");
  case value_type::real:
    return shortest(x.as_double());
  default:
    return x.as_text();
  }
}

outcome<std::string_view> checked_string_view(const value& x) {
  if (x.type() == value_type::text)
    return std::string_view{x.bytes()};
  return cannot(x, "std::string_view", "only text has a view; read it as std::string");
}

outcome<blob> checked_blob(const value& x) {
  if (x.type() == value_type::blob || x.type() == value_type::text)
    return x.as_blob();
  return cannot(x, "cafdb::blob", "only blobs and text are bytes");
}

outcome<timestamp> checked_timestamp(const value& x) {
  if (x.type() != value_type::text)
    return cannot(x, "timestamp",
                  "times are read from ISO 8601 text, as PostgreSQL prints them and cafdb binds "
                  "them");
  auto t = parse_timestamp(x.bytes());
  if (!t)
    return cannot(x, "timestamp", t.error().message);
  return *t;
}

outcome<decimal> checked_decimal(const value& x) {
  switch (x.type()) {
  case value_type::integer:
    return decimal{std::to_string(x.as_int())};
  case value_type::real:
    return decimal{shortest(x.as_double())};
  case value_type::text: {
    auto d = decimal::parse(x.bytes());
    if (!d)
      return cannot(x, "cafdb::decimal", "it is not a decimal number; read it as std::string");
    return d;
  }
  default:
    return cannot(x, "cafdb::decimal", "");
  }
}

} // namespace detail

// -- decimal --------------------------------------------------------------------------

outcome<decimal> decimal::parse(std::string_view text) {
  if (is_special_number(text) || significant_digits(text) >= 0)
    return decimal{std::string{text}, trusted{}};
  return db_error{errc::conversion_failed,
                  "text of " + std::to_string(text.size()) +
                      " bytes is not a decimal number ([+-]digits[.digits][e[+-]digits], NaN, "
                      "Infinity or -Infinity)",
                  "", ""};
}

decimal::decimal(std::string_view text) {
  auto parsed = parse(text);
  if (!parsed)
    throw std::invalid_argument("cafdb::decimal: " + parsed.error().message);
  text_ = std::move(parsed->text_);
}

// -- timestamps -----------------------------------------------------------------------

namespace {

// Days since 1970-01-01 of the proleptic Gregorian date y-m-d, counting in 400-year eras
// (146,097 days each) that start on March 1st, so that the leap day ends a year.
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t year_of_era = y - era * 400;                                   // [0, 399]
  int64_t day_of_year = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; // [0, 365]
  int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468; // 719468: days from 0000-03-01 to 1970-01-01
}

struct civil_date {
  int64_t year;
  int month;
  int day;
};

// The inverse of days_from_civil.
civil_date civil_from_days(int64_t z) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t day_of_era = z - era * 146097;
  int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  int64_t shifted_month = (5 * day_of_year + 2) / 153; // 0 = March
  int day = static_cast<int>(day_of_year - (153 * shifted_month + 2) / 5 + 1);
  int month = static_cast<int>(shifted_month < 10 ? shifted_month + 3 : shifted_month - 9);
  return {year_of_era + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

bool leap_year(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int64_t y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

constexpr int64_t ns_per_second = 1'000'000'000;
constexpr int64_t seconds_per_day = 86'400;

// Reads exactly `count` digits at `pos`.
bool read_digits(std::string_view text, size_t& pos, size_t count, int64_t& out) {
  if (pos + count > text.size())
    return false;
  out = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9')
      return false;
    out = out * 10 + (c - '0');
  }
  pos += count;
  return true;
}

db_error bad_time(const std::string& why) {
  return db_error{errc::conversion_failed, why, "", ""};
}

} // namespace

std::string format_timestamp(timestamp x) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(x.time_since_epoch()).count();
  auto seconds = ns / ns_per_second;
  auto fraction = ns % ns_per_second;
  if (fraction < 0) {
    fraction += ns_per_second;
    --seconds;
  }
  auto days = seconds / seconds_per_day;
  auto of_day = seconds % seconds_per_day;
  if (of_day < 0) {
    of_day += seconds_per_day;
    --days;
  }
  auto date = civil_from_days(days);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04lld-%02d-%02d %02lld:%02lld:%02lld.%09lldZ",
                static_cast<long long>(date.year), date.month, date.day,
                static_cast<long long>(of_day / 3600), static_cast<long long>(of_day / 60 % 60),
                static_cast<long long>(of_day % 60), static_cast<long long>(fraction));
  return buf;
}

outcome<timestamp> parse_timestamp(std::string_view text) {
  static const std::string form =
      "YYYY-MM-DD[ HH:MM[:SS[.fraction]]][Z or +HH[:MM[:SS]]], as PostgreSQL prints "
      "timestamptz and SQLite stores CURRENT_TIMESTAMP";
  if (text == "infinity" || text == "-infinity")
    return bad_time("PostgreSQL's " + std::string{text} +
                    " is no point in time; test for it in SQL with isfinite()");
  if (text.size() > 3 && text.substr(text.size() - 3) == " BC")
    return bad_time("a date before year 1 (BC) is outside a time_point's range");
  size_t pos = 0;
  // The year has four digits or more (PostgreSQL prints years past 9999 in full).
  size_t year_digits = 0;
  while (pos + year_digits < text.size() && text[pos + year_digits] >= '0' &&
         text[pos + year_digits] <= '9')
    ++year_digits;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, fraction = 0;
  if (year_digits < 4 || year_digits > 6 || !read_digits(text, pos, year_digits, year) ||
      pos >= text.size() || text[pos++] != '-' || !read_digits(text, pos, 2, month) ||
      pos >= text.size() || text[pos++] != '-' || !read_digits(text, pos, 2, day))
    return bad_time("it is not a date and time in the form " + form);
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, static_cast<int>(month)))
    return bad_time("it names a day that does not exist");
  if (pos < text.size() && (text[pos] == ' ' || text[pos] == 'T')) {
    ++pos;
    if (!read_digits(text, pos, 2, hour) || pos >= text.size() || text[pos++] != ':' ||
        !read_digits(text, pos, 2, minute))
      return bad_time("it is not a date and time in the form " + form);
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!read_digits(text, pos, 2, second))
        return bad_time("it is not a date and time in the form " + form);
      if (pos < text.size() && text[pos] == '.') {
        ++pos;
        size_t digits = 0;
        for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos, ++digits) {
          if (digits < 9)
            fraction = fraction * 10 + (text[pos] - '0');
          else if (text[pos] != '0')
            return bad_time("it has digits below a nanosecond, which a time_point does not hold");
        }
        if (digits == 0)
          return bad_time("it is not a date and time in the form " + form);
        for (; digits < 9; ++digits)
          fraction *= 10;
      }
    }
    if (hour > 23 || minute > 59 || second > 59)
      return bad_time("it names a time of day that does not exist");
  }
  int64_t offset = 0; // seconds east of UTC
  if (pos < text.size() && text[pos] == 'Z') {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int64_t sign = text[pos++] == '-' ? -1 : 1;
    int64_t h = 0, m = 0, s = 0;
    if (!read_digits(text, pos, 2, h))
      return bad_time("its zone offset is not +HH[:MM[:SS]]");
    for (auto* part : {&m, &s}) {
      if (pos < text.size() && text[pos] == ':')
        ++pos;
      else if (pos == text.size())
        break;
      if (!read_digits(text, pos, 2, *part))
        return bad_time("its zone offset is not +HH[:MM[:SS]]");
    }
    if (h > 15 || m > 59 || s > 59)
      return bad_time("its zone offset is out of range");
    offset = sign * (h * 3600 + m * 60 + s);
  }
  if (pos != text.size())
    return bad_time("it is not a date and time in the form " + form);
  // A time_point counts nanoseconds in an int64: from -2^63 ns (1677-09-21
  // 00:12:43.145224192) to 2^63 - 1 ns (2262-04-11 23:47:16.854775807).
  auto days = days_from_civil(year, month, day);
  auto seconds = days * seconds_per_day + hour * 3600 + minute * 60 + second - offset;
  constexpr int64_t lowest_second = std::numeric_limits<int64_t>::min() / ns_per_second - 1;
  constexpr int64_t highest_second = std::numeric_limits<int64_t>::max() / ns_per_second;
  constexpr int64_t lowest_fraction =
      std::numeric_limits<int64_t>::min() % ns_per_second + ns_per_second;
  constexpr int64_t highest_fraction = std::numeric_limits<int64_t>::max() % ns_per_second;
  if (seconds < lowest_second || seconds > highest_second ||
      (seconds == lowest_second && fraction < lowest_fraction) ||
      (seconds == highest_second && fraction > highest_fraction))
    return bad_time("it is outside a time_point's range (1677-09-21 00:12:43.145224192 to "
                    "2262-04-11 23:47:16.854775807 UTC)");
  // Below zero, (seconds + 1) * 1e9 stays in range where seconds * 1e9 would not (the
  // lowest second).
  auto ns = seconds >= 0 ? seconds * ns_per_second + fraction
                         : (seconds + 1) * ns_per_second + (fraction - ns_per_second);
  return timestamp{std::chrono::duration_cast<timestamp::duration>(std::chrono::nanoseconds{ns})};
}

} // namespace cafdb
