// Fuzzes config_from_json and config_from_json_file (scripts/fuzz.sh): any bytes as a
// JSON configuration, parsed in memory and read from a file. The passwords libpq finds
// in its URLs must not show in any output.
#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"

using namespace cafdb;
using namespace cafdb::fuzz;

namespace {

scratch_file file{".json"};

outcome<config> from_text(const std::string& text) {
  auto object = nlohmann::json::parse(text, nullptr, false);
  if (object.is_discarded())
    return db_error{errc::invalid_config, "not JSON", "", ""};
  return config_from_json(object);
}

outcome<config> from_file(const std::string& text) {
  return config_from_json_file(file.write(text));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  current_input() = input;
  auto object = nlohmann::json::parse(input, nullptr, false);
  std::vector<std::string> secrets;
  if (object.is_object())
    for (auto key : {"url", "read_url"})
      if (auto i = object.find(key); i != object.end() && i->is_string())
        for (auto& secret : libpq_secrets(i->get<std::string>(), input))
          secrets.push_back(secret);
  auto parsed = from_text(input);
  check_outcome(parsed, differential(secrets, input, parsed, from_text));
  auto read = from_file(input);
  check_outcome(read, differential(secrets, input, read, from_file));
  return 0;
}
