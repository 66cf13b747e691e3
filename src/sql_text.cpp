// SQL text helpers shared by every driver.
#include <cctype>
#include <cstring>

#include "backend/driver.hpp"

namespace cafdb {

std::string to_string(connection_role x) {
  switch (x) {
  case connection_role::writer:
    return "writer";
  case connection_role::reader:
    return "reader";
  default:
    return "shared";
  }
}

const char* hint_for(errc code) {
  switch (code) {
  case errc::syntax_error:
    return "check the SQL text and the table and column names";
  case errc::constraint_violation:
    return "the data breaks a constraint; nothing was changed";
  case errc::busy:
    return "another connection held the lock past busy_timeout; keep write transactions "
           "short or raise busy_timeout";
  case errc::read_only_violation:
    return "this session is read-only; open a read-write session to write";
  case errc::statement_timeout:
    return "the statement was cancelled; raise statement_timeout or make it faster";
  case errc::connect_failed:
    return "check the path or server address, credentials and permissions";
  case errc::serialization_failure:
  case errc::deadlock:
    return "a concurrent transaction conflicted; retry the whole transaction";
  case errc::connection_lost:
    return "the connection was discarded; retry the transaction";
  case errc::transaction_failed:
    return "roll back before sending anything else";
  case errc::invalid_argument:
    return "check the parameters bound to the statement";
  default:
    return "see the driver message";
  }
}

bool is_identifier(const std::string& name) {
  if (name.empty() || name.size() > 63)
    return false;
  auto first = static_cast<unsigned char>(name[0]);
  if (!std::isalpha(first) && first != '_')
    return false;
  for (auto ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_')
      return false;
  return true;
}

int placeholder_number(const char* name) {
  if (!name || name[0] != '$' || name[1] == '\0' || name[1] == '0')
    return 0;
  long number = 0;
  for (const char* p = name + 1; *p; ++p) {
    if (!std::isdigit(static_cast<unsigned char>(*p)))
      return 0;
    number = number * 10 + (*p - '0');
    if (number > 65535)
      return 0;
  }
  return static_cast<int>(number);
}

std::string quote_identifier(const std::string& name) {
  return "\"" + name + "\"";
}

std::string to_lower(std::string text) {
  for (auto& c : text)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string leading_keyword(const std::string& sql) {
  size_t i = 0;
  // Skip blanks and comments before the first word.
  while (i < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[i]))) {
      ++i;
    } else if (sql.compare(i, 2, "--") == 0) {
      i = sql.find('\n', i);
      if (i == std::string::npos)
        return {};
    } else if (sql.compare(i, 2, "/*") == 0) {
      i = sql.find("*/", i + 2);
      if (i == std::string::npos)
        return {};
      i += 2;
    } else {
      break;
    }
  }
  // Keywords are short: 16 characters tell them apart from any longer word, and the
  // result stays in the string's inline buffer (no allocation per statement).
  std::string word;
  for (; i < sql.size() && word.size() < 16 && std::isalnum(static_cast<unsigned char>(sql[i]));
       ++i)
    word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i]))));
  return word;
}

} // namespace cafdb
