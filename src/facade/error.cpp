#include "cafdb/error.hpp"

#include <caf/sec.hpp>

namespace cafdb {

caf::error make_error(errc code) {
  return caf::error{static_cast<uint8_t>(code), error_category};
}

caf::error make_error(errc code, std::string message, std::string driver_code,
                      std::string driver_message) {
  return caf::error{
      static_cast<uint8_t>(code), error_category,
      caf::make_message(std::move(message), std::move(driver_code), std::move(driver_message))};
}

caf::error to_caf_error(db_error err) {
  return make_error(err.code, std::move(err.message), std::move(err.driver_code),
                    std::move(err.driver_message));
}

error_info describe(const caf::error& err) {
  error_info info;
  if (!err)
    return info; // CAF 0.17: category() of an empty error dereferences null
  if (err.category() != error_category) {
    // CAF's own errors: say what they mean for a database client.
    if (err.category() == caf::atom("system")) {
      auto code = static_cast<caf::sec>(err.code());
      info.message = caf::to_string(code);
      if (code == caf::sec::request_timeout)
        info.message += ": no answer in time (the actor is busy, gone, or the timeout is "
                        "too short)";
      else if (code == caf::sec::request_receiver_down)
        info.message += ": the actor is gone (session closed or database stopped)";
    } else {
      info.message = caf::to_string(err);
    }
    return info;
  }
  info.code = static_cast<errc>(err.code());
  auto& ctx = err.context();
  if (ctx.match_elements<std::string, std::string, std::string>()) {
    info.message = ctx.get_as<std::string>(0);
    info.driver_code = ctx.get_as<std::string>(1);
    info.driver_message = ctx.get_as<std::string>(2);
  }
  return info;
}

db_error to_db_error(const caf::error& err) {
  if (!err)
    return db_error{}; // no error: errc::none, not a failure
  auto info = describe(err);
  auto code = info.code == errc::none ? errc::unavailable : info.code;
  return db_error{code, std::move(info.message), std::move(info.driver_code),
                  std::move(info.driver_message)};
}

caf::error as_cafdb_error(const caf::error& err) {
  if (!err || err.category() == error_category)
    return err;
  if (err == caf::sec::request_timeout)
    return make_error(errc::request_timeout,
                      "no answer within the request's timeout; the request may still complete: "
                      "check before retrying a write, or raise the timeout");
  if (err == caf::sec::request_receiver_down)
    return make_error(errc::session_closed,
                      "the session (or the database) that was asked is gone: it was closed, "
                      "timed out or stopped; open a new session, or start the database again");
  return make_error(errc::unavailable, caf::to_string(err) + " (retry later)");
}

failure_kind classify(const caf::error& err) {
  if (!err)
    return failure_kind::refused;
  if (err.category() != error_category)
    return err == caf::sec::request_timeout ? failure_kind::timed_out : failure_kind::lost;
  return classify(static_cast<errc>(err.code()));
}

bool is(const caf::error& err, errc code) {
  return err && err.category() == error_category && err.code() == static_cast<uint8_t>(code);
}

std::string render(const caf::error& err) {
  if (!err)
    return "no error";
  auto info = describe(err);
  if (err.category() != error_category)
    return info.message;
  std::string out = "cafdb." + to_string(info.code);
  if (!info.message.empty())
    out += ": " + info.message;
  if (!info.driver_code.empty())
    out += " [" + info.driver_code + "]";
  return out;
}

} // namespace cafdb
