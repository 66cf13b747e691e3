#include "backend/pg_driver.hpp"

#include "tx_begin.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <condition_variable>
#include <thread>

#include <libpq-fe.h>

namespace cafdb {

namespace {

// Type OIDs from pg_type (stable across PostgreSQL versions).
enum : Oid {
  bool_oid = 16,
  bytea_oid = 17,
  int8_oid = 20,
  int2_oid = 21,
  int4_oid = 23,
  oid_oid = 26,
  float4_oid = 700,
  float8_oid = 701,
};

const char* type_name(Oid oid) {
  switch (oid) {
  case 16:
    return "bool";
  case 17:
    return "bytea";
  case 20:
    return "int8";
  case 21:
    return "int2";
  case 23:
    return "int4";
  case 25:
    return "text";
  case 26:
    return "oid";
  case 114:
    return "json";
  case 700:
    return "float4";
  case 701:
    return "float8";
  case 1042:
    return "bpchar";
  case 1043:
    return "varchar";
  case 1082:
    return "date";
  case 1083:
    return "time";
  case 1114:
    return "timestamp";
  case 1184:
    return "timestamptz";
  case 1700:
    return "numeric";
  case 2950:
    return "uuid";
  case 3802:
    return "jsonb";
  default:
    return "";
  }
}

struct result_deleter {
  void operator()(PGresult* res) const { PQclear(res); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

bool ok_status(PGresult* res) {
  auto status = PQresultStatus(res);
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

// A script is several statements separated by ';' (outside quotes is good enough:
// parameterless scripts are DDL and set-up, which libpq's simple protocol runs as is).
bool looks_like_script(const std::string& sql) {
  auto pos = sql.find(';');
  if (pos == std::string::npos)
    return false;
  for (auto i = pos + 1; i < sql.size(); ++i)
    if (!std::isspace(static_cast<unsigned char>(sql[i])))
      return true;
  return false;
}

value convert(PGresult* res, int row, int column) {
  if (PQgetisnull(res, row, column))
    return value{};
  const char* text = PQgetvalue(res, row, column);
  auto length = PQgetlength(res, row, column);
  switch (PQftype(res, column)) {
  case bool_oid:
    return value{text[0] == 't'};
  case int2_oid:
  case int4_oid:
  case int8_oid:
  case oid_oid:
    return value{static_cast<int64_t>(std::strtoll(text, nullptr, 10))};
  case float4_oid:
  case float8_oid:
    return value{std::strtod(text, nullptr)};
  case bytea_oid: {
    size_t size = 0;
    auto bytes = PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &size);
    blob data(bytes, bytes + size);
    PQfreemem(bytes);
    return value{data};
  }
  default:
    // text, varchar, numeric (exact, as text), date/time (ISO 8601), json, uuid, ...
    return value{std::string(text, static_cast<size_t>(length))};
  }
}

} // namespace

errc pg_errc(const std::string& state) {
  if (state.size() != 5)
    return errc::database_error;
  auto cls = state.substr(0, 2);
  if (state == "40001")
    return errc::serialization_failure;
  if (state == "40P01")
    return errc::deadlock;
  if (state == "57014")
    return errc::statement_timeout;
  if (state == "57P01" || state == "57P02" || state == "57P03" || cls == "08")
    return errc::connection_lost;
  if (state == "25006")
    return errc::read_only_violation;
  if (state == "25P02")
    return errc::transaction_failed;
  if (state == "55P03")
    return errc::busy; // lock_not_available
  if (cls == "23")
    return errc::constraint_violation;
  if (cls == "42")
    return errc::syntax_error;
  if (cls == "22")
    return errc::invalid_argument;
  if (state == "28P01" || cls == "28" || state == "3D000")
    return errc::connect_failed;
  return errc::database_error;
}

struct cancels_in_flight {
  std::mutex mtx;
  std::condition_variable delivered;
  int count = 0;
};

pg_driver::pg_driver(pg_options options, connection_role role)
    : options_(std::move(options)), role_(role), in_flight_(std::make_shared<cancels_in_flight>()),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

pg_driver::~pg_driver() {
  close();
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
}

void pg_driver::close() noexcept {
  {
    std::lock_guard<std::mutex> guard{cancel_mtx_};
    cancel_.reset();
  }
  // Non-blocking: the goodbye message is not waited for, whatever the network does.
  if (conn_)
    PQfinish(conn_);
  conn_ = nullptr;
  cache_.clear();
  stale_.clear();
}

namespace {

using steady = std::chrono::steady_clock;

int64_t whole_seconds(steady::duration d) {
  return std::chrono::duration_cast<std::chrono::seconds>(d + std::chrono::milliseconds(500))
      .count();
}

/// The SQLSTATE libpq reports as text only, for failures it found itself (no server
/// message): the server's own messages carry their code (see connect_failure).
std::string client_side_sqlstate(const std::string& message) {
  auto has = [&](const char* text) { return message.find(text) != std::string::npos; };
  if (has("too many clients") || has("remaining connection slots are reserved") ||
      has("too many connections for"))
    return "53300";
  if (has("password authentication failed"))
    return "28P01";
  if (has("no pg_hba.conf entry") || has("authentication failed") || has("role \"") ||
      has("password is required") || has("no password supplied"))
    return "28000";
  if (has("database \"") && has("does not exist"))
    return "3D000";
  if (has("the database system is starting up") || has("the database system is shutting down"))
    return "57P03";
  return "08001";
}

} // namespace

connect_failure read_connect_failure(const std::string& verbose) {
  // With PQERRORS_VERBOSE, each server message reads "SEVERITY:  CODE: text" followed
  // by a "LOCATION:" line: the code is there whatever the server's lc_messages.
  connect_failure out;
  std::string line;
  size_t start = 0;
  while (start <= verbose.size()) {
    auto end = verbose.find('\n', start);
    if (end == std::string::npos)
      end = verbose.size();
    line = verbose.substr(start, end - start);
    start = end + 1;
    if (line.rfind("LOCATION:", 0) == 0)
      continue;
    for (auto severity : {"FATAL:  ", "ERROR:  ", "PANIC:  "}) {
      auto at = line.find(severity);
      if (at == std::string::npos)
        continue;
      auto code_at = at + std::strlen(severity);
      bool coded = line.size() >= code_at + 7 && line.compare(code_at + 5, 2, ": ") == 0 &&
                   std::all_of(line.begin() + static_cast<long>(code_at),
                               line.begin() + static_cast<long>(code_at + 5), [](char c) {
                                 return std::isdigit(static_cast<unsigned char>(c)) ||
                                        std::isupper(static_cast<unsigned char>(c));
                               });
      if (coded) {
        if (out.sqlstate.empty())
          out.sqlstate = line.substr(code_at, 5);
        line.erase(code_at, 7);
      }
      break;
    }
    if (!out.message.empty() && !line.empty())
      out.message += "\n";
    out.message += line;
  }
  out.message = trim(out.message);
  if (out.sqlstate.empty())
    out.sqlstate = client_side_sqlstate(out.message);
  return out;
}

void pg_driver::await_cancels_delivered() {
  // While stopping, every statement is to be cancelled: a late cancel is no surprise
  // (the statement it hits answers shutting_down), and shutdown does not wait for it.
  if (stopping())
    return;
  std::unique_lock<std::mutex> guard{in_flight_->mtx};
  auto since = steady::now();
  if (in_flight_->delivered.wait_for(guard, options_.silence_grace,
                                     [&] { return in_flight_->count == 0; }))
    return;
  guard.unlock();
  silence_ = "a cancel sent to " + options_.display + " was not delivered in " +
             std::to_string(std::max<int64_t>(1, whole_seconds(steady::now() - since))) +
             " s, so the connection was closed before it could cancel a later statement";
  silent_ = true;
  close();
}

void pg_driver::start_request() {
  await_cancels_delivered();
  started_ = steady::now();
  cancel_sent_ = false;
  // A handle closed because the server went silent keeps saying so.
  silent_ = silent_ && !conn_;
  deadline_ = options_.statement_timeout.count() > 0
                  ? started_ + options_.statement_timeout + options_.silence_grace
                  : steady::time_point::max();
}

void pg_driver::went_silent(std::chrono::milliseconds waited) {
  silence_ = "no answer from " + options_.display + " for " +
             std::to_string(std::max<int64_t>(1, whole_seconds(waited))) + " s";
  silent_ = true;
  close();
}

bool pg_driver::flush() {
  for (;;) {
    if (!conn_)
      return false;
    int rc = PQflush(conn_);
    if (rc == 0)
      return true;
    if (rc < 0)
      return false;
    // The server may be waiting for us to read before it reads more: read too.
    if (!await_socket(POLLOUT | POLLIN) || PQconsumeInput(conn_) == 0)
      return false;
  }
}

bool pg_driver::await_socket(short events) {
  for (;;) {
    if (!conn_ || PQsocket(conn_) < 0)
      return false;
    auto now = steady::now();
    if (now >= cancel_at_ && !cancelled())
      cancel(); // the request's own deadline (set_deadline)
    if (cancelled() && !cancel_sent_) {
      // The cancel is on its way (interrupt): the server confirms it by answering.
      cancel_sent_ = true;
      deadline_ = std::min(deadline_, now + options_.silence_grace);
    }
    if (now >= deadline_) {
      went_silent(std::chrono::duration_cast<std::chrono::milliseconds>(now - started_));
      return false;
    }
    auto wake_at = cancelled() ? deadline_ : std::min(deadline_, cancel_at_);
    int timeout = -1;
    if (wake_at != steady::time_point::max()) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(wake_at - now).count();
      timeout = static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX));
    }
    pollfd fds[2] = {{PQsocket(conn_), events, 0}, {wake_fd_, POLLIN, 0}};
    int rc = ::poll(fds, wake_fd_ >= 0 ? 2 : 1, timeout);
    if (rc < 0 && errno != EINTR)
      return false;
    if (rc > 0 && (fds[1].revents & POLLIN)) {
      uint64_t count = 0;
      while (::read(wake_fd_, &count, sizeof count) > 0) {
      }
    }
    if (rc > 0 && fds[0].revents != 0)
      return true;
  }
}

bool pg_driver::await_input() {
  if (!flush())
    return false;
  while (PQisBusy(conn_)) {
    if (!await_socket(POLLIN) || PQconsumeInput(conn_) == 0)
      return false;
  }
  return true;
}

PGresult* pg_driver::next_result() {
  if (!conn_ || !await_input())
    return nullptr;
  return PQgetResult(conn_);
}

// A template, not std::function: it runs once per statement, and the lambdas that
// send capture more than std::function keeps without allocating.
template <class Send>
PGresult* pg_driver::exec_sent(Send send) {
  if (!conn_ || send() != 1)
    return nullptr;
  // Like PQexec: the last result, or the first error (the query ends after it).
  PGresult* last = nullptr;
  while (PGresult* res = next_result()) {
    auto status = PQresultStatus(res);
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      // The copy protocol is not spoken here (a COPY in a script slipped past the text
      // check): libpq would hand out this result forever. The connection goes.
      PQclear(res);
      PQclear(last);
      close();
      return nullptr;
    }
    if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
      PQclear(res);
      continue;
    }
    PQclear(last);
    last = res;
  }
  if (link_failed()) {
    PQclear(last);
    return nullptr;
  }
  return last;
}

bool pg_driver::link_failed() const {
  return !conn_ || silent_ || PQstatus(conn_) == CONNECTION_BAD;
}

std::string pg_driver::describe() const {
  return options_.display + " (" + to_string(role_) + ")";
}

db_error pg_driver::connection_error(const std::string& context) const {
  if (silent_)
    return db_error{errc::connection_lost,
                    context + " failed: " + silence_ +
                        "; the server or the network stopped answering and the connection was "
                        "discarded (" +
                        hint_for(errc::connection_lost) + ")",
                    "08006", silence_};
  auto driver_message = conn_ ? trim(PQerrorMessage(conn_)) : std::string{"no connection"};
  return db_error{errc::connection_lost,
                  context + " failed: the connection to the server broke: " + driver_message +
                      " (" + hint_for(errc::connection_lost) + ")",
                  "08006", driver_message};
}

db_error pg_driver::error_from(PGresult* res, const std::string& context) const {
  if (!conn_ || PQstatus(conn_) == CONNECTION_BAD)
    return connection_error(context);
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string sqlstate = state ? state : "";
  std::string driver_message = primary ? primary : trim(PQerrorMessage(conn_));
  auto code = pg_errc(sqlstate);
  auto message = context + " failed: " + driver_message;
  if (auto detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : nullptr)
    message += " (" + std::string{detail} + ")";
  message += " (";
  message += hint_for(code);
  message += ")";
  return db_error{code, std::move(message), sqlstate, driver_message};
}

namespace {

bool is_numeric_address(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto comma = text.find(',', start);
    out.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos)
      return out;
    start = comma + 1;
  }
}

std::string conninfo_quoted(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "'";
}

// One name's addresses, looked up on a thread of its own that nobody joins: a silent
// DNS server blocks getaddrinfo for timeout x attempts, whatever connect_timeout says.
struct lookup {
  std::mutex mtx;
  std::condition_variable done_cv;
  bool done = false;
  std::vector<std::string> addresses;
};

std::shared_ptr<lookup> start_lookup(const std::string& name) {
  auto l = std::make_shared<lookup>();
  auto run = [l, name] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    std::vector<std::string> addresses;
    if (getaddrinfo(name.c_str(), nullptr, &hints, &found) == 0) {
      for (auto* a = found; a; a = a->ai_next) {
        char text[INET6_ADDRSTRLEN] = {};
        const void* where =
            a->ai_family == AF_INET
                ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
        if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
            inet_ntop(a->ai_family, where, text, sizeof text) &&
            std::find(addresses.begin(), addresses.end(), text) == addresses.end())
          addresses.emplace_back(text);
      }
      freeaddrinfo(found);
    }
    std::lock_guard<std::mutex> guard{l->mtx};
    l->addresses = std::move(addresses);
    l->done = true;
    l->done_cv.notify_all();
  };
  try {
    std::thread(run).detach();
  } catch (...) {
    run(); // no thread: look it up here
  }
  return l;
}

} // namespace

std::optional<std::string> pg_driver::with_resolved_hosts(const std::string& conninfo) {
  char* parse_error = nullptr;
  auto* options = PQconninfoParse(conninfo.c_str(), &parse_error);
  PQfreemem(parse_error);
  if (!options)
    return conninfo; // libpq reports it
  std::string host, hostaddr, port;
  for (auto* o = options; o->keyword; ++o) {
    std::string keyword = o->keyword;
    if (keyword == "host" && o->val)
      host = o->val;
    else if (keyword == "hostaddr" && o->val)
      hostaddr = o->val;
    else if (keyword == "port" && o->val)
      port = o->val;
  }
  PQconninfoFree(options);
  // Nothing to look up (or a form this does not rewrite: libpq looks it up itself).
  if (host.empty() || !hostaddr.empty() || port.find(',') != std::string::npos)
    return conninfo;
  auto hosts = split_list(host);
  std::vector<std::shared_ptr<lookup>> lookups;
  for (auto& h : hosts) {
    if (h.empty() || h.front() == '/' || h.front() == '@')
      return conninfo; // a Unix socket: no DNS
    lookups.push_back(is_numeric_address(h) ? nullptr : start_lookup(h));
  }
  std::string host_list, addr_list;
  for (size_t i = 0; i < hosts.size(); ++i) {
    std::vector<std::string> addresses{hosts[i]};
    if (auto& l = lookups[i]) {
      std::unique_lock<std::mutex> guard{l->mtx};
      // Waits in slices, so that a cancel (shutdown) is seen within one.
      while (!l->done && !cancelled() && steady::now() < deadline_)
        l->done_cv.wait_for(guard, std::chrono::milliseconds(50));
      if (!l->done) {
        silence_ = cancelled() ? std::string{"the database is stopping"}
                               : "no answer from the DNS for " + hosts[i] + " for " +
                                     std::to_string(std::max<int64_t>(
                                         1, whole_seconds(steady::now() - started_))) +
                                     " s (connect_timeout)";
        silent_ = true;
        return std::nullopt;
      }
      if (l->addresses.empty())
        return conninfo; // not found: libpq says so in its own words
      addresses = l->addresses;
    }
    for (auto& address : addresses) {
      host_list += (host_list.empty() ? "" : ",") + hosts[i];
      addr_list += (addr_list.empty() ? "" : ",") + address;
    }
  }
  // Later keywords win; host stays the name (TLS checks it, .pgpass matches it).
  return conninfo + " host=" + conninfo_quoted(host_list) +
         " hostaddr=" + conninfo_quoted(addr_list);
}

outcome<done> pg_driver::open() {
  close();
  silent_ = false;
  started_ = steady::now();
  deadline_ = started_ + options_.connect_timeout;
  cancel_sent_ = true; // nothing to cancel while connecting
  auto conninfo = with_resolved_hosts(options_.conninfo);
  conn_ = conninfo ? PQconnectStart(conninfo->c_str()) : nullptr;
  // The server's messages then carry their SQLSTATE: read_connect_failure.
  if (conn_)
    PQsetErrorVerbosity(conn_, PQERRORS_VERBOSE);
  // PQconnectPoll starts as if PGRES_POLLING_WRITING had been returned.
  auto polled = PGRES_POLLING_WRITING;
  while (conn_ && PQstatus(conn_) != CONNECTION_BAD && polled != PGRES_POLLING_OK &&
         polled != PGRES_POLLING_FAILED) {
    if (!await_socket(polled == PGRES_POLLING_READING ? POLLIN : POLLOUT)) {
      if (silent_)
        silence_ += " (connect_timeout)";
      break;
    }
    polled = PQconnectPoll(conn_);
  }
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    auto failure = silent_ ? connect_failure{silence_, "08001"}
                   : conn_ ? read_connect_failure(PQerrorMessage(conn_))
                           : connect_failure{"out of memory", "08001"};
    // libpq's messages name host, port and user, never the password.
    auto& driver_message = failure.message;
    auto& sqlstate = failure.sqlstate;
    auto err = db_error{errc::connect_failed,
                        "cannot connect to " + options_.display + ": " + driver_message +
                            (sqlstate == "53300"
                                 ? " (the server has no connection slot free: lower pool_size "
                                   "or raise the server's max_connections)"
                                 : " (check host, port, user, password, database name and "
                                   "sslmode)"),
                        sqlstate, driver_message};
    close();
    return err;
  }
  PQsetErrorVerbosity(conn_, PQERRORS_DEFAULT);
  PQsetnonblocking(conn_, 1);
  // Notices go nowhere instead of stderr: the server's messages reach users as errors.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  {
    // Cancels still on their way to the last connection's backend cannot hit this one.
    std::lock_guard<std::mutex> guard{cancel_mtx_};
    cancel_.reset(PQgetCancel(conn_), PQfreeCancel);
    in_flight_ = std::make_shared<cancels_in_flight>();
  }
  read_only_ = false;
  cancel_sent_ = false;
  session_changes_ = 0;
  auto setup = run_simple(session_setup());
  started_with_ = reported_settings();
  return setup;
}

namespace {

// The settings the server reports to the client whenever they change (GUC_REPORT):
// reading them costs no round trip.
constexpr const char* reported_names[] = {"TimeZone",        "DateStyle",
                                          "IntervalStyle",   "session_authorization",
                                          "is_superuser",    "standard_conforming_strings",
                                          "client_encoding", "default_transaction_read_only",
                                          "application_name"};
// default_transaction_read_only follows set_read_only: checked there.
constexpr size_t read_only_index = 7;

} // namespace

std::vector<std::string> pg_driver::reported_settings() const {
  std::vector<std::string> out;
  for (auto name : reported_names) {
    auto value = conn_ ? PQparameterStatus(conn_, name) : nullptr;
    out.emplace_back(value ? value : "");
  }
  return out;
}

bool pg_driver::session_changed() const {
  if (session_changes_ != 0)
    return true;
  if (started_with_.size() != std::size(reported_names))
    return false; // never set up
  // Asked after every request: compared in place, nothing allocated.
  for (size_t i = 0; i < started_with_.size(); ++i) {
    if (i == read_only_index)
      continue;
    auto value = conn_ ? PQparameterStatus(conn_, reported_names[i]) : nullptr;
    if (started_with_[i] != (value ? value : ""))
      return true;
  }
  return false;
}

std::string pg_driver::session_setup() const {
  // UTC, so that timestamps read the same whatever the server's TimeZone (and the same as
  // the mixin's values on SQLite).
  auto setup = "SET statement_timeout = " + std::to_string(options_.statement_timeout.count()) +
               "; SET TimeZone = 'UTC'; SET DateStyle = 'ISO'";
  if (role_ == connection_role::reader)
    setup += "; SET default_transaction_read_only = on";
  return setup;
}

outcome<done> pg_driver::reset_session() {
  if (!session_changed())
    return done{};
  auto changes = std::exchange(session_changes_, 0u) | session_settings;
  start_request();
  // What DISCARD ALL does, which cannot run in the implicit transaction of a script,
  // except dropping the cached statements: only when the client prepared or
  // deallocated statements of its own.
  std::string sql = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DISCARD TEMP; "
                    "DISCARD SEQUENCES";
  if (changes & session_advisory_locks)
    sql += "; SELECT pg_advisory_unlock_all()";
  if (changes & session_listen)
    sql += "; UNLISTEN *";
  if (changes & session_prepared) {
    sql += "; DEALLOCATE ALL";
    cache_.clear();
    stale_.clear();
  }
  sql += "; " + session_setup();
  read_only_ = false; // RESET ALL restored the server's default
  auto reset = run_simple(sql);
  started_with_ = reported_settings();
  return reset;
}

outcome<done> pg_driver::run_simple(const std::string& sql) {
  if (!conn_)
    return connection_error(sql);
  result_ptr res{exec_sent([&] { return PQsendQuery(conn_, sql.c_str()); })};
  if (!res || !ok_status(res.get()))
    return error_from(res.get(), sql);
  return done{};
}

outcome<pg_driver::prepared> pg_driver::prepare(const std::string& sql) {
  if (auto i = cache_.find(sql); i != cache_.end()) {
    auto entry = i->second;
    entry.reused = true;
    session_changes_ |= entry.changes;
    return entry;
  }
  if (cache_.size() >= options_.statement_cache_size) {
    if (auto cleared = run_simple("DEALLOCATE ALL"); !cleared)
      return cleared.error();
    cache_.clear();
    stale_.clear();
  }
  auto name = "cafdb_" + std::to_string(++next_statement_);
  result_ptr res{
      exec_sent([&] { return PQsendPrepare(conn_, name.c_str(), sql.c_str(), 0, nullptr); })};
  if (!res || !ok_status(res.get()))
    return error_from(res.get(), "preparing the statement");
  result_ptr described{exec_sent([&] { return PQsendDescribePrepared(conn_, name.c_str()); })};
  if (!described || !ok_status(described.get()))
    return error_from(described.get(), "describing the statement");
  auto entry = prepared{
      name, PQnparams(described.get()), false, {}, session_changes(sql, engine_kind::postgresql)};
  session_changes_ |= entry.changes;
  for (int i = 0; i < entry.params; ++i)
    entry.signature.push_back(PQparamtype(described.get(), i));
  entry.signature.push_back(0); // parameters | columns
  for (int c = 0; c < PQnfields(described.get()); ++c)
    entry.signature.push_back(PQftype(described.get(), c));
  cache_.emplace(sql, entry);
  return entry;
}

namespace {

// Parameters as libpq takes them: text format, blobs binary (no escaping).
struct bound_params {
  std::vector<std::string> texts;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;

  explicit bound_params(const std::vector<value>& params)
      : texts(params.size()), values(params.size(), nullptr), lengths(params.size(), 0),
        formats(params.size(), 0) {
    for (size_t i = 0; i < params.size(); ++i) {
      auto& param = params[i];
      switch (param.type()) {
      case value_type::null:
        continue;
      case value_type::boolean:
        texts[i] = param.as_bool() ? "true" : "false";
        break;
      case value_type::blob:
        values[i] = param.bytes().data();
        lengths[i] = static_cast<int>(param.bytes().size());
        formats[i] = 1;
        continue;
      case value_type::text:
        values[i] = param.bytes().c_str();
        continue;
      default:
        texts[i] = param.as_text();
        break;
      }
      values[i] = texts[i].c_str();
    }
  }

  int count() const { return static_cast<int>(values.size()); }
};

result_set to_result_set(PGresult* res) {
  result_set out;
  int columns = PQnfields(res);
  int rows = PQntuples(res);
  out.columns.reserve(columns);
  for (int c = 0; c < columns; ++c) {
    out.columns.emplace_back(PQfname(res, c));
    out.column_types.emplace_back(type_name(PQftype(res, c)));
  }
  out.rows.reserve(rows);
  for (int r = 0; r < rows; ++r) {
    auto& row = out.rows.emplace_back();
    row.reserve(columns);
    for (int c = 0; c < columns; ++c)
      row.push_back(convert(res, r, c));
  }
  // A query's rows are not changes (its tag counts them: "SELECT 3").
  auto affected = PQcmdTuples(res);
  bool query = std::strncmp(PQcmdStatus(res), "SELECT", 6) == 0;
  out.affected_rows = !query && affected && *affected ? std::strtoll(affected, nullptr, 10) : 0;
  return out;
}

// Blanks, comments and `;` only: no statement for the server.
bool is_blank(const std::string& sql) {
  return !has_statement(sql, engine_kind::postgresql);
}

// Statements sent in one pipeline before their results are read: small enough that
// queries and results fit the socket buffers, so neither side blocks on the other.
constexpr size_t pipeline_chunk = 64;

} // namespace

// A script runs as one implicit transaction (the simple query protocol) and answers
// its last statement's result, as on SQLite (docs/protocol.md).
outcome<result_set> pg_driver::run_script(const std::string& sql) {
  session_changes_ |= session_changes(sql, engine_kind::postgresql);
  result_ptr res{exec_sent([&] { return PQsendQuery(conn_, sql.c_str()); })};
  if (!res || !ok_status(res.get()))
    return error_from(res.get(), "the script");
  return to_result_set(res.get());
}

outcome<pg_driver::prepared> pg_driver::prepare_checked(const statement& stmt) {
  // libpq takes text parameters as C strings: a NUL would silently cut the value.
  for (size_t i = 0; i < stmt.params.size(); ++i)
    if (stmt.params[i].type() == value_type::text &&
        stmt.params[i].bytes().find('\0') != std::string::npos)
      return db_error{errc::invalid_argument,
                      "parameter $" + std::to_string(i + 1) +
                          " is text with a NUL character, which PostgreSQL text cannot hold; "
                          "send it as a blob (bytea) or remove the NUL",
                      "", ""};
  auto prep = prepare(stmt.sql);
  if (!prep)
    return prep.error();
  if (static_cast<size_t>(prep->params) != stmt.params.size())
    return db_error{errc::invalid_argument,
                    "the statement uses " + std::to_string(prep->params) +
                        " placeholder(s) ($1..$" + std::to_string(prep->params) + ") but " +
                        std::to_string(stmt.params.size()) +
                        " parameter(s) were given; pass exactly one value per placeholder",
                    "", ""};
  // A blob travels as binary bytea. Where the server reads the placeholder as another
  // type (`SELECT $1`: text), it would take the bytes as that type, silently.
  for (size_t i = 0; i < stmt.params.size(); ++i)
    if (stmt.params[i].type() == value_type::blob && prep->signature[i] != bytea_oid) {
      std::string type = type_name(prep->signature[i]);
      return db_error{errc::invalid_argument,
                      "parameter $" + std::to_string(i + 1) + " is a blob, but PostgreSQL reads $" +
                          std::to_string(i + 1) + " as " + (type.empty() ? "another type" : type) +
                          " here; write $" + std::to_string(i + 1) +
                          "::bytea (or bind it to a bytea column)",
                      "", ""};
    }
  return prep;
}

bool pg_driver::maybe_stale(const db_error& err) {
  // A prepared statement keeps the parameter and result types its tables had when it
  // was prepared. After ALTER TABLE, or DROP and CREATE with other types, it fails
  // with 0A000 ("cached plan must not change result type"), a data exception (class
  // 22: a text value for what was an integer) or a type mismatch (class 42) although
  // the same text prepared now would run.
  auto& code = err.driver_code;
  return code == "26000" || code == "0A000" || code.compare(0, 2, "22") == 0 ||
         code.compare(0, 2, "42") == 0;
}

db_error pg_driver::statement_error(PGresult* res, const statement& stmt, bool reused) {
  auto err = error_from(res, "executing the statement");
  if (err.driver_code == "26000") // prepared statement vanished (DISCARD ALL)
    cache_.erase(stmt.sql);
  else if (reused && err.driver_code == "0A000")
    forget(stmt.sql); // refused for the life of the connection
  return err;
}

void pg_driver::forget(const std::string& sql) {
  if (auto i = cache_.find(sql); i != cache_.end()) {
    // The server-side copy is dropped once no transaction is open.
    stale_.push_back(i->second.name);
    cache_.erase(i);
  }
}

bool pg_driver::outgrown(const std::string& sql, const db_error& err) {
  // 26000 and 0A000 say so themselves. Anything else (a data error, a type mismatch)
  // may be the statement's own: it is stale only if the same text prepared now has
  // other parameter or column types. A genuine error is never run twice.
  if (err.driver_code == "26000" || err.driver_code == "0A000")
    return true;
  auto i = cache_.find(sql);
  if (i == cache_.end())
    return false;
  auto old = i->second.signature;
  forget(sql);
  auto fresh = prepare(sql);
  return fresh && fresh->signature != old;
}
void pg_driver::drop_stale_statements() {
  if (stale_.empty() || in_transaction())
    return;
  for (auto& name : stale_)
    run_simple("DEALLOCATE " + name);
  stale_.clear();
}

outcome<result_set> pg_driver::execute(const statement& stmt) {
  start_request();
  if (!conn_)
    return connection_error("executing the statement");
  if (is_blank(stmt.sql))
    return db_error{errc::invalid_argument, "the statement is empty (send SQL text)", "", ""};
  if (stmt.params.empty() && looks_like_script(stmt.sql))
    return run_script(stmt.sql);
  drop_stale_statements();
  bool autocommit = !in_transaction();
  bool reused = false;
  auto result = execute_prepared(stmt, reused);
  // A cached statement that outlived a change of its tables is prepared anew and run
  // again, once, where that is safe: in autocommit the failed run changed nothing and
  // left nothing open. Inside a transaction the error has aborted it (nothing can be
  // prepared there): it is forgotten, and its next use prepares anew.
  if (!result && reused && maybe_stale(result.error())) {
    if (!autocommit || in_transaction()) {
      forget(stmt.sql);
      // Certainly the table's change, not the statement's fault: the transaction can
      // simply run again, as after a serialization failure.
      auto& err = result.error();
      if (err.driver_code == "0A000" || err.driver_code == "26000")
        err = db_error{errc::serialization_failure,
                       "a table this statement uses changed since the statement was prepared "
                       "on this connection (" +
                           err.driver_message +
                           "); the transaction failed: roll back and run it again (the "
                           "statement is prepared anew)",
                       err.driver_code, err.driver_message};
    } else if (outgrown(stmt.sql, result.error())) {
      result = execute_prepared(stmt, reused);
    }
  }
  return result;
}

outcome<result_set> pg_driver::execute_prepared(const statement& stmt, bool& reused) {
  auto prep = prepare_checked(stmt);
  if (!prep)
    return prep.error();
  reused = prep->reused;
  bound_params bound{stmt.params};
  result_ptr res{exec_sent([&] {
    return PQsendQueryPrepared(conn_, prep->name.c_str(), bound.count(), bound.values.data(),
                               bound.lengths.data(), bound.formats.data(), 0);
  })};
  if (!res || !ok_status(res.get()))
    return statement_error(res.get(), stmt, reused);
  return to_result_set(res.get());
}

bool pg_driver::pipelinable(const std::vector<statement>& statements) {
  // Scripts and empty statements need the simple protocol.
  for (auto& stmt : statements)
    if (is_blank(stmt.sql) || (stmt.params.empty() && looks_like_script(stmt.sql)))
      return false;
  return true;
}

// One pipeline: `before` (a control statement, or null), the statements, `after` (or
// null), one sync. Results are read in chunks, after a flush request, so that a long
// batch never fills both directions of the socket at once. `on_statement` returning
// false stops the sending of further statements (those already sent are still read).
bool pg_driver::run_pipeline(const std::vector<statement>& statements,
                             const std::vector<prepared>& preps, const char* before,
                             const char* after, const std::function<void(PGresult*)>& on_control,
                             const std::function<bool(size_t, PGresult*)>& on_statement) {
  if (PQenterPipelineMode(conn_) != 1)
    return false;
  bool broken = false;
  auto sent_ok = [&](int rc) {
    broken = broken || rc != 1;
    return !broken;
  };
  auto send_control = [&](const char* sql) {
    sent_ok(PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0));
  };
  // The next query's result; libpq ends each query's results with a null.
  auto next_result = [&]() -> result_ptr {
    result_ptr res{this->next_result()};
    broken = broken || !res;
    while (PGresult* extra = this->next_result())
      PQclear(extra);
    broken = broken || link_failed();
    return res;
  };
  size_t sent = 0, read = 0;
  bool before_read = before == nullptr, go_on = true;
  auto read_up_to = [&](size_t end) {
    if (!before_read && !broken) {
      auto res = next_result();
      if (!broken)
        on_control(res.get());
      before_read = true;
    }
    for (; read < end && !broken; ++read) {
      auto res = next_result();
      if (!broken)
        go_on = on_statement(read, res.get()) && go_on;
    }
  };

  if (before)
    send_control(before);
  while (sent < statements.size() && go_on && !broken) {
    bound_params bound{statements[sent].params};
    if (!sent_ok(PQsendQueryPrepared(conn_, preps[sent].name.c_str(), bound.count(),
                                     bound.values.data(), bound.lengths.data(),
                                     bound.formats.data(), 0)))
      break;
    sent += 1;
    if (sent - read >= pipeline_chunk && sent < statements.size()) {
      // Ask the server to send what it has, then read this chunk's results.
      if (sent_ok(PQsendFlushRequest(conn_)) && sent_ok(flush() ? 1 : 0))
        read_up_to(sent);
    }
  }
  if (after && !broken)
    send_control(after);
  if (!broken)
    sent_ok(PQpipelineSync(conn_));
  read_up_to(sent);
  if (after && !broken) {
    auto res = next_result();
    if (!broken)
      on_control(res.get());
  }
  if (!broken) {
    result_ptr sync{this->next_result()};
    broken = !sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC;
  }
  return !broken && conn_ && PQexitPipelineMode(conn_) == 1;
}

outcome<std::vector<pg_driver::prepared>>
pg_driver::prepare_all(const std::vector<statement>& statements, size_t& failed_at) {
  std::vector<prepared> preps;
  preps.reserve(statements.size());
  for (size_t i = 0; i < statements.size(); ++i) {
    auto prep = prepare_checked(statements[i]);
    if (!prep) {
      failed_at = i;
      return prep.error();
    }
    preps.push_back(std::move(*prep));
  }
  return preps;
}

// BEGIN, the statements and COMMIT in one pipeline: one round trip instead of one per
// statement. The server stops at the first error and skips the rest up to the sync;
// the transaction block is then aborted and one ROLLBACK ends it.
outcome<std::vector<result_set>>
pg_driver::execute_transaction(const std::vector<statement>& statements, bool read_only,
                               size_t& failed_at) {
  start_request();
  failed_at = statements.size();
  if (!conn_)
    return connection_error("the transaction");
  if (!pipelinable(statements))
    return driver::execute_transaction(statements, read_only, failed_at);
  drop_stale_statements();
  bool stale = false;
  auto results = pipeline_transaction(statements, read_only, failed_at, stale);
  // A cached statement that outlived a change of its tables failed: the whole
  // transaction was rolled back, so it runs again once, prepared anew (see execute).
  if (!results && stale && !in_transaction() && failed_at < statements.size() &&
      outgrown(statements[failed_at].sql, results.error())) {
    drop_stale_statements();
    results = pipeline_transaction(statements, read_only, failed_at, stale);
  }
  return results;
}

outcome<std::vector<result_set>>
pg_driver::pipeline_transaction(const std::vector<statement>& statements, bool read_only,
                                size_t& failed_at, bool& stale) {
  stale = false;
  auto preps = prepare_all(statements, failed_at);
  if (!preps)
    return preps.error();
  std::vector<result_set> results;
  results.reserve(statements.size());
  std::optional<db_error> failure;
  bool commit_failed = false;
  int controls = 0; // BEGIN, then COMMIT
  auto on_control = [&](PGresult* res) {
    controls += 1;
    if (!failure && !ok_status(res)) {
      failure = error_from(res, controls == 1 ? "BEGIN" : "COMMIT");
      commit_failed = controls == 2;
    }
  };
  auto on_statement = [&](size_t i, PGresult* res) {
    if (failure)
      return false;
    if (!ok_status(res)) {
      auto reused = (*preps)[i].reused;
      failure = statement_error(res, statements[i], reused);
      stale = reused && maybe_stale(*failure);
      failed_at = i;
      return false;
    }
    results.push_back(to_result_set(res));
    return true;
  };
  if (!run_pipeline(statements, *preps, read_only ? "BEGIN READ ONLY" : "BEGIN", "COMMIT",
                    on_control, on_statement)) {
    // Everything was sent before the outcome was read: whether COMMIT ran is unknown
    // unless a statement is known to have failed first.
    auto err = connection_error("the transaction");
    if (failure)
      return err;
    return db_error{errc::commit_in_doubt,
                    "the connection broke before the transaction's outcome was read: it may "
                    "or may not have been committed; check before retrying (" +
                        err.message + ")",
                    err.driver_code, err.driver_message};
  }
  if (failure) {
    if (commit_failed)
      failure->message = "COMMIT failed, the transaction was rolled back: " + failure->message;
    rollback(); // the aborted block (a failed rollback leaves in_transaction() for reset)
    return std::move(*failure);
  }
  return results;
}

// Independent reads in one pipeline with one sync: one round trip for all of them.
// They share an implicit transaction, so a statement that fails aborts the ones after
// it; those run again, each on its own, and only the failing one reports an error.
std::vector<outcome<result_set>> pg_driver::execute_each(const std::vector<statement>& statements) {
  start_request();
  if (!conn_ || statements.size() < 2 || !pipelinable(statements))
    return driver::execute_each(statements);
  std::vector<std::optional<outcome<result_set>>> outcomes(statements.size());
  // Statements that cannot be prepared fail alone; the rest go into the pipeline.
  std::vector<statement> sendable;
  std::vector<prepared> preps;
  std::vector<size_t> origin;
  for (size_t i = 0; i < statements.size(); ++i) {
    auto prep = prepare_checked(statements[i]);
    if (!prep) {
      outcomes[i] = prep.error();
      continue;
    }
    sendable.push_back(statements[i]);
    preps.push_back(std::move(*prep));
    origin.push_back(i);
  }
  std::vector<size_t> aborted;
  // Reads whose cached statement may have outlived a change of its tables.
  std::vector<bool> stale_reads(statements.size(), false);
  auto on_statement = [&](size_t k, PGresult* res) {
    auto i = origin[k];
    if (ok_status(res))
      outcomes[i] = to_result_set(res);
    else if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
      aborted.push_back(i);
    else {
      outcomes[i] = statement_error(res, statements[i], preps[k].reused);
      stale_reads[i] = preps[k].reused && maybe_stale(outcomes[i]->error());
    }
    return true;
  };
  bool intact = run_pipeline(
      sendable, preps, nullptr, nullptr, [](PGresult*) {}, on_statement);
  std::vector<outcome<result_set>> out;
  out.reserve(statements.size());
  for (size_t i = 0; i < statements.size(); ++i) {
    // Each read is an autocommit statement of its own: one whose cached statement may
    // have outlived a change of its tables is prepared anew and run again, once (see
    // execute).
    if (outcomes[i] && !*outcomes[i] && intact && stale_reads[i] &&
        outgrown(statements[i].sql, outcomes[i]->error()))
      out.push_back(execute_unless_cancelled(statements[i]));
    else if (outcomes[i])
      out.push_back(std::move(*outcomes[i]));
    else if (intact && std::find(aborted.begin(), aborted.end(), i) != aborted.end())
      out.push_back(execute_unless_cancelled(statements[i]));
    else
      out.push_back(connection_error("executing the statement"));
  }
  return out;
}

outcome<done> pg_driver::begin(bool read_only, const tx_options& options) {
  start_request();
  auto asked = options;
  asked.read_only = asked.read_only || read_only;
  return run_simple(pg_begin_sql(asked));
}

outcome<done> pg_driver::commit() {
  start_request();
  return run_simple("COMMIT");
}

outcome<done> pg_driver::rollback() {
  start_request();
  if (!conn_) // a closed handle cannot prove it has nothing open: never pooled
    return connection_error("ROLLBACK");
  if (!in_transaction())
    return done{};
  return run_simple("ROLLBACK");
}

outcome<done> pg_driver::set_read_only(bool read_only) {
  start_request();
  // Checked, not assumed: a function may have turned the protection off since (the
  // server reports the setting, so this costs no round trip).
  if (read_only_ && conn_) {
    auto* now = PQparameterStatus(conn_, "default_transaction_read_only");
    if (now && std::strcmp(now, "on") != 0)
      read_only_ = false;
  }
  if (read_only == read_only_ || role_ == connection_role::reader)
    return done{};
  auto set = run_simple(read_only ? "SET default_transaction_read_only = on"
                                  : "SET default_transaction_read_only = off");
  if (set)
    read_only_ = read_only;
  return set;
}

void pg_driver::set_deadline(std::chrono::steady_clock::time_point deadline) {
  cancel_at_ = deadline;
}

bool pg_driver::in_transaction() const {
  if (!conn_)
    return false;
  auto status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

void pg_driver::interrupt() noexcept {
  std::shared_ptr<pg_cancel> cancel;
  std::shared_ptr<cancels_in_flight> in_flight;
  {
    std::lock_guard<std::mutex> guard{cancel_mtx_};
    cancel = cancel_;
    in_flight = in_flight_;
  }
  // Wakes the connection's thread at once: from now on it waits only silence_grace for
  // the server to confirm the cancel.
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof one);
  }
  if (!cancel)
    return;
  // PQcancel connects to the server and waits for it to hang up, which it does once it
  // has signalled the backend: as long as the network is silent, it blocks. It gets a
  // thread of its own that nobody joins, holding its own references, so neither a
  // request nor shutdown waits on the network; the next request waits for it to be
  // delivered (start_request), at most silence_grace.
  {
    std::lock_guard<std::mutex> guard{in_flight->mtx};
    in_flight->count += 1;
  }
  auto delivered = [in_flight] {
    std::lock_guard<std::mutex> guard{in_flight->mtx};
    in_flight->count -= 1;
    in_flight->delivered.notify_all();
  };
  try {
    std::thread([cancel, delivered] {
      char message[256];
      PQcancel(cancel.get(), message, sizeof message);
      delivered();
    }).detach();
  } catch (...) {
    // No thread, no cancel: the request still ends at its deadline.
    delivered();
  }
}

} // namespace cafdb
