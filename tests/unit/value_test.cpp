// Unit: the checked conversions of value::get<T>(), parameters from C++ types, timestamps
// and decimals as text, and walking a result_set's rows. CAF-free: no engine runs.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "cafdb/core/value.hpp"

using namespace cafdb;
using namespace std::chrono;

namespace {

template <class T>
void require_refused(const outcome<T>& x, const std::string& says) {
  REQUIRE_FALSE(x);
  INFO(x.error().message);
  CHECK(x.error().code == errc::conversion_failed);
  CHECK(x.error().message.find(says) != std::string::npos);
}

timestamp utc(int64_t seconds_since_epoch, int64_t micros = 0) {
  return timestamp{
      duration_cast<timestamp::duration>(seconds{seconds_since_epoch} + microseconds{micros})};
}

} // namespace

TEST_CASE("get<T>: integers convert within range and refuse what they would lose", "[values]") {
  CHECK(*value{int64_t{42}}.get<int64_t>() == 42);
  CHECK(*value{std::numeric_limits<int64_t>::min()}.get<int64_t>() ==
        std::numeric_limits<int64_t>::min());
  CHECK(*value{300}.get<int16_t>() == 300);
  require_refused(value{300}.get<int8_t>(), "outside int8's range -128..127");
  require_refused(value{-1}.get<uint32_t>(), "outside uint32's range");
  require_refused(value{int64_t{1} << 40}.get<int32_t>(), "int32");
  CHECK(*value{std::numeric_limits<int64_t>::max()}.get<uint64_t>() ==
        uint64_t(std::numeric_limits<int64_t>::max()));
  // Integral reals (SQLite may store 3 as 3.0) and integer text (a numeric 42.000).
  CHECK(*value{3.0}.get<int>() == 3);
  require_refused(value{3.5}.get<int64_t>(), "fraction");
  require_refused(value{1e19}.get<int64_t>(), "range");
  require_refused(value{std::nan("")}.get<int64_t>(), "fraction");
  CHECK(*value{"42.000"}.get<int64_t>() == 42);
  CHECK(*value{"-9223372036854775808"}.get<int64_t>() == std::numeric_limits<int64_t>::min());
  require_refused(value{"9223372036854775808"}.get<int64_t>(), "range");
  require_refused(value{"42.5"}.get<int64_t>(), "not an integer");
  require_refused(value{"forty"}.get<int64_t>(), "not an integer");
  require_refused(value{""}.get<int64_t>(), "not an integer");
  require_refused(value{"+"}.get<int64_t>(), "not an integer");
  require_refused(value{".0"}.get<int64_t>(), "not an integer");
  require_refused(value{" 1"}.get<int64_t>(), "not an integer");
  require_refused(value{blob{1}}.get<int64_t>(), "blob");
  CHECK(*value{true}.get<int>() == 1);
}

TEST_CASE("get<T>: NULL is refused unless T is optional", "[values]") {
  require_refused(value{}.get<int64_t>(), "std::optional<int64>");
  require_refused(value{}.get<std::string>(), "std::optional<std::string>");
  require_refused(value{}.get<double>(), "NULL");
  require_refused(value{}.get<timestamp>(), "NULL");
  CHECK(*value{}.get<std::optional<int64_t>>() == std::nullopt);
  CHECK(*value{7}.get<std::optional<int64_t>>() == 7);
  // optional does not loosen the check on what is there.
  require_refused(value{"x"}.get<std::optional<int64_t>>(), "not an integer");
}

TEST_CASE("get<T>: doubles hold only what they hold exactly", "[values]") {
  CHECK(*value{2.5}.get<double>() == 2.5);
  CHECK(*value{int64_t{1} << 53}.get<double>() == 9007199254740992.0);
  require_refused(value{(int64_t{1} << 53) + 1}.get<double>(), "2^53");
  CHECK(*value{"123.456"}.get<double>() == 123.456);
  CHECK(*value{"1e300"}.get<double>() == 1e300);
  CHECK(*value{"+0.5"}.get<double>() == 0.5);
  CHECK(std::isnan(*value{"NaN"}.get<double>()));
  CHECK(*value{"-Infinity"}.get<double>() == -HUGE_VAL);
  require_refused(value{"1234567890123456.7"}.get<double>(), "17 significant digits");
  require_refused(value{"123456789012345678901234567890"}.get<double>(), "cafdb::decimal");
  require_refused(value{"1e999"}.get<double>(), "range");
  require_refused(value{"abc"}.get<double>(), "not a number");
  // Trailing and leading zeros are not significant.
  CHECK(*value{"0.000000000000000000012300"}.get<double>() == 1.23e-20);
}

TEST_CASE("get<T>: booleans, text, views, blobs", "[values]") {
  CHECK(*value{true}.get<bool>());
  CHECK_FALSE(*value{0}.get<bool>());
  require_refused(value{2}.get<bool>(), "0 and 1");
  require_refused(value{"true"}.get<bool>(), "BOOLEAN");

  CHECK(*value{"héllo"}.get<std::string>() == "héllo");
  CHECK(*value{-12}.get<std::string>() == "-12");
  CHECK(*value{0.1}.get<std::string>() == "0.1");
  require_refused(value{blob{1, 2}}.get<std::string>(), "cafdb::blob");
  value text{"view me"};
  CHECK(*text.get<std::string_view>() == "view me");
  require_refused(value{5}.get<std::string_view>(), "std::string");

  CHECK(*value{blob{0, 255}}.get<blob>() == blob{0, 255});
  CHECK(*value{"ab"}.get<blob>() == blob{'a', 'b'});
  require_refused(value{1}.get<blob>(), "bytes");
}

TEST_CASE("conversion errors never show the value itself", "[values]") {
  auto secret = value{"hunter2-secret"}.get<int64_t>();
  REQUIRE_FALSE(secret);
  CHECK(secret.error().message.find("hunter2") == std::string::npos);
  CHECK(secret.error().message.find("14 bytes") != std::string::npos);
}

TEST_CASE("decimals stay exact", "[values]") {
  std::string thirty = "123456789012345678901234567890.123456789";
  auto d = value{thirty}.get<decimal>();
  REQUIRE(d);
  CHECK(d->str() == thirty);
  CHECK(value{decimal{thirty}} == value{thirty});
  CHECK(value{int64_t{-5}}.get<decimal>()->str() == "-5");
  CHECK(value{0.1}.get<decimal>()->str() == "0.1");
  CHECK(decimal::parse("-1.5e-3"));
  CHECK(decimal::parse("NaN"));
  for (auto bad : {"", "-", "1.2.3", "1e", "0x10", "1,5", " 1"}) {
    INFO(bad);
    CHECK_FALSE(decimal::parse(bad));
  }
  CHECK_THROWS_AS(decimal{"one"}, std::invalid_argument);
  require_refused(value{"one"}.get<decimal>(), "not a decimal");
}

TEST_CASE("parameters from C++ types", "[values]") {
  size_t count = 3;
  uint64_t big = uint64_t(std::numeric_limits<int64_t>::max());
  CHECK(value{count} == value{int64_t{3}});
  CHECK(value{big}.as_int() == std::numeric_limits<int64_t>::max());
  CHECK_THROWS_AS(value{big + 1}, std::out_of_range);
  CHECK(value{uint8_t{200}}.as_int() == 200);
  CHECK(value{std::string_view{"sv"}} == value{"sv"});
  CHECK(value{std::optional<int>{}}.is_null());
  CHECK(value{std::optional<int>{4}} == value{4});
  CHECK(value{std::optional<std::string>{"x"}} == value{"x"});
  CHECK(value{std::nullopt}.is_null());
  CHECK(value{static_cast<const char*>(nullptr)}.is_null());
  CHECK(value{utc(0)} == value{"1970-01-01 00:00:00.000000000Z"});
  // A time point of another precision outside timestamp's range throws instead of
  // wrapping around to another date.
  using millis = time_point<system_clock, milliseconds>;
  CHECK_THROWS_AS(value{millis{milliseconds{32503680000000}}}, std::out_of_range); // year 3000
  using whole_seconds = time_point<system_clock, seconds>;
  using real_seconds = time_point<system_clock, duration<double>>;
  CHECK_THROWS_AS(value(whole_seconds{seconds{-11644473600}}), std::out_of_range); // year 1601
  CHECK_THROWS_AS(value(real_seconds{duration<double>{1.5e10}}), std::out_of_range);
  CHECK(value{millis{milliseconds{1500}}} == value{"1970-01-01 00:00:01.500000000Z"});
  // Reals bind as their shortest exact text.
  CHECK(value{0.1}.as_text() == "0.1");
  CHECK(value{1e300}.as_text() == "1e+300");
  CHECK(value{time_point_cast<seconds>(utc(86400))} == value{"1970-01-02 00:00:00.000000000Z"});
}

TEST_CASE("timestamps: formatted as UTC text, parsed from what the engines print", "[values]") {
  // Before 1970, after 2038, leap days, the edges of the range.
  struct sample {
    timestamp at;
    const char* text;
  };
  sample samples[] = {
      {utc(0), "1970-01-01 00:00:00.000000000Z"},
      {utc(-1, 500000), "1969-12-31 23:59:59.500000000Z"},
      {utc(-2208988800), "1900-01-01 00:00:00.000000000Z"},
      {utc(951782400), "2000-02-29 00:00:00.000000000Z"},
      {utc(2147483648, 1), "2038-01-19 03:14:08.000001000Z"},
      {utc(4102444800), "2100-01-01 00:00:00.000000000Z"},
      {utc(-9214560000), "1678-01-01 00:00:00.000000000Z"},
      {utc(9214646399, 999999), "2261-12-31 23:59:59.999999000Z"},
  };
  for (auto& s : samples) {
    INFO(s.text);
    CHECK(format_timestamp(s.at) == s.text);
    auto back = parse_timestamp(s.text);
    REQUIRE(back);
    CHECK(*back == s.at);
  }
  CHECK(format_timestamp(utc(0) + nanoseconds{7}) == "1970-01-01 00:00:00.000000007Z");
  // Fixed width: the texts sort as the time points do (SQLite compares them as text).
  auto earlier = format_timestamp(utc(1704110400, 123456));
  auto later = format_timestamp(utc(1704110400, 123456) + nanoseconds{789});
  CHECK(earlier < later);
  // The whole range, to the nanosecond, both ways; one past it is refused.
  CHECK(format_timestamp(timestamp::min()) == "1677-09-21 00:12:43.145224192Z");
  CHECK(format_timestamp(timestamp::max()) == "2262-04-11 23:47:16.854775807Z");
  CHECK(*parse_timestamp(format_timestamp(timestamp::min())) == timestamp::min());
  CHECK(*parse_timestamp(format_timestamp(timestamp::max())) == timestamp::max());
  CHECK_FALSE(parse_timestamp("1677-09-21 00:12:43.145224191Z"));
  CHECK_FALSE(parse_timestamp("2262-04-11 23:47:16.854775808Z"));
  CHECK(*parse_timestamp("1970-01-01 00:00:00.000000007Z") == utc(0) + nanoseconds{7});

  // PostgreSQL's forms: timestamptz with an offset (hours, minutes, even seconds for old
  // local mean times), timestamp without one, date.
  CHECK(*parse_timestamp("2026-12-02 12:35:50.123456+00") == utc(1796214950, 123456));
  CHECK(*parse_timestamp("2026-12-02 18:05:50.123456+05:30") == utc(1796214950, 123456));
  CHECK(*parse_timestamp("2026-12-02 12:35:50-01") == utc(1796218550));
  CHECK(*parse_timestamp("1900-01-01 00:19:32+00:19:32") == utc(-2208988800));
  CHECK(*parse_timestamp("2026-12-02 12:35:50") == utc(1796214950));
  CHECK(*parse_timestamp("2026-12-02T12:35:50Z") == utc(1796214950));
  CHECK(*parse_timestamp("2026-12-02 12:35") == utc(1796214900));
  CHECK(*parse_timestamp("2026-12-02") == utc(1796169600));

  for (auto bad : {"", "2026-13-01", "2026-02-29", "2026-12-02 24:00:00", "2026-12-02 12:60",
                   "2026-12-02 12:35:50.", "2026-12-02 12:35:50+5", "2026-12-02 12:35:50 UTC",
                   "26-12-02", "12:35:50", "2026-12-02 12:35:50.1234567891Z", "1600-01-01",
                   "2300-01-01", "0044-03-15 BC", "infinity", "-infinity"}) {
    INFO(bad);
    auto t = parse_timestamp(bad);
    REQUIRE_FALSE(t);
    CHECK(t.error().code == errc::conversion_failed);
  }
  // Digits below a nanosecond are accepted only when they are zeros.
  CHECK(parse_timestamp("1970-01-01 00:00:00.0000000010Z"));
  require_refused(value{int64_t{0}}.get<timestamp>(), "ISO 8601 text");
}

TEST_CASE("a result's rows: range-for, access by column name, errors that name the column",
          "[values]") {
  result_set rs;
  rs.columns = {"id", "name", "total"};
  rs.rows = {{value{1}, value{"ann"}, value{"123456789012345678901234567890"}},
             {value{2}, value{}, value{"7"}}};
  std::vector<int64_t> ids;
  for (auto row : rs)
    ids.push_back(*row.get<int64_t>("id"));
  CHECK(ids == std::vector<int64_t>{1, 2});
  CHECK(rs.size() == 2);
  CHECK(*rs.get<std::string>(0, "name") == "ann");
  CHECK(*rs.row(1).get<std::optional<std::string>>("name") == std::nullopt);
  CHECK(*rs.row(1).get<int>(2) == 7);

  auto lossy = rs.row(0).get<int64_t>("total");
  REQUIRE_FALSE(lossy);
  CHECK(lossy.error().code == errc::conversion_failed);
  CHECK(lossy.error().message.find("column 'total' of row 0") != std::string::npos);
  auto missing = rs.row(0).get<int64_t>("nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == errc::invalid_argument);
  CHECK(missing.error().message.find("id, name, total") != std::string::npos);
  CHECK_FALSE(rs.row(0).get<int64_t>(3));
  CHECK_FALSE(rs.get<int64_t>(2, "id"));
  CHECK_THROWS_AS(rs.row(2), std::out_of_range);
  CHECK(rs.row(0).at("name") == value{"ann"});
}
