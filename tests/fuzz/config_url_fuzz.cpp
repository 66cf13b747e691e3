// Fuzzes config_from_url and config::redacted_url (scripts/fuzz.sh).
//
// The first byte picks the shape: any bytes as a URL (libpq's own reading of it names
// the secrets), or a URL built around a known password placed where passwords go
// (user info, raw or encoded; password-like query keys in any case; a replica's URL),
// whatever the other parts hold. No output may show that password.
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_support.hpp"

using namespace cafdb;
using namespace cafdb::fuzz;

namespace {

void check_url(const std::string& url, const std::vector<std::string>& secrets) {
  current_input() = url;
  check_outcome(config_from_url(url), secrets);
  config cfg;
  cfg.url = url;
  check_text("redacted_url() of a URL set in code", cfg.redacted_url(), secrets);
}

std::string build_url(FuzzedDataProvider& in, const std::string& password) {
  static const char* schemes[] = {"postgresql://", "postgres://", "mysql://", "sqlite://", ""};
  std::string url = schemes[in.ConsumeIntegralInRange<size_t>(0, 4)];
  auto user = in.ConsumeRandomLengthString(24);
  auto host = in.ConsumeRandomLengthString(24);
  auto port = in.ConsumeRandomLengthString(8);
  auto db = in.ConsumeRandomLengthString(24);
  auto place = in.ConsumeIntegralInRange<int>(0, 6);
  auto query = in.ConsumeRandomLengthString(64);
  if (place == 0)
    url += user + ":" + password + "@";
  else if (place == 1)
    url += user + ":" + percent_encode(password) + "@";
  else
    url += user + (user.empty() ? "" : "@");
  url += host + (port.empty() ? "" : ":" + port) + "/" + db;
  static const char* keys[] = {"password", "PASSWORD", "PassWord", "sslpassword"};
  std::string secret_param;
  if (place == 2 || place == 3)
    secret_param = std::string{keys[in.ConsumeIntegralInRange<size_t>(0, 3)]} + "=" +
                   (place == 2 ? password : percent_encode(password));
  else if (place == 4)
    secret_param =
        "read_url=" + percent_encode("postgresql://r:" + percent_encode(password) + "@replica/db");
  else if (place == 5)
    secret_param = "read_url=postgresql://r:" + password + "@replica/db";
  if (!secret_param.empty())
    query = in.ConsumeBool() ? secret_param + "&" + query : query + "&" + secret_param;
  if (!query.empty() || in.ConsumeBool())
    url += "?" + query;
  return url;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto result = config_from_url(input);
    check_url(input, differential(libpq_secrets(input, input), input, result, config_from_url));
    return 0;
  }
  FuzzedDataProvider in{data + 1, size - 1};
  auto seed = in.ConsumeRemainingBytesAsString(); // the same bytes drive both builds
  FuzzedDataProvider with_secret{reinterpret_cast<const uint8_t*>(seed.data()), seed.size()};
  FuzzedDataProvider without_secret{reinterpret_cast<const uint8_t*>(seed.data()), seed.size()};
  auto prefix = with_secret.ConsumeRandomLengthString(12);
  auto suffix = with_secret.ConsumeRandomLengthString(12);
  (void)without_secret.ConsumeRandomLengthString(12);
  (void)without_secret.ConsumeRandomLengthString(12);
  auto url = build_url(with_secret, prefix + marker + suffix);
  // The marker must come from the password alone: built without it, no trace remains.
  auto bare = build_url(without_secret, prefix + suffix);
  if (bare.find(marker) != std::string::npos ||
      percent_decode(bare).find(marker) != std::string::npos ||
      percent_decode(percent_decode(bare)).find(marker) != std::string::npos)
    return 0;
  check_url(url, {marker});
  return 0;
}
