// Defines the values that travel between cafdb actors: `value`, `statement`, `result_set`,
// and the checked conversions between them and C++ types (`value::get<T>()`,
// `row_ref::get<T>()`): a conversion that would lose information answers
// `errc::conversion_failed` instead of a wrong number.
#pragma once

#include "cafdb/core/errc.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace cafdb {

/// The kind of data a `value` holds.
enum class value_type : uint8_t { null, boolean, integer, real, text, blob };

/// Returns the name of `x`, e.g. `"integer"`.
std::string to_string(value_type x);

/// Raw bytes, for BLOB / bytea columns.
using blob = std::vector<std::uint8_t>;

/// A point in time, UTC. As a parameter it binds as ISO 8601 text in UTC
/// (`2026-12-02 12:35:50.123456000Z`), which PostgreSQL's timestamptz and timestamp take and
/// SQLite stores as text its date functions read. Reading one (`get<timestamp>()`)
/// accepts what PostgreSQL prints for timestamptz, timestamp and date, and what SQLite's
/// CURRENT_TIMESTAMP stores; a time without a zone is UTC.
using timestamp = std::chrono::system_clock::time_point;

/// Formats `x` the way cafdb binds it: `YYYY-MM-DD HH:MM:SS.fffffffffZ`, always nine
/// fraction digits, so that the texts of two time points compare as the time points do
/// (SQLite compares them as text). PostgreSQL keeps microseconds.
std::string format_timestamp(timestamp x);

/// Parses ISO 8601 text as PostgreSQL and SQLite print it (see `timestamp`).
outcome<timestamp> parse_timestamp(std::string_view text);

/// An exact decimal number, such as a PostgreSQL `numeric`: its digits as text, never
/// rounded through a double. As a parameter it binds as that text.
class decimal {
 public:
  /// Accepts `[+-]digits[.digits][e[+-]digits]`, `NaN`, `Infinity` and `-Infinity`.
  static outcome<decimal> parse(std::string_view text);

  /// Like `parse`, for literals in code: throws std::invalid_argument for malformed text.
  explicit decimal(std::string_view text);

  /// The number as text, exactly as given or as the server printed it.
  const std::string& str() const noexcept { return text_; }

  friend bool operator==(const decimal& x, const decimal& y) { return x.text_ == y.text_; }
  friend bool operator!=(const decimal& x, const decimal& y) { return !(x == y); }

 private:
  struct trusted {};
  decimal(std::string text, trusted) : text_(std::move(text)) {}
  std::string text_;
};

namespace detail {

// Integer types a value takes and gives: every integral type but bool and the
// character types (a `char` is more often a character than a number).
template <class T>
constexpr bool is_sql_integer =
    std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char> &&
    !std::is_same_v<T, wchar_t> && !std::is_same_v<T, char16_t> && !std::is_same_v<T, char32_t>;

// Throws std::out_of_range for an unsigned number above int64's maximum, the largest
// integer both engines store.
[[noreturn]] void throw_unsigned_out_of_range(unsigned long long x);

[[noreturn]] void throw_time_out_of_range();

// `since_epoch` as a timestamp, or std::out_of_range if it does not fit (a plain
// time_point_cast would wrap around silently).
template <class Rep, class Period>
timestamp checked_time_point(std::chrono::duration<Rep, Period> since_epoch) {
  using wide = std::chrono::duration<long double, std::nano>;
  auto ns = std::chrono::duration_cast<wide>(since_epoch).count();
  // Both limits are exact in a long double; a NaN fails both comparisons.
  if (!(ns >= static_cast<long double>(std::numeric_limits<int64_t>::min()) &&
        ns <= static_cast<long double>(std::numeric_limits<int64_t>::max())))
    throw_time_out_of_range();
  return timestamp{std::chrono::duration_cast<timestamp::duration>(since_epoch)};
}

} // namespace detail

/// One SQL value: null, bool, int64, double, text or blob. JSON, numeric, dates and
/// times travel as text. Plain data with value semantics, cheap to serialize and compare.
class value {
 public:
  value() = default;
  value(std::nullptr_t) {}
  value(std::nullopt_t) {}
  value(bool x) : type_(value_type::boolean), integer_(x ? 1 : 0) {}
  /// Any integer type. Unsigned numbers above int64's maximum throw std::out_of_range
  /// (no engine stores them as integers; bind a `decimal` for a NUMERIC column).
  template <class T, std::enable_if_t<detail::is_sql_integer<T>, int> = 0>
  value(T x) : type_(value_type::integer) {
    if constexpr (std::is_unsigned_v<T>) {
      if (static_cast<unsigned long long>(x) >
          static_cast<unsigned long long>(std::numeric_limits<int64_t>::max()))
        detail::throw_unsigned_out_of_range(x);
    }
    integer_ = static_cast<int64_t>(x);
  }
  value(char) = delete; // a character, or a number? Say which: std::string(1, c) or int{c}
  value(double x) : type_(value_type::real), real_(x) {}
  /// Text; a null pointer is SQL NULL.
  value(const char* x) {
    if (x) {
      type_ = value_type::text;
      bytes_ = x;
    }
  }
  value(std::string x) : type_(value_type::text), bytes_(std::move(x)) {}
  value(std::string_view x) : type_(value_type::text), bytes_(x) {}
  value(const blob& x) : type_(value_type::blob), bytes_(x.begin(), x.end()) {}
  /// A time point binds as UTC text (see `timestamp`). One outside `timestamp`'s range
  /// (about 1677 to 2262) throws std::out_of_range instead of wrapping around.
  template <class Duration>
  value(std::chrono::time_point<std::chrono::system_clock, Duration> x)
      : value(format_timestamp(detail::checked_time_point(x.time_since_epoch()))) {}
  value(const decimal& x) : value(x.str()) {}
  /// `std::nullopt` binds NULL, anything else what the contained value binds.
  template <class T>
  value(const std::optional<T>& x) {
    if (x)
      *this = value(*x);
  }

  value_type type() const noexcept { return type_; }
  bool is_null() const noexcept { return type_ == value_type::null; }

  /// Checked access: the value as `T`, or `errc::conversion_failed` if it is NULL (and `T`
  /// is not `std::optional`) or would lose information as `T`. `T` is one of: any integer
  /// type (range-checked; integral reals and integer text such as a numeric `42.000`
  /// convert), `double` (integers up to 2^53; text with at most 15 significant digits),
  /// `bool` (booleans, and integers 0 and 1), `std::string` (text; numbers in decimal),
  /// `std::string_view` (text only; valid while this value lives), `blob` (blobs and
  /// text), `timestamp`, `decimal` (numeric text, integers, reals), and
  /// `std::optional` of any of these (NULL is `std::nullopt`).
  template <class T>
  outcome<T> get() const;

  /// Unchecked integer view: booleans give 0/1, reals are truncated, everything else
  /// (NULL, text, numeric) gives 0. Prefer `get<int64_t>()`.
  int64_t as_int() const noexcept;
  /// Unchecked real view: integers convert, everything else gives 0. Prefer `get<double>()`.
  double as_double() const noexcept;
  /// Unchecked boolean view: non-zero numbers are true.
  bool as_bool() const noexcept { return as_int() != 0; }
  /// Text view: text and blob give their bytes, numbers their decimal form, null "".
  std::string as_text() const;
  /// Blob view: the raw bytes of text or blob values.
  blob as_blob() const { return blob(bytes_.begin(), bytes_.end()); }
  /// Direct access to the bytes of a text or blob value, without copying.
  const std::string& bytes() const noexcept { return bytes_; }

  friend bool operator==(const value& x, const value& y) noexcept;
  friend bool operator!=(const value& x, const value& y) noexcept { return !(x == y); }

  /// Serialization for messages (defined in messages/values.hpp, with CAF).
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, value& x);

 private:
  value_type type_ = value_type::null;
  int64_t integer_ = 0;
  double real_ = 0;
  std::string bytes_;
};

namespace detail {

// The checked conversions behind value::get<T>(), one per target type.
outcome<int64_t> checked_integer(const value& x, int64_t lowest, int64_t highest, const char* type);
outcome<double> checked_double(const value& x);
outcome<bool> checked_bool(const value& x);
outcome<std::string> checked_string(const value& x);
outcome<std::string_view> checked_string_view(const value& x);
outcome<blob> checked_blob(const value& x);
outcome<timestamp> checked_timestamp(const value& x);
outcome<decimal> checked_decimal(const value& x);

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

// The name of an integer type in messages: "int32", "uint64", ...
template <class T>
constexpr const char* integer_name() {
  constexpr bool s = std::is_signed_v<T>;
  switch (sizeof(T)) {
  case 1:
    return s ? "int8" : "uint8";
  case 2:
    return s ? "int16" : "uint16";
  case 4:
    return s ? "int32" : "uint32";
  default:
    return s ? "int64" : "uint64";
  }
}

template <class T>
outcome<T> convert(const value& x) {
  if constexpr (is_optional<T>::value) {
    if (x.is_null())
      return T{};
    auto inner = convert<typename T::value_type>(x);
    if (!inner)
      return inner.error();
    return T{std::move(*inner)};
  } else if constexpr (is_sql_integer<T>) {
    // An unsigned 64-bit T reads up to int64's maximum: no engine stores more.
    constexpr int64_t highest = std::is_unsigned_v<T> && sizeof(T) >= sizeof(int64_t)
                                    ? std::numeric_limits<int64_t>::max()
                                    : static_cast<int64_t>(std::numeric_limits<T>::max());
    auto wide = checked_integer(x, static_cast<int64_t>(std::numeric_limits<T>::min()), highest,
                                integer_name<T>());
    if (!wide)
      return wide.error();
    return static_cast<T>(*wide);
  } else if constexpr (std::is_same_v<T, double>) {
    return checked_double(x);
  } else if constexpr (std::is_same_v<T, bool>) {
    return checked_bool(x);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return checked_string(x);
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    return checked_string_view(x);
  } else if constexpr (std::is_same_v<T, blob>) {
    return checked_blob(x);
  } else if constexpr (std::is_same_v<T, timestamp>) {
    return checked_timestamp(x);
  } else if constexpr (std::is_same_v<T, decimal>) {
    return checked_decimal(x);
  } else {
    static_assert(!sizeof(T*), "value::get<T>: T is not a type cafdb converts to; see value::get");
  }
}

} // namespace detail

template <class T>
outcome<T> value::get() const {
  return detail::convert<T>(*this);
}

/// Renders a value for logs and test output (text is quoted, blobs show their size).
std::string to_string(const value& x);

/// SQL text plus bound parameters. Placeholders are `$1`, `$2`, ... on every engine;
/// parameters are always bound, never spliced into the SQL.
struct statement {
  statement() = default;
  statement(std::string sql_text, std::vector<value> parameters = {})
      : sql(std::move(sql_text)), params(std::move(parameters)) {}
  statement(const char* sql_text, std::vector<value> parameters = {})
      : sql(sql_text), params(std::move(parameters)) {}

  /// The SQL text with `$N` placeholders.
  std::string sql;
  /// `params[N-1]` binds placeholder `$N`.
  std::vector<value> params;
};

/// One statement run once per row of parameters, in one transaction: an INSERT of many
/// rows, say (DB-API's `executemany`). The SQL is prepared once and every row binds its
/// placeholders; the answer sums what the runs did (see `exec_many_atom`). The rows
/// are stored one after the other in one vector, so that building and freeing ten
/// thousand rows costs no allocation per row.
struct bulk_statement {
  bulk_statement() = default;
  explicit bulk_statement(std::string sql_text) : sql(std::move(sql_text)) {}
  bulk_statement(std::string sql_text, const std::vector<std::vector<value>>& rows)
      : sql(std::move(sql_text)) {
    for (auto& row : rows)
      add_row(row.begin(), row.end());
  }

  /// Appends a row: its values bind $1, $2, ... in order.
  template <class Iterator>
  void add_row(Iterator first, Iterator last) {
    values.insert(values.end(), first, last);
    ends.push_back(values.size());
  }
  void add_row(std::initializer_list<value> row) { add_row(row.begin(), row.end()); }

  /// Room for `rows` rows of `per_row` values.
  void reserve(size_t rows, size_t per_row) {
    values.reserve(rows * per_row);
    ends.reserve(rows);
  }

  size_t row_count() const { return ends.size(); }
  /// True if `ends` rises and ends at the last value (a message from elsewhere may not).
  bool well_formed() const {
    for (size_t i = 0; i < ends.size(); ++i)
      if (ends[i] < (i == 0 ? 0 : ends[i - 1]))
        return false;
    return ends.empty() ? values.empty() : ends.back() == values.size();
  }
  /// Row `i`'s values are [row_begin(i), row_end(i)).
  const value* row_begin(size_t i) const { return values.data() + (i == 0 ? 0 : ends[i - 1]); }
  const value* row_end(size_t i) const { return values.data() + ends[i]; }

  /// The SQL text with `$N` placeholders: a single statement.
  std::string sql;
  /// Every row's values, row after row.
  std::vector<value> values;
  /// Where each row ends in `values` (one past its last value).
  std::vector<uint64_t> ends;
};

class row_ref;

/// What one statement produced. Rows can be walked with range-for, each a `row_ref` that
/// reads its values by index or column name:
///
///     for (auto row : *rs)
///       if (auto id = row.get<int64_t>("id"))
///         use(*id);
struct result_set {
  /// Column names, in order.
  std::vector<std::string> columns;
  /// Declared column types as the engine reports them (may be empty for expressions).
  std::vector<std::string> column_types;
  /// Row-major data: `rows[r][c]` belongs to `columns[c]`.
  std::vector<std::vector<value>> rows;
  /// Rows changed by INSERT / UPDATE / DELETE; 0 for queries.
  int64_t affected_rows = 0;
  /// The rowid of the last inserted row (SQLite), 0 when nothing was inserted.
  int64_t last_insert_id = 0;

  /// Returns the index of `column` (the first, if several have its name), or -1.
  std::ptrdiff_t column_index(std::string_view column) const;
  /// Returns the value in row `r` under `column`; throws std::out_of_range if absent.
  const value& at(size_t r, std::string_view column) const;

  /// Row `r`; throws std::out_of_range past the last row.
  row_ref row(size_t r) const;
  /// The value in row `r` under `column` as `T` (see `value::get`); an unknown column or a
  /// row past the end answers `errc::invalid_argument`.
  template <class T>
  outcome<T> get(size_t r, std::string_view column) const;

  /// Walks the rows (range-for finds the free begin() / end() below: member ones would
  /// make CAF serialize a result_set as a list of rows).
  class iterator;
  size_t size() const noexcept { return rows.size(); }
  bool empty() const noexcept { return rows.empty(); }
};

/// One row of a result_set, by reference: valid while the result_set lives.
class row_ref {
 public:
  row_ref(const result_set& result, size_t index) : result_(&result), index_(index) {}

  /// The row's position in the result.
  size_t index() const noexcept { return index_; }
  /// The number of columns.
  size_t size() const noexcept { return result_->rows[index_].size(); }
  /// The value in column `c` (unchecked index).
  const value& operator[](size_t c) const { return result_->rows[index_][c]; }
  /// The value in column `c`; throws std::out_of_range past the last column.
  const value& at(size_t c) const { return result_->rows[index_].at(c); }
  /// The value under `column`; throws std::out_of_range if there is no such column.
  const value& at(std::string_view column) const { return result_->at(index_, column); }

  /// The value in column `c` as `T` (see `value::get`); a column past the end answers
  /// `errc::invalid_argument`. A failed conversion's message names the column.
  template <class T>
  outcome<T> get(size_t c) const {
    if (c >= size())
      return no_column(std::to_string(c));
    return named(result_->rows[index_][c].get<T>(), c);
  }
  /// The value under `column` as `T`; an unknown column answers `errc::invalid_argument`
  /// with the columns the result has.
  template <class T>
  outcome<T> get(std::string_view column) const {
    auto c = result_->column_index(column);
    if (c < 0)
      return no_column(std::string{column});
    return get<T>(static_cast<size_t>(c));
  }

 private:
  db_error no_column(const std::string& column) const;
  // Puts the column's name and the row in front of a conversion error's message.
  template <class T>
  outcome<T> named(outcome<T> x, size_t c) const {
    if (!x)
      x.error().message = where(c) + x.error().message;
    return x;
  }
  std::string where(size_t c) const;

  const result_set* result_;
  size_t index_;
};

/// Walks the rows of a result_set as `row_ref`s.
class result_set::iterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = row_ref;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = row_ref;

  iterator(const result_set& result, size_t index) : result_(&result), index_(index) {}
  row_ref operator*() const { return row_ref{*result_, index_}; }
  iterator& operator++() {
    ++index_;
    return *this;
  }
  iterator operator++(int) {
    auto old = *this;
    ++index_;
    return old;
  }
  friend bool operator==(const iterator& x, const iterator& y) {
    return x.result_ == y.result_ && x.index_ == y.index_;
  }
  friend bool operator!=(const iterator& x, const iterator& y) { return !(x == y); }

 private:
  const result_set* result_;
  size_t index_;
};

inline result_set::iterator begin(const result_set& x) {
  return result_set::iterator{x, 0};
}

inline result_set::iterator end(const result_set& x) {
  return result_set::iterator{x, x.rows.size()};
}

inline row_ref result_set::row(size_t r) const {
  if (r >= rows.size())
    throw std::out_of_range("row " + std::to_string(r) + " of a result with " +
                            std::to_string(rows.size()) + " rows");
  return row_ref{*this, r};
}

template <class T>
outcome<T> result_set::get(size_t r, std::string_view column) const {
  if (r >= rows.size())
    return db_error{errc::invalid_argument,
                    "row " + std::to_string(r) + " asked of a result with " +
                        std::to_string(rows.size()) + " rows",
                    "", ""};
  return row_ref{*this, r}.get<T>(column);
}

} // namespace cafdb
