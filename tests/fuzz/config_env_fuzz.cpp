// Fuzzes config_from_env with the environment (scripts/fuzz.sh): any of the variables
// it reads, set to any value; DB_PASSWORD holds a known password that no output may show
// (passwords inside CAFDB_URL are config_url_fuzz's).
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_support.hpp"

using namespace cafdb;
using namespace cafdb::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static scratch_file empty_dotenv{".env"};
  static const auto names = env_names();
  empty_dotenv.write("");
  clear_environment();
  FuzzedDataProvider in{data, size};
  std::string everything_else;
  bool has_password = false;
  while (in.remaining_bytes() > 0) {
    auto& name = names[in.ConsumeIntegralInRange<size_t>(0, names.size() - 1)];
    auto value = in.ConsumeRandomLengthString(64);
    value.erase(std::remove(value.begin(), value.end(), '\0'), value.end());
    if (name == "DB_PASSWORD") {
      value += marker + in.ConsumeRandomLengthString(8);
      value.erase(std::remove(value.begin(), value.end(), '\0'), value.end());
      has_password = true;
    } else {
      everything_else += value + "\n";
    }
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  std::vector<std::string> secrets;
  if (has_password && everything_else.find(marker) == std::string::npos &&
      percent_decode(everything_else).find(marker) == std::string::npos)
    secrets.push_back(marker);
  current_input() = everything_else;
  check_outcome(config_from_env(empty_dotenv.path()), secrets);
  clear_environment();
  return 0;
}
