#include "cafdb/core/value.hpp"

#include <sstream>
#include <stdexcept>

namespace cafdb {

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
  case value_type::real: {
    std::ostringstream out;
    out.precision(17);
    out << real_;
    return out.str();
  }
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

std::ptrdiff_t result_set::column_index(const std::string& column) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == column)
      return static_cast<std::ptrdiff_t>(i);
  return -1;
}

const value& result_set::at(size_t r, const std::string& column) const {
  auto c = column_index(column);
  if (c < 0)
    throw std::out_of_range("no column named '" + column + "' in the result");
  return rows.at(r).at(static_cast<size_t>(c));
}

} // namespace cafdb
