// Conformance: C++ values survive a round trip through each engine and read back with
// get<T>() exactly, at the edges of each type: int64 limits, NULL, empty text and blobs,
// 30-digit numerics, timestamps before 1970 and after 2038; and what each engine makes of
// its own values (PostgreSQL's numeric sums, timestamptz, date; SQLite's CURRENT_TIMESTAMP).
#include <cmath>
#include <limits>
#include <optional>
#include <string_view>
#include <type_traits>

#include "support/backends.hpp"

using namespace cafdb;
using namespace cafdb::test;
using namespace std::chrono;

namespace {

template <class Backend>
constexpr bool is_pg = std::is_same_v<Backend, pg_backend>;

template <class Backend>
struct values_fixture : with_temp_dir, database_fixture {
  values_fixture() : database_fixture(Backend::make_config(dir)) {
    require_ready();
    // SQLite keeps exact decimals only as TEXT: a NUMERIC column turns 30 digits into a
    // REAL (docs/values.md).
    must_exec({is_pg<Backend>
                   ? "CREATE TABLE v (id INTEGER PRIMARY KEY, i BIGINT, r DOUBLE PRECISION, "
                     "b BOOLEAN, t TEXT, x BYTEA, ts TIMESTAMPTZ, d NUMERIC)"
                   : "CREATE TABLE v (id INTEGER PRIMARY KEY, i BIGINT, r DOUBLE, b BOOLEAN, "
                     "t TEXT, x BLOB, ts TIMESTAMP, d TEXT)"});
  }

  // Stores `x` in `column` of a new row and reads it back.
  value round_trip(const char* column, value x) {
    auto id = ++rows_;
    must_exec({std::string{"INSERT INTO v (id, "} + column + ") VALUES ($1, $2)", {id, x}});
    auto back = must_exec({std::string{"SELECT "} + column + " FROM v WHERE id = $1", {id}});
    REQUIRE(back.size() == 1);
    return back.rows[0][0];
  }

  template <class T>
  T must_get(const value& x) {
    auto out = x.get<T>();
    INFO((out ? std::string{"ok"} : out.error().message));
    REQUIRE(out);
    return *out;
  }

  int rows_ = 0;
};

timestamp utc(int64_t seconds_since_epoch, int64_t micros = 0) {
  return timestamp{
      duration_cast<timestamp::duration>(seconds{seconds_since_epoch} + microseconds{micros})};
}

} // namespace

TEMPLATE_TEST_CASE_METHOD(values_fixture,
                          "integers round-trip to their limits; NULL reads as "
                          "nullopt and is refused as a plain integer",
                          "[values]", sqlite_backend, pg_backend) {
  auto& fx = *this;
  for (int64_t n : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                    std::numeric_limits<int64_t>::max()}) {
    INFO(n);
    CHECK(fx.template must_get<int64_t>(fx.round_trip("i", n)) == n);
  }
  size_t size = 12345;
  CHECK(fx.template must_get<size_t>(fx.round_trip("i", size)) == size);
  auto null = fx.round_trip("i", std::optional<int64_t>{});
  CHECK(fx.template must_get<std::optional<int64_t>>(null) == std::nullopt);
  auto refused = null.template get<int64_t>();
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::conversion_failed);
  auto big = fx.round_trip("i", std::numeric_limits<int64_t>::max());
  CHECK_FALSE(big.template get<int32_t>());
}

TEMPLATE_TEST_CASE_METHOD(values_fixture, "reals, booleans, text and blobs round-trip exactly",
                          "[values]", sqlite_backend, pg_backend) {
  auto& fx = *this;
  for (double r : {0.1, -2.5, 1e300, 5e-324}) {
    INFO(r);
    CHECK(fx.template must_get<double>(fx.round_trip("r", r)) == r);
  }
  CHECK(fx.template must_get<bool>(fx.round_trip("b", true)));
  CHECK_FALSE(fx.template must_get<bool>(fx.round_trip("b", false)));
  CHECK(fx.template must_get<std::string>(fx.round_trip("t", "")) == "");
  std::string_view view = "héllo wörld";
  auto text = fx.round_trip("t", view);
  CHECK(fx.template must_get<std::string_view>(text) == view);
  blob bytes;
  for (int i = 0; i < 256; ++i)
    bytes.push_back(static_cast<uint8_t>(i));
  CHECK(fx.template must_get<blob>(fx.round_trip("x", bytes)) == bytes);
  CHECK(fx.template must_get<blob>(fx.round_trip("x", blob{})).empty());
}

TEMPLATE_TEST_CASE_METHOD(values_fixture,
                          "timestamps before 1970 and after 2038 round-trip to the microsecond",
                          "[values]", sqlite_backend, pg_backend) {
  auto& fx = *this;
  for (auto t : {utc(-2208988800, 1), utc(-1, 999999), utc(0), utc(2147483648, 123456),
                 utc(4107542400, 1), utc(9214646399, 999999)}) {
    INFO(format_timestamp(t));
    CHECK(fx.template must_get<timestamp>(fx.round_trip("ts", t)) == t);
  }
  auto none = fx.round_trip("ts", std::optional<timestamp>{});
  CHECK(fx.template must_get<std::optional<timestamp>>(none) == std::nullopt);
  // The engine's own clock reads as a time point close to ours.
  auto now = fx.must_exec({is_pg<TestType> ? "SELECT now()" : "SELECT CURRENT_TIMESTAMP"});
  auto server_now = fx.template must_get<timestamp>(now.rows[0][0]);
  CHECK(std::chrono::abs(server_now - system_clock::now()) < minutes{5});
}

TEMPLATE_TEST_CASE_METHOD(values_fixture,
                          "a 30-digit decimal round-trips exactly and is refused "
                          "as a double or an integer",
                          "[values]", sqlite_backend, pg_backend) {
  auto& fx = *this;
  std::string thirty = "123456789012345678901234567890.123456";
  auto back = fx.round_trip("d", decimal{thirty});
  CHECK(fx.template must_get<decimal>(back).str() == thirty);
  CHECK(fx.template must_get<std::string>(back) == thirty);
  CHECK_FALSE(back.template get<double>());
  CHECK_FALSE(back.template get<int64_t>());
  auto negative = fx.round_trip("d", decimal{"-0.000000000000000000000000000001"});
  CHECK(fx.template must_get<decimal>(negative).str() == "-0.000000000000000000000000000001");
}

TEMPLATE_TEST_CASE_METHOD(values_fixture,
                          "bound timestamps order and compare in SQL as the time points do",
                          "[values]", sqlite_backend, pg_backend) {
  auto& fx = *this;
  // Within one microsecond on SQLite (text, compared character by character); a
  // microsecond apart on PostgreSQL, which keeps microseconds.
  auto first = utc(1704110400, 123456);
  auto second = first + (is_pg<TestType> ? microseconds{1} : microseconds{0}) + nanoseconds{789};
  fx.round_trip("ts", second);
  fx.round_trip("ts", first);
  auto ordered = fx.must_exec({"SELECT ts FROM v WHERE ts IS NOT NULL ORDER BY ts"});
  REQUIRE(ordered.size() == 2);
  CHECK(fx.template must_get<timestamp>(ordered.rows[0][0]) == first);
  auto later = fx.must_exec({"SELECT count(*) AS n FROM v WHERE ts > $1", {first}});
  CHECK(*later.template get<int64_t>(0, "n") == 1);
}

TEMPLATE_TEST_CASE_METHOD(values_fixture, "a double binds as its shortest exact text", "[values]",
                          sqlite_backend, pg_backend) {
  auto& fx = *this;
  // Into a numeric (PostgreSQL) or text column, 0.1 stays 0.1, not 0.10000000000000001.
  auto back = fx.round_trip("d", 0.1);
  CHECK(fx.template must_get<double>(back) == 0.1);
  if constexpr (is_pg<TestType>)
    CHECK(fx.template must_get<std::string>(back) == "0.1");
}

TEST_CASE_METHOD(values_fixture<sqlite_backend>,
                 "SQLite: a NaN parameter is refused, not stored as NULL", "[values][sqlite]") {
  auto nan = cli->exec({"INSERT INTO v (id, r) VALUES (1, $1)", {std::nan("")}});
  REQUIRE_FALSE(nan);
  INFO(render(nan.error()));
  CHECK(is(nan.error(), errc::invalid_argument));
  CHECK(describe(nan.error()).message.find("$1 is NaN") != std::string::npos);
  CHECK(count("v") == 0);
}

TEST_CASE_METHOD(values_fixture<pg_backend>,
                 "PostgreSQL: numeric sums, dates and timestamps read as numbers and time points",
                 "[values][postgres]") {
  must_exec({"INSERT INTO v (id, i) VALUES (1, 9000000000000000000), (2, 9000000000000000000), "
             "(3, -9000000000000000000)"});
  // sum(bigint) is a numeric: as_int() read it as 0; get<int64_t> reads it exactly.
  auto sum = must_exec({"SELECT sum(i) AS total FROM v"});
  CHECK(sum.column_types[0] == "numeric");
  CHECK(*sum.get<int64_t>(0, "total") == 9000000000000000000);
  auto overflow = must_exec({"SELECT sum(i) AS total FROM v WHERE i > 0"});
  auto refused = overflow.get<int64_t>(0, "total");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::conversion_failed);
  CHECK(overflow.get<decimal>(0, "total")->str() == "18000000000000000000");
  CHECK(*must_exec({"SELECT avg(x)::numeric(10,2) FROM (VALUES (1), (2)) s(x)"})
             .rows[0][0]
             .get<double>() == 1.5);

  auto date = must_exec({"SELECT DATE '1950-06-15' AS d, TIMESTAMP '2100-01-01 12:00:00' AS ts, "
                         "TIMESTAMPTZ '2000-01-01 00:00:00+05:30' AS tz"});
  auto row = date.row(0);
  CHECK(*row.get<timestamp>("d") == utc(-616896000));
  CHECK(*row.get<timestamp>("ts") == utc(4102488000));
  CHECK(*row.get<timestamp>("tz") == utc(946665000));
  // A blob where PostgreSQL reads text is refused, not sent as text; with ::bytea it works.
  blob bytes{0, 1, 255};
  auto untyped = cli->exec({"SELECT $1", {bytes}});
  REQUIRE_FALSE(untyped);
  INFO(render(untyped.error()));
  CHECK(is(untyped.error(), errc::invalid_argument));
  CHECK(describe(untyped.error()).message.find("$1::bytea") != std::string::npos);
  auto typed = must_exec({"SELECT $1::bytea AS b", {bytes}});
  CHECK(*typed.get<blob>(0, "b") == bytes);
  // infinity has no time point: refused, not a wrong time.
  auto infinite = must_exec({"SELECT 'infinity'::timestamptz"});
  CHECK_FALSE(infinite.rows[0][0].get<timestamp>());
}
