#include "migrations.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cafdb {

namespace {

db_error config_problem(std::string message) {
  return db_error{errc::invalid_config, std::move(message), "", ""};
}

} // namespace

outcome<std::vector<migration>> load_migrations(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return config_problem("migrations_dir '" + dir + "' is not a readable directory");
  std::vector<migration> out;
  for (auto& entry : fs::directory_iterator(dir, ec)) {
    auto file = entry.path().filename().string();
    auto underscore = file.find('_');
    if (entry.path().extension() != ".sql" || underscore == 0 || underscore == std::string::npos ||
        file.substr(0, underscore).find_first_not_of("0123456789") != std::string::npos ||
        underscore > 18)
      continue;
    migration m;
    m.version = std::stoll(file.substr(0, underscore));
    m.name = file.substr(underscore + 1, file.size() - underscore - 5);
    std::ifstream in{entry.path()};
    std::stringstream text;
    text << in.rdbuf();
    m.sql = text.str();
    if (!in || m.sql.find_first_not_of(" \t\r\n") == std::string::npos)
      return config_problem("migration file '" + file + "' is empty or unreadable");
    out.push_back(std::move(m));
  }
  if (ec)
    return config_problem("migrations_dir '" + dir + "' cannot be listed: " + ec.message());
  std::sort(out.begin(), out.end(),
            [](const migration& a, const migration& b) { return a.version < b.version; });
  for (size_t i = 1; i < out.size(); ++i)
    if (out[i].version == out[i - 1].version)
      return config_problem("two migration files have version " + std::to_string(out[i].version) +
                            " ('" + out[i - 1].name + "' and '" + out[i].name +
                            "'); give each its own number");
  return out;
}

} // namespace cafdb
