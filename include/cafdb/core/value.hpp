// Defines the values that travel between cafdb actors: `value`, `statement`, `result_set`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace cafdb {

/// The kind of data a `value` holds.
enum class value_type : uint8_t { null, boolean, integer, real, text, blob };

/// Returns the name of `x`, e.g. `"integer"`.
std::string to_string(value_type x);

/// Raw bytes, for BLOB / bytea columns.
using blob = std::vector<std::uint8_t>;

/// One SQL value: null, bool, int64, double, text or blob. JSON travels as text.
/// Plain data with value semantics, cheap to serialize and compare.
class value {
 public:
  value() = default;
  value(std::nullptr_t) {}
  value(bool x) : type_(value_type::boolean), integer_(x ? 1 : 0) {}
  value(int x) : type_(value_type::integer), integer_(x) {}
  value(long x) : type_(value_type::integer), integer_(x) {}
  value(long long x) : type_(value_type::integer), integer_(x) {}
  value(unsigned x) : type_(value_type::integer), integer_(x) {}
  value(double x) : type_(value_type::real), real_(x) {}
  value(const char* x) : type_(value_type::text), bytes_(x) {}
  value(std::string x) : type_(value_type::text), bytes_(std::move(x)) {}
  value(const blob& x) : type_(value_type::blob), bytes_(x.begin(), x.end()) {}

  value_type type() const noexcept { return type_; }
  bool is_null() const noexcept { return type_ == value_type::null; }

  /// Integer view: booleans give 0/1, reals are truncated, everything else gives 0.
  int64_t as_int() const noexcept;
  /// Real view: integers convert, everything else gives 0.
  double as_double() const noexcept;
  /// Boolean view: non-zero numbers are true.
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

/// What one statement produced.
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

  /// Returns the index of `column`, or -1.
  std::ptrdiff_t column_index(const std::string& column) const;
  /// Returns the value in row `r` under `column`; throws std::out_of_range if absent.
  const value& at(size_t r, const std::string& column) const;
};

} // namespace cafdb
