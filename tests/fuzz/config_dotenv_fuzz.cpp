// Fuzzes config_from_env with a .env file (scripts/fuzz.sh). The first byte picks the
// shape: any bytes as the file, or KEY=VALUE lines in the forms .env files take (quotes,
// export, comments, CRLF) with a known DB_PASSWORD that no output may show.
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_support.hpp"

using namespace cafdb;
using namespace cafdb::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static scratch_file file{".env"};
  static const auto names = env_names();
  if (size == 0)
    return 0;
  clear_environment();
  if (data[0] % 2 == 0) {
    std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    current_input() = text;
    check_outcome(config_from_env(file.write(text)), {});
    return 0;
  }
  FuzzedDataProvider in{data + 1, size - 1};
  std::string text;
  std::string everything_else;
  bool has_password = false;
  while (in.remaining_bytes() > 0) {
    auto form = in.ConsumeIntegralInRange<int>(0, 7);
    auto value = in.ConsumeRandomLengthString(48);
    value.erase(std::remove(value.begin(), value.end(), '\n'), value.end());
    std::string line;
    if (form == 0) {
      line = "# " + value;
    } else if (form == 1) {
      line = value; // anything, even without '='
    } else {
      auto& name = names[in.ConsumeIntegralInRange<size_t>(0, names.size() - 1)];
      if (name == "DB_PASSWORD") {
        value += marker;
        has_password = true;
      }
      static const char* quotes[] = {"", "\"", "'"};
      auto quote = quotes[in.ConsumeIntegralInRange<size_t>(0, 2)];
      line = std::string{form == 2 ? "export " : ""} + (form == 3 ? "  " : "") + name +
             (form == 4 ? " = " : "=") + quote + value + quote + (form == 5 ? " # note" : "");
    }
    if (line.find("DB_PASSWORD") == std::string::npos)
      everything_else += line + "\n";
    text += line + (in.ConsumeBool() ? "\r\n" : "\n");
  }
  std::vector<std::string> secrets;
  if (has_password && everything_else.find(marker) == std::string::npos &&
      percent_decode(everything_else).find(marker) == std::string::npos &&
      occurrences(text, "DB_PASSWORD") == 1)
    secrets.push_back(marker);
  current_input() = text;
  check_outcome(config_from_env(file.write(text)), secrets);
  return 0;
}
