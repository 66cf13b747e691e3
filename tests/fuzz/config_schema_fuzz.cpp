// Fuzzes the schema_file option (scripts/fuzz.sh): any bytes as the JSON schema file a
// configuration names, loaded as part of a configuration and on its own.
#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"

using namespace cafdb;
using namespace cafdb::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static scratch_file file{".schema.json"};
  std::string input(reinterpret_cast<const char*>(data), size);
  auto& path = file.write(input);
  current_input() = input;
  check_outcome(config_from_json(nlohmann::json{{"url", "sqlite::memory:"}, {"schema_file", path}}),
                {});
  check_outcome(config_from_url("sqlite:///:memory:?schema_file=" + path), {});
  // On its own (src/schema.cpp), where no loader's safety net would catch an exception.
  auto schema = schema_from_json_file(path);
  if (!schema) {
    if (schema.error().code != errc::invalid_config)
      fail("a schema error that is not invalid_config", schema.error().message);
    if (!valid_utf8(schema.error().message))
      fail("a schema error message that is not valid UTF-8", schema.error().message);
  }
  return 0;
}
