#include "cafdb/core/value_json.hpp"

namespace cafdb {

namespace {

constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::string& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6)
      out += base64_alphabet[(n >> shift) & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size())
      n |= uint8_t(bytes[i + 1]) << 8;
    out += base64_alphabet[(n >> 18) & 63];
    out += base64_alphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? base64_alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

blob base64_decode(const std::string& text) {
  blob out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char ch : text) {
    if (ch == '=')
      break;
    auto pos = std::string_view{base64_alphabet}.find(ch);
    if (pos == std::string_view::npos)
      throw nlohmann::json::type_error::create(302, "invalid base64 in $base64 blob", nullptr);
    buffer = (buffer << 6) | static_cast<uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

} // namespace

void to_json(nlohmann::json& out, const value& x) {
  switch (x.type()) {
  case value_type::null:
    out = nullptr;
    break;
  case value_type::boolean:
    out = x.as_bool();
    break;
  case value_type::integer:
    out = x.as_int();
    break;
  case value_type::real:
    out = x.as_double();
    break;
  case value_type::text:
    out = x.bytes();
    break;
  case value_type::blob:
    out = nlohmann::json{{"$base64", base64_encode(x.bytes())}};
    break;
  }
}

void from_json(const nlohmann::json& in, value& x) {
  switch (in.type()) {
  case nlohmann::json::value_t::null:
    x = value{};
    break;
  case nlohmann::json::value_t::boolean:
    x = value{in.get<bool>()};
    break;
  case nlohmann::json::value_t::number_integer:
    x = value{in.get<int64_t>()};
    break;
  case nlohmann::json::value_t::number_unsigned: {
    auto n = in.get<uint64_t>();
    if (n > static_cast<uint64_t>(INT64_MAX))
      throw nlohmann::json::type_error::create(302, "integer exceeds int64", &in);
    x = value{static_cast<int64_t>(n)};
    break;
  }
  case nlohmann::json::value_t::number_float:
    x = value{in.get<double>()};
    break;
  case nlohmann::json::value_t::string:
    x = value{in.get<std::string>()};
    break;
  case nlohmann::json::value_t::object:
    if (in.size() == 1 && in.contains("$base64") && in["$base64"].is_string()) {
      x = value{base64_decode(in["$base64"].get<std::string>())};
      break;
    }
    x = value{in.dump()};
    break;
  default:
    x = value{in.dump()};
    break;
  }
}

void to_json(nlohmann::json& out, const statement& x) {
  out = nlohmann::json{{"sql", x.sql}, {"params", x.params}};
}

void from_json(const nlohmann::json& in, statement& x) {
  x.sql = in.at("sql").get<std::string>();
  x.params.clear();
  if (in.contains("params"))
    x.params = in.at("params").get<std::vector<value>>();
}

void to_json(nlohmann::json& out, const result_set& x) {
  out = nlohmann::json{{"columns", x.columns},
                       {"column_types", x.column_types},
                       {"rows", x.rows},
                       {"affected_rows", x.affected_rows},
                       {"last_insert_id", x.last_insert_id}};
}

void from_json(const nlohmann::json& in, result_set& x) {
  x.columns = in.at("columns").get<std::vector<std::string>>();
  x.column_types = in.value("column_types", std::vector<std::string>{});
  x.rows = in.at("rows").get<std::vector<std::vector<value>>>();
  x.affected_rows = in.value("affected_rows", int64_t{0});
  x.last_insert_id = in.value("last_insert_id", int64_t{0});
}

nlohmann::json rows_as_objects(const result_set& x) {
  auto out = nlohmann::json::array();
  for (auto& row : x.rows) {
    auto object = nlohmann::json::object();
    for (size_t c = 0; c < x.columns.size() && c < row.size(); ++c)
      object[x.columns[c]] = row[c];
    out.push_back(std::move(object));
  }
  return out;
}

} // namespace cafdb
